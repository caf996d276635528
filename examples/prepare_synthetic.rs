//! Generates a small synthetic MedICaT release and prepares it: the dataset
//! stage of the study in a dozen lines of library calls.
//!
//! `cargo run --example prepare_synthetic -- [OUT_DIR]`
use std::io::Write;

use anyhow::Context;
use medcap_dataset::prepare::{NoProgress, PrepareOptions, prepare};
use medcap_dataset::split::SplitPlan;
use medcap_dataset::synth::{SynthConfig, generate};

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/example-prepare-synthetic".into());
    let out = std::path::Path::new(&out);
    let config = SynthConfig {
        figures: 400,
        seed: 7,
        non_chest_share: 0.2,
    };
    let synth =
        generate(&out.join("medicat"), &config).context("generating the synthetic data set")?;
    // Through the CLI's results writer: a full standard output is an error
    // that names it, not a panic.
    let mut stdout = medcap_cli::results_out::results_out();
    writeln!(
        stdout,
        "generated {} figures ({} chest radiographs) in {}",
        synth.figures,
        synth.chest_radiographs,
        synth.release_dir.display()
    )?;

    let options = PrepareOptions {
        plan: SplitPlan {
            test: 60,
            val: 30,
            ft1: 150,
            ft2_extra: 50,
        },
        seed: 7,
        ..PrepareOptions::default()
    };
    let summary = prepare(
        &synth.release_dir,
        &out.join("prepared"),
        &options,
        &NoProgress,
    )
    .context("preparing the synthetic data set")?;
    writeln!(
        stdout,
        "{} of {} records usable; splits:",
        summary.usable, summary.lines
    )?;
    for (name, count) in &summary.splits {
        writeln!(
            stdout,
            "  {name:>9}: {:>4} figures from {:>4} papers",
            count.figures, count.papers
        )?;
    }
    writeln!(stdout, "outputs in {}", out.join("prepared").display())?;
    stdout.flush()?;
    Ok(())
}
