//! VRS node library.
#![forbid(unsafe_code)]
