//! Image preprocessing against Pillow and transformers: the resized bytes
//! Pillow wrote (`data-fixtures/blip/resized/`) and the `pixel_values` of
//! `BlipImageProcessor` (`golden.safetensors`), both made by
//! `data-fixtures/blip/gen.py`.
#![allow(clippy::unwrap_used, missing_docs)]

use medcap_model::preprocess::{ImageProcessor, ImageProcessorConfig, RgbImage, SizeSpec};
use medcap_model::tch::{Kind, Tensor};

use crate::common::fixtures;

const IMAGES: [&str; 5] = ["rgb_wide", "grey", "rgba", "palette", "rgb_large"];

#[test]
fn resize_matches_pillow_byte_for_byte() {
    let dir = fixtures().join("resized");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (name, size) = stem.rsplit_once('_').unwrap();
        let (w, h) = size.split_once('x').unwrap();
        let (w, h): (usize, usize) = (w.parse().unwrap(), h.parse().unwrap());
        let source =
            RgbImage::open(&fixtures().join("images").join(format!("{name}.png"))).unwrap();
        let expected = RgbImage::open(&path).unwrap();
        assert_eq!((expected.width, expected.height), (w, h));
        // Pillow's BICUBIC (resample 3), BlipImageProcessor's default.
        let bicubic = ImageProcessor::new(ImageProcessorConfig {
            size: SizeSpec::HeightWidth {
                height: h as i64,
                width: w as i64,
            },
            resample: 3,
            ..Default::default()
        })
        .unwrap();
        let ours = bicubic.resize(&source).pixels;
        let differing = ours
            .iter()
            .zip(&expected.pixels)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differing,
            0,
            "{stem}: {differing} of {} bytes differ",
            ours.len()
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} resized fixtures found");
}

fn golden_tensor(name: &str) -> Tensor {
    let tensors = Tensor::read_safetensors(fixtures().join("golden.safetensors")).unwrap();
    tensors
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not in golden.safetensors"))
        .1
}

fn processor(side: i64) -> ImageProcessor {
    ImageProcessor::new(ImageProcessorConfig {
        size: SizeSpec::HeightWidth {
            height: side,
            width: side,
        },
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn pixel_values_match_transformers() {
    let images: Vec<RgbImage> = IMAGES
        .iter()
        .map(|n| RgbImage::open(&fixtures().join("images").join(format!("{n}.png"))).unwrap())
        .collect();
    for (side, key) in [(32, "pixel_values"), (48, "pixel_values_48")] {
        let ours = processor(side).pixel_values(&images).unwrap();
        let expected = golden_tensor(key).to_kind(Kind::Float);
        assert_eq!(ours.size(), expected.size());
        let diff = (ours - expected).abs().max().double_value(&[]);
        // Same uint8 values and the same float32 steps: equal up to rounding.
        assert!(diff < 1e-6, "{key}: max difference {diff}");
    }
}

#[test]
fn sixteen_bit_grey_is_accepted() {
    let image = RgbImage::open(&fixtures().join("images/gray16.png")).unwrap();
    assert_eq!((image.width, image.height), (24, 24));
    assert_eq!(image.pixels.len(), 24 * 24 * 3);
}

#[test]
fn bad_images_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, "not an image").unwrap();
    let err = RgbImage::open(&text).unwrap_err().to_string();
    assert!(err.contains("notes.png"), "{err}");

    let truncated = dir.path().join("cut.png");
    let bytes = std::fs::read(fixtures().join("images/rgb_large.png")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = RgbImage::open(&truncated).unwrap_err().to_string();
    assert!(err.contains("cut.png") && err.contains("decode"), "{err}");

    let missing = RgbImage::open(&dir.path().join("absent.png"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("absent.png"), "{missing}");
}
