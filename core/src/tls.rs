//! Mutual TLS 1.3 for both sides of the federation, with rustls and the `ring` provider.
//!
//! - Identity is the one DNS subject alternative name of a certificate:
//!   [`node_identity`] (`node.tha.vrs.test`) and [`coordinator_identity`]
//!   (`coordinator.bali-rc.vrs.test`). It is never read from a request body. A certificate with
//!   more than one DNS name is refused: its identity would be ambiguous.
//! - Chains are exactly leaf → federation CA, on both sides: webpki builds paths through
//!   intermediates and does not apply a trust anchor's own `pathlen:0`, so both verifiers here
//!   wrap webpki's and also require the leaf to be signed by a CA certificate itself
//!   ([`check_federation_leaf`]).
//! - A node loads [`server_config`] (TLS 1.3 only, client certificate required and verified against
//!   the federation CA, ALPN `h2`) and serves gRPC over [`incoming`], a stream of finished
//!   handshakes for tonic's `serve_with_incoming_shutdown`. Handlers read the caller with
//!   [`peer_identity`].
//! - The coordinator loads [`client_config`] and dials a node with [`connect`] (or
//!   [`connect_lazy`]), naming the identity the node's certificate must carry.
//!
//! Under TLS 1.3 the server checks the client certificate after the client has finished its side
//! of the handshake, so a refused client certificate shows up on the first RPC (as a transport
//! error), not in [`connect`]. A wrong server certificate fails in [`connect`].
//!
//! Every config here names the ring provider explicitly, so it works whether or not
//! [`install_crypto_provider`] ran; binaries still call it first thing so that any other rustls
//! user in the process finds a default.

use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::Stream;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, warn};
use x509_parser::extensions::GeneralName;

