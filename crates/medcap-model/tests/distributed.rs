//! Process groups over c10d, as users launch them: two processes under the
//! project's own `torchrun` (the agent serves the store), two started by
//! hand with `RANK`/`WORLD_SIZE`/`MASTER_ADDR`/`MASTER_PORT` (rank 0 serves
//! it), a rank that never comes and a rank that dies after joining (an
//! error naming the surviving rank and the operation, within the timeout,
//! never a hang). Each worker is this test binary run again, with
//! `MEDCAP_DIST_WORKER` saying what it does.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use medcap_model::distributed::{ProcessGroup, World};
use tch::{Kind, Tensor};

const MODE: &str = "MEDCAP_DIST_WORKER";

/// `torchrun` of the environment setup made (beside libtorch's `torch`
/// package: `.venv/bin/torchrun`).
fn torchrun() -> PathBuf {
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

/// This test binary running `distributed::worker` alone.
fn worker_args() -> Vec<String> {
    [
        "--ignored",
        "--exact",
        "distributed::worker",
        "--nocapture",
        "--test-threads",
        "1",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What a worker does, by `MEDCAP_DIST_WORKER`: `collectives` checks every
/// collective against the values it must give; `die` leaves after joining
/// (rank 1) while rank 0 all-reduces; `alone` is rank 0 of a group whose
/// other rank never comes.
#[test]
#[ignore = "a worker process of the tests below, not a test of its own"]
fn worker() {
    // Run by hand (`cargo test -- --ignored`), it has nothing to do.
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let world = World::from_env().unwrap().unwrap();
    // "alone" waits for a rank that never comes: a short timeout. The
    // others join with time to spare for a loaded machine ("die" then
    // meets its dead peer in the collective, within that timeout).
    let timeout = Duration::from_secs(match mode.as_str() {
        "alone" => 4,
        "die" => 60,
        _ => 120,
    });
    let group = match ProcessGroup::join(world, timeout) {
        Ok(group) => group,
        Err(e) => {
            eprintln!("worker error: {e}");
            std::process::exit(3);
        }
    };
    let (rank, size) = (group.rank(), group.size());
    match mode.as_str() {
        "collectives" => {
            let mut sum = Tensor::full([4], (rank + 1) as f64, (Kind::Float, tch::Device::Cpu));
            group.all_reduce_sum(&mut sum).unwrap();
            let want = (size * (size + 1) / 2) as f64;
            assert_eq!(Vec::<f32>::try_from(&sum).unwrap(), vec![want as f32; 4]);
            let mut shared = if rank == 0 {
                Tensor::arange(3, (Kind::Int64, tch::Device::Cpu)) * 10
            } else {
                Tensor::zeros([3], (Kind::Int64, tch::Device::Cpu))
            };
            group.broadcast(&mut shared, 0).unwrap();
            assert_eq!(Vec::<i64>::try_from(&shared).unwrap(), vec![0, 10, 20]);
            let mine = Tensor::full([2], (rank * 100) as f64, (Kind::Double, tch::Device::Cpu));
            let all = group.all_gather(&mine).unwrap();
            for (r, t) in all.iter().enumerate() {
                assert_eq!(Vec::<f64>::try_from(t).unwrap(), vec![(r * 100) as f64; 2]);
            }
            group.barrier().unwrap();
            // One write, so that the two ranks' lines never interleave.
            let line = format!("rank {rank} of {size}: collectives ok\n");
            std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes()).unwrap();
        }
        "die" if rank == 1 => std::process::exit(0),
        "die" => {
            let started = Instant::now();
            std::thread::sleep(Duration::from_millis(500));
            let mut t = Tensor::ones([8], (Kind::Float, tch::Device::Cpu));
            let err = group.all_reduce_sum(&mut t).unwrap_err();
            eprintln!(
                "worker error after {:.1} s: {err}",
                started.elapsed().as_secs_f64()
            );
            std::process::exit(3);
        }
        other => panic!("unknown mode {other}"),
    }
}

#[test]
fn two_processes_under_torchrun_reduce_broadcast_gather_and_meet() {
    let out = Command::new(torchrun())
        .args(["--standalone", "--nproc-per-node", "2", "--no-python"])
        .arg(std::env::current_exe().unwrap())
        .args(worker_args())
        .env(MODE, "collectives")
        .output()
        .unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    for rank in 0..2 {
        assert!(
            log.contains(&format!("rank {rank} of 2: collectives ok")),
            "{log}"
        );
    }
}

/// Workers started by hand, one per `(rank, mode)`, with the variables a
/// scheduler would set; their outputs in rank order.
fn by_hand(size: usize, ranks: &[usize], mode: &str) -> Vec<Output> {
    // The free port may be taken between its lookup and rank 0's bind (by
    // another test's connection): then again, on another port.
    for _ in 0..3 {
        let outs = by_hand_on(free_port(), size, ranks, mode);
        if !text(&outs[0]).contains("ddress already in use") {
            return outs;
        }
    }
    panic!("no free port for the store after 3 tries");
}

fn by_hand_on(port: u16, size: usize, ranks: &[usize], mode: &str) -> Vec<Output> {
    let port = port.to_string();
    let children: Vec<_> = ranks
        .iter()
        .map(|rank| {
            Command::new(std::env::current_exe().unwrap())
                .args(worker_args())
                .env(MODE, mode)
                .env("RANK", rank.to_string())
                .env("WORLD_SIZE", size.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .env_remove("TORCHELASTIC_USE_AGENT_STORE")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

#[test]
fn processes_started_by_hand_meet_through_rank_zeros_store() {
    let outs = by_hand(2, &[0, 1], "collectives");
    for (rank, out) in outs.iter().enumerate() {
        assert!(out.status.success(), "rank {rank}: {}", text(out));
        assert!(text(out).contains(&format!("rank {rank} of 2: collectives ok")));
    }
}

#[test]
fn a_rank_that_never_comes_is_an_error_naming_this_rank_within_the_timeout() {
    let started = Instant::now();
    let outs = by_hand(2, &[0], "alone");
    let log = text(&outs[0]);
    assert_eq!(outs[0].status.code(), Some(3), "{log}");
    assert!(
        log.contains("worker error: rank 0: joining the process group"),
        "{log}"
    );
    // A 4-second timeout: the process ends well before a minute.
    assert!(started.elapsed() < Duration::from_secs(60), "{log}");
}

#[test]
fn a_rank_that_dies_fails_the_others_collective_instead_of_hanging() {
    let outs = by_hand(2, &[0, 1], "die");
    let log = text(&outs[0]);
    assert_eq!(outs[0].status.code(), Some(3), "{log}");
    assert!(log.contains("rank 0: all-reduce:"), "{log}");
}

#[test]
fn a_launcher_environment_that_is_not_a_group_is_named() {
    let from = |vars: &'static [(&'static str, &'static str)]| {
        World::from_vars(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    };
    assert!(from(&[("WORLD_SIZE", "1")]).unwrap().is_none());
    for (vars, says) in [
        (&[("WORLD_SIZE", "2")][..], "RANK is not set"),
        (
            &[("WORLD_SIZE", "two")][..],
            "WORLD_SIZE=\"two\" is not a whole number",
        ),
        (
            &[("WORLD_SIZE", "2"), ("RANK", "2")][..],
            "RANK=2 is outside WORLD_SIZE=2",
        ),
        (
            &[("WORLD_SIZE", "2"), ("RANK", "1")][..],
            "MASTER_ADDR is not set",
        ),
        (
            &[
                ("WORLD_SIZE", "2"),
                ("RANK", "1"),
                ("MASTER_ADDR", "h"),
                ("MASTER_PORT", "99999"),
            ][..],
            "MASTER_PORT=\"99999\" is not a port number",
        ),
    ] {
        let err = from(vars).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
}
