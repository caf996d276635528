//! CLIP in the Hugging Face layout against transformers 4.57.1: a small
//! random `CLIPModel` (`data-fixtures/clip`, made by `gen.py` there) gives
//! the ids of CLIPProcessor's tokenizer with truncation exactly, the pixel
//! values of CLIPImageProcessor (shortest-side resize, centre crop) on
//! wide, grey, RGBA, palette, large and 16-bit images to 1e-6, and the
//! text and image features of `get_text_features` / `get_image_features`
//! to 1e-5, batched and alone.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use medcap_model::clip::ClipModel;
use medcap_model::preprocess::RgbImage;
use medcap_model::tch::{Device, Kind, Tensor};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/clip")
}

pub(crate) fn clip_golden() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    let t = t.to_kind(Kind::Double);
    (0..t.size()[0])
        .map(|i| Vec::<f64>::try_from(t.get(i)).unwrap())
        .collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst <= tol, "{what}: differs by {worst}");
}

fn model() -> ClipModel {
    ClipModel::from_dir(&fixtures().join("tiny-clip"), Device::Cpu)
        .unwrap()
        .0
}

#[test]
fn clip_tokens_and_text_features_equal_transformers() {
    let g = clip_golden();
    let clip = model();
    let texts: Vec<&str> = g["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    let batched = rows(&clip.text_features(&texts).unwrap());
    for (i, t) in g["texts"].as_array().unwrap().iter().enumerate() {
        let want_ids: Vec<u32> = t["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(clip.tokenize(texts[i]).unwrap(), want_ids, "{:?}", texts[i]);
        let want = floats(&t["features"]);
        assert_close(&format!("text {i} batched"), &batched[i], &want, 1e-5);
        let alone = rows(&clip.text_features(&texts[i..=i]).unwrap());
        assert_close(&format!("text {i} alone"), &alone[0], &want, 1e-5);
    }
}

#[test]
fn clip_pixel_values_and_image_features_equal_transformers() {
    let g = clip_golden();
    let clip = model();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip/images");
    let decoded: Vec<RgbImage> = g["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|im| {
            RgbImage::open(&images.join(format!("{}.png", im["name"].as_str().unwrap()))).unwrap()
        })
        .collect();
    let batched = rows(&clip.image_features(&decoded).unwrap());
    for (i, im) in g["images"].as_array().unwrap().iter().enumerate() {
        let name = im["name"].as_str().unwrap();
        let (pixels, h, w) = clip.processor().process(&decoded[i]);
        assert_eq!((h, w), (32, 32), "{name}");
        let pixels: Vec<f64> = pixels.into_iter().map(f64::from).collect();
        assert_close(
            &format!("{name} pixel values"),
            &pixels,
            &floats(&im["pixel_values"]),
            1e-6,
        );
        let want = floats(&im["features"]);
        assert_close(&format!("{name} features"), &batched[i], &want, 1e-5);
        let alone = rows(&clip.image_features(&decoded[i..=i]).unwrap());
        assert_close(&format!("{name} features alone"), &alone[0], &want, 1e-5);
    }
}
