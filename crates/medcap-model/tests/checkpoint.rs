//! Loading and saving checkpoints: round trips, the tied LM decoder weight
//! transformers 5 omits, the bias alias, and clear errors for missing keys,
//! wrong checkpoint kinds and pickle files.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use medcap_model::blip::{BlipForConditionalGeneration, BlipForImageTextRetrieval};
use medcap_model::generation::GenerationConfig;
use medcap_model::tch::{Device, Kind, Tensor, no_grad_guard};

use crate::common::fixtures;

/// A copy of the tiny captioning checkpoint whose weights pass through `edit`.
fn edited_copy(edit: impl FnOnce(&mut Vec<(String, Tensor)>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures().join("tiny-caption");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let mut tensors = Tensor::read_safetensors(source.join("model.safetensors")).unwrap();
    edit(&mut tensors);
    Tensor::write_safetensors(&tensors, dir.path().join("model.safetensors")).unwrap();
    dir
}

fn keys_and_shapes(path: &Path) -> Vec<(String, Vec<i64>)> {
    let mut v: Vec<_> = Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    v.sort();
    v
}

fn greedy(model: &BlipForConditionalGeneration) -> Vec<Vec<i64>> {
    let pixels = Tensor::read_safetensors(fixtures().join("golden.safetensors"))
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == "pixel_values")
        .unwrap()
        .1;
    let embeds = {
        let _g = no_grad_guard();
        model.encode_images(&pixels, false).unwrap()
    };
    model
        .generate(&embeds, &[30522], &GenerationConfig::default())
        .unwrap()
}

#[test]
fn save_then_load_is_the_same_model_in_the_same_layout() {
    let (model, _) =
        BlipForConditionalGeneration::from_dir(&fixtures().join("tiny-caption"), Device::Cpu)
            .unwrap();
    let out = tempfile::tempdir().unwrap();
    model.save(out.path()).unwrap();
    // The keys and shapes transformers wrote, so transformers reads ours.
    assert_eq!(
        keys_and_shapes(&out.path().join("model.safetensors")),
        keys_and_shapes(&fixtures().join("tiny-caption/model.safetensors"))
    );
    let original: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("tiny-caption/config.json")).unwrap(),
    )
    .unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(saved, original);
    let (reloaded, report) =
        BlipForConditionalGeneration::from_dir(out.path(), Device::Cpu).unwrap();
    assert!(report.unexpected.is_empty() && report.tied.is_empty());
    assert_eq!(greedy(&reloaded), greedy(&model));
    assert!(!out.path().join(".model.safetensors.partial").exists());
}

#[test]
fn a_fresh_model_saves_a_full_config() {
    let mut config = medcap_model::blip::BlipConfig::default();
    config.vision_config.hidden_size = 16;
    config.vision_config.intermediate_size = 32;
    config.vision_config.num_hidden_layers = 1;
    config.vision_config.num_attention_heads = 2;
    config.vision_config.image_size = 16;
    config.text_config.hidden_size = 8;
    config.text_config.intermediate_size = 16;
    config.text_config.num_hidden_layers = 1;
    config.text_config.num_attention_heads = 2;
    config.text_config.encoder_hidden_size = 16;
    let model = BlipForConditionalGeneration::new(config.clone(), Device::Cpu);
    let out = tempfile::tempdir().unwrap();
    model.save(out.path()).unwrap();
    let text = std::fs::read_to_string(out.path().join("config.json")).unwrap();
    assert!(text.contains("\"model_type\": \"blip\""), "{text}");
    let (back, _) = BlipForConditionalGeneration::from_dir(out.path(), Device::Cpu).unwrap();
    assert_eq!(back.config(), &config);
}

#[test]
fn a_missing_decoder_weight_is_tied_to_the_word_embeddings() {
    let dir = edited_copy(|tensors| {
        tensors.retain(|(n, _)| n != "text_decoder.cls.predictions.decoder.weight");
        // transformers 5 may also name the bias after the decoder.
        for (name, _) in tensors.iter_mut() {
            if name == "text_decoder.cls.predictions.bias" {
                *name = "text_decoder.cls.predictions.decoder.bias".into();
            }
        }
    });
    let (model, report) = BlipForConditionalGeneration::from_dir(dir.path(), Device::Cpu).unwrap();
    assert_eq!(
        report.tied,
        vec!["text_decoder.cls.predictions.decoder.weight".to_owned()]
    );
    let vars = model.vars().variables();
    let decoder = &vars["text_decoder.cls.predictions.decoder.weight"];
    let words = &vars["text_decoder.bert.embeddings.word_embeddings.weight"];
    assert!(decoder.equal(words));
    let bias = Tensor::read_safetensors(fixtures().join("tiny-caption/model.safetensors"))
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == "text_decoder.cls.predictions.bias")
        .unwrap()
        .1;
    assert!(vars["text_decoder.cls.predictions.bias"].equal(&bias));
}

