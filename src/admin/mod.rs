//! The admin listener: the JSON API under `/api/` and the inspector page at `/`.
//!
//! It listens on its own address, never the webhook port, so a tunnel pointed at
//! the webhook port never exposes it. It is an axum router on hyper; every answer,
//! refusals included, is JSON (`{"error": ...}`) but the page itself.

mod config;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

pub use config::{ConfigPatch, ConfigView};

use crate::capture::{
    Exchange, Filter, HAR_END, HAR_START, RecordLine, compare, har_entry, record_line,
};
use crate::send::{self, RecordedRequest};
use crate::shared::Shared;

const INDEX_HTML: &str = include_str!("ui/index.html");

/// Largest request body the API reads.
const MAX_API_BODY: usize = 1024 * 1024;

/// Comment line sent on an idle event stream so that proxies keep it open.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

/// Largest body `POST /api/validate` checks.
const VALIDATE_LIMIT: usize = 4 * 1024 * 1024;

/// Most exchanges one `POST /api/replay` sends.
const REPLAY_ALL_LIMIT: usize = 1000;

/// How long a replay from the inspector waits for the target to answer.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

/// What every route reads.
#[derive(Clone)]
struct Admin {
    shared: Arc<Shared>,
    /// Where this admin API listens: replays are not sent here, and only its
    /// names are accepted as Host.
    own: SocketAddr,
    /// `--admin-public`: the API is meant to be reached by other names too.
    public: bool,
    /// Where this machine reaches the webhook listener (see `GET /api/config`).
    webhook_url: Arc<str>,
    /// Live events, rendered once for every reader.
    rendered: Arc<RenderedEvents>,
    /// Room for live readers ([`MAX_LIVE_READERS`]).
    live_readers: Arc<tokio::sync::Semaphore>,
    /// Turns for heavy work ([`HEAVY_AT_ONCE`]).
    heavy_turns: Arc<tokio::sync::Semaphore>,
    /// Built on the first replay: loading the system's root certificates takes
    /// milliseconds of the runtime's only thread, which a receiver that never
    /// replays should not spend at start.
    replay_client: Arc<OnceLock<Option<send::Sender>>>,
}

/// A refused API call: answered with this status and `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// The client for replays could not be set up (no TLS protocol version in common
    /// with the crypto provider: not expected, but not a 500 either).
    fn no_client() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the HTTP client for replays cannot be set up".to_owned(),
        )
    }

    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        json(self.status, body.into_bytes())
    }
}

type Answer = Result<Response, ApiError>;

/// Serves the admin API until the receiver shuts down.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    public: bool,
    webhook_url: String,
) {
    let Ok(own) = listener.local_addr() else {
        return;
    };
    let admin = Admin {
        shared: Arc::clone(&shared),
        own,
        public,
        webhook_url: Arc::from(webhook_url),
        rendered: Arc::default(),
        live_readers: Arc::new(tokio::sync::Semaphore::new(MAX_LIVE_READERS)),
        heavy_turns: Arc::new(tokio::sync::Semaphore::new(HEAVY_AT_ONCE)),
        replay_client: Arc::new(OnceLock::new()),
    };
    let app = Router::new()
        .route("/", get(|| async { html(INDEX_HTML) }))
        .route("/api/requests", get(list).delete(clear))
        .route("/api/requests/{id}", get(one))
        .route("/api/requests/{id}/body", get(exact_body))
        .route("/api/requests/{id}/replay", post(replay))
        .route("/api/export.har", get(export_har))
        .route("/api/alerts", get(alerts))
        .route("/api/compare/{a}/{b}", get(compare_two))
        .route("/api/send", post(send_edited))
        .route("/api/validate", post(validate_body))
        .route("/api/replay", post(replay_matching))
        .route("/api/stats", get(stats))
        .route("/api/events", get(events))
        .route("/api/config", get(config_view).put(change_config))
        .fallback(|uri: Uri| async move {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no such endpoint: {}", uri.path()),
            )
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            let path = uri.path().to_owned();
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path}"),
            )
        })
        .layer(middleware::from_fn_with_state(admin.clone(), guard))
        .with_state(admin);
    let shutdown = async move { shared.shutdown().begun().await };
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
}

