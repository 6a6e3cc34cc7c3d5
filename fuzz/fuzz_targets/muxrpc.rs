//! Fuzz target `muxrpc`: its body, and what it checks, is
//! `shoal::fuzzing::muxrpc`. Imports nothing else.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shoal::fuzzing::muxrpc(data));
