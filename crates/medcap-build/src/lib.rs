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
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
