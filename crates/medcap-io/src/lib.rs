//! Files as medcap writes and reads them, in one place for every crate:
//!
//! - [`write_atomic`], [`write_atomic_with`] and [`write_atomic_via`]: a
//!   temporary file in the target's directory, written, flushed and synced,
//!   then renamed over the target, and the directory synced, so that a
//!   reader (or a rerun after a crash or a full disk) sees the old file or
//!   the new one, never half of one.
//! - [`replace_dir`]: the same for a whole directory (a training
//!   checkpoint), swapped in by renames with the previous one kept until the
//!   new one is in place.
//! - [`config`]: TOML or JSON configuration files, by extension, with
//!   unknown keys left to the type's serde attributes and relative paths
//!   resolved against the file's directory.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("table1.md");
//! medcap_io::write_atomic(&path, b"| Model | BLEU |\n")?;
//! assert_eq!(std::fs::read_to_string(&path)?, "| Model | BLEU |\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;
pub mod crash;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file operation that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct IoError {
    /// The file or directory.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    /// A closure for `map_err` that attaches `path`.
    pub fn at(path: &Path) -> impl FnOnce(std::io::Error) -> IoError + '_ {
        move |source| IoError {
            path: path.to_owned(),
            source,
        }
    }
}

/// The last component of `path`, which must name a file or directory.
fn file_name(path: &Path) -> Result<&std::ffi::OsStr, IoError> {
    path.file_name().ok_or_else(|| IoError {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name (the path ends in `..` or is a root)",
        ),
    })
}

/// `.NAME.PID.partial` beside `path`: hidden, and distinct per process so
/// that two runs never write the same temporary file.
fn temporary_beside(path: &Path) -> Result<PathBuf, IoError> {
    let name = file_name(path)?.to_string_lossy();
    Ok(path.with_file_name(format!(".{name}.{}.partial", std::process::id())))
}

/// The directory that holds `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Syncs a directory, so that a rename in it survives a power cut. On
/// systems where a directory cannot be opened for syncing this is a no-op.
pub fn sync_dir(dir: &Path) -> Result<(), IoError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(IoError::at(dir))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Renames the finished temporary `from` over `to` and syncs the directory.
fn commit(from: &Path, to: &Path) -> Result<(), IoError> {
    std::fs::rename(from, to).map_err(IoError::at(to))?;
    sync_dir(parent_of(to))
}

/// Writes `contents` to `path` atomically (see the crate docs).
///
/// # Errors
/// [`IoError`] naming the path when the directory does not exist or is not
/// writable, or the disk is full; the previous file, if any, is untouched
/// and no temporary file is left.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), IoError> {
    write_atomic_with(path, |out| {
        out.write_all(contents).map_err(IoError::at(path))
    })
}

/// Writes `value` as pretty JSON with a final newline to `path`,
/// atomically. A value that cannot be serialized (a map with non-string
/// keys) is an error, never an empty file.
///
/// # Errors
/// As [`write_atomic`], with serialization failures as
/// [`std::io::ErrorKind::InvalidData`].
pub fn write_json_atomic<T: serde::Serialize + ?Sized>(
    path: &Path,
    value: &T,
) -> Result<(), IoError> {
    write_atomic_with(path, |out| {
        serde_json::to_writer_pretty(&mut *out, value)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(IoError::at(path))
    })
}

/// Writes `path` atomically through `write`, which receives a buffered
/// writer on the temporary file; its error type only needs to take an
/// [`IoError`].
///
/// # Errors
/// `write`'s error, or an [`IoError`] of creating, flushing, syncing or
/// renaming; the previous file is then untouched and the temporary removed.
pub fn write_atomic_with<E: From<IoError>>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
) -> Result<(), E> {
    write_atomic_via(path, |temporary| {
        let file = File::create(temporary).map_err(IoError::at(temporary))?;
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        out.flush().map_err(IoError::at(temporary))?;
        Ok(())
    })
}

/// Writes `path` atomically through a function that writes a file at the
/// path it is given (a library that only writes to paths, such as
/// safetensors through libtorch); the file is then synced and renamed.
///
/// # Errors
/// As [`write_atomic_with`].
pub fn write_atomic_via<E: From<IoError>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let temporary = temporary_beside(path)?;
    let result = write(&temporary).and_then(|()| {
        File::open(&temporary)
            .and_then(|f| f.sync_all())
            .map_err(IoError::at(&temporary))?;
        crash::point("atomic-write");
        Ok(commit(&temporary, path)?)
    });
    if result.is_err() {
        // The previous file is untouched; leave no debris beside it.
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Copies the file `from` to `to` atomically (a report's figure, an image
/// beside a page).
///
/// # Errors
/// An [`IoError`] naming `from` when it cannot be read, else as
/// [`write_atomic`].
pub fn copy_atomic(from: &Path, to: &Path) -> Result<(), IoError> {
    write_atomic_via(to, |temporary| {
        std::fs::copy(from, temporary)
            .map(|_| ())
            .map_err(IoError::at(from))
    })
}

/// Replaces the directory `target` with one that `fill` writes: `fill`
/// gets a fresh temporary directory beside `target`; once it returns, the
/// files in it are synced and it is renamed into place. The previous
/// `target` is moved to `TARGET.old` first and removed last, so at every
/// moment one complete directory exists ([`recover_dir`] finds it).
///
/// # Errors
/// `fill`'s error or an [`IoError`]; on error the previous `target` is
/// untouched and the temporary directory removed.
pub fn replace_dir<E: From<IoError>>(
    target: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let partial = temporary_beside(target)?;
    let old = old_copy(target)?;
    remove_stale_partials(target)?;
    std::fs::create_dir_all(&partial).map_err(IoError::at(&partial))?;
    let filled = fill(&partial).and_then(|()| Ok(sync_tree(&partial)?));
    if let Err(e) = filled {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    if target.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(IoError::at(&old))?;
        }
        std::fs::rename(target, &old).map_err(IoError::at(target))?;
    }
    crash::point("directory-swap");
    commit(&partial, target)?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(IoError::at(&old))?;
    }
    Ok(())
}

