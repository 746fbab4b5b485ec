//! Sending requests out: replaying captured requests, and delivering alerts the
//! way Panther's Custom Webhook sender does (`hookscope send`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use http_body_util::Full;
use serde::Serialize;
use thiserror::Error;

use crate::outgoing::{self, FailureKind, ReadError, Trust, TrustError, Url};
pub use crate::outgoing::{DEFAULT_MAX_RESPONSE_BODY, DEFAULT_MAX_RESPONSE_BODY_TEXT};

pub use crate::capture::RecordLineError;
use crate::capture::{Exchange, RecordLine};

/// A request as captured, ready to be sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Id of the exchange it came from.
    pub id: u64,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query without `?`.
    pub query: Option<String>,
    /// Headers in arrival order.
    pub headers: Vec<(String, String)>,
    /// Exact body bytes.
    pub body: Bytes,
}

impl From<&Exchange> for RecordedRequest {
    fn from(exchange: &Exchange) -> Self {
        RecordedRequest {
            id: exchange.id,
            method: exchange.method.to_string(),
            path: exchange.path.clone(),
            query: exchange.query.clone(),
            headers: exchange
                .header_pairs()
                .map(|(name, value)| (name.to_owned(), value.into_owned()))
                .collect(),
            body: exchange.body.clone(),
        }
    }
}

impl RecordedRequest {
    /// The entries of a HAR document (1.1 or 1.2), each still unread: a large file
    /// costs its bytes and a pointer per entry, and each entry is read when replayed
    /// ([`RecordedRequest::from_har_entry`]).
    pub fn har_entries(document: &str) -> Result<Vec<&serde_json::value::RawValue>, String> {
        #[derive(serde::Deserialize)]
        struct Har<'a> {
            #[serde(borrow)]
            log: Log<'a>,
        }
        #[derive(serde::Deserialize)]
        struct Log<'a> {
            #[serde(borrow)]
            entries: Vec<&'a serde_json::value::RawValue>,
        }
        serde_json::from_str::<Har<'_>>(document)
            .map(|har| har.log.entries)
            .map_err(|error| format!("not a HAR file ({error}): it needs log.entries"))
    }

    /// The request of one HAR entry, numbered `number`, or why it cannot be replayed.
    pub fn from_har_entry(
        number: usize,
        entry: &serde_json::value::RawValue,
    ) -> Result<RecordedRequest, String> {
        #[derive(serde::Deserialize)]
        struct Entry {
            request: Option<Request>,
        }
        #[derive(serde::Deserialize)]
        struct Request {
            method: Option<String>,
            url: Option<String>,
            #[serde(default)]
            headers: Vec<NameValue>,
            #[serde(rename = "postData")]
            post_data: Option<PostData>,
        }
        #[derive(serde::Deserialize)]
        struct PostData {
            #[serde(rename = "mimeType")]
            mime_type: Option<String>,
            text: Option<String>,
            params: Option<Vec<NameValue>>,
        }
        let entry: Entry = serde_json::from_str(entry.get())
            .map_err(|error| format!("entry {number}: {error}"))?;
        let request = entry
            .request
            .ok_or_else(|| format!("entry {number}: no request"))?;
        let url = request
            .url
            .ok_or_else(|| format!("entry {number}: no request.url"))?;
        let url = Url::parse(&url)
            .map_err(|error| format!("entry {number}: request.url {url:?}: {error}"))?;
        let headers = request
            .headers
            .into_iter()
            .filter_map(|header| Some((header.name?, header.value?)))
            .collect();
        let body = match request.post_data {
            Some(PostData {
                text: Some(text), ..
            }) if !text.is_empty() => Bytes::from(text),
            // HAR 1.2 lets a form be written as its params alone (chrome-har does).
            Some(PostData {
                mime_type,
                params: Some(params),
                ..
            }) if !params.is_empty() => {
                let mime = mime_type.unwrap_or_default();
                if !mime.is_empty() && !mime.starts_with("application/x-www-form-urlencoded") {
                    return Err(format!(
                        "entry {number}: postData holds only params for {mime:?}, from which the body's bytes cannot be rebuilt (export the HAR with postData.text)"
                    ));
                }
                let mut form = form_urlencoded::Serializer::new(String::new());
                for param in params {
                    form.append_pair(
                        param.name.as_deref().unwrap_or_default(),
                        param.value.as_deref().unwrap_or_default(),
                    );
                }
                Bytes::from(form.finish())
            }
            _ => Bytes::new(),
        };
        Ok(RecordedRequest {
            id: number as u64,
            method: request.method.unwrap_or_else(|| "GET".to_owned()),
            path: url.path().to_owned(),
            query: url.query().map(str::to_owned),
            headers,
            body,
        })
    }
}

