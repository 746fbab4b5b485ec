//! The receiver: bind, accept loop, graceful shutdown, and the [`Handle`] that owns it.

mod budget;
mod config;
mod engine;
mod limits;
mod service;
pub mod tls;

pub use config::{Config, ConfigError, Limits, StoreArgument, parse_header_size};
pub use limits::MIN_HEADER_SIZE;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::capture::{Exchange, RecordError, RecordFile, Recorder, Stats, Store, WaitTimeout};
use crate::forward::Upstream;
use crate::respond::{Behaviour, Route, Script, ScriptScope};
use crate::shared::{Shared, Shutdown, Subscription};
use crate::values;
use engine::{Receiver, Stopping, accept_loop};

/// Why a server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The address could not be bound (in use, not local, no permission...).
    #[error("cannot listen on {addr}{}: {source}{}", .listener.purpose(), bind_hint(.listener, .source))]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Which of the two listeners it was for.
        listener: Listener,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The record file cannot be used.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The store cannot be used (not a hookscope store, newer, in use, unwritable).
    #[error(transparent)]
    Store(#[from] crate::capture::StoreError),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A setting is invalid (a script that does not parse, a status out of range...).
    #[error("invalid setting: {0}")]
    Config(#[from] ConfigError),
}

/// The two listeners of a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The webhook port (the one a tunnel points at).
    Webhook,
    /// The admin API and inspector.
    Admin,
}

impl Listener {
    fn purpose(self) -> &'static str {
        match self {
            Listener::Webhook => "",
            Listener::Admin => " (the admin API and inspector)",
        }
    }
}

/// What to do about a port in use, which is usually another hookscope.
fn bind_hint(listener: &Listener, error: &std::io::Error) -> &'static str {
    match (error.kind(), listener) {
        (std::io::ErrorKind::AddrInUse, Listener::Webhook) => {
            "; another program (another hookscope?) has it: choose one with --port, or --port 0 for a free one"
        }
        (std::io::ErrorKind::AddrInUse, Listener::Admin) => {
            "; another program (another hookscope's inspector?) has it: use --admin 127.0.0.1:0 for a free port, or --no-admin"
        }
        _ => "",
    }
}

/// Entry point for starting a receiver; see [`ServerBuilder`].
pub struct Server;

impl Server {
    /// A builder for a test sink: 127.0.0.1 on a free port, answering 200 `success`,
    /// without the admin API.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder()
    ///     .route("/down=503")
    ///     .header("Retry-After: 5")
    ///     .spawn()
    ///     .await?;
    /// let answer = reqwest::get(format!("{}/down", sink.url())).await?;
    /// assert_eq!(answer.status(), 503);
    /// assert_eq!(answer.headers()["retry-after"], "5");
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> ServerBuilder {
        ServerBuilder::from_config(Config {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            no_admin: true,
            ..Config::default()
        })
    }

    /// Starts a sink with the defaults of [`Server::builder`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::start().await?;
    /// let answer = reqwest::Client::new().post(sink.url()).body("{}").send().await?;
    /// assert_eq!(answer.text().await?, "success");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start() -> Result<Handle, ServerError> {
        Server::builder().spawn().await
    }
}

/// A typed setting, or a form of it that converts: a [`StatusCode`] or a `u16`
/// (100-599); a `(HeaderName, HeaderValue)` pair or `"Name: value"`; a [`Script`]
/// or a [`Route`], or their text. A form that does not convert is reported by
/// [`ServerBuilder::spawn`].
pub trait IntoSetting<T> {
    /// The setting, or why it cannot be one.
    fn into_setting(self) -> Result<T, ConfigError>;
}

impl<T> IntoSetting<T> for T {
    fn into_setting(self) -> Result<T, ConfigError> {
        Ok(self)
    }
}

impl IntoSetting<StatusCode> for u16 {
    fn into_setting(self) -> Result<StatusCode, ConfigError> {
        Ok(values::status_from_u16(self)?)
    }
}

impl IntoSetting<(HeaderName, HeaderValue)> for &str {
    fn into_setting(self) -> Result<(HeaderName, HeaderValue), ConfigError> {
        Ok(values::parse_header(self)?)
    }
}

