//! What the webhook listener, the admin API and the [`Handle`](crate::Handle) share
//! while a receiver runs: the answer behaviour (swapped whole, read once per
//! request), the history with its counts, the record file, the subscribers, and
//! the shutdown signal. The admin API depends on this and nothing of the server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::OwnedPermit;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::capture::{
    Exchange, JsonLine, Recorder, StateChange, Stats, Store, json_line, record_line_and_sameness,
};
use crate::respond::{Behaviour, BehaviourError};

/// A published exchange, with its JSON line when recording rendered it already
/// (so that stdout does not render the same line again).
pub(crate) type Published = (Arc<Exchange>, Option<JsonLine>);

/// How often at most a subscriber that falls behind is reported.
const MISSED_REPORT_EVERY: Duration = Duration::from_secs(1);

/// The most bytes of exchanges one subscriber's queue holds (besides its count): a
/// stalled stdout with 1 MiB bodies would otherwise hold a gigabyte.
const MAX_QUEUED_BYTES: usize = 32 * 1024 * 1024;

/// What travels in a subscriber's queue: the exchange, and its bytes' room in the
/// queue, given back when it is taken.
type Queued = (Published, Option<OwnedSemaphorePermit>);

/// One subscriber: its queue, the room left in it in bytes, and whether answers
/// wait for room in it.
struct Subscriber {
    queue: mpsc::Sender<Queued>,
    room: Arc<Semaphore>,
    lossless: bool,
}

/// Room taken in every lossless subscriber's queue for one exchange, before its
/// answer is sent: when a queue is full, the answer waits, as it waits for the record.
#[derive(Default)]
pub(crate) struct Reserved(
    Vec<(
        mpsc::Sender<Queued>,
        OwnedPermit<Queued>,
        Option<OwnedSemaphorePermit>,
    )>,
);

/// Something counted that is said on stderr now and then, never once per event: a
/// flood of them must not flood the terminal.
struct ReportedCount {
    total: AtomicU64,
    /// Counted since the last report, and when that was.
    unreported: Mutex<(u64, Option<Instant>)>,
    every: Duration,
}

impl ReportedCount {
    fn new(every: Duration) -> ReportedCount {
        ReportedCount {
            total: AtomicU64::new(0),
            unreported: Mutex::new((0, None)),
            every,
        }
    }

    /// Counts `count` more; when a report is due, `report` says how many since the last.
    fn add(&self, count: u64, report: impl FnOnce(u64)) {
        self.total.fetch_add(count, Ordering::Relaxed);
        let mut unreported = self
            .unreported
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        unreported.0 += count;
        if unreported.1.is_none_or(|last| last.elapsed() >= self.every) {
            report(unreported.0);
            *unreported = (0, Some(Instant::now()));
        }
    }

    fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// How often failed TLS handshakes are said on stderr, at most.
const TLS_REPORT_EVERY: Duration = Duration::from_secs(10);

/// The state shared by everything that serves one receiver.
pub(crate) struct Shared {
    behaviour: RwLock<Arc<Behaviour>>,
    pub(crate) store: Store,
    pub(crate) recorder: Option<Recorder>,
    /// `--store`: what was seen and decided, kept across restarts.
    pub(crate) database: Option<crate::capture::Database>,
    subscribers: Mutex<Vec<Subscriber>>,
    /// Exchanges lossy subscribers missed.
    missed: ReportedCount,
    /// TLS handshakes that failed (a client that does not trust the certificate,
    /// plain HTTP to an https listener): no exchange is captured for them.
    tls_failures: ReportedCount,
    shutdown: Shutdown,
    /// Started with a forward URL (and so an upstream client): the URL may change.
    forwards: bool,
}

impl Shared {
    pub(crate) fn new(
        behaviour: Behaviour,
        store: Store,
        (recorder, database): (Option<Recorder>, Option<crate::capture::Database>),
        shutdown: Shutdown,
    ) -> Shared {
        Shared {
            forwards: behaviour.forward.is_some(),
            behaviour: RwLock::new(Arc::new(behaviour)),
            store,
            recorder,
            database,
            subscribers: Mutex::new(Vec::new()),
            missed: ReportedCount::new(MISSED_REPORT_EVERY),
            tls_failures: ReportedCount::new(TLS_REPORT_EVERY),
            shutdown,
        }
    }