impl RecordedRequest {
    /// The exchange HAR entry `number` describes, for a store (`hookscope import`): the
    /// request as it was sent, when (`startedDateTime`), and the answer's status and
    /// text when the entry has them (status 0, a request with no answer, as dropped).
    pub fn har_exchange(
        number: usize,
        entry: &serde_json::value::RawValue,
    ) -> Result<Exchange, String> {
        #[derive(serde::Deserialize)]
        struct Timing {
            #[serde(rename = "startedDateTime")]
            started: Option<String>,
            time: Option<f64>,
            response: Option<Response>,
        }
        #[derive(serde::Deserialize)]
        struct Response {
            status: Option<u16>,
            #[serde(default)]
            headers: Vec<NameValue>,
            content: Option<Content>,
        }
        #[derive(serde::Deserialize)]
        struct Content {
            text: Option<String>,
        }
        let request = RecordedRequest::from_har_entry(number, entry)?;
        let timing: Timing = serde_json::from_str(entry.get())
            .map_err(|error| format!("entry {number}: {error}"))?;
        let received_at = timing
            .started
            .as_deref()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map_or_else(chrono::Utc::now, |at| at.with_timezone(&chrono::Utc));
        let method = http::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| format!("entry {number}: bad method {:?}", request.method))?;
        let mut exchange = Exchange::of_request(
            0,
            (method, request.path, request.query),
            request
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
            request.body,
            0,
        );
        exchange.received_at = received_at;
        let response = timing.response;
        let headers = response
            .iter()
            .flat_map(|response| &response.headers)
            .filter_map(|header| {
                let name = http::HeaderName::from_bytes(header.name.as_ref()?.as_bytes()).ok()?;
                let value = http::HeaderValue::from_str(header.value.as_ref()?).ok()?;
                Some((name, value))
            })
            .fold(HeaderMap::new(), |mut headers, (name, value)| {
                headers.append(name, value);
                headers
            });
        exchange.reply = crate::capture::Reply {
            headers,
            outcome: match response.as_ref().and_then(|response| response.status) {
                Some(0) | None => crate::capture::Outcome::Dropped,
                Some(status) => crate::capture::Outcome::Answered(status),
            },
            body: Bytes::from(
                response
                    .and_then(|response| response.content)
                    .and_then(|content| content.text)
                    .unwrap_or_default(),
            ),
            took: Duration::from_secs_f64(timing.time.unwrap_or(0.0).max(0.0) / 1000.0),
        };
        Ok(exchange)
    }
}

impl TryFrom<&RecordLine<'_>> for RecordedRequest {
    type Error = RecordLineError;

    fn try_from(line: &RecordLine<'_>) -> Result<Self, Self::Error> {
        if line.is_unreadable_head() {
            return Err(RecordLineError::UnreadableHead);
        }
        Ok(RecordedRequest {
            id: line.id,
            method: line.method.clone(),
            path: line.path.clone(),
            query: line.query.clone(),
            headers: line.headers.0.clone(),
            body: line.body_bytes()?,
        })
    }
}

impl RecordedRequest {
    /// Sets these headers, replacing recorded ones of the same name (any case).
    pub fn with_headers(mut self, headers: &[(http::HeaderName, http::HeaderValue)]) -> Self {
        for (name, value) in headers {
            self.headers
                .retain(|(recorded, _)| !recorded.eq_ignore_ascii_case(name.as_str()));
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            self.headers.push((name.as_str().to_owned(), value));
        }
        self
    }

    /// Reads one line of a `--record` file.
    pub fn from_record_line(line: &str) -> Result<RecordedRequest, RecordLineError> {
        RecordedRequest::try_from(&RecordLine::parse(line)?)
    }

