//! The listener: bind, accept loop, graceful shutdown, and the [`Handle`] that owns it.

mod limits;
mod service;
pub mod tls;

pub use limits::{Limits, MIN_HEADER_SIZE};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::capture::{
    Deliveries, Exchange, Store, Summary, WaitTimeout, DEFAULT_KEEP, DEFAULT_KEEP_BYTES,
};
use crate::output::{record_line, RecordError, Recorder};
use crate::respond::{Behaviour, ScriptState};

/// Default largest body read: 1 MiB, far above any real alert.
pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024;

/// How long shutdown waits for in-flight requests before it gives up on them.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The address could not be bound (in use, not local, no permission...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The record file cannot be used.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A builder setting is invalid (a script that does not parse, a status out of range...).
    #[error("invalid setting: {0}")]
    Config(String),
}

/// Entry point for starting a receiver; see [`ServerBuilder`].
pub struct Server;

impl Server {
    /// A builder with Panther's defaults: 127.0.0.1 on a free port, answering 200 `success`.
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
        ServerBuilder {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            behaviour: Behaviour::default(),
            max_body: DEFAULT_MAX_BODY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            seed: None,
            keep: DEFAULT_KEEP,
            keep_bytes: DEFAULT_KEEP_BYTES,
            record: None,
            admin: None,
            tls: None,
            tls_files: None,
            limits: Limits::default(),
            invalid: None,
            observers: Vec::new(),
        }
    }
}

/// Configures a receiver, then [`spawn`](ServerBuilder::spawn)s it.
pub struct ServerBuilder {
    bind: SocketAddr,
    behaviour: Behaviour,
    max_body: u64,
    shutdown_timeout: Duration,
    seed: Option<u64>,
    keep: usize,
    keep_bytes: u64,
    record: Option<std::path::PathBuf>,
    admin: Option<SocketAddr>,
    tls: Option<Arc<rustls::ServerConfig>>,
    tls_files: Option<(std::path::PathBuf, std::path::PathBuf)>,
    limits: Limits,
    /// The first invalid setting, reported by `spawn` so that the builder stays fluent.
    invalid: Option<String>,
    observers: Vec<mpsc::Sender<Arc<Exchange>>>,
}

impl ServerBuilder {
    fn invalid(mut self, problem: String) -> Self {
        self.invalid.get_or_insert(problem);
        self
    }

    /// Status of every answer (default 200).
    pub fn status(mut self, status: u16) -> Self {
        match crate::respond::parse_status(&status.to_string()) {
            Ok(status) => {
                self.behaviour.status = status;
                self
            }
            Err(error) => self.invalid(error.to_string()),
        }
    }

    /// Body of every 2XX answer (default `success`).
    pub fn body(mut self, body: impl Into<bytes::Bytes>) -> Self {
        self.behaviour.body = body.into();
        self
    }

    /// Adds a header to every answer, as `"Name: value"`.
    pub fn header(mut self, header: &str) -> Self {
        match crate::respond::parse_header(header) {
            Ok((name, value)) => {
                self.behaviour.headers.append(name, value);
                self
            }
            Err(error) => self.invalid(error.to_string()),
        }
    }

