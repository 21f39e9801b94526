#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    crdt_fuzz::state::<crdt::model::Inode>(data);
});
