//! Integration tests: real country nodes and a coordinator on 127.0.0.1 over real mutual TLS 1.3,
//! with certificates made at test time. One binary; the harness is the `vrs_tests` library.
//!
//! - `e2e`: released cells against an independent exact computation (`reference`), with and
//!   without perturbation, and the regional merge.
//! - `demo`: the demo's kept directory (report, restart, replacement).
//! - `certs`: the certificate matrix (who may connect and call, and who may not).
//! - `failures`: nodes that are down, slow or refusing, behind one fan-out.
//! - `signing`: every signed-envelope refusal over real mutual TLS; refusals carry no data.
//! - `security`: revocation without restart, rate limits, daily budgets, manual approval.
//! - `health`: gRPC health and reflection over mutual TLS.
//! - `attacks`: issue 11's attacks through signed gRPC against a default zCDP node (held to
//!   the bar of one release bought with the whole budget) and a `rules_v1` node (which leaks).
//! - `privacy`: the zCDP release path end to end: universe, noise scale, ledger, replay, budget
//!   exhaustion, Plan, concurrency against the budget.
//! - `receipts`: the node's signed audit receipts against each way of rewriting its log.
//! - `hardening`: issue 12 regressions (hostile node text, pending-handshake floods).
//! - `console`: the node's web console and its federation port do not answer each other.
//! - `regional`: regional mode (secure aggregation): nodes, leader and helper as separate
//!   servers; exact sums with noise off, the noise scale with it on, proof-check drops,
//!   nothing held by either aggregator, min_nodes, dropouts, hostile requests, budget
//!   exhaustion and manual approval.
//! - `regional_cli`: `vrs-coordinator query --regional` and `vrs-helper` as processes (the
//!   binaries `cargo build --workspace --bins` made): output, contributors, exit status 5 when
//!   a node is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

#[path = "federation/attacks.rs"]
mod attacks;
#[path = "federation/certs.rs"]
mod certs;
#[path = "federation/console.rs"]
mod console;
#[path = "federation/demo.rs"]
mod demo;
#[path = "federation/e2e.rs"]
mod e2e;
#[path = "federation/failures.rs"]
mod failures;
#[path = "federation/hardening.rs"]
mod hardening;
#[path = "federation/health.rs"]
mod health;
#[path = "federation/privacy.rs"]
mod privacy;
#[path = "federation/receipts.rs"]
mod receipts;
#[path = "federation/reference.rs"]
mod reference;
#[path = "federation/regional.rs"]
mod regional;
#[path = "federation/regional_cli.rs"]
mod regional_cli;
#[path = "federation/security.rs"]
mod security;
#[path = "federation/signing.rs"]
mod signing;
