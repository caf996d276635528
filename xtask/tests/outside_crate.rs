//! What a Rust project that imports `medcap-metrics` gets: a crate outside
//! the workspace, depending on it alone with default features, builds
//! without libtorch (nothing in its dependency tree links it, and no
//! `LIBTORCH` or library path is set) and scores a caption.

use std::path::Path;
use std::process::Command;

const MAIN: &str = r#"
use medcap_metrics::caption_scores::{Metrics, score_captions};
use medcap_metrics::metric::Metric;

fn main() {
    let hyps = ["small left pleural effusion"];
    let refs = vec![vec!["left pleural effusion"]];
    let scored = score_captions(&hyps, &refs, &Metrics::default()).expect("one reference set per caption");
    let rouge_l = scored.summary[&Metric::RougeL].mean;
    let findings = scored.per_caption[0].findings_f1.unwrap_or(f64::NAN);
    println!("rougeL={rouge_l:.6} findings_f1={findings}");
}
"#;

#[test]
fn a_crate_depending_only_on_medcap_metrics_builds_without_libtorch_and_scores_a_caption() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("outside");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"outside\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nmedcap-metrics = {{ path = {:?} }}\n\n[workspace]\n",
            root.join("crates/medcap-metrics")
        ),
    )
    .unwrap();
    std::fs::write(project.join("src/main.rs"), MAIN).unwrap();
    // The workspace's versions, so that the build needs no registry access.
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let run = |args: &[&str]| {
        let out = Command::new(&cargo)
            .current_dir(&project)
            .args(args)
            .arg("--offline")
            .env("CARGO_TARGET_DIR", root.join("target/outside-crate"))
            .env_remove("LIBTORCH")
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("RUSTFLAGS")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "cargo {args:?} failed:\n{stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tree = run(&["tree", "--edges", "normal", "--prefix", "none"]);
    assert!(tree.contains("medcap-metrics"), "{tree}");
    for linked in ["tch ", "torch-sys", "medcap-model"] {
        assert!(!tree.contains(linked), "{linked} in the tree:\n{tree}");
    }
    let scored = run(&["run", "--quiet"]);
    assert_eq!(scored.trim(), "rougeL=0.857143 findings_f1=1");
}
