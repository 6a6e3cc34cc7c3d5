//! Fuzz target `validate`: its body, and what it checks, is
//! `shoal::fuzzing::validate`. Imports nothing else.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shoal::fuzzing::validate(data));
