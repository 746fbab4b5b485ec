//! Enforcing the [`Limits`](super::Limits) hyper does not: the idle watchdog of a
//! connection (no request in flight and no bytes moving).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
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

/// What a connection's watchdog reads: when bytes last moved, and how many
/// requests are being answered.
#[derive(Debug)]
pub(crate) struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// A request head has arrived on this connection.
    served: std::sync::atomic::AtomicBool,
    /// Told to close, to make room for a new connection (see [`Headless`]).
    evicted: tokio::sync::Notify,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            served: std::sync::atomic::AtomicBool::new(false),
            evicted: tokio::sync::Notify::new(),
        })
    }

    fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
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

    /// How long the connection has been idle (zero while a request is in flight).
    pub(crate) fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
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

/// Resolves once the connection has been idle for `timeout`.
pub(crate) async fn idle(activity: &Activity, timeout: Duration) {
    loop {
        let idle = activity.idle_for();
        if idle >= timeout {
            return;
        }
        tokio::time::sleep(timeout - idle).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_requests_keep_a_connection_busy() {
        let activity = Activity::new();
        std::thread::sleep(Duration::from_millis(30));
        assert!(activity.idle_for() >= Duration::from_millis(30));
        let request = activity.request();
        assert_eq!(activity.idle_for(), Duration::ZERO);
        drop(request);
        assert!(activity.idle_for() < Duration::from_millis(20));
    }
}
