#![no_main]
//! `cargo +nightly fuzz run milter`: see scripts/fuzz.sh.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailwarden::fuzzing::milter(data);
});
