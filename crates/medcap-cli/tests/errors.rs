//! `docs/ERRORS.md` as a test: every row of its table is run as written, in
//! a directory holding the files the rows name, and must exit with the
//! status and say what the row says.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::blip_fixtures;

/// One row: the command line, what the input is, the exit status and the
/// text the output must contain (`None`: nothing on stderr).
struct Row {
    input: String,
    args: Vec<String>,
    exit: i32,
    says: Option<String>,
}

fn unquote(cell: &str) -> String {
    let cell = cell.trim();
    let cell = cell
        .strip_prefix("`` ")
        .and_then(|c| c.strip_suffix(" ``"))
        .or_else(|| cell.strip_prefix("``").and_then(|c| c.strip_suffix("``")))
        .or_else(|| cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')))
        .unwrap_or(cell);
    cell.to_owned()
}

fn rows() -> Vec<Row> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ERRORS.md");
    let text = std::fs::read_to_string(&doc).unwrap();
    text.lines()
        .filter(|l| l.starts_with("| ") && l.contains("`medcap "))
        .map(|line| {
            let cells: Vec<&str> = line
                .trim_start_matches("| ")
                .trim_end_matches(" |")
                .split(" | ")
                .collect();
            assert_eq!(cells.len(), 5, "a row of five cells: {line}");
            let run = unquote(cells[2]);
            let mut args = run.split_whitespace().map(str::to_owned);
            assert_eq!(args.next().as_deref(), Some("medcap"), "{line}");
            let says = unquote(cells[4]);
            Row {
                input: format!("{}: {}", cells[0], cells[1]),
                args: args.collect(),
                exit: cells[3].trim().parse().unwrap(),
                says: (!says.starts_with('(')).then_some(says),
            }
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The files the table's rows name (see its "The files").
fn sandbox(dir: &Path) {
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    write(
        "hyps.txt",
        b"left pleural effusion\nno pneumothorax\nsmall nodule\n",
    );
    write("refs2.txt", b"left effusion\nnormal chest\n");
    write("empty.txt", b"");
    write("latin1.txt", b"caf\xe9 au lait\n");
    write("wrong.csv", b"a,b\n1,2\n");
    write("ragged.csv", b"candidate,reference\nx,y\nx,y,z\n");
    let big: String = (0..50_000)
        .map(|i| format!("left pleural effusion {i}\n"))
        .collect();
    write("big.txt", big.as_bytes());
    write("unknown-key.toml", b"[optim]\nlearning_rate = 1.0\n");
    write(
        "zero-lr.toml",
        b"[data]\ntrain_csv = \"hyps.txt\"\n[model]\nbase_model = \"tiny-caption\"\n[optim]\nlr = 0.0\n",
    );
    write("study.toml", b"");
    write("bad-stage.toml", b"[fine_tuning]\nlr = -1.0\n");
    // A small release for `prepare`.
    medcap_dataset::synth::generate(
        &dir.join("release"),
        &medcap_dataset::synth::SynthConfig {
            figures: 40,
            seed: 7,
            non_chest_share: 0.2,
        },
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("dir")).unwrap();
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::copy(
        blip_fixtures().join("images/grey.png"),
        dir.join("images/ok.png"),
    )
    .unwrap();
    write("images/bad.png", b"not an image");
    let tiny = blip_fixtures().join("tiny-caption");
    copy_dir(&tiny, &dir.join("tiny-caption"));
    std::fs::create_dir_all(dir.join("model-noweights")).unwrap();
    std::fs::copy(
        tiny.join("config.json"),
        dir.join("model-noweights/config.json"),
    )
    .unwrap();
    copy_dir(&tiny, &dir.join("model-pickle"));
    std::fs::remove_file(dir.join("model-pickle/model.safetensors")).unwrap();
    write("model-pickle/pytorch_model.bin", b"\x80\x02pickle");
    // tiny-caption with one text_config key changed.
    let variant = |name: &str, key: &str, value: serde_json::Value| {
        copy_dir(&tiny, &dir.join(name));
        let config = dir.join(name).join("config.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        json["text_config"][key] = value;
        std::fs::write(&config, json.to_string()).unwrap();
    };
    variant("model-misshaped", "intermediate_size", 44.into());
    variant("model-typical-p", "typical_p", 0.9.into());
    copy_dir(&blip_fixtures().join("tiny-itm"), &dir.join("tiny-itm"));
    write(
        "train.csv",
        b"id,image_path,caption
a,images/ok.png,left effusion
b,images/ok.png,no pneumothorax
",
    );
    write(
        "long-captions.toml",
        b"[data]\ntrain_csv = \"train.csv\"\nmax_tokens = 100\n[model]\nbase_model = \"tiny-caption\"\n\
          [loss]\nkind = \"ce\"\n[run]\nruns_dir = \"runs-long\"\n",
    );
    write(
        "clef-captions.csv",
        b"ID,Caption\nimg1,a mass\nimg2,normal\n",
    );
    write("clef-no-header.csv", b"img1,a mass\nimg2,normal\n");
    write(
        "clef-unordered.csv",
        b"ID,Caption\nimg2,normal\nimg1,a mass\n",
    );
    std::fs::create_dir_all(dir.join("rocov2-bad")).unwrap();
    write(
        "rocov2-bad/train_captions.csv",
        b"ID,Caption\nROCOv2_1,Chest X-ray.\nROCOv2_2,Chest CT, axial view.\n",
    );
}

#[test]
fn every_row_of_docs_errors_md_holds() {
    let rows = rows();
    assert!(rows.len() >= 25, "only {} rows", rows.len());
    let tmp = tempfile::tempdir().unwrap();
    sandbox(tmp.path());
    let mut failures = Vec::new();
    for row in &rows {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_medcap"));
        cmd.current_dir(tmp.path())
            .args(&row.args)
            .env("MEDCAP_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if row.input.contains("full disk") {
            // Every write to /dev/full fails with ENOSPC.
            cmd.stdout(
                std::fs::File::options()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            );
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdout = String::new();
        if row.input.contains("closed pipe") {
            // Read a little, then go away, as `| head` does.
            let mut first = [0u8; 16];
            child
                .stdout
                .as_mut()
                .unwrap()
                .read_exact(&mut first)
                .unwrap();
            drop(child.stdout.take());
        }
        let out = child.wait_with_output().unwrap();
        stdout += &String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let exit = out.status.code();
        let said = match &row.says {
            Some(text) => stderr.contains(text.as_str()) || stdout.contains(text.as_str()),
            None => !stderr.contains("error"),
        };
        if exit != Some(row.exit) || !said {
            failures.push(format!(
                "{} (medcap {}): exit {exit:?}, expected {}; expected {:?}\nstderr: {stderr}",
                row.input,
                row.args.join(" "),
                row.exit,
                row.says.as_deref().unwrap_or("nothing on stderr"),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
