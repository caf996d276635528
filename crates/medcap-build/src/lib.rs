//! Build-script helper shared by every package whose binaries, tests or
//! examples link libtorch.
//!
//! Two link-time facts are handled here, once:
//! - the libtorch directory is written into each binary's run path, so
//!   `cargo test`, `cargo run --example` and an installed `medcap` find
//!   `libtorch*.so` without `LD_LIBRARY_PATH`;
//! - `libtorch_cuda` is linked with `--no-as-needed`. Nothing references its
//!   symbols directly (CUDA kernels register themselves when the library
//!   loads), so the default `--as-needed` would drop it and CUDA would never
//!   be available, even on a machine with a GPU.
//!
//! Link arguments from a build script apply only to the package's own
//! targets, which is why each such package calls [`link_libtorch`] from its
//! `build.rs`.
//!
//! In `build.rs`:
//!
//! ```no_run
//! medcap_build::link_libtorch();
//! ```

// Build scripts talk to cargo through stdout.
#![allow(clippy::print_stdout)]

use std::path::Path;

/// Environment variables that carry the libtorch `lib` directory to a build
/// script: torch-sys exports it to its direct dependents (medcap-model), and
/// medcap-model exports it again to its own direct dependents.
const LIB_DIR_VARS: [&str; 2] = ["DEP_TCH_LIBTORCH_LIB", "DEP_MEDCAP_MODEL_LIBTORCH_LIB"];

/// Emits the run-path and CUDA link arguments for this package's binaries.
///
/// Does nothing when the package does not (transitively, through a direct
/// dependency on medcap-model or torch-sys) link libtorch, so it is safe to
/// call from a package whose libtorch use is behind a cargo feature.
pub fn link_libtorch() {
    link(None);
}

/// [`link_libtorch`] for a package whose binaries are not all meant to
/// load libtorch: `libtorch_cuda` is forced only into `bins` (and the
/// package's tests), so that its other binaries keep no libtorch at all
/// when their code references none (the `medcap` front end).
pub fn link_libtorch_in(bins: &[&str]) {
    link(Some(bins));
}

/// For a package that never links libtorch itself but whose tests and
/// benchmarks use medcap-model (a dev-dependency, whose `links` metadata
/// cargo does not hand to this build script): the run path of libtorch's
/// `lib`, from the `LIBTORCH` that `cargo xtask setup` records, written into
/// those test and benchmark binaries only.
pub fn link_libtorch_in_tests() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(torch) = std::env::var("LIBTORCH") else {
        return;
    };
    let dir = Path::new(&torch).join("lib");
    println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{}", dir.display());
    println!("cargo:rustc-link-arg-benches=-Wl,-rpath,{}", dir.display());
}

fn link(bins: Option<&[&str]>) {
    for var in LIB_DIR_VARS {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let Some(dir) = LIB_DIR_VARS.iter().find_map(|v| std::env::var(v).ok()) else {
        return;
    };
    // Re-exported for this package's dependents when it declares `links`.
    println!("cargo:libtorch_lib={dir}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    if Path::new(&dir).join("libtorch_cuda.so").exists() {
        let cuda = "-Wl,--no-as-needed,-ltorch_cuda,--as-needed";
        match bins {
            None => println!("cargo:rustc-link-arg={cuda}"),
            Some(bins) => {
                for bin in bins {
                    println!("cargo:rustc-link-arg-bin={bin}={cuda}");
                }
                println!("cargo:rustc-link-arg-tests={cuda}");
            }
        }
    }
}