/// Refuses what must not drive the API: a page on another site that resolves its
/// name to 127.0.0.1 (DNS rebinding) is refused by its Host, which must be a name
/// this listener is reached by; and a request hookscope itself replayed (a
/// recorded request, chosen by whoever sent it) is refused by its mark.
async fn guard(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    if request.headers().contains_key(send::REPLAY_MARK) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "a request replayed by hookscope cannot drive the admin API",
        )
        .into_response();
    }
    let host = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| request.uri().host())
        .unwrap_or("");
    if !admin.public && !is_own_name(host, admin.own) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "the admin API answers only to localhost, 127.0.0.1, [::1] or its own address as Host",
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether a Host value names this listener: `localhost`, the loopback address of
/// its family, or the address it is bound to; with or without its port.
fn is_own_name(host: &str, own: SocketAddr) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((name, port)) => (name, port.strip_prefix(':')),
            None => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let port_matches = port.is_none_or(|port| port.parse() == Ok(own.port()));
    let name_matches = name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| {
            ip == own.ip()
                || ip == std::net::Ipv4Addr::LOCALHOST
                || ip == std::net::Ipv6Addr::LOCALHOST
        });
    port_matches && name_matches
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

async fn one(State(admin): State<Admin>, Path(id): Path<String>) -> Answer {
    match find(&admin.shared, &id) {
        Ok(exchange) => Ok(json(StatusCode::OK, record_line(&exchange).to_vec())),
        // Beyond the in-memory window: the store's line, when there is one.
        Err(missing) => match stored_line(&admin, &id).await? {
            Some(line) => Ok(json(StatusCode::OK, line.into_bytes())),
            None => Err(missing),
        },
    }
}

/// The body exactly as it was received, byte for byte (the editor starts from it,
/// so that a signed body sent again unedited still verifies).
async fn exact_body(State(admin): State<Admin>, Path(id): Path<String>) -> Answer {
    let body = match find(&admin.shared, &id) {
        Ok(exchange) => exchange.body.clone(),
        Err(missing) => {
            let line = stored_line(&admin, &id).await?.ok_or(missing)?;
            RecordLine::parse(&line)
                .and_then(|line| line.body_bytes())
                .map_err(|error| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("the stored line has no readable body: {error}"),
                    )
                })?
        }
    };
    let mut response = Response::new(axum::body::Body::from(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

/// Exchange `id`'s stored record line (none without a `--store`), read on a blocking thread.
async fn stored_line(admin: &Admin, id: &str) -> Result<Option<String>, ApiError> {
    let Ok(id) = id.parse::<u64>() else {
        return Ok(None);
    };
    Ok(read_store(admin, move |_, database| database.get(id))
        .await?
        .flatten())
}

async fn clear(State(admin): State<Admin>) -> Response {
    admin.shared.store.clear();
    json(StatusCode::OK, br#"{"cleared":true}"#.to_vec())
}

async fn list(State(admin): State<Admin>, RawQuery(query): RawQuery) -> Answer {
    let query = parameters(query);
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
    let filter = Filter::from_query(&query)
        .map_err(|reason| ApiError::new(StatusCode::BAD_REQUEST, reason))?;
    let Searched {
        exchanges,
        partial,
        oldest_kept,
    } = search(&admin, filter.clone(), limit, |_| true).await?;
    let mut ids: Vec<u64> = exchanges.iter().map(|exchange| exchange.id).collect();
    let mut body = Vec::with_capacity(exchanges.len() * 1024 + 2);
    body.push(b'[');
    for exchange in &exchanges {
        record_line(exchange).append_to(&mut body);
        body.push(b',');
    }
    // With a store, the page goes on below the in-memory window, from the file.
    let (stored, stored_partial) = if exchanges.len() < limit && !partial {
        let below = below_window(oldest_kept, &filter);
        search_store(&admin, filter, below, limit - exchanges.len()).await?
    } else {
        (Vec::new(), false)
    };
    for (id, line) in stored {
        ids.push(id);
        body.extend_from_slice(line.as_bytes());
        body.push(b',');
    }
    if body.last() == Some(&b',') {
        body.pop();
    }
    body.push(b']');
    let mut response = json(StatusCode::OK, body);
    // The cursor of the next page (`before=`), when this one is full.
    if let (true, Some(last)) = (ids.len() >= limit, ids.last()) {
        response
            .headers_mut()
            .insert(NEXT_HEADER, http::HeaderValue::from(*last));
    }
    if partial || stored_partial {
        response.headers_mut().insert(
            PARTIAL_HEADER,
            http::HeaderValue::from_static("the search stopped at its time budget"),
        );
    }
    Ok(response)
}

/// The `before` cursor of the next page of `/api/requests`, when a page is full.
const NEXT_HEADER: http::HeaderName = http::HeaderName::from_static("x-hookscope-next");

/// The stored exchanges below `below` that pass `filter`, newest first (none without
/// a `--store`), on a blocking thread within the search budget.
async fn search_store(
    admin: &Admin,
    filter: Filter,
    below: u64,
    limit: usize,
) -> Result<(Vec<(u64, String)>, bool), ApiError> {
    if limit == 0 {
        return Ok((Vec::new(), false));
    }
    let _turn = admin.heavy_turn().await?;
    let searched = read_store(admin, move |_, database| {
        database.search(&filter, below, limit, SEARCH_BUDGET)
    })
    .await?;
    Ok(searched.unwrap_or_default())
}

/// Runs `read` on the store, on a blocking thread (it reads the file); `None`
/// without a `--store`.
async fn read_store<T: Send + 'static>(
    admin: &Admin,
    read: impl FnOnce(&Shared, &crate::capture::Database) -> Result<T, crate::capture::StoreError>
    + Send
    + 'static,
) -> Result<Option<T>, ApiError> {
    if admin.shared.database.is_none() {
        return Ok(None);
    }
    let shared = Arc::clone(&admin.shared);
    let unreadable = |reason: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason);
    tokio::task::spawn_blocking(move || {
        shared
            .database
            .as_ref()
            .map(|database| read(&shared, database))
    })
    .await
    .map_err(|_| unreadable("the store could not be read".to_owned()))?
    .transpose()
    .map_err(|error| unreadable(error.to_string()))
}

/// Where a store goes on below the in-memory window (or a page's cursor).
fn below_window(oldest_kept: Option<u64>, filter: &Filter) -> u64 {
    oldest_kept
        .unwrap_or(u64::MAX)
        .min(filter.before.unwrap_or(u64::MAX))
}

/// Set on an answer whose search stopped at [`SEARCH_BUDGET`] before the oldest exchange.
const PARTIAL_HEADER: http::HeaderName = http::HeaderName::from_static("x-hookscope-partial");

/// The CPU time one search may take: a search runs on a snapshot of the history,
/// away from the webhook path, and stops here with what it found.
const SEARCH_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// Heavy admin work (searches, checks of large bodies) that may run at once, each on
/// a core of its own; the rest wait for a turn, so the webhook path keeps a core.
const HEAVY_AT_ONCE: usize = 1;

/// How long heavy work waits for its turn before it is answered 503.
const WAIT_FOR_A_TURN: std::time::Duration = std::time::Duration::from_secs(10);

impl Admin {
    /// A turn for heavy work, or 503 when none comes within [`WAIT_FOR_A_TURN`].
    async fn heavy_turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        let busy = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the admin API is busy with another search or check: try again shortly",
            )
        };
        tokio::time::timeout(WAIT_FOR_A_TURN, self.heavy_turns.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())
    }
}

