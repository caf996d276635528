//! cargo-fuzz target `text_metrics`: [`medcap_fuzz::text_metrics`] over the fuzzer's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medcap_fuzz::text_metrics(data));
