//! cargo-fuzz target `jsonl_reader`: [`medcap_fuzz::jsonl_reader`] over the fuzzer's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medcap_fuzz::jsonl_reader(data));
