//! Writes libtorch's location into the binary's run path (medcap-build); on
//! the GPU machine `run.sh` points `LD_LIBRARY_PATH` at that machine's torch.
fn main() {
    medcap_build::link_libtorch();
}
