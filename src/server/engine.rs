//! The engine room of a running receiver: the accept loop (connection slots, the
//! head-less and the slowest giving way, TLS handshakes, the watchdog beside each
//! connection), the connection settings for the limits, and the state one request
//! reads and advances ([`Receiver`]). `mod.rs` is the fixture's face: the builder
//! and the handle.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use super::{Limits, MIN_HEADER_SIZE, budget, limits, service};
use crate::capture::{Deliveries, Exchange};
use crate::respond::ScriptState;
use crate::shared::Shared;

/// The next exchange id from a shared store; `0` when it cannot give one, with why
/// (the request then gets 503: nothing about it could be stored).
pub(super) async fn shared_id(
    team: &crate::capture::Team,
) -> (u64, Option<crate::capture::StoreError>) {
    match team.next_id().await {
        Ok(id) => (id, None),
        Err(error) => (0, Some(error)),
    }
}

/// What the webhook listener's requests read and advance.
pub(crate) struct Receiver {
    pub(super) shared: Arc<Shared>,
    /// The client for `--forward`, when there is one.
    pub(super) upstream: Option<crate::forward::Upstream>,
    /// What bodies are checked against (`--schema`, `--schema-route`).
    pub(super) schema: crate::schemas::Schema,
    pub(super) schema_routes: Vec<crate::schemas::SchemaRoute>,
    /// What bounds the reading of one body.
    pub(super) body_limits: service::BodyLimits,
    /// The in-flight body budget (`--max-inflight-bytes`).
    pub(super) budget: budget::BodyBudget,
    pub(super) next_id: AtomicU64,
    pub(super) decisions: Mutex<Decisions>,
    /// The longest an answer waits for the store (`--store-timeout`).
    pub(super) store_timeout: Duration,
}

/// Everything a decision reads and advances, behind one lock so that attempt
/// numbers, script positions and random draws follow one request order.
pub(crate) struct Decisions {
    pub(super) deliveries: Deliveries,
    /// The store's count of clears when `deliveries` began.
    pub(super) clears: u64,
    pub(super) scripts: ScriptState,
    pub(super) rng: fastrand::Rng,
}

impl Receiver {
    /// The state of a new receiver: what its requests read (`shared`, the upstream
    /// client, the schemas, the limits) and advance (ids, deliveries, scripts, draws).
    pub(super) fn new(
        shared: Arc<Shared>,
        upstream: Option<crate::forward::Upstream>,
        (schema, schema_routes): (crate::schemas::Schema, Vec<crate::schemas::SchemaRoute>),
        limits: &Limits,
        (seed, stored, store_timeout): (Option<u64>, Option<crate::capture::Stored>, Duration),
    ) -> Receiver {
        let rng = match seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        // A store's state goes on: ids after its last, attempts and script positions
        // where they were.
        let mut deliveries = Deliveries::default();
        let mut scripts = ScriptState::default();
        let mut next_id = 1;
        if let Some(stored) = stored {
            deliveries.restore(
                stored.deliveries,
                Instant::now(),
                chrono::Utc::now().timestamp_micros(),
            );
            scripts.restore(stored.script_positions);
            next_id = stored.next_id;
        }
        Receiver {
            shared,
            upstream,
            schema,
            schema_routes,
            body_limits: service::BodyLimits {
                max: limits.max_body,
                read_buffer: limits.max_header_size.max(MIN_HEADER_SIZE),
                stall: limits.header_read_timeout,
                total: limits.body_timeout,
            },
            budget: budget::BodyBudget::new(limits.inflight_budget()),
            next_id: AtomicU64::new(next_id),
            decisions: Mutex::new(Decisions {
                deliveries,
                clears: 0,
                scripts,
                rng,
            }),
            store_timeout,
        }
    }

