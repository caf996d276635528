//! The data commands, `medcap synth` and `medcap prepare`: glue over
//! medcap-dataset (no libtorch: the `medcap` front end runs them itself).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use medcap_dataset::filter::{FigureSelector, KeepAll, KeywordRule, StudyRule};
use medcap_dataset::formats::{ReleaseFormat, TableColumns};
use medcap_dataset::image_check::ImageLimits;
use medcap_dataset::prepare::{PrepareOptions, PrepareSummary, outputs, prepare};
use medcap_dataset::split::SplitPlan;
use medcap_dataset::synth::{SynthConfig, generate};

use crate::progress;
use medcap_cli::results_out::results_out;

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Directory to create the data set in (it will hold `release/`).
    #[arg(long)]
    out: PathBuf,
    /// Number of figures.
    #[arg(long, default_value_t = 1_000)]
    n: usize,
    /// Seed; the same seed and count give the same data set.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fraction of figures that are not chest radiographs.
    #[arg(long, default_value_t = 0.2)]
    non_chest_share: f64,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The MedICaT release directory, or the directory that contains `release/`
    /// (the same as `--format medicat --input DIR`).
    #[arg(long, conflicts_with_all = ["input", "format"], required_unless_present = "input")]
    medicat: Option<PathBuf>,
    /// The data set: a directory (MedICaT, ROCO, ROCOv2, PMC-OA) or, for
    /// `--format table`, a CSV/TSV/JSONL file.
    #[arg(long)]
    input: Option<PathBuf>,
    /// The data set's format; default: detected from the directory's layout.
    #[arg(long, value_enum)]
    format: Option<FormatName>,
    /// For `--format table`: which columns hold what,
    /// `image=COL,caption=COL,group=COL[,license=COL][,id=COL]`.
    #[arg(long, value_name = "SPEC")]
    columns: Option<String>,
    /// Keep only figures under these licences (comma-separated, any spelling:
    /// `CC BY,CC BY-NC` or `cc-by,cc-by-nc`).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    licence: Vec<String>,
    /// Keep the data set's published split (ROCO, ROCOv2, PMC-OA): its test and
    /// validation figures become test and val, its training figures FT-1 and FT-2.
    #[arg(long)]
    published_split: bool,
    /// ROCO: also read the non-radiology figures.
    #[arg(long)]
    non_radiology: bool,
    /// Output directory for the CSVs, splits and summary.
    #[arg(long)]
    out: PathBuf,
    /// Keep captions with this whole word, any case (repeatable; default: chest).
    #[arg(long = "keyword", value_name = "WORD")]
    keywords: Vec<String>,
    /// Drop captions with this whole word, any case (repeatable).
    #[arg(long = "exclude", value_name = "WORD")]
    excludes: Vec<String>,
    /// Use the study's own rule instead: case-sensitive `Chest`, `Brain` set aside first.
    #[arg(long, conflicts_with_all = ["keywords", "excludes"])]
    study_rule: bool,
    /// Keep every figure (no selection): data already selected, or a whole data set measured.
    #[arg(long, conflicts_with_all = ["keywords", "excludes", "study_rule"])]
    all_figures: bool,
    /// Also write cleanup_audit.jsonl: each caption cleanup changed, the words it removed, and
    /// those no removal rule accounts for.
    #[arg(long)]
    cleanup_audit: bool,
    /// Seed of the paper-grouped split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop at the first malformed record (a JSONL line, a CSV record that does not fit its
    /// header, ...) instead of reporting and skipping it.
    #[arg(long)]
    strict: bool,
    /// Do not open images; only check that their names stay inside the release.
    #[arg(long)]
    skip_image_check: bool,
    /// Test figures.
    #[arg(long, default_value_t = SplitPlan::default().test)]
    test: usize,
    /// Validation figures.
    #[arg(long, default_value_t = SplitPlan::default().val)]
    val: usize,
    /// FT-1 training figures.
    #[arg(long, default_value_t = SplitPlan::default().ft1)]
    ft1: usize,
    /// Figures FT-2 adds to FT-1's.
    #[arg(long, default_value_t = SplitPlan::default().ft2_extra)]
    ft2_extra: usize,
}

pub fn synth(args: SynthArgs) -> Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.non_chest_share),
        "--non-chest-share {} is not a fraction between 0 and 1",
        args.non_chest_share
    );
    let config = SynthConfig {
        figures: args.n,
        seed: args.seed,
        non_chest_share: args.non_chest_share,
    };
    let summary = generate(&args.out, &config).with_context(|| {
        format!(
            "cannot generate a synthetic data set in {}",
            args.out.display()
        )
    })?;
    let mut out = results_out();
    writeln!(
        out,
        "{} figures ({} chest radiographs) from {} papers in {}",
        summary.figures,
        summary.chest_radiographs,
        summary.papers,
        summary.release_dir.display()
    )?;
    out.flush()?;
    Ok(())
}