    /// Waits this long before each answer.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.behaviour.delay = delay;
        self
    }

    /// A sequence of answers, e.g. `"500*2,200"` or `"drop,reset,hang,200@1s"`.
    pub fn script(mut self, script: &str) -> Self {
        match script.parse() {
            Ok(script) => {
                self.behaviour.script = Some(script);
                self
            }
            Err(error) => self.invalid(format!("{error}")),
        }
    }

    /// Gives a path prefix its own script, as `"/flaky=500*2,200"`.
    pub fn route(mut self, route: &str) -> Self {
        match route.parse() {
            Ok(route) => {
                self.behaviour.routes.push(route);
                self
            }
            Err(error) => self.invalid(format!("{error}")),
        }
    }

    /// Shares one script position across all requests instead of one per alert.
    pub fn global_script(mut self) -> Self {
        self.behaviour.scope = crate::respond::ScriptScope::Global;
        self
    }

    /// Answers `status` to this fraction (0 to 1) of requests at random.
    pub fn fail_rate(mut self, rate: f64, status: u16) -> Self {
        if !(0.0..=1.0).contains(&rate) {
            return self.invalid(format!("fail rate must be from 0 to 1, got {rate}"));
        }
        self.behaviour.fail_rate = rate;
        match crate::respond::parse_status(&status.to_string()) {
            Ok(status) => {
                self.behaviour.fail_status = status;
                self
            }
            Err(error) => self.invalid(error.to_string()),
        }
    }

    /// Answers 400 with the problems to a POST that is not a valid alert.
    pub fn strict(mut self) -> Self {
        self.behaviour.strict = true;
        self
    }

    /// Refuses with 401 any request without this header and value, as `"Name: value"`.
    pub fn require_header(mut self, header: &str) -> Self {
        match crate::respond::parse_header(header) {
            Ok(pair) => {
                self.behaviour.required_headers.push(pair);
                self
            }
            Err(error) => self.invalid(error.to_string()),
        }
    }

    /// Serves HTTPS with the certificate chain and key in these PEM files.
    pub fn tls_files(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.tls_files = Some((cert.into(), key.into()));
        self
    }

    /// Protections against slow and abusive clients (timeouts, sizes, connection and stream caps).
    pub fn limits(mut self, limits: Limits) -> Self {
        if limits.max_header_size < MIN_HEADER_SIZE {
            return self.invalid(format!(
                "the header size limit must be at least {MIN_HEADER_SIZE} bytes"
            ));
        }
        self.limits = limits;
        self
    }

    /// Serves HTTPS with this rustls configuration.
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Also serves the admin API and inspector page on this address.
    pub fn admin(mut self, addr: SocketAddr) -> Self {
        self.admin = Some(addr);
        self
    }

    /// How many recent exchanges the history keeps (default 1000).
    pub fn keep(mut self, exchanges: usize) -> Self {
        self.keep = exchanges;
        self
    }

    /// Most bytes the kept exchanges may hold (default 64 MiB); the oldest go
    /// first, the newest is always kept.
    pub fn keep_bytes(mut self, bytes: u64) -> Self {
        self.keep_bytes = bytes;
        self
    }

    /// Appends every exchange to this file as a JSON line; an acknowledgement is
    /// sent only once its line is written.
    pub fn record(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.record = Some(path.into());
        self
    }

    /// Seeds the random source of `fail_rate`, so the same requests get the same answers.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Address to listen on; port 0 picks a free port.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// How requests are answered.
    pub fn behaviour(mut self, behaviour: Behaviour) -> Self {
        self.behaviour = behaviour;
        self
    }

    /// Largest body read; larger ones get 413.
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }

    /// How long shutdown waits for requests in flight.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sends every finished exchange to this channel, without ever waiting on it:
    /// when the channel is full the exchange is not sent there (the answer is never delayed).
    pub fn observe(mut self, observer: mpsc::Sender<Arc<Exchange>>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Binds the address and starts serving on the current tokio runtime.
    ///
    /// The returned handle's [`url`](Handle::url) is valid at once: the socket is
    /// accepting before this returns.
    pub async fn spawn(mut self) -> Result<Handle, ServerError> {
        if let Some(problem) = self.invalid.take() {
            return Err(ServerError::Config(problem));
        }
        if let Some((cert, key)) = &self.tls_files {
            self.tls = Some(tls::server_config(cert, key)?);
        }
        let recorder = self.record.as_deref().map(Recorder::open).transpose()?;
        let listener = TcpListener::bind(self.bind)
            .await
            .map_err(|source| ServerError::Bind {
                addr: self.bind,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: self.bind,
            source,
        })?;
        let admin_listener = match self.admin {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        let admin_addr = admin_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok());
        let rng = match self.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        let (shutting_down_tx, shutting_down) = watch::channel(false);
        let shared = Arc::new(Shared {
            behaviour: RwLock::new(Arc::new(self.behaviour)),
            max_body: self.max_body,
            next_id: AtomicU64::new(1),
            decisions: Mutex::new(Decisions {
                deliveries: Deliveries::default(),
                scripts: ScriptState::default(),
                rng,
            }),
            summary: Mutex::new(Summary::default()),
            store: Store::bounded(self.keep, self.keep_bytes),
            recorder,
            observers: Mutex::new(self.observers),
            shutting_down,
        });
        if let Some(listener) = admin_listener {
            tokio::spawn(crate::admin::serve(
                listener,
                Arc::clone(&shared),
                shared.shutting_down.clone(),
            ));
        }
        let (stop, stopped) = oneshot::channel();
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let tls = self.tls.map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(accept_loop(
            listener,
            tls,
            self.limits,
            Arc::clone(&shared),
            stopped,
            shutting_down_tx,
            self.shutdown_timeout,
        ));
        Ok(Handle {
            local_addr,
            scheme,
            admin_addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// State every request reads.
pub(crate) struct Shared {
    behaviour: RwLock<Arc<Behaviour>>,
    max_body: u64,
    next_id: AtomicU64,
    decisions: Mutex<Decisions>,
    summary: Mutex<Summary>,
    pub(crate) store: Store,
    recorder: Option<Recorder>,
    observers: Mutex<Vec<mpsc::Sender<Arc<Exchange>>>>,
    shutting_down: watch::Receiver<bool>,
}

/// Everything a decision reads and advances, behind one lock so that attempt
/// numbers, script positions and random draws follow one request order.
pub(crate) struct Decisions {
    deliveries: Deliveries,
    scripts: ScriptState,
    rng: fastrand::Rng,
}

impl Shared {
    pub(crate) fn set_behaviour(&self, behaviour: Behaviour) {
        *self
            .behaviour
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(behaviour);
    }

    pub(crate) fn delivery_counts(&self) -> crate::capture::DeliveryCounts {
        self.decisions().deliveries.counts()
    }

    fn decisions(&self) -> std::sync::MutexGuard<'_, Decisions> {
        self.decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn behaviour(&self) -> Arc<Behaviour> {
        Arc::clone(
            &self
                .behaviour
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Captures a request that hyper refused while reading its head (it answered
    /// 400, 414 or 431 itself), so that it is in the history and the record too.
    fn capture_refused_head(&self, peer: SocketAddr, error: &(dyn std::error::Error + 'static)) {
        let Some((status, reason)) = error
            .downcast_ref::<hyper::Error>()
            .and_then(service::refused_head)
        else {
            return;
        };
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.publish(Exchange::unreadable_head(id, peer, status, reason), false);
    }

    /// Hands a finished exchange to everyone who wants it: the record file (unless
    /// it was already written there), the summary, the history, the observers.
    fn publish(&self, exchange: Exchange, recorded: bool) {
        if let (Some(recorder), false) = (&self.recorder, recorded) {
            recorder.write_detached(record_line(&exchange));
        }
        self.summary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(&exchange);
        let exchange = Arc::new(exchange);
        self.store.push(Arc::clone(&exchange));
        let observers = self
            .observers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for observer in observers.iter() {
            let _ = observer.try_send(Arc::clone(&exchange));
        }
    }
}

/// A running receiver. Dropping it stops the server.
pub struct Handle {
    local_addr: SocketAddr,
    scheme: &'static str,
    admin_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Handle {
    /// The address the server listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Base URL of the receiver, e.g. `http://127.0.0.1:41234` (`https://` with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
    }

    /// Base URL of the admin API and inspector, if one was asked for.
    pub fn admin_url(&self) -> Option<String> {
        self.admin_addr.map(|addr| format!("http://{addr}"))
    }

    /// Counts so far.
    pub fn summary(&self) -> Summary {
        let mut summary = self
            .shared
            .summary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        summary.deliveries = self.shared.delivery_counts();
        summary.record_failure = self
            .shared
            .recorder
            .as_ref()
            .and_then(|recorder| recorder.check().err())
            .map(|error| error.to_string());
        summary
    }

    /// The exchanges kept so far (the last `keep`), oldest first.
    pub fn received(&self) -> Vec<Arc<Exchange>> {
        self.shared.store.all()
    }

    /// The history, its counts and its live feed.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Waits until `count` requests have arrived in all (answered or not), then
    /// returns the kept exchanges. Woken by each arrival: no polling, no sleeping.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let sink = hookscope::Server::builder().spawn().await?;
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
    pub fn update_behaviour(&self, change: impl FnOnce(&mut Behaviour)) {
        let mut behaviour = (*self.shared.behaviour()).clone();
        change(&mut behaviour);
        self.shared.set_behaviour(behaviour);
    }

    /// The answer behaviour in force.
    pub fn behaviour(&self) -> Arc<Behaviour> {
        self.shared.behaviour()
    }

    /// Replaces the answer behaviour; the next request reads the new one.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.shared.set_behaviour(behaviour);
    }

    /// Stops accepting, lets requests in flight finish (up to the shutdown timeout),
    /// and returns the final counts.
    pub async fn shutdown(mut self) -> Summary {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.summary()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Resolves once the server has begun shutting down.
pub(crate) async fn until_shutdown(shutting_down: &mut watch::Receiver<bool>) {
    let _ = shutting_down.wait_for(|&down| down).await;
}

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP/1 and HTTP/2 connection settings for these limits.
fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_size.max(MIN_HEADER_SIZE));
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_streams)
        .max_pending_accept_reset_streams(limits.h2_max_pending_resets)
        .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX));
    http
}

#[allow(clippy::too_many_arguments)]
async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
    shutting_down: watch::Sender<bool>,
    shutdown_timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let http = Arc::new(connection_builder(&limits));
    // Beyond the cap, new connections wait in the kernel's accept queue; the
    // ones being served are not disturbed.
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = &mut stopped => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    crate::output::log_warning(format_args!("accept failed: {error}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = service::Connection {
            peer,
            socket: std::os::fd::AsRawFd::as_raw_fd(&stream),
        };
        let refusals = Arc::clone(&shared);
        let shared = Arc::clone(&shared);
        let activity = limits::Activity::new();
        let requests = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |request| {
            let in_flight = requests.request();
            let answer = service::handle(Arc::clone(&shared), connection, request);
            async move {
                let answer = answer.await;
                drop(in_flight);
                answer
            }
        });
        let (http, watcher, tls) = (Arc::clone(&http), graceful.watcher(), tls.clone());
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            // A client that goes away mid-request is routine for a webhook receiver,
            // so connection errors end the connection and nothing else.
            let serve = async {
                match tls {
                    None => {
                        let io = limits::Watched::new(stream, Arc::clone(&activity));
                        let connection = http.serve_connection(TokioIo::new(io), service);
                        if let Err(error) = watcher.watch(connection.into_owned()).await {
                            refusals.capture_refused_head(peer, &*error);
                        }
                    }
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                        if let Ok(Ok(stream)) = handshake.await {
                            let io = limits::Watched::new(stream, Arc::clone(&activity));
                            let connection = http.serve_connection(TokioIo::new(io), service);
                            if let Err(error) = watcher.watch(connection.into_owned()).await {
                                refusals.capture_refused_head(peer, &*error);
                            }
                        }
                    }
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = limits::idle(&activity, idle_timeout) => {}
            }
        });
    }
    drop(listener);
    // Wakes requests that were told to hang, so they do not hold the shutdown up.
    let _ = shutting_down.send(true);
    let _ = tokio::time::timeout(shutdown_timeout, graceful.shutdown()).await;
    if let Some(recorder) = &shared.recorder {
        recorder.flush().await;
    }
    // Lets observers (the printer) finish even while an admin connection still
    // holds on to the shared state.
    shared
        .observers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
}
