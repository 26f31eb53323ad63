#![no_main]
//! `cargo +nightly fuzz run spf_record`: see scripts/fuzz.sh.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailwarden::fuzzing::spf_record(data);
});