    /// Where the replay goes: `to` itself when it names a path, otherwise the
    /// original path (and query) on `to`'s host.
    pub fn target(&self, to: &Url) -> Url {
        let mut url = to.clone();
        if url.path() == "/" || url.path().is_empty() {
            url.set_path(&self.path);
        }
        if url.query().is_none() {
            url.set_query(self.query.as_deref());
        }
        url
    }
}

/// What came back from a replay.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    /// The URL the request went to.
    pub url: String,
    /// Status received.
    pub status: u16,
    /// Headers received.
    pub headers: Vec<(String, String)>,
    /// Body received (lossy UTF-8), at most the cap given to [`replay`].
    pub body: String,
    /// Whether the body was longer than the cap (the rest was not read).
    pub truncated: bool,
    /// How long the answer took, in milliseconds.
    pub took_ms: f64,
}

/// The header every replayed request carries, so that hookscope's admin API can
/// refuse to be driven by one.
pub const REPLAY_MARK: &str = "x-hookscope-replay";

/// A replay that got no HTTP answer.
#[derive(Debug, Error)]
#[error("replay to {url} failed: {reason}")]
pub struct ReplayError {
    /// The URL the request went to.
    pub url: String,
    /// What went wrong (connection refused, timeout...).
    pub reason: String,
    /// Whether it went out at all: a request that cannot be sent as it is (a masked
    /// secret, a bad method) is refused before anything is sent.
    pub sent: bool,
}

/// How requests go out: the one client, and how long each whole exchange (the
/// answer's head and the body read) may take.
#[derive(Debug, Clone)]
pub struct Sender {
    client: outgoing::Client,
    timeout: Duration,
}

impl Sender {
    /// A sender trusting `trust`, giving each exchange `timeout`.
    pub fn new(trust: &Trust, timeout: Duration) -> Result<Sender, TrustError> {
        Ok(Sender {
            client: outgoing::Client::new(trust, timeout)?,
            timeout,
        })
    }

    /// A sender writing header names as Go's client does (`User-Agent`), for
    /// [`deliver`]: a receiver that logs raw headers sees what Panther sends.
    pub fn as_panther(trust: &Trust, timeout: Duration) -> Result<Sender, TrustError> {
        Ok(Sender {
            client: outgoing::Client::with_canonical_case(trust, timeout)?,
            timeout,
        })
    }

    /// Sends `request` to `url` and reads at most `max` bytes of the answer's body.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        max: usize,
    ) -> Result<Answer, outgoing::Failure> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let answer = self.client.send(request, deadline).await?;
        let (head, mut body) = answer.into_parts();
        let (body, truncated, broken) = match outgoing::read_capped(&mut body, max, deadline).await
        {
            Ok(capped) => (capped.kept, capped.beyond.is_some(), None),
            Err(ReadError::TimedOut { kept }) => (
                kept,
                false,
                Some("the answer's body did not arrive in time (--timeout)".to_owned()),
            ),
            Err(ReadError::Broken { kept, cause }) => (
                kept,
                false,
                Some(format!("the answer's body could not be read: {cause}")),
            ),
        };
        Ok(Answer {
            status: head.status,
            headers: head.headers,
            body,
            truncated,
            broken,
        })
    }
}

/// An answer, its body read up to the cap.
struct Answer {
    status: http::StatusCode,
    headers: HeaderMap,
    body: Bytes,
    truncated: bool,
    /// Why the body stopped before its end or the cap, if it did.
    broken: Option<String>,
}

/// The headers in the order Go's HTTP/1.1 client writes them (net/http
/// `Request.write`): `Host`, `User-Agent`, `Content-Length`, then the request's own
/// headers sorted by name, then `Accept-Encoding: gzip`, which Go's transport adds
/// (and undoes) unless the request has one. `Host` is written here only for
/// plain http: over https the connection may be HTTP/2, where it has no place.
fn go_header_order(
    url: &Url,
    user_agent: &HeaderValue,
    body_length: usize,
    mut set: HeaderMap,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(set.len() + 4);
    if url.scheme() == "http" {
        if let Some(host) = set
            .remove(http::header::HOST)
            .or_else(|| outgoing::host_header(url))
        {
            headers.insert(http::header::HOST, host);
        }
    }
    let user_agent = set.remove(USER_AGENT).unwrap_or_else(|| user_agent.clone());
    headers.insert(USER_AGENT, user_agent);
    set.remove(http::header::CONTENT_LENGTH);
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body_length));
    let asked_encoding = set.contains_key(ACCEPT_ENCODING);
    // HeaderMap's iterator names a header only at its first value: carry the name on.
    let mut name = None;
    let mut sorted: Vec<(HeaderName, HeaderValue)> = set
        .into_iter()
        .filter_map(|(given, value)| {
            name = given.or(name.take());
            Some((name.clone()?, value))
        })
        .collect();
    sorted.sort_by(|(left, _), (right, _)| left.as_str().cmp(right.as_str()));
    headers.extend(sorted);
    if !asked_encoding {
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers
}

