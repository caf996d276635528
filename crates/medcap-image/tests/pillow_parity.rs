//! Every file of `data-fixtures/images` decodes to the pixels Pillow 13's
//! `Image.open(file).convert("RGB")` gives (`expected/*.png`, written by
//! `gen.py` there), and the files Pillow refuses are refused.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};

use medcap_image::{DecodeError, Format, ImageError, RgbImage, decode};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/images")
}

fn golden() -> Value {
    let text = std::fs::read_to_string(fixtures().join("golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn inputs() -> Vec<(String, Value)> {
    let golden = golden();
    let inputs = golden["inputs"].as_object().unwrap();
    inputs.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Files Pillow reads and medcap refuses, with a clear error (README.md).
const REFUSED: [&str; 1] = ["jpeg_rgb_lossless_libjpeg"];

#[test]
fn pixels_equal_pillow_for_every_format_and_mode() {
    let mut compared = Vec::new();
    for (name, record) in inputs() {
        let Some(expected) = record["expected"].as_str() else {
            continue;
        };
        if REFUSED.contains(&name.as_str()) {
            continue;
        }
        let bytes = std::fs::read(fixtures().join(record["file"].as_str().unwrap())).unwrap();
        let decoded = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = RgbImage::open(&fixtures().join(expected)).unwrap();
        let size = record["size_wh"].as_array().unwrap();
        assert_eq!(
            (decoded.image.width as u64, decoded.image.height as u64),
            (size[0].as_u64().unwrap(), size[1].as_u64().unwrap()),
            "{name}: size"
        );
        assert_eq!(
            decoded.pillow_mode,
            record["pillow_mode"].as_str().unwrap(),
            "{name}: mode"
        );
        let differing = decoded
            .image
            .pixels
            .iter()
            .zip(&want.pixels)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differing, 0,
            "{name}: {differing} samples differ from Pillow's"
        );
        assert_eq!(decoded.image, want, "{name}");
        let format = if name.starts_with("jpeg") {
            Format::Jpeg
        } else {
            Format::Png
        };
        assert_eq!(decoded.format, format, "{name}");
        compared.push(name);
    }
    // Every kind of file the decoder must handle is among the compared files.
    for kind in [
        "jpeg_rgb_420_q90",
        "jpeg_rgb_422_q90",
        "jpeg_rgb_444_q95",
        "jpeg_rgb_411_libjpeg",
        "jpeg_rgb_440_libjpeg",
        "jpeg_rgb_420_progressive",
        "jpeg_rgb_420_restart",
        "jpeg_grey_q85",
        "jpeg_cmyk_pillow",
        "jpeg_cmyk_libjpeg",
        "jpeg_ycck_libjpeg",
        "png_l",
        "png_la",
        "png_p_transparency",
        "png_rgb",
        "png_rgba",
        "png_grey16",
        "png_rgb16",
        "png_rgba16",
        "png_la16",
        "png_animated",
    ] {
        assert!(
            compared.iter().any(|n| n == kind),
            "{kind} was not compared"
        );
    }
}

#[test]
fn sixteen_bit_grey_clips_and_counts_what_it_clipped() {
    let bytes = std::fs::read(fixtures().join("inputs/png_grey16.png")).unwrap();
    let decoded = decode(&bytes).unwrap();
    // gen.py writes 0, 1, 200, 255, 256, 300, 1000, 65535 first.
    let first: Vec<u8> = decoded.image.pixels[..24]
        .iter()
        .step_by(3)
        .copied()
        .collect();
    assert_eq!(first, [0, 1, 200, 255, 255, 255, 255, 255]);
    assert!(decoded.clipped_samples >= 4, "{}", decoded.clipped_samples);
    // 16-bit colour keeps the high byte: 0xC800 and 0xC8FF are both 200.
    let rgb16 = decode(&std::fs::read(fixtures().join("inputs/png_rgb16.png")).unwrap()).unwrap();
    assert_eq!(rgb16.image.pixels[..3], [200, 200, 0]);
    assert_eq!(rgb16.clipped_samples, 0);
}

#[test]
fn files_pillow_refuses_are_refused_with_the_file_named() {
    let mut refused = 0;
    for (name, record) in inputs() {
        if record.get("pillow_error").is_none() {
            continue;
        }
        let path = fixtures().join(record["file"].as_str().unwrap());
        let err = RgbImage::open(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&*path.to_string_lossy()), "{name}: {text}");
        assert!(
            matches!(
                err,
                ImageError::Decode {
                    reason: DecodeError::Truncated,
                    ..
                }
            ),
            "{name}: {text}"
        );
        refused += 1;
    }
    assert_eq!(refused, 2);
}

#[test]
fn lossless_jpeg_is_refused_with_a_clear_error() {
    for name in REFUSED {
        let path = fixtures().join(format!("inputs/{name}.jpg"));
        let err = RgbImage::open(&path).unwrap_err().to_string();
        assert!(
            err.contains(name) && err.contains("lossless") && err.contains("PNG"),
            "{err}"
        );
    }
}

#[test]
fn other_bytes_are_errors_never_panics() {
    assert_eq!(
        decode(b"GIF89a....").unwrap_err(),
        DecodeError::UnknownFormat
    );
    assert_eq!(decode(b"").unwrap_err(), DecodeError::UnknownFormat);
    let jpeg = std::fs::read(fixtures().join("inputs/jpeg_rgb_420_q90.jpg")).unwrap();
    let png = std::fs::read(fixtures().join("inputs/png_rgb.png")).unwrap();
    // Every cut of the headers and a flipped byte at every position of the
    // first 200: an error or an image, never a panic or an abort.
    for data in [&jpeg, &png] {
        for cut in 0..data.len().min(400) {
            let _ = decode(&data[..cut]);
        }
        for at in 0..data.len().min(200) {
            let mut bad = data.clone();
            bad[at] ^= 0x5A;
            let _ = decode(&bad);
        }
    }
}

#[test]
fn a_header_beyond_pillows_pixel_limit_is_refused_before_decoding() {
    // A JPEG header that declares 60000 x 60000 pixels: the size is taken
    // from the SOF marker of a real file, patched.
    let mut jpeg = std::fs::read(fixtures().join("inputs/jpeg_rgb_420_q90.jpg")).unwrap();
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    assert!(matches!(
        decode(&jpeg),
        Err(DecodeError::TooLarge {
            width: 60000,
            height: 60000,
            ..
        })
    ));
}
