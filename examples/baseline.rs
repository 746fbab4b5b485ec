//! The benchmark's ceiling: a bare hyper 1 server that reads the whole body and
//! answers 200 `success`, with the same runtime and connection builder as hookscope.
//!
//! `cargo run --release --example baseline -- 0` prints `listening on http://127.0.0.1:PORT`.
//!
//! `--mode typed|print|record [--record FILE]` adds the work hookscope cannot avoid, so
//! that a ratio to it is hookscope's own cost: a borrowed deserialisation of the alert,
//! then one JSON line per request on stdout (one write), then the same line appended to
//! a record file before the answer.
//!
//! With `--proxy URL` it is the ceiling of forwarding in Rust instead: it reads the whole
//! body and sends it on to URL with hyper-util's pooled client (the one hookscope uses),
//! passing the answer back; no validation, capture or history.

use std::borrow::Cow;
use std::convert::Infallible;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The allocator hookscope's binary uses, so that the ratios compare the work done.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

/// The whole body, or nothing if the peer broke off.
async fn whole(body: Incoming) -> Bytes {
    body.collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

async fn forward(
    client: Client,
    upstream: String,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (head, body) = request.into_parts();
    let body = whole(body).await;
    let target = format!(
        "{upstream}{}",
        head.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut outgoing = Request::new(Full::new(body));
    *outgoing.method_mut() = head.method;
    *outgoing.headers_mut() = head.headers;
    outgoing.headers_mut().remove(hyper::header::HOST);
    *outgoing.uri_mut() = target.parse().unwrap_or_default();
    let answer = match client.request(outgoing).await {
        Ok(answer) => answer,
        Err(_) => {
            let mut failed = Response::new(Full::new(Bytes::from_static(b"bad gateway")));
            *failed.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            return Ok(failed);
        }
    };
    let (head, body) = answer.into_parts();
    let body = whole(body).await;
    Ok(Response::from_parts(head, Full::new(body)))
}

/// What the same-work ceilings do on top of reading the body (issue 22's modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Read the body, answer `success`.
    Bare,
    /// And deserialise the Panther alert, borrowed (the least a schema check costs).
    Typed,
    /// And print one JSON line per request to stdout with one write(2).
    Print,
    /// And append the same line to a record file before answering (one write(2), no fsync).
    Record,
}

/// The Panther alert, borrowed: strings as `Cow<str>`, the context as raw JSON.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Alert<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, rename = "createdAt")]
    created_at: Cow<'a, str>,
    #[serde(borrow)]
    severity: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    link: Cow<'a, str>,
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "alertId")]
    alert_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    runbook: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tags: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    version: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "alertContext", default)]
    alert_context: Option<&'a serde_json::value::RawValue>,
}

#[derive(Clone)]
struct SameWork {
    mode: Mode,
    sequence: Arc<AtomicU64>,
    record: Option<Arc<Mutex<std::fs::File>>>,
}

async fn same_work(
    work: SameWork,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (head, body) = request.into_parts();
    let body = whole(body).await;
    if work.mode != Mode::Bare {
        let alert = serde_json::from_slice::<Alert<'_>>(&body).ok();
        if work.mode != Mode::Typed {
            let alert_id = alert
                .as_ref()
                .and_then(|alert| alert.alert_id.as_deref())
                .unwrap_or("");
            let mut line = Vec::with_capacity(body.len() + 256);
            let _ = write!(
                line,
                "{{\"seq\":{},\"time\":\"{}\",\"method\":\"{}\",\"path\":{:?},\"size\":{},\"valid\":{},\"alertId\":{:?},\"status\":200,\"body\":",
                work.sequence.fetch_add(1, Ordering::Relaxed),
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                head.method,
                head.uri.path(),
                body.len(),
                alert.is_some(),
                alert_id,
            );
            line.extend_from_slice(&body);
            line.extend_from_slice(b"}\n");
            if let Some(record) = &work.record {
                let _ = record.lock().map(|mut file| file.write_all(&line));
            }
            let _ = std::io::stdout().lock().write_all(&line);
        }
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"success"))))
}

/// Serves connections with hookscope's runtime and connection builder.
async fn serve<S>(port: u16, service: impl Fn() -> S) -> std::io::Result<()>
where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    // hookscope's defaults for HTTP/1: a 10 s head timeout (a timer per request)
    // and a 64 KiB read buffer (which also bounds the pieces a body arrives in).
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(10))
        .max_buf_size(64 * 1024);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let connection = http
            .serve_connection(TokioIo::new(stream), service())
            .into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|at| args.get(at + 1).cloned())
    };
    if let Some(upstream) = value("--proxy") {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client =
            hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
        return serve(port, || {
            let (client, upstream) = (client.clone(), upstream.clone());
            hyper::service::service_fn(move |request| {
                forward(client.clone(), upstream.clone(), request)
            })
        })
        .await;
    }
    let mode = match value("--mode").as_deref() {
        Some("typed") => Mode::Typed,
        Some("print") => Mode::Print,
        Some("record") => Mode::Record,
        _ => Mode::Bare,
    };
    let record = match (mode, value("--record")) {
        (Mode::Record, Some(path)) => Some(Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ))),
        _ => None,
    };
    let work = SameWork {
        mode,
        sequence: Arc::new(AtomicU64::new(1)),
        record,
    };
    serve(port, || {
        let work = work.clone();
        hyper::service::service_fn(move |request| same_work(work.clone(), request))
    })
    .await
}