/// DNS suffix of every identity in the federation.
const SUFFIX: &str = "vrs.test";
/// ALPN protocol of gRPC.
const ALPN_H2: &[u8] = b"h2";
/// Most handshakes [`incoming`] runs at once; a connection beyond that evicts the oldest pending
/// handshake (issue 12: idle connections must not lock legitimate callers out).
pub const MAX_PENDING_HANDSHAKES: usize = 1024;
/// Most handshakes one source IP address may have pending; a new connection from a source at its
/// limit evicts that source's oldest pending handshake. A caller's real handshake takes
/// milliseconds, so a flood of idle connections only ever evicts itself.
pub const MAX_PENDING_PER_SOURCE: usize = 64;
/// Pause after an accept error that is not about one connection (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Errors from loading TLS material, building configs, and connecting.
///
/// Messages name files and addresses, never key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("{} is not valid PEM", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A certificate file holds no certificate.
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no private key.
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// A CA file holds a certificate that cannot be a trust anchor.
    #[error("{} holds a certificate that cannot be used as a CA", path.display())]
    InvalidCa {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built from the CA.
    #[error("cannot build the client-certificate verifier")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
    /// The server-certificate verifier could not be built from the CA.
    #[error("cannot build the server-certificate verifier")]
    ServerVerifier(#[source] rustls::server::VerifierBuilderError),
    /// The crypto provider does not support TLS 1.3.
    #[error("the ring crypto provider cannot do TLS 1.3")]
    Provider(#[source] rustls::Error),
    /// A certificate and key do not match or are of an unsupported kind.
    #[error("certificate {} and key {} cannot be used together", cert.display(), key.display())]
    KeyPair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The cause.
        #[source]
        source: rustls::Error,
    },
    /// A certificate is not valid DER X.509.
    #[error("cannot parse certificate: {0}")]
    Certificate(String),
    /// A certificate has no DNS subject alternative name, so no identity.
    #[error("certificate has no DNS subject alternative name")]
    NoDnsName,
    /// A certificate has more than one DNS subject alternative name: an ambiguous identity.
    #[error("certificate has {0} DNS subject alternative names; an identity needs exactly one")]
    ManyDnsNames(usize),
    /// The expected server identity is not a valid DNS name or IP address.
    #[error("{0:?} is not a valid server name")]
    InvalidServerName(String),
    /// The address to dial is not `host:port`.
    #[error("{0:?} is not a valid host:port address")]
    InvalidAddress(String),
    /// Dialling, the TLS handshake or the HTTP/2 set-up failed (see the source for why).
    #[error("cannot connect to {addr} as {identity}")]
    Connect {
        /// The address dialled.
        addr: String,
        /// The identity the server had to prove.
        identity: String,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// Dialling and the TLS handshake took longer than allowed.
    #[error("connecting to {addr} timed out after {after:?}")]
    ConnectTimeout {
        /// The address dialled.
        addr: String,
        /// The time allowed.
        after: Duration,
    },
}

/// Where a side's TLS material lives: the federation CA, its own certificate chain and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPaths {
    /// The federation CA certificate(s), PEM.
    pub ca: PathBuf,
    /// This side's certificate chain, leaf first, PEM.
    pub cert: PathBuf,
    /// This side's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Installs rustls's ring provider as the process default. Idempotent: if a provider is already
/// installed (by an earlier call or by anything else), it is left as it is.
pub fn install_crypto_provider() {
    // An error only means a default is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificate identity of the node of `country` (ISO 3166-1 alpha-3, any case):
/// `node.<iso3 lower>.vrs.test`.
pub fn node_identity(country: &str) -> String {
    format!("node.{}.{SUFFIX}", country.to_ascii_lowercase())
}

/// The certificate identity of the coordinator called `name`: `coordinator.<name>.vrs.test`.
pub fn coordinator_identity(name: &str) -> String {
    format!("coordinator.{name}.{SUFFIX}")
}

/// The server side: TLS 1.3 only, a client certificate issued by the CA in `paths.ca` is required,
/// ALPN `h2`.
pub fn server_config(paths: &TlsPaths) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = ring_provider();
    let cas = load_certs(&paths.ca)?;
    let roots = Arc::new(roots_of(&paths.ca, &cas)?);
    let (chain, key) = load_identity(paths)?;
    let webpki = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(TlsError::ClientVerifier)?;
    let verifier = Arc::new(FederationClientVerifier {
        webpki,
        cas: cas.into(),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Provider)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|source| key_pair_error(paths, source))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The client side: TLS 1.3 only, presents the certificate in `paths.cert`, verifies the server
/// against the CA in `paths.ca`, ALPN `h2`.
pub fn client_config(paths: &TlsPaths) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = ring_provider();
    let cas = load_certs(&paths.ca)?;
    let roots = Arc::new(roots_of(&paths.ca, &cas)?);
    let (chain, key) = load_identity(paths)?;
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(TlsError::ServerVerifier)?;
    let verifier = Arc::new(FederationServerVerifier {
        webpki,
        cas: cas.into(),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Provider)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(|source| key_pair_error(paths, source))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections from `listener` and yields those that complete a TLS handshake under
/// `config`, for tonic's `Server::builder()…serve_with_incoming_shutdown(incoming, signal)`.
///
/// Handshakes run concurrently on spawned tasks, each bounded by `handshake_timeout`, so a slow
/// or hostile client never holds up the others. At most [`MAX_PENDING_PER_SOURCE`] are pending per
/// source IP and [`MAX_PENDING_HANDSHAKES`] in all; a new connection beyond either evicts the
/// oldest pending one (of its source, or of all), so idle connections cannot lock callers out. A failed or
/// timed-out handshake is logged at debug level and dropped; accept errors are logged and retried.
/// The stream never ends and never yields an error; dropping it (tonic does on shutdown) closes
/// the listener and aborts handshakes in flight.
///
/// It yields `tokio_rustls::server::TlsStream<TcpStream>`, for which tonic (feature
/// `tls-connect-info`, enabled by `tls-ring`) implements `Connected`: the verified client chain
/// reaches handlers through `Request::peer_certs()` and so [`peer_identity`].
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
) -> TlsIncoming {
    TlsIncoming {
        listener,
        acceptor: TlsAcceptor::from(config),
        handshake_timeout,
        handshakes: JoinSet::new(),
        pending: VecDeque::new(),
        backoff: None,
    }
}

/// A handshake in flight, oldest first in [`TlsIncoming::pending`].
#[derive(Debug)]
struct Pending {
    source: IpAddr,
    task: AbortHandle,
}

/// The stream returned by [`incoming`].
pub struct TlsIncoming {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    handshakes: JoinSet<Option<TlsStream<TcpStream>>>,
    /// Handshakes not yet finished, oldest first.
    pending: VecDeque<Pending>,
    backoff: Option<Pin<Box<Sleep>>>,
}

impl fmt::Debug for TlsIncoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIncoming")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("handshake_timeout", &self.handshake_timeout)
            .field("pending_handshakes", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl TlsIncoming {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Makes room for one more handshake from `source`: evicts that source's oldest pending
    /// handshake if it is at [`MAX_PENDING_PER_SOURCE`], else the oldest of all at
    /// [`MAX_PENDING_HANDSHAKES`].
    fn make_room(&mut self, source: IpAddr) {
        let from_source = self.pending.iter().filter(|p| p.source == source).count();
        let evict = if from_source >= MAX_PENDING_PER_SOURCE {
            self.pending.iter().position(|p| p.source == source)
        } else if self.pending.len() >= MAX_PENDING_HANDSHAKES {
            Some(0)
        } else {
            None
        };
        if let Some(i) = evict
            && let Some(old) = self.pending.remove(i)
        {
            debug!(source = %old.source, "pending TLS handshake evicted");
            old.task.abort();
        }
    }

    /// Starts the handshake of one accepted connection on its own task.
    fn spawn_handshake(&mut self, tcp: TcpStream, peer: SocketAddr) {
        self.make_room(peer.ip());
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let acceptor = self.acceptor.clone();
        let limit = self.handshake_timeout;
        let task = self.handshakes.spawn(async move {
            match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => Some(tls),
                Ok(Err(error)) => {
                    debug!(%peer, %error, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    debug!(%peer, timeout = ?limit, "TLS handshake timed out");
                    None
                }
            }
        });
        self.pending.push_back(Pending {
            source: peer.ip(),
            task,
        });
    }

    /// A handshake task ended (finished, failed or evicted).
    fn finished(&mut self, id: tokio::task::Id) {
        if let Some(i) = self.pending.iter().position(|p| p.task.id() == id) {
            self.pending.remove(i);
        }
    }
}

impl Stream for TlsIncoming {
    type Item = Result<TlsStream<TcpStream>, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();

        // Accept everything that is waiting, starting a handshake for each.
        loop {
            if let Some(backoff) = this.backoff.as_mut() {
                if backoff.as_mut().poll(cx).is_pending() {
                    break;
                }
                this.backoff = None;
            }
            match this.listener.poll_accept(cx) {
                Poll::Ready(Ok((tcp, peer))) => this.spawn_handshake(tcp, peer),
                Poll::Ready(Err(error)) if is_connection_error(&error) => {
                    debug!(%error, "connection failed before accept");
                }
                Poll::Ready(Err(error)) => {
                    warn!(%error, "accept failed; pausing");
                    this.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
                Poll::Pending => break,
            }
        }

        // Hand over the first finished handshake, skipping failed ones.
        loop {
            match this.handshakes.poll_join_next_with_id(cx) {
                Poll::Ready(Some(Ok((id, done)))) => {
                    this.finished(id);
                    if let Some(tls) = done {
                        return Poll::Ready(Some(Ok(tls)));
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    this.finished(error.id());
                    if !error.is_cancelled() {
                        debug!(%error, "TLS handshake task failed");
                    }
                }
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Accept errors about one connection only, after which accepting can go on at once.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The identity (first DNS SAN of the verified leaf certificate) of the client that sent `req`,
/// or `None` if the connection carried no client certificate (e.g. not served over [`incoming`]).
pub fn peer_identity<T>(req: &tonic::Request<T>) -> Option<String> {
    let chain = req.peer_certs()?;
    let leaf = chain.first()?;
    cert_identity(leaf).ok()
}

/// The identity of a DER certificate: its one DNS subject alternative name (none, or more than
/// one, is an error).
pub fn cert_identity(der: &[u8]) -> Result<String, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|error| TlsError::Certificate(error.to_string()))?;
    let mut names = dns_names(&cert)?;
    match names.len() {
        0 => Err(TlsError::NoDnsName),
        1 => Ok(names.remove(0)),
        n => Err(TlsError::ManyDnsNames(n)),
    }
}

fn dns_names(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<Vec<String>, TlsError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|error| TlsError::Certificate(error.to_string()))?
        .ok_or(TlsError::NoDnsName)?;
    Ok(san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        })
        .collect())
}

/// Why a chain that webpki accepted is still not a federation chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The leaf is not signed by a federation CA certificate itself (e.g. by an intermediate).
    #[error("the certificate is not issued directly by the federation CA")]
    NotDirectlyIssued,
    /// The peer sent a certificate besides its leaf that is not a federation CA certificate.
    #[error("the chain holds a certificate other than the leaf and the federation CA")]
    ExtraCertificate,
    /// The leaf's identity is missing, ambiguous or unparseable.
    #[error("the certificate has no single DNS identity")]
    Identity,
}

/// The federation's own rules on a chain webpki has already verified: the leaf carries exactly
/// one DNS name and is signed by one of `cas` itself (so the chain is leaf → CA, whatever
/// intermediates the peer sent), and any other certificate sent is one of `cas`.
pub fn check_federation_leaf(
    leaf: &[u8],
    intermediates: &[CertificateDer<'_>],
    cas: &[CertificateDer<'static>],
) -> Result<(), ChainError> {
    if intermediates
        .iter()
        .any(|sent| !cas.iter().any(|ca| ca.as_ref() == sent.as_ref()))
    {
        return Err(ChainError::ExtraCertificate);
    }
    cert_identity(leaf).map_err(|_| ChainError::Identity)?;
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf).map_err(|_| ChainError::Identity)?;
    let direct = cas.iter().any(|ca| {
        x509_parser::parse_x509_certificate(ca.as_ref()).is_ok_and(|(_, ca)| {
            leaf.issuer().as_raw() == ca.subject().as_raw()
                && leaf.verify_signature(Some(ca.public_key())).is_ok()
        })
    });
    if !direct {
        return Err(ChainError::NotDirectlyIssued);
    }
    Ok(())
}

fn chain_refused(error: ChainError) -> rustls::Error {
    debug!(%error, "certificate chain refused");
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(error),
    )))
}

/// The node's client-certificate verifier: webpki's, then [`check_federation_leaf`].
#[derive(Debug)]
struct FederationClientVerifier {
    webpki: Arc<dyn ClientCertVerifier>,
    cas: Arc<[CertificateDer<'static>]>,
}

impl ClientCertVerifier for FederationClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.webpki.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.webpki.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .webpki
            .verify_client_cert(end_entity, intermediates, now)?;
        check_federation_leaf(end_entity, intermediates, &self.cas).map_err(chain_refused)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The coordinator's server-certificate verifier: webpki's (chain and name), then
/// [`check_federation_leaf`].
#[derive(Debug)]
struct FederationServerVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    cas: Arc<[CertificateDer<'static>]>,
}

impl ServerCertVerifier for FederationServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        check_federation_leaf(end_entity, intermediates, &self.cas).map_err(chain_refused)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Dials `addr` (`host:port`) over TLS with `config` and returns a gRPC channel, once the server
/// has proved it is `server_identity` (its certificate must carry that DNS name).
///
/// The connection is made now: an unreachable server, a server with the wrong certificate or a
/// timeout fails here. A client certificate the server refuses fails on the first RPC (TLS 1.3).
/// Reconnections later use the same address, identity and timeout.
pub async fn connect(
    addr: &str,
    server_identity: &str,
    config: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
) -> Result<Channel, TlsError> {
    let (endpoint, connector) = dialler(addr, server_identity, config, connect_timeout)?;
    let timed_out = || TlsError::ConnectTimeout {
        addr: addr.to_owned(),
        after: connect_timeout,
    };
    match tokio::time::timeout(connect_timeout, endpoint.connect_with_connector(connector)).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(source)) if is_timeout(&source) => Err(timed_out()),
        Ok(Err(source)) => Err(TlsError::Connect {
            addr: addr.to_owned(),
            identity: server_identity.to_owned(),
            source,
        }),
        Err(_) => Err(timed_out()),
    }
}

