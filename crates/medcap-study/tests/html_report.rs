//! The HTML report opened in headless Chromium: Table 1 renders, and the
//! caption cards sort by a score (through the same code the sort menu runs,
//! selected with `#sort=` in the address). Without a Chromium the test fails,
//! unless `MEDCAP_SKIP` names `chromium` (`cargo xtask test` installs
//! Debian's `chromium` where it can).
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use medcap_metrics::bertscore::BertScoreValue;
use medcap_metrics::caption_scores::CaptionScores;
use medcap_metrics::clipscore::ClipScoreValue;
use medcap_metrics::stats::Bootstrap;
use medcap_study::eval::CaptionRow;
use medcap_study::report::{ModelResult, write_report};

/// The browser: `MEDCAP_CHROMIUM` (which `cargo xtask test` sets to the
/// Chromium or Chrome it found), else `chromium` on the `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MEDCAP_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("which").arg("chromium").output().ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn scores(x: f64) -> CaptionScores {
    CaptionScores {
        bleu: x / 10.0,
        rouge1: x,
        rouge2: x / 2.0,
        rouge_l: x * 0.9,
        rouge_lsum: x * 0.9,
        cider_d: x,
        bert: Some(BertScoreValue {
            precision: 0.8,
            recall: 0.8,
            f1: 0.7 + x / 10.0,
        }),
        findings_f1: Some(x),
    }
}

/// CLIPScore values around `level` for the test rows (FT-1 and FT-2 have
/// a CLIP-S column, BLIP none: a model without the encoder's values).
fn clip(level: f64) -> Option<Vec<Option<ClipScoreValue>>> {
    Some(
        (0..6)
            .map(|i| {
                // One row whose image could not be read.
                (i != 2).then_some(ClipScoreValue {
                    clip_s: level + f64::from(i) / 50.0,
                    ref_clip_s: Some(level / 2.0),
                })
            })
            .collect(),
    )
}

fn report(dir: &Path) -> PathBuf {
    report_with(dir, |i| {
        if i % 2 == 0 {
            "a left pleural effusion".into()
        } else {
            "a right pneumothorax".into()
        }
    })
}

/// The test report with the captions `caption(i)` for every model.
fn report_with(dir: &Path, caption: impl Fn(usize) -> String) -> PathBuf {
    let image = dir.join("figure.png");
    image::RgbImage::from_pixel(8, 8, image::Rgb([90, 90, 90]))
        .save(&image)
        .unwrap();
    let n = 6;
    let rows: Vec<CaptionRow> = (0..n)
        .map(|i| CaptionRow {
            id: format!("fig{i}"),
            image_path: image.display().to_string(),
            reference: format!("Chest X-ray {i} showing a left pleural effusion."),
            caption: caption(i),
        })
        .collect();
    // FT-2's ROUGE-1 is a known permutation, so the sorted order is known.
    let ft2_rouge = [0.3, 0.9, 0.1, 0.5, 0.7, 0.2];
    let models = vec![
        ModelResult {
            name: "BLIP".into(),
            rows: rows.clone(),
            scores: (0..n).map(|i| scores(i as f64 / 20.0)).collect(),
            truth: None,
            clip: None,
        },
        ModelResult {
            name: "FT-1".into(),
            rows: rows.clone(),
            scores: (0..n).map(|i| scores(0.2 + i as f64 / 20.0)).collect(),
            truth: None,
            clip: clip(0.1),
        },
        ModelResult {
            name: "FT-2".into(),
            rows,
            scores: ft2_rouge.iter().map(|&x| scores(x)).collect(),
            truth: None,
            clip: clip(0.3),
        },
    ];
    let out = dir.join("report");
    write_report(
        &out,
        &models,
        Bootstrap {
            resamples: 100,
            seed: 1,
        },
        n,
        "greedy",
        Some("CLIP-S and RefCLIP-S: clipscore:hessel:clip:tiny-clip:prefix=\"A photo depicts \":ref=code"),
        &serde_json::json!({"test": true}),
    )
    .unwrap();
    out.join("index.html")
}

