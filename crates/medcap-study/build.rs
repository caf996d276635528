//! Links libtorch into this package's tests (run path, libtorch_cuda kept).
fn main() {
    medcap_build::link_libtorch();
}