/// A HAR `{"name", "value"}` pair (a header, a form parameter).
#[derive(serde::Deserialize)]
struct NameValue {
    name: Option<String>,
    value: Option<String>,
}

/// The headers of one attempt of `delivery`, as Panther's Go client writes them:
/// Panther's two headers (outputs/post.go), then the delivery's and the signatures
/// (made at `timestamp`, carrying `message_id`), each replacing any before it of its
/// name, as Go's `Header.Set` does; in Go's order (`Host`, `User-Agent`, `Content-Length`, the rest sorted, `Accept-Encoding`).
pub fn attempt_headers(delivery: &Delivery, timestamp: i64, message_id: &str) -> HeaderMap {
    let mut set = HeaderMap::new();
    set.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    set.insert(ACCEPT, HeaderValue::from_static("application/json"));
    for (name, value) in &delivery.headers {
        set.insert(name, value.clone());
    }
    for key in &delivery.signers {
        for (name, value) in key.sign(&delivery.body, timestamp, message_id) {
            set.insert(name, value);
        }
    }
    go_header_order(
        &delivery.url,
        &delivery.user_agent,
        delivery.body.len(),
        set,
    )
}

/// A request to `url`: its method, `Host` for the URL, and the given body.
fn request_to(url: &Url, method: Method, body: Bytes) -> Result<Request<Full<Bytes>>, String> {
    let uri: http::Uri = url
        .as_str()
        .parse()
        .map_err(|error| format!("cannot address {url}: {error}"))?;
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    Ok(request)
}

