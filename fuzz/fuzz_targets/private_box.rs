//! Fuzz target `private_box`: its body, and what it checks, is
//! `shoal::fuzzing::private_box`. Imports nothing else.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shoal::fuzzing::private_box(data));
