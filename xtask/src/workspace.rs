//! Where xtask works: the workspace root, found at run time, and the directory
//! the user started `cargo xtask` in, against which relative arguments are read.
//!
//! The root is never taken from `env!("CARGO_MANIFEST_DIR")`: that is the path
//! the binary was compiled at, and cargo does not rebuild xtask when a checkout
//! (with its `target/`) is moved or renamed.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The two directories every task needs.
pub struct Workspace {
    /// The directory of the workspace `Cargo.toml`; xtask runs its steps here.
    pub root: PathBuf,
    /// The directory `cargo xtask` was started in, captured before xtask
    /// changed to `root`: relative paths the user typed are relative to it.
    pub cwd: PathBuf,
}

impl Workspace {
    /// Finds the root from the process's own environment and working directory.
    pub fn from_process(cwd: PathBuf) -> Result<Self> {
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
        let root = locate_root(manifest_dir.as_deref(), &cwd)?;
        Ok(Self { root, cwd })
    }

    /// The target directory the user chose through the environment, made
    /// absolute against [`Workspace::cwd`]. Cargo reads a relative
    /// `CARGO_TARGET_DIR` (or `CARGO_BUILD_TARGET_DIR`) against its working
    /// directory, and xtask's cargo commands run in the root, not where the user
    /// typed the command. `build.target-dir` from a config file needs nothing:
    /// cargo reads it against the config file's directory.
    pub fn target_dir_overrides(&self) -> Vec<(&'static str, PathBuf)> {
        target_dir_overrides(&self.cwd, |key| std::env::var_os(key))
    }
}

fn target_dir_overrides(
    cwd: &Path,
    var: impl Fn(&str) -> Option<OsString>,
) -> Vec<(&'static str, PathBuf)> {
    ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
        .into_iter()
        .filter_map(|key| {
            let value = PathBuf::from(var(key).filter(|v| !v.is_empty())?);
            value.is_relative().then(|| (key, cwd.join(value)))
        })
        .collect()
}

/// The workspace root: the parent of `manifest_dir` (the `CARGO_MANIFEST_DIR`
/// that `cargo run` sets at run time) when that is still xtask's directory in
/// a workspace, else the nearest directory from `cwd` upward whose
/// `Cargo.toml` has a `[workspace]` table and which has an `xtask/` member.
pub fn locate_root(manifest_dir: Option<&Path>, cwd: &Path) -> Result<PathBuf> {
    if let Some(dir) = manifest_dir {
        let dir = cwd.join(dir);
        if is_xtask_dir(&dir)
            && let Some(parent) = dir.parent()
            && is_workspace_root(parent)
        {
            return Ok(parent.to_path_buf());
        }
    }
    if let Some(root) = cwd.ancestors().find(|dir| is_workspace_root(dir)) {
        return Ok(root.to_path_buf());
    }
    let from_env = match manifest_dir {
        Some(dir) => format!(
            "CARGO_MANIFEST_DIR={} is not the xtask directory of a workspace",
            dir.display()
        ),
        None => "CARGO_MANIFEST_DIR is not set".to_owned(),
    };
    bail!(
        "cannot find the medcap workspace: {from_env}, and neither {} nor any directory \
         above it has a Cargo.toml with [workspace] beside an xtask/ directory; \
         run `cargo xtask` inside the checkout",
        cwd.display()
    )
}

/// A directory's `Cargo.toml`, parsed; `None` when absent or not TOML.
fn manifest(dir: &Path) -> Option<toml::Table> {
    toml::from_str(&fs::read_to_string(dir.join("Cargo.toml")).ok()?).ok()
}

/// A workspace root: a `Cargo.toml` with a `[workspace]` table and an
/// `xtask/Cargo.toml` beside it.
fn is_workspace_root(dir: &Path) -> bool {
    dir.join("xtask/Cargo.toml").is_file()
        && manifest(dir).is_some_and(|m| m.contains_key("workspace"))
}

/// xtask's own package directory: its `Cargo.toml` names the package `xtask`.
fn is_xtask_dir(dir: &Path) -> bool {
    manifest(dir).is_some_and(|m| {
        m.get("package")
            .and_then(|p| p.get("name"))
            .and_then(toml::Value::as_str)
            == Some("xtask")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace skeleton: what [`locate_root`] looks for, and a member
    /// crate that is not xtask.
    fn skeleton(root: &Path) {
        for dir in ["xtask/src", "crates/medcap-dataset/src"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/*\", \"xtask\"]\n",
        )
        .unwrap();
        fs::write(
            root.join("xtask/Cargo.toml"),
            "[package]\nname = \"xtask\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        fs::write(
            root.join("crates/medcap-dataset/Cargo.toml"),
            "[package]\nname = \"medcap-dataset\"\n",
        )
        .unwrap();
    }

    #[test]
    fn runtime_manifest_dir_wins_when_it_is_xtask() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("checkout");
        skeleton(&root);
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        let found = locate_root(Some(&root.join("xtask")), &elsewhere).unwrap();
        assert_eq!(found, root);
    }

    #[test]
    fn stale_manifest_dir_falls_back_to_the_working_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("moved");
        skeleton(&root);
        let gone = tmp.path().join("old-name/xtask");
        let cwd = root.join("crates/medcap-dataset/src");
        assert_eq!(locate_root(Some(&gone), &cwd).unwrap(), root);
        // A manifest dir of another package is not xtask's either.
        let other = root.join("crates/medcap-dataset");
        assert_eq!(locate_root(Some(&other), &cwd).unwrap(), root);
    }

    #[test]
    fn walks_up_past_member_manifests_to_the_workspace() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("w");
        skeleton(&root);
        let cwd = root.join("crates/medcap-dataset");
        assert_eq!(locate_root(None, &cwd).unwrap(), root);
        assert_eq!(locate_root(None, &root).unwrap(), root);
    }

    #[test]
    fn a_workspace_without_xtask_is_not_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("w");
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        let err = locate_root(None, &root).unwrap_err().to_string();
        assert!(err.contains("cannot find the medcap workspace"), "{err}");
        assert!(err.contains("CARGO_MANIFEST_DIR is not set"), "{err}");
        assert!(err.contains(&root.display().to_string()), "{err}");
    }

    #[test]
    fn relative_target_dirs_are_read_against_the_users_directory() {
        let cwd = Path::new("/home/u/project/crates");
        let env = |key: &str| match key {
            "CARGO_TARGET_DIR" => Some(OsString::from("../tgt")),
            "CARGO_BUILD_TARGET_DIR" => Some(OsString::from("/abs/target")),
            _ => None,
        };
        assert_eq!(
            target_dir_overrides(cwd, env),
            vec![("CARGO_TARGET_DIR", cwd.join("../tgt"))]
        );
        assert!(target_dir_overrides(cwd, |_| Some(OsString::new())).is_empty());
        assert!(target_dir_overrides(cwd, |_| None).is_empty());
    }
}
