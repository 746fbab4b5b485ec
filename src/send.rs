//! Sending requests out: replaying captured requests, and delivering alerts the
//! way Panther's Custom Webhook sender does (`hookscope send`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use thiserror::Error;

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
        struct NameValue {
            name: Option<String>,
            value: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct PostData {
            text: Option<String>,
        }
        let entry: Entry = serde_json::from_str(entry.get())
            .map_err(|error| format!("entry {number}: {error}"))?;
        let request = entry
            .request
            .ok_or_else(|| format!("entry {number}: no request"))?;
        let url = request
            .url
            .ok_or_else(|| format!("entry {number}: no request.url"))?;
        let url = reqwest::Url::parse(&url)
            .map_err(|error| format!("entry {number}: request.url {url:?}: {error}"))?;
        let headers = request
            .headers
            .into_iter()
            .filter_map(|header| Some((header.name?, header.value?)))
            .collect();
        Ok(RecordedRequest {
            id: number as u64,
            method: request.method.unwrap_or_else(|| "GET".to_owned()),
            path: url.path().to_owned(),
            query: url.query().map(str::to_owned),
            headers,
            body: Bytes::from(
                request
                    .post_data
                    .and_then(|data| data.text)
                    .unwrap_or_default(),
            ),
        })
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
            headers: line.headers.clone().into_iter().collect(),
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
    pub fn target(&self, to: &reqwest::Url) -> reqwest::Url {
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

/// Default most bytes of a response body read: a receiver's answer is a short
/// text, and one that streams gigabytes must not be held in memory.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// Reads at most `max` bytes of a response body. Past that the rest is not read
/// (dropping the response closes the connection), and `true` says it was cut.
async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<(Bytes, bool), reqwest::Error> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        let room = max - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body.freeze(), true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), false))
}

/// A replay that got no HTTP answer.
#[derive(Debug, Error)]
#[error("replay to {url} failed: {reason}")]
pub struct ReplayError {
    /// The URL the request went to.
    pub url: String,
    /// What went wrong (connection refused, timeout...).
    pub reason: String,
}