/// What a search found (newest first), and whether it stopped at its budget.
struct Searched {
    exchanges: Vec<Arc<Exchange>>,
    partial: bool,
    /// The oldest id the in-memory history held: a store goes on below it.
    oldest_kept: Option<u64>,
}

/// The newest `limit` kept exchanges that pass `filter` and `also`, found on a
/// snapshot of the history (the webhook path's lock is held only to copy pointers)
/// on a blocking thread, one search at a time, within [`SEARCH_BUDGET`].
async fn search(
    admin: &Admin,
    filter: Filter,
    limit: usize,
    also: fn(&Exchange) -> bool,
) -> Result<Searched, ApiError> {
    let busy = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the search stopped");
    let _turn = admin.heavy_turn().await?;
    // With a shared store, the history is the database's: this process's window
    // holds only what it received itself.
    let snapshot = match admin.shared.team() {
        Some(_) => Vec::new(),
        None => admin.shared.store.newest_first(),
    };
    let oldest_kept = snapshot.last().map(|exchange| exchange.id);
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut found = Vec::new();
        for (looked, exchange) in snapshot.into_iter().enumerate() {
            if found.len() >= limit {
                break;
            }
            if looked % 16 == 0 && started.elapsed() > SEARCH_BUDGET {
                return Searched {
                    exchanges: found,
                    partial: true,
                    oldest_kept,
                };
            }
            if filter.matches(&exchange) && also(&exchange) {
                found.push(exchange);
            }
        }
        Searched {
            exchanges: found,
            partial: false,
            oldest_kept,
        }
    })
    .await
    .map_err(|_| busy())
}

/// The query string's parameters.
fn parameters(query: Option<String>) -> HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The kept exchanges that the query's filters find (and `also` keeps), oldest first.
async fn found(
    admin: &Admin,
    query: Option<String>,
    also: fn(&Exchange) -> bool,
) -> Result<Vec<Arc<Exchange>>, ApiError> {
    let filter = Filter::from_query(&parameters(query))
        .map_err(|reason| ApiError::new(StatusCode::BAD_REQUEST, reason))?;
    found_with(admin, filter, also)
        .await
        .map(|(exchanges, _)| exchanges)
}

