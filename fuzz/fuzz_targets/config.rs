//! cargo-fuzz target `config`: [`medcap_fuzz::config`] over the fuzzer's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medcap_fuzz::config(data));
