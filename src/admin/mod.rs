//! The admin listener: the JSON API under `/api/` and the inspector page at `/`.
//!
//! It listens on its own address, never the webhook port, so a tunnel pointed at
//! the webhook port never exposes it.

mod config;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

pub use config::{ConfigPatch, ConfigView};

use crate::capture::record_line;
use crate::capture::Exchange;
use crate::send::{self, RecordedRequest};
use crate::shared::Shared;

const INDEX_HTML: &str = include_str!("ui/index.html");

/// Largest request body the API reads.
const MAX_API_BODY: usize = 1024 * 1024;

/// Comment line sent on an idle event stream so that proxies keep it open.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

/// How long a replay from the inspector waits for the target to answer.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

type Body = BoxBody<Bytes, Infallible>;

/// A refused API call: answered with this status and `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn into_response(self) -> Response<Body> {
        error(self.status, &self.message)
    }
}

/// Serves the admin API until the receiver shuts down.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let http = auto::Builder::new(TokioExecutor::new());
    // Built on the first replay: loading the system's root certificates takes
    // milliseconds of the runtime's only thread, which a receiver that never
    // replays should not spend at start.
    let replay_client = Arc::new(OnceLock::new());
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shared.shutdown().begun() => break,
        };
        let shared = Arc::clone(&shared);
        let client = Arc::clone(&replay_client);
        let service = hyper::service::service_fn(move |request| {
            let (shared, client) = (Arc::clone(&shared), Arc::clone(&client));
            async move { Ok::<_, Infallible>(route(&shared, &client, request).await) }
        });
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

async fn route(
    shared: &Arc<Shared>,
    client: &OnceLock<reqwest::Client>,
    request: Request<Incoming>,
) -> Response<Body> {
    if !host_is_local(&request) {
        // A page on another site that resolves its name to 127.0.0.1 (DNS rebinding)
        // must not reach the API.
        return error(
            StatusCode::FORBIDDEN,
            "the admin API answers only to localhost host names",
        );
    }
    let path = request.uri().path().to_owned();
    let query = parse_query(request.uri().query());
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = request.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, [""]) => html(INDEX_HTML),
        (&Method::GET, ["api", "requests"]) => {
            list(shared, &query).unwrap_or_else(ApiError::into_response)
        }
        (&Method::DELETE, ["api", "requests"]) => {
            shared.store.clear();
            json(StatusCode::OK, r#"{"cleared":true}"#.into())
        }
        (&Method::GET, ["api", "requests", id]) => match find(shared, id) {
            Ok(exchange) => json(StatusCode::OK, record_line(&exchange).to_vec()),
            Err(refused) => refused.into_response(),
        },
        (&Method::POST, ["api", "requests", id, "replay"]) => {
            let exchange = match find(shared, id) {
                Ok(exchange) => exchange,
                Err(refused) => return refused.into_response(),
            };
            match read_json::<ReplayBody>(request).await {
                Ok(body) => {
                    let client = client.get_or_init(|| send::client(REPLAY_TIMEOUT));
                    replay(client, &exchange, &body.to).await
                }
                Err(refused) => refused.into_response(),
            }
        }
        (&Method::GET, ["api", "stats"]) => stats(shared),
        (&Method::GET, ["api", "events"]) => events(shared),
        (&Method::GET, ["api", "config"]) => config_view(shared),
        (&Method::PUT, ["api", "config"]) => match read_json::<ConfigPatch>(request).await {
            Ok(patch) => match patch.apply(&shared.behaviour()) {
                Ok(behaviour) => {
                    shared.set_behaviour(behaviour);
                    config_view(shared)
                }
                Err(reason) => error(StatusCode::UNPROCESSABLE_ENTITY, &reason),
            },
            Err(refused) => refused.into_response(),
        },
        (_, ["api", "requests"] | ["api", "requests", _] | ["api", "requests", _, "replay"])
        | (_, ["api", "stats" | "events" | "config"])
        | (_, [""]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} is not allowed on {path}"),
        ),
        _ => error(StatusCode::NOT_FOUND, &format!("no such endpoint: {path}")),
    }
}

fn host_is_local(request: &Request<Incoming>) -> bool {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| request.uri().host())
        .unwrap_or("localhost");
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn find(shared: &Shared, id: &str) -> Result<Arc<Exchange>, ApiError> {
    let id: u64 = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("request id must be a number, got {id:?}"),
        )
    })?;
    shared.store.get(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no request {id} in the history"),
        )
    })
}

