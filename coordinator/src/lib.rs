//! The VRS Federation coordinator: asks every country node the same signed aggregate question
//! over mutual TLS and merges what they release into regional tables.
//!
//! - [`registry`]: the registry file: who the coordinator is, which nodes it asks, deadlines.
//! - [`fanout`]: one reused connection per node; signed envelopes sent concurrently, each with
//!   its own deadline; a per-node outcome that never holds the others back.
//! - [`merge`]: regional cells = signed sums of the nodes' released and noisy cells, with a
//!   standard error `√Σσ²`; any suppression makes a figure a lower bound (partial), never exact;
//!   display rules (± intervals, "not distinguishable from 0") after merging.
//! - [`output`]: aligned table, CSV and versioned JSON.
//! - [`regional`]: regional mode, the leader: Prio3 reports from every node, verification and
//!   aggregation with the helper, noisy regional totals with no per-node figure.
//! - [`helper`]: regional mode, the helper aggregator (`vrs-helper`), run by another party.
//! - [`budget`]: planning with the privacy-loss budget: dry runs (`Plan`, nothing spent) and
//!   every node's remaining budget per quarter.
//! - [`report`]: the regional trend report: one self-contained HTML file with inline SVG charts,
//!   partial and suppressed figures marked on every chart and table.
//! - [`cli`]: the `vrs-coordinator` subcommands, one function each (the binary only parses flags).
//!
//! The coordinator links no node store: it only ever sees what nodes release. The demo, which
//! runs nodes in-process, is its own crate (`vrs-demo`, in `coordinator/demo`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod budget;
pub mod cli;
pub mod fanout;
pub mod helper;
pub mod merge;
pub mod output;
pub mod receipts;
pub mod regional;
pub mod registry;
pub mod report;
