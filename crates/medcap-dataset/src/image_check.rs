//! Figure images: a safe path from JSON fields, and a check that the file
//! decodes to a sensible picture.
//!
//! The image path is built from `pdf_hash` and `fig_uri`, both untrusted. A
//! name with a separator or `..`, an absolute path, or a symlink that leads
//! out of the figures directory is rejected before anything is opened.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

/// Why a figure's image cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ImageProblem {
    /// The path built from the record leaves the figures directory.
    OutsideRoot(String),
    /// No file at the path.
    Missing(String),
    /// The file exists but cannot be read or decoded (truncated, not an image).
    Undecodable(String),
    /// The image decodes but its size is implausible for a figure.
    BadDimensions(String),
}

impl ImageProblem {
    /// A short name of the kind of problem, for counts and CSV columns.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OutsideRoot(_) => "image_outside_root",
            Self::Missing(_) => "image_missing",
            Self::Undecodable(_) => "image_undecodable",
            Self::BadDimensions(_) => "image_bad_dimensions",
        }
    }

    /// The detail message.
    pub fn detail(&self) -> &str {
        match self {
            Self::OutsideRoot(d)
            | Self::Missing(d)
            | Self::Undecodable(d)
            | Self::BadDimensions(d) => d,
        }
    }
}

impl std::fmt::Display for ImageProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind(), self.detail())
    }
}

/// Size limits that separate a figure from a broken or hostile file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Smallest accepted width and height, in pixels.
    pub min_side: u32,
    /// Largest accepted width and height, in pixels.
    pub max_side: u32,
    /// Largest accepted ratio of the longer side to the shorter.
    pub max_aspect: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        // MedICaT figures are a few hundred pixels on a side; anything far
        // outside this is a rendering failure or a decompression bomb.
        Self {
            min_side: 16,
            max_side: 12_000,
            max_aspect: 25,
        }
    }
}

/// The path `{figures_dir}/{pdf_hash}_{fig_uri}`, provided the name is a
/// plain file name: no separators, no `..`, not absolute. Touches no file.
pub fn image_path(
    figures_dir: &Path,
    pdf_hash: &str,
    fig_uri: &str,
) -> Result<PathBuf, ImageProblem> {
    let name = format!("{pdf_hash}_{fig_uri}");
    let relative = Path::new(&name);
    let mut components = relative.components();
    let plain = matches!(components.next(), Some(Component::Normal(_)))
        && components.next().is_none()
        && !name.contains(['/', '\\', '\0']);
    if plain {
        Ok(figures_dir.join(relative))
    } else {
        Err(ImageProblem::OutsideRoot(format!(
            "`{name}` is not a plain file name"
        )))
    }
}

/// `root/relative`, provided `relative` (a name from a release file, `/`
/// separated) has only plain components: no `..`, not absolute, no
/// backslash or NUL. Touches no file.
pub fn confined_path(root: &Path, relative: &str) -> Result<PathBuf, ImageProblem> {
    let path = Path::new(relative);
    let plain = !relative.is_empty()
        && !relative.contains(['\\', '\0'])
        && path.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(root.join(path))
    } else {
        Err(ImageProblem::OutsideRoot(format!(
            "`{relative}` is not a relative path inside the release"
        )))
    }
}

/// An image path on disk: it must exist and, when `root` is given (canonical),
/// stay inside it once symlinks are followed.
pub fn resolve_path(path: &Path, root: Option<&Path>) -> Result<PathBuf, ImageProblem> {
    match (std::fs::canonicalize(path), root) {
        (Ok(real), Some(root)) if !real.starts_with(root) => {
            Err(ImageProblem::OutsideRoot(format!(
                "{} resolves to {}, outside {}",
                path.display(),
                real.display(),
                root.display()
            )))
        }
        (Ok(_), _) => Ok(path.to_owned()),
        (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => Err(ImageProblem::Missing(
            format!("{} does not exist", path.display()),
        )),
        (Err(e), _) => Err(ImageProblem::Undecodable(format!(
            "{}: {e}",
            path.display()
        ))),
    }
}

/// Resolves [`image_path`] on disk: the file must exist and, symlinks
/// followed, stay inside `figures_dir`, which must already be canonical
/// (see [`std::fs::canonicalize`]).
pub fn resolve_image(
    figures_dir: &Path,
    pdf_hash: &str,
    fig_uri: &str,
) -> Result<PathBuf, ImageProblem> {
    resolve_path(
        &image_path(figures_dir, pdf_hash, fig_uri)?,
        Some(figures_dir),
    )
}

/// Checks that the file decodes fully, with the decoder the models use
/// ([`medcap_image`], Pillow's pixels), and that its size is within
/// `limits`. Returns the width and height.
pub fn check_image(path: &Path, limits: ImageLimits) -> Result<(u32, u32), ImageProblem> {
    let undecodable =
        |what: String| ImageProblem::Undecodable(format!("{}: {what}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| undecodable(e.to_string()))?;
    // The header alone gives the size; judge it before decoding, so that a
    // decompression bomb is never expanded.
    let (_, w, h) = medcap_image::dimensions(&bytes).map_err(|e| undecodable(e.to_string()))?;
    let (short, long) = (w.min(h), w.max(h));
    if short < limits.min_side
        || long > limits.max_side
        || long > short.saturating_mul(limits.max_aspect)
    {
        return Err(ImageProblem::BadDimensions(format!(
            "{}: {w}x{h} px is outside {}..={} px per side or beyond aspect {}:1",
            path.display(),
            limits.min_side,
            limits.max_side,
            limits.max_aspect
        )));
    }
    medcap_image::decode(&bytes).map_err(|e| undecodable(e.to_string()))?;
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_names_that_are_not_plain_files() {
        let root = Path::new("/data/figures");
        for uri in ["../x.png", "a/b.png", "/etc/passwd", "x\\..\\y.png"] {
            let err = resolve_image(root, "abc", uri);
            assert!(
                matches!(err, Err(ImageProblem::OutsideRoot(_))),
                "{uri}: {err:?}"
            );
        }
        assert!(matches!(
            resolve_image(root, "..", "/x.png"),
            Err(ImageProblem::OutsideRoot(_))
        ));
        assert!(matches!(
            resolve_image(root, "a/..", "x"),
            Err(ImageProblem::OutsideRoot(_))
        ));
    }

    #[test]
    fn limits_reject_slivers_and_giants() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("thin.png");
        image::GrayImage::new(400, 8).save(&path).unwrap();
        assert!(matches!(
            check_image(&path, ImageLimits::default()),
            Err(ImageProblem::BadDimensions(_))
        ));
        let path = dir.path().join("ok.png");
        image::GrayImage::new(64, 48).save(&path).unwrap();
        assert_eq!(check_image(&path, ImageLimits::default()), Ok((64, 48)));
    }
}
