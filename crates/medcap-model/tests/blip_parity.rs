//! BLIP against transformers 4.57.1 on the tiny random checkpoints of
//! `data-fixtures/blip/` (made by its `gen.py`): vision and decoder hidden
//! states and logits within 1e-4, identical token ids for greedy, beam
//! search, repetition penalty, minimum length, prompts and interpolated
//! position embeddings, and ITM / ITC scores.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::path::{Path, PathBuf};

use medcap_model::blip::{BlipForConditionalGeneration, BlipForImageTextRetrieval};
use medcap_model::generation::{GenerationConfig, NextTokenLogits};
use medcap_model::tch::{Device, Kind, Tensor, no_grad_guard};
use medcap_model::tokenizer::BlipTokenizer;
use serde_json::Value;

use crate::common::fixtures;

fn golden() -> Value {
    golden_in(&fixtures())
}

fn golden_in(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tensor(name: &str) -> Tensor {
    tensor_in(&fixtures(), name)
}

fn tensor_in(dir: &Path, name: &str) -> Tensor {
    Tensor::read_safetensors(dir.join("golden.safetensors"))
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not in golden.safetensors"))
        .1
        .to_kind(Kind::Float)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn caption_model() -> BlipForConditionalGeneration {
    let (model, report) =
        BlipForConditionalGeneration::from_dir(&fixtures().join("tiny-caption"), Device::Cpu)
            .unwrap();
    assert!(report.unexpected.is_empty(), "{:?}", report.unexpected);
    assert!(report.tied.is_empty(), "the file stores the decoder weight");
    model
}

#[test]
fn vision_encoder_matches() {
    let model = caption_model();
    let _guard = no_grad_guard();
    let ours = model.encode_images(&tensor("pixel_values"), false).unwrap();
    let diff = max_diff(&ours, &tensor("vision_last_hidden"));
    assert!(diff < 1e-4, "vision_last_hidden differs by {diff}");

    let ours = model
        .encode_images(&tensor("pixel_values_48"), true)
        .unwrap();
    let diff = max_diff(&ours, &tensor("vision_last_hidden_48"));
    assert!(
        diff < 1e-4,
        "interpolated vision_last_hidden_48 differs by {diff}"
    );

    let err = model
        .encode_images(&tensor("pixel_values_48"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("48x48") && err.contains("32x32"), "{err}");
}

#[test]
fn decoder_logits_and_hidden_states_match() {
    let model = caption_model();
    let _guard = no_grad_guard();
    let embeds = model.encode_images(&tensor("pixel_values"), false).unwrap();
    let dec = Tensor::from_slice(&[30522i64; 5]).view([5, 1]);
    let out = model.decode(&embeds, &dec, None, false);
    let expected = tensor("logits_noprompt");
    let diff = max_diff(&out.logits.select(1, 0), &expected);
    assert!(diff < 1e-4, "first-step logits differ by {diff}");

    let prompt = Tensor::from_slice(&[30522i64, 1037, 3861, 1997])
        .view([1, 4])
        .repeat([5, 1]);
    let out = model.decode(&embeds, &prompt, None, false);
    let diff = max_diff(&out.logits.select(1, 3), &tensor("logits_prompt"));
    assert!(diff < 1e-4, "prompt logits differ by {diff}");
    let diff = max_diff(&out.hidden, &tensor("decoder_hidden_prompt"));
    assert!(diff < 1e-4, "decoder hidden states differ by {diff}");

    // The cached path: the prompt fed one token at a time gives the same logits.
    let decoder = model.conditioned_decoder(&embeds);
    let mut past = None;
    let mut last = None;
    for i in 0..4 {
        let step = prompt.narrow(1, i, 1);
        let (logits, cache) = decoder.next_token_logits(&step, past.as_ref());
        last = Some(logits);
        past = Some(cache);
    }
    let diff = max_diff(&last.unwrap(), &tensor("logits_prompt"));
    assert!(diff < 1e-4, "cached decoding differs by {diff}");
}

fn ids(value: &Value) -> Vec<Vec<i64>> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn generated_token_ids_match_for_every_setting() {
    let model = caption_model();
    let golden = golden();
    let settings = golden["caption"]["generate"].as_object().unwrap();
    assert!(settings.len() >= 8);
    check_generation(&model, &fixtures().join("tiny-caption"), settings, &tensor);
}

/// The full blip-image-captioning-base geometry (247M random parameters),
/// which `cargo xtask parity --base` creates with transformers and points
/// `MEDCAP_BLIP_BASE_DIR` at.
#[test]
#[ignore = "needs the full-size checkpoint that `cargo xtask parity --base` makes"]
fn base_configuration_matches() {
    let Some(dir) = std::env::var_os("MEDCAP_BLIP_BASE_DIR").map(PathBuf::from) else {
        panic!("MEDCAP_BLIP_BASE_DIR is not set; run `cargo xtask parity --base`");
    };
    let (model, report) = BlipForConditionalGeneration::from_dir(&dir, Device::Cpu).unwrap();
    assert!(report.unexpected.is_empty(), "{:?}", report.unexpected);
    let golden = golden_in(&dir);
    let t = |name: &str| tensor_in(&dir, name);
    let pixels = t("pixel_values");
    {
        let _guard = no_grad_guard();
        let embeds = model.encode_images(&pixels, false).unwrap();
        let vision = max_diff(&embeds, &t("vision_last_hidden"));
        let rows = pixels.size()[0];
        let dec = Tensor::from_slice(&vec![30522i64; rows as usize]).view([rows, 1]);
        let out = model.decode(&embeds, &dec, None, false);
        let logits = max_diff(&out.logits.select(1, 0), &t("logits_noprompt"));
        let scale = t("logits_noprompt").abs().max().double_value(&[]);
        println!(
            "base parity: vision max |diff| {vision:.3e}, first-step logits max |diff| \
             {logits:.3e} (largest |logit| {scale:.1})"
        );
        assert!(vision < 1e-4, "vision differs by {vision}");
        assert!(logits < 1e-4 * scale.max(1.0), "logits differ by {logits}");
    }
    let settings = golden["generate"].as_object().unwrap();
    check_generation(&model, &dir, settings, &t);
    println!(
        "base parity: token ids identical for {} settings",
        settings.len()
    );
}

fn check_generation(
    model: &BlipForConditionalGeneration,
    dir: &Path,
    settings: &serde_json::Map<String, Value>,
    tensor: &dyn Fn(&str) -> Tensor,
) {
    let tokenizer = BlipTokenizer::from_dir(dir, &model.config().text_config).unwrap();
    for (name, setting) in settings {
        let config = GenerationConfig::from_transformers_kwargs(&setting["kwargs"]);
        let prompt = tokenizer
            .decoder_prompt(setting["prompt"].as_str())
            .unwrap();
        let interpolate = setting["interpolate_pos_encoding"]
            .as_bool()
            .unwrap_or(false);
        let pixels = tensor(if interpolate {
            "pixel_values_48"
        } else {
            "pixel_values"
        });
        let embeds = {
            let _guard = no_grad_guard();
            model.encode_images(&pixels, interpolate).unwrap()
        };
        let expected = ids(&setting["single_ids"]);
        // All five images in one batch, as transformers ran them.
        let batch = model.generate(&embeds, &prompt, &config).unwrap();
        assert_eq!(batch, expected, "setting {name}, whole batch");
        // And one image alone.
        let last = embeds.size()[0] - 1;
        let alone = model
            .generate(&embeds.narrow(0, last, 1), &prompt, &config)
            .unwrap();
        assert_eq!(
            alone[0], expected[last as usize],
            "setting {name}, last image alone"
        );
        for (i, text) in setting["text"].as_array().unwrap().iter().enumerate() {
            assert_eq!(
                tokenizer.decode(&expected[i]).unwrap(),
                text.as_str().unwrap(),
                "setting {name}, decoded text of image {i}"
            );
        }
    }
}

#[test]
fn retrieval_scores_match() {
    let (model, report) =
        BlipForImageTextRetrieval::from_dir(&fixtures().join("tiny-itm"), Device::Cpu).unwrap();
    assert!(report.unexpected.is_empty(), "{:?}", report.unexpected);
    let golden = golden();
    let itm = &golden["itm"];
    let input_ids = Tensor::from_slice2(&ids(&itm["input_ids"]));
    let mask = Tensor::from_slice2(&ids(&itm["attention_mask"]));
    let _guard = no_grad_guard();
    let embeds = model.encode_images(&tensor("pixel_values"), false).unwrap();
    let diff = max_diff(&embeds, &tensor("itm_vision_last_hidden"));
    assert!(diff < 1e-4, "vision differs by {diff}");

    let hidden = model.text_hidden(&input_ids, &mask);
    // Padded positions are not compared: only real tokens carry meaning.
    let expected = tensor("text_unimodal_last");
    let m = mask.to_kind(Kind::Float).unsqueeze(-1);
    let diff = max_diff(&(&hidden * &m), &(&expected * &m));
    assert!(diff < 1e-4, "unimodal text hidden states differ by {diff}");

    // Pair p = image i with text j, p = 4 i + j.
    let images = Tensor::arange(20, (Kind::Int64, Device::Cpu)).divide_scalar_mode(4, "floor");
    let texts = Tensor::arange(20, (Kind::Int64, Device::Cpu)).remainder(4);
    let probs = model.itm_probabilities(
        &embeds.index_select(0, &images),
        &input_ids.index_select(0, &texts),
        &mask.index_select(0, &texts),
    );
    let diff = max_diff(&probs, &tensor("itm_probs"));
    assert!(diff < 1e-4, "ITM probabilities differ by {diff}");

    let image_features = model.image_features(&embeds);
    let text_features = model.text_features(&input_ids, &mask);
    let sim = image_features.matmul(&text_features.tr()).view([20]);
    let diff = max_diff(&sim, &tensor("itc_sim"));
    assert!(diff < 1e-4, "ITC similarities differ by {diff}");
}

/// Mixed precision through libtorch's autocast: under [`Autocast`] the
/// decoder logits come out in bf16 / fp16 as transformers' do under
/// torch.autocast on the CPU (data-fixtures/blip/gen_autocast.py), pick
/// the same next tokens, and stray from fp32 by no more than torch's do.
/// They are not bit-equal: medcap's attention is libtorch's fused
/// scaled-dot-product kernel where transformers' BLIP multiplies, softmaxes
/// and multiplies again, and half precision rounds the two differently.
#[test]
fn autocast_logits_match_torch_autocast() {
    use medcap_model::precision::{Autocast, Precision};
    let golden = Tensor::read_safetensors(fixtures().join("autocast.safetensors")).unwrap();
    let golden = |name: &str| {
        golden
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} not in autocast.safetensors"))
            .1
            .shallow_clone()
    };
    let model = caption_model();
    let _guard = no_grad_guard();
    let prompt = Tensor::from_slice(&[30522i64, 1037, 3861, 1997])
        .view([1, 4])
        .repeat([5, 1]);
    let logits = |precision| {
        let _autocast = Autocast::enter(Device::Cpu, precision).unwrap();
        let embeds = model.encode_images(&tensor("pixel_values"), false).unwrap();
        let out = model.decode(&embeds, &prompt, None, false);
        out.logits.select(1, 3)
    };
    let fp32 = logits(Precision::F32);
    assert_eq!(fp32.kind(), Kind::Float);
    assert!(max_diff(&fp32, &golden("logits_fp32")) < 1e-4);
    let mean_diff = |a: &Tensor, b: &Tensor| (a - b).abs().mean(Kind::Float).double_value(&[]);
    for (precision, name, kind) in [
        (Precision::Bf16, "bf16", Kind::BFloat16),
        (Precision::F16, "fp16", Kind::Half),
    ] {
        let ours = logits(precision);
        assert_eq!(ours.kind(), kind, "{name} logits");
        assert_eq!(golden(&format!("kind_{name}")).double_value(&[0]), 1.0);
        let ours = ours.to_kind(Kind::Float);
        let torch = golden(&format!("logits_{name}"));
        let ours_off = mean_diff(&ours, &fp32);
        let torch_off = mean_diff(&torch, &golden("logits_fp32"));
        println!(
            "{name}: mean |medcap - fp32| {ours_off:.3e}, |torch - fp32| {torch_off:.3e}, \
             |medcap - torch| {:.3e}",
            mean_diff(&ours, &torch)
        );
        // Rounding happened (autocast is on), and no more of it than torch's.
        assert!(ours_off > 0.0, "{name}: logits equal fp32's");
        assert!(
            ours_off <= 1.5 * torch_off,
            "{name}: medcap strays {ours_off} from fp32, torch {torch_off}"
        );
        assert_eq!(
            Vec::<i64>::try_from(ours.argmax(-1, false)).unwrap(),
            Vec::<i64>::try_from(torch.argmax(-1, false)).unwrap(),
            "{name}: next tokens"
        );
    }
}