/// Like [`connect`], but the connection is made on the first RPC, whose error then reports an
/// unreachable server or a wrong certificate.
pub fn connect_lazy(
    addr: &str,
    server_identity: &str,
    config: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
) -> Result<Channel, TlsError> {
    let (endpoint, connector) = dialler(addr, server_identity, config, connect_timeout)?;
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// What the connector yields per (re)connection: TLS over TCP, wrapped for hyper.
type Connection = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

/// The endpoint and connector shared by [`connect`] and [`connect_lazy`].
fn dialler(
    addr: &str,
    server_identity: &str,
    config: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
) -> Result<
    (
        Endpoint,
        impl tower::Service<Uri, Response = Connection, Error = io::Error, Future: Send>
        + Send
        + 'static,
    ),
    TlsError,
> {
    let server_name = ServerName::try_from(server_identity.to_owned())
        .map_err(|_| TlsError::InvalidServerName(server_identity.to_owned()))?;
    // The URI only sets the HTTP/2 `:authority`; the connector below ignores it and dials `addr`.
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|_| TlsError::InvalidAddress(addr.to_owned()))?;
    let connector = TlsConnector::from(config);
    let addr = addr.to_owned();
    let service = tower::service_fn(move |_: Uri| {
        let connector = connector.clone();
        let server_name = server_name.clone();
        let addr = addr.clone();
        async move {
            let handshake = async {
                let tcp = TcpStream::connect(addr.as_str()).await?;
                tcp.set_nodelay(true)?;
                connector.connect(server_name, tcp).await
            };
            match tokio::time::timeout(connect_timeout, handshake).await {
                Ok(Ok(tls)) => Ok(TokioIo::new(tls)),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TCP connect and TLS handshake timed out",
                )),
            }
        }
    });
    Ok((endpoint, service))
}

