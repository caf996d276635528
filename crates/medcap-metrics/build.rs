//! Run path of libtorch for this package's tests and benchmarks, which use
//! medcap-model's BERTScore encoder (the library itself links no libtorch).
fn main() {
    medcap_build::link_libtorch_in_tests();
}
