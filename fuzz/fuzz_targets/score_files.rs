//! cargo-fuzz target `score_files`: [`medcap_fuzz::score_files`] over the fuzzer's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medcap_fuzz::score_files(data));
