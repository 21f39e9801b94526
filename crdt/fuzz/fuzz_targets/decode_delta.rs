#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    crdt_fuzz::round_trip::<crdt::model::Delta>(data);
});