    pub(super) fn decisions(&self) -> MutexGuard<'_, Decisions> {
        let mut decisions = self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // DELETE /api/requests forgets the deliveries too (the admin API cannot
        // reach them; it bumps the store's count of clears).
        let clears = self.shared.store.clears();
        if decisions.clears != clears {
            decisions.deliveries = Deliveries::default();
            decisions.clears = clears;
        }
        decisions
    }

    pub(super) fn next_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Captures a request that hyper refused while reading its head (it answered
    /// 400, 414 or 431 itself), so that it is in the history and the record too.
    fn capture_refused_head(
        self: &Arc<Self>,
        peer: SocketAddr,
        error: &(dyn std::error::Error + 'static),
    ) {
        let Some((status, reason)) = error
            .downcast_ref::<hyper::Error>()
            .and_then(service::refused_head)
        else {
            return;
        };
        if self.shared.team().is_some() {
            // A shared store numbers it: its id is a round trip away.
            let receiver = Arc::clone(self);
            tokio::spawn(async move {
                let Some(team) = receiver.shared.team() else {
                    return;
                };
                let (id, _) = shared_id(team).await;
                let exchange = Exchange::unreadable_head(id, peer, status, reason);
                receiver
                    .shared
                    .publish(exchange, false, None, Default::default());
            });
            return;
        }
        let exchange = Exchange::unreadable_head(self.next_id(), peer, status, reason);
        self.shared
            .publish(exchange, false, None, Default::default());
    }
}

/// How the accept loop learns to stop, and what it does then.
pub(super) struct Stopping {
    pub(super) stopped: oneshot::Receiver<()>,
    pub(super) begin_shutdown: watch::Sender<bool>,
    pub(super) timeout: Duration,
}

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP/2 flow-control window of at most `bytes`, within the protocol's bounds
/// (64 KiB - 1 to 2^31 - 1).
fn window(bytes: u64) -> u32 {
    u32::try_from(bytes)
        .unwrap_or(u32::MAX)
        .clamp(65_535, 1 << 20)
}

/// The HTTP/1 and HTTP/2 connection settings for these limits.
/// The head timeout of connections accepted when fewer than an eighth of the
/// connection slots are free (`--header-read-timeout` when that is shorter).
const PRESSED_HEAD_TIMEOUT: Duration = Duration::from_secs(2);

fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Also the size its read buffer grows to (`service::BodyLimits::read_buffer`).
        .max_buf_size(limits.max_header_size.max(MIN_HEADER_SIZE));
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_streams)
        // What hyper buffers before the service reads: one body per stream at
        // most, and no more than the in-flight budget per connection.
        .initial_stream_window_size(window(limits.max_body))
        .initial_connection_window_size(window(limits.inflight_budget()))
        .max_pending_accept_reset_streams(limits.h2_max_pending_resets)
        .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX));
    http
}

/// How often a connection waiting for a slot asks again for one to give way.
const ASK_FOR_A_SLOT_EVERY: Duration = Duration::from_millis(100);

/// A connection slot, once one is free or made free; `None` when stopping.
async fn wait_for_slot(
    slots: &Arc<tokio::sync::Semaphore>,
    headless: &mut limits::Headless,
    receiver: &Receiver,
    stopped: &mut oneshot::Receiver<()>,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    loop {
        if !headless.evict_oldest() {
            receiver.budget.tell_slowest_to_give_way(None, false);
        }
        tokio::select! {
            slot = Arc::clone(slots).acquire_owned() => return slot.ok(),
            () = tokio::time::sleep(ASK_FOR_A_SLOT_EVERY) => {}
            _ = &mut *stopped => return None,
        }
    }
}

