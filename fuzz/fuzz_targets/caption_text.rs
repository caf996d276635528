//! cargo-fuzz target `caption_text`: [`medcap_fuzz::caption_text`] over the fuzzer's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medcap_fuzz::caption_text(data));
