#![no_main]
//! `cargo +nightly fuzz run config`: see scripts/fuzz.sh.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailwarden::fuzzing::config(data);
});