/// Sends a recorded request again: same method, path, headers (minus hop-by-hop
/// ones) and body, and no header of the client's own but `Host` and the framing.
pub async fn replay(
    sender: &Sender,
    request: &RecordedRequest,
    to: &Url,
    max_response_body: usize,
) -> Result<Replayed, ReplayError> {
    let url = request.target(to);
    let refused = |reason: String| ReplayError {
        url: url.to_string(),
        reason,
        sent: false,
    };
    let failed = |reason: String| ReplayError {
        sent: true,
        ..refused(reason)
    };
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| refused(format!("bad method {:?}", request.method)))?;
    if let Some((name, _)) = request
        .headers
        .iter()
        .find(|(_, value)| crate::values::is_mask(value))
    {
        // The mask is what was kept instead of a --require-header secret: sent
        // as the value, it would fail the receiver's check for a reason no one sees.
        return Err(refused(format!(
            "{name} was masked when it was captured (a --require-header secret), so it is not sent: \
             give its value again (replay --header '{name}: VALUE', or edit it in the inspector)"
        )));
    }
    let mut outgoing = request_to(&url, method, request.body.clone()).map_err(refused)?;
    let headers = outgoing.headers_mut();
    for (name, value) in &request.headers {
        // The client writes the framing and the host of where the replay goes.
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            return Err(refused(format!("bad header name {name:?}")));
        };
        let written_here = name == HOST || name == http::header::CONTENT_LENGTH;
        if written_here || outgoing::is_hop_by_hop(name.as_str()) {
            continue;
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| refused(format!("bad value for header {name}")))?;
        headers.append(name, value);
    }
    headers.insert(REPLAY_MARK, HeaderValue::from(request.id));
    let started = Instant::now();
    let answer = sender
        .exchange(outgoing, max_response_body)
        .await
        .map_err(|failure| failed(failure.describe(&url, "--timeout")))?;
    if let Some(broken) = answer.broken {
        return Err(failed(broken));
    }
    Ok(Replayed {
        url: url.to_string(),
        status: answer.status.as_u16(),
        headers: answer
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&answer.body).into_owned(),
        truncated: answer.truncated,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_headers_replace_recorded_ones_of_any_case() {
        let line = r#"{"id":1,"method":"POST","path":"/","query":null,"headers":{"X-Token":"s3…(masked)","a":"1"},"body_encoding":"text","body":"x"}"#;
        let request = RecordedRequest::from_record_line(line)
            .unwrap()
            .with_headers(&[(
                http::HeaderName::from_static("x-token"),
                http::HeaderValue::from_static("s3cret"),
            )]);
        assert_eq!(
            request.headers,
            [
                ("a".to_owned(), "1".to_owned()),
                ("x-token".to_owned(), "s3cret".to_owned())
            ]
        );
    }

    #[test]
    fn record_lines_round_trip_exact_bodies() {
        let line = r#"{"id":3,"method":"POST","path":"/a","query":"x=1","headers":{"content-type":"application/json","host":"h"},"body_encoding":"json","body":{"a":1},"raw_body":"{ \"a\" : 1 }"}"#;
        let request = RecordedRequest::from_record_line(line).unwrap();
        assert_eq!(request.body, "{ \"a\" : 1 }");
        assert_eq!(request.query.as_deref(), Some("x=1"));
        let line = r#"{"id":4,"method":"PUT","path":"/b","query":null,"headers":{},"body_encoding":"base64","body":"//4="}"#;
        assert_eq!(
            RecordedRequest::from_record_line(line)
                .unwrap()
                .body
                .as_ref(),
            [0xff, 0xfe]
        );
        assert_eq!(
            RecordedRequest::from_record_line("{\"id\":1,\"meth"),
            Err(RecordLineError::NotJson)
        );
        let missing = RecordedRequest::from_record_line("{}").unwrap_err();
        assert!(
            matches!(&missing, RecordLineError::Malformed(why) if why.contains("missing field")),
            "{missing}"
        );
    }

    #[test]
    fn backoff_is_exponential_capped_and_jittered() {
        let policy = RetryPolicy::default();
        let mut rng = fastrand::Rng::with_seed(3);
        for (retry, nominal) in [
            (1u32, 1.0f64),
            (2, 2.0),
            (3, 4.0),
            (6, 32.0),
            (7, 60.0),
            (10, 60.0),
        ] {
            let delay = policy.delay(retry, &mut rng).as_secs_f64();
            assert!(
                delay >= nominal * 0.8 && delay <= nominal * 1.2,
                "retry {retry}: {delay}"
            );
        }
        let none = RetryPolicy {
            schedule: Schedule::Exponential {
                backoff: Duration::ZERO,
                max_backoff: Duration::from_secs(60),
            },
            ..policy
        };
        assert_eq!(none.delay(5, &mut rng), Duration::ZERO);
        assert_eq!(none.give_up_after(), None);
    }

    #[test]
    fn panthers_schedule_waits_whole_seconds_from_30_to_300_scaled() {
        let real = RetryPolicy {
            retries: 10,
            schedule: Schedule::Panther { time_scale: 1.0 },
            retry_all_errors: true,
        };
        let mut rng = fastrand::Rng::with_seed(11);
        let delays: Vec<Duration> = (1..=200).map(|retry| real.delay(retry, &mut rng)).collect();
        assert!(
            delays
                .iter()
                .all(|d| (30..300).contains(&d.as_secs()) && d.subsec_nanos() == 0)
        );
        assert!(
            delays.iter().any(|d| d.as_secs() < 60) && delays.iter().any(|d| d.as_secs() > 270)
        );
        assert_eq!(real.give_up_after(), Some(Duration::from_secs(1800)));
        let fast = RetryPolicy {
            schedule: Schedule::Panther { time_scale: 0.01 },
            ..real
        };
        let mut rng = fastrand::Rng::with_seed(11);
        let scaled = fast.delay(1, &mut rng);
        assert_eq!(scaled, delays[0].mul_f64(0.01), "the same draw, scaled");
        assert_eq!(fast.give_up_after(), Some(Duration::from_secs(18)));
    }

    #[test]
    fn headers_come_in_the_order_gos_client_writes_them() {
        let url: Url = "http://127.0.0.1:8081/panther".parse().unwrap();
        let mut set = HeaderMap::new();
        set.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        set.insert(ACCEPT, HeaderValue::from_static("application/json"));
        set.insert("x-hub-signature-256", HeaderValue::from_static("sha256=00"));
        set.insert("authorization", HeaderValue::from_static("Bearer t"));
        let agent = HeaderValue::from_static("Go-http-client/1.1");
        let names = |headers: &HeaderMap| {
            headers
                .iter()
                .map(|(name, _)| name.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        let headers = go_header_order(&url, &agent, 42, set.clone());
        assert_eq!(
            names(&headers),
            [
                "host",
                "user-agent",
                "content-length",
                "accept",
                "authorization",
                "content-type",
                "x-hub-signature-256",
                "accept-encoding"
            ]
        );
        assert_eq!(headers["host"], "127.0.0.1:8081");
        assert_eq!(headers["content-length"], "42");
        let https: Url = "https://example.com/x".parse().unwrap();
        set.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let headers = go_header_order(&https, &agent, 0, set);
        assert!(
            !headers.contains_key("host"),
            "over https hyper names the authority"
        );
        assert_eq!(headers["accept-encoding"], "identity");
        assert_eq!(names(&headers).last().unwrap(), "x-hub-signature-256");
    }

    #[test]
    fn messages_are_panthers() {
        assert_eq!(
            panther_message(http::StatusCode::SERVICE_UNAVAILABLE, "busy"),
            "request failed: 503 Service Unavailable: busy"
        );
        assert_eq!(panther_message(http::StatusCode::ACCEPTED, "ok"), "ok");
    }

    #[test]
    fn targets_keep_the_original_path_unless_one_is_given() {
        let request = RecordedRequest {
            id: 1,
            method: "POST".into(),
            path: "/alerts".into(),
            query: Some("a=b".into()),
            headers: vec![],
            body: Bytes::new(),
        };
        let base: Url = "http://127.0.0.1:9000".parse().unwrap();
        assert_eq!(
            request.target(&base).as_str(),
            "http://127.0.0.1:9000/alerts?a=b"
        );
        let full: Url = "http://127.0.0.1:9000/hook".parse().unwrap();
        assert_eq!(
            request.target(&full).as_str(),
            "http://127.0.0.1:9000/hook?a=b"
        );
    }
}

/// When the next attempt comes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Panther's (api/retry.go, deployments/core.yml): each retry after a uniform
    /// random whole number of seconds in [30, 300), for at most 30 minutes; every
    /// time multiplied by `time_scale` (0.01 makes it 0.3–3 s).
    Panther {
        /// Factor on every wait and on the 30-minute cap (1 is the real schedule).
        time_scale: f64,
    },
    /// `backoff`, doubled for each next retry up to `max_backoff`, ±20% jitter.
    Exponential {
        /// Wait before the first retry; zero for none.
        backoff: Duration,
        /// Longest wait.
        max_backoff: Duration,
    },
}

/// Panther's wait before a retry, at least (MinRetryDelay).
pub const PANTHER_MIN_RETRY_DELAY: Duration = Duration::from_secs(30);
/// Panther's wait before a retry, at most, exclusive (MaxRetryDelay).
pub const PANTHER_MAX_RETRY_DELAY: Duration = Duration::from_secs(300);
/// How long Panther retries a delivery (RetryDuration).
pub const PANTHER_RETRY_DURATION: Duration = Duration::from_secs(30 * 60);

/// How `hookscope send` retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (Panther: 10).
    pub retries: u32,
    /// When each retry comes.
    pub schedule: Schedule,
    /// Retry failures no retry can fix (an untrusted certificate, a host name that
    /// does not resolve) too, as Panther does.
    pub retry_all_errors: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 10,
            schedule: Schedule::Exponential {
                backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(60),
            },
            retry_all_errors: false,
        }
    }
}

