//! JPEG as Pillow decodes it: libjpeg-turbo's decoder with its defaults
//! (accurate integer IDCT, fancy upsampling), the mode chosen from the
//! number of channels as Pillow's `JpegImagePlugin` chooses it, and Pillow's
//! CMYK to RGB formula.
//!
//! libjpeg reports a fatal error by calling `error_exit`; the `mozjpeg` crate
//! turns that into an unwind, caught here and returned as
//! [`DecodeError::Corrupt`]. Data that ends early is not an error to
//! libjpeg (it pads the picture and warns), but Pillow refuses it ("image file
//! is truncated"): the reader below notices when libjpeg asks for bytes past
//! the end before the last row.

use std::cell::Cell;
use std::io::{BufRead, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use mozjpeg::{ColorSpace, Decompress};

use crate::{DecodeError, Decoded, Format, RgbImage, check_size};

/// Decodes a JPEG file's bytes.
///
/// # Errors
/// [`DecodeError::Truncated`] when the data ends before the last row,
/// [`DecodeError::Corrupt`] with libjpeg's message, [`DecodeError::TooLarge`],
/// [`DecodeError::Unsupported`] for a channel count Pillow refuses (2, or
/// more than 4).
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let ran_out = Rc::new(Cell::new(false));
    let reader = Tracked {
        rest: bytes,
        ran_out: Rc::clone(&ran_out),
    };
    guarded(|| decode_from(reader, &ran_out))
}

/// The width and height of the frame header, without decoding.
///
/// # Errors
/// [`DecodeError::Corrupt`] when the header cannot be read.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    let reader = Tracked {
        rest: bytes,
        ran_out: Rc::new(Cell::new(false)),
    };
    guarded(|| {
        let header =
            Decompress::new_reader(reader).map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        let (w, h) = header.size();
        Ok((w as u32, h as u32))
    })
}

/// Runs libjpeg code, turning the unwind of a fatal libjpeg error (see the
/// module docs) into [`DecodeError::Corrupt`]; nothing `run` holds is used
/// after an unwind.
fn guarded<T>(run: impl FnOnce() -> Result<T, DecodeError>) -> Result<T, DecodeError> {
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "libjpeg failed".to_owned());
            Err(if message.contains("Unsupported JPEG process") {
                // SOF3 (lossless) and the hierarchical processes: libjpeg-turbo
                // 3 (Pillow's) reads lossless files, this decoder does not.
                DecodeError::Unsupported(format!(
                    "{message} (lossless or hierarchical JPEG; convert it to PNG first)"
                ))
            } else {
                DecodeError::Corrupt(message)
            })
        }
    }
}

fn decode_from(reader: Tracked<'_>, ran_out: &Cell<bool>) -> Result<Decoded, DecodeError> {
    let io = |e: std::io::Error| DecodeError::Corrupt(e.to_string());
    let header = Decompress::new_reader(reader).map_err(io)?;
    let (width, height) = header.size();
    check_size(width as u64, height as u64)?;
    let channels = header.components().len();
    // Pillow: one layer is "L", three "RGB", four "CMYK" (read as "CMYK;I").
    let (out_space, pillow_mode) = match channels {
        1 => (ColorSpace::JCS_GRAYSCALE, "L"),
        3 => (ColorSpace::JCS_RGB, "RGB"),
        4 => (ColorSpace::JCS_CMYK, "CMYK"),
        n => {
            return Err(DecodeError::Unsupported(format!(
                "a JPEG with {n} channels (Pillow reads 1, 3 or 4)"
            )));
        }
    };
    let mut started = header.to_colorspace(out_space).map_err(io)?;
    let samples: Vec<u8> = started.read_scanlines().map_err(io)?;
    if ran_out.get() {
        return Err(DecodeError::Truncated);
    }
    // The end of the file after the last row (a missing EOI marker) is
    // tolerated, as Pillow tolerates it.
    started.finish().map_err(io)?;
    let pixels = match channels {
        1 => samples.iter().flat_map(|&v| [v, v, v]).collect(),
        3 => samples,
        _ => samples.chunks_exact(4).flat_map(cmyk_to_rgb).collect(),
    };
    Ok(Decoded {
        image: RgbImage {
            width,
            height,
            pixels,
        },
        format: Format::Jpeg,
        pillow_mode,
        clipped_samples: 0,
    })
}

/// One CMYK pixel as libjpeg outputs it to RGB as Pillow converts it.
///
/// Pillow reads four-channel JPEGs as Adobe-inverted CMYK (`CMYK;I`: each
/// stored value `v` becomes `255 - v`), then `cmyk2rgb` in its `Convert.c`
/// computes `255 - k - c * (255 - k) / 255` per channel with its rounded
/// integer division by 255. With the inversion, `255 - k` is libjpeg's K.
fn cmyk_to_rgb(cmyk: &[u8]) -> [u8; 3] {
    let nk = i32::from(cmyk[3]);
    let channel = |stored: u8| {
        let c = 255 - i32::from(stored);
        // Pillow's MULDIV255: (a * b) / 255, rounded, in integers.
        let t = c * nk + 128;
        let scaled = ((t >> 8) + t) >> 8;
        (nk - scaled).clamp(0, 255) as u8
    };
    [channel(cmyk[0]), channel(cmyk[1]), channel(cmyk[2])]
}

/// The bytes of the file, recording whether libjpeg asked for more than
/// there is.
struct Tracked<'a> {
    rest: &'a [u8],
    ran_out: Rc<Cell<bool>>,
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rest.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ran_out.set(true);
        }
        Ok(n)
    }
}

impl BufRead for Tracked<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.rest.is_empty() {
            self.ran_out.set(true);
        }
        Ok(self.rest)
    }

    fn consume(&mut self, amount: usize) {
        self.rest = &self.rest[amount.min(self.rest.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_formula_follows_pillow_at_the_extremes() {
        // Stored values are inverted: stored 255 is no ink, stored K 255 is no black.
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255]), [255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255]), [0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 0]), [0, 0, 0]);
        // Half black, no ink: 255 - 127.
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 128]), [128, 128, 128]);
    }

    #[test]
    fn garbage_after_the_signature_is_an_error_not_a_panic() {
        let err = decode(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 3, 1, 2, 3]).unwrap_err();
        assert!(
            matches!(err, DecodeError::Corrupt(_) | DecodeError::Truncated),
            "{err:?}"
        );
    }
}
