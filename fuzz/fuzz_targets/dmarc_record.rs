#![no_main]
//! `cargo +nightly fuzz run dmarc_record`: see scripts/fuzz.sh.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailwarden::fuzzing::dmarc_record(data);
});
