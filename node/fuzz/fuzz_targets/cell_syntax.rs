//! Fuzz target `cell_syntax`: see `vrs_node::fuzzing::cell_syntax` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vrs_node::fuzzing::cell_syntax(data));
