//! Running the node's gRPC server: mutual TLS 1.3 on a given listener, the `Federation` service,
//! standard health and reflection, request deadlines and size limits, and graceful shutdown.
//!
//! [`serve`] takes an already bound listener so tests (and the demo) bind `127.0.0.1:0` and
//! learn the port before serving; the binary binds the configured address.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use vrs_core::tls;
use vrs_proto::pb::federation_server::FederationServer;

use crate::config::NodeConfig;
use crate::service::{NodeService, SetupError};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `[tls]` is missing from node.toml.
    #[error("node.toml has no [tls] section: serving needs the CA, certificate and key")]
    NoTls,
    /// TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The service could not be set up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The revocation list is configured but missing, or cannot be read or parsed.
    #[error(transparent)]
    Revocation(#[from] crate::revocation::RevocationError),
    /// Reflection could not be built.
    #[error("reflection service: {0}")]
    Reflection(String),
    /// The transport failed.
    #[error("server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// How often health probes the audit log with a write.
pub const HEALTH_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// Serves the node on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: &NodeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_with_clock(
        listener,
        config,
        std::sync::Arc::new(vrs_core::clock::SystemClock),
        shutdown,
    )
    .await
}

/// [`serve`] with the service reading the time from `clock` (tests of time-dependent rules pass
/// a manual clock).
pub async fn serve_with_clock(
    listener: TcpListener,
    config: &NodeConfig,
    clock: std::sync::Arc<dyn vrs_core::clock::Clock>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_with_ready(listener, config, clock, |_| {}, shutdown).await
}

/// [`serve_with_clock`] calling `ready` with the bound address once everything the node needs
/// has loaded (TLS material, revocation list, store, audit log and key) and it is about to
/// accept connections: `vrs-node serve` prints its `listening on` line from here, so a node that
/// cannot start never says it listens.
pub async fn serve_with_ready(
    listener: TcpListener,
    config: &NodeConfig,
    clock: std::sync::Arc<dyn vrs_core::clock::Clock>,
    ready: impl FnOnce(Option<std::net::SocketAddr>),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let tls_section = config.file.tls.as_ref().ok_or(ServeError::NoTls)?;
    let server_config = tls::server_config(tls_section)?;
    // Refuse to start on a revocation list that cannot be trusted (fail closed). The service
    // watches the same file from here on.
    crate::revocation::RevocationList::for_config(config)?;
    let service = NodeService::new(config)?.with_clock(clock);
    // The column engine reads its projection of the store now, beside the server, rather than
    // making the first query wait for it (a scan of the incident and migrant group tables).
    let data_dir = config.data_dir();
    tokio::task::spawn_blocking(move || crate::query::prepare_columns(&data_dir));
    let audit_health = service.audit_health();
    let last_flush = audit_health.clone();
    let server = &config.file.server;
    // The transport decodes no message above `max_request_bytes` (plus the few bytes of framing
    // of the signature and key id): a larger one is refused before it is buffered (issue 12, 3).
    // Between the two limits the service refuses with REQUEST_TOO_LARGE and an audit entry.
    let transport_limit = server.max_request_bytes.saturating_add(256);
    let federation = FederationServer::new(service)
        .max_decoding_message_size(transport_limit)
        .max_encoding_message_size(64 * 1024 * 1024);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<FederationServer<NodeService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vrs_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vrs_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let local = listener.local_addr().ok();
    let incoming = tls::incoming(
        listener,
        server_config,
        Duration::from_secs(server.handshake_timeout_secs),
    );
    match local {
        Some(addr) => tracing::info!(country = %config.file.node.country, %addr, "node serving"),
        None => tracing::info!(country = %config.file.node.country, "node serving"),
    }
    ready(local);
    // Health follows the audit log: a node whose log takes no writes answers nothing, so it
    // says NOT_SERVING (for the server and the service) until the log takes a write again.
    let (stop_probe, mut probe_stopped) = tokio::sync::oneshot::channel::<()>();
    let probe = tokio::spawn(async move {
        let mut every = tokio::time::interval(HEALTH_PROBE_INTERVAL);
        let mut serving = true;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = &mut probe_stopped => break,
            }
            let ok = audit_health.writable().await;
            if ok == serving {
                continue;
            }
            serving = ok;
            let status = if ok {
                tracing::info!("the audit log takes writes again: serving");
                tonic_health::ServingStatus::Serving
            } else {
                tracing::error!("the audit log does not take writes: not serving");
                tonic_health::ServingStatus::NotServing
            };
            health_reporter.set_service_status("", status).await;
            health_reporter
                .set_service_status(
                    <FederationServer<NodeService> as tonic::server::NamedService>::NAME,
                    status,
                )
                .await;
        }
    });
    let served = tonic::transport::Server::builder()
        .timeout(Duration::from_secs(server.request_timeout_secs))
        // Admission (slots, queue, deadlines) is the service's; this only bounds what one
        // connection can have in flight at all, a bound admission refuses before it is reached.
        .concurrency_limit_per_connection(
            server
                .max_concurrent_requests
                .max(1)
                .saturating_add(server.max_queued_requests)
                .saturating_add(1),
        )
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(federation)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    let _ = stop_probe.send(());
    let _ = probe.await;
    last_flush.flush_floods().await;
    served?;
    tracing::info!("node stopped");
    Ok(())
}
