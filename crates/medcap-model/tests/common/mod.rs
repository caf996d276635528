//! Helpers shared by the model tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `data-fixtures/blip`: tiny checkpoints, images, resized images and the
/// golden outputs of transformers and Pillow (`gen.py` beside them).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip")
}
