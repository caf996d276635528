//! Links libtorch into this package's tests and re-exports its location, and
//! compiles `csrc/amp.cpp` and `csrc/dist.cpp`: the libtorch calls tch does
//! not bind (autocast for a chosen device and dtype, the CUDA allocator's
//! peak statistics; c10d's TCPStore and Gloo process group, with Gloo's own
//! headers from `vendor/gloo`, which the torch wheel does not ship). With a
//! CUDA libtorch whose NCCL and CUDA headers are found (the torch wheel's
//! `nvidia/*/include` directories beside it, which `cargo xtask setup`
//! completes), also `csrc/dist_nccl.cpp`, c10d's NCCL process group, and
//! sets `cfg(medcap_nccl)`; otherwise `MEDCAP_NCCL_MISSING` says why, for
//! the error a user of NCCL then gets.
use std::path::{Path, PathBuf};

/// Headers ProcessGroupNCCL.hpp needs beyond libtorch's own.
const NCCL_HEADERS: [&str; 4] = ["nccl.h", "cuda_runtime.h", "crt/host_config.h", "nv/target"];

fn main() {
    medcap_build::link_libtorch();
    for file in ["amp.cpp", "dist.cpp", "dist.h", "dist_nccl.cpp"] {
        println!("cargo:rerun-if-changed=csrc/{file}");
    }
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo::rustc-check-cfg=cfg(medcap_nccl)");
    // Documentation builds have no libtorch (tch's doc-only mode).
    if std::env::var_os("CARGO_FEATURE_DOC_ONLY").is_some() {
        println!("cargo:rustc-env=MEDCAP_NCCL_MISSING=a documentation build");
        return;
    }
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:rustc-env=MEDCAP_NCCL_MISSING=no libtorch");
        return;
    };
    let lib = PathBuf::from(lib);
    let torch = lib.parent().map(Path::to_owned).unwrap_or_default();
    let include = torch.join("include");
    // torch's wheels since 2.7 use the C++11 ABI, as torch-sys assumes by default.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("csrc/amp.cpp")
        .file("csrc/dist.cpp")
        .include(&include)
        .include("vendor/gloo/include")
        // Without it ProcessGroupGloo.hpp declares nothing.
        .define("USE_C10D_GLOO", None)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false);
    let nvidia = torch.join("..").join("nvidia");
    // Headers installed later (setup completing the wheels) rebuild this.
    if nvidia.is_dir() {
        println!("cargo:rerun-if-changed={}", nvidia.display());
    }
    match nccl_includes(&lib, &nvidia) {
        Ok(dirs) => {
            build
                .file("csrc/dist_nccl.cpp")
                .includes(dirs)
                .define("USE_C10D_NCCL", None)
                .define("MEDCAP_NCCL", None)
                // c10's CUDA headers align a pool to the cache line; 64 on
                // every x86-64 compiler, as libtorch was built with.
                .flag_if_supported("-Wno-interference-size");
            println!("cargo:rustc-cfg=medcap_nccl");
            build.compile("medcap_amp");
            // ProcessGroupNCCL and c10::cuda::set_device live there; after
            // the static library on the link line.
            println!("cargo:rustc-link-lib=dylib=torch_cuda");
            println!("cargo:rustc-link-lib=dylib=c10_cuda");
        }
        Err(missing) => {
            println!("cargo:rustc-env=MEDCAP_NCCL_MISSING={missing}");
            build.compile("medcap_amp");
        }
    }
}

/// The include directories of NCCL and the CUDA runtime in the wheels
/// beside torch's (`site-packages/nvidia/*/include`), or why there are none.
fn nccl_includes(lib: &Path, nvidia: &Path) -> Result<Vec<PathBuf>, String> {
    if !lib.join("libtorch_cuda.so").exists() {
        return Err(format!(
            "the libtorch in {} is built without CUDA",
            lib.display()
        ));
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(nvidia)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("include"))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    let missing: Vec<&str> = NCCL_HEADERS
        .iter()
        .copied()
        .filter(|h| !dirs.iter().any(|d| d.join(h).exists()))
        .collect();
    if missing.is_empty() {
        Ok(dirs)
    } else {
        Err(format!(
            "the headers {} are not in {}/*/include (cargo xtask setup installs them beside the project's torch)",
            missing.join(", "),
            nvidia.display()
        ))
    }
}