    /// The answer behaviour in force.
    pub(crate) fn behaviour(&self) -> Arc<Behaviour> {
        Arc::clone(
            &self
                .behaviour
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Replaces the answer behaviour once it is prepared ([`Behaviour::prepare`]); the
    /// next request reads the new one. The one way a running behaviour changes.
    pub(crate) fn set_behaviour(&self, mut behaviour: Behaviour) -> Result<(), BehaviourError> {
        behaviour.prepare()?;
        if behaviour.forward.is_some() && !self.forwards {
            return Err(BehaviourError::ForwardNotStarted);
        }
        self.replace_behaviour(behaviour);
        Ok(())
    }

    fn replace_behaviour(&self, behaviour: Behaviour) {
        *self
            .behaviour
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(behaviour);
    }

    /// The counts, as `/api/stats`, the handle and the shutdown summary show them.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            record_failure: match (&self.recorder, &self.database) {
                (Some(recorder), _) => recorder.check().err(),
                (None, Some(database)) => database.record().and_then(|record| record.check().err()),
                (None, None) => None,
            }
            .map(|error| error.to_string()),
            not_delivered_to_subscribers: self.missed.total(),
            tls_handshake_failures: self.tls_failures.total(),
            store_left_out: self
                .database
                .as_ref()
                .map_or(0, crate::capture::Database::left_out),
            record_left_out: match (&self.recorder, &self.database) {
                (Some(recorder), _) => recorder.left_out(),
                (None, Some(database)) if database.record().is_some() => database.left_out(),
                _ => 0,
            },
            ..self.store.stats()
        }
    }

    /// The shutdown signal.
    pub(crate) fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Adds a subscriber that receives every exchange published from now on. A
    /// lossless one makes answers wait for room in its queue; another misses
    /// exchanges while its queue is full.
    pub(crate) fn subscribe(&self, capacity: usize, lossless: bool) -> Subscription {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Subscriber {
                queue,
                room: Arc::new(Semaphore::new(MAX_QUEUED_BYTES)),
                lossless,
            });
        Subscription(receiver)
    }

    /// Waits for room in every lossless subscriber's queue for an exchange of about
    /// `bytes` (see [`Reserved`]).
    pub(crate) async fn reserve(&self, bytes: usize) -> Reserved {
        let queues: Vec<(mpsc::Sender<Queued>, Arc<Semaphore>)> = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|subscriber| subscriber.lossless)
            .map(|subscriber| (subscriber.queue.clone(), Arc::clone(&subscriber.room)))
            .collect();
        let mut reserved = Reserved(Vec::with_capacity(queues.len()));
        for (queue, room) in queues {
            let Ok(permit) = queue.clone().reserve_owned().await else {
                continue;
            };
            let wanted = room_for(bytes);
            let room = match Arc::clone(&room).try_acquire_many_owned(wanted) {
                Ok(room) => Some(room),
                Err(_) => room.acquire_many_owned(wanted).await.ok(),
            };
            reserved.0.push((queue, permit, room));
        }
        reserved
    }

    /// The store shared with other instances, if this one is.
    pub(crate) fn team(&self) -> Option<&crate::capture::Team> {
        self.database
            .as_ref()
            .and_then(crate::capture::Database::team)
    }

    /// Ends every subscription once what is queued has been read.
    pub(crate) fn close_subscriptions(&self) {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Writes an exchange that was not written while answering (it acknowledged
    /// nothing) to the record or the store, without waiting; gives back its line
    /// when that is also the JSON line, so that it is rendered once.
    fn keep_detached(
        &self,
        exchange: &Exchange,
        given: Option<(JsonLine, bool)>,
        change: StateChange,
    ) -> Option<JsonLine> {
        if self.recorder.is_none() && self.database.is_none() {
            return given.and_then(|(line, same)| same.then_some(line));
        }
        let (line, same) = given.unwrap_or_else(|| record_line_and_sameness(exchange));
        // Both only with a shared store: an embedded one feeds the record itself.
        if let Some(recorder) = &self.recorder {
            recorder.write_detached(line.clone());
        }
        if let Some(database) = &self.database {
            database.write_detached(crate::capture::ToStore {
                id: exchange.id,
                received_at: exchange.received_at,
                line: line.clone(),
                change,
            });
        }
        same.then_some(line)
    }

    /// Hands a finished exchange to everyone who wants it: the record file (unless
    /// it was already written there, as `line`), the history and its counts, the
    /// subscribers. A subscriber that is full misses it: an answer never waits.
    /// `line` is the record line already rendered, if it still describes the
    /// exchange, and whether it is also the JSON line; `change` what the exchange
    /// changed in the decision state, for the store.
    pub(crate) fn publish(
        &self,
        exchange: Exchange,
        recorded: bool,
        line: Option<(JsonLine, bool)>,
        (reserved, change): (Reserved, StateChange),
    ) {
        let line = if recorded {
            line.and_then(|(line, same)| same.then_some(line))
        } else {
            self.keep_detached(&exchange, line, change)
        };
        let exchange = Arc::new(exchange);
        self.store.push(Arc::clone(&exchange));
        let subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut reserved = reserved.0;
        let mut missed = 0;
        // Measured only for a subscriber that took no room beforehand.
        let mut bytes = None;
        for subscriber in subscribers.iter() {
            let published = (Arc::clone(&exchange), line.clone());
            let permit = reserved
                .iter()
                .position(|(queue, _, _)| queue.same_channel(&subscriber.queue))
                .map(|index| reserved.swap_remove(index));
            match permit {
                Some((_, permit, room)) => {
                    permit.send((published, room));
                }
                None => {
                    let bytes = *bytes.get_or_insert_with(|| {
                        usize::try_from(exchange.retained_size()).unwrap_or(usize::MAX)
                    });
                    let room = Arc::clone(&subscriber.room).try_acquire_many_owned(room_for(bytes));
                    let sent = match room {
                        Ok(room) => subscriber.queue.try_send((published, Some(room))),
                        Err(_) => Err(mpsc::error::TrySendError::Full((published, None))),
                    };
                    if let Err(mpsc::error::TrySendError::Full(_)) = sent {
                        missed += 1;
                    }
                }
            }
        }
        drop(subscribers);
        if missed > 0 {
            self.count_missed(missed);
        }
    }

    /// Counts exchanges a subscriber could not take, and says so now and then.
    fn count_missed(&self, missed: u64) {
        self.missed.add(missed, |unreported| {
            tracing::warn!(
                "stdout fell behind, {unreported} exchanges not printed (they are in the history and the record)"
            );
        });
    }

    /// Counts a failed TLS handshake from `peer`, and says so now and then, with
    /// what usually causes it.
    pub(crate) fn count_tls_failure(&self, peer: std::net::SocketAddr, why: &str) {
        self.tls_failures.add(1, |unreported| {
            let hint = tls_failure_hint(why);
            let more = match unreported {
                0 | 1 => String::new(),
                count => format!(" ({count} since the last such line)"),
            };
            // `why` is rustls's own description (an alert's name), not network text.
            tracing::warn!("TLS handshake from {peer} failed: {why}{hint}{more}");
        });
    }
}

/// What usually makes a TLS handshake fail this way, in a user's words.
fn tls_failure_hint(why: &str) -> &'static str {
    if ["UnknownCA", "BadCertificate", "CertificateUnknown"]
        .iter()
        .any(|alert| why.contains(alert))
    {
        " (the client does not trust this certificate: give it the CA, e.g. curl --cacert cert.pem)"
    } else if why.contains("corrupt message") || why.contains("InvalidContentType") {
        " (not TLS: plain http:// to an https listener?)"
    } else {
        ""
    }
}

