//! The documented commands as a user types them: relative paths, default
//! output locations, started from a working directory that is neither the
//! workspace nor the output's parent, and the binary run with a clean
//! environment (no `MEDCAP_*`, no `LIBTORCH`, no `LD_LIBRARY_PATH`), as an
//! installed binary is.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

/// `medcap` in `cwd` with nothing of the build environment: only `PATH` and
/// `HOME` survive, so libtorch and the BERTScore model must be found by the
/// binary itself.
fn medcap_clean(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medcap"));
    cmd.env_clear().current_dir(cwd).args(args);
    for keep in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.output().unwrap()
}

use crate::common::{blip_fixtures as fixtures, text};

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Every `src="images/..."` of the report page exists beside it.
fn assert_report_images_resolve(report: &Path) {
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    let images: Vec<&str> = html
        .split("src=\"images/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert!(!images.is_empty(), "the report shows no image");
    for img in images {
        let file = report.join("images").join(img);
        assert!(file.is_file(), "{} missing", file.display());
    }
}

/// Stored paths in the study's records are relative (so the directory moves).
fn assert_records_relative(out: &Path) {
    for entry in std::fs::read_dir(out.join("stages")).unwrap() {
        let path = entry.unwrap().path();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let stored = v["output"].as_str().unwrap();
        assert!(
            Path::new(stored).is_relative(),
            "{} stores {stored}",
            path.display()
        );
    }
    for csv in ["data/prepared/test.csv", "scenes/train.csv"] {
        let body = std::fs::read_to_string(out.join(csv)).unwrap();
        let row = body.lines().nth(1).unwrap();
        assert!(
            !row.contains(&*out.to_string_lossy()) && !row.contains(",/"),
            "{csv} stores an absolute path: {row}"
        );
    }
}

#[test]
fn reduced_reproduction_with_a_relative_out_from_elsewhere_then_moved() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("somewhere/else");
    std::fs::create_dir_all(&cwd).unwrap();
    // Relative `--out`, deeper than the working directory.
    let run = medcap_clean(
        &cwd,
        &[
            "reproduce",
            "--reduced",
            "--device",
            "cpu",
            "--out",
            "runs/study",
        ],
    );
    assert_ok("medcap reproduce --reduced --out runs/study", &run);
    let out = cwd.join("runs/study");
    assert!(text(&run.stdout).contains("FT-2"), "{}", text(&run.stdout));
    assert_report_images_resolve(&out.join("report"));
    assert_records_relative(&out);
    // Off a terminal the log stays short: stage boundaries, one line per
    // `log_every` steps, validations.
    let lines = text(&run.stderr).lines().count();
    assert!(lines < 150, "{lines} log lines:\n{}", text(&run.stderr));

    // Move the whole output directory; a rerun from another directory finds
    // every stage done.
    let moved = tmp.path().join("moved/study-copy");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&out, &moved).unwrap();
    let again = medcap_clean(
        tmp.path(),
        &[
            "reproduce",
            "--reduced",
            "--device",
            "cpu",
            "--out",
            "moved/study-copy",
        ],
    );
    assert_ok("rerun in the moved directory", &again);
    let log = text(&again.stderr);
    assert_eq!(log.matches("already done").count(), 6, "{log}");
    assert_report_images_resolve(&moved.join("report"));

    // `--check-targets` on the finished run: the reduced models are far from
    // the reproduction targets, so it fails and names what it missed; the
    // report (with its targets table) stays.
    let checked = medcap_clean(
        tmp.path(),
        &[
            "reproduce",
            "--reduced",
            "--device",
            "cpu",
            "--check-targets",
            "--out",
            "moved/study-copy",
        ],
    );
    assert!(!checked.status.success(), "{}", text(&checked.stdout));
    let err = text(&checked.stderr);
    assert!(
        err.contains("reproduction target") && err.contains("FT-2 findings micro-F1"),
        "{err}"
    );
    assert!(text(&checked.stdout).contains("## Reproduction targets"));
    // `--seed` reaches the configuration: another seed is another run, which
    // the finished directory refuses by name.
    let reseeded = medcap_clean(
        tmp.path(),
        &[
            "reproduce",
            "--reduced",
            "--device",
            "cpu",
            "--seed",
            "7",
            "--out",
            "moved/study-copy",
        ],
    );
    assert!(!reseeded.status.success());
    let err = text(&reseeded.stderr);
    assert!(
        err.contains("another configuration")
            && err.contains("study-config.json")
            && err.contains("--fresh"),
        "{err}"
    );

    // A training stage in the moved directory resumes from its checkpoint
    // (the run's saved configuration still matches), and evaluation reads the
    // moved splits.
    for stage in ["ft2", "eval", "report"] {
        std::fs::remove_file(moved.join("stages").join(format!("{stage}.json"))).unwrap();
    }
    let resumed = medcap_clean(
        &moved,
        &["reproduce", "--reduced", "--device", "cpu", "--out", "."],
    );
    assert_ok("resume in the moved directory", &resumed);
    let log = text(&resumed.stderr);
    assert!(log.contains("resuming"), "{log}");
    assert_report_images_resolve(&moved.join("report"));
}

