//! Development CA.
#![forbid(unsafe_code)]
