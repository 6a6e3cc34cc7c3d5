//! Fuzz target `json`: its body, and what it checks, is
//! `shoal::fuzzing::json`. Imports nothing else.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shoal::fuzzing::json(data));
