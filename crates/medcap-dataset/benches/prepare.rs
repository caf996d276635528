//! Throughput of `prepare`'s metadata pass on a synthetic JSONL of MedICaT's
//! full size (217,060 records), images not checked.
//!
//! `cargo bench -p medcap-dataset` (or `cargo xtask bench`). Prints records
//! per second for each of a few runs and the best; the file is generated
//! once per run of the benchmark, outside the timed part.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use medcap_dataset::layout;
use medcap_dataset::prepare::{NoProgress, PrepareOptions, prepare};
use medcap_dataset::synth::{SynthConfig, write_jsonl_only};

const MEDICAT_RECORDS: usize = 217_060;
const RUNS: usize = 3;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join(layout::RELEASE_DIR);
    std::fs::create_dir_all(release.join(layout::FIGURES_DIR)).unwrap();
    let jsonl = release.join(layout::JSONL_NAME);
    let config = SynthConfig {
        figures: MEDICAT_RECORDS,
        seed: 1,
        non_chest_share: 0.2,
    };
    let t = Instant::now();
    write_jsonl_only(&jsonl, &config).unwrap();
    let bytes = std::fs::metadata(&jsonl).unwrap().len();
    println!(
        "generated {MEDICAT_RECORDS} records ({:.1} MB) in {:.2} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    println!("rayon threads: {}", rayon::current_num_threads());

    let options = PrepareOptions {
        check_images: false,
        ..PrepareOptions::default()
    };
    let mut best = f64::INFINITY;
    for run in 1..=RUNS {
        let out = dir.path().join(format!("out{run}"));
        let t = Instant::now();
        let summary = prepare(&release, &out, &options, &NoProgress).unwrap();
        let secs = t.elapsed().as_secs_f64();
        best = best.min(secs);
        assert_eq!(summary.lines, MEDICAT_RECORDS as u64);
        println!(
            "prepare (metadata pass) run {run}: {secs:.2} s, {:.0} records/s, {} usable",
            MEDICAT_RECORDS as f64 / secs,
            summary.usable
        );
    }
    println!(
        "best: {best:.2} s, {:.0} records/s",
        MEDICAT_RECORDS as f64 / best
    );
}
