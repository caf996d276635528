//! The findings labeller against hand-written cases
//! (`data-fixtures/findings/cases.tsv`) and against the CheXpert labeller's
//! own output on its sample reports (`data-fixtures/findings/chexpert_sample/`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};

use medcap_metrics::findings::{Label, Labeller, Labels, Observation, Side};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/findings")
}

fn observation(key: &str) -> Observation {
    *Observation::ALL
        .iter()
        .find(|o| o.key() == key)
        .unwrap_or_else(|| panic!("unknown observation `{key}`"))
}

fn label(value: &str) -> Label {
    match value {
        "1" => Label::Positive,
        "0" => Label::Negative,
        "-1" => Label::Uncertain,
        other => panic!("unknown label `{other}`"),
    }
}

fn side(name: &str) -> Side {
    match name {
        "left" => Side::Left,
        "right" => Side::Right,
        "bilateral" => Side::Bilateral,
        other => panic!("unknown side `{other}`"),
    }
}

fn describe(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(o, l)| format!("{}={}{:?}", o.key(), l.value(), labels.sides(o)))
        .collect::<Vec<_>>()
        .join(";")
}

#[test]
fn hand_written_cases() {
    let text = std::fs::read_to_string(fixtures().join("cases.tsv")).unwrap();
    let labeller = Labeller::default();
    let mut failures = Vec::new();
    let mut cases = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        cases += 1;
        let (input, expected) = line.split_once('\t').unwrap();
        let got = labeller.label(input);
        let mut want: Vec<(Observation, Label, Option<Vec<Side>>)> = Vec::new();
        for item in expected.split(';') {
            let (key, value) = item.split_once('=').unwrap();
            let (value, sides) = match value.split_once('@') {
                Some((v, s)) => (v, Some(s.split(',').map(side).collect::<Vec<_>>())),
                None => (value, None),
            };
            want.push((observation(key), label(value), sides));
        }
        let mut ok = true;
        for o in Observation::ALL {
            let expected = want.iter().find(|w| w.0 == o);
            if got.get(o) != expected.map(|w| w.1) {
                ok = false;
            }
            if let Some((_, _, Some(sides))) = expected
                && got.sides(o) != *sides
            {
                ok = false;
            }
        }
        if !ok {
            failures.push(format!(
                "{input}\n    want {expected}\n    got  {}",
                describe(&got)
            ));
        }
    }
    assert!(cases >= 80, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One labelled report: its text and each observation's expected label.
type LabelledReport = (String, Vec<(Observation, Option<Label>)>);

/// A CSV of the CheXpert labeller's output: the text column, then one
/// column per observation named as the labeller names them.
fn chexpert_csv(path: &Path, text_column: &str) -> Vec<LabelledReport> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let mut text = String::new();
            let mut labels = Vec::new();
            for (h, v) in headers.iter().zip(r.iter()) {
                if h == text_column {
                    text = v.to_owned();
                    continue;
                }
                let o = *Observation::ALL.iter().find(|o| o.name() == h).unwrap();
                let l = match v {
                    "" => None,
                    "1.0" => Some(Label::Positive),
                    "0.0" => Some(Label::Negative),
                    "-1.0" => Some(Label::Uncertain),
                    other => panic!("label {other}"),
                };
                labels.push((o, l));
            }
            (text, labels)
        })
        .collect()
}

#[test]
fn the_chexpert_labellers_sample_reports_get_its_labels() {
    let dir = fixtures().join("chexpert_sample");
    let labeller = Labeller::default();
    let mut reports = chexpert_csv(&dir.join("labeled_reports.csv"), "Reports");
    reports.extend(chexpert_csv(&dir.join("issue15.csv"), "Reports"));
    assert_eq!(reports.len(), 5);
    for (text, expected) in reports {
        let got = labeller.label(&text);
        for (o, l) in expected {
            assert_eq!(
                got.get(o),
                l,
                "{} in {text:?}: {}",
                o.name(),
                describe(&got)
            );
        }
    }
}

#[test]
fn chexpert_output_rows_use_its_column_order_and_values() {
    let labels = Labeller::default().label("No pneumothorax. Possible pneumonia. Cardiomegaly.");
    let row = labels.chexpert_row();
    assert_eq!(Observation::ALL[2].name(), "Cardiomegaly");
    assert_eq!(row[2], "1.0");
    assert_eq!(row[7], "-1.0");
    assert_eq!(row[9], "0.0");
    assert_eq!(row[0], "");
}
