//! MedICaT: the release JSONL, streamed in parallel batches, and the
//! `figures/` directory with `{pdf_hash}_{fig_uri}` images. Grouped by
//! `pdf_hash`, the source paper.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Batch, Source, SourceFigure};
use crate::error::DatasetError;
use crate::image_check::image_path;
use crate::layout;
use crate::reader::JsonlBatches;
use crate::record::FigureRecord;

/// Where a MedICaT release's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseLayout {
    /// The figure JSONL.
    pub jsonl: PathBuf,
    /// The figures directory.
    pub figures_dir: PathBuf,
}

/// Finds the release in `root`: either `root` is the `release/` directory
/// itself or it contains one.
///
/// # Errors
/// [`DatasetError::NoJsonl`] when neither holds the JSONL; I/O errors.
pub fn locate_release(root: &Path) -> Result<ReleaseLayout, DatasetError> {
    std::fs::read_dir(root).map_err(DatasetError::io(root))?;
    for dir in [root.to_owned(), root.join(layout::RELEASE_DIR)] {
        let jsonl = dir.join(layout::JSONL_NAME);
        if jsonl.is_file() {
            return Ok(ReleaseLayout {
                jsonl,
                figures_dir: dir.join(layout::FIGURES_DIR),
            });
        }
    }
    Err(DatasetError::NoJsonl {
        root: root.to_owned(),
        expected: layout::JSONL_NAME,
    })
}

pub(super) fn open(input: &Path) -> Result<Source, DatasetError> {
    let release = locate_release(input)?;
    // Canonical, so that symlinks out of it can be recognised; a missing
    // figures directory is not fatal: every image is then reported missing.
    let figures_dir =
        std::fs::canonicalize(&release.figures_dir).unwrap_or(release.figures_dir.clone());
    let file = File::open(&release.jsonl).map_err(DatasetError::io(&release.jsonl))?;
    let jsonl = release.jsonl.clone();
    let root = figures_dir.clone();
    let batches = JsonlBatches::new(BufReader::with_capacity(1 << 20, file), 8_192).map(
        move |batch| -> Result<Batch, DatasetError> {
            let batch = batch.map_err(DatasetError::io(&jsonl))?;
            Ok(batch
                .into_par_iter()
                .map(|(line, parsed)| (line, parsed.map(|r| figure(&r, line, &jsonl, &root))))
                .collect())
        },
    );
    Ok(Source {
        main_file: release.jsonl,
        image_root: Some(figures_dir),
        batches: Box::new(batches),
    })
}

fn figure(record: &FigureRecord, line: u64, file: &Path, figures_dir: &Path) -> SourceFigure {
    SourceFigure {
        id: record.id(),
        group: record.pdf_hash.clone(),
        line,
        file: file.to_owned(),
        image: image_path(figures_dir, &record.pdf_hash, &record.fig_uri),
        caption: record.caption().unwrap_or_default().to_owned(),
        license: record.license().unwrap_or_default().to_owned(),
        published: None,
    }
}