fn selector(args: &PrepareArgs) -> Result<Box<dyn FigureSelector>> {
    if args.study_rule {
        return Ok(Box::new(StudyRule));
    }
    if args.all_figures {
        return Ok(Box::new(KeepAll));
    }
    let include: Vec<&str> = if args.keywords.is_empty() {
        vec!["chest"]
    } else {
        args.keywords.iter().map(String::as_str).collect()
    };
    let exclude: Vec<&str> = args.excludes.iter().map(String::as_str).collect();
    Ok(Box::new(
        KeywordRule::new(&include, &exclude).context("invalid --keyword or --exclude")?,
    ))
}

/// `--format`'s values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatName {
    Medicat,
    Roco,
    Rocov2,
    PmcOa,
    Table,
}

fn release_format(args: &PrepareArgs) -> Result<Option<ReleaseFormat>> {
    if args.medicat.is_some() {
        return Ok(Some(ReleaseFormat::Medicat));
    }
    if args.columns.is_some() && !matches!(args.format, Some(FormatName::Table)) {
        bail!("--columns applies to --format table only");
    }
    Ok(match args.format {
        None => None,
        Some(FormatName::Medicat) => Some(ReleaseFormat::Medicat),
        Some(FormatName::Roco) => Some(ReleaseFormat::Roco {
            non_radiology: args.non_radiology,
        }),
        Some(FormatName::Rocov2) => Some(ReleaseFormat::Rocov2),
        Some(FormatName::PmcOa) => Some(ReleaseFormat::PmcOa),
        Some(FormatName::Table) => {
            let spec = args
                .columns
                .as_deref()
                .context("--format table needs --columns image=COL,caption=COL,group=COL")?;
            Some(ReleaseFormat::Table(TableColumns::parse(spec)?))
        }
    })
}

pub fn prepare_command(args: PrepareArgs) -> Result<()> {
    let mut format = release_format(&args)?;
    let input = match (&args.medicat, &args.input) {
        (Some(dir), _) | (None, Some(dir)) => dir.clone(),
        (None, None) => bail!("name the data set with --input DIR (or --medicat DIR)"),
    };
    if args.non_radiology {
        // Detected as ROCO, with the non-radiology figures asked for.
        if format.is_none() {
            format = Some(ReleaseFormat::detect(&input)?);
        }
        match &mut format {
            Some(ReleaseFormat::Roco { non_radiology }) => *non_radiology = true,
            other => bail!(
                "--non-radiology applies to ROCO only, not to {}",
                other.as_ref().map_or("this data set", ReleaseFormat::name)
            ),
        }
    }
    let options = PrepareOptions {
        format,
        licences: (!args.licence.is_empty()).then(|| args.licence.clone()),
        published_split: args.published_split,
        cleanup_audit: args.cleanup_audit,
        selector: selector(&args)?,
        plan: SplitPlan {
            test: args.test,
            val: args.val,
            ft1: args.ft1,
            ft2_extra: args.ft2_extra,
        },
        seed: args.seed,
        strict: args.strict,
        check_images: !args.skip_image_check,
        limits: ImageLimits::default(),
        path_tree: None,
    };
    let bars = progress::Bars::new();
    let summary = prepare(&input, &args.out, &options, &bars)
        .with_context(|| format!("cannot prepare the data set at {}", input.display()))?;
    let mut out = results_out();
    print_summary(&mut out, &summary)?;
    writeln!(
        out,
        "outputs in {} ({}, split CSVs, {})",
        args.out.display(),
        outputs::FIGURES,
        outputs::SUMMARY
    )?;
    out.flush()?;
    Ok(())
}

fn print_summary(out: &mut impl Write, s: &PrepareSummary) -> std::io::Result<()> {
    writeln!(
        out,
        "read {} records of {} ({})",
        s.lines,
        s.jsonl.display(),
        s.format
    )?;
    writeln!(out, "  malformed lines:         {}", s.malformed)?;
    writeln!(out, "  duplicate records:       {}", s.duplicates)?;
    writeln!(out, "  no caption:              {}", s.empty_caption)?;
    writeln!(out, "  other licence:           {}", s.licence_excluded)?;
    writeln!(out, "  excluded:                {}", s.excluded)?;
    writeln!(out, "  no keyword:              {}", s.no_keyword)?;
    writeln!(
        out,
        "  selected:                {}  ({})",
        s.selected, s.selector
    )?;
    writeln!(out, "  empty after cleanup:     {}", s.empty_after_cleanup)?;
    writeln!(
        out,
        "  captions cleaned:        {} changed, {} lost a word no rule accounts for",
        s.cleanup_changed, s.cleanup_unexpected
    )?;
    let i = &s.images;
    if i.checked {
        writeln!(
            out,
            "  images: ok {}, missing {}, outside root {}, undecodable {}, bad dimensions {}",
            i.ok, i.missing, i.outside_root, i.undecodable, i.bad_dimensions
        )?;
    } else {
        writeln!(
            out,
            "  images: not checked; outside root {}",
            i.outside_root
        )?;
    }
    writeln!(out, "  usable figures:          {}", s.usable)?;
    for (name, c) in &s.splits {
        let requested = c.requested.map(|r| format!(" of {r}")).unwrap_or_default();
        writeln!(
            out,
            "  split {name:<10} {:>6}{requested} figures from {} papers",
            c.figures, c.papers
        )?;
    }
    Ok(())
}
