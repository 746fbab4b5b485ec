//! Enforcing the [`Limits`](super::Limits) hyper does not: the idle watchdog of a
//! connection (no request in flight and no bytes moving).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The connections that have not sent a whole request head yet, oldest first.
/// When every connection slot is taken and another client connects, the oldest
/// of them is closed to make room: 1,024 connections that never send a byte
/// would otherwise hold every slot until their head timeout, again and again,
/// and behind a tunnel every peer is 127.0.0.1, so limits per address cannot help.
#[derive(Default)]
pub(crate) struct Headless {
    waiting: std::collections::VecDeque<std::sync::Weak<Activity>>,
}

impl Headless {
    /// Remembers a new connection (forgetting, now and then, those that went
    /// away or sent a head, so that the list stays as short as the slots).
    pub(crate) fn add(&mut self, activity: &Arc<Activity>, slots: usize) {
        if self.waiting.len() >= slots.saturating_mul(2).max(16) {
            self.waiting.retain(|waiting| {
                waiting
                    .upgrade()
                    .is_some_and(|activity| !activity.served.load(Ordering::Relaxed))
            });
        }
        self.waiting.push_back(Arc::downgrade(activity));
    }

    /// Tells the oldest connection without a head to close; false if there is none.
    pub(crate) fn evict_oldest(&mut self) -> bool {
        while let Some(waiting) = self.waiting.pop_front() {
            if let Some(activity) = waiting.upgrade() {
                if !activity.served.load(Ordering::Relaxed) {
                    activity.evicted.notify_one();
                    return true;
                }
            }
        }
        false
    }
}

/// Smallest head size hyper accepts for its HTTP/1 read buffer.
pub const MIN_HEADER_SIZE: usize = 8 * 1024;

/// What a connection's watchdog reads: whether bytes moved since it last looked,
/// and how many requests are being answered. Moving bytes only sets a flag: a
/// clock read on every read and write was a measurable share of a small request.
#[derive(Debug)]
pub(crate) struct Activity {
    started: Instant,
    moved: AtomicBool,
    in_flight: AtomicUsize,
    /// A request head has arrived on this connection.
    served: AtomicBool,
    /// Told to close, to make room for a new connection (see [`Headless`]).
    evicted: tokio::sync::Notify,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            moved: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            evicted: tokio::sync::Notify::new(),
        })
    }

    fn touch(&self) {
        self.moved.store(true, Ordering::Relaxed);
    }

    /// Marks a request in flight until the guard is dropped.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Resolves once the connection is told to make room (see [`Headless`]).
    pub(crate) async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// Whether nothing happened since the last look: no request in flight, no
    /// bytes moved (the look itself starts the next period).
    fn quiet_since_last_look(&self) -> bool {
        let moved = self.moved.swap(false, Ordering::Relaxed);
        !moved && self.in_flight.load(Ordering::Relaxed) == 0
    }
}

/// A request being answered; keeps its connection from counting as idle.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// An I/O stream that notes when bytes move, for the idle watchdog.
pub(crate) struct Watched<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I> Watched<I> {
    pub(crate) fn new(inner: I, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Resolves when no request head has arrived `timeout` after the connection was
/// accepted: hyper's head timeout starts at the first byte, so a client that sends
/// nothing at all would otherwise keep its slot until the idle timeout.
pub(crate) async fn no_head_within(activity: &Activity, timeout: Duration) {
    tokio::time::sleep(timeout.saturating_sub(activity.started.elapsed())).await;
    if activity.served.load(Ordering::Relaxed) {
        std::future::pending::<()>().await;
    }
}

/// How many looks the idle watchdog takes per `--idle-timeout`: a connection
/// closes between one timeout and a quarter more after it went quiet.
const IDLE_LOOKS: u32 = 4;

/// Resolves once the connection has been idle for `timeout`, never sooner. It
/// looks now and then instead of reading a clock on every read and write.
pub(crate) async fn idle(activity: &Activity, timeout: Duration) {
    let every = (timeout / IDLE_LOOKS).max(Duration::from_millis(10));
    let mut quiet_since = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        if !activity.quiet_since_last_look() {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= timeout {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_bytes_or_a_request_in_flight_is_not_quiet() {
        let activity = Activity::new();
        assert!(activity.quiet_since_last_look());
        activity.touch();
        assert!(!activity.quiet_since_last_look());
        assert!(
            activity.quiet_since_last_look(),
            "each look starts a new period"
        );
        let request = activity.request();
        assert!(!activity.quiet_since_last_look());
        assert!(
            !activity.quiet_since_last_look(),
            "busy for as long as it is in flight"
        );
        drop(request);
        assert!(
            !activity.quiet_since_last_look(),
            "the answer just went out"
        );
        assert!(activity.quiet_since_last_look());
    }
}