/// Whether a tonic connect error was our connector's timeout.
fn is_timeout(error: &tonic::transport::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::TimedOut
        {
            return true;
        }
        source = error.source();
    }
    false
}

fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn key_pair_error(paths: &TlsPaths, source: rustls::Error) -> TlsError {
    TlsError::KeyPair {
        cert: paths.cert.clone(),
        key: paths.key.clone(),
        source,
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate in a PEM file, in order; at least one.
fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        })
}

fn roots_of(path: &Path, cas: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in cas {
        roots
            .add(cert.clone())
            .map_err(|source| TlsError::InvalidCa {
                path: path.to_path_buf(),
                source,
            })?;
    }
    Ok(roots)
}

fn load_identity(
    paths: &TlsPaths,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    Ok((load_certs(&paths.cert)?, load_key(&paths.key)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_follow_the_san_scheme() {
        assert_eq!(node_identity("THA"), "node.tha.vrs.test");
        assert_eq!(node_identity("idn"), "node.idn.vrs.test");
        assert_eq!(
            coordinator_identity("bali-rc"),
            "coordinator.bali-rc.vrs.test"
        );
    }

    #[test]
    fn tls_paths_refuse_unknown_fields() {
        let ok: TlsPaths =
            serde_json::from_str(r#"{"ca":"a.pem","cert":"b.pem","key":"b.key"}"#).unwrap();
        assert_eq!(ok.key, PathBuf::from("b.key"));
        let extra = r#"{"ca":"a.pem","cert":"b.pem","key":"b.key","password":"x"}"#;
        assert!(serde_json::from_str::<TlsPaths>(extra).is_err());
    }

    #[test]
    fn cert_identity_rejects_garbage() {
        assert!(matches!(
            cert_identity(b"not a certificate"),
            Err(TlsError::Certificate(_))
        ));
    }

    #[test]
    fn install_crypto_provider_is_idempotent() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(CryptoProvider::get_default().is_some());
    }
}
