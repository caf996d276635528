//! File and directory names of the MedICaT release.

/// The top-level directory inside `medicat_release.tar.gz`.
pub const RELEASE_DIR: &str = "release";
/// The figures directory inside the release: `{pdf_hash}_{fig_uri}` files.
pub const FIGURES_DIR: &str = "figures";
/// The one metadata file, one JSON object per line.
pub const JSONL_NAME: &str = "s2_full_figures_oa_nonroco_combined_medical_top4_public.jsonl";