#[test]
fn report_renders_and_sorts_in_chromium() {
    let Some(browser) = chromium() else {
        let skip = std::env::var("MEDCAP_SKIP").unwrap_or_default();
        assert!(
            skip.split(',').any(|s| s.trim() == "chromium"),
            "no Chromium found: install Debian's `chromium` or set MEDCAP_CHROMIUM to a \
             Chromium executable (MEDCAP_SKIP=chromium leaves this test out)"
        );
        eprintln!("left out: no Chromium found and MEDCAP_SKIP names chromium");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = report(dir.path());
    let url = format!("file://{}#sort=ft2.rouge1", page.display());
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--allow-file-access-from-files",
            "--virtual-time-budget=2000",
            "--dump-dom",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("id=\"table1\""),
        "Table 1 missing from the rendered page"
    );
    for model in ["BLIP", "FT-1", "FT-2"] {
        assert!(
            dom.contains(&format!("<td>{model}</td>")),
            "{model} row missing"
        );
    }
    assert!(
        dom.contains("data-sorted-by=\"ft2.rouge1:desc\""),
        "the sort did not run"
    );
    // Cards after sorting: FT-2 ROUGE-1 descending 0.9, 0.7, 0.5, 0.3, 0.2, 0.1.
    let cards = dom.split("id=\"captions\"").nth(1).unwrap();
    let order: Vec<&str> = cards
        .split("data-id=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(order, ["fig1", "fig4", "fig3", "fig0", "fig5", "fig2"]);
}

#[test]
fn report_files_reference_existing_images() {
    let dir = tempfile::tempdir().unwrap();
    let page = report(dir.path());
    let html = std::fs::read_to_string(&page).unwrap();
    let images: Vec<&str> = html
        .split("src=\"images/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(images.len(), 6);
    for img in images {
        assert!(page.parent().unwrap().join("images").join(img).is_file());
    }
    // Unsorted, cards come in test-set order.
    let cards = html.split("id=\"captions\"").nth(1).unwrap();
    assert!(cards.find("fig0").unwrap() < cards.find("fig5").unwrap());
}

#[test]
fn report_shows_each_captions_findings_against_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let page = report(dir.path());
    let html = std::fs::read_to_string(&page).unwrap();
    // Even rows name the reference's effusion (a hit), odd rows a
    // pneumothorax the reference lacks (a miss) and miss the effusion.
    assert_eq!(
        html.matches("<span class=\"f hit\">Pleural Effusion (L)</span>")
            .count(),
        9
    );
    assert_eq!(
        html.matches("<span class=\"f miss\">Pneumothorax (R)</span>")
            .count(),
        9
    );
    assert_eq!(html.matches("missed: Pleural Effusion").count(), 9);
    // The reference column shows the reference's own findings.
    assert_eq!(
        html.matches("<span class=\"f other\">Pleural Effusion (L)</span>")
            .count(),
        6
    );
    // Clinical efficacy per model: FT-2's captions name the effusion of 3 of
    // the 6 references (recall 0.5) and nothing else of theirs.
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(page.parent().unwrap().join("report.json")).unwrap(),
    )
    .unwrap();
    let effusion = &report["findings"]["FT-2"]["per_observation"][10];
    assert_eq!(effusion["observation"], "pleural_effusion");
    assert_eq!(effusion["recall"], 0.5);
    assert_eq!(effusion["precision"], 1.0);
    assert!(html.contains("<table id=\"findings\">"));
    // Observations that neither the references nor the captions have: no
    // precision, recall or F1 to show, rather than zeros.
    let findings = html.split("<table id=\"findings\">").nth(1).unwrap();
    let edema = findings.split("<tr><td>Edema</td>").nth(1).unwrap();
    let edema = edema.split("</tr>").next().unwrap();
    assert_eq!(edema.matches("\u{2014}").count(), 3 * 3, "{edema}");
    // Pneumothorax: named by the odd captions of FT-1 and FT-2 (and BLIP's),
    // in no reference: precision 0, recall undefined, F1 0.
    let pneumothorax = findings.split("<tr><td>Pneumothorax</td>").nth(1).unwrap();
    let pneumothorax = pneumothorax.split("</tr>").next().unwrap();
    assert_eq!(
        pneumothorax.matches("<td class=\"num\">0.000</td><td class=\"num\">\u{2014}</td><td class=\"num\">0.000</td>").count(),
        3,
        "{pneumothorax}"
    );
    // Findings F1 is a Table 1 column, a score on every card and a sort key.
    assert!(html.contains("Findings F1"));
    assert_eq!(html.matches("data-key=\"ft2.findings_f1\"").count(), 6);
    assert!(html.contains("<option value=\"ft2.findings_f1\">"));
    // Each card holds the reference and the three captions, one under another.
    let first = cards_of(&html)[0];
    let at = |s: &str| first.find(s).unwrap();
    assert!(
        at("Reference") < at(">BLIP<")
            && at(">BLIP<") < at(">FT-1<")
            && at(">FT-1<") < at(">FT-2<")
    );
}

fn cards_of(html: &str) -> Vec<&str> {
    html.split("<div class=\"card\"").skip(1).collect()
}