impl IntoSetting<Script> for &str {
    fn into_setting(self) -> Result<Script, ConfigError> {
        Ok(self.parse()?)
    }
}

impl IntoSetting<crate::outgoing::Url> for &str {
    fn into_setting(self) -> Result<crate::outgoing::Url, ConfigError> {
        Ok(values::parse_http_url(self)?)
    }
}

impl IntoSetting<crate::outgoing::Url> for String {
    fn into_setting(self) -> Result<crate::outgoing::Url, ConfigError> {
        Ok(values::parse_http_url(&self)?)
    }
}

impl IntoSetting<Route> for &str {
    fn into_setting(self) -> Result<Route, ConfigError> {
        Ok(self.parse()?)
    }
}

/// Configures a receiver, then [`spawn`](ServerBuilder::spawn)s it. Every method
/// sets one [`Config`] field; an invalid value is reported by `spawn`, so that
/// the chain stays fluent.
#[must_use = "a builder does nothing until spawn() is awaited"]
pub struct ServerBuilder {
    config: Config,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The first invalid setting.
    invalid: Option<ConfigError>,
}

impl ServerBuilder {
    /// A builder from a whole [`Config`], e.g. the one `hookscope listen` parsed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = hookscope::Config { port: 0, no_admin: true, ..Default::default() };
    /// let sink = hookscope::ServerBuilder::from_config(config).spawn().await?;
    /// assert!(sink.admin_url().is_none());
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: Config) -> ServerBuilder {
        ServerBuilder {
            config,
            tls: None,
            invalid: None,
        }
    }

    fn set<T, E: Into<ConfigError>>(
        mut self,
        value: Result<T, E>,
        apply: impl FnOnce(&mut Config, T),
    ) -> Self {
        match value {
            Ok(value) => apply(&mut self.config, value),
            Err(error) => {
                self.invalid.get_or_insert(error.into());
            }
        }
        self
    }

    /// Status of every answer (default 200): a [`StatusCode`] or a number.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().status(503).body("down").spawn().await?;
    /// let answer = reqwest::Client::new().post(sink.url()).send().await?;
    /// assert_eq!(answer.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(self, status: impl IntoSetting<StatusCode>) -> Self {
        self.set(status.into_setting(), |config, status| {
            config.behaviour.status = status
        })
    }

    /// Body of every 2XX answer (default `success`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().body(r#"{"ok":true}"#).spawn().await?;
    /// let answer = reqwest::Client::new().post(sink.url()).send().await?;
    /// assert_eq!(answer.text().await?, r#"{"ok":true}"#);
    /// # Ok(()) }
    /// ```
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.config.behaviour.body = Some(body.into());
        self
    }

    /// Adds a header to every answer: `"Name: value"` or a `(HeaderName, HeaderValue)` pair.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http::{HeaderName, HeaderValue};
    /// let retry = (HeaderName::from_static("retry-after"), HeaderValue::from_static("5"));
    /// let sink = hookscope::Server::builder().header(retry).header("X-Sink: 1").spawn().await?;
    /// let answer = reqwest::Client::new().post(sink.url()).send().await?;
    /// assert_eq!(answer.headers()["retry-after"], "5");
    /// assert_eq!(answer.headers()["x-sink"], "1");
    /// # Ok(()) }
    /// ```
    pub fn header(self, header: impl IntoSetting<(HeaderName, HeaderValue)>) -> Self {
        self.set(header.into_setting(), |config, header| {
            config.behaviour.headers.push(header)
        })
    }

    /// Waits this long before each answer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().delay(std::time::Duration::from_millis(50)).spawn().await?;
    /// let started = std::time::Instant::now();
    /// reqwest::Client::new().post(sink.url()).send().await?;
    /// assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    /// # Ok(()) }
    /// ```
    pub fn delay(mut self, delay: Duration) -> Self {
        self.config.behaviour.delay = delay;
        self
    }

    /// A sequence of answers: a [`Script`], or its text such as `"500*2,200"` or
    /// `"drop,reset,hang,200@1s"`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use hookscope::{Script, Server};
    /// let script: Script = "500,200".parse()?;
    /// let sink = Server::builder().script(script).spawn().await?;
    /// let client = reqwest::Client::new();
    /// assert_eq!(client.post(sink.url()).body("{}").send().await?.status(), 500);
    /// assert_eq!(client.post(sink.url()).body("{}").send().await?.status(), 200);
    /// # Ok(())
    /// # }
    /// ```
    pub fn script(self, script: impl IntoSetting<Script>) -> Self {
        self.set(script.into_setting(), |config, script| {
            config.behaviour.script = Some(script)
        })
    }

    /// Gives a path prefix its own script: a [`Route`], or its text such as `"/flaky=500*2,200"`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().route("/flaky=500,200").spawn().await?;
    /// let client = reqwest::Client::new();
    /// assert_eq!(client.post(format!("{}/flaky/a", sink.url())).send().await?.status(), 500);
    /// assert_eq!(client.post(format!("{}/other", sink.url())).send().await?.status(), 200);
    /// # Ok(()) }
    /// ```
    pub fn route(self, route: impl IntoSetting<Route>) -> Self {
        self.set(route.into_setting(), |config, route| {
            config.behaviour.routes.push(route)
        })
    }

    /// Shares one script position across all requests instead of one per alert.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().script("503,200").global_script().spawn().await?;
    /// let client = reqwest::Client::new();
    /// // Two different bodies (two alerts) share one position in the script.
    /// assert_eq!(client.post(sink.url()).body("a").send().await?.status(), 503);
    /// assert_eq!(client.post(sink.url()).body("b").send().await?.status(), 200);
    /// # Ok(()) }
    /// ```
    pub fn global_script(mut self) -> Self {
        self.config.behaviour.scope = ScriptScope::Global;
        self
    }

    /// Answers `status` to this fraction (0 to 1) of requests at random.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().fail_rate(1.0, 502).spawn().await?;
    /// let answer = reqwest::Client::new().post(sink.url()).send().await?;
    /// assert_eq!(answer.status(), 502);
    /// # Ok(()) }
    /// ```
    pub fn fail_rate(self, rate: f64, status: impl IntoSetting<StatusCode>) -> Self {
        self.set(values::fail_rate(rate), |config, rate| {
            config.behaviour.fail_rate = rate
        })
        .set(status.into_setting(), |config, status| {
            config.behaviour.fail_status = status
        })
    }

    /// Answers 400 with the problems to a POST that is not a valid alert.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().strict().spawn().await?;
    /// let answer = reqwest::Client::new().post(sink.url()).body("{}").send().await?;
    /// assert_eq!(answer.status(), 400);
    /// assert!(answer.text().await?.contains("/createdAt"));
    /// # Ok(()) }
    /// ```
    pub fn strict(mut self) -> Self {
        self.config.behaviour.strict = true;
        self
    }

    /// Sends every request on to your own receiver at `url` (its path a prefix) and
    /// passes its answer back; script steps still decide first (`forward` is the
    /// default step, `forward>503` forwards and tells the sender 503).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = hookscope::Server::builder().status(202).spawn().await?;
    /// let front = hookscope::Server::builder().forward(app.url()).script("503,forward").spawn().await?;
    /// let client = reqwest::Client::new();
    /// let alert = r#"{"alertId": "a1"}"#;
    /// assert_eq!(client.post(front.url()).body(alert).send().await?.status(), 503);
    /// assert_eq!(client.post(front.url()).body(alert).send().await?.status(), 202);
    /// assert_eq!(app.stats().requests, 1);
    /// # Ok(()) }
    /// ```
    pub fn forward(self, url: impl IntoSetting<crate::outgoing::Url>) -> Self {
        self.set(url.into_setting(), |config, url| {
            config.behaviour.forward = Some(url)
        })
    }

    /// How long the upstream (`forward`) has to answer before the sender gets 504.
    pub fn forward_timeout(mut self, timeout: Duration) -> Self {
        self.config.upstream.forward_timeout = timeout;
        self
    }

    /// Refuses with 401 any request without this header and value:
    /// `"Name: value"` or a `(HeaderName, HeaderValue)` pair.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().require_header("X-Token: s3cret").spawn().await?;
    /// let client = reqwest::Client::new();
    /// assert_eq!(client.post(sink.url()).send().await?.status(), 401);
    /// let answer = client.post(sink.url()).header("x-token", "s3cret").send().await?;
    /// assert_eq!(answer.status(), 200);
    /// # Ok(()) }
    /// ```
    pub fn require_header(self, header: impl IntoSetting<(HeaderName, HeaderValue)>) -> Self {
        self.set(header.into_setting(), |config, header| {
            config.behaviour.required_headers.push(header)
        })
    }

    /// How requests are answered, all settings at once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use hookscope::Behaviour;
    /// let accepted = Behaviour { status: http::StatusCode::ACCEPTED, ..Behaviour::default() };
    /// let sink = hookscope::Server::builder().behaviour(accepted).spawn().await?;
    /// assert_eq!(reqwest::Client::new().post(sink.url()).send().await?.status(), 202);
    /// # Ok(()) }
    /// ```
    pub fn behaviour(mut self, behaviour: Behaviour) -> Self {
        self.config.behaviour = behaviour;
        self
    }

    /// Serves HTTPS with the certificate chain and key in these PEM files.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/certs");
    /// let sink = hookscope::Server::builder()
    ///     .tls_files(format!("{certs}/cert.pem"), format!("{certs}/key.pem"))
    ///     .spawn()
    ///     .await?;
    /// assert!(sink.url().starts_with("https://"));
    /// # Ok(()) }
    /// ```
    pub fn tls_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.config.tls_cert = Some(cert.into());
        self.config.tls_key = Some(key.into());
        self
    }

    /// Serves HTTPS with this rustls configuration.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    /// let generated = hookscope::generate_cert(&[])?;
    /// let chain = vec![CertificateDer::from_pem_slice(generated.cert_pem.as_bytes())?];
    /// let key = PrivateKeyDer::from_pem_slice(generated.key_pem.as_bytes())?;
    /// let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key)?;
    /// let sink = hookscope::Server::builder().tls(std::sync::Arc::new(config)).spawn().await?;
    /// assert!(sink.url().starts_with("https://"));
    /// # Ok(()) }
    /// ```
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Protections against slow and abusive clients (sizes, timeouts, connection and stream caps).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let limits = hookscope::Limits { max_body: 16, ..Default::default() };
    /// let sink = hookscope::Server::builder().limits(limits).spawn().await?;
    /// let answer = reqwest::Client::new().post(sink.url()).body("x".repeat(17)).send().await?;
    /// assert_eq!(answer.status(), 413);
    /// # Ok(()) }
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Largest body read; larger ones get 413.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().max_body(16).spawn().await?;
    /// let answer = reqwest::Client::new().post(sink.url()).body("x".repeat(17)).send().await?;
    /// assert_eq!(answer.status(), 413);
    /// # Ok(()) }
    /// ```
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.config.limits.max_body = bytes;
        self
    }

    /// Also serves the admin API and inspector page on this address (loopback,
    /// unless [`admin_public`](ServerBuilder::admin_public) is set too).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().admin("127.0.0.1:0".parse()?).spawn().await?;
    /// let api = format!("{}/api/stats", sink.admin_url().unwrap());
    /// assert_eq!(reqwest::get(api).await?.status(), 200);
    /// # Ok(()) }
    /// ```
    pub fn admin(mut self, addr: SocketAddr) -> Self {
        self.config.admin = addr;
        self.config.no_admin = false;
        self
    }

    /// Allows the admin API on an address other machines can reach.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use hookscope::{ConfigError, Server, ServerError};
    /// let everywhere = "0.0.0.0:0".parse()?;
    /// let refused = Server::builder().admin(everywhere).spawn().await;
    /// assert!(matches!(refused, Err(ServerError::Config(ConfigError::AdminNotLoopback(_)))));
    /// let allowed = Server::builder().admin(everywhere).admin_public(); // spawn() would listen on every interface
    /// # Ok(()) }
    /// ```
    pub fn admin_public(mut self) -> Self {
        self.config.admin_public = true;
        self
    }

    /// How many recent exchanges the history keeps (default 1000).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().keep(1).spawn().await?;
    /// let client = reqwest::Client::new();
    /// for body in ["first", "second"] {
    ///     client.post(sink.url()).body(body).send().await?;
    /// }
    /// assert_eq!(sink.received()[0].body, "second");
    /// assert_eq!(sink.stats().dropped_from_store, 1);
    /// # Ok(()) }
    /// ```
    pub fn keep(mut self, exchanges: usize) -> Self {
        self.config.keep = exchanges;
        self
    }

    /// Most bytes the kept exchanges may hold (default 64 MiB); the oldest go
    /// first, the newest is always kept.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().keep_bytes(1).spawn().await?;
    /// let client = reqwest::Client::new();
    /// for body in ["first", "second"] {
    ///     client.post(sink.url()).body(body).send().await?;
    /// }
    /// assert_eq!(sink.received().len(), 1, "over the budget, only the newest is kept");
    /// # Ok(()) }
    /// ```
    pub fn keep_bytes(mut self, bytes: u64) -> Self {
        self.config.keep_bytes = bytes;
        self
    }

    /// Appends every exchange to this file as a JSON line; an acknowledgement is
    /// sent only once its line is written.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let file = std::env::temp_dir().join(format!("hookscope-doc-{}.jsonl", std::process::id()));
    /// let sink = hookscope::Server::builder().record(&file).spawn().await?;
    /// reqwest::Client::new().post(sink.url()).body("{}").send().await?;
    /// let text = std::fs::read_to_string(&file)?;
    /// assert!(text.ends_with("}\n") && text.contains(r#""status":200"#));
    /// # std::fs::remove_file(&file)?;
    /// # Ok(()) }
    /// ```
    pub fn record(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.record = Some(path.into());
        self
    }

    /// Seeds the random source of `fail_rate`, so the same requests get the same answers.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use hookscope::Server;
    /// let statuses = |sink: hookscope::Handle| async move {
    ///     let client = reqwest::Client::new();
    ///     let mut statuses = Vec::new();
    ///     for _ in 0..8 {
    ///         statuses.push(client.post(sink.url()).send().await.unwrap().status().as_u16());
    ///     }
    ///     statuses
    /// };
    /// let first = statuses(Server::builder().fail_rate(0.5, 500).seed(7).spawn().await?).await;
    /// let again = statuses(Server::builder().fail_rate(0.5, 500).seed(7).spawn().await?).await;
    /// assert_eq!(first, again);
    /// # Ok(()) }
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// Address to listen on; port 0 picks a free port.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().bind("[::1]:0".parse()?).spawn().await?;
    /// assert!(sink.local_addr().ip().is_loopback() && sink.url().starts_with("http://[::1]:"));
    /// # Ok(()) }
    /// ```
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.config.bind = addr.ip();
        self.config.port = addr.port();
        self
    }

    /// How long shutdown waits for requests in flight.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::{Duration, Instant};
    /// let sink = hookscope::Server::builder()
    ///     .delay(Duration::from_secs(60))
    ///     .shutdown_timeout(Duration::from_millis(100))
    ///     .spawn()
    ///     .await?;
    /// let url = sink.url();
    /// tokio::spawn(async move { reqwest::Client::new().post(url).send().await });
    /// let started = Instant::now();
    /// sink.shutdown().await;
    /// assert!(started.elapsed() < Duration::from_secs(10));
    /// # Ok(()) }
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Binds the address and starts serving on the current tokio runtime.
    ///
    /// The returned handle's [`url`](Handle::url) is valid at once: the socket is
    /// accepting before this returns.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().spawn().await?;
    /// assert!(sink.url().starts_with("http://127.0.0.1:"));
    /// # Ok(()) }
    /// ```
    pub async fn spawn(self) -> Result<Handle, ServerError> {
        let ServerBuilder {
            config,
            tls,
            invalid,
        } = self;
        if let Some(problem) = invalid {
            return Err(problem.into());
        }
        config.check()?;
        let mut config = config;
        config.behaviour.prepare().map_err(ConfigError::from)?;
        let tls = match (tls, &config.tls_cert, &config.tls_key) {
            (Some(tls), _, _) => Some(tls),
            (None, Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
            _ => None,
        };
        let (recorder, database, stored) = open_persistence(&config).await?;
        let bind = |addr: SocketAddr, purpose: Listener| async move {
            let error = |source| ServerError::Bind {
                addr,
                listener: purpose,
                source,
            };
            let listener = TcpListener::bind(addr).await.map_err(error)?;
            let local = listener.local_addr().map_err(error)?;
            Ok::<_, ServerError>((listener, local))
        };
        let (listener, local_addr) = bind(config.listen_addr(), Listener::Webhook).await?;
        let upstream = match &config.behaviour.forward {
            Some(url) => Some(
                Upstream::start(url, &config.upstream, config.limits.max_body, local_addr)
                    .await
                    .map_err(ConfigError::from)?,
            ),
            None => None,
        };
        let admin = match config.admin_addr() {
            Some(addr) => Some(bind(addr, Listener::Admin).await?),
            None => None,
        };
        let (begin_shutdown, shutdown) = Shutdown::new();
        let store_summary = stored.as_ref().map(|stored| stored.summary.clone());
        let shared = Arc::new(Shared::new(
            config.behaviour,
            Store::bounded(config.keep, config.keep_bytes),
            (recorder, database),
            shutdown,
        ));
        let receiver = Arc::new(Receiver::new(
            Arc::clone(&shared),
            upstream,
            (config.schema, config.schema_routes),
            &config.limits,
            (config.seed, stored, config.store_timeout),
        ));
        let admin_addr = admin.as_ref().map(|(_, addr)| *addr);
        let scheme = if tls.is_some() { "https" } else { "http" };
        if let Some((listener, _)) = admin {
            tokio::spawn(crate::admin::serve(
                listener,
                Arc::clone(&shared),
                config.admin_public,
                webhook_url(scheme, local_addr),
            ));
        }
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(
            listener,
            tls.map(tokio_rustls::TlsAcceptor::from),
            config.limits,
            receiver,
            Stopping {
                stopped,
                begin_shutdown,
                timeout: config.shutdown_timeout,
            },
        ));
        Ok(Handle {
            local_addr,
            scheme,
            admin_addr,
            store_summary,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// Where this machine reaches the webhook listener: the inspector builds the
/// URLs it offers (Copy as curl, the editor's Send) on it, never on the Host a
/// sender wrote.
fn webhook_url(scheme: &str, local: SocketAddr) -> String {
    let ip = crate::forward::connected_to(local.ip());
    format!("{scheme}://{}", SocketAddr::new(ip, local.port()))
}

/// How long `hookscope inspect postgres://...` waits for the database.
const INSPECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The inspector alone over a store (`hookscope inspect FILE`): no webhook
/// listener, nothing written. Dropping it stops the inspector.
#[must_use = "dropping the inspector stops it at once"]
pub struct Inspector {
    admin_addr: SocketAddr,
    summary: crate::capture::StoreSummary,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

impl Inspector {
    /// Opens the store read-only and serves the inspector and the admin API over it
    /// on `admin` (loopback: the store holds every request ever received).
    pub async fn start(
        store: &crate::capture::StoreLocation,
        admin: SocketAddr,
    ) -> Result<Inspector, ServerError> {
        use crate::capture::{Database, StoreLocation};
        if !admin.ip().is_loopback() {
            return Err(ConfigError::AdminNotLoopback(admin).into());
        }
        let (database, summary) = match store {
            StoreLocation::File(path) => {
                let (embedded, summary) = crate::capture::Embedded::open_read_only(path)?;
                (Database::from(embedded), summary)
            }
            StoreLocation::Team(url) => {
                let (team, summary) =
                    crate::capture::Team::connect_read_only(url, INSPECT_TIMEOUT).await?;
                (Database::from(team), summary)
            }
        };
        let listener = TcpListener::bind(admin)
            .await
            .map_err(|source| ServerError::Bind {
                addr: admin,
                listener: Listener::Admin,
                source,
            })?;
        let admin_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: admin,
            listener: Listener::Admin,
            source,
        })?;
        let (stop, shutdown) = Shutdown::new();
        let shared = Arc::new(Shared::new(
            Behaviour::default(),
            Store::bounded(
                crate::capture::DEFAULT_KEEP,
                crate::capture::DEFAULT_KEEP_BYTES,
            ),
            (None, Some(database)),
            shutdown,
        ));
        // Copy as curl points where `hookscope listen` listens by default.
        let webhook = webhook_url("http", SocketAddr::from(([127, 0, 0, 1], 8081)));
        let task = tokio::spawn(crate::admin::serve(listener, shared, false, webhook));
        Ok(Inspector {
            admin_addr,
            summary,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The inspector's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// What the store held when it was opened.
    pub fn summary(&self) -> &crate::capture::StoreSummary {
        &self.summary
    }

    /// Stops serving and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Inspector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

/// A running receiver. Dropping it stops the server.
#[must_use = "dropping the handle stops the server at once"]
pub struct Handle {
    local_addr: SocketAddr,
    scheme: &'static str,
    admin_addr: Option<SocketAddr>,
    store_summary: Option<crate::capture::StoreSummary>,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Handle {
    /// What the `--store` held when the server started, if there is one.
    pub fn store_summary(&self) -> Option<&crate::capture::StoreSummary> {
        self.store_summary.as_ref()
    }

    /// The address the server listens on (with the real port when 0 was asked for).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::start().await?;
    /// assert_ne!(sink.local_addr().port(), 0);
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Base URL of the receiver, e.g. `http://127.0.0.1:41234` (`https://` with TLS).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::start().await?;
    /// assert!(sink.url().starts_with("http://127.0.0.1:"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
    }

    /// Base URL of the admin API and inspector, if one was asked for.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().admin("127.0.0.1:0".parse()?).spawn().await?;
    /// assert!(sink.admin_url().unwrap().starts_with("http://127.0.0.1:"));
    /// assert!(hookscope::Server::start().await?.admin_url().is_none());
    /// # Ok(()) }
    /// ```
    pub fn admin_url(&self) -> Option<String> {
        self.admin_addr.map(|addr| format!("http://{addr}"))
    }

    /// The counts so far: the same numbers `/api/stats` serves and the shutdown summary prints.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().script("500,200").spawn().await?;
    /// let client = reqwest::Client::new();
    /// let alert = hookscope::Alert::test_alert(chrono::Utc::now());
    /// for _ in 0..2 {
    ///     client.post(sink.url()).json(&alert).send().await?;
    /// }
    /// let stats = sink.stats();
    /// assert_eq!(stats.by_status["500"], 1);
    /// assert_eq!(stats.deliveries.delivered_after_retries, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The exchanges kept so far (the last `keep`), oldest first.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::start().await?;
    /// reqwest::Client::new().post(format!("{}/alerts", sink.url())).send().await?;
    /// assert_eq!(sink.received()[0].path, "/alerts");
    /// # Ok(()) }
    /// ```
    pub fn received(&self) -> Vec<Arc<Exchange>> {
        self.shared.store.all()
    }

    /// Every exchange published from now on, in order; see [`Subscription`]. It
    /// holds up to `capacity` exchanges not yet read; beyond that it misses
    /// exchanges (counted in [`Stats::not_delivered_to_subscribers`]): an answer
    /// never waits for it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::start().await?;
    /// let mut exchanges = sink.subscribe(16);
    /// reqwest::Client::new().post(sink.url()).send().await?;
    /// assert_eq!(exchanges.next().await.unwrap().method, "POST");
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self, capacity: usize) -> Subscription {
        self.shared.subscribe(capacity, false)
    }

    /// Like [`subscribe`](Handle::subscribe), but nothing is missed: when
    /// `capacity` exchanges wait unread, answers wait too (as they wait for the
    /// record), so a subscriber that stops reading stops the receiver.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::start().await?;
    /// let mut exchanges = sink.subscribe_lossless(1);
    /// let client = reqwest::Client::new();
    /// client.post(sink.url()).send().await?;
    /// // The queue is full: the next answer waits until the first exchange is read.
    /// let second = tokio::spawn(client.post(sink.url()).send());
    /// assert_eq!(exchanges.next().await.unwrap().id, 1);
    /// assert_eq!(second.await??.status(), 200);
    /// assert_eq!(exchanges.next().await.unwrap().id, 2);
    /// # Ok(()) }
    /// ```
    pub fn subscribe_lossless(&self, capacity: usize) -> Subscription {
        self.shared.subscribe(capacity, true)
    }

    /// Waits until `count` requests have arrived in all (answered or not), then
    /// returns the kept exchanges. Woken by each arrival: no polling, no sleeping.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let sink = hookscope::Server::start().await?;
    /// let url = sink.url();
    /// tokio::spawn(async move { reqwest::Client::new().post(url).body("{}").send().await });
    /// let received = sink.wait_for(1, Duration::from_secs(5)).await?;
    /// assert_eq!(received[0].method, "POST");
    /// assert!(!received[0].verdict.as_ref().unwrap().is_valid());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_for(
        &self,
        count: u64,
        timeout: Duration,
    ) -> Result<Vec<Arc<Exchange>>, WaitTimeout> {
        self.shared.store.wait_for(count, timeout).await?;
        Ok(self.received())
    }

    /// Changes the answer behaviour in place; the next request reads the result.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::start().await?;
    /// sink.update_behaviour(|behaviour| behaviour.status = http::StatusCode::BAD_GATEWAY)?;
    /// let answer = reqwest::Client::new().post(sink.url()).send().await?;
    /// assert_eq!(answer.status(), 502);
    /// # Ok(())
    /// # }
    /// ```
    pub fn update_behaviour(&self, change: impl FnOnce(&mut Behaviour)) -> Result<(), ConfigError> {
        let mut behaviour = (*self.shared.behaviour()).clone();
        change(&mut behaviour);
        self.set_behaviour(behaviour)
    }

    /// The answer behaviour in force.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::builder().status(503).spawn().await?;
    /// assert_eq!(sink.behaviour().status, 503);
    /// # Ok(()) }
    /// ```
    pub fn behaviour(&self) -> Arc<Behaviour> {
        self.shared.behaviour()
    }

    /// Replaces the answer behaviour; the next request reads the new one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::start().await?;
    /// sink.set_behaviour(hookscope::Behaviour { strict: true, ..Default::default() })?;
    /// let answer = reqwest::Client::new().post(sink.url()).body("{}").send().await?;
    /// assert_eq!(answer.status(), 400);
    /// # Ok(()) }
    /// ```
    pub fn set_behaviour(&self, behaviour: Behaviour) -> Result<(), ConfigError> {
        Ok(self.shared.set_behaviour(behaviour)?)
    }

    /// Opens the `--record` file again at its path and writes there from now on,
    /// recording again if it had failed (the binary does this on SIGHUP, after a
    /// rotation). Without a record file it does nothing.
    pub async fn reopen_record(&self) -> Result<(), RecordError> {
        match (&self.shared.recorder, &self.shared.database) {
            (Some(recorder), _) => recorder.reopen().await,
            (None, Some(database)) => database.reopen_record().await,
            (None, None) => Ok(()),
        }
    }

    /// Stops accepting, lets requests in flight finish (up to the shutdown timeout),
    /// and returns the final counts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::start().await?;
    /// reqwest::Client::new().post(sink.url()).send().await?;
    /// let stats = sink.shutdown().await;
    /// assert_eq!(stats.requests, 1);
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(mut self) -> Stats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.stats()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The record's own writer, or the store's (feeding the record too), and what the store held.
type Persistence = (
    Option<Recorder>,
    Option<crate::capture::Database>,
    Option<crate::capture::Stored>,
);

/// Opens what keeps exchanges: the record file, the store, or both behind one
/// writer (with a store, its writer appends each line to the record too).
async fn open_persistence(config: &Config) -> Result<Persistence, ServerError> {
    use crate::capture::{Database, StoreLocation};
    let retention = crate::capture::Retention {
        max_age: config.store_max_age,
        max_rows: config.store_max_rows,
    };
    match &config.store {
        None => {
            let recorder = config.record.as_deref().map(Recorder::open).transpose()?;
            Ok((recorder, None, None))
        }
        Some(StoreLocation::File(path)) => {
            let record = config.record.as_deref().map(RecordFile::open).transpose()?;
            let (embedded, stored) = crate::capture::Embedded::open(path, retention, record)?;
            Ok((None, Some(Database::from(embedded)), Some(stored)))
        }
        // A shared store keeps its state in the database, read at each decision:
        // nothing is restored into this process.
        Some(StoreLocation::Team(url)) => {
            let recorder = config.record.as_deref().map(Recorder::open).transpose()?;
            let (team, summary) =
                crate::capture::Team::connect(url, retention, config.store_timeout).await?;
            let stored = crate::capture::Stored {
                summary,
                ..Default::default()
            };
            Ok((recorder, Some(Database::from(team)), Some(stored)))
        }
    }
}
