//! `medcap train` data-parallel, as users launch it: under the project's
//! own `torchrun` with two processes over Gloo on loopback, against the
//! same configuration run by one process (dropout, augmentation and the
//! contrastive loss on, 4 micro-batches a step, a last step of the epoch
//! with fewer micro-batches than processes, a validation set that does
//! not divide among them); resumed with another number of processes; a
//! rank killed under `--max-restarts` and without a launcher; and the
//! inputs that must be refused before anything is written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use medcap_model::tch::Tensor;

use crate::common::{blip_fixtures, text};

/// `torchrun` of the environment setup made (beside libtorch's `torch`
/// package: `.venv/bin/torchrun`).
fn torchrun_path() -> PathBuf {
    let torch = PathBuf::from(std::env::var("LIBTORCH").expect("cargo xtask setup sets LIBTORCH"));
    let venv = torch.ancestors().nth(4).unwrap().to_owned();
    let path = venv.join("bin/torchrun");
    assert!(
        path.is_file(),
        "no torchrun at {} (run cargo xtask setup)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A run directory `dir` with `train.toml` (micro-batches of 2, 4 a step),
/// 26 training and 5 validation records, and a copy of the tiny captioner
/// whose dropout is switched on.
///
/// Adam's `eps` is 1e-6, not 1e-8: attention's key bias has a gradient of
/// exactly zero in exact arithmetic, and with eps 1e-8 Adam turns its
/// rounding noise (about 1e-12, different for every order of summation)
/// into whole steps of ±lr, so no two summation orders (one process or
/// two) would agree on those weights. Real gradients stay normalised.
fn setup(dir: &Path, accumulation: usize, lr: &str) {
    std::fs::create_dir_all(dir.join("model")).unwrap();
    let tiny = blip_fixtures().join("tiny-caption");
    for entry in std::fs::read_dir(&tiny).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join("model").join(entry.file_name())).unwrap();
    }
    let config_path = dir.join("model/config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["text_config"]["hidden_dropout_prob"] = 0.1.into();
    config["text_config"]["attention_probs_dropout_prob"] = 0.1.into();
    config["vision_config"]["attention_dropout"] = 0.1.into();
    std::fs::write(&config_path, config.to_string()).unwrap();

    let images = ["rgb_wide", "grey", "rgba", "palette", "rgb_large"];
    let captions = [
        "a chest x-ray with a left pleural effusion",
        "frontal radiograph showing cardiomegaly",
        "right upper lobe consolidation with air bronchograms",
        "no acute cardiopulmonary process",
    ];
    for (name, rows) in [("train.csv", 26), ("val.csv", 5)] {
        let mut csv = String::from("id,image_path,caption\n");
        for i in 0..rows {
            let image = blip_fixtures().join(format!("images/{}.png", images[i % 5]));
            csv += &format!("f{i},{},{}\n", image.display(), captions[(i * 3) % 4]);
        }
        std::fs::write(dir.join(name), csv).unwrap();
    }
    std::fs::write(
        dir.join("train.toml"),
        format!(
            "[data]\ntrain_csv = \"train.csv\"\nval_csv = \"val.csv\"\nworkers = 1\n\
             random_crop = true\nhorizontal_flip = true\n\
             [model]\nbase_model = \"model\"\n[loss]\nkind = \"ce+contrastive\"\n\
             [optim]\nmicro_batch = 2\naccumulation = {accumulation}\nepochs = 2\nlr = {lr}\n\
             grad_clip = 1.0\neps = 1e-6\n\
             [run]\nname = \"dp\"\nruns_dir = \"runs\"\nseed = 5\neval_every = 3\n\
             checkpoint_every = 2\nlog_every = 1\n"
        ),
    )
    .unwrap();
}

/// `medcap train` in `dir` by one process.
fn single(dir: &Path, resume: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medcap"));
    cmd.args(["train", "--config", "train.toml", "--device", "cpu"])
        .args(resume.then_some("--resume"))
        .current_dir(dir)
        .env("MEDCAP_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// `torchrun --standalone --nproc-per-node N --no-python medcap train ...`
/// in `dir`, as the README has it.
fn torchrun(dir: &Path, processes: usize, extra: &[&str], resume: bool) -> Command {
    torchrun_on(dir, processes, extra, resume, "cpu")
}

fn torchrun_on(
    dir: &Path,
    processes: usize,
    extra: &[&str],
    resume: bool,
    device: &str,
) -> Command {
    let mut cmd = Command::new(torchrun_path());
    cmd.args(["--standalone", "--nproc-per-node", &processes.to_string()])
        .args(extra)
        .args(["--no-python", env!("CARGO_BIN_EXE_medcap")])
        .args(["train", "--config", "train.toml", "--device", device])
        .args(["--dist-timeout", "60"])
        .args(resume.then_some("--resume"))
        .current_dir(dir)
        .env("MEDCAP_LOG", "warn")
        // One thread a process: two processes share the machine's cores.
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Rank `rank` of 2 started by hand, as a scheduler would, with rank 0
/// serving the store at `port`.
fn by_hand(dir: &Path, rank: usize, port: u16, timeout: &str) -> Command {
    by_hand_with(dir, rank, port, timeout, "train.toml")
}

fn by_hand_with(dir: &Path, rank: usize, port: u16, timeout: &str, config: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medcap"));
    cmd.args(["train", "--config", config, "--device", "cpu"])
        .args(["--dist-timeout", timeout])
        .current_dir(dir)
        .env("MEDCAP_LOG", "warn")
        .env("OMP_NUM_THREADS", "1")
        .env("WORLD_SIZE", "2")
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn succeeded(out: &Output) {
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The training and validation rows of a run's `metrics.jsonl`.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("runs/dp/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn close(what: &str, a: f64, b: f64) {
    assert!(
        (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1e-3),
        "{what}: {a} against {b}"
    );
}

/// Equal logs (losses and gradient norms to 1e-5 relative, the rest
/// exactly, timings aside) and equal final weights (to 1e-5, absolute
/// below 1).
fn assert_same_run(a: &Path, b: &Path) {
    let (x, y) = (metrics(a), metrics(b));
    assert_eq!(x.len(), y.len(), "{x:?}\n{y:?}");
    let mut norms = 0;
    for (row_a, row_b) in x.iter().zip(&y) {
        let step = &row_a["step"];
        assert_eq!(step, &row_b["step"]);
        assert_eq!(row_a["lr"], row_b["lr"], "step {step}");
        for key in ["train_loss", "val_loss", "grad_norm"] {
            match (row_a[key].as_f64(), row_b[key].as_f64()) {
                (Some(p), Some(q)) => {
                    close(&format!("step {step} {key}"), p, q);
                    norms += usize::from(key == "grad_norm");
                }
                (None, None) => {}
                other => panic!("step {step} {key}: {other:?}"),
            }
        }
    }
    assert!(norms >= 8, "only {norms} gradient norms logged");
    for file in ["model.safetensors", "contrastive_heads.safetensors"] {
        let path = |dir: &Path| dir.join("runs/dp/checkpoints/latest").join(file);
        let (p, q) = (
            Tensor::read_safetensors(path(a)).unwrap(),
            Tensor::read_safetensors(path(b)).unwrap(),
        );
        assert_eq!(p.len(), q.len());
        let q: std::collections::HashMap<_, _> = q.into_iter().collect();
        for (name, t) in p {
            let u = &q[&name];
            // 1e-5 absolute for weights below 1, relative above: the
            // updates are steps of about lr (1e-3), so a lost or doubled
            // micro-batch moves weights by far more.
            let scale = f64::try_from(t.abs().max()).unwrap().max(1.0);
            let diff = f64::try_from((&t - u).abs().max()).unwrap();
            assert!(diff <= 1e-5 * scale, "{file} {name}: differs by {diff}");
        }
    }
    let state = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(dir.join("runs/dp/checkpoints/latest/state.json")).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(state(a)["step"], state(b)["step"]);
}

/// Nothing half-written: no temporary or partial file anywhere in the run.
fn assert_no_leftovers(dir: &Path) {
    assert_no_leftovers_in(&dir.join("runs"));
}

/// No temporary or partial file anywhere under `root`.
fn assert_no_leftovers_in(root: &Path) {
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "{} left in {}", name, dir.display());
            if entry.path().is_dir() {
                stack.push(entry.path());
            }
        }
    }
}

/// The world size the last checkpoint records.
fn world_size(dir: &Path) -> serde_json::Value {
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("runs/dp/checkpoints/latest/state.json")).unwrap(),
    )
    .unwrap();
    state["world_size"].clone()
}

