//! VRS coordinator library.
#![forbid(unsafe_code)]
