//! The in-memory history: the last N exchanges, the counts over all of them (the
//! one [`Stats`] that `/api/stats`, the handle and the shutdown summary all read),
//! and a broadcast of each new exchange's id for live subscribers (SSE).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use super::{DeliveryCounts, Exchange, bump};

/// Default number of exchanges kept.
pub const DEFAULT_KEEP: usize = 1000;

/// Default bound on the bytes the kept exchanges hold: without it, 1,000 bodies of
/// the default 1 MiB `--max-body` would be a gigabyte.
pub const DEFAULT_KEEP_BYTES: u64 = 64 * 1024 * 1024;

/// Distinct paths counted one by one in the stats; the rest go under `(other)`,
/// so random paths from a scanner cannot grow the stats without bound.
const MAX_PATHS: usize = 1000;

/// How far a live subscriber may lag, in exchange ids, before it misses exchanges.
const LIVE_BACKLOG: usize = 4096;

/// The history's `wait_for` (and [`Handle::wait_for`](crate::Handle::wait_for)) gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("waited {timeout:?} for {wanted} requests, {arrived} arrived")]
pub struct WaitTimeout {
    /// How many were waited for.
    pub wanted: u64,
    /// How many had arrived.
    pub arrived: u64,
    /// How long it waited.
    pub timeout: std::time::Duration,
}

/// Counts over every exchange since start (or since the history was cleared).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stats {
    /// Exchanges seen.
    pub requests: u64,
    /// By outcome label: the status code, or `dropped`, `reset`, `hung`, `client-gone`.
    pub by_status: BTreeMap<String, u64>,
    /// By verdict: `valid`, `invalid`, or `none` (not a POST, or body not read).
    pub by_verdict: BTreeMap<String, u64>,
    /// By request path.
    pub by_path: BTreeMap<String, u64>,
    /// Exchanges whose body identified an alert (`alertId` or `id`).
    pub alert_attempts: u64,
    /// Of those, retries (attempt 2 or later).
    pub retries: u64,
    /// Alert deliveries, retries and acknowledgements.
    pub deliveries: DeliveryCounts,
    /// Exchanges pushed out of the history by newer ones.
    pub dropped_from_store: u64,
    /// Exchanges kept now.
    pub kept: usize,
    /// Bytes they hold (bodies, headers, answers), as bounded by `--keep-bytes`.
    pub kept_bytes: u64,
    /// Why recording stopped, if it did.
    pub record_failure: Option<String>,
    /// By signature check (`--verify`): `valid`, `missing`, `malformed`, `wrong`,
    /// `outside_tolerance`.
    #[serde(default)]
    pub by_signature: BTreeMap<String, u64>,
    /// Forwarded requests (`--forward`): the upstream's answers and failures.
    #[serde(default)]
    pub upstream: UpstreamCounts,
    /// Exchanges a subscriber that does not hold answers back (`--stdout-full drop`)
    /// could not take because its queue was full.
    #[serde(default)]
    pub not_delivered_to_subscribers: u64,
    /// Lines of unacknowledged requests left out of `--record` because its writer was
    /// behind (acknowledged ones are never left out: they wait, or get 503).
    #[serde(default)]
    pub record_left_out: u64,
    /// TLS handshakes that failed (no exchange is captured for them).
    #[serde(default)]
    pub tls_handshake_failures: u64,
    /// Exchanges that acknowledged nothing, left out of `--store` while its writer was
    /// behind (acknowledged ones are never left out: they wait, or get 503).
    #[serde(default)]
    pub store_left_out: u64,
}

/// Counts over the forwarded legs (`--forward`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UpstreamCounts {
    /// Requests sent on to the upstream.
    pub forwarded: u64,
    /// By the upstream's status, or `error` / `timeout` when it gave none.
    pub by_status: BTreeMap<String, u64>,
    /// Forwards that failed (could not connect, broken or late answers).
    pub errors: u64,
}

impl Stats {
    /// POSTs whose body is a valid alert.
    pub fn valid(&self) -> u64 {
        self.by_verdict.get("valid").copied().unwrap_or(0)
    }

    /// POSTs whose body is not a valid alert.
    pub fn invalid(&self) -> u64 {
        self.by_verdict.get("invalid").copied().unwrap_or(0)
    }
}

#[derive(Debug)]
struct Inner {
    keep: usize,
    keep_bytes: u64,
    kept_bytes: u64,
    /// Each kept exchange with the size it was counted at, so that pushing it
    /// out subtracts exactly that without measuring it again.
    exchanges: VecDeque<(Arc<Exchange>, u64)>,
    /// The kept exchanges by id. Ids are given on arrival but exchanges are kept
    /// as they finish, so the order of `exchanges` is not the order of ids (a
    /// request that waited for a delay, or hung, finishes long after later ones).
    by_id: HashMap<u64, Arc<Exchange>, foldhash::fast::FixedState>,
    stats: Stats,
}

