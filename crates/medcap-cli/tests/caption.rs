//! `medcap caption` and `medcap itm` on the tiny transformers-made
//! checkpoints of `data-fixtures/blip/`: the token ids equal those of
//! transformers' `generate`, and bad images are reported without stopping
//! the others.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use crate::common::{blip_fixtures as fixtures, medcap, path, text};

fn golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden.json")).unwrap()).unwrap()
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[test]
fn caption_jsonl_matches_transformers_and_reports_bad_images() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let model = s(&fixtures().join("tiny-caption"));
    let first = s(&fixtures().join("images/rgb_wide.png"));
    let second = s(&fixtures().join("images/grey.png"));
    let missing = s(&dir.path().join("absent.png"));
    let out = medcap(&[
        "caption",
        "--model",
        &model,
        "--device",
        "cpu",
        "--max-new-tokens",
        "15",
        "--format",
        "jsonl",
        "--batch-size",
        "2",
        &first,
        &s(&bad),
        &second,
        &missing,
    ]);
    assert!(
        !out.status.success(),
        "a bad image must make the exit code non-zero"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.png") && stderr.contains("absent.png"),
        "{stderr}"
    );
    assert!(stderr.contains("2 of 4 images"), "{stderr}");

    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "one line per input, errors included");
    let expected = &golden()["caption"]["generate"]["a_greedy"];
    for (line, index) in [(&lines[0], 0), (&lines[2], 1)] {
        assert_eq!(line["token_ids"], expected["single_ids"][index]);
        assert_eq!(line["caption"], expected["text"][index]);
        assert_eq!(line["token_ids"][0], 30522);
    }
    assert!(lines[1]["error"].as_str().unwrap().contains("broken.png"));
    assert!(lines[3]["error"].as_str().unwrap().contains("absent.png"));
}

#[test]
fn caption_with_prompt_and_beams_strips_the_prompt() {
    let model = s(&fixtures().join("tiny-caption"));
    let image = s(&fixtures().join("images/rgb_wide.png"));
    let out = medcap(&[
        "caption",
        "--model",
        &model,
        "--device",
        "cpu",
        "--max-new-tokens",
        "12",
        "--num-beams",
        "3",
        "--length-penalty",
        "0.6",
        "--prompt",
        "a picture of",
        &image,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let caption = stdout.trim_end().split('\t').nth(1).unwrap();
    let expected = golden()["caption"]["generate"]["d_beam3_lp06_prompt"]["text"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(Some(caption), expected.strip_prefix("a picture of "));
}

#[test]
fn caption_refuses_a_checkpoint_without_weights() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("tiny-caption/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), b"pickle").unwrap();
    let image = s(&fixtures().join("images/grey.png"));
    let out = medcap(&[
        "caption",
        "--model",
        &s(dir.path()),
        "--device",
        "cpu",
        &image,
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pytorch_model.bin") && stderr.contains("safe_serialization"),
        "{stderr}"
    );
}

#[test]
fn itm_prints_probability_and_similarity_per_text() {
    let model = s(&fixtures().join("tiny-itm"));
    let image = s(&fixtures().join("images/rgb_wide.png"));
    let texts = golden()["itm"]["texts"].clone();
    let texts: Vec<&str> = texts
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let mut args = vec![
        "itm", "--model", &model, "--device", "cpu", "--image", &image, "--format", "jsonl",
        "--text",
    ];
    args.extend(texts.iter().copied());
    let out = medcap(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), texts.len());
    let golden = golden();
    for (j, line) in lines.iter().enumerate() {
        // Image 0 with text j is pair j.
        let itm = golden["itm"]["itm_probs"][j][1].as_f64().unwrap();
        let itc = golden["itm"]["itc_sim"][j].as_f64().unwrap();
        assert!(
            (line["itm_probability"].as_f64().unwrap() - itm).abs() < 1e-4,
            "{line}"
        );
        assert!(
            (line["itc_similarity"].as_f64().unwrap() - itc).abs() < 1e-4,
            "{line}"
        );
        assert_eq!(line["text"], texts[j]);
    }
}

/// tiny-caption with `text_config` changed as `changes` says.
fn model_with(dir: &Path, changes: &serde_json::Value) {
    for entry in std::fs::read_dir(fixtures().join("tiny-caption")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (k, v) in changes.as_object().unwrap() {
        config["text_config"][k] = v.clone();
    }
    std::fs::write(&path, config.to_string()).unwrap();
}

#[test]
fn caption_decodes_with_the_models_stored_settings_unless_told_otherwise() {
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("model-settings.json")).unwrap(),
    )
    .unwrap();
    let variant = golden["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "beams3_max_length30")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    model_with(dir.path(), &variant["text_config"]);
    let images: Vec<String> = golden["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| s(&fixtures().join(format!("images/{}.png", n.as_str().unwrap()))))
        .collect();
    let run = |extra: &[&str]| {
        let mut args = vec!["caption", "--model", path(dir.path()), "--device", "cpu"];
        args.extend_from_slice(&["--format", "jsonl", "--batch-size", "1"]);
        args.extend_from_slice(extra);
        args.extend(images.iter().map(String::as_str));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_medcap"))
            .args(&args)
            .env("MEDCAP_LOG", "info")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let ids: Vec<serde_json::Value> = text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["token_ids"].clone())
            .collect();
        (ids, text(&out.stderr))
    };
    // The model's num_beams 3 and max_length 30, as transformers' plain generate.
    let (ids, stderr) = run(&[]);
    for (i, want) in variant["ids"].as_array().unwrap().iter().enumerate() {
        assert_eq!(&ids[i], want, "image {i}");
    }
    assert!(stderr.contains("max_length=30, num_beams=3"), "{stderr}");
    // Options override the model: greedy and 20 new tokens are tiny-caption's own captions.
    let (ids, _) = run(&["--num-beams", "1", "--max-new-tokens", "20"]);
    let plain = golden["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "generation_config_json_ignored")
        .unwrap();
    for (i, want) in plain["ids"].as_array().unwrap().iter().enumerate() {
        assert_eq!(&ids[i], want, "image {i}");
    }
    // A negative number is a value as typed, not a flag.
    let (ids, _) = run(&["--length-penalty", "-1.0", "--max-new-tokens", "5"]);
    assert_eq!(ids.len(), images.len());
    let help = text(&medcap(&["caption", "--help"]).stdout);
    assert!(help.contains("text_config"), "{help}");
}

#[test]
fn itm_text_longer_than_the_models_positions_is_one_error_line() {
    let model = s(&fixtures().join("tiny-itm"));
    let image = s(&fixtures().join("images/grey.png"));
    // "chest" is one word piece: n words are n + 2 ids, the model has 64 positions.
    for (words, fits) in [(61, true), (62, true), (63, false), (500, false)] {
        let long = vec!["chest"; words].join(" ");
        let out = medcap(&[
            "itm",
            "--model",
            &model,
            "--device",
            "cpu",
            "--image",
            &image,
            "--text",
            "a chest x-ray",
            "--text",
            &long,
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.success(), fits, "{words} words: {stderr}");
        if !fits {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
            assert_eq!(errors.len(), 1, "{stderr}");
            assert!(
                errors[0].contains(&format!("{} tokens", words + 2))
                    && errors[0].contains("64 positions"),
                "{stderr}"
            );
        }
    }
}