/// [`found`] with the filter read, and the oldest id the history held (a store
/// goes on below it).
async fn found_with(
    admin: &Admin,
    filter: Filter,
    also: fn(&Exchange) -> bool,
) -> Result<(Vec<Arc<Exchange>>, Option<u64>), ApiError> {
    let Searched {
        mut exchanges,
        partial,
        oldest_kept,
    } = search(admin, filter, usize::MAX, also).await?;
    if partial {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the search took longer than its 2 s budget: narrow it (status, path, alert, since)",
        ));
    }
    exchanges.reverse();
    Ok((exchanges, oldest_kept))
}

/// The kept exchanges that pass the filter (the find bar's, `/api/requests`'s), oldest
/// first, as a HAR 1.2 file.
async fn export_har(State(admin): State<Admin>, RawQuery(query): RawQuery) -> Answer {
    let filter = Filter::from_query(&parameters(query))
        .map_err(|reason| ApiError::new(StatusCode::BAD_REQUEST, reason))?;
    let (exchanges, oldest_kept) = found_with(&admin, filter.clone(), |_| true).await?;
    let shared = Arc::clone(&admin.shared);
    // Written one entry at a time into a short queue: an export costs a few entries
    // of memory, not the whole document (and its copies) at once.
    let (pieces, body) = mpsc::channel::<Result<Vec<u8>, Infallible>>(4);
    tokio::task::spawn_blocking(move || {
        let send = |piece: Vec<u8>| pieces.blocking_send(Ok(piece)).is_ok();
        if !send(HAR_START.as_bytes().to_vec()) {
            return;
        }
        let mut first = true;
        let mut send_entry = |entry: &serde_json::Value| {
            let mut piece = if first { Vec::new() } else { b",".to_vec() };
            first = false;
            serde_json::to_writer(&mut piece, entry).is_ok() && send(piece)
        };
        // With a store, what it holds below the history's window comes first.
        if let Some(database) = &shared.database {
            let below = below_window(oldest_kept, &filter);
            let mut going = true;
            let read = database.each_ascending(&filter, below, |line| {
                going = har_entry(line).is_none_or(|entry| send_entry(&entry));
                going
            });
            if read.is_err() || !going {
                return;
            }
        }
        for exchange in exchanges {
            let line = record_line(&exchange).to_vec();
            let Some(entry) = std::str::from_utf8(&line)
                .ok()
                .and_then(|text| RecordLine::parse(text).ok())
                .and_then(|line| har_entry(&line))
            else {
                continue;
            };
            if !send_entry(&entry) {
                return;
            }
        }
        send(HAR_END.as_bytes().to_vec());
    });
    let mut response = axum::body::Body::from_stream(ReceiverStream::new(body)).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(
        http::header::CONTENT_DISPOSITION,
        http::HeaderValue::from_static("attachment; filename=\"hookscope.har\""),
    );
    Ok(response)
}

/// The kept exchanges that belong to alert deliveries, grouped by delivery (route,
/// re-sent or not, alert key), each with its attempts in order: the inspector's
/// alerts view. Filters as `/api/requests`'s apply to the attempts.
async fn alerts(State(admin): State<Admin>, RawQuery(query): RawQuery) -> Answer {
    let filter = Filter::from_query(&parameters(query))
        .map_err(|reason| ApiError::new(StatusCode::BAD_REQUEST, reason))?;
    let (exchanges, oldest_kept) = found_with(&admin, filter.clone(), |exchange| {
        exchange.attempt.as_ref().is_some_and(|a| a.key.is_alert())
    })
    .await?;
    // With a store, the attempts before the history's window come first: a delivery
    // that spans a restart is one delivery.
    let mut rows = stored_attempts(&admin, filter, oldest_kept).await?;
    rows.extend(
        exchanges
            .iter()
            .filter_map(|exchange| AttemptRow::of_exchange(exchange)),
    );
    let mut deliveries: Vec<(String, Vec<serde_json::Value>, serde_json::Value)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in rows {
        // A new delivery of the same alert (after an acknowledgement) starts at attempt 1.
        let group = format!(
            "{}\u{0}{}\u{0}{}",
            row.route.as_deref().unwrap_or(""),
            row.resent,
            row.key
        );
        if row.number == 1 || !index.contains_key(&group) {
            index.insert(group.clone(), deliveries.len());
            deliveries.push((
                group.clone(),
                Vec::new(),
                serde_json::json!({
                    "key": row.key,
                    "route": row.route,
                    "resent": row.resent,
                }),
            ));
        }
        let at = index[&group];
        // A stored attempt says its status, not whether it acknowledged: the first 2XX
        // of a delivery is its acknowledgement.
        let acknowledged = row.acknowledged.unwrap_or_else(|| {
            row.status
                .is_some_and(|status| (200..300).contains(&status))
                && !deliveries[at].1.iter().any(|a| a["acknowledged"] == true)
        });
        deliveries[at].1.push(serde_json::json!({
            "id": row.id,
            "at": row.at,
            "number": row.number,
            "gap_ms": row.gap_ms,
            "outcome": row.outcome,
            "status": row.status,
            "acknowledged": acknowledged,
            "upstream": row.upstream,
            "duplicate_upstream": row.duplicate_upstream,
        }));
    }
    let list: Vec<serde_json::Value> = deliveries
        .into_iter()
        .rev()
        .map(|(_, attempts, mut delivery)| {
            let acknowledged = attempts.iter().position(|a| a["acknowledged"] == true);
            let duplicates = attempts
                .iter()
                .filter(|a| a["duplicate_upstream"] == true)
                .count();
            delivery["state"] = match acknowledged {
                Some(0) => "delivered".into(),
                Some(at) => format!("delivered after {} attempts", at + 1).into(),
                None => "never acked".into(),
            };
            delivery["duplicates_upstream"] = duplicates.into();
            delivery["attempts"] = attempts.into();
            delivery
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        serde_json::to_vec(&list).unwrap_or_default(),
    ))
}

