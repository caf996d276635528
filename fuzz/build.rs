//! Links libtorch into the examples (run path, libtorch_cuda kept).
fn main() {
    medcap_build::link_libtorch();
}
