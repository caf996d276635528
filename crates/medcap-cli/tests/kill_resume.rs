//! Kill-anywhere resume. `medcap reproduce --reduced` aborted at chosen
//! places in every stage (medcap-io's crash points: between the renames of
//! a checkpoint swap, before an atomic write's rename, after a stage's work
//! and before its record), and separately killed with SIGKILL at moments
//! spread over the run, rerun each time, ends with the same Table 1,
//! captions and report as a run never interrupted, bit for bit; after every
//! interruption nothing the run left is half-written. The same for
//! `medcap train`'s weights, optimizer state and metrics.

//!
//! Kills are scheduled by the progress a run leaves on disk (a stage's
//! record, a training step's row in `metrics.jsonl`), never by wall time,
//! so that how many land and where depends only on the code: the tests of
//! this binary run in parallel and a machine's speed varies.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn reproduce(out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medcap"));
    cmd.args(["reproduce", "--reduced", "--device", "cpu", "--out"])
        .arg(out)
        .env("MEDCAP_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// What a finished run is compared on.
const OUTPUTS: [&str; 7] = [
    "report/table1.md",
    "report/table1.csv",
    "report/report.json",
    "report/captions.json",
    "eval/base/captions.jsonl",
    "eval/ft1/captions.jsonl",
    "eval/ft2/captions.jsonl",
];

/// Every completion record and JSON file of `out` parses, and every
/// checkpoint directory in place is complete: what a kill must never leave
/// half-written.
fn assert_nothing_half_written(out: &Path) {
    let mut stack = vec![out.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".partial") {
                // A temporary the kill left; never read, removed or replaced.
                continue;
            }
            if path.is_dir() {
                if matches!(name.as_str(), "latest" | "best") {
                    for file in [
                        "state.json",
                        "model.safetensors",
                        "config.json",
                        "optimizer.safetensors",
                    ] {
                        assert!(path.join(file).is_file(), "{} lacks {file}", path.display());
                    }
                }
                stack.push(path);
            } else if name.ends_with(".json") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                    "{} is not whole JSON",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn reproduce_killed_anywhere_resumes_to_the_same_report() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("uninterrupted");
    let run = reproduce(&reference).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // First, crashes at chosen places (medcap-io's crash points: the
    // process aborts there, as under `kill -9`), stage by stage; each
    // attempt resumes where the previous one left off.
    let crashed = tmp.path().join("crashed");
    let crashes = [
        "stage-data",       // data prepared, completion not recorded
        "directory-swap:1", // between the renames of the base model's first checkpoint
        "stage-base",       // base model trained, not recorded
        "atomic-write:5",   // amid FT-1's files
        "directory-swap:3", // an FT-1 checkpoint swap
        "stage-ft2",        // FT-2 trained, not recorded
        "atomic-write:2",   // evaluation: after the base model's captions
        "stage-eval",       // evaluation written, not recorded
        "atomic-write:3",   // amid the report's files
        "stage-report",     // report written, not recorded
    ];
    for crash in crashes {
        let out = reproduce(&crashed)
            .env("MEDCAP_CRASH_AT", crash)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("aborting at"),
            "{crash}: the run did not crash there\n{stderr}"
        );
        assert_nothing_half_written(&crashed);
    }
    let run = reproduce(&crashed).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Then SIGKILLs spread over a resumed run: once the data are
    // prepared, amid the base model's, FT-1's and FT-2's training.
    let killed = tmp.path().join("killed");
    let moments: [Moment; 4] = [
        (
            "data prepared",
            Box::new(|out| out.join("stages/data.json").is_file()),
        ),
        (
            "base step 20",
            Box::new(|out| reached(&out.join("runs/base"), 20)),
        ),
        (
            "FT-1 step 60",
            Box::new(|out| reached(&out.join("runs/ft1"), 60)),
        ),
        (
            "FT-2 step 30",
            Box::new(|out| reached(&out.join("runs/ft2"), 30)),
        ),
    ];
    let kills = kill_at(&mut || reproduce(&killed), &killed, &moments, &|| {
        assert_nothing_half_written(&killed)
    });
    eprintln!("{} crash points, then {kills} kills", crashes.len());
    // The crash points cover every stage; the kills add moments no point
    // marks.
    assert_eq!(kills, moments.len(), "only {kills} kills");
    let mut differing = Vec::new();
    for file in OUTPUTS {
        let a = std::fs::read(reference.join(file)).unwrap();
        for other in [&killed, &crashed] {
            if std::fs::read(other.join(file)).unwrap() != a {
                differing.push(format!("{file} in {}", other.display()));
            }
        }
    }
    if !differing.is_empty() {
        let kept = tmp.keep();
        panic!(
            "differ from the uninterrupted run (kept in {}): {differing:?}",
            kept.display()
        );
    }
}

