#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| crdt_fuzz::directory(data));
