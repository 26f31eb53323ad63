#![no_main]
//! `cargo +nightly fuzz run auth_fields`: see scripts/fuzz.sh.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailwarden::fuzzing::auth_fields(data);
});