#[test]
fn two_processes_train_as_one_and_resume_with_either() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    setup(&one, 4, "0.001");
    succeeded(&single(&one, false).output().unwrap());

    let two = tmp.path().join("two");
    setup(&two, 4, "0.001");
    succeeded(&torchrun(&two, 2, &[], false).output().unwrap());
    assert_same_run(&one, &two);
    assert_eq!(world_size(&two), 2);
    // The 2-process log says what the all-reduces moved and cost; one
    // process's has no such columns.
    let training = |dir: &Path| -> Vec<serde_json::Value> {
        metrics(dir)
            .into_iter()
            .filter(|r| r["train_loss"].is_number())
            .collect()
    };
    assert!(
        training(&one)
            .iter()
            .all(|r| r.get("all_reduced_bytes").is_none())
    );
    for row in training(&two) {
        assert!(
            row["all_reduced_bytes"].as_u64().is_some_and(|b| b > 0),
            "{row}"
        );
        assert!(
            row["communication_seconds"]
                .as_f64()
                .is_some_and(|s| s >= 0.0),
            "{row}"
        );
    }

    // Stopped after step 3 (the last checkpoint is step 2's) by two
    // processes, continued by one; and the reverse.
    let two_then_one = tmp.path().join("two-then-one");
    setup(&two_then_one, 4, "0.001");
    let out = torchrun(&two_then_one, 2, &[], false)
        .env("MEDCAP_CRASH_AT", "train-step:3")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(world_size(&two_then_one), 2);
    succeeded(&single(&two_then_one, true).output().unwrap());
    assert_same_run(&one, &two_then_one);

    let one_then_two = tmp.path().join("one-then-two");
    setup(&one_then_two, 4, "0.001");
    let out = single(&one_then_two, false)
        .env("MEDCAP_CRASH_AT", "train-step:3")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(world_size(&one_then_two), 1);
    succeeded(&torchrun(&one_then_two, 2, &[], true).output().unwrap());
    assert_same_run(&one, &one_then_two);

    // Two launchers on loopback, one process each, as two machines would
    // run it.
    let nodes = tmp.path().join("nodes");
    setup(&nodes, 4, "0.001");
    let endpoint = format!("127.0.0.1:{}", free_port());
    let node = |rank: &str| {
        let mut cmd = Command::new(torchrun_path());
        cmd.args([
            "--nnodes",
            "2",
            "--node-rank",
            rank,
            "--nproc-per-node",
            "1",
        ])
        .args(["--rdzv-backend", "c10d", "--rdzv-endpoint", &endpoint])
        .args(["--no-python", env!("CARGO_BIN_EXE_medcap")])
        .args(["train", "--config", "train.toml", "--device", "cpu"])
        .current_dir(&nodes)
        .env("MEDCAP_LOG", "warn")
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        cmd
    };
    let first = node("0").spawn().unwrap();
    let second = node("1").output().unwrap();
    succeeded(&second);
    succeeded(&first.wait_with_output().unwrap());
    assert_same_run(&one, &nodes);

    // torchrun restarts the group when rank 1 dies mid-run (the first
    // attempt only): it resumes from the last checkpoint by itself.
    let restarted = tmp.path().join("restarted");
    setup(&restarted, 4, "0.001");
    let out = torchrun(&restarted, 2, &["--max-restarts", "1"], false)
        .env("MEDCAP_CRASH_AT", "train-step:5")
        .env("MEDCAP_CRASH_RANK", "1")
        .output()
        .unwrap();
    succeeded(&out);
    assert!(
        text(&out.stderr).contains("aborting at train-step"),
        "rank 1 did not crash\n{}",
        text(&out.stderr)
    );
    assert_same_run(&one, &restarted);
    assert_no_leftovers(&restarted);
}

