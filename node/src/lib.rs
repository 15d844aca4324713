//! The VRS Federation node: a country's own store of non-nominal smuggling records and the only
//! door through which aggregates of them leave.
//!
//! - [`record`]: the checked domain form of an incident and what hangs off it.
//! - [`store`]: the SQLite store (WAL, foreign keys, versioned migrations, secret record keys).
//! - [`fx`]: exchange rates for converting fees to USD at import.
//! - [`synth`]: a seeded generator of realistic synthetic records, by reporting country and route.
#![forbid(unsafe_code)]

pub mod fx;
pub mod record;
pub mod store;
pub mod synth;
