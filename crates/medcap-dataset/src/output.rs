//! Atomic file output of the data sets (CSV, JSON) on medcap-io's one atomic
//! write: a reader never sees half a file, and an interrupted run leaves the
//! previous file in place.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::error::DatasetError;

/// Writes `path` through `write` atomically ([`medcap_io::write_atomic_with`]:
/// temporary file, fsync, rename, fsync of the directory).
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), DatasetError>,
) -> Result<(), DatasetError> {
    medcap_io::write_atomic_with(path, write)
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
    Ok(medcap_io::write_json_atomic(path, value)?)
}
