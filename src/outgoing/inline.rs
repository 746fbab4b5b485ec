//! A client for one plain-HTTP origin whose connections are driven by the request
//! using them: `--forward`'s client when the upstream is `http://`.
//!
//! hyper-util's pooled client runs every connection on a task of its own: each
//! request is handed to that task and its answer handed back, two wake-ups across
//! tasks per exchange, behind a pool keyed by origin. A forward goes to one origin,
//! one request at a time per HTTP/1.1 connection, so here the request's own task
//! polls the connection (hyper's `client::conn::http1`) while it writes the request
//! and reads the answer, and then puts it back on a stack of idle ones.
//!
//! Nobody polls an idle connection, so a close by the upstream (Node closes idle
//! keep-alive connections after 5 s) is seen when the connection is next taken (it
//! is polled once first) or by the pruning every few seconds; a request that a
//! reused connection could not start is sent again on a new connection.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Failure;

/// Most idle connections kept: more than a sender's usual concurrency, few enough
/// that sockets the upstream closed cannot pile up.
const MAX_IDLE: usize = 256;

/// How long an idle connection is kept (hyper-util's pool keeps one 50 s too, under
/// Panther's own 60 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// How often idle connections the upstream closed are let go of.
const PRUNE_EVERY: Duration = Duration::from_secs(5);

/// The client for one origin (see the module's documentation).
pub(crate) struct InlineClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for InlineClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "InlineClient({}:{})",
            self.shared.host, self.shared.port
        )
    }
}

struct Shared {
    host: String,
    port: u16,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    connection: Box<Driven>,
    since: Instant,
}

/// One connection: the sender and the future that does its reading and writing
/// (boxed where it is kept: it is large, and moves with every future holding it).
struct Driven {
    sender: SendRequest<Full<Bytes>>,
    connection: Connection<TokioIo<TcpStream>, Full<Bytes>>,
    /// The connection future has ended: closed by either side, or broken.
    ended: bool,
}

impl Driven {
    /// Lets the connection read and write what it can (the one place it is polled).
    fn poll_connection(&mut self, cx: &mut Context<'_>) {
        if !self.ended && Pin::new(&mut self.connection).poll(cx).is_ready() {
            self.ended = true;
        }
    }

    /// Whether an idle connection is still open, polled once without waiting.
    fn still_open(&mut self) -> bool {
        self.poll_connection(&mut Context::from_waker(Waker::noop()));
        !self.ended && !self.sender.is_closed()
    }
}

impl InlineClient {
    /// A client for `host:port` (a name, or an address with IPv6 brackets taken off);
    /// its pruning runs on the current runtime for as long as the client lives.
    pub(crate) fn new(host: &str, port: u16) -> InlineClient {
        let shared = Arc::new(Shared {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            idle: Mutex::new(Vec::new()),
        });
        tokio::spawn(prune(Arc::downgrade(&shared)));
        InlineClient { shared }
    }

    /// Sends `request` (its URI in origin form, its `Host` header set) and waits for
    /// the answer's head until `deadline`; the body is read through the same
    /// connection, which goes back to the idle ones when the body has ended.
    pub(crate) async fn send(
        &self,
        request: Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<Response<InlineBody>, Failure> {
        tokio::time::timeout_at(deadline, self.exchange(request))
            .await
            .unwrap_or(Err(Failure::TimedOut))
    }

    async fn exchange(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<InlineBody>, Failure> {
        loop {
            let (mut driven, reused) = match self.take_idle() {
                Some(driven) => (driven, true),
                // Boxed: connecting (a name lookup among it) is the rare path, and
                // inline its future would make every request's this much larger.
                None => (Box::pin(self.connect()).await?, false),
            };
            let ready = poll_fn(|cx| {
                driven.poll_connection(cx);
                driven.sender.poll_ready(cx)
            })
            .await;
            if let Err(error) = ready {
                if reused {
                    continue;
                }
                return Err(Failure::Exchange(error));
            }
            let mut answer = pin!(driven.sender.try_send_request(request));
            let answered = poll_fn(|cx| {
                driven.poll_connection(cx);
                answer.as_mut().poll(cx)
            })
            .await;
            match answered {
                Ok(response) => {
                    let lease = Lease {
                        driven,
                        pool: Arc::downgrade(&self.shared),
                    };
                    return Ok(response.map(|body| InlineBody {
                        body,
                        lease: Some(lease),
                    }));
                }
                Err(mut error) => match error.take_message() {
                    // Not written: the reused connection had closed in the meantime.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(Failure::Exchange(error.into_error())),
                },
            }
        }
    }

    /// The most recently used idle connection still open, if any.
    fn take_idle(&self) -> Option<Box<Driven>> {
        let mut idle = self
            .shared
            .idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        while let Some(Idle {
            mut connection,
            since,
        }) = idle.pop()
        {
            if since.elapsed() < IDLE_TIMEOUT && connection.still_open() {
                return Some(connection);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Box<Driven>, Failure> {
        let tcp = TcpStream::connect((self.shared.host.as_str(), self.shared.port))
            .await
            .map_err(Failure::Connect)?;
        let _ = tcp.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(Failure::Exchange)?;
        Ok(Box::new(Driven {
            sender,
            connection,
            ended: false,
        }))
    }
}

/// Lets go, every [`PRUNE_EVERY`], of idle connections that are too old or that
/// the upstream closed, until the client is dropped.
async fn prune(shared: Weak<Shared>) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut idle = shared
            .idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        idle.retain_mut(|idle| idle.since.elapsed() < IDLE_TIMEOUT && idle.connection.still_open());
    }
}

/// A connection in use by one answer's body, given back when the body has ended.
struct Lease {
    driven: Box<Driven>,
    pool: Weak<Shared>,
}

impl Lease {
    fn give_back(mut self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        if !self.driven.still_open() {
            return;
        }
        let mut idle = pool
            .idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                connection: self.driven,
                since: Instant::now(),
            });
        }
    }
}

/// An answer's body read through the connection it came on: polling it drives the
/// connection. Dropped before its end, it closes the connection (what is left of
/// the answer would be read as the next one's).
pub(crate) struct InlineBody {
    body: Incoming,
    lease: Option<Lease>,
}

impl std::fmt::Debug for InlineBody {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("InlineBody")
    }
}

impl Body for InlineBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(lease) = this.lease.as_mut() {
            lease.driven.poll_connection(cx);
        }
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.finished(),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.finished(),
            Poll::Ready(Some(Err(_))) => this.lease = None,
            Poll::Ready(Some(Ok(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl InlineBody {
    fn finished(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.give_back();
        }
    }
}
