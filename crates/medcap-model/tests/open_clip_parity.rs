//! open_clip's BiomedCLIP layout against open_clip 3.3.0 (timm 1.0.31,
//! transformers 4.57.1): a small random model (`data-fixtures/open-clip`,
//! made by `gen.py` there, loaded by open_clip itself from `local-dir:`)
//! gives the ids of open_clip's tokenizer exactly (its cleaning: ftfy's
//! quotes, ligatures and widths, HTML entities, whitespace; the context
//! length), `encode_text` to 1e-5, and for RGB and greyscale images the
//! tensors of its transform to 1e-6 and `encode_image` to 1e-5.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use medcap_model::open_clip::OpenClipModel;
use medcap_model::preprocess::RgbImage;
use medcap_model::tch::{Device, Kind, Tensor};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/open-clip")
}

fn golden() -> Value {
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

fn worst(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

fn model() -> OpenClipModel {
    OpenClipModel::from_dir(&fixtures().join("tiny-biomedclip"), Device::Cpu)
        .unwrap()
        .0
}

#[test]
fn open_clip_tokens_and_text_features_equal_open_clip() {
    let g = golden();
    assert_eq!(g["tokenizer"], "HFTokenizer");
    let m = model();
    crate::common::assert_golden_texts(
        &g,
        |t| m.tokenize(t).unwrap(),
        |t| rows(&m.text_features(t).unwrap()),
    );
}

#[test]
fn open_clip_transform_and_image_features_equal_open_clip_on_rgb_and_grey() {
    let g = golden();
    let m = model();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip/images");
    let mut checked = 0;
    for im in g["images"].as_array().unwrap() {
        // open_clip resizes RGBA (premultiplied), palette (nearest) and
        // 16-bit images in their own mode; medcap converts to RGB first,
        // as transformers does (documented departure).
        if !im["rgb_first_equal"].as_bool().unwrap() {
            continue;
        }
        let name = im["name"].as_str().unwrap();
        let decoded = RgbImage::open(&images.join(format!("{name}.png"))).unwrap();
        let (pixels, h, w) = m.processor().process(&decoded);
        assert_eq!((h, w), (32, 32));
        let pixels: Vec<f64> = pixels.into_iter().map(f64::from).collect();
        let d = worst(&pixels, &floats(&im["pixel_values"]));
        assert!(d <= 1e-6, "{name}: pixel values differ by {d}");
        let features = rows(&m.image_features(std::slice::from_ref(&decoded)).unwrap());
        let d = worst(&features[0], &floats(&im["features"]));
        assert!(d <= 1e-5, "{name}: features differ by {d}");
        checked += 1;
    }
    assert_eq!(checked, 3, "rgb_wide, grey and rgb_large");
}