#[test]
fn missing_and_misshaped_keys_are_listed_with_shapes() {
    let dir = edited_copy(|tensors| {
        tensors.retain(|(n, _)| n != "vision_model.post_layernorm.weight");
        for (name, t) in tensors.iter_mut() {
            if name == "vision_model.embeddings.class_embedding" {
                *t = Tensor::zeros([1, 1, 7], (Kind::Float, Device::Cpu));
            }
        }
        tensors.push((
            "surprise.weight".into(),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        ));
    });
    let err = BlipForConditionalGeneration::from_dir(dir.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("vision_model.post_layernorm.weight [32]"),
        "{err}"
    );
    assert!(
        err.contains("class_embedding: file [1, 1, 7], model [1, 1, 32]"),
        "{err}"
    );
    assert!(err.contains("surprise.weight"), "{err}");
}

#[test]
fn a_captioning_checkpoint_is_not_a_retrieval_model() {
    let err = BlipForImageTextRetrieval::from_dir(&fixtures().join("tiny-caption"), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing keys") && err.contains("text_encoder."),
        "{err}"
    );
    assert!(err.contains("itm_head.weight [2, 16]"), "{err}");
}

#[test]
fn pickle_weights_are_refused_with_the_conversion_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("tiny-caption/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), b"not read").unwrap();
    let err = BlipForConditionalGeneration::from_dir(dir.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pytorch_model.bin") && err.contains("save_pretrained"),
        "{err}"
    );
}

#[test]
fn sharded_checkpoints_load() {
    let dir = edited_copy(|_| {});
    let tensors = Tensor::read_safetensors(dir.path().join("model.safetensors")).unwrap();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let (vision, text): (Vec<_>, Vec<_>) = tensors
        .into_iter()
        .partition(|(n, _)| n.starts_with("vision_model."));
    let mut map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", &vision),
        ("model-00002-of-00002.safetensors", &text),
    ] {
        Tensor::write_safetensors(part, dir.path().join(file)).unwrap();
        for (name, _) in part {
            map.insert(name.clone(), file.into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let (sharded, _) = BlipForConditionalGeneration::from_dir(dir.path(), Device::Cpu).unwrap();
    let (single, _) =
        BlipForConditionalGeneration::from_dir(&fixtures().join("tiny-caption"), Device::Cpu)
            .unwrap();
    assert_eq!(greedy(&sharded), greedy(&single));
}

#[test]
fn a_tied_config_projects_with_the_word_embeddings() {
    let dir = edited_copy(|_| {});
    let config_path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["text_config"]
        .as_object_mut()
        .unwrap()
        .remove("tie_word_embeddings");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let (model, report) = BlipForConditionalGeneration::from_dir(dir.path(), Device::Cpu).unwrap();
    // The stored (untied) matrix is not read and not reported.
    assert!(report.unexpected.is_empty(), "{:?}", report.unexpected);
    let vars = model.vars().variables();
    assert!(!vars.contains_key("text_decoder.cls.predictions.decoder.weight"));
    let out = tempfile::tempdir().unwrap();
    model.save(out.path()).unwrap();
    let keys = keys_and_shapes(&out.path().join("model.safetensors"));
    assert!(
        !keys
            .iter()
            .any(|(k, _)| k == "text_decoder.cls.predictions.decoder.weight")
    );
    // A tied head differs from the untied fixture's, so captions change.
    let (untied, _) =
        BlipForConditionalGeneration::from_dir(&fixtures().join("tiny-caption"), Device::Cpu)
            .unwrap();
    assert_ne!(greedy(&model), greedy(&untied));
}

#[test]
fn stored_keys_come_from_the_header_alone() {
    let file = fixtures().join("tiny-caption/model.safetensors");
    let mut keys = medcap_model::checkpoint::stored_keys(&file).unwrap();
    keys.sort();
    let expected: Vec<String> = keys_and_shapes(&file).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, expected);
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"\xff\xff\xff\xff\xff\xff\xff\xffxx").unwrap();
    let err = medcap_model::checkpoint::stored_keys(&junk)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("junk.safetensors") && err.contains("not plausible"),
        "{err}"
    );
}

/// Weights are read tensor by tensor from the file: a file cut short, or a
/// header whose byte ranges do not fit its shapes, is refused naming the
/// file and the tensor, and nothing is half loaded.
#[test]
fn a_truncated_or_inconsistent_file_is_refused_by_tensor() {
    let dir = edited_copy(|_| {});
    let file = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 100]).unwrap();
    let Err(err) = BlipForConditionalGeneration::from_dir(dir.path(), Device::Cpu) else {
        panic!("a cut file is refused");
    };
    let err = err.to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("within the file"),
        "{err}"
    );
    // A header claiming a shape its bytes cannot hold.
    let size = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + size]).unwrap();
    let shape_at = header.find("\"shape\":[").unwrap() + "\"shape\":[".len();
    let edited = format!("{}9{}", &header[..shape_at], &header[shape_at..]);
    let mut out = (edited.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(edited.as_bytes());
    out.extend_from_slice(&bytes[8 + size..]);
    std::fs::write(&file, out).unwrap();
    let Err(err) = BlipForConditionalGeneration::from_dir(dir.path(), Device::Cpu) else {
        panic!("an inconsistent header is refused");
    };
    let err = err.to_string();
    assert!(err.contains("do not hold a"), "{err}");
}
