//! Runnable examples of the medcap crates live next to this file; run one
//! with `cargo run --example <name>`. This library is empty: the package
//! exists so that the workspace's `examples/` folder holds the examples.
