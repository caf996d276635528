//! Links libtorch into this package's tests and re-exports its location.
fn main() {
    medcap_build::link_libtorch();
}