/// The TLS handshake of a new connection; one that fails is counted and said, since
/// no exchange is captured for it.
async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    receiver: &Receiver,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            receiver.shared.count_tls_failure(peer, &error.to_string());
            None
        }
        Err(_) => {
            let why = format!(
                "no handshake within {} s (a client that connected and said nothing)",
                TLS_HANDSHAKE_TIMEOUT.as_secs()
            );
            receiver.shared.count_tls_failure(peer, &why);
            None
        }
    }
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    receiver: Arc<Receiver>,
    stopping: Stopping,
) {
    let Stopping {
        mut stopped,
        begin_shutdown,
        timeout: shutdown_timeout,
    } = stopping;
    let graceful = GracefulShutdown::new();
    let http = Arc::new(connection_builder(&limits));
    // Near the connection cap, new connections get less time for their request head
    // (as nginx and Go servers do in spirit): slow or silent clients give way sooner.
    let pressed = Arc::new(connection_builder(&Limits {
        header_read_timeout: limits.header_read_timeout.min(PRESSED_HEAD_TIMEOUT),
        ..limits
    }));
    // Beyond the cap, new connections wait in the kernel's accept queue; the
    // ones being served are not disturbed.
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut headless = limits::Headless::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Every slot is taken: a connection that has not even sent a head
                // gives way to this one, or else the one whose body arrives most
                // slowly; otherwise this one waits for a slot, asking again now and then.
                let Some(slot) =
                    wait_for_slot(&slots, &mut headless, &receiver, &mut stopped).await
                else {
                    break;
                };
                slot
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = service::Connection {
            peer,
            socket: std::os::fd::AsRawFd::as_raw_fd(&stream),
            tls: tls.is_some(),
        };
        let refusals = Arc::clone(&receiver);
        let shared = Arc::clone(&receiver);
        let activity = limits::Activity::new();
        headless.add(&activity, limits.max_connections);
        let requests = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |request| {
            let in_flight = requests.request();
            // Boxed: hyper moves the future it is given into place, and this one
            // holds a whole exchange (copying it cost more than the allocation).
            let answer = Box::pin(service::handle(Arc::clone(&shared), connection, request));
            async move {
                let answer = answer.await;
                drop(in_flight);
                answer
            }
        });
        let near_cap = slots.available_permits() < limits.max_connections.div_ceil(8);
        let http = Arc::clone(if near_cap { &pressed } else { &http });
        let head_timeout = if near_cap {
            limits.header_read_timeout.min(PRESSED_HEAD_TIMEOUT)
        } else {
            limits.header_read_timeout
        };
        let (watcher, tls) = (graceful.watcher(), tls.clone());
        let idle_timeout = limits.idle_timeout;
        let watched = Arc::clone(&activity);
        // A client that goes away mid-request is routine for a webhook receiver,
        // so connection errors end the connection and nothing else.
        let serving = tokio::spawn(async move {
            match tls {
                None => {
                    let io = limits::Watched::new(stream, watched);
                    let connection = http.serve_connection(TokioIo::new(io), service);
                    if let Err(error) = watcher.watch(connection.into_owned()).await {
                        refusals.capture_refused_head(peer, &*error);
                    }
                }
                Some(acceptor) => {
                    if let Some(stream) = handshake(&acceptor, stream, &refusals, peer).await {
                        let io = limits::Watched::new(stream, watched);
                        let connection = http.serve_connection(TokioIo::new(io), service);
                        if let Err(error) = watcher.watch(connection.into_owned()).await {
                            refusals.capture_refused_head(peer, &*error);
                        }
                    }
                }
            }
        });
        tokio::spawn(watch_over(
            serving,
            slot,
            activity,
            (idle_timeout, head_timeout),
        ));
    }
    drop(listener);
    wind_down(&receiver, begin_shutdown, graceful, shutdown_timeout).await;
}

/// The watchdog of one connection, a task of its own (in the connection's task its
/// timers and notification were polled again on every wake-up, that is on every read
/// and write of every request): it closes the connection when idle, without a head,
/// or told to make room, and holds its slot until it is closed.
async fn watch_over(
    mut serving: tokio::task::JoinHandle<()>,
    slot: tokio::sync::OwnedSemaphorePermit,
    activity: Arc<limits::Activity>,
    (idle_timeout, head_timeout): (Duration, Duration),
) {
    let _slot = slot;
    tokio::select! {
        _ = &mut serving => return,
        _ = limits::idle(&activity, idle_timeout) => {}
        _ = limits::no_head_within(&activity, head_timeout) => {}
        _ = activity.evicted() => {}
    }
    serving.abort();
    // The slot is given back once the connection is closed.
    let _ = serving.await;
}

/// After the listener is closed: wakes requests told to hang, gives the others
/// `--shutdown-timeout`, flushes the record, and ends the subscriptions.
async fn wind_down(
    receiver: &Receiver,
    begin_shutdown: watch::Sender<bool>,
    graceful: GracefulShutdown,
    shutdown_timeout: Duration,
) {
    let _ = begin_shutdown.send(true);
    let _ = tokio::time::timeout(shutdown_timeout, graceful.shutdown()).await;
    if let Some(recorder) = &receiver.shared.recorder {
        recorder.flush().await;
    }
    if let Some(database) = &receiver.shared.database {
        // What was stored without waiting (answers that acknowledged nothing).
        let _ = database.flush().await;
    }
    // Lets subscribers (the printer) finish even while an admin connection still
    // holds on to the shared state.
    receiver.shared.close_subscriptions();
}