#[test]
fn sigterm_to_torchrun_stops_every_rank_at_one_checkpointed_step() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stopped");
    setup(&dir, 4, "0.001");
    // Far more steps than the test waits for: the signal, not the end of
    // the run, stops it.
    let config = std::fs::read_to_string(dir.join("train.toml")).unwrap();
    // No validation or periodic checkpoint near the stop: the processes
    // finish well within torchrun's 30 s between SIGTERM and SIGKILL.
    let config = config
        .replace("epochs = 2\n", "epochs = 1000\nmax_steps = 3000\n")
        .replace("eval_every = 3\n", "eval_every = 5000\n")
        .replace("checkpoint_every = 2\n", "checkpoint_every = 5000\n");
    std::fs::write(dir.join("train.toml"), config).unwrap();
    let mut child = torchrun(&dir, 2, &[], false).spawn().unwrap();
    // Read stderr as it comes, so that the processes never block on it.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr_pipe, &mut text).unwrap();
        text
    });
    // Once step 2 is logged, SIGTERM to the launcher, as a scheduler
    // preempting the job sends it.
    let logged = |dir: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("runs/dp/metrics.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let started = Instant::now();
    while !logged(&dir).iter().any(|r| r["step"].as_u64() >= Some(2)) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before step 2"
        );
        assert!(
            started.elapsed().as_secs() < 600,
            "no step 2 within 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    let stderr = stderr_reader.join().unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("interrupted at step"), "{stderr}");
    // Both ranks stopped at the same step, checkpointed it whole, and the
    // log ends there.
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("runs/dp/checkpoints/latest/state.json")).unwrap(),
    )
    .unwrap();
    let step = state["step"].as_u64().unwrap();
    assert!((2..3000).contains(&step), "stopped at step {step}");
    let last = logged(&dir)
        .iter()
        .filter_map(|r| r["step"].as_u64())
        .max()
        .unwrap();
    assert_eq!(last, step);
    assert_eq!(world_size(&dir), 2);
    assert_no_leftovers(&dir);
}