impl RetryPolicy {
    /// Wait before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        match self.schedule {
            Schedule::Exponential { backoff, .. } if backoff.is_zero() => Duration::ZERO,
            Schedule::Exponential {
                backoff,
                max_backoff,
            } => backoff
                .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
                .min(max_backoff)
                .mul_f64(0.8 + rng.f64() * 0.4),
            Schedule::Panther { time_scale } => {
                // rand.Int63n(max-min) + min: whole seconds.
                let seconds =
                    rng.u64(PANTHER_MIN_RETRY_DELAY.as_secs()..PANTHER_MAX_RETRY_DELAY.as_secs());
                Duration::from_secs(seconds).mul_f64(time_scale)
            }
        }
    }

    /// How long after the first attempt no retry starts any more, if there is a limit.
    pub fn give_up_after(&self) -> Option<Duration> {
        match self.schedule {
            Schedule::Panther { time_scale } => Some(PANTHER_RETRY_DURATION.mul_f64(time_scale)),
            Schedule::Exponential { .. } => None,
        }
    }
}

/// One attempt of a delivery, as Panther's Alert Details page keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    /// 1 for the first attempt.
    pub number: u32,
    /// When it started.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The status received.
    pub status: Option<u16>,
    /// The error, when no status was received (connection refused, reset, timeout...).
    pub error: Option<String>,
    /// What Panther's delivery status says of it (outputs/post.go): the body of a
    /// 2XX, `request failed: 503 Service Unavailable: <body>`, or `network error: ...`.
    pub message: String,
    /// How long it took, in milliseconds.
    pub took_ms: f64,
    /// No answer came within the timeout (Panther: "Timeout: the upstream service did
    /// not respond back in time").
    pub timed_out: bool,
}

