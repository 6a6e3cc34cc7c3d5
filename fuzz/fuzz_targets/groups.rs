//! Fuzz target `groups`: its body, and what it checks, is
//! `shoal::fuzzing::groups`. Imports nothing else.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shoal::fuzzing::groups(data));