/// The HTTP client used for replays: it adds no header of its own (no gzip).
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_gzip()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Sends a recorded request again: same method, path, headers (minus hop-by-hop ones) and body.
pub async fn replay(
    client: &reqwest::Client,
    request: &RecordedRequest,
    to: &reqwest::Url,
    max_response_body: usize,
) -> Result<Replayed, ReplayError> {
    let url = request.target(to);
    let failed = |reason: String| ReplayError {
        url: url.to_string(),
        reason,
    };
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| failed(format!("bad method {:?}", request.method)))?;
    let mut builder = client.request(method, url.clone());
    for (name, value) in &request.headers {
        // The client writes the framing and the host of where the replay goes.
        let name_lower = name.to_ascii_lowercase();
        let written_here = matches!(name_lower.as_str(), "host" | "content-length");
        if !written_here && !crate::values::HOP_BY_HOP.contains(&name_lower.as_str()) {
            builder = builder.header(name, value);
        }
    }
    let started = Instant::now();
    let response = builder
        .header(REPLAY_MARK, request.id)
        .body(request.body.clone())
        .send()
        .await
        .map_err(|error| failed(error_chain(&error)))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (body, truncated) = read_capped(response, max_response_body)
        .await
        .map_err(|error| failed(error_chain(&error)))?;
    Ok(Replayed {
        url: url.to_string(),
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        truncated,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// An error and its causes on one line ("error sending request: connection refused").
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    // reqwest wraps the cause a user needs in layers of its own ("error sending
    // request for url (…): client error (Connect): tcp connect error: …"): say
    // what happened in hookscope's words, with the innermost cause.
    if let Some(error) = error.downcast_ref::<reqwest::Error>() {
        return describe_request_error(error);
    }
    crate::values::error_with_causes(error)
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
        let base: reqwest::Url = "http://127.0.0.1:9000".parse().unwrap();
        assert_eq!(
            request.target(&base).as_str(),
            "http://127.0.0.1:9000/alerts?a=b"
        );
        let full: reqwest::Url = "http://127.0.0.1:9000/hook".parse().unwrap();
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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 10,
            schedule: Schedule::Exponential {
                backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(60),
            },
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

fn describe_request_error(error: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    let cause = innermost.to_string();
    let target = error
        .url()
        .and_then(|url| {
            Some(format!(
                "{}:{}",
                url.host_str()?,
                url.port_or_known_default()?
            ))
        })
        .unwrap_or_else(|| "the receiver".into());
    if error.is_timeout() {
        format!("no answer from {target} in time (--timeout)")
    } else if error.is_connect() {
        format!("cannot connect to {target}: {cause}")
    } else if error.is_body() || error.is_decode() {
        format!("the answer's body could not be read: {cause}")
    } else {
        format!("request to {target} failed: {cause}")
    }
}

/// Whether an error (as [`error_chain`] writes it) says the receiver's certificate
/// is not trusted: retrying will not help, a flag will.
pub fn is_untrusted_certificate(error: &str) -> bool {
    [
        "UnknownIssuer",
        "invalid peer certificate",
        "certificate verify failed",
    ]
    .iter()
    .any(|sign| error.contains(sign))
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
    /// The body of the last response received, if any (at most the cap).
    pub response_body: Option<String>,
    /// Whether that body was longer than the cap (the rest was not read).
    pub response_body_truncated: bool,
}

/// Why a sender could not be set up.
#[derive(Debug, Error)]
pub enum SendError {
    /// The CA file cannot be used.
    #[error("cannot use CA certificate {path}: {reason}")]
    CaCert {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// How HTTPS servers are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// Against the operating system's roots.
    SystemRoots,
    /// Against this CA certificate (PEM) only, as `curl --cacert` does.
    CaCert(std::path::PathBuf),
    /// Not at all.
    Insecure,
}

/// The HTTP client `hookscope send` uses.
pub fn sender_client(
    timeout: Duration,
    verify: &Verify,
    user_agent: &str,
) -> Result<reqwest::Client, SendError> {
    // Go's client asks for gzip and undoes it; so does this one (reqwest's gzip).
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .gzip(true)
        .user_agent(user_agent);
    match verify {
        Verify::SystemRoots => {}
        Verify::CaCert(path) => {
            let pem = std::fs::read(path).map_err(|error| SendError::CaCert {
                path: path.clone(),
                reason: error.to_string(),
            })?;
            let certificate =
                reqwest::Certificate::from_pem(&pem).map_err(|error| SendError::CaCert {
                    path: path.clone(),
                    reason: error_chain(&error),
                })?;
            builder = builder
                .tls_built_in_root_certs(false)
                .add_root_certificate(certificate);
        }
        Verify::Insecure => builder = builder.danger_accept_invalid_certs(true),
    }
    builder
        .build()
        .map_err(|error| SendError::Client(error_chain(&error)))
}

/// Where and what [`deliver`] sends.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The receiver.
    pub url: reqwest::Url,
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
}

/// Delivers a body the way Panther's sender does: POST with JSON content type and
/// accept headers (plus the delivery's headers); any 2XX is success; a network failure or any
/// other status is retried up to `policy.retries` more times; `progress` hears of
/// each attempt as it ends and of each wait.
pub async fn deliver(
    client: &reqwest::Client,
    delivery: &Delivery,
    policy: RetryPolicy,
    rng: &mut fastrand::Rng,
    progress: &mut dyn FnMut(Progress<'_>),
) -> DeliveryStatus {
    let Delivery {
        url,
        body,
        headers,
        max_response_body,
        signers,
        sign_timestamp,
    } = delivery;
    // One id for every attempt of the delivery, as Standard Webhooks asks (it is the
    // receiver's idempotency key); the timestamp is the attempt's own.
    let message_id = format!("msg_{:016x}{:016x}", rng.u64(..), rng.u64(..));
    let mut status = DeliveryStatus {
        url: url.to_string(),
        attempts: Vec::new(),
        delivered: false,
        message: String::new(),
        gave_up: false,
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
        let at = chrono::Utc::now();
        let started = Instant::now();
        let mut headers = headers.clone();
        for key in signers {
            let timestamp = sign_timestamp.unwrap_or_else(|| at.timestamp());
            for (name, value) in key.sign(body, timestamp, &message_id) {
                headers.insert(name, value);
            }
        }
        // Go's client writes Accept-Encoding: gzip and undoes it (so does this client).
        let sent = client
            .post(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::CONTENT_TYPE, "application/json")
            .headers(headers)
            .body(body.clone())
            .send()
            .await;
        let mut report = AttemptReport {
            number,
            at,
            status: None,
            error: None,
            message: String::new(),
            took_ms: 0.0,
        };
        match sent {
            Ok(response) => {
                let code = response.status();
                report.status = Some(code.as_u16());
                let body = match read_capped(response, *max_response_body).await {
                    Ok((bytes, truncated)) => {
                        let body = String::from_utf8_lossy(&bytes).into_owned();
                        status.response_body = Some(body.clone());
                        status.response_body_truncated = truncated;
                        body
                    }
                    Err(error) => {
                        report.error = Some(error_chain(&error));
                        String::new()
                    }
                };
                report.message = panther_message(code, &body);
                status.delivered = code.is_success();
            }
            Err(error) => {
                let error = error_chain(&error);
                report.message = format!("network error: Post \"{url}\": {error}");
                report.error = Some(error);
            }
        }
        status.message = report.message.clone();
        report.took_ms = started.elapsed().as_secs_f64() * 1000.0;
        progress(Progress::Attempted(&report));
        status.attempts.push(report);
        if status.delivered {
            break;
        }
    }
    status
}
