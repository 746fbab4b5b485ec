//! The outgoing side: the one HTTP client behind everything hookscope sends
//! (`--forward`, `send`, `replay`, the inspector's edit and send), with what they
//! share: whom to trust over TLS, which headers stay on one connection, reading an
//! answer's body with a cap, and saying in a user's words why a request failed.
//!
//! It is hyper's own client (hyper-util, with rustls through hyper-rustls): a proxy
//! and a replay must send the headers they were given and no others, and a forward
//! hands the upstream's body on as a stream. A second client (reqwest) for `send`
//! cost build time and wrote headers of its own (`Accept: */*`). A forward to an
//! `http://` upstream has a client of its own, `InlineClient`, whose connections the
//! request's task drives (no connection task, no pool keyed by origin).

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use thiserror::Error;
use tokio::time::Instant;

pub use url::Url;

use crate::values::error_with_causes;

mod inline;
pub(crate) use inline::{InlineBody, InlineClient};

/// Headers that belong to one connection, not to the message (RFC 9110 section 7.6.1,
/// and `Proxy-Connection`, which old clients still send): neither a forward nor a
/// replay passes them on, and a forward drops them from the upstream's answer.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The default of `--max-response-body` (send, replay), as the flags write it.
pub const DEFAULT_MAX_RESPONSE_BODY_TEXT: &str = "1MiB";

/// Default most bytes of a response body read ([`DEFAULT_MAX_RESPONSE_BODY_TEXT`]): a
/// receiver's answer is a short text, and one that streams gigabytes must not be
/// held in memory.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// Whom an https request trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Trust {
    /// The operating system's roots.
    #[default]
    SystemRoots,
    /// This CA certificate (PEM) only, as `curl --cacert` does.
    CaCert(PathBuf),
    /// Anyone: the certificate is not verified (a self-signed development server).
    Insecure,
}

/// A CA certificate file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cannot use CA certificate {}: {reason}", path.display())]
pub struct TrustError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// The client: connections are kept and reused, HTTP/2 when an https server offers
/// it, no redirect followed, no header written but `Host` and the framing.
#[derive(Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("outgoing::Client")
    }
}

/// Why a request got no answer.
#[derive(Debug, Error)]
pub enum Failure {
    /// No answer before the deadline.
    #[error("no answer in time")]
    TimedOut,
    /// The connection or the exchange failed.
    #[error(transparent)]
    Request(#[from] hyper_util::client::legacy::Error),
    /// No connection (`InlineClient`).
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// The exchange on a connection failed (`InlineClient`).
    #[error(transparent)]
    Exchange(hyper::Error),
}

/// What a failure is, for deciding whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer in time.
    TimedOut,
    /// The server's certificate is not trusted: only a flag will change that.
    UntrustedCertificate,
    /// The host name does not resolve.
    UnknownHost,
    /// Refused, reset, broken: what a retry may get past.
    Network,
}

impl Failure {
    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        let error: &(dyn std::error::Error + 'static) = match self {
            Failure::TimedOut => return FailureKind::TimedOut,
            Failure::Request(error) => error,
            Failure::Connect(error) => error,
            Failure::Exchange(error) => error,
        };
        let mut cause = Some(error);
        while let Some(error) = cause {
            if let Some(rustls::Error::InvalidCertificate(_)) = tls_error(error) {
                return FailureKind::UntrustedCertificate;
            }
            // hyper-util's connect error type is private, and the standard library's
            // lookup failure has no kind of its own: their messages are the one sign.
            let text = error.to_string();
            if text.starts_with("dns error") || text.starts_with("failed to lookup address") {
                return FailureKind::UnknownHost;
            }
            cause = error.source();
        }
        FailureKind::Network
    }

    /// In a user's words, naming where the request went ("cannot connect to
    /// 127.0.0.1:3000: Connection refused (os error 111)"): hyper-util says "client
    /// error (Connect)" and keeps the cause a user needs at the bottom of the chain.
    pub fn describe(&self, url: &Url, timeout_flag: &str) -> String {
        let target = match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            _ => url.to_string(),
        };
        let (error, connecting): (&dyn std::error::Error, bool) = match self {
            Failure::TimedOut => {
                return format!("no answer from {target} in time ({timeout_flag})");
            }
            Failure::Request(error) => (error, error.is_connect()),
            Failure::Connect(error) => (error, true),
            Failure::Exchange(error) => (error, false),
        };
        let mut innermost = error;
        while let Some(cause) = innermost.source() {
            innermost = cause;
        }
        match self.kind() {
            FailureKind::UnknownHost => format!("cannot resolve {target}: {innermost}"),
            _ if connecting => format!("cannot connect to {target}: {innermost}"),
            // hyper-util's own layer ("client error (SendRequest)") names its code, not
            // what happened: the innermost cause does ("connection closed before
            // message completed").
            _ => format!("the request to {target} failed: {innermost}"),
        }
    }
}

/// The TLS error in `error`, which arrives wrapped in io::Errors (one in another),
/// whose `source()` skips what they wrap.
fn tls_error<'a>(mut error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        error = error.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

