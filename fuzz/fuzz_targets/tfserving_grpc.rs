#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| inferlink_fuzz_entry::tfserving_grpc(data));