/// What [`deliver`] is doing, as it happens, for a live report.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// An attempt ended.
    Attempted(&'a AttemptReport),
    /// The next attempt starts after this delay.
    Waiting {
        /// Its number.
        next: u32,
        /// The most attempts there will be.
        of: u32,
        /// How long until it starts.
        delay: Duration,
    },
}

/// A failure that retrying will not change, so that `send` stops at once (Panther
/// retries it all the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Error)]
#[serde(rename_all = "snake_case")]
pub enum Unfixable {
    /// The receiver's certificate is not trusted.
    #[error("the receiver's certificate is not trusted")]
    UntrustedCertificate,
    /// The receiver's host name does not resolve.
    #[error("the receiver's host name does not resolve")]
    UnknownHost,
}

/// The message Panther keeps for an answer (outputs/post.go): the body of a 2XX,
/// otherwise `request failed: ` + Go's `response.Status` (`503 Service Unavailable`) + `: ` + body.
pub fn panther_message(status: http::StatusCode, body: &str) -> String {
    if status.is_success() {
        return body.to_owned();
    }
    let reason = status.canonical_reason().unwrap_or("status code");
    format!("request failed: {} {reason}: {body}", status.as_u16())
}

/// The delivery status of one alert.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryStatus {
    /// Where it went.
    pub url: String,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptReport>,
    /// Whether an attempt got a 2XX.
    pub delivered: bool,
    /// The last attempt's message, as Panther keeps it in the alert's delivery status.
    pub message: String,
    /// Retrying stopped at the schedule's time limit (Panther: 30 minutes), not its count.
    pub gave_up: bool,
    /// Why retrying stopped before the schedule did: a failure no retry can fix
    /// (an untrusted certificate, an unknown host), unless `retry_all_errors`.
    pub stopped: Option<Unfixable>,
    /// The body of the last response received, if any (at most the cap).
    pub response_body: Option<String>,
    /// Whether that body was longer than the cap (the rest was not read).
    pub response_body_truncated: bool,
}

/// Where and what [`deliver`] sends.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The receiver.
    pub url: Url,
    /// The `User-Agent` of every attempt (Panther's Go client: `Go-http-client/1.1`).
    pub user_agent: HeaderValue,
    /// The alert, as sent.
    pub body: Bytes,
    /// Extra headers on every attempt.
    pub headers: http::HeaderMap,
    /// Most bytes of a response body read (see [`DEFAULT_MAX_RESPONSE_BODY`]).
    pub max_response_body: usize,
    /// Keys each attempt is signed with (`--sign`).
    pub signers: Vec<crate::signature::Key>,
    /// The signed timestamp (unix seconds); `None` signs each attempt at its own time.
    pub sign_timestamp: Option<i64>,
    /// The Standard Webhooks message id every attempt carries; `None` draws one per
    /// delivery. Given, two deliveries are one message sent twice (a duplicate).
    pub message_id: Option<String>,
}