#[test]
fn score_with_bertscore_finds_the_installed_model_with_a_clean_environment() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("refs.txt"),
        "a chest x-ray\nleft pleural effusion\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("hyps.txt"),
        "a chest radiograph\nno effusion\n",
    )
    .unwrap();
    let out = medcap_clean(
        tmp.path(),
        &[
            "score", "--refs", "refs.txt", "--hyps", "hyps.txt", "--format", "jsonl", "--device",
            "cpu",
        ],
    );
    assert_ok("medcap score", &out);
    let stdout = text(&out.stdout);
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let f1 = first["bert_f1"].as_f64().unwrap();
    assert!(f1 > 0.3 && f1 <= 1.0, "{stdout}");
}

/// README's command for the study's BERT-F1, as typed, with
/// `models/roberta-large` standing in for roberta-large (a copy of the small
/// random RoBERTa of `data-fixtures/roberta`, 3 layers): the directory's name
/// selects bert-score's layer 17, which that stand-in does not have; with
/// the layer given it scores, and bert-score's own baseline for
/// roberta-large is found with a clean environment.
#[test]
fn the_studys_bertscore_command_selects_roberta_large_and_its_layer() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/roberta/tiny-roberta"),
        &tmp.path().join("models/roberta-large"),
    );
    std::fs::write(
        tmp.path().join("refs.txt"),
        "left pleural effusion\nnormal heart\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("ft2.txt"),
        "small left effusion\nthe heart is normal\n",
    )
    .unwrap();
    let typed = [
        "score",
        "--refs",
        "refs.txt",
        "--hyps",
        "ft2.txt",
        "--bertscore-model",
        "models/roberta-large",
    ];
    let out = medcap_clean(tmp.path(), &typed);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("layer 17 requested, but the model has 3"),
        "{stderr}"
    );
    let out = medcap_clean(
        tmp.path(),
        &[&typed[..], &["--bertscore-layer", "2", "--format", "jsonl"]].concat(),
    );
    assert_ok("medcap score with a RoBERTa directory", &out);
    let out = medcap_clean(
        tmp.path(),
        &[
            &typed[..],
            &[
                "--bertscore-layer",
                "2",
                "--bertscore-rescale",
                "--format",
                "jsonl",
            ],
        ]
        .concat(),
    );
    assert_ok("medcap score --bertscore-rescale", &out);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A project directory with a config whose paths are all relative to it:
