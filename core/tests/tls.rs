//! Mutual TLS end to end: a tonic health server on 127.0.0.1:0 behind `tls::incoming`, reached by
//! good and bad clients, with certificates made at test time by `vrs-certs-dev`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use vrs_certs_dev::{DevPki, ExtraKind};
use vrs_core::tls::{self, TlsError, TlsPaths};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A development PKI with one node (THA) and one coordinator (bali-rc).
struct Pki {
    _dir: tempfile::TempDir,
    pki: DevPki,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let pki = vrs_certs_dev::generate(dir.path(), "bali-rc", &["THA"], 7).unwrap();
        Pki { _dir: dir, pki }
    }

    fn node(&self) -> TlsPaths {
        let (ca, cert, key) = self.pki.node_paths("THA");
        TlsPaths { ca, cert, key }
    }

    fn coordinator(&self) -> TlsPaths {
        let c = self.pki.coordinator_paths();
        TlsPaths {
            ca: c.ca,
            cert: c.cert,
            key: c.key,
        }
    }

    /// Client paths with an extra certificate instead of the coordinator's.
    fn extra(&self, san: &str, kind: ExtraKind, name: &str) -> TlsPaths {
        let (cert, key) = self.pki.issue_extra(san, kind, name).unwrap();
        TlsPaths {
            ca: self.pki.ca_path(),
            cert,
            key,
        }
    }
}

/// A node-like server: gRPC health behind mutual TLS, recording each caller's identity.
struct TestServer {
    addr: SocketAddr,
    callers: Arc<Mutex<Vec<Option<String>>>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestServer {
    async fn start(paths: &TlsPaths, handshake_timeout: Duration) -> TestServer {
        tls::install_crypto_provider();
        let config = tls::server_config(paths).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let callers = Arc::new(Mutex::new(Vec::new()));
        let seen = callers.clone();
        let service = tonic::service::interceptor::InterceptedService::new(
            health,
            move |req: tonic::Request<()>| {
                seen.lock().unwrap().push(tls::peer_identity(&req));
                Ok(req)
            },
        );
        let (shutdown, signal) = oneshot::channel::<()>();
        let incoming = tls::incoming(listener, config, handshake_timeout);
        let task = tokio::spawn(
            Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = signal.await;
                }),
        );
        TestServer {
            addr,
            callers,
            shutdown: Some(shutdown),
            task,
        }
    }

    fn addr(&self) -> String {
        self.addr.to_string()
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).unwrap();
        }
        (&mut self.task).await.unwrap().unwrap();
    }
}

async fn check(channel: Channel) -> Result<(), tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
}

/// Connects as the coordinator and makes one call; panics if either fails.
async fn good_call(server: &TestServer, pki: &Pki) {
    let config = tls::client_config(&pki.coordinator()).unwrap();
    let channel = tls::connect(&server.addr(), &tls::node_identity("THA"), config, TIMEOUT)
        .await
        .unwrap();
    check(channel).await.unwrap();
}

/// True if connecting with `config` or the first call over it fails.
async fn refused(server: &TestServer, config: Arc<rustls::ClientConfig>) -> bool {
    match tls::connect(&server.addr(), &tls::node_identity("THA"), config, TIMEOUT).await {
        Err(_) => true,
        Ok(channel) => check(channel).await.is_err(),
    }
}

/// A TLS 1.3 client config built by hand, for clients `tls::client_config` would not make.
fn builder() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
}