#[test]
fn a_rank_lost_without_a_launcher_stops_the_other_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    setup(&dir, 4, "0.001");
    let port = free_port();
    let started = Instant::now();
    let leader = by_hand(&dir, 0, port, "20").spawn().unwrap();
    let lost = by_hand(&dir, 1, port, "20")
        .env("MEDCAP_CRASH_AT", "train-step:3")
        .output()
        .unwrap();
    assert!(text(&lost.stderr).contains("aborting at train-step"));
    let out = leader.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("lost: rank 1 "),
        "the lost rank is not named\n{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(240), "{stderr}");
    assert_no_leftovers(&dir);
}

/// The run directory, when a refused start made one.
fn nothing_written(dir: &Path) {
    assert!(!dir.join("runs").exists(), "a refused run wrote {:?}", dir);
}

#[test]
fn bad_starts_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();

    // 3 micro-batches a step do not divide among 2 processes.
    let odd = tmp.path().join("odd");
    setup(&odd, 3, "0.001");
    let out = torchrun(&odd, 2, &[], false).output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("accumulation") && stderr.contains('3') && stderr.contains('2'),
        "{stderr}"
    );
    nothing_written(&odd);

    // Ranks started with different configurations.
    let differ = tmp.path().join("differ");
    setup(&differ, 4, "0.001");
    let other = tmp.path().join("differ/other");
    setup(&other, 4, "0.002");
    std::fs::rename(other.join("train.toml"), differ.join("other.toml")).unwrap();
    let port = free_port();
    let leader = by_hand(&differ, 0, port, "30").spawn().unwrap();
    let out = by_hand_with(&differ, 1, port, "30", "other.toml")
        .output()
        .unwrap();
    let lead = leader.wait_with_output().unwrap();
    for (rank, out) in [(0, &lead), (1, &out)] {
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "rank {rank}: {stderr}");
        assert!(stderr.contains("configuration"), "rank {rank}: {stderr}");
    }
    nothing_written(&differ);

    // No master to meet: an error within the timeout, not a hang.
    let alone = tmp.path().join("alone");
    setup(&alone, 4, "0.001");
    let started = Instant::now();
    let out = by_hand(&alone, 1, free_port(), "3").output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot join"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60), "{stderr}");
    nothing_written(&alone);

    // Captioning ranks started with different options (another batch
    // size would deal other batches to the ranks).
    let port = free_port();
    let caption = |rank: usize, batch: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_medcap"));
        cmd.args([
            "caption",
            "--device",
            "cpu",
            "--dist-timeout",
            "30",
            "--model",
        ])
        .arg(blip_fixtures().join("tiny-caption"))
        .args(["--batch-size", batch])
        .arg(blip_fixtures().join("images/grey.png"))
        .env("MEDCAP_LOG", "warn")
        .env("WORLD_SIZE", "2")
        .env("RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    };
    let leader = caption(0, "2").spawn().unwrap();
    let follower = caption(1, "3").output().unwrap();
    let leader = leader.wait_with_output().unwrap();
    for (rank, out) in [(0, &leader), (1, &follower)] {
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "rank {rank}: {stderr}");
        assert!(
            stderr.contains("rank 1's command line differs"),
            "rank {rank}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "rank {rank} wrote captions");
    }

    // Commands that run as one process refuse to run as several (each
    // would write the same outputs), in the front end and in medcap-torch.
    let study = tmp.path().join("study");
    for args in [
        vec!["prepare", "--medicat", "absent", "--out"],
        vec!["synth", "--out"],
    ] {
        let mut args = args;
        args.push(study.to_str().unwrap());
        let out = torchrun_medcap(2, &args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("medcap {} runs as one process", args[0])),
            "{stderr}"
        );
        assert!(!study.exists(), "{} wrote its output", args[0]);
    }

    // A GPU asked for on a machine without one.
    if !medcap_model::tch::Cuda::is_available() {
        let cuda = tmp.path().join("cuda");
        setup(&cuda, 4, "0.001");
        let out = torchrun_on(&cuda, 2, &[], false, "cuda").output().unwrap();
        let stderr = text(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.to_lowercase().contains("cuda"), "{stderr}");
        nothing_written(&cuda);
    }
}

