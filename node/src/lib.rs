//! The VRS Federation node: a country's own store of non-nominal smuggling records and the only
//! door through which aggregates of them leave.
//!
//! - [`record`]: the checked domain form of an incident and what hangs off it.
//! - [`store`]: the SQLite store (WAL, foreign keys, versioned migrations, secret record keys).
//! - [`config`]: `node.toml`: identity, server, TLS, allowed callers, policy, exchange rates.
//! - [`query`]: a checked query → parameterised SQL → exact cells (never released as such).
//! - [`disclosure`]: the pure disclosure pipeline: exact cells + policy + secret → released cells.
//! - [`service`]: the gRPC `Federation` service: caller check, signature, limits, answer.
//! - [`server`]: mTLS server set-up, health, reflection, graceful shutdown.
//! - [`render`]: the operator's view of a released answer (table, CSV, JSON).
//! - [`fx`]: exchange rates for converting fees to USD at import.
//! - [`synth`]: a seeded generator of realistic synthetic records, by reporting country and route.
#![forbid(unsafe_code)]

pub mod config;
pub mod disclosure;
pub mod fx;
pub mod query;
pub mod record;
pub mod render;
pub mod server;
pub mod service;
pub mod store;
pub mod synth;
