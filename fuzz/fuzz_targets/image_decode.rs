//! cargo-fuzz target `image_decode`: [`medcap_fuzz::image_decode`] over the fuzzer's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medcap_fuzz::image_decode(data));
