//! The one rule for paths that medcap writes into files (split CSVs, run
//! configurations, stage records, evaluation rows), and the one way to read
//! them back.
//!
//! A stored path is relative to the directory of the file that holds it,
//! unless the user gave it as an absolute path to something outside the
//! directory tree that the writer owns (its output directory): that one is
//! stored absolute, as given. So an output directory can be moved or copied
//! as a whole and every link inside it still resolves, and a link to a
//! release elsewhere on disk that the user named absolutely keeps working
//! wherever the output goes. Readers resolve a relative stored path against
//! the holding file's directory, never against the working directory.

use std::path::{Component, Path, PathBuf};

/// `path` made absolute against the working directory, with `.` and `..`
/// removed, and symbolic links resolved when the path exists (so that two
/// spellings of one directory compare equal).
///
/// # Errors
/// When the working directory cannot be read.
pub fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    // The parent of a bare file name is the empty path: the working directory.
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    if let Ok(canonical) = std::fs::canonicalize(path) {
        return Ok(canonical);
    }
    let joined = std::path::absolute(path)?;
    // The longest existing ancestor is canonicalised, so that a file that
    // does not exist yet compares equal with its existing siblings.
    let normal = normalize(&joined);
    let mut existing = normal.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(normal),
        }
    }
    let mut out = std::fs::canonicalize(existing).unwrap_or_else(|_| existing.to_owned());
    for name in rest.iter().rev() {
        out.push(name);
    }
    Ok(out)
}

/// Lexically removes `.` and resolves `..` against the preceding component.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `target` relative to `base`, both absolute and normalised.
fn relative_to(target: &Path, base: &Path) -> PathBuf {
    let target: Vec<Component> = target.components().collect();
    let base: Vec<Component> = base.components().collect();
    let common = target.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for c in &target[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Writes paths into files of one directory, by the module's rule.
#[derive(Debug, Clone)]
pub struct PathWriter {
    dir: PathBuf,
    trees: Vec<PathBuf>,
}

impl PathWriter {
    /// A writer for files in `file_dir` (which need not exist yet).
    ///
    /// # Errors
    /// When the working directory cannot be read.
    pub fn new(file_dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            dir: absolute(file_dir)?,
            trees: Vec::new(),
        })
    }

    /// Paths inside `tree` (the writer's output directory, or an input the
    /// user named by a relative path) are stored relative even when they are
    /// absolute in memory. May be called more than once.
    ///
    /// # Errors
    /// When the working directory cannot be read.
    pub fn within(mut self, tree: &Path) -> std::io::Result<Self> {
        self.trees.push(absolute(tree)?);
        Ok(self)
    }

    /// The stored form of `path` (a path as the process sees it: absolute,
    /// or relative to the working directory).
    ///
    /// # Errors
    /// When the working directory cannot be read.
    pub fn store(&self, path: &Path) -> std::io::Result<String> {
        let full = absolute(path)?;
        let inside = self.trees.iter().any(|t| full.starts_with(t));
        let stored = if path.is_relative() || inside {
            relative_to(&full, &self.dir)
        } else {
            full
        };
        Ok(stored.display().to_string())
    }

    /// [`store`](Self::store) for an optional path.
    ///
    /// # Errors
    /// When the working directory cannot be read.
    pub fn store_opt(&self, path: Option<&Path>) -> std::io::Result<Option<String>> {
        path.map(|p| self.store(p)).transpose()
    }
}

/// Where a path stored in a file in `file_dir` points: an absolute stored
/// path as it is, a relative one joined to `file_dir` (so the result is
/// relative to the working directory exactly when `file_dir` is).
pub fn resolve(stored: impl AsRef<Path>, file_dir: &Path) -> PathBuf {
    let stored = stored.as_ref();
    if stored.is_absolute() {
        stored.to_owned()
    } else {
        let joined = file_dir.join(stored);
        // Keep `..` that climb above a relative `file_dir`'s start.
        if joined.is_absolute() {
            normalize(&joined)
        } else {
            joined
        }
    }
}

/// The directory of `file` (`.` for a bare file name).
pub fn parent_dir(file: &Path) -> &Path {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_inside_the_tree_are_stored_relative_and_resolve_after_a_move() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(out.join("data/prepared")).unwrap();
        std::fs::create_dir_all(out.join("data/synthetic/figures")).unwrap();
        std::fs::write(out.join("data/synthetic/figures/a.png"), b"x").unwrap();
        let writer = PathWriter::new(&out.join("data/prepared"))
            .unwrap()
            .within(&out)
            .unwrap();
        let stored = writer
            .store(&out.join("data/synthetic/figures/a.png"))
            .unwrap();
        assert_eq!(stored, "../synthetic/figures/a.png");
        let moved = tmp.path().join("moved");
        std::fs::rename(&out, &moved).unwrap();
        let back = resolve(&stored, &moved.join("data/prepared"));
        assert_eq!(back, moved.join("data/synthetic/figures/a.png"));
        assert!(back.is_file());
    }

    #[test]
    fn absolute_paths_outside_the_tree_stay_absolute() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("release/figures/a.png");
        let writer = PathWriter::new(&tmp.path().join("out"))
            .unwrap()
            .within(&tmp.path().join("out"))
            .unwrap();
        let stored = writer.store(&elsewhere).unwrap();
        assert!(Path::new(&stored).is_absolute(), "{stored}");
        assert_eq!(resolve(&stored, Path::new("anything")), Path::new(&stored));
    }

    #[test]
    fn relative_paths_are_rebased_on_the_holding_directory() {
        // Both relative to the working directory: out/ and release/ are siblings.
        let writer = PathWriter::new(Path::new("some-out/prepared")).unwrap();
        let stored = writer
            .store(Path::new("release/./figures/../figures/a.png"))
            .unwrap();
        assert_eq!(stored, "../../release/figures/a.png");
        assert_eq!(
            resolve(&stored, Path::new("/x/some-out/prepared")),
            Path::new("/x/release/figures/a.png")
        );
        // A relative holder keeps the result relative to the working directory.
        assert_eq!(
            resolve(&stored, Path::new("some-out/prepared")),
            Path::new("some-out/prepared/../../release/figures/a.png")
        );
    }

    #[test]
    fn the_empty_parent_of_a_bare_file_name_is_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(absolute(Path::new("")).unwrap(), absolute(&cwd).unwrap());
        let writer = PathWriter::new(Path::new(""))
            .unwrap()
            .within(Path::new(""))
            .unwrap();
        assert_eq!(writer.store(Path::new("data/x.csv")).unwrap(), "data/x.csv");
    }

    #[test]
    fn a_file_beside_its_holder_is_a_bare_name_and_the_holder_itself_is_dot() {
        let tmp = tempfile::tempdir().unwrap();
        let writer = PathWriter::new(tmp.path())
            .unwrap()
            .within(tmp.path())
            .unwrap();
        assert_eq!(writer.store(&tmp.path().join("x.csv")).unwrap(), "x.csv");
        assert_eq!(writer.store(tmp.path()).unwrap(), ".");
        assert_eq!(parent_dir(Path::new("x.csv")), Path::new("."));
    }
}
