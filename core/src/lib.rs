//! Domain types shared by VRS Federation nodes and the coordinator.
//!
//! - [`codes`]: typed code lists (ISO 3166-1 alpha-3 countries with `UNK`/`XKX`/`XXA`, ISO 4217
//!   currencies, and the closed vocabularies of the data model), each buildable only valid.
//! - [`period`]: months, quarters and years, and how query bounds are written.
//! - [`query`]: the query model: units, dimensions, filters; [`query::Query::parse`] is the one
//!   door from untrusted input to a checked query.
//! - [`cli`]: the command-line skeleton both binaries share: global flags, query flags, `main`.
//! - [`manual`]: man pages and shell completions generated from a binary's clap definition.
//! - [`clock`]: the injectable wall clock ([`clock::SystemClock`], [`clock::ManualClock`]).
//! - [`table`]: aligned text and CSV rendering of result tables.
//! - [`terminal`]: peer-provided text made safe for an operator's terminal.
//! - [`signing`]: Ed25519 query signatures over a domain-separated message.
//! - [`audit_chain`]: how audit entries are chained, the node's signed audit receipts, and the check
//!   of an exported log against them.
//! - [`regional`]: regional mode's Prio3SumVec reports, verification, aggregation and noise.
//! - [`answer`]: the released form of an answer: cells that are values or suppressed with a reason.
//! - [`tls`]: mutual TLS 1.3 (rustls + ring): config loading, certificate identities, the server's
//!   handshake stream and the client's connector. The one part of this crate that does I/O.
//! - [`telemetry`]: tracing set-up (human or JSON on stderr, `RUST_LOG` filter).
//! - `wire` (private): `RawQuery` → `pb::Query`, the one conversion to the wire both sides use.
//!
//! Data flows one way: raw strings (command line or wire) → [`query::Query`] → node (SQL, disclosure
//! control) → [`answer::Answer`] → coordinator (merge). Only [`tls`] and key loading in [`signing`]
//! touch files or sockets.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod answer;
pub mod audit_chain;
pub mod cli;
pub mod clock;
pub mod codes;
pub mod group_flush;
mod iso;
pub mod manual;
pub mod period;
pub mod query;
pub mod regional;
pub mod signing;
pub mod table;
pub mod telemetry;
pub mod terminal;
pub mod tls;
mod wire;