fn roots(pki: &Pki) -> rustls::RootCertStore {
    let pem = std::fs::read(pki.pki.ca_path()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

#[tokio::test]
async fn good_client_calls_and_the_server_sees_its_identity() {
    let pki = Pki::new();
    let server = TestServer::start(&pki.node(), TIMEOUT).await;
    good_call(&server, &pki).await;
    good_call(&server, &pki).await;
    assert_eq!(
        *server.callers.lock().unwrap(),
        [
            Some("coordinator.bali-rc.vrs.test".to_owned()),
            Some("coordinator.bali-rc.vrs.test".to_owned())
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_clients_are_refused_and_the_server_keeps_serving() {
    let pki = Pki::new();
    let server = TestServer::start(&pki.node(), TIMEOUT).await;
    let coordinator = tls::coordinator_identity("bali-rc");

    // No client certificate at all.
    let no_cert = {
        let mut config = builder()
            .with_root_certificates(roots(&pki))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    };
    let other_ca = pki.extra(&coordinator, ExtraKind::OtherCa, "other-ca");
    let expired = pki.extra(&coordinator, ExtraKind::Expired, "expired");
    let bad_configs = [
        ("no client certificate", no_cert),
        (
            "client certificate from another CA",
            tls::client_config(&other_ca).unwrap(),
        ),
        (
            "expired client certificate",
            tls::client_config(&expired).unwrap(),
        ),
    ];
    for (what, config) in bad_configs {
        assert!(refused(&server, config).await, "{what} was accepted");
        good_call(&server, &pki).await;
    }

    // A client that only speaks TLS 1.2 fails the handshake itself.
    let tls12 = {
        let c = pki.coordinator();
        let pem = std::fs::read(&c.cert).unwrap();
        let chain = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let pem = std::fs::read(&c.key).unwrap();
        let key = rustls_pemfile::private_key(&mut pem.as_slice())
            .unwrap()
            .unwrap();
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots(&pki))
        .with_client_auth_cert(chain, key)
        .unwrap()
    };
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from(tls::node_identity("THA")).unwrap();
    let handshake = tokio_rustls::TlsConnector::from(Arc::new(tls12))
        .connect(name, tcp)
        .await;
    assert!(handshake.is_err(), "a TLS 1.2 client completed a handshake");
    good_call(&server, &pki).await;

    // Plaintext HTTP/2 (gRPC without TLS).
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect_timeout(TIMEOUT);
    if let Ok(channel) = plain.connect().await {
        assert!(check(channel).await.is_err(), "plaintext call succeeded");
    }
    good_call(&server, &pki).await;

    // Only the good calls reached the service, each with the coordinator's identity.
    let callers = server.callers.lock().unwrap().clone();
    assert_eq!(callers.len(), 5);
    assert!(callers.iter().all(|c| c.as_deref() == Some(&*coordinator)));
    server.stop().await;
}

#[tokio::test]
async fn client_refuses_a_server_with_the_wrong_identity() {
    let pki = Pki::new();
    let server = TestServer::start(&pki.node(), TIMEOUT).await;
    let config = tls::client_config(&pki.coordinator()).unwrap();

    // The THA node's certificate does not say it is the IDN node.
    let err = tls::connect(
        &server.addr(),
        &tls::node_identity("IDN"),
        config.clone(),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TlsError::Connect { .. }), "{err}");

    // A server whose certificate comes from the right CA but names another node.
    let impostor = pki.extra("node.xyz.vrs.test", ExtraKind::Valid, "impostor");
    let impostor = TestServer::start(&impostor, TIMEOUT).await;
    let err = tls::connect(
        &impostor.addr(),
        &tls::node_identity("THA"),
        config.clone(),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TlsError::Connect { .. }), "{err}");

    // Lazily, the same refusal comes with the first call.
    let channel =
        tls::connect_lazy(&server.addr(), &tls::node_identity("IDN"), config, TIMEOUT).unwrap();
    assert!(check(channel).await.is_err());

    good_call(&server, &pki).await;
    impostor.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_does_not_block_others_and_is_dropped_after_the_timeout() {
    let pki = Pki::new();
    let server = TestServer::start(&pki.node(), Duration::from_millis(300)).await;

    // Connects and never says anything.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    good_call(&server, &pki).await;

    // The server gives up on it: the read ends (EOF or reset) instead of hanging.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(TIMEOUT, silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "silent connection not closed: {read:?}"
    );
    good_call(&server, &pki).await;
    server.stop().await;
}

#[tokio::test]
async fn unreachable_server_fails_at_connect() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let config = tls::client_config(&pki.coordinator()).unwrap();
    let err = tls::connect(&addr, &tls::node_identity("THA"), config, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn connect_rejects_bad_names_and_addresses() {
    let pki = Pki::new();
    let config = tls::client_config(&pki.coordinator()).unwrap();
    let err = tls::connect("127.0.0.1:1", "not a name", config.clone(), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::InvalidServerName(_)), "{err}");
    let err = tls::connect("no port here/x", "node.tha.vrs.test", config, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::InvalidAddress(_)), "{err}");
}

#[test]
fn cert_identity_reads_the_san() {
    let pki = Pki::new();
    let pem = std::fs::read(pki.node().cert).unwrap();
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(tls::cert_identity(&der).unwrap(), "node.tha.vrs.test");
}

#[test]
fn loading_errors_name_the_file() {
    let pki = Pki::new();
    let good = pki.node();

    let missing = TlsPaths {
        ca: good.ca.with_file_name("missing.pem"),
        ..good.clone()
    };
    let err = tls::server_config(&missing).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }));
    assert!(err.to_string().contains("missing.pem"), "{err}");

    // A certificate where the key should be.
    let no_key = TlsPaths {
        key: good.cert.clone(),
        ..good.clone()
    };
    let err = tls::client_config(&no_key).unwrap_err();
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");

    // A key where the CA should be.
    let no_ca = TlsPaths {
        ca: good.key.clone(),
        ..good.clone()
    };
    let err = tls::server_config(&no_ca).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificates { .. }), "{err}");

    // A key that does not belong to the certificate.
    let coordinator = pki.coordinator();
    let mismatched = TlsPaths {
        key: coordinator.key,
        ..good
    };
    let err = tls::server_config(&mismatched).unwrap_err();
    assert!(matches!(err, TlsError::KeyPair { .. }), "{err}");
    assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
}

