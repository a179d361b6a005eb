#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| inferlink_fuzz_entry::oip_json(data));
