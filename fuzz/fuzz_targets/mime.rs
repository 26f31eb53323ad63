#![no_main]
//! `cargo +nightly fuzz run mime`: see scripts/fuzz.sh.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailwarden::fuzzing::mime(data);
});