/// The bounded history of exchanges.
#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
    /// Ids, not exchanges: a subscriber that lags must not keep alive what the
    /// history has let go (with big bodies, that would be gigabytes).
    live: broadcast::Sender<u64>,
    /// Exchanges pushed since start (or the last clear), for waiting without polling.
    arrived: watch::Sender<u64>,
    /// How many times the history was cleared: what was derived from it (attempt
    /// numbering) is forgotten with it.
    clears: std::sync::atomic::AtomicU64,
}

impl Store {
    /// A store keeping the last `keep` exchanges, within [`DEFAULT_KEEP_BYTES`].
    #[cfg(test)]
    pub fn new(keep: usize) -> Store {
        Store::bounded(keep, DEFAULT_KEEP_BYTES)
    }

    /// A store keeping the last `keep` exchanges, and fewer when they would hold
    /// more than `keep_bytes` (the newest one is always kept).
    pub fn bounded(keep: usize, keep_bytes: u64) -> Store {
        Store {
            inner: Mutex::new(Inner {
                keep,
                keep_bytes,
                kept_bytes: 0,
                exchanges: VecDeque::with_capacity(keep.min(DEFAULT_KEEP)),
                by_id: HashMap::with_capacity_and_hasher(
                    keep.min(DEFAULT_KEEP),
                    foldhash::fast::FixedState::default(),
                ),
                stats: Stats::default(),
            }),
            live: broadcast::channel(LIVE_BACKLOG).0,
            arrived: watch::channel(0).0,
            clears: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an exchange, dropping the oldest beyond the bound, and tells live subscribers.
    pub fn push(&self, exchange: Arc<Exchange>) {
        let pushed_out = {
            let mut inner = self.inner();
            count(&mut inner.stats, &exchange);
            if inner.keep == 0 {
                inner.stats.dropped_from_store += 1;
                None
            } else {
                let size = exchange.retained_size();
                inner.kept_bytes += size;
                inner.exchanges.push_back((Arc::clone(&exchange), size));
                inner.by_id.insert(exchange.id, Arc::clone(&exchange));
                let mut pushed_out = None;
                while inner.exchanges.len() > inner.keep
                    || (inner.kept_bytes > inner.keep_bytes && inner.exchanges.len() > 1)
                {
                    let Some((oldest, size)) = inner.exchanges.pop_front() else {
                        break;
                    };
                    inner.kept_bytes -= size;
                    inner.by_id.remove(&oldest.id);
                    inner.stats.dropped_from_store += 1;
                    // More than one goes only when a big body arrives; the rest are freed here.
                    pushed_out = Some(oldest);
                }
                pushed_out
            }
        };
        // Freed outside the lock: it is cold in the cache, and readers are waiting.
        drop(pushed_out);
        // Waking nobody costs a notify per request: waiters are rare (tests, the
        // handle's `wait_for`), and one that subscribes reads the count anyway.
        self.arrived.send_if_modified(|count| {
            *count += 1;
            self.arrived.receiver_count() > 0
        });
        let _ = self.live.send(exchange.id);
    }

    /// Every kept exchange, oldest first.
    pub fn all(&self) -> Vec<Arc<Exchange>> {
        let inner = self.inner();
        inner
            .exchanges
            .iter()
            .map(|(exchange, _)| Arc::clone(exchange))
            .collect()
    }

    /// Every kept exchange, newest first: the lock is held only to copy the pointers.
    pub fn newest_first(&self) -> Vec<Arc<Exchange>> {
        let inner = self.inner();
        inner
            .exchanges
            .iter()
            .rev()
            .map(|(exchange, _)| Arc::clone(exchange))
            .collect()
    }

    /// The kept exchange with this id.
    pub fn get(&self, id: u64) -> Option<Arc<Exchange>> {
        self.inner().by_id.get(&id).cloned()
    }

    /// Number of exchanges kept now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner().exchanges.len()
    }

    /// Whether nothing is kept.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the history and resets the counts.
    pub fn clear(&self) {
        let mut inner = self.inner();
        inner.exchanges.clear();
        inner.by_id.clear();
        inner.kept_bytes = 0;
        inner.stats = Stats::default();
        self.arrived.send_replace(0);
        self.clears
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many times [`Store::clear`] was called.
    pub fn clears(&self) -> u64 {
        self.clears.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until at least `count` exchanges have arrived (since start or the
    /// last clear), woken by each arrival rather than by polling.
    pub async fn wait_for(
        &self,
        count: u64,
        timeout: std::time::Duration,
    ) -> Result<(), WaitTimeout> {
        let mut arrived = self.arrived.subscribe();
        let reached = tokio::time::timeout(timeout, async {
            arrived.wait_for(|&n| n >= count).await.is_ok()
        })
        .await;
        match reached {
            Ok(true) => Ok(()),
            _ => Err(WaitTimeout {
                wanted: count,
                arrived: *self.arrived.borrow(),
                timeout,
            }),
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> Stats {
        let inner = self.inner();
        Stats {
            kept: inner.exchanges.len(),
            kept_bytes: inner.kept_bytes,
            ..inner.stats.clone()
        }
    }

    /// Receives the id of every exchange pushed from now on; [`Store::get`] finds it
    /// while the history keeps it.
    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.live.subscribe()
    }
}

fn count(stats: &mut Stats, exchange: &Exchange) {
    stats.requests += 1;
    exchange
        .reply
        .outcome
        .with_label(|label| bump(&mut stats.by_status, label));
    bump(&mut stats.by_verdict, exchange.verdict_label());
    if let Some(signature) = &exchange.signature {
        bump(&mut stats.by_signature, signature.check.label());
    }
    if let Some(leg) = &exchange.upstream {
        stats.upstream.forwarded += 1;
        bump(&mut stats.upstream.by_status, &leg.label());
        if leg.error.is_some() {
            stats.upstream.errors += 1;
        }
    }
    let path = if stats.by_path.len() < MAX_PATHS || stats.by_path.contains_key(&exchange.path) {
        &exchange.path
    } else {
        "(other)"
    };
    bump(&mut stats.by_path, path);
    if let Some(attempt) = exchange.attempt.as_ref().filter(|a| a.key.is_alert()) {
        stats.alert_attempts += 1;
        if attempt.number > 1 {
            stats.retries += 1;
        }
        stats.deliveries.add(attempt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(id: u64, path: &str) -> Arc<Exchange> {
        Arc::new(Exchange::posted(id, path, 200, b""))
    }

    #[test]
    fn a_lagging_subscriber_keeps_nothing_alive_that_the_history_dropped() {
        let store = Store::new(2);
        let mut live = store.subscribe();
        let first = exchange(1, "/");
        store.push(Arc::clone(&first));
        for id in 2..=5 {
            store.push(exchange(id, "/"));
        }
        // Only this test holds the first exchange now: the subscriber has not read
        // anything yet, but it holds ids, not exchanges.
        assert_eq!(Arc::strong_count(&first), 1);
        let mut found = Vec::new();
        while let Ok(id) = live.try_recv() {
            found.push((id, store.get(id).is_some()));
        }
        assert_eq!(
            found,
            [(1, false), (2, false), (3, false), (4, true), (5, true)]
        );
    }

    #[test]
    fn exchanges_that_finish_out_of_order_are_found_by_id() {
        let store = Store::new(10);
        // A request that waited (a delay, a hang) finishes after later ones.
        for id in [2, 3, 1, 5, 4, 6] {
            store.push(exchange(id, "/"));
        }
        for id in 1..=6 {
            assert_eq!(store.get(id).map(|found| found.id), Some(id));
        }
        let store = Store::new(2);
        for id in [3, 1, 2] {
            store.push(exchange(id, "/"));
        }
        assert!(
            store.get(3).is_none(),
            "pushed out first, though not the lowest id"
        );
        assert_eq!(store.get(1).map(|found| found.id), Some(1));
    }

    #[test]
    fn keeps_the_last_n_and_counts_the_rest_as_dropped() {
        let store = Store::new(10);
        for id in 1..=50 {
            store.push(exchange(id, "/"));
        }
        let stats = store.stats();
        assert_eq!(
            (stats.kept, stats.dropped_from_store, stats.requests),
            (10, 40, 50)
        );
        assert_eq!(store.all().first().unwrap().id, 41);
        assert_eq!(store.get(45).unwrap().id, 45);
        assert!(store.get(40).is_none());
        let newest: Vec<u64> = store.newest_first().iter().take(3).map(|e| e.id).collect();
        assert_eq!(newest, [50, 49, 48]);
    }

    #[test]
    fn the_byte_budget_pushes_out_the_oldest_but_never_the_newest() {
        let with_body = |id, size| {
            let mut exchange = Arc::try_unwrap(exchange(id, "/")).unwrap();
            exchange.body = bytes::Bytes::from(vec![b'x'; size]);
            Arc::new(exchange)
        };
        let one = with_body(0, 10_000).retained_size();
        let store = Store::bounded(100, 3 * one);
        for id in 1..=5 {
            store.push(with_body(id, 10_000));
        }
        let stats = store.stats();
        assert_eq!((stats.kept, stats.kept_bytes), (3, 3 * one));
        assert_eq!(stats.dropped_from_store, 2);
        assert_eq!(store.all().first().unwrap().id, 3);
        // A body bigger than the whole budget is still kept, alone.
        store.push(with_body(6, 100_000));
        let ids: Vec<u64> = store.all().iter().map(|e| e.id).collect();
        assert_eq!(ids, [6]);
        assert_eq!(store.stats().dropped_from_store, 5);
        store.push(with_body(7, 10));
        assert_eq!(store.len(), 1, "the big one still fills the budget alone");
    }

    #[test]
    fn paths_beyond_the_cap_are_pooled() {
        let store = Store::new(1);
        for id in 0..(MAX_PATHS as u64 + 5) {
            store.push(exchange(id, &format!("/{id}")));
        }
        let stats = store.stats();
        assert_eq!(stats.by_path.len(), MAX_PATHS + 1);
        assert_eq!(stats.by_path["(other)"], 5);
    }

    #[test]
    fn clear_forgets_everything() {
        let store = Store::new(5);
        store.push(exchange(1, "/"));
        store.clear();
        assert!(store.is_empty());
        assert_eq!(store.stats(), Stats::default());
    }
}