/// Removes the temporary directories of earlier swaps of `target` that a
/// killed process left (`.NAME.PID.partial`, any PID): never complete, they
/// would otherwise pile up, a checkpoint's size each.
fn remove_stale_partials(target: &Path) -> Result<(), IoError> {
    let name = file_name(target)?.to_string_lossy().into_owned();
    let (prefix, parent) = (format!(".{name}."), parent_of(target));
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&prefix) && file.ends_with(".partial") {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(IoError::at(&path))?;
        }
    }
    Ok(())
}

/// `TARGET.old`: where [`replace_dir`] keeps the previous directory while
/// it swaps.
fn old_copy(target: &Path) -> Result<PathBuf, IoError> {
    let name = file_name(target)?.to_string_lossy();
    Ok(target.with_file_name(format!("{name}.old")))
}

/// The complete copy of a directory that [`replace_dir`] writes: `target`
/// itself when `is_complete(target)`, else the `.old` copy a swap
/// interrupted between its two renames left, when that is complete.
pub fn recover_dir(target: &Path, is_complete: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    if is_complete(target) {
        return Some(target.to_owned());
    }
    let old = old_copy(target).ok()?;
    is_complete(&old).then_some(old)
}

/// Syncs every file under `dir`, then `dir` itself.
fn sync_tree(dir: &Path) -> Result<(), IoError> {
    for entry in std::fs::read_dir(dir).map_err(IoError::at(dir))? {
        let entry = entry.map_err(IoError::at(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(IoError::at(&path))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(IoError::at(&path))?;
        }
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomic_with(&path, |out| {
            out.write_all(b"partial").unwrap();
            Err(IoError::at(&path)(std::io::Error::other("disk full")))
        });
        assert!(err.unwrap_err().to_string().contains("disk full"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(entries(dir.path()), ["out.txt"]);
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(entries(dir.path()), ["out.txt"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_temporary_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent/out.txt");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert!(err.path.starts_with(dir.path().join("absent")), "{err}");
        assert_eq!(err.source.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let err = write_atomic(Path::new("/"), b"x").unwrap_err();
        assert_eq!(err.source.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn json_is_written_pretty_and_a_value_json_cannot_hold_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_json_atomic(&path, &serde_json::json!({"step": 3})).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"step\": 3\n}\n"
        );
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3);
        let err = write_json_atomic(&path, &bad).unwrap_err();
        assert_eq!(err.source.kind(), std::io::ErrorKind::InvalidData);
        assert!(std::fs::read_to_string(&path).unwrap().contains("step"));
    }

    #[test]
    fn a_copy_replaces_the_target_whole_and_a_missing_source_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("loss.svg"), dir.path().join("figure.svg"));
        std::fs::write(&from, "<svg/>").unwrap();
        std::fs::write(&to, "old").unwrap();
        copy_atomic(&from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "<svg/>");
        let err = copy_atomic(&dir.path().join("none.svg"), &to).unwrap_err();
        assert!(err.path.ends_with("none.svg"), "{err}");
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "<svg/>");
        assert_eq!(entries(dir.path()), ["figure.svg", "loss.svg"]);
    }

    #[test]
    fn write_via_a_path_commits_what_the_writer_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        write_atomic_via(&path, |tmp| {
            assert_ne!(tmp, path);
            std::fs::write(tmp, b"weights").map_err(IoError::at(tmp))
        })
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"weights");
        assert_eq!(entries(dir.path()), ["model.safetensors"]);
    }

    #[test]
    fn a_directory_swap_keeps_the_previous_directory_until_the_new_one_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("latest");
        let complete = |d: &Path| d.join("state.json").is_file();
        replace_dir(&target, |d| write_atomic(&d.join("state.json"), b"1")).unwrap();
        let failed = replace_dir(&target, |d| {
            write_atomic(&d.join("weights"), b"half")?;
            Err(IoError::at(d)(std::io::Error::other("disk full")))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(target.join("state.json")).unwrap(), b"1");
        assert_eq!(entries(dir.path()), ["latest"]);
        replace_dir(&target, |d| write_atomic(&d.join("state.json"), b"2")).unwrap();
        assert_eq!(std::fs::read(target.join("state.json")).unwrap(), b"2");
        assert_eq!(entries(dir.path()), ["latest"]);
        assert_eq!(recover_dir(&target, complete), Some(target.clone()));
        // A swap killed before its renames left its temporary directory: the
        // next swap removes it.
        std::fs::create_dir_all(dir.path().join(".latest.99999.partial/x")).unwrap();
        replace_dir(&target, |d| write_atomic(&d.join("state.json"), b"3")).unwrap();
        assert_eq!(entries(dir.path()), ["latest"]);
        // A swap interrupted between its renames: only `latest.old` is complete.
        std::fs::rename(&target, dir.path().join("latest.old")).unwrap();
        assert_eq!(
            recover_dir(&target, complete),
            Some(dir.path().join("latest.old"))
        );
    }
}