impl Client {
    /// A client trusting `trust`, giving up on a connection after `connect_timeout`.
    pub fn new(trust: &Trust, connect_timeout: Duration) -> Result<Client, TrustError> {
        Client::build(trust, connect_timeout, false)
    }

    /// The same, writing HTTP/1.1 header names in canonical case (`Content-Type`), as
    /// Go's client does: for sending as Panther.
    pub fn with_canonical_case(
        trust: &Trust,
        connect_timeout: Duration,
    ) -> Result<Client, TrustError> {
        Client::build(trust, connect_timeout, true)
    }

    fn build(
        trust: &Trust,
        connect_timeout: Duration,
        canonical_case: bool,
    ) -> Result<Client, TrustError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(trust)?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(50))
            .http1_title_case_headers(canonical_case)
            .build(connector);
        Ok(Client { inner })
    }

    /// Sends `request` and waits for the answer's head until `deadline`.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<Response<Incoming>, Failure> {
        match tokio::time::timeout_at(deadline, self.inner.request(request)).await {
            Ok(answer) => Ok(answer?),
            Err(_) => Err(Failure::TimedOut),
        }
    }
}

/// The start of a body, read with a cap.
#[derive(Debug, Default)]
pub struct Capped {
    /// Up to the cap.
    pub kept: Bytes,
    /// The rest of the frame that went past the cap, if one did (the body goes on).
    pub beyond: Option<Bytes>,
}

/// Why a body could not be read to its end or its cap.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The deadline passed; `kept` is what had arrived.
    #[error("the body did not arrive in time")]
    TimedOut {
        /// What had arrived.
        kept: Bytes,
    },
    /// The connection broke; `kept` is what had arrived.
    #[error("the body broke off: {cause}")]
    Broken {
        /// What had arrived.
        kept: Bytes,
        /// Why, with its causes.
        cause: String,
    },
}

/// Reads `body` until its end or `max` bytes, whichever comes first, within one
/// deadline for the whole read (not a timer per frame). Trailers are skipped.
pub async fn read_capped<B>(
    body: &mut B,
    max: usize,
    deadline: Instant,
) -> Result<Capped, ReadError>
where
    B: hyper::body::Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    let mut kept = BytesMut::new();
    let read = tokio::time::timeout_at(deadline, async {
        while let Some(frame) = body.frame().await {
            let Ok(mut data) = frame?.into_data() else {
                continue;
            };
            let room = max - kept.len();
            if data.len() > room {
                kept.extend_from_slice(&data.split_to(room));
                return Ok(Some(data));
            }
            kept.extend_from_slice(&data);
        }
        Ok::<_, hyper::Error>(None)
    })
    .await;
    match read {
        Ok(Ok(beyond)) => Ok(Capped {
            kept: kept.freeze(),
            beyond,
        }),
        Ok(Err(error)) => Err(ReadError::Broken {
            kept: kept.freeze(),
            cause: error_with_causes(&error),
        }),
        Err(_) => Err(ReadError::TimedOut {
            kept: kept.freeze(),
        }),
    }
}

/// Undoes `Content-Encoding: gzip` as Go's client does for a request it asked
/// gzip for, giving at most `max` bytes (a small body may unpack to gigabytes).
/// Returns the body, whether it was cut, and leaves a body it cannot unpack as it was.
pub fn gunzip_capped(headers: &HeaderMap, body: Bytes, max: usize) -> (Bytes, bool) {
    let gzipped = headers
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"gzip"));
    if !gzipped {
        return (body, false);
    }
    let mut unpacked = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    match flate2::read::GzDecoder::new(&body[..])
        .take(limit)
        .read_to_end(&mut unpacked)
    {
        Ok(_) => {
            let cut = unpacked.len() > max;
            unpacked.truncate(max);
            (Bytes::from(unpacked), cut)
        }
        Err(_) => (body, false),
    }
}

/// `Host` for a request to `url`, as clients write it (Go's, hyper-util's): the host,
/// and the port when the URL writes one that is not the scheme's default.
pub fn host_header(url: &Url) -> Option<HeaderValue> {
    let host = url.host_str()?;
    let text = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    HeaderValue::from_str(&text).ok()
}

/// `headers` without the hop-by-hop ones, and without those its `Connection` header lists.
pub fn without_hop_by_hop(mut headers: HeaderMap) -> HeaderMap {
    // Most answers have none: one pass over the names, and the map stays as it is.
    if !headers.keys().any(|name| is_hop_by_hop(name.as_str())) {
        return headers;
    }
    let listed = listed_in_connection(&headers);
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    for name in listed {
        headers.remove(name);
    }
    headers
}

