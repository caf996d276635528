//! Kill-anywhere resume. `medcap reproduce --reduced` aborted at chosen
//! places in every stage (medcap-io's crash points: between the renames of
//! a checkpoint swap, before an atomic write's rename, after a stage's work
//! and before its record), and separately killed with SIGKILL at moments
//! spread over the run, rerun each time, ends with the same Table 1,
//! captions and report as a run never interrupted, bit for bit; after every
//! interruption nothing the run left is half-written. The same for
//! `medcap train`'s weights, optimizer state and metrics.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let started = Instant::now();
    let run = reproduce(&reference).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let whole = started.elapsed();

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
    // Then SIGKILLs at moments spread over a resumed run (3% to 15% of a
    // whole run's time each, a seeded sequence).
    let killed = tmp.path().join("killed");
    let kills = kill_at(&mut || reproduce(&killed), whole, &|| {
        assert_nothing_half_written(&killed)
    });
    eprintln!("{} crash points, then {kills} kills", crashes.len());
    // The crash points cover every stage; the kills add moments no point
    // marks. At least two land before the resumed run ends, whatever the
    // machine's speed.
    assert!(kills >= 2, "only {kills} kills");
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

/// Runs `cmd` four times, killing it after 10%, 15%, 20% and 25% of
/// `whole` (each attempt resumes, so the kills fall further and further
/// into the run), then once more to the end; `check` runs after every kill.
/// Returns how many attempts were killed (fewer when the run ends first).
fn kill_at(cmd: &mut impl FnMut() -> Command, whole: Duration, check: &impl Fn()) -> usize {
    let mut kills = 0;
    for fraction in [0.1, 0.15, 0.2, 0.25] {
        let mut child = cmd().spawn().unwrap();
        let deadline = Instant::now() + whole.mul_f64(fraction);
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        match finished {
            Some(status) => {
                let out = child.wait_with_output().unwrap();
                assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                return kills;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                check();
            }
        }
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
    let started = Instant::now();
    let out = train(&a).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whole = started.elapsed();
    let run = b.join("runs/kill");
    // Kills after training began (its metrics log exists) are the ones
    // that test resuming mid-run.
    let during_training = std::cell::Cell::new(0);
    let kills = kill_at(&mut || train(&b), whole, &|| {
        assert_nothing_half_written(&run);
        if run.join("metrics.jsonl").is_file() {
            during_training.set(during_training.get() + 1);
        }
    });
    assert!(kills >= 2, "only {kills} kills");
    assert!(during_training.get() >= 1, "no kill fell during training");
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
