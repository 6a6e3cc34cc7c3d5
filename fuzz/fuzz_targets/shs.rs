//! Fuzz target `shs`: its body, and what it checks, is
//! `shoal::fuzzing::shs`. Imports nothing else.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shoal::fuzzing::shs(data));