#[test]
fn every_sampled_figure_is_one_card_with_its_scores() {
    let dir = tempfile::tempdir().unwrap();
    let page = report(dir.path());
    let html = std::fs::read_to_string(&page).unwrap();
    let cards = cards_of(&html);
    assert_eq!(cards.len(), 6);
    for card in cards {
        // Three captions, each with every Table 1 score it has (six: no
        // truth here; FT-1 and FT-2 have CLIP-S and RefCLIP-S too, but not
        // for the figure whose image could not be read).
        assert_eq!(card.matches("<div class=\"cap\">").count(), 3);
        let unreadable = card.contains("data-id=\"fig2\"");
        let expected = 3 * 6 + if unreadable { 0 } else { 2 * 2 };
        assert_eq!(card.matches("class=\"score\"").count(), expected, "{card}");
        assert!(!card.contains("data-value=\"NaN\""), "{card}");
    }
}

#[test]
fn a_clip_column_is_in_table_1_with_its_encoder_named() {
    let dir = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(report(dir.path())).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report/table1.md")).unwrap();
    for text in [&html, &md] {
        assert!(
            text.contains("CLIP-S") && text.contains("RefCLIP-S"),
            "{text}"
        );
        assert!(text.contains("clipscore:hessel:clip:tiny-clip"), "{text}");
    }
    let data: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report/report.json")).unwrap(),
    )
    .unwrap();
    let ft2 = data["table"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["model"] == "FT-2" && e["metric"] == "clip_s")
        .unwrap();
    // Five readable images of six: the unreadable one is left out.
    assert_eq!(ft2["summary"]["n"], 5);
    // BLIP has no CLIPScore: no entry (not a mean of 0), no test against
    // it on CLIP-S, an empty cell in the page.
    let of_blip = |e: &&serde_json::Value| e["model"] == "BLIP" && e["metric"] == "clip_s";
    assert!(
        !data["table"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| of_blip(&e))
    );
    let tests = data["comparisons"].as_array().unwrap();
    assert!(
        !tests
            .iter()
            .any(|c| c["a"] == "BLIP" && c["metric"] == "clip_s")
    );
    assert!(
        tests
            .iter()
            .any(|c| c["a"] == "FT-1" && c["b"] == "FT-2" && c["metric"] == "clip_s")
    );
    let blip_row = html
        .split("<tr><td>BLIP</td>")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert_eq!(blip_row.matches("&mdash;").count(), 2 * 2, "{blip_row}");
    let mean = (0..6)
        .filter(|&i| i != 2)
        .map(|i| 0.3 + f64::from(i) / 50.0)
        .sum::<f64>()
        / 5.0;
    assert!((ft2["summary"]["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
}

#[test]
fn table_1_is_drawn_as_a_chart_and_the_tests_name_metrics_by_their_headings() {
    let dir = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(report(dir.path())).unwrap();
    assert!(html.contains("<img src=\"table1.svg\""), "{html}");
    let svg = std::fs::read_to_string(dir.path().join("report/table1.svg")).unwrap();
    // Three models, six metrics on the 0-1 scale each: a dot and a whisker
    // per pair, and a legend dot per model.
    assert_eq!(svg.matches("<circle").count(), 3 * 6 + 3, "{svg}");
    for heading in ["BLEU", "BERT-F1", "ROUGE-L", "Findings F1", "FT-2"] {
        assert!(svg.contains(&format!(">{heading}<")), "{heading}");
    }
    assert!(
        !svg.contains("CLIP-S"),
        "CLIPScore's scale is left to the table"
    );
    let tests = html
        .split("<table id=\"tests\">")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    assert!(
        tests.contains("<td>ROUGE-L</td>") && tests.contains("<td>BERT-F1</td>"),
        "{tests}"
    );
    assert!(
        !tests.contains("rougeL") && !tests.contains("bert_f1"),
        "{tests}"
    );
}

#[test]
fn captions_are_escaped_for_html() {
    let dir = tempfile::tempdir().unwrap();
    let page = report_with(dir.path(), |i| {
        format!("<script>alert({i})</script> & \"quoted\" <b>effusion</b>")
    });
    // Character references in one spelling (named or numeric: both are
    // escaped text to a browser).
    let html = std::fs::read_to_string(&page)
        .unwrap()
        .replace("&#60;", "&lt;")
        .replace("&#62;", "&gt;")
        .replace("&#38;", "&amp;")
        .replace("&#34;", "&quot;");
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<b>effusion"), "{html}");
    // Each caption appears as text on its card for each of the three
    // models, and once more per model as its most frequent caption.
    assert_eq!(html.matches("&lt;script&gt;alert(").count(), 3 * 6 + 3);
    assert_eq!(html.matches("&amp; &quot;quoted&quot;").count(), 3 * 6 + 3);
    // The most frequent caption, in the repetition table, is escaped too.
    let repetition = html.split("<table id=\"repetition\">").nth(1).unwrap();
    assert!(
        repetition.contains("&lt;b&gt;effusion&lt;/b&gt;"),
        "{repetition}"
    );
}
