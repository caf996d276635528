//! `medcap label` and the findings of `medcap score`, as typed (relative
//! paths, from the file's directory).
#![allow(clippy::unwrap_used, missing_docs)]

fn medcap(cwd: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = crate::common::medcap_in(cwd, args);
    (
        out.status.success(),
        crate::common::text(&out.stdout),
        crate::common::text(&out.stderr),
    )
}

#[test]
fn label_prints_the_chexpert_labellers_csv() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("reports.txt"),
        "No pneumothorax. Possible pneumonia.\r\nLeft pleural effusion, cardiomegaly.\nNormal chest radiograph.\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = medcap(tmp.path(), &["label", "reports.txt"]);
    assert!(ok, "{stderr}");
    let mut reader = csv::Reader::from_reader(stdout.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[0], "Reports");
    assert_eq!(header[1], "No Finding");
    assert_eq!(header[14], "Support Devices");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[0][col("Pneumothorax")], "0.0");
    assert_eq!(&rows[0][col("Pneumonia")], "-1.0");
    assert_eq!(&rows[0][col("No Finding")], "");
    assert_eq!(&rows[1][col("Pleural Effusion")], "1.0");
    assert_eq!(&rows[1][col("Cardiomegaly")], "1.0");
    assert_eq!(&rows[2][col("No Finding")], "1.0");

    let (ok, stdout, _) = medcap(tmp.path(), &["label", "reports.txt", "--format", "jsonl"]);
    assert!(ok);
    let second: serde_json::Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(second["labels"]["pleural_effusion"], 1);
    assert_eq!(second["mentions"][0]["side"], "left");

    let (ok, _, stderr) = medcap(tmp.path(), &["label", "missing.txt"]);
    assert!(!ok);
    assert!(stderr.contains("missing.txt"), "{stderr}");
}

#[test]
fn score_reports_findings_per_caption_and_clinical_efficacy() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("refs.txt"),
        "Left pleural effusion.\nRight pneumothorax and cardiomegaly.\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("hyps.txt"),
        "a left pleural effusion\na right pneumothorax\n",
    )
    .unwrap();
    let args = [
        "score",
        "--refs",
        "refs.txt",
        "--hyps",
        "hyps.txt",
        "--no-bertscore",
    ];
    let (ok, stdout, stderr) = medcap(tmp.path(), &[&args[..], &["--format", "jsonl"]].concat());
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["findings_f1"], 1.0);
    // One of the reference's two findings: P 1, R 0.5.
    assert!((lines[1]["findings_f1"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(lines[1]["findings"]["reference"]["cardiomegaly"], 1);
    assert_eq!(lines[1]["findings"]["hypothesis"]["pneumothorax"], 1);
    let efficacy = &lines[2]["clinical_efficacy"];
    assert_eq!(efficacy["micro_14"]["precision"], 1.0);
    assert!((efficacy["micro_14"]["recall"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);

    let (ok, table, _) = medcap(tmp.path(), &args);
    assert!(ok);
    assert!(
        table.contains("Findings F1") && table.contains("macro avg (5)"),
        "{table}"
    );

    let (ok, stdout, _) = medcap(
        tmp.path(),
        &[&args[..], &["--format", "jsonl", "--no-findings"]].concat(),
    );
    assert!(ok);
    assert!(!stdout.contains("findings"), "{stdout}");
}
