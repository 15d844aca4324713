//! Fuzz target `query_envelope`: see `vrs_node::fuzzing::query_envelope` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vrs_node::fuzzing::query_envelope(data));
