//! Image files decoded as Pillow decodes them, and converted to RGB as
//! Pillow's `Image.convert("RGB")` converts them.
//!
//! transformers' `BlipImageProcessor` receives a Pillow image and calls
//! `convert("RGB")` on it; a caption depends on every pixel of that result.
//! This crate gives the same pixels, bit for bit, for the files users bring:
//!
//! - **JPEG** through libjpeg-turbo's decoder (the `mozjpeg` fork, built from
//!   C sources), with Pillow's settings: the accurate integer IDCT, "fancy"
//!   upsampling of subsampled chroma (4:2:0, 4:2:2, 4:1:1, 4:4:0),
//!   progressive and restart-marker files. One channel is greyscale (`L`),
//!   three are RGB, four are CMYK (`YCCK` is turned into CMYK by the decoder),
//!   which Pillow reads as Adobe-inverted CMYK (`CMYK;I`) and converts with its
//!   own formula (see [`jpeg`]).
//! - **PNG** in every mode Pillow reads ([`png`]): `1`, `L` (and 2- and 4-bit
//!   grey), `LA`, `P` with or without transparency, `RGB`, `RGBA`, 16-bit
//!   greyscale (`I;16`: values above 255 become 255, as Pillow clips them),
//!   16-bit colour and grey with alpha (the high byte of each sample is kept).
//!   Alpha is dropped, never composited. An animated PNG gives its first frame.
//!
//! What it does not do, on purpose, because `BlipImageProcessor` on
//! `Image.open(path)` does not: it ignores the EXIF orientation tag (the
//! pixels come as stored; transformers' `load_image`, used by its pipelines,
//! would rotate them: rotate the file first to get that), ICC profiles and PNG
//! gamma. Other formats (GIF, BMP, TIFF, WebP) are refused with an error.
//!
//! Parity is tested against Pillow 13 on the fixtures of
//! `data-fixtures/images` (their generator is `gen.py` there).
//!
//! ```no_run
//! let image = medcap_image::RgbImage::open("figure.jpg".as_ref())?;
//! assert_eq!(image.pixels.len(), 3 * image.width * image.height);
//! # Ok::<(), medcap_image::ImageError>(())
//! ```

pub mod jpeg;
pub mod png;

use std::path::{Path, PathBuf};

/// Pillow's `Image.MAX_IMAGE_PIXELS`: above twice this many pixels Pillow
/// raises `DecompressionBombError` instead of decoding, and so does this crate
/// (before it allocates the pixels).
pub const PILLOW_MAX_IMAGE_PIXELS: u64 = 1024 * 1024 * 1024 / 4 / 3;

/// A decoded image, converted to RGB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Packed RGB bytes, row-major (`3 * width * height`).
    pub pixels: Vec<u8>,
}

/// A decoded file: its RGB pixels and what they were made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The pixels after Pillow's `convert("RGB")`.
    pub image: RgbImage,
    /// The file's format.
    pub format: Format,
    /// The mode Pillow gives the file on `Image.open` (`"RGB"`, `"L"`,
    /// `"CMYK"`, `"I;16"`, `"P"`, ...).
    pub pillow_mode: &'static str,
    /// Samples that `convert("RGB")` clipped to 255 (16-bit greyscale only):
    /// a non-zero count means the picture lost its upper range.
    pub clipped_samples: usize,
}

/// The formats this crate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG (JFIF, Exif, Adobe).
    Jpeg,
    /// PNG, including APNG (first frame).
    Png,
}

/// Why bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Neither a JPEG nor a PNG signature.
    #[error("not a PNG or JPEG image")]
    UnknownFormat,
    /// The data ends before the last row (Pillow: "image file is truncated").
    #[error("image file is truncated")]
    Truncated,
    /// More pixels than Pillow accepts.
    #[error(
        "{width}x{height} px exceeds the limit of {limit} pixels (Pillow's decompression-bomb limit)"
    )]
    TooLarge {
        /// Columns the header declares.
        width: u64,
        /// Rows the header declares.
        height: u64,
        /// The limit in pixels.
        limit: u64,
    },
    /// A layout Pillow does not read either (a JPEG with 2 channels).
    #[error("unsupported image: {0}")]
    Unsupported(String),
    /// The decoder's own error message.
    #[error("{0}")]
    Corrupt(String),
}

/// A file that cannot be read or decoded, named.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file's bytes do not decode.
    #[error("{}: cannot decode: {reason}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: DecodeError,
    },
}

/// Decodes a JPEG or PNG held in memory (the format comes from the
/// signature, not a file name).
///
/// # Errors
/// [`DecodeError`] for an unknown format, a truncated or corrupt file, an
/// image above [`PILLOW_MAX_IMAGE_PIXELS`] × 2, or a layout Pillow refuses.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        jpeg::decode(bytes)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png::decode(bytes)
    } else {
        Err(DecodeError::UnknownFormat)
    }
}

/// The format and size (width, height) a file's header declares, without
/// decoding its pixels: enough to refuse a decompression bomb or an
/// implausible figure before any allocation.
///
/// # Errors
/// [`DecodeError`] for an unknown format or an unreadable header.
pub fn dimensions(bytes: &[u8]) -> Result<(Format, u32, u32), DecodeError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let (w, h) = jpeg::dimensions(bytes)?;
        Ok((Format::Jpeg, w, h))
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let (w, h) = png::dimensions(bytes)?;
        Ok((Format::Png, w, h))
    } else {
        Err(DecodeError::UnknownFormat)
    }
}

/// Refuses a size above Pillow's decompression-bomb limit.
pub(crate) fn check_size(width: u64, height: u64) -> Result<(), DecodeError> {
    let limit = 2 * PILLOW_MAX_IMAGE_PIXELS;
    if width.saturating_mul(height) > limit {
        return Err(DecodeError::TooLarge {
            width,
            height,
            limit,
        });
    }
    Ok(())
}

impl RgbImage {
    /// Reads and decodes `path` (see [`decode`]). A 16-bit greyscale file
    /// whose values exceed 255 is clipped as Pillow clips it, with a warning
    /// that names the file.
    ///
    /// # Errors
    /// [`ImageError`] naming the file: unreadable, or not decodable.
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
            path: path.to_owned(),
            source,
        })?;
        let decoded = decode(&bytes).map_err(|reason| ImageError::Decode {
            path: path.to_owned(),
            reason,
        })?;
        if decoded.clipped_samples > 0 {
            tracing::warn!(
                path = %path.display(),
                clipped = decoded.clipped_samples,
                "16-bit greyscale values above 255 become 255, as Pillow's convert(\"RGB\") makes them"
            );
        }
        Ok(decoded.image)
    }
}