fn list(shared: &Shared, query: &HashMap<String, String>) -> Result<Response<Body>, ApiError> {
    let number = |name: &str| -> Result<Option<u64>, ApiError> {
        query
            .get(name)
            .map(|value| {
                value.parse::<u64>().map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("{name} must be a number, got {value:?}"),
                    )
                })
            })
            .transpose()
    };
    let limit = number("limit")?.unwrap_or(100) as usize;
    let since = number("since")?.unwrap_or(0);
    let verdict = query.get("verdict").map(String::as_str);
    if let Some(other) = verdict.filter(|v| !matches!(*v, "valid" | "invalid" | "none")) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("verdict must be valid, invalid or none, got {other:?}"),
        ));
    }
    let path = query.get("path");
    let exchanges = shared.store.newest(limit, |exchange| {
        exchange.id > since
            && path.is_none_or(|path| exchange.path == *path)
            && verdict.is_none_or(|wanted| exchange.verdict_label() == wanted)
    });
    let mut body = Vec::with_capacity(exchanges.len() * 1024 + 2);
    body.push(b'[');
    for (index, exchange) in exchanges.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        record_line(exchange).append_to(&mut body);
    }
    body.push(b']');
    Ok(json(StatusCode::OK, body))
}

fn stats(shared: &Shared) -> Response<Body> {
    json(
        StatusCode::OK,
        serde_json::to_vec(&shared.stats()).unwrap_or_default(),
    )
}

fn config_view(shared: &Shared) -> Response<Body> {
    let view = ConfigView::from(&*shared.behaviour());
    json(
        StatusCode::OK,
        serde_json::to_vec(&view).unwrap_or_default(),
    )
}

#[derive(serde::Deserialize)]
struct ReplayBody {
    to: String,
}

async fn replay(client: &reqwest::Client, exchange: &Exchange, to: &str) -> Response<Body> {
    if exchange.is_unreadable_head() {
        return error(
            StatusCode::CONFLICT,
            "this request's head could not be read when it arrived: nothing to replay",
        );
    }
    let to = match reqwest::Url::parse(to) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("`to` must be an http(s) URL, got {to:?}"),
            )
        }
    };
    match send::replay(client, &RecordedRequest::from(exchange), &to).await {
        Ok(replayed) => json(
            StatusCode::OK,
            serde_json::to_vec(&replayed).unwrap_or_default(),
        ),
        Err(failure) => error(StatusCode::BAD_GATEWAY, &failure.to_string()),
    }
}

fn events(shared: &Arc<Shared>) -> Response<Body> {
    let mut live = shared.store.subscribe();
    let shared = Arc::clone(shared);
    let (frames, stream) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
    tokio::spawn(async move {
        let hello = Bytes::from_static(b": hookscope events\n\n");
        if frames.send(Ok(Frame::data(hello))).await.is_err() {
            return;
        }
        loop {
            let event = tokio::select! {
                received = live.recv() => match received.map(|id| shared.store.get(id)) {
                    Ok(Some(exchange)) => {
                        let mut event = format!("event: exchange\nid: {}\ndata: ", exchange.id).into_bytes();
                        record_line(&exchange).append_to(&mut event);
                        event.extend_from_slice(b"\n\n");
                        Bytes::from(event)
                    }
                    Ok(None) => {
                        // Pushed out of the history before this reader got to it: skip
                        // what is queued behind it too, with one event rather than one per
                        // id; the inspector then fetches what the history still has.
                        let missed = 1 + live.len() as u64;
                        live = live.resubscribe();
                        lagged(missed)
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => lagged(missed),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tokio::time::sleep(SSE_KEEPALIVE) => Bytes::from_static(b": keep-alive\n\n"),
                _ = shared.shutdown().begun() => break,
            };
            if frames.send(Ok(Frame::data(event))).await.is_err() {
                break;
            }
        }
    });
    let mut response = Response::new(StreamBody::new(ReceiverStream::new(stream)).boxed());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(CACHE_CONTROL, http::HeaderValue::from_static("no-cache"));
    response
}

/// Tells a live subscriber that it missed exchanges (the inspector then catches up
/// from the history).
fn lagged(missed: u64) -> Bytes {
    Bytes::from(format!("event: lagged\ndata: {missed}\n\n"))
}

/// Reads a JSON body. Requiring `Content-Type: application/json` also makes
/// browsers ask before a cross-site page may send one (CORS preflight).
async fn read_json<T: serde::de::DeserializeOwned>(
    request: Request<Incoming>,
) -> Result<T, ApiError> {
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as Content-Type: application/json",
        ));
    }
    let bytes = Limited::new(request.into_body(), MAX_API_BODY)
        .collect()
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or cut short",
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|problem| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed JSON: {problem}"),
        )
    })
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(
        status,
        serde_json::json!({ "error": message })
            .to_string()
            .into_bytes(),
    )
}

fn html(page: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(page.as_bytes())).boxed());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        "content-security-policy",
        http::HeaderValue::from_static("default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"),
    );
    headers.insert(
        "x-content-type-options",
        http::HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", http::HeaderValue::from_static("DENY"));
    response
}
