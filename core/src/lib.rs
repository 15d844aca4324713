//! Domain types shared by VRS Federation nodes and the coordinator.
//!
//! - [`codes`]: typed code lists (ISO 3166-1 alpha-3 countries with `UNK`/`XKX`/`XXA`, ISO 4217
//!   currencies, and the closed vocabularies of the data model), each buildable only valid.
//! - [`period`]: months, quarters and years, and how query bounds are written.
//! - [`query`]: the query model: units, dimensions, filters; [`query::Query::parse`] is the one
//!   door from untrusted input to a checked query.
//! - [`signing`]: Ed25519 query signatures over a domain-separated message.
//! - [`answer`]: the released form of an answer: cells that are values or suppressed with a reason.
//!
//! Data flows one way: raw strings (command line or wire) → [`query::Query`] → node (SQL, disclosure
//! control) → [`answer::Answer`] → coordinator (merge). Nothing here does I/O.
#![forbid(unsafe_code)]

pub mod answer;
pub mod codes;
mod iso;
pub mod period;
pub mod query;
pub mod signing;
