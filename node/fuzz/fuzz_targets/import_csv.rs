//! Fuzz target `import_csv`: see `vrs_node::fuzzing::import_csv` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vrs_node::fuzzing::import_csv(data));