/// Header names a `Connection` header lists (they are hop-by-hop too).
pub fn listed_in_connection(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// Whether a header (by its lower-case name) stays on one connection.
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// The crypto provider of every TLS connection hookscope makes or accepts: ring's.
///
/// rustls 0.23.48 deprecates it for lacking post-quantum key exchange. The provider
/// that has it, aws-lc-rs, needs CMake and a C toolchain and would lengthen the first
/// build again, and a receiver on a developer's machine talking to Panther, a tunnel or
/// a local app does not need it yet; so the choice is made, and allowed, once, here.
#[allow(deprecated)]
pub(crate) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS settings of the client: the system's roots, one CA file, or no verification.
fn tls_config(trust: &Trust) -> Result<rustls::ClientConfig, TrustError> {
    let provider = crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| TrustError {
            path: PathBuf::new(),
            reason: error.to_string(),
        })?;
    let config = match trust {
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
        Trust::CaCert(path) => builder
            .with_root_certificates(roots_from(path)?)
            .with_no_client_auth(),
        // With no usable system roots, https requests fail with a clear certificate
        // error; http ones still work.
        Trust::SystemRoots => match builder.clone().with_native_roots() {
            Ok(builder) => builder.with_no_client_auth(),
            Err(_) => builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        },
    };
    Ok(config)
}

/// The certificates of a PEM file, as the only roots.
fn roots_from(path: &PathBuf) -> Result<rustls::RootCertStore, TrustError> {
    let refused = |reason: String| TrustError {
        path: path.clone(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|error| refused(error.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate.map_err(|error| refused(error.to_string()))?;
        roots
            .add(certificate)
            .map_err(|error| refused(error.to_string()))?;
    }
    if roots.is_empty() {
        return Err(refused("no -----BEGIN CERTIFICATE----- block".into()));
    }
    Ok(roots)
}

/// `Trust::Insecure`: any certificate is accepted (signatures are still checked, so
/// that the handshake itself is sound).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A body sent as it is produced (a trickle, for `probe`'s slow-body check).
pub type StreamedBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// Why a [`Connection`] could not be opened or used.
#[derive(Debug, Error)]
pub enum ConnectionError {
    /// The URL has no host or is not http(s).
    #[error("cannot address {0}")]
    Address(String),
    /// No TCP connection.
    #[error("cannot connect to {target}: {cause}")]
    Connect {
        /// host:port.
        target: String,
        /// Why.
        cause: std::io::Error,
    },
    /// The TLS handshake failed (an untrusted certificate among others).
    #[error("the TLS handshake with {target} failed: {cause}")]
    Tls {
        /// host:port.
        target: String,
        /// Why.
        cause: std::io::Error,
    },
    /// The CA file cannot be used.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The HTTP exchange failed: the server closed the connection, or broke the protocol.
    #[error("{0}")]
    Http(String),
    /// Nothing in time.
    #[error("no answer in time")]
    TimedOut,
}

/// One HTTP/1.1 connection, used for requests one after the other: to see whether a
/// server keeps a connection for the next request (Go's client reuses it), and to
/// send a body at the pace it is produced. Unlike [`Client`], no pool: the
/// connection is this value's, and it ends when the value is dropped.
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<StreamedBody>,
    driver: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("outgoing::Connection")
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    /// Opens a connection to `url`'s host (TLS for https, trusting `trust`, HTTP/1.1
    /// offered alone), by `deadline`.
    pub async fn open(
        url: &Url,
        trust: &Trust,
        deadline: Instant,
    ) -> Result<Connection, ConnectionError> {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(ConnectionError::Address(url.to_string()));
        };
        let target = format!("{host}:{port}");
        let host = host.trim_matches(['[', ']']);
        let tcp = tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect((host, port)))
            .await
            .map_err(|_| ConnectionError::TimedOut)?
            .map_err(|cause| ConnectionError::Connect {
                target: target.clone(),
                cause,
            })?;
        let _ = tcp.set_nodelay(true);
        let (sender, driver) = match url.scheme() {
            "https" => {
                let mut config = tls_config(trust)?;
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|_| ConnectionError::Address(url.to_string()))?;
                let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
                let tls = tokio::time::timeout_at(deadline, connector.connect(name, tcp))
                    .await
                    .map_err(|_| ConnectionError::TimedOut)?
                    .map_err(|cause| ConnectionError::Tls { target, cause })?;
                handshake(tls).await?
            }
            "http" => handshake(tcp).await?,
            _ => return Err(ConnectionError::Address(url.to_string())),
        };
        Ok(Connection { sender, driver })
    }

    /// Whether the server has closed the connection (or it broke).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends `request` and waits for the answer's head until `deadline`.
    pub async fn send(
        &mut self,
        request: Request<StreamedBody>,
        deadline: Instant,
    ) -> Result<Response<Incoming>, ConnectionError> {
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|error| ConnectionError::Http(error_with_causes(&error)))?;
            self.sender
                .send_request(request)
                .await
                .map_err(|error| ConnectionError::Http(error_with_causes(&error)))
        };
        tokio::time::timeout_at(deadline, exchange)
            .await
            .map_err(|_| ConnectionError::TimedOut)?
    }
}

/// HTTP/1.1 over `io`, its connection driven on a task of its own.
async fn handshake<I>(
    io: I,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<StreamedBody>,
        tokio::task::JoinHandle<()>,
    ),
    ConnectionError,
>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake::<_, StreamedBody>(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|error| ConnectionError::Http(error_with_causes(&error)))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((sender, driver))
}
