//! `medcap caption` and `medcap itm` on the tiny transformers-made
//! checkpoints of `data-fixtures/blip/`: the token ids equal those of
//! transformers' `generate`, and bad images are reported without stopping
//! the others.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use crate::common::{blip_fixtures as fixtures, medcap};

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
