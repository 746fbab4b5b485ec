//! A developer's own receiver, for forwarding tests: a real hyper server on its
//! own thread that keeps every request it gets and answers as the test says.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

/// One request as the app received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Headers in arrival order, names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client's port: one per connection, so reused connections share it.
    pub peer_port: u16,
}

impl Seen {
    /// Every value of a header, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

/// How the app answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

type Answer = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

#[derive(Default)]
struct Log {
    seen: Mutex<Vec<Seen>>,
    arrived: Condvar,
}

/// The running app; dropping it stops it.
pub struct App {
    pub addr: SocketAddr,
    log: Arc<Log>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl App {
    /// An app on a free loopback port.
    pub fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> App {
        App::start_on(0, answer)
    }

    /// An app on this port.
    pub fn start_on(port: u16, answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> App {
        let answer: Answer = Arc::new(answer);
        let log = Arc::new(Log::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, bound) = std::sync::mpsc::channel();
        let shared = Arc::clone(&log);
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(port, answer, shared, ready, stopped));
        });
        let addr = bound
            .recv_timeout(Duration::from_secs(10))
            .expect("the app listens");
        App {
            addr,
            log,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.seen.lock().unwrap().clone()
    }

    /// Waits (woken by each arrival) until `count` requests have arrived.
    pub fn wait_for(&self, count: usize) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = self.log.seen.lock().unwrap();
        while seen.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the app got {} of {count} requests",
                seen.len()
            );
            seen = self.log.arrived.wait_timeout(seen, left).unwrap().0;
        }
        seen.clone()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    port: u16,
    answer: Answer,
    log: Arc<Log>,
    ready: std::sync::mpsc::Sender<SocketAddr>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the app's port is free");
    let _ = ready.send(listener.local_addr().unwrap());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
            _ = &mut stopped => return,
        };
        let (answer, log) = (Arc::clone(&answer), Arc::clone(&log));
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let (answer, log) = (Arc::clone(&answer), Arc::clone(&log));
                async move { Ok::<_, Infallible>(handle(request, peer.port(), &*answer, &log).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    peer_port: u16,
    answer: &(dyn Fn(&Seen) -> Reply + Send + Sync),
    log: &Log,
) -> Response<Full<Bytes>> {
    let (head, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: head.method.to_string(),
        target: head
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: head
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        peer_port,
    };
    let reply = answer(&seen);
    {
        let mut all = log.seen.lock().unwrap();
        all.push(seen);
        log.arrived.notify_all();
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .append(name, hyper::header::HeaderValue::from_str(&value).unwrap());
    }
    response
}