/// `torchrun --standalone --nproc-per-node N --no-python medcap ARGS`.
fn torchrun_medcap(processes: usize, args: &[&str]) -> Output {
    Command::new(torchrun_path())
        .args(["--standalone", "--nproc-per-node", &processes.to_string()])
        .args(["--no-python", env!("CARGO_BIN_EXE_medcap")])
        .args(args)
        .env("MEDCAP_LOG", "warn")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap()
}

#[test]
fn sharded_captions_equal_one_process_line_for_line() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let image = |name: &str| {
        blip_fixtures()
            .join(format!("images/{name}.png"))
            .display()
            .to_string()
    };
    let model = blip_fixtures().join("tiny-caption").display().to_string();
    let broken = broken.display().to_string();
    // 7 inputs in batches of 2 (4 batches, the last of one, dealt to 2
    // ranks), an unreadable one among them; and 1 input for 2 ranks.
    let many = [
        image("rgb_wide"),
        image("grey"),
        broken.clone(),
        image("rgba"),
        image("palette"),
        image("rgb_large"),
        image("grey"),
    ];
    let one = [image("rgba")];
    for (inputs, format) in [
        (&many[..], "jsonl"),
        (&many[..], "text"),
        (&one[..], "text"),
    ] {
        let mut args = vec![
            "caption",
            "--model",
            &model,
            "--device",
            "cpu",
            "--max-new-tokens",
            "8",
            "--batch-size",
            "2",
            "--format",
            format,
        ];
        args.extend(inputs.iter().map(String::as_str));
        let alone = crate::common::medcap(&args);
        let shared = torchrun_medcap(2, &args);
        assert_eq!(
            alone.status.success(),
            shared.status.success(),
            "{}",
            text(&shared.stderr)
        );
        let lines = text(&alone.stdout);
        assert_eq!(
            lines.lines().count(),
            inputs.len() - usize::from(format == "text" && inputs.len() > 1)
        );
        assert_eq!(lines, text(&shared.stdout), "{format}");
        if inputs.len() > 1 {
            let stderr = text(&shared.stderr);
            assert!(stderr.contains("broken.png"), "{stderr}");
            assert!(stderr.contains("1 of 7 images"), "{stderr}");
        }
    }

    // Image-text matching: the texts shared among the ranks.
    let itm = blip_fixtures().join("tiny-itm").display().to_string();
    let texts = [
        "a chest radiograph",
        "an abdominal ct scan with contrast",
        "a cat",
    ];
    let mut args = vec![
        "itm", "--model", &itm, "--device", "cpu", "--format", "jsonl", "--image",
    ];
    let picture = image("rgb_wide");
    args.push(&picture);
    args.push("--text");
    args.extend(texts);
    let rows = |out: &Output| -> Vec<serde_json::Value> {
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (alone, shared) = (
        rows(&crate::common::medcap(&args)),
        rows(&torchrun_medcap(2, &args)),
    );
    assert_eq!(alone.len(), 3);
    assert_eq!(alone.len(), shared.len());
    for (a, b) in alone.iter().zip(&shared) {
        assert_eq!(a["text"], b["text"]);
        for key in ["itm_probability", "itc_similarity"] {
            let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!((x - y).abs() < 1e-5, "{key}: {x} against {y}");
        }
    }
}