/// One attempt of an alert's delivery, from the history or from the store.
struct AttemptRow {
    id: u64,
    at: String,
    key: String,
    route: Option<String>,
    resent: bool,
    number: u32,
    gap_ms: Option<f64>,
    outcome: String,
    status: Option<u16>,
    /// Known for an exchange of the history; a stored one is read from its status.
    acknowledged: Option<bool>,
    upstream: Option<String>,
    duplicate_upstream: bool,
}

impl AttemptRow {
    fn of_exchange(exchange: &Exchange) -> Option<AttemptRow> {
        let attempt = exchange.attempt.as_ref()?;
        Some(AttemptRow {
            id: exchange.id,
            at: exchange
                .received_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            key: attempt.key.value.clone(),
            route: attempt.route.clone(),
            resent: attempt.key.resent,
            number: attempt.number,
            gap_ms: attempt.gap.map(|gap| gap.as_secs_f64() * 1000.0),
            outcome: exchange.reply.outcome.label(),
            status: exchange.reply.outcome.status(),
            acknowledged: Some(attempt.acknowledged),
            upstream: exchange
                .upstream
                .as_ref()
                .map(crate::capture::UpstreamLeg::label),
            duplicate_upstream: attempt.duplicate_upstream,
        })
    }

    /// A stored line's attempt; its route is the one its path takes now.
    fn of_line(line: &RecordLine<'_>, routes: &[crate::respond::Route]) -> Option<AttemptRow> {
        let attempt = line.attempt.as_ref().filter(|a| a.key_source != "body")?;
        let route =
            crate::respond::route_for(routes, &line.path).map(|(_, route)| route.prefix.clone());
        let at = line
            .received_at
            .as_deref()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map(|at| {
                at.to_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            })
            .unwrap_or_default();
        Some(AttemptRow {
            id: line.id,
            at,
            key: attempt.key.clone(),
            route,
            resent: attempt.resent,
            number: attempt.number,
            gap_ms: attempt.gap_ms,
            outcome: line
                .outcome
                .clone()
                .unwrap_or_else(|| line.status.map_or_else(String::new, |s| s.to_string())),
            status: line.status,
            acknowledged: None,
            upstream: line
                .upstream
                .as_ref()
                .map(crate::capture::RecordedUpstream::label),
            duplicate_upstream: attempt.duplicate_upstream,
        })
    }
}

/// The stored alert attempts below the history's window, oldest first (none without a store).
async fn stored_attempts(
    admin: &Admin,
    filter: Filter,
    oldest_kept: Option<u64>,
) -> Result<Vec<AttemptRow>, ApiError> {
    let _turn = admin.heavy_turn().await?;
    let below = below_window(oldest_kept, &filter);
    let rows = read_store(admin, move |shared, database| {
        let routes = shared.behaviour().routes.clone();
        let mut rows = Vec::new();
        database.each_ascending(&filter, below, |line| {
            rows.extend(AttemptRow::of_line(line, &routes));
            rows.len() < MAX_STORED_ATTEMPTS
        })?;
        Ok(rows)
    })
    .await?;
    Ok(rows.unwrap_or_default())
}

/// Most stored attempts the alerts view reads (narrow it with the filters beyond that).
const MAX_STORED_ATTEMPTS: usize = 100_000;

