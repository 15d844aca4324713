//! The wire contract of VRS Federation, package `vrs.federation.v2`.
//!
//! Everything here is generated from `proto/vrs/federation/v2/federation.proto` at build time
//! (with a vendored `protoc`); nothing is edited by hand. The rest of the workspace converts these
//! types into domain types at its service edge and never passes them further in.
#![forbid(unsafe_code)]

/// Generated messages, the `Federation` client and server.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations
)]
pub mod pb {
    tonic::include_proto!("vrs.federation.v2");
}

/// The encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("vrs_federation_v2_descriptor");
