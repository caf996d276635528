//! Links libtorch into the medcap binary (run path, libtorch_cuda kept).
fn main() {
    medcap_build::link_libtorch();
}
