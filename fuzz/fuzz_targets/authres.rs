#![no_main]
//! `cargo +nightly fuzz run authres`: see scripts/fuzz.sh.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailwarden::fuzzing::authres(data);
});
