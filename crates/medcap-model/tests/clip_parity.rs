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
    let clip = model();
    crate::common::assert_golden_texts(
        &clip_golden(),
        |t| clip.tokenize(t).unwrap(),
        |t| rows(&clip.text_features(t).unwrap()),
    );
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

/// CLIPScore, PAC-S and RefCLIPScore (Hessel's code and the paper's form),
/// with Hessel's prefix and without, against his formula on transformers'
/// features; torchmetrics' per-caption value against its own
/// `_clip_score_update` (its slicing of a long caption included).
#[test]
fn clip_scores_equal_hessels_formula_and_torchmetrics() {
    use medcap_metrics::clipscore::{ClipScoreForm, ClipScoreSettings, RefForm};
    use medcap_model::image_text::{ClipScorer, load_encoder};

    let g = clip_golden();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip/images");
    let names: Vec<String> = g["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|im| im["name"].as_str().unwrap().to_owned())
        .collect();
    let captions = g["captions"].as_array().unwrap();
    let paths: Vec<PathBuf> = captions
        .iter()
        .map(|c| {
            images.join(format!(
                "{}.png",
                names[c["image"].as_u64().unwrap() as usize]
            ))
        })
        .collect();
    let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let candidates: Vec<&str> = captions
        .iter()
        .map(|c| c["candidate"].as_str().unwrap())
        .collect();
    let references: Vec<Vec<&str>> = captions
        .iter()
        .map(|c| {
            c["references"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect()
        })
        .collect();
    // 1e-5 on the 0-2.5 scale; torchmetrics works in float32 on a 0-100
    // scale, so its values agree to 1e-6 of that range.
    let close_within = |a: f64, b: &Value, what: &str, tol: f64| {
        let b = b.as_f64().unwrap();
        assert!((a - b).abs() <= tol, "{what}: {a} vs {b}");
    };
    let close = |a: f64, b: &Value, what: &str| close_within(a, b, what, 1e-5);
    for form in [ClipScoreForm::Hessel, ClipScoreForm::Pacs] {
        for (prefix, key) in [
            ("A photo depicts ", format!("{}_prefix", form.name())),
            ("", format!("{}_no_prefix", form.name())),
        ] {
            for (ref_form, ref_key) in [
                (RefForm::Code, "ref_clip_s_code"),
                (RefForm::Paper, "ref_clip_s_paper"),
            ] {
                let settings = ClipScoreSettings {
                    form,
                    ref_form,
                    prefix: prefix.into(),
                };
                // Batches of 4: images and texts span batches.
                let scorer = ClipScorer::new(
                    load_encoder(&fixtures().join("tiny-clip"), Device::Cpu).unwrap(),
                    settings,
                    4,
                );
                let got = scorer.score(&paths, &candidates, &references).unwrap();
                for (i, v) in got.iter().enumerate() {
                    let v = v.as_ref().unwrap();
                    close(v.clip_s, &g[&key]["clip_s"][i], &format!("{key} {i}"));
                    match (&v.ref_clip_s, &g[&key][ref_key][i]) {
                        (None, Value::Null) => {}
                        (Some(r), want) => close(*r, want, &format!("{key} {ref_key} {i}")),
                        (None, want) => panic!("{key} {ref_key} {i}: none vs {want}"),
                    }
                }
            }
        }
    }
    let scorer = ClipScorer::new(
        load_encoder(&fixtures().join("tiny-clip"), Device::Cpu).unwrap(),
        ClipScoreSettings::defaults(ClipScoreForm::Torchmetrics),
        8,
    );
    let got = scorer.score(&paths, &candidates, &references).unwrap();
    for (i, v) in got.iter().enumerate() {
        let v = v.as_ref().unwrap();
        close_within(
            v.clip_s,
            &g["torchmetrics"][i],
            &format!("torchmetrics {i}"),
            1e-4,
        );
        assert_eq!(v.ref_clip_s, None);
    }
}

#[test]
fn a_missing_image_is_an_error_in_its_row_and_an_unknown_layout_names_what_was_found() {
    use medcap_metrics::clipscore::{ClipScoreForm, ClipScoreSettings};
    use medcap_model::image_text::{ClipScorer, load_encoder};

    let scorer = ClipScorer::new(
        load_encoder(&fixtures().join("tiny-clip"), Device::Cpu).unwrap(),
        ClipScoreSettings::defaults(ClipScoreForm::Hessel),
        2,
    );
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip/images");
    let (good, missing) = (images.join("grey.png"), images.join("no-such-image.png"));
    let got = scorer
        .score(
            &[&good, &missing, &good],
            &["a", "b", "c"],
            &[vec!["x"], vec![], vec![]],
        )
        .unwrap();
    assert!(got[0].as_ref().unwrap().ref_clip_s.is_some());
    let err = got[1].as_ref().unwrap_err();
    assert!(err.contains("no-such-image.png"), "{err}");
    assert!(got[2].is_ok());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "bert"}"#).unwrap();
    let err = load_encoder(dir.path(), Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model_type `bert`")
            && err.contains("config.json")
            && err.contains("open_clip_config.json"),
        "{err}"
    );
}

/// A CLIP in OpenAI's layout (PAC-S's released kind) converted by
/// `scripts/openai_clip_to_hf.py` (`data-fixtures/pacs/gen.py`): medcap's
/// features of the converted directory equal open_clip's of the original
/// (OpenAI's pooling at the highest id, `eos_token_id` 2, included).
#[test]
fn an_openai_layout_clip_converted_equals_the_original() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/pacs");
    let g: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    let clip = ClipModel::from_dir(&dir.join("tiny-pacs"), Device::Cpu)
        .unwrap()
        .0;
    assert_eq!(clip.config().text_config.eos_token_id, 2);
    crate::common::assert_golden_texts(
        &g,
        |t| clip.tokenize(t).unwrap(),
        |t| rows(&clip.text_features(t).unwrap()),
    );
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip/images");
    for im in g["images"].as_array().unwrap() {
        let name = im["name"].as_str().unwrap();
        let decoded = RgbImage::open(&images.join(format!("{name}.png"))).unwrap();
        let got = rows(&clip.image_features(std::slice::from_ref(&decoded)).unwrap());
        assert_close(name, &got[0], &floats(&im["features"]), 1e-5);
    }
}