/// the tiny checkpoint, images, a training CSV (image paths relative to the
/// CSV) with `missing` unreadable rows, and a validation CSV.
fn project(root: &Path, missing: usize) {
    copy_dir(&fixtures().join("tiny-caption"), &root.join("model"));
    copy_dir(&fixtures().join("images"), &root.join("data/images"));
    let good = ["rgb_wide", "grey", "rgba", "palette"];
    let mut train = String::from("image_path,caption\n");
    for i in 0..8 {
        train += &format!("images/{}.png,a chest x-ray number {i}\n", good[i % 4]);
    }
    for i in 0..missing {
        train += &format!("images/missing{i}.png,a figure that is not there\n");
    }
    std::fs::write(root.join("data/train.csv"), train).unwrap();
    std::fs::write(
        root.join("data/val.csv"),
        "image_path,caption\nimages/grey.png,a grey chest x-ray\nimages/rgba.png,a chest x-ray\n",
    )
    .unwrap();
    std::fs::write(
        root.join("train.toml"),
        r#"[data]
train_csv = "data/train.csv"
val_csv = "data/val.csv"
workers = 1

[model]
base_model = "model"

[optim]
lr = 1e-3
micro_batch = 2
accumulation = 2
epochs = 3

[run]
name = "relative"
runs_dir = "runs"
log_every = 5
"#,
    )
    .unwrap();
}

#[test]
fn train_with_a_relative_config_from_another_directory_logs_skipped_images_briefly() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("proj");
    project(&proj, 40);
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = medcap_clean(
        &elsewhere,
        &["train", "--config", "../proj/train.toml", "--device", "cpu"],
    );
    assert_ok("medcap train --config ../proj/train.toml", &out);
    // The run directory is where the config says, relative to the config.
    let run = proj.join("runs/relative");
    assert!(run.join("checkpoints/latest/state.json").is_file());
    assert!(!elsewhere.join("runs").exists());
    let saved = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(saved.contains("\"../../data/train.csv\""), "{saved}");

    // 48 rows, 40 unreadable, so most micro-batches are empty and the 36
    // optimizer steps take several epochs. Off a terminal: the start, a line
    // per 5 steps, and per epoch a validation (with its interval line) and
    // one summary of the skipped images, never a line per image.
    let log = text(&out.stderr);
    let epochs = log.matches("val_loss").count();
    assert!(epochs >= 3, "{log}");
    let summaries = log.matches("could not be read and were skipped:").count();
    assert_eq!(summaries, epochs, "{log}");
    assert!(log.contains(" more epoch=0 skipped="), "{log}");
    let bound = 2 + 36 / 5 + 3 * epochs + 2;
    let lines = log.lines().count();
    assert!(lines <= bound, "{lines} lines (bound {bound}):\n{log}");

    // As most users type it: from the project directory, the config by its
    // bare name (its parent is the empty path).
    let here = medcap_clean(
        &proj,
        &[
            "train",
            "--config",
            "train.toml",
            "--resume",
            "--device",
            "cpu",
        ],
    );
    assert_ok("medcap train --config train.toml --resume", &here);

    // Moved with its data, the run still resumes (nothing left to do).
    let moved = tmp.path().join("proj-moved");
    std::fs::rename(&proj, &moved).unwrap();
    let again = medcap_clean(
        tmp.path(),
        &[
            "train",
            "--config",
            "proj-moved/train.toml",
            "--resume",
            "--device",
            "cpu",
        ],
    );
    assert_ok("resume after the move", &again);
    assert!(
        text(&again.stderr).contains("resuming"),
        "{}",
        text(&again.stderr)
    );
}

/// The `image_path` column of a split CSV.
fn image_paths(csv: &Path) -> Vec<String> {
    let mut reader = csv::Reader::from_path(csv).unwrap();
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "image_path")
        .unwrap();
    reader
        .records()
        .map(|r| r.unwrap()[column].to_owned())
        .collect()
}

