//! Links libtorch into `medcap-torch` (run path, libtorch_cuda kept); the
//! `medcap` front end references no libtorch symbol and so loads none.
fn main() {
    medcap_build::link_libtorch_in(&["medcap-torch"]);
}
