//! What a checkpoint stores beside its weights, against transformers
//! (`data-fixtures/blip/gen_model_settings.py`): decoding settings in
//! `text_config` give the captions a plain `generate(**inputs)` gives
//! (`generation_config.json` is not read, as transformers does not read it
//! for BLIP), and salesforce/BLIP's tokenizer layout (`[DEC]` and `[ENC]`
//! inside the tokenizer) loads and captions as the Hub layout does. Also:
//! a text longer than the position table is an error, not a libtorch abort.

use std::path::Path;

use medcap_model::ModelError;
use medcap_model::pipeline::{Captioner, Matcher};
use medcap_model::preprocess::RgbImage;
use tch::Device;

use crate::common::fixtures;

fn golden() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("model-settings.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn images(golden: &serde_json::Value) -> Vec<RgbImage> {
    golden["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let name = format!("images/{}.png", s.as_str().unwrap());
            RgbImage::open(&fixtures().join(name)).unwrap()
        })
        .collect()
}

/// tiny-caption with `changes` merged into `file`'s JSON object at `key`
/// (the whole file when `key` is empty).
fn copy_with(dir: &Path, changes: &[(&str, &str, &serde_json::Value)]) {
    let tiny = fixtures().join("tiny-caption");
    for entry in std::fs::read_dir(&tiny).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    for (file, key, change) in changes {
        let Some(change) = change.as_object() else {
            continue;
        };
        let path = dir.join(file);
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let target = if key.is_empty() {
            &mut json
        } else {
            &mut json[*key]
        };
        for (k, v) in change {
            target[k] = v.clone();
        }
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
}

/// Captions every image alone with the model's own settings and compares
/// ids and decoded text with transformers'.
fn check(
    captioner: &Captioner,
    prompt: Option<&str>,
    images: &[RgbImage],
    want: &serde_json::Value,
    what: &str,
) {
    let (config, _) = captioner.model_generation(prompt, None).unwrap();
    for (i, image) in images.iter().enumerate() {
        let caption = &captioner
            .caption(std::slice::from_ref(image), prompt, &config)
            .unwrap()[0];
        let ids: Vec<i64> = want["ids"][i]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(caption.token_ids, ids, "{what}, image {i}");
        let text = captioner.tokenizer().decode(&caption.token_ids).unwrap();
        assert_eq!(text, want["text"][i].as_str().unwrap(), "{what}, image {i}");
    }
}

#[test]
fn decoding_settings_in_text_config_give_transformers_captions() {
    let golden = golden();
    let images = images(&golden);
    let variants = golden["variants"].as_array().unwrap();
    assert!(variants.len() >= 10);
    for variant in variants {
        let name = variant["name"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        copy_with(
            dir.path(),
            &[
                ("config.json", "text_config", &variant["text_config"]),
                (
                    "generation_config.json",
                    "",
                    &variant["generation_config_json"],
                ),
            ],
        );
        let captioner = Captioner::from_dir(dir.path(), Device::Cpu).unwrap();
        check(
            &captioner,
            variant["prompt"].as_str(),
            &images,
            variant,
            name,
        );
    }
}

#[test]
fn the_settings_taken_from_the_model_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let change = serde_json::json!({"num_beams": 3, "max_length": 30, "early_stopping": false});
    copy_with(dir.path(), &[("config.json", "text_config", &change)]);
    let captioner = Captioner::from_dir(dir.path(), Device::Cpu).unwrap();
    let (config, from_model) = captioner.model_generation(None, None).unwrap();
    assert_eq!((config.num_beams, config.max_new_tokens), (3, 29));
    assert_eq!(from_model, ["max_length=30", "num_beams=3"]);
    // A setting medcap cannot honour is refused by name, never dropped.
    let refused = serde_json::json!({"num_return_sequences": 2});
    copy_with(dir.path(), &[("config.json", "text_config", &refused)]);
    let captioner = Captioner::from_dir(dir.path(), Device::Cpu).unwrap();
    let err = captioner
        .model_generation(None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("num_return_sequences"), "{err}");
}

#[test]
fn salesforce_blip_tokenizer_layout_captions_as_transformers() {
    let golden = golden();
    let images = images(&golden);
    let dir = tempfile::tempdir().unwrap();
    copy_with(dir.path(), &[]);
    for name in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        std::fs::copy(
            fixtures().join("dec-in-tokenizer").join(name),
            dir.path().join(name),
        )
        .unwrap();
    }
    let captioner = Captioner::from_dir(dir.path(), Device::Cpu).unwrap();
    assert_eq!(captioner.tokenizer().dec_id(), 30522);
    for case in golden["dec_in_tokenizer"].as_array().unwrap() {
        let prompt = case["prompt"].as_str();
        check(
            &captioner,
            prompt,
            &images,
            case,
            &format!("[DEC] in the tokenizer, prompt {prompt:?}"),
        );
    }
}

#[test]
fn a_text_longer_than_the_position_table_is_an_error() {
    let matcher = Matcher::from_dir(&fixtures().join("tiny-itm"), Device::Cpu).unwrap();
    let image = RgbImage::open(&fixtures().join("images/grey.png")).unwrap();
    let positions = 64;
    // "chest" is one word piece: n words are n + 2 ids.
    for words in [1usize, 30, 61, 62, 63, 64, 200, 2000] {
        let text = vec!["chest"; words].join(" ");
        match matcher.score(&image, &[text.as_str()]) {
            Ok(scores) => {
                assert!(words + 2 <= positions, "{words} words were scored");
                assert_eq!(scores.len(), 1);
            }
            Err(ModelError::TextTooLong {
                index,
                tokens,
                positions: p,
            }) => {
                assert!(words + 2 > positions, "{words} words refused");
                assert_eq!((index, tokens, p), (0, words + 2, positions));
            }
            Err(other) => panic!("{words} words: {other}"),
        }
    }
    // The same through a prompt: generation leaves no room, or fits.
    let captioner = Captioner::from_dir(&fixtures().join("tiny-caption"), Device::Cpu).unwrap();
    let (config, _) = captioner.model_generation(None, None).unwrap();
    for words in [10usize, 62, 63, 100] {
        let prompt = vec!["chest"; words].join(" ");
        let result = captioner.caption(std::slice::from_ref(&image), Some(&prompt), &config);
        // [DEC] and the words: room for a token while fewer than 64.
        assert_eq!(
            result.is_ok(),
            words + 1 < positions,
            "{words} words: {result:?}"
        );
    }
}