/// A moment to kill at: its name, and whether it has come in the output
/// directory.
type Moment = (&'static str, Box<dyn Fn(&Path) -> bool>);

/// Whether the training run in `run` has logged optimizer step `step` or a
/// later one.
fn reached(run: &Path, step: u64) -> bool {
    std::fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|text| {
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|row| row["step"].as_u64().is_some_and(|s| s >= step))
    })
}

/// Runs `cmd` once per moment, each attempt resuming the previous one, and
/// kills the attempt as soon as its moment has come in `out` (plus a
/// delay of 0 to 40 ms from a fixed sequence, so that kills fall at
/// different places of a step: amid a forward pass, a checkpoint, a
/// write); then once more to the end. `check` runs after every kill.
/// Returns how many attempts were killed: an attempt that ends before its
/// moment comes is one fewer.
fn kill_at(
    cmd: &mut impl FnMut() -> Command,
    out: &Path,
    moments: &[Moment],
    check: &impl Fn(),
) -> usize {
    let mut kills = 0;
    let mut jitter: u64 = 0x2545_f491;
    for (what, moment) in moments {
        let mut child = cmd().spawn().unwrap();
        // No attempt of these tiny runs takes minutes: past that the run is
        // stuck, which is a failure, not a wait.
        let deadline = std::time::Instant::now() + Duration::from_secs(900);
        let ended = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if moment(out) {
                break None;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "waiting for {what}: the run neither got there nor ended in 15 minutes\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(status) = ended {
            let out = child.wait_with_output().unwrap();
            assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            eprintln!("the run ended before {what}");
            continue;
        }
        jitter = jitter
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        std::thread::sleep(Duration::from_millis((jitter >> 33) % 41));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        check();
    }
    let out = cmd().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kills
}

/// The rows of `metrics.jsonl` without their timings.
fn metrics(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("images_per_second");
            v
        })
        .collect()
}

#[test]
fn train_killed_anywhere_resumes_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let images = ["rgb_wide", "grey", "rgba", "palette", "rgb_large"];
    let captions = [
        "a chest x-ray with a left pleural effusion",
        "frontal radiograph showing cardiomegaly",
        "right upper lobe consolidation",
    ];
    let setup = |dir: &Path| {
        std::fs::create_dir_all(dir).unwrap();
        for (name, rows) in [("train.csv", 40), ("val.csv", 4)] {
            let mut text = String::from("id,image_path,caption\n");
            for i in 0..rows {
                let image =
                    crate::common::blip_fixtures().join(format!("images/{}.png", images[i % 5]));
                text += &format!("f{i},{},{}\n", image.display(), captions[i % 3]);
            }
            std::fs::write(dir.join(name), text).unwrap();
        }
        std::fs::write(
            dir.join("train.toml"),
            format!(
                "[data]\ntrain_csv = \"train.csv\"\nval_csv = \"val.csv\"\nworkers = 1\n\
                 [model]\nbase_model = {:?}\n[loss]\nkind = \"ce+contrastive\"\n\
                 [optim]\nmicro_batch = 2\naccumulation = 2\nepochs = 20\nlr = 0.001\n\
                 [run]\nname = \"kill\"\nruns_dir = \"runs\"\nseed = 3\neval_every = 4\n\
                 checkpoint_every = 3\nlog_every = 1\n",
                crate::common::blip_fixtures().join("tiny-caption")
            ),
        )
        .unwrap();
    };
    let train = |dir: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_medcap"));
        cmd.args([
            "train",
            "--config",
            "train.toml",
            "--device",
            "cpu",
            "--resume",
        ])
        .current_dir(dir)
        .env("MEDCAP_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        cmd
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    setup(&a);
    setup(&b);
    let out = train(&a).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = b.join("runs/kill");
    // Once before training begins (the run directory is made, the model
    // loading), then at three steps of the 200, between checkpoints.
    let moments: [Moment; 4] = [
        (
            "the run directory",
            Box::new(|run| run.join("config.json").is_file()),
        ),
        ("step 31", Box::new(|run| reached(run, 31))),
        ("step 95", Box::new(|run| reached(run, 95))),
        ("step 160", Box::new(|run| reached(run, 160))),
    ];
    let kills = kill_at(&mut || train(&b), &run, &moments, &|| {
        assert_nothing_half_written(&run)
    });
    assert_eq!(kills, moments.len(), "only {kills} kills");
    for file in [
        "checkpoints/latest/model.safetensors",
        "checkpoints/latest/contrastive_heads.safetensors",
        "checkpoints/latest/optimizer.safetensors",
        "checkpoints/latest/state.json",
        "checkpoints/best/model.safetensors",
    ] {
        let (x, y) = (
            std::fs::read(a.join("runs/kill").join(file)).unwrap(),
            std::fs::read(run.join(file)).unwrap(),
        );
        assert!(x == y, "{file} differs after {kills} kills");
    }
    assert_eq!(
        metrics(&a.join("runs/kill/metrics.jsonl")),
        metrics(&run.join("metrics.jsonl"))
    );
}
