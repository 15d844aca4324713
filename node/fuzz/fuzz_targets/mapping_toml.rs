//! Fuzz target `mapping_toml`: see `vrs_node::fuzzing::mapping_toml` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vrs_node::fuzzing::mapping_toml(data));