/// An edited request (the inspector's editor): method, URL, headers, body, and the
/// exchange it was made from.
#[derive(serde::Deserialize)]
struct Edited {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: String,
    /// The exchange it was edited from; the request carries it as `x-hookscope-replay`,
    /// so that a copy that lands in hookscope says "replayed from #N".
    from: u64,
}

async fn send_edited(State(admin): State<Admin>, request: Request) -> Answer {
    let edited: Edited = read_json(request).await?;
    let to = replay_target(&admin, &edited.url).await?;
    if http::Method::from_bytes(edited.method.as_bytes()).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{:?} is not an HTTP method", edited.method),
        ));
    }
    let request = RecordedRequest {
        id: edited.from,
        method: edited.method,
        path: to.path().to_owned(),
        query: to.query().map(str::to_owned),
        headers: edited.headers,
        body: bytes::Bytes::from(edited.body),
    };
    send_one(&admin, &request, &to).await
}

/// The Panther check of a body, as the editor shows it while typing.
async fn validate_body(State(admin): State<Admin>, request: Request) -> Answer {
    let body = axum::body::to_bytes(request.into_body(), VALIDATE_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is too large to check here",
            )
        })?;
    // A turn of its own, off the runtime's threads: checking megabytes takes a while.
    let _turn = admin.heavy_turn().await?;
    let verdict = tokio::task::spawn_blocking(move || crate::alert::validate(&body))
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the check stopped"))?;
    Ok(json(
        StatusCode::OK,
        serde_json::to_vec(&serde_json::json!({
            "valid": verdict.is_valid(),
            "problems": verdict.problems,
            "warnings": verdict.warnings,
            "omitted": verdict.omitted,
        }))
        .unwrap_or_default(),
    ))
}

#[derive(serde::Deserialize)]
struct ReplayAll {
    to: String,
}

/// Replays every kept exchange that passes the filter (the query string), in order.
async fn replay_matching(
    State(admin): State<Admin>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Answer {
    let exchanges = found(&admin, query, |exchange| !exchange.is_unreadable_head()).await?;
    let ReplayAll { to } = read_json(request).await?;
    let to = replay_target(&admin, &to).await?;
    if exchanges.len() > REPLAY_ALL_LIMIT {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{} exchanges match: at most {REPLAY_ALL_LIMIT} are replayed at once (narrow the filter, or use hookscope replay on the record)",
                exchanges.len()
            ),
        ));
    }
    let client = replay_sender(&admin)?;
    let mut results = Vec::with_capacity(exchanges.len());
    for exchange in exchanges {
        let request = RecordedRequest::from(&*exchange);
        let result = send::replay(client, &request, &to, send::DEFAULT_MAX_RESPONSE_BODY).await;
        results.push(match result {
            Ok(replayed) => serde_json::json!({"id": exchange.id, "status": replayed.status, "took_ms": replayed.took_ms}),
            Err(failure) => serde_json::json!({"id": exchange.id, "error": failure.to_string()}),
        });
    }
    Ok(json(
        StatusCode::OK,
        serde_json::to_vec(&results).unwrap_or_default(),
    ))
}

/// What differs between two kept exchanges: request line, headers, the body by JSON pointer.
async fn compare_two(State(admin): State<Admin>, Path((a, b)): Path<(String, String)>) -> Answer {
    let (a, b) = (comparable(&admin, &a).await?, comparable(&admin, &b).await?);
    let changes = compare(&a, &b);
    Ok(json(
        StatusCode::OK,
        serde_json::to_vec(&serde_json::json!({"a": a.id, "b": b.id, "changes": changes}))
            .unwrap_or_default(),
    ))
}

/// Exchange `id` from the history, or its request from the store beyond it.
async fn comparable(admin: &Admin, id: &str) -> Result<Arc<Exchange>, ApiError> {
    match find(&admin.shared, id) {
        Ok(exchange) => Ok(exchange),
        Err(missing) => {
            let line = stored_line(admin, id).await?.ok_or(missing)?;
            let parsed = RecordLine::parse(&line)
                .map_err(|error| ApiError::new(StatusCode::CONFLICT, error.to_string()))?;
            Ok(Arc::new(parsed.request_exchange()))
        }
    }
}

async fn stats(State(admin): State<Admin>) -> Response {
    let stats = serde_json::to_vec(&admin.shared.stats()).unwrap_or_default();
    json(StatusCode::OK, stats)
}