#[test]
fn synth_and_prepare_with_relative_paths_write_paths_that_move_with_them() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let synth = medcap_clean(
        &work,
        &["synth", "--out", "data", "--n", "60", "--seed", "4"],
    );
    assert_ok("medcap synth --out data", &synth);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("data/synth.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["release_dir"], "release");
    let split = [
        "--test",
        "5",
        "--val",
        "5",
        "--ft1",
        "10",
        "--ft2-extra",
        "5",
    ];
    let prep = medcap_clean(
        &work,
        &[
            &["prepare", "--medicat", "data", "--out", "prepared"][..],
            &split,
        ]
        .concat(),
    );
    assert_ok("medcap prepare --medicat data --out prepared", &prep);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("prepared/summary.json")).unwrap())
            .unwrap();
    assert!(
        Path::new(summary["jsonl"].as_str().unwrap()).is_relative(),
        "{summary}"
    );

    // Moved together, the relative paths still resolve from the CSV.
    let moved = tmp.path().join("elsewhere/work");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&work, &moved).unwrap();
    let paths = image_paths(&moved.join("prepared/ft1.csv"));
    assert_eq!(paths.len(), 10);
    for p in &paths {
        assert!(Path::new(p).is_relative(), "{p}");
        assert!(moved.join("prepared").join(p).is_file(), "{p}");
    }

    // Named by an absolute path outside the output, the release stays absolute.
    let abs = medcap_clean(
        tmp.path(),
        &[
            &["prepare", "--medicat", moved.join("data").to_str().unwrap()][..],
            &["--out", "prepared-abs"],
            &split,
        ]
        .concat(),
    );
    assert_ok("medcap prepare --medicat ABSOLUTE", &abs);
    for p in image_paths(&tmp.path().join("prepared-abs/ft1.csv")) {
        assert!(
            Path::new(&p).is_absolute() && Path::new(&p).is_file(),
            "{p}"
        );
    }
}

