//! The in-flight body budget (`--max-inflight-bytes`): what request bodies may hold
//! at once, charged as their bytes arrive and kept until the exchange is published.
//!
//! A charge never waits without a deadline, and nothing can park the budget: a body
//! that stops moving ends (see `service::read_body`), and when the budget or the
//! connection slots run short, the body arriving most slowly is told to give way.
//! Behind a tunnel every sender has the same address, so the choice is by rate, not
//! by peer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How long a body waits for room before it is answered 503: long enough to ride
/// out a burst of large bodies (room comes back as answers go out, in milliseconds),
/// short enough that a sender hears back within its 2 s when every byte of the
/// budget belongs to answers that are still waiting, even on a loaded machine.
pub(crate) const WAIT_FOR_ROOM: Duration = Duration::from_millis(500);

/// A body being read for less than this is never told to give way: every body is
/// slow in its first moments.
const GRACE: Duration = Duration::from_millis(250);

/// How often a body waiting for room asks again for the slowest to give way.
const ASK_AGAIN_EVERY: Duration = Duration::from_millis(50);

/// The budget, and the bodies being read that may be told to give way.
pub(crate) struct BodyBudget {
    permits: Arc<Semaphore>,
    readers: Mutex<HashMap<u64, Arc<Reader>, foldhash::fast::FixedState>>,
    epoch: Instant,
}

/// A body being read, as the budget sees it.
pub(crate) struct Reader {
    /// Milliseconds after the budget's epoch when reading began.
    began: u64,
    received: AtomicU64,
    holds_budget: AtomicBool,
    told: AtomicBool,
    give_way: Notify,
}

impl Reader {
    /// Resolves once this body is told to give way.
    pub(crate) async fn told_to_give_way(&self) {
        self.give_way.notified().await;
    }

    /// Notes bytes read; every byte read was charged, so the body now holds budget.
    pub(crate) fn received(&self, bytes: u64) {
        self.received.fetch_add(bytes, Ordering::Relaxed);
        self.holds_budget.store(true, Ordering::Relaxed);
    }
}

/// A body's reader, known to the budget until it is dropped.
pub(crate) struct Registration<'a> {
    budget: &'a BodyBudget,
    id: u64,
    pub(crate) reader: Arc<Reader>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.budget.readers().remove(&self.id);
    }
}

/// Bytes of the budget held by one request; given back when dropped.
#[derive(Default)]
pub(crate) struct Charge {
    permit: Option<OwnedSemaphorePermit>,
}