/// Delivers a body the way Panther's sender does: POST with JSON content type and
/// accept headers (plus the delivery's headers); any 2XX is success; a network failure or any
/// other status is retried up to `policy.retries` more times; `progress` hears of
/// each attempt as it ends and of each wait.
pub async fn deliver(
    sender: &Sender,
    delivery: &Delivery,
    policy: RetryPolicy,
    rng: &mut fastrand::Rng,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> DeliveryStatus {
    // One id for every attempt of the delivery, as Standard Webhooks asks (it is the
    // receiver's idempotency key); the timestamp is the attempt's own.
    let message_id = delivery
        .message_id
        .clone()
        .unwrap_or_else(|| format!("msg_{:016x}{:016x}", rng.u64(..), rng.u64(..)));
    let mut status = DeliveryStatus {
        url: delivery.url.to_string(),
        attempts: Vec::new(),
        delivered: false,
        message: String::new(),
        gave_up: false,
        stopped: None,
        response_body: None,
        response_body_truncated: false,
    };
    let first_attempt = Instant::now();
    for number in 1..=policy.retries.saturating_add(1) {
        if number > 1 {
            let delay = policy.delay(number - 1, rng);
            let too_late = policy
                .give_up_after()
                .is_some_and(|limit| first_attempt.elapsed() + delay > limit);
            if too_late {
                status.gave_up = true;
                break;
            }
            progress(Progress::Waiting {
                next: number,
                of: policy.retries.saturating_add(1),
                delay,
            });
            tokio::time::sleep(delay).await;
        }
        let (report, kind) = attempt(sender, delivery, number, &message_id, &mut status).await;
        status.message = report.message.clone();
        progress(Progress::Attempted(&report));
        status.attempts.push(report);
        if status.delivered {
            break;
        }
        let unfixable = match kind {
            Some(FailureKind::UntrustedCertificate) => Some(Unfixable::UntrustedCertificate),
            Some(FailureKind::UnknownHost) => Some(Unfixable::UnknownHost),
            _ => None,
        };
        if unfixable.is_some() && !policy.retry_all_errors {
            status.stopped = unfixable;
            break;
        }
    }
    status
}

/// One attempt: its report, and what kind of failure it was when no answer came.
async fn attempt(
    sender: &Sender,
    delivery: &Delivery,
    number: u32,
    message_id: &str,
    status: &mut DeliveryStatus,
) -> (AttemptReport, Option<FailureKind>) {
    let at = chrono::Utc::now();
    let started = Instant::now();
    let mut report = AttemptReport {
        number,
        at,
        status: None,
        error: None,
        message: String::new(),
        took_ms: 0.0,
        timed_out: false,
    };
    let url = &delivery.url;
    let mut request = match request_to(url, Method::POST, delivery.body.clone()) {
        Ok(request) => request,
        Err(error) => {
            report.message = format!("network error: Post \"{url}\": {error}");
            report.error = Some(error);
            return (report, Some(FailureKind::Network));
        }
    };
    let timestamp = delivery.sign_timestamp.unwrap_or_else(|| at.timestamp());
    *request.headers_mut() = attempt_headers(delivery, timestamp, message_id);
    let mut kind = None;
    match sender.exchange(request, delivery.max_response_body).await {
        Ok(answer) => {
            report.status = Some(answer.status.as_u16());
            let (body, truncated) =
                outgoing::gunzip_capped(&answer.headers, answer.body, delivery.max_response_body);
            let body = String::from_utf8_lossy(&body).into_owned();
            report.error = answer.broken;
            report.message = panther_message(answer.status, &body);
            status.response_body = Some(body);
            status.response_body_truncated = truncated || answer.truncated;
            status.delivered = answer.status.is_success();
        }
        Err(failure) => {
            let error = failure.describe(url, "--timeout");
            report.message = format!("network error: Post \"{url}\": {error}");
            report.error = Some(error);
            kind = Some(failure.kind());
            report.timed_out = kind == Some(FailureKind::TimedOut);
        }
    }
    report.took_ms = started.elapsed().as_secs_f64() * 1000.0;
    (report, kind)
}