async fn config_view(State(admin): State<Admin>) -> Response {
    let view = ConfigView::from(&*admin.shared.behaviour());
    let mut view = serde_json::to_value(&view).unwrap_or_default();
    if let Some(fields) = view.as_object_mut() {
        fields.insert("webhook_url".into(), admin.webhook_url.as_ref().into());
    }
    json(
        StatusCode::OK,
        serde_json::to_vec(&view).unwrap_or_default(),
    )
}

async fn change_config(State(admin): State<Admin>, request: Request) -> Answer {
    let patch: ConfigPatch = read_json(request).await?;
    let behaviour = patch
        .apply(&admin.shared.behaviour())
        .map_err(|reason| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, reason))?;
    admin
        .shared
        .set_behaviour(behaviour)
        .map_err(|error| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string()))?;
    Ok(config_view(State(admin)).await)
}

#[derive(serde::Deserialize)]
struct ReplayBody {
    /// Where to send it; by default where it was forwarded to, or the `--forward` URL.
    #[serde(default)]
    to: Option<String>,
}

async fn replay(State(admin): State<Admin>, Path(id): Path<String>, request: Request) -> Answer {
    let ReplayBody { to } = read_json(request).await?;
    let nothing = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "this request's head could not be read when it arrived: nothing to replay",
        )
    };
    // From the history, or from the store beyond it.
    let (request, forwarded_to) = match find(&admin.shared, &id) {
        Ok(exchange) if exchange.is_unreadable_head() => return Err(nothing()),
        Ok(exchange) => (
            RecordedRequest::from(&*exchange),
            default_replay_target(&admin.shared, &exchange),
        ),
        Err(missing) => {
            let line = stored_line(&admin, &id).await?.ok_or(missing)?;
            let parsed = RecordLine::parse(&line)
                .map_err(|error| ApiError::new(StatusCode::CONFLICT, error.to_string()))?;
            let request = RecordedRequest::try_from(&parsed).map_err(|_| nothing())?;
            let forwarded_to = parsed.upstream.as_ref().map(|leg| leg.url.clone());
            (request, forwarded_to)
        }
    };
    let to = match to.filter(|to| !to.trim().is_empty()) {
        Some(to) => to,
        None => forwarded_to.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "give `to`, the URL to send it to (there is no --forward to send it to by default)",
            )
        })?,
    };
    let to = replay_target(&admin, &to).await?;
    send_one(&admin, &request, &to).await
}

/// A replay target: an http(s) URL that is not this admin API.
async fn replay_target(admin: &Admin, to: &str) -> Result<crate::outgoing::Url, ApiError> {
    let to = match crate::outgoing::Url::parse(to) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("`to` must be an http(s) URL, got {to:?}"),
            ));
        }
    };
    if targets_this_api(&to, admin.own).await {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{to} is this admin API: a recorded request is not replayed into it"),
        ));
    }
    Ok(to)
}

/// The client replays go out with, set up at the first replay.
fn replay_sender(admin: &Admin) -> Result<&send::Sender, ApiError> {
    admin
        .replay_client
        .get_or_init(|| {
            send::Sender::new(&crate::outgoing::Trust::SystemRoots, REPLAY_TIMEOUT).ok()
        })
        .as_ref()
        .ok_or_else(ApiError::no_client)
}

/// Sends one request (marked as a replay of its id) and answers with what came back.
async fn send_one(admin: &Admin, request: &RecordedRequest, to: &crate::outgoing::Url) -> Answer {
    let client = replay_sender(admin)?;
    match send::replay(client, request, to, send::DEFAULT_MAX_RESPONSE_BODY).await {
        Ok(replayed) => Ok(json(
            StatusCode::OK,
            serde_json::to_vec(&replayed).unwrap_or_default(),
        )),
        // Refused before sending (a masked secret): the request must change, 422.
        Err(failure) if !failure.sent => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            failure.reason,
        )),
        Err(failure) => Err(ApiError::new(StatusCode::BAD_GATEWAY, failure.to_string())),
    }
}

/// Whether a URL reaches this admin listener (by any name that resolves to it).
/// Where a replay goes when no `to` is given: where the exchange was forwarded
/// to, or where `--forward` would send it now.
fn default_replay_target(shared: &Shared, exchange: &Exchange) -> Option<String> {
    if let Some(leg) = &exchange.upstream {
        return Some(leg.url.clone());
    }
    let behaviour = shared.behaviour();
    let base = behaviour.forward.as_ref()?;
    Some(crate::forward::target(
        base,
        &exchange.path,
        exchange.query.as_deref(),
    ))
}

async fn targets_this_api(to: &crate::outgoing::Url, own: SocketAddr) -> bool {
    crate::forward::reaches(to, own).await.is_some()
}

/// One `exchange` event per exchange as it ends; `lagged` when this reader missed some.
/// Live readers at once: each costs a queue and a copy of every event.
const MAX_LIVE_READERS: usize = 32;