/// The reduced study (`StudyConfig::reduced`) with 2 micro-batches a step,
/// so that 2 processes share every step.
const STUDY: &str = r#"{"synthetic_figures": 260, "test": 40, "val": 10, "ft1": 60, "ft2_extra": 30,
"scenes": 120, "image_size": 32, "patch_size": 16, "width": 32, "layers": 1,
"base_training": {"epochs": 0, "max_steps": 40, "lr": 0.005, "micro_batch": 8, "accumulation": 2,
  "loss": "ce", "schedule": "constant", "warmup_steps": 0, "label_smoothing": 0.0},
"fine_tuning": {"epochs": 0, "max_steps": 100, "lr": 0.005, "micro_batch": 4, "accumulation": 2,
  "loss": "ce+contrastive", "schedule": "constant", "warmup_steps": 0, "label_smoothing": 0.0},
"max_new_tokens": 16, "caption_batch": 20, "report_sample": 12, "bootstrap": 200}"#;

#[test]
fn the_study_under_torchrun_equals_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("study.json"), STUDY).unwrap();
    let args = |out: &str| {
        [
            "reproduce",
            "--config",
            "study.json",
            "--device",
            "cpu",
            "--out",
            out,
        ]
        .map(str::to_owned)
    };
    // One thread in every process, as under torchrun below: libtorch's
    // sums then add in the same order, and 140 Adam steps do not amplify a
    // last-bit difference into other captions.
    let alone = Command::new(env!("CARGO_BIN_EXE_medcap"))
        .args(args("one"))
        .current_dir(tmp.path())
        .env("MEDCAP_LOG", "warn")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    succeeded(&alone);
    let shared = Command::new(torchrun_path())
        .args(["--standalone", "--nproc-per-node", "2", "--no-python"])
        .arg(env!("CARGO_BIN_EXE_medcap"))
        .args(args("two"))
        .current_dir(tmp.path())
        .env("MEDCAP_LOG", "warn")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    succeeded(&shared);
    // Rank 0 alone prints the table (once, not once per process).
    let rows = |out: &Output| text(&out.stdout).matches("| FT-2").count();
    assert!(rows(&alone) > 0);
    assert_eq!(rows(&alone), rows(&shared), "{}", text(&shared.stdout));
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    for stage in ["data", "base", "ft1", "ft2", "eval", "report"] {
        assert!(
            two.join(format!("stages/{stage}.json")).is_file(),
            "{stage}"
        );
    }
    // The data is rank 0's, whole; the models equal one process's to
    // about 1e-6, so their captions are the same (a greedy or beam choice
    // could in principle turn on such a difference: allow one in 40).
    assert_eq!(
        std::fs::read(one.join("data/prepared/test.csv")).unwrap(),
        std::fs::read(two.join("data/prepared/test.csv")).unwrap()
    );
    for model in ["base", "ft1", "ft2"] {
        let rows = |dir: &Path| -> Vec<(String, String)> {
            std::fs::read_to_string(dir.join(format!("eval/{model}/captions.jsonl")))
                .unwrap()
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    (v["row"]["id"].to_string(), v["row"]["caption"].to_string())
                })
                .collect()
        };
        let (a, b) = (rows(&one), rows(&two));
        assert_eq!(a.len(), 40);
        assert_eq!(
            a.iter().map(|r| &r.0).collect::<Vec<_>>(),
            b.iter().map(|r| &r.0).collect::<Vec<_>>(),
            "{model}: every test figure once, in order"
        );
        let differ = a.iter().zip(&b).filter(|(x, y)| x.1 != y.1).count();
        assert!(differ <= 1, "{model}: {differ} captions differ");
    }
    assert!(two.join("report/index.html").is_file());
    assert_no_leftovers_in(&two);
}