/// README's `prepare` lines for ROCO (detected), a licence filter and a
/// table, typed in a directory that holds the data sets, with relative
/// paths. The ROCO release has its published layout; its images and the
/// table's are copies of the image fixtures.
#[test]
fn prepare_reads_roco_and_a_table_as_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/images");
    for (split, first) in [("train", 1), ("test", 5)] {
        let dir = cwd.join("roco-dataset/data").join(split).join("radiology");
        std::fs::create_dir_all(dir.join("images")).unwrap();
        let (mut captions, mut licences, mut links) = (
            String::new(),
            String::from("ROCO_ID,PMC_ID,CC\n"),
            String::new(),
        );
        for i in first..first + 4 {
            let id = format!("ROCO_{i:05}");
            captions.push_str(&format!("{id}\t Frontal chest radiograph number {i}.\n"));
            let licence = if i % 2 == 0 { "CC BY-NC-ND" } else { "CC BY" };
            licences.push_str(&format!("{id},PMC{i}_f.jpg,{licence}\n"));
            links.push_str(&format!("{id}\twget ftp://x/PMC{i}.tar.gz\tf.jpg\n"));
            std::fs::copy(
                images.join("inputs/jpeg_rgb_420_q90.jpg"),
                dir.join("images").join(format!("{id}.jpg")),
            )
            .unwrap();
        }
        std::fs::write(dir.join("captions.txt"), captions).unwrap();
        std::fs::write(dir.join("licences.txt"), licences).unwrap();
        std::fs::write(dir.join("dlinks.txt"), links).unwrap();
    }
    std::fs::create_dir_all(cwd.join("img")).unwrap();
    let mut table = String::from("file,text,paper\n");
    for i in 0..5 {
        std::fs::copy(
            images.join("expected/png_rgb.png"),
            cwd.join(format!("img/{i}.png")),
        )
        .unwrap();
        table.push_str(&format!("img/{i}.png,Chest X-ray {i},paper{}\n", i / 2));
    }
    std::fs::write(cwd.join("figures.csv"), table).unwrap();

    let summary = |out: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(cwd.join(out).join("summary.json")).unwrap())
            .unwrap()
    };
    let out = medcap_clean(
        cwd,
        &[
            "prepare",
            "--input",
            "roco-dataset",
            "--out",
            "prepared-roco",
        ],
    );
    assert_ok("medcap prepare --input roco-dataset", &out);
    let s = summary("prepared-roco");
    assert_eq!(
        (s["format"].as_str(), s["usable"].as_u64()),
        (Some("roco"), Some(8))
    );
    // README's line with the published split and the non-radiology figures.
    let out = medcap_clean(
        cwd,
        &[
            "prepare",
            "--input",
            "roco-dataset",
            "--published-split",
            "--non-radiology",
            "--out",
            "prepared-roco-all",
        ],
    );
    assert_ok("medcap prepare --published-split --non-radiology", &out);
    let s = summary("prepared-roco-all");
    assert_eq!(s["splits"]["test"]["figures"].as_u64(), Some(4), "{s}");
    assert_eq!(s["splits"]["val"]["figures"].as_u64(), Some(0), "{s}");
    // --non-radiology on a table is refused, naming the format.
    let out = medcap_clean(
        cwd,
        &[
            "prepare",
            "--format",
            "table",
            "--input",
            "figures.csv",
            "--columns",
            "image=file,caption=text,group=paper",
            "--non-radiology",
            "--out",
            "x",
        ],
    );
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("ROCO only, not to table"),
        "{stderr}"
    );
    let out = medcap_clean(
        cwd,
        &[
            "prepare",
            "--input",
            "roco-dataset",
            "--licence",
            "CC BY,CC BY-NC",
            "--out",
            "prepared-cc",
        ],
    );
    assert_ok("medcap prepare --licence", &out);
    let s = summary("prepared-cc");
    assert_eq!(
        (s["licence_excluded"].as_u64(), s["usable"].as_u64()),
        (Some(4), Some(4))
    );
    let out = medcap_clean(
        cwd,
        &[
            "prepare",
            "--format",
            "table",
            "--input",
            "figures.csv",
            "--columns",
            "image=file,caption=text,group=paper",
            "--out",
            "prepared-table",
        ],
    );
    assert_ok("medcap prepare --format table", &out);
    assert_eq!(summary("prepared-table")["usable"].as_u64(), Some(5));
    // A directory of no known layout: the error says what was looked for.
    let out = medcap_clean(cwd, &["prepare", "--input", "img", "--out", "x"]);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("ROCO") && stderr.contains("--format table"),
        "{stderr}"
    );
}

/// README's tour as written there: each `sh` block that writes its inputs
/// with `printf` and runs `medcap`, run in an empty directory, and its
/// output compared with the `text` block README shows after it (README
/// may show the first lines only).
#[test]
fn readme_tour_blocks_run_as_written_and_print_what_readme_shows() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    // Fenced blocks in order: (language, body).
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in readme.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => open = Some((lang.to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.push(open.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    let mut checked = 0;
    for pair in blocks.windows(2) {
        let ((lang, commands), (next_lang, shown)) = (&pair[0], &pair[1]);
        if lang != "sh" || next_lang != "text" || !commands.contains("printf ") {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut stdout = String::new();
        for line in commands.lines() {
            if let Some(rest) = line.strip_prefix("printf '") {
                let (content, file) = rest.split_once("' > ").unwrap();
                std::fs::write(tmp.path().join(file), content.replace("\\n", "\n")).unwrap();
            } else if let Some(args) = line.strip_prefix("medcap ") {
                let args: Vec<&str> = args.split_whitespace().collect();
                let out = medcap_clean(tmp.path(), &args);
                assert_ok(line, &out);
                stdout += &text(&out.stdout);
            } else {
                panic!("README tour line not understood by this test: {line}");
            }
        }
        assert!(
            stdout.starts_with(shown.as_str()),
            "README shows:\n{shown}\nthe commands print:\n{stdout}"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "the score and label examples");
}