/// Issue 12, item 7: the CA's `pathlen:0` holds on both sides (webpki does not apply a trust
/// anchor's constraints), and a certificate with two DNS names is no identity.
#[tokio::test]
async fn the_server_refuses_clients_via_an_intermediate_or_with_two_dns_names() {
    let pki = Pki::new();
    let server = TestServer::start(&pki.node(), TIMEOUT).await;
    let coordinator = tls::coordinator_identity("bali-rc");
    for (kind, name) in [
        (ExtraKind::ViaIntermediate, "via-intermediate"),
        (ExtraKind::TwoDnsNames, "two-names"),
    ] {
        let config = tls::client_config(&pki.extra(&coordinator, kind, name)).unwrap();
        assert!(refused(&server, config).await, "{kind:?} was accepted");
        good_call(&server, &pki).await;
    }
    // Neither reached the service.
    assert_eq!(
        server.callers.lock().unwrap().len(),
        2,
        "{:?}",
        server.callers
    );
    server.stop().await;
}

#[tokio::test]
async fn the_client_refuses_servers_via_an_intermediate_or_with_two_dns_names() {
    let pki = Pki::new();
    let config = tls::client_config(&pki.coordinator()).unwrap();
    for (kind, name) in [
        (ExtraKind::ViaIntermediate, "node-via-intermediate"),
        (ExtraKind::TwoDnsNames, "node-two-names"),
    ] {
        let paths = pki.extra(&tls::node_identity("THA"), kind, name);
        let server = TestServer::start(&paths, TIMEOUT).await;
        let err = tls::connect(
            &server.addr(),
            &tls::node_identity("THA"),
            config.clone(),
            TIMEOUT,
        )
        .await
        .expect_err(&format!("a node certificate {kind:?} was accepted"));
        assert!(matches!(err, TlsError::Connect { .. }), "{kind:?}: {err}");
        assert!(server.callers.lock().unwrap().is_empty());
        server.stop().await;
    }
}

#[test]
fn an_identity_needs_exactly_one_dns_name() {
    let pki = Pki::new();
    let paths = pki.extra("node.tha.vrs.test", ExtraKind::TwoDnsNames, "two");
    let pem = std::fs::read(&paths.cert).unwrap();
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap()
        .unwrap();
    assert!(tls::cert_identity(&der).is_err());
}
