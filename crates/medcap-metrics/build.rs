//! Links libtorch into this package's tests when the `bertscore` feature is on.
fn main() {
    medcap_build::link_libtorch();
}