/// The exchanges a receiver publishes, from [`Handle::subscribe`](crate::Handle::subscribe)
/// on, in the order they finished. It ends when the receiver has stopped and every
/// exchange was read. It holds at most the capacity it was made with: an answer
/// never waits for a subscriber, so one that falls that far behind misses exchanges
/// (the history and the record still have them).
#[derive(Debug)]
pub struct Subscription(mpsc::Receiver<Queued>);

impl Subscription {
    /// The next exchange, or `None` once the receiver has stopped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink = hookscope::Server::start().await?;
    /// let mut exchanges = sink.subscribe(100);
    /// reqwest::Client::new().post(sink.url()).body("{}").send().await?;
    /// let exchange = exchanges.next().await.expect("published");
    /// assert_eq!(exchange.reply.outcome.status(), Some(200));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next(&mut self) -> Option<Arc<Exchange>> {
        self.0.recv().await.map(|((exchange, _), _)| exchange)
    }

    /// Like [`next`](Subscription::next), from a thread outside the runtime.
    pub fn blocking_next(&mut self) -> Option<Arc<Exchange>> {
        self.0.blocking_recv().map(|((exchange, _), _)| exchange)
    }

    /// The next exchange as published, from a thread outside the runtime.
    pub(crate) fn blocking_next_published(&mut self) -> Option<Published> {
        self.0.blocking_recv().map(|(published, _)| published)
    }

    /// The next exchange as published, if one is waiting.
    pub(crate) fn try_next_published(&mut self) -> Option<Published> {
        self.0.try_recv().ok().map(|(published, _)| published)
    }
}

/// The room an exchange of `bytes` takes in a queue (one larger than the whole
/// queue takes all of it).
fn room_for(bytes: usize) -> u32 {
    u32::try_from(bytes.clamp(1, MAX_QUEUED_BYTES)).unwrap_or(u32::MAX)
}

/// The JSON line of a published exchange: the one recording rendered, or a new one.
pub(crate) fn line_of(published: &Published) -> JsonLine {
    match published {
        (_, Some(line)) => line.clone(),
        (exchange, None) => json_line(exchange),
    }
}

/// Turns true once the receiver begins to shut down; cheap to clone and wait on.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal, and the sender that fires it.
    pub(crate) fn new() -> (watch::Sender<bool>, Shutdown) {
        let (sender, receiver) = watch::channel(false);
        (sender, Shutdown(receiver))
    }

    /// Resolves once shutdown has begun.
    pub(crate) async fn begun(&self) {
        let mut receiver = self.0.clone();
        let _ = receiver.wait_for(|&down| down).await;
    }
}