impl Charge {
    pub(crate) fn bytes(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    fn add(&mut self, permit: OwnedSemaphorePermit) {
        match self.permit.as_mut() {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
    }
}

/// There was no room for a body's bytes within [`WAIT_FOR_ROOM`].
#[derive(Debug)]
pub(crate) struct NoRoom;

impl BodyBudget {
    pub(crate) fn new(bytes: u64) -> BodyBudget {
        let permits = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        BodyBudget {
            permits: Arc::new(Semaphore::new(permits)),
            readers: Mutex::new(HashMap::default()),
            epoch: Instant::now(),
        }
    }

    fn readers(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Reader>, foldhash::fast::FixedState>> {
        self.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Makes a body that has to wait (for bytes or for room) one that may be told to
    /// give way. Bodies that arrive with their head never get here.
    pub(crate) fn register(&self, id: u64, received: u64, began: Instant) -> Registration<'_> {
        let began = u64::try_from(began.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        let reader = Arc::new(Reader {
            began,
            received: AtomicU64::new(received),
            holds_budget: AtomicBool::new(received > 0),
            told: AtomicBool::new(false),
            give_way: Notify::new(),
        });
        self.readers().insert(id, Arc::clone(&reader));
        Registration {
            budget: self,
            id,
            reader,
        }
    }

    /// Charges `bytes` more to `charge` if there is room now.
    pub(crate) fn try_charge(&self, charge: &mut Charge, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let Ok(bytes) = u32::try_from(bytes) else {
            return false;
        };
        match Arc::clone(&self.permits).try_acquire_many_owned(bytes) {
            Ok(permit) => {
                charge.add(permit);
                true
            }
            Err(_) => false,
        }
    }

    /// Charges `bytes` more, telling the slowest other body to give way when there
    /// is no room, and waiting at most [`WAIT_FOR_ROOM`].
    pub(crate) async fn charge(
        &self,
        charge: &mut Charge,
        bytes: usize,
        reader: &Reader,
    ) -> Result<(), NoRoom> {
        reader.holds_budget.store(true, Ordering::Relaxed);
        if self.try_charge(charge, bytes) {
            return Ok(());
        }
        let wanted = u32::try_from(bytes).map_err(|_| NoRoom)?;
        let deadline = Instant::now() + WAIT_FOR_ROOM;
        let waiting = Arc::clone(&self.permits).acquire_many_owned(wanted);
        tokio::pin!(waiting);
        // Asks again while it waits: a body too young to be told at first may become
        // the slowest one old enough before the deadline.
        loop {
            self.tell_slowest_to_give_way(Some(reader), true);
            let next_ask = (Instant::now() + ASK_AGAIN_EVERY).min(deadline);
            match tokio::time::timeout_at(next_ask, &mut waiting).await {
                Ok(Ok(permit)) => {
                    charge.add(permit);
                    return Ok(());
                }
                Ok(Err(_)) => return Err(NoRoom),
                Err(_) if next_ask >= deadline => return Err(NoRoom),
                Err(_) => {}
            }
        }
    }

    /// Tells the body arriving most slowly (bytes per second since it began; at least
    /// [`GRACE`] old, not `except`, holding budget if `holding`) to give way.
    /// Returns whether there was one.
    pub(crate) fn tell_slowest_to_give_way(&self, except: Option<&Reader>, holding: bool) -> bool {
        let now = self.now_ms();
        let grace = u64::try_from(GRACE.as_millis()).unwrap_or(u64::MAX);
        let readers = self.readers();
        let slowest = readers
            .values()
            .filter(|reader| except.is_none_or(|except| !std::ptr::eq(&***reader, except)))
            .filter(|reader| !reader.told.load(Ordering::Relaxed))
            .filter(|reader| !holding || reader.holds_budget.load(Ordering::Relaxed))
            .filter(|reader| now.saturating_sub(reader.began) >= grace)
            .min_by(|a, b| {
                // a.received / a.age against b.received / b.age, without dividing.
                let rate = |reader: &Reader, other: &Reader| {
                    u128::from(reader.received.load(Ordering::Relaxed))
                        * u128::from(now.saturating_sub(other.began).max(1))
                };
                rate(a, b).cmp(&rate(b, a))
            });
        match slowest {
            Some(reader) => {
                reader.told.store(true, Ordering::Relaxed);
                reader.give_way.notify_one();
                true
            }
            None => false,
        }
    }

    /// Bytes charged now, over all requests.
    #[cfg(test)]
    fn charged(&self, total: usize) -> usize {
        total - self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_charge_is_given_back_when_dropped() {
        let budget = BodyBudget::new(100);
        let mut charge = Charge::default();
        assert!(budget.try_charge(&mut charge, 60));
        assert!(budget.try_charge(&mut charge, 40));
        assert!(!budget.try_charge(&mut charge, 1));
        assert_eq!(charge.bytes(), 100);
        drop(charge);
        assert_eq!(budget.charged(100), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_slowest_body_holding_budget_gives_way_and_a_waiting_one_gets_room() {
        let budget = BodyBudget::new(100);
        let began = Instant::now();
        let slow = budget.register(1, 0, began);
        let fast = budget.register(2, 0, began);
        let mut slow_charge = Charge::default();
        let mut fast_charge = Charge::default();
        budget
            .charge(&mut slow_charge, 10, &slow.reader)
            .await
            .unwrap();
        slow.reader.received(10);
        budget
            .charge(&mut fast_charge, 80, &fast.reader)
            .await
            .unwrap();
        fast.reader.received(80);
        tokio::time::advance(GRACE).await;

        let newcomer = budget.register(3, 0, Instant::now());
        let mut newcomer_charge = Charge::default();
        {
            let waiting = budget.charge(&mut newcomer_charge, 20, &newcomer.reader);
            tokio::pin!(waiting);
            // Nothing given way yet: the newcomer waits...
            assert!(futures_poll_once(waiting.as_mut()).await.is_none());
            // ...and the slow body was told; it gives back its share.
            tokio::time::timeout(Duration::from_millis(1), slow.reader.told_to_give_way())
                .await
                .expect("the slowest body is told");
            drop(slow_charge);
            waiting.await.unwrap();
        }
        assert_eq!(newcomer_charge.bytes(), 20);
        assert!(!fast.reader.told.load(Ordering::Relaxed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_charge_waits_no_longer_than_its_deadline() {
        let budget = BodyBudget::new(10);
        let holder = budget.register(1, 0, Instant::now());
        let mut held = Charge::default();
        budget.charge(&mut held, 10, &holder.reader).await.unwrap();
        let waiter = budget.register(2, 0, Instant::now());
        let mut charge = Charge::default();
        let started = tokio::time::Instant::now();
        assert!(budget.charge(&mut charge, 1, &waiter.reader).await.is_err());
        assert_eq!(started.elapsed(), WAIT_FOR_ROOM);
    }

    #[test]
    fn young_bodies_are_never_told_and_registrations_end_with_their_reader() {
        let budget = BodyBudget::new(10);
        let young = budget.register(1, 0, Instant::now());
        assert!(!budget.tell_slowest_to_give_way(None, false));
        drop(young);
        assert!(budget.readers().is_empty());
    }

    /// Polls a future once: `Some` if it finished.
    async fn futures_poll_once<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
        let mut future = future;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(output) => Some(output),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