/// Events queued for one reader; one that falls further behind is told `lagged`.
const LIVE_QUEUE: usize = 16;

/// The longest exchange line an event carries; a longer one is announced by its id
/// (`exchange-id`) and read from `/api/requests` by whoever wants it.
const MAX_EVENT_LINE: usize = 64 * 1024;

/// The event for one exchange, rendered once for every live reader (readers go
/// through the same ids at about the same time; the last few are kept).
#[derive(Default)]
struct RenderedEvents(std::sync::Mutex<std::collections::VecDeque<(u64, Arc<str>)>>);

/// The next exchange another instance stored, when there are other instances
/// (without, it never comes).
async fn next_peer(
    peers: Option<&mut broadcast::Receiver<crate::capture::PeerLine>>,
) -> Option<Result<crate::capture::PeerLine, broadcast::error::RecvError>> {
    match peers {
        Some(peers) => Some(peers.recv().await),
        None => std::future::pending().await,
    }
}

/// What an event carries for exchange `id`: its record line, or its id alone when
/// the line is too long for an event (the reader fetches it).
fn event_data(id: u64, line: &str) -> Arc<str> {
    if line.len() <= MAX_EVENT_LINE {
        Arc::from(line)
    } else {
        Arc::from(id.to_string())
    }
}

/// The event for exchange `id` carrying `data` (from [`event_data`]).
fn event_of(id: u64, data: &str) -> Event {
    let kind = if data.starts_with('{') {
        "exchange"
    } else {
        "exchange-id"
    };
    Event::default().event(kind).id(id.to_string()).data(data)
}

impl RenderedEvents {
    fn event(&self, exchange: &Exchange) -> Event {
        let id = exchange.id;
        let mut rendered = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let data = match rendered.iter().find(|(kept, _)| *kept == id) {
            Some((_, data)) => Arc::clone(data),
            None => {
                let line = record_line(exchange).to_vec();
                let data = event_data(id, &String::from_utf8_lossy(&line));
                if rendered.len() >= LIVE_QUEUE {
                    rendered.pop_front();
                }
                rendered.push_back((id, Arc::clone(&data)));
                data
            }
        };
        drop(rendered);
        event_of(id, &data)
    }
}

async fn events(State(admin): State<Admin>) -> Result<Response, ApiError> {
    let Ok(reader) = Arc::clone(&admin.live_readers).try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_LIVE_READERS} live readers are connected already: close one"),
        ));
    };
    let shared = admin.shared;
    let rendered = admin.rendered;
    let mut live = shared.store.subscribe();
    // The other instances' exchanges, with a shared store; none otherwise.
    let mut peers = shared.team().map(crate::capture::Team::peers);
    let (events, stream) = mpsc::channel::<Result<Event, Infallible>>(LIVE_QUEUE);
    tokio::spawn(async move {
        let _reader = reader;
        if events
            .send(Ok(Event::default().comment("hookscope events")))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let event = tokio::select! {
                received = live.recv() => match received.map(|id| shared.store.get(id)) {
                    Ok(Some(exchange)) => rendered.event(&exchange),
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
                Some(peer) = next_peer(peers.as_mut()) => match peer {
                    Ok((id, line)) => event_of(id, &event_data(id, &line)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => lagged(missed),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = shared.shutdown().begun() => break,
            };
            if events.send(Ok(event)).await.is_err() {
                break;
            }
        }
    });
    let keep_alive = KeepAlive::new().interval(SSE_KEEPALIVE).text("keep-alive");
    Ok((
        [(CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        Sse::new(ReceiverStream::new(stream)).keep_alive(keep_alive),
    )
        .into_response())
}

/// Tells a live subscriber that it missed exchanges (the inspector then catches up
/// from the history).
fn lagged(missed: u64) -> Event {
    Event::default().event("lagged").data(missed.to_string())
}

/// Reads a JSON body. Requiring `Content-Type: application/json` also makes
/// browsers ask before a cross-site page may send one (CORS preflight).
async fn read_json<T: serde::de::DeserializeOwned>(request: Request) -> Result<T, ApiError> {
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(crate::values::is_json_media_type);
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as Content-Type: application/json",
        ));
    }
    let bytes = http_body_util::Limited::new(request.into_body(), MAX_API_BODY)
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

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let content_type = [(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    (status, content_type, body).into_response()
}

fn html(page: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set("content-type", "text/html; charset=utf-8");
    set(
        "content-security-policy",
        "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:",
    );
    set("x-content-type-options", "nosniff");
    set("x-frame-options", "DENY");
    (headers, page).into_response()
}
