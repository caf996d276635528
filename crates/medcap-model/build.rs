//! Links libtorch into this package's tests and re-exports its location, and
//! compiles `csrc/amp.cpp` and `csrc/dist.cpp`: the libtorch calls tch does
//! not bind (autocast for a chosen device and dtype, the CUDA allocator's
//! peak statistics; c10d's TCPStore and Gloo process group, with Gloo's own
//! headers from `vendor/gloo`, which the torch wheel does not ship).
fn main() {
    medcap_build::link_libtorch();
    println!("cargo:rerun-if-changed=csrc/amp.cpp");
    println!("cargo:rerun-if-changed=csrc/dist.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    // Documentation builds have no libtorch (tch's doc-only mode).
    if std::env::var_os("CARGO_FEATURE_DOC_ONLY").is_some() {
        return;
    }
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let include = std::path::Path::new(&lib)
        .parent()
        .map(|torch| torch.join("include"))
        .unwrap_or_default();
    // torch's wheels since 2.7 use the C++11 ABI, as torch-sys assumes by default.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
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
        .warnings(false)
        .compile("medcap_amp");
}
