//! Atomic file output: a reader never sees half a file, and an interrupted
//! run leaves the previous file in place.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::DatasetError;

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `path` through `write`, via a temporary file in the same directory
/// that is renamed over `path` only once everything is written and synced.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), DatasetError>,
) -> Result<(), DatasetError> {
    let tmp = temp_path(path);
    let result = (|| {
        let file = File::create(&tmp).map_err(DatasetError::io(&tmp))?;
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        out.flush().map_err(DatasetError::io(&tmp))?;
        out.get_ref().sync_all().map_err(DatasetError::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(DatasetError::io(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `rows` as a CSV with a header, atomically.
pub(crate) fn write_csv<T: serde::Serialize>(
    path: &Path,
    rows: impl Iterator<Item = T>,
) -> Result<(), DatasetError> {
    write_atomic(path, |out| {
        let mut csv = csv::Writer::from_writer(out);
        for row in rows {
            csv.serialize(row).map_err(|source| DatasetError::Csv {
                path: path.to_owned(),
                source,
            })?;
        }
        csv.flush().map_err(DatasetError::io(path))
    })
}

/// Writes `value` as pretty JSON, atomically.
pub(crate) fn write_json_atomic<T: serde::Serialize>(
    path: &Path,
    value: &T,
) -> Result<(), DatasetError> {
    write_atomic(path, |out| {
        serde_json::to_writer_pretty(&mut *out, value).map_err(|source| DatasetError::Json {
            path: path.to_owned(),
            source,
        })?;
        out.write_all(b"\n").map_err(DatasetError::io(path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomic(&path, |out| {
            out.write_all(b"partial").unwrap();
            Err(DatasetError::io(&path)(std::io::Error::other("boom")))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomic(&path, |out| {
            out.write_all(b"new").map_err(DatasetError::io(&path))
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }
}
