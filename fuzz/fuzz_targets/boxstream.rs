//! Fuzz target `boxstream`: its body, and what it checks, is
//! `shoal::fuzzing::boxstream`. Imports nothing else.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shoal::fuzzing::boxstream(data));
