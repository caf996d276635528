//! PNG as Pillow reads it and converts it to RGB.
//!
//! PNG is lossless, so decoding is the `png` crate's job (through `image`);
//! what must follow Pillow is the conversion of each mode to 8-bit RGB:
//!
//! | PNG | Pillow mode | to RGB |
//! |---|---|---|
//! | grey 1 bit | `1` | 0 or 255 |
//! | grey 2, 4, 8 bits | `L` | scaled to 0..255 (2 bits: ×85), replicated |
//! | grey 16 bits | `I;16` | clipped: values above 255 become 255 |
//! | grey + alpha 8 bits | `LA` | grey replicated, alpha dropped |
//! | grey + alpha 16 bits | `RGBA` (from `LA;16B`) | high byte, alpha dropped |
//! | palette | `P` | looked up, transparency dropped |
//! | RGB, RGBA 8 bits | `RGB`, `RGBA` | alpha dropped |
//! | RGB, RGBA 16 bits | `RGB`, `RGBA` | high byte of each sample (0xC8FF is 200) |
//!
//! Alpha is dropped, not composited over a background, as `convert("RGB")`
//! does. An animated PNG gives its default image, which is the first frame
//! `Image.open` shows.

use std::io::Cursor;

use image::codecs::png::PngDecoder;
use image::{DynamicImage, ImageDecoder};

use crate::{DecodeError, Decoded, Format, RgbImage, check_size};

/// Decodes a PNG file's bytes.
///
/// # Errors
/// [`DecodeError::Truncated`] when the data ends early,
/// [`DecodeError::Corrupt`] with the decoder's message,
/// [`DecodeError::TooLarge`].
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    // The declared size first, as Pillow checks it on open: a bomb is
    // refused as one even when the rest of the file is missing.
    if let Some((w, h)) = ihdr_size(bytes) {
        check_size(u64::from(w), u64::from(h))?;
    }
    check_palette(bytes)?;
    // The png crate panics on some malformed files that the checks above do
    // not catch; a user's file must give an error, not end the program.
    std::panic::catch_unwind(|| decode_checked(bytes)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(DecodeError::Corrupt(format!(
            "the PNG decoder failed: {why}"
        )))
    })
}

fn decode_checked(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let decoder = PngDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    check_size(u64::from(w), u64::from(h))?;
    // The header as stored: `PngDecoder` reports the colour type after its
    // expansions (1-bit grey as 8-bit), and Pillow's mode follows the file.
    let (bit_depth, color_type) = (bytes[24], bytes[25]);
    let pillow_mode = pillow_mode(bit_depth, color_type);
    let image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    let (image, clipped_samples) = to_rgb(image, pillow_mode == "I;16");
    Ok(Decoded {
        image,
        format: Format::Png,
        pillow_mode,
        clipped_samples,
    })
}

/// Refuses a PLTE chunk that is not a whole number of RGB entries (at most
/// 256), as the PNG specification and libpng do. The png crate (0.18.1)
/// reads such a palette past its end and panics: fuzzing found a 49-byte
/// PLTE in a 4-bit palette image (`fuzz/regressions/image_decode/`).
fn check_palette(bytes: &[u8]) -> Result<(), DecodeError> {
    let mut at = 8;
    while let Some(header) = bytes.get(at..at + 8) {
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        match &header[4..8] {
            b"PLTE" if !length.is_multiple_of(3) || length > 3 * 256 => {
                return Err(DecodeError::Corrupt(format!(
                    "PLTE chunk of {length} bytes is not a whole number of RGB entries (at most 256)"
                )));
            }
            // The palette comes before the image data; stop there.
            b"PLTE" | b"IDAT" | b"IEND" => return Ok(()),
            _ => at = at.saturating_add(12).saturating_add(length),
        }
    }
    Ok(())
}

/// The size an IHDR chunk right after the signature declares, when the
/// bytes are there.
fn ihdr_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let number = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
    };
    Some((number(16)?, number(20)?))
}

/// The width and height of the IHDR chunk, without decoding.
///
/// # Errors
/// [`DecodeError`] when the header cannot be read.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    if let Some(size) = ihdr_size(bytes) {
        return Ok(size);
    }
    Ok(PngDecoder::new(Cursor::new(bytes))
        .map_err(corrupt)?
        .dimensions())
}

fn corrupt(e: image::ImageError) -> DecodeError {
    match &e {
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Truncated
        }
        _ => {
            let text = e.to_string();
            // The png crate reports a cut-off stream as a format error.
            if text.contains("unexpected end") || text.contains("UnexpectedEof") {
                DecodeError::Truncated
            } else {
                DecodeError::Corrupt(text)
            }
        }
    }
}

/// The mode `Image.open` gives a PNG of this IHDR bit depth and colour
/// type (Pillow's `PngImagePlugin._MODES`); the header was validated by the
/// decoder.
fn pillow_mode(bit_depth: u8, color_type: u8) -> &'static str {
    match (color_type, bit_depth) {
        (0, 1) => "1",
        (0, 16) => "I;16",
        (0, _) => "L",
        (2, _) => "RGB",
        (3, _) => "P",
        (4, 8) => "LA",
        _ => "RGBA",
    }
}

/// Pillow's `convert("RGB")` of a decoded PNG. `grey16` says the file was
/// 16-bit greyscale (`I;16`), whose values Pillow clips instead of taking
/// the high byte. Returns the image and the number of clipped samples.
fn to_rgb(image: DynamicImage, grey16: bool) -> (RgbImage, usize) {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let mut clipped = 0;
    let pixels: Vec<u8> = match image {
        DynamicImage::ImageLuma8(g) => g.into_raw().into_iter().flat_map(|v| [v, v, v]).collect(),
        DynamicImage::ImageLumaA8(g) => g
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        DynamicImage::ImageRgb8(c) => c.into_raw(),
        DynamicImage::ImageRgba8(c) => c
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        DynamicImage::ImageLuma16(g) => grey_16(&g.into_raw(), 1, grey16, &mut clipped),
        DynamicImage::ImageLumaA16(g) => grey_16(&g.into_raw(), 2, grey16, &mut clipped),
        DynamicImage::ImageRgb16(c) => c.into_raw().into_iter().map(high_byte).collect(),
        DynamicImage::ImageRgba16(c) => c
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [high_byte(p[0]), high_byte(p[1]), high_byte(p[2])])
            .collect(),
        // Float images do not come out of a PNG; convert them the image crate's way.
        other => other.to_rgb8().into_raw(),
    };
    (
        RgbImage {
            width,
            height,
            pixels,
        },
        clipped,
    )
}

fn high_byte(v: u16) -> u8 {
    (v >> 8) as u8
}

/// 16-bit grey (with `stride - 1` alpha samples after each) to RGB: clipped
/// for `I;16`, the high byte for grey with alpha.
fn grey_16(samples: &[u16], stride: usize, clip: bool, clipped: &mut usize) -> Vec<u8> {
    samples
        .chunks_exact(stride)
        .flat_map(|p| {
            let v = if clip {
                if p[0] > 255 {
                    *clipped += 1;
                }
                p[0].min(255) as u8
            } else {
                high_byte(p[0])
            };
            [v, v, v]
        })
        .collect()
}
