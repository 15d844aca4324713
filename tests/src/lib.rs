//! Integration test harness.
#![forbid(unsafe_code)]
