//! The VRS Federation node: a country's own store of non-nominal smuggling records and the only
//! door through which aggregates of them leave.
//!
//! - [`record`]: the checked domain form of an incident and what hangs off it.
//! - [`store`]: the SQLite store (WAL, foreign keys, versioned migrations, secret record keys).
//! - [`import`]: CSV (template or TOML mapping) and JSON Lines files → checked records → the store, one transaction per file.
//! - [`config`]: `node.toml`: identity, server, TLS, allowed callers, policy, exchange rates.
//! - [`query`]: a checked query → parameterised SQL → exact cells (never released as such).
//! - `engine`: the column engine: the same exact cells from an in-memory columnar projection
//!   of the store, for the query shapes it covers (the rest go to SQL).
//! - [`disclosure`]: the pure disclosure pipeline: exact cells + policy + secret → released cells.
//! - [`universe`]: a query's data-independent cell universe and the reference quarters it reads.
//! - [`audit`]: the append-only, hash-chained audit log; replay memory; queries held for approval.
//! - [`release`]: one zCDP release: plan (ρ, universe, σ, id) before reading, then compute.
//! - [`regional`]: regional mode: the exact bounded vector, its Prio3 shares, the held helper share.
//! - [`budget`]: `vrs-node budget`: spent and left per quarter and per caller.
//! - [`ledger`]: the privacy-loss ledger in the audit file: reserve, commit, stored releases.
//! - [`revocation`]: revoked certificates and signing keys, reloaded when their file changes.
//! - [`admission`]: how many calls are worked on at once, which may wait, which are refused at once.
//! - [`service`]: the gRPC `Federation` service: caller check, signature, limits, answer.
//! - [`server`]: mTLS server set-up, health, reflection, graceful shutdown.
//! - [`backup`]: `vrs-node backup` / `restore`: online copies of the store and audit log with a
//!   manifest, checked whole before they are put back.
//! - [`check`]: `vrs-node check`: configuration, certificates, store and audit chain.
//! - [`console`]: the web console for the node's own staff (accounts, sessions, change log, pages).
//! - [`cli`]: the `vrs-node` subcommands, one function each (the binary only parses flags).
//! - [`render`]: the operator's view of a released answer (table, CSV, JSON).
//! - [`fx`]: exchange rates for converting fees to USD at import.
//! - [`synth`]: a seeded generator of realistic synthetic records, by reporting country and route.
//! - `fuzzing` (hidden, only with the `fuzzing` feature): entry points of the fuzz targets
//!   (`node/fuzz`) and their corpus-replay test; never in the `vrs-node` binary.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admission;
pub mod audit;
pub mod backup;
pub mod budget;
pub mod check;
pub mod cli;
pub mod config;
pub mod console;
pub mod disclosure;
mod engine;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod fx;
pub mod import;
pub mod ledger;
pub mod query;
pub mod record;
pub mod regional;
pub mod release;
pub mod render;
pub mod revocation;
pub mod server;
pub mod service;
pub mod store;
pub mod synth;
pub mod universe;
