//! One request and the answer it got.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::Attempt;
use crate::alert::Verdict;

/// Everything hookscope knows about one request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Sequence number, from 1, in the order requests arrived.
    pub id: u64,
    /// When the request head arrived.
    pub received_at: DateTime<Utc>,
    /// The client's address (for a tunnel, the tunnel agent's).
    pub peer: SocketAddr,
    /// Request method, as sent.
    pub method: http::Method,
    /// Request path, as sent (still percent-encoded).
    pub path: String,
    /// Query string without the `?`, if any.
    pub query: Option<String>,
    /// HTTP version: `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub version: &'static str,
    /// Request headers as received (the values of `--require-header` secrets masked).
    pub headers: http::HeaderMap,
    /// The body bytes that were read (all of them unless `body_state` says otherwise).
    pub body: Bytes,
    /// Whether the whole body was read.
    pub body_state: BodyState,
    /// Bytes of memory the kept body holds, when more than its length: a large body
    /// that arrived in one piece is kept in the buffer it was read into rather than
    /// copied, and `--keep-bytes` counts that buffer (0: just the body).
    pub body_held: usize,
    /// The schema check, for POST requests whose body was read whole.
    pub verdict: Option<Verdict>,
    /// The schema the verdict comes from, when it is not Panther's (`--schema`):
    /// `none` or the schema file's name.
    pub schema: Option<std::sync::Arc<str>>,
    /// The signature check (`--verify`), for a body read whole.
    pub signature: Option<crate::signature::SignatureVerdict>,
    /// Which attempt of which alert this was.
    pub attempt: Option<Attempt>,
    /// Why it was refused before validation (`--require-header`), if it was.
    pub rejected: Option<String>,
    /// What was answered.
    pub reply: Reply,
    /// The request sent on to `--forward` and what came back, if it was forwarded.
    pub upstream: Option<UpstreamLeg>,
}

/// The forwarded leg of an exchange (`--forward`): where the request went on to and
/// what the developer's own receiver answered, or why it could not.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamLeg {
    /// The URL the request was sent to (the forward URL's prefix, then the path and query).
    pub url: String,
    /// The upstream's status, if it answered.
    pub status: Option<u16>,
    /// Its HTTP version, e.g. `HTTP/1.1` or `HTTP/2.0`, if it answered.
    pub version: Option<&'static str>,
    /// Its answer's headers.
    pub headers: http::HeaderMap,
    /// The first bytes of its answer's body, at most `--max-body` of them.
    pub body: Bytes,
    /// Whether the body was longer than what was kept (the sender still got all of it).
    pub truncated: bool,
    /// From sending the request to the upstream's answer head.
    pub first_byte: Option<Duration>,
    /// From sending the request to the end of the kept body (or to the failure).
    pub took: Duration,
    /// Why there is no answer (or only part of one): connection refused, a timeout...
    pub error: Option<String>,
    /// Whether the failure was the upstream not answering in time (`--forward-timeout`).
    pub timed_out: bool,
}

/// What an upstream answered, in a word: its status, `timeout` or `error` (for a
/// leg as captured and as a record line keeps it).
pub(crate) fn upstream_label(status: Option<u16>, failed: bool, timed_out: bool) -> String {
    match (status, failed) {
        (Some(status), false) => status.to_string(),
        (_, true) if timed_out => "timeout".into(),
        _ => "error".into(),
    }
}

impl UpstreamLeg {
    /// The upstream's status, or `error`: the label the stats count.
    pub fn label(&self) -> String {
        upstream_label(self.status, self.error.is_some(), self.timed_out)
    }

    /// Whether the upstream answered with a 2XX: it has the alert.
    pub fn acknowledged(&self) -> bool {
        self.error.is_none()
            && self
                .status
                .is_some_and(|status| (200..300).contains(&status))
    }
}

/// How much of a body hookscope read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyState {
    /// All of it.
    Complete,
    /// The sender declared or sent more than `--max-body`; reading stopped.
    TooLarge {
        /// The declared length, or the bytes seen before stopping.
        size: u64,
    },
    /// The connection failed before the body ended.
    Interrupted,
    /// The body's framing is broken (a chunk size that is not hex or overflows): it was
    /// answered 400 and the connection closed.
    Malformed,
    /// Not read: the bodies held already filled `--max-inflight-bytes` and no room
    /// came within half a second, or this was the slowest body when room was short; it
    /// was answered 503 with `Retry-After`, and its bytes were discarded.
    OverBudget,
    /// Not read: no byte came for `--header-read-timeout`, or the whole body took
    /// longer than `--body-timeout`; it was answered 408 and its bytes were discarded.
    Stalled,
}

/// The answer hookscope gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// What happened to the request.
    pub outcome: Outcome,
    /// The answer's headers as hookscope handed them to the connection (the framing,
    /// `content-length` or `transfer-encoding`, and `date` are the HTTP layer's).
    pub headers: http::HeaderMap,
    /// Body sent.
    pub body: Bytes,
    /// From the request head arriving to the answer being handed to the connection.
    pub took: Duration,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status was sent.
    Answered(u16),
    /// The connection was closed without an answer (script step `drop`).
    Dropped,
    /// The connection was reset (script step `reset`).
    Reset,
    /// No answer was ever sent (script step `hang`) until the client or hookscope gave up.
    Hung,
    /// The client went away before the answer was ready.
    ClientGone,
}

impl Outcome {
    /// The status sent, if an answer was sent.
    pub fn status(self) -> Option<u16> {
        match self {
            Outcome::Answered(status) => Some(status),
            _ => None,
        }
    }

    /// A short label: the status code, or what happened instead.
    pub fn label(self) -> String {
        self.with_label(str::to_owned)
    }

    /// Hands the label to `use_label` without allocating it.
    pub(crate) fn with_label<R>(self, use_label: impl FnOnce(&str) -> R) -> R {
        match self {
            Outcome::Answered(status) => use_label(itoa::Buffer::new().format(status)),
            Outcome::Dropped => use_label("dropped"),
            Outcome::Reset => use_label("reset"),
            Outcome::Hung => use_label("hung"),
            Outcome::ClientGone => use_label("client-gone"),
        }
    }
}

/// The method shown for a request whose head could not be read (see
/// [`Exchange::unreadable_head`]).
pub const UNREADABLE_METHOD: &str = "-";

impl Exchange {
    /// A request refused by the HTTP parser before hookscope saw it (not HTTP, a head
    /// too large, a bad header...): only the peer, why, and the answer the parser
    /// gave are known. The method is [`UNREADABLE_METHOD`], the path empty.
    pub fn unreadable_head(id: u64, peer: SocketAddr, status: u16, reason: String) -> Exchange {
        Exchange {
            id,
            received_at: Utc::now(),
            peer,
            method: http::Method::from_bytes(UNREADABLE_METHOD.as_bytes()).unwrap_or_default(),
            path: String::new(),
            query: None,
            version: "HTTP/1.1",
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
            body_state: BodyState::Complete,
            body_held: 0,
            verdict: None,
            schema: None,
            signature: None,
            attempt: None,
            rejected: Some(reason),
            reply: Reply {
                outcome: Outcome::Answered(status),
                headers: http::HeaderMap::new(),
                body: Bytes::new(),
                took: Duration::ZERO,
            },
            upstream: None,
        }
    }

    /// A request known from elsewhere than the wire (a record line, a HAR entry),
    /// answered `status`: its method, path, query, the headers that are valid, its
    /// body; the peer is unknown (0.0.0.0:0).
    pub fn of_request<'a>(
        id: u64,
        (method, path, query): (http::Method, String, Option<String>),
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: Bytes,
        status: u16,
    ) -> Exchange {
        let mut exchange = Exchange::unreadable_head(
            id,
            SocketAddr::from(([0, 0, 0, 0], 0)),
            status,
            String::new(),
        );
        exchange.rejected = None;
        exchange.method = method;
        exchange.path = path;
        exchange.query = query;
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                exchange.headers.append(name, value);
            }
        }
        exchange.body = body;
        exchange
    }

    /// A POST of `body` to `path` from 127.0.0.1:1, answered `status`: the one
    /// exchange the unit tests build (each then sets what it is about).
    #[cfg(test)]
    pub(crate) fn posted(id: u64, path: &str, status: u16, body: &[u8]) -> Exchange {
        let mut exchange = Exchange::of_request(
            id,
            (http::Method::POST, path.into(), None),
            [],
            Bytes::copy_from_slice(body),
            status,
        );
        exchange.peer = SocketAddr::from(([127, 0, 0, 1], 1));
        exchange
    }

    /// Whether this is a request whose head could not be read ([`Exchange::unreadable_head`]).
    pub fn is_unreadable_head(&self) -> bool {
        self.method.as_str() == UNREADABLE_METHOD
    }

    /// The body as a Panther [`Alert`](crate::Alert), if it deserialises as one
    /// (check [`verdict`](Exchange::verdict) for whether it is a *valid* one).
    pub fn alert(&self) -> Option<crate::Alert> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as text (lossy for bytes that are not UTF-8).
    pub fn body_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// Where the request claims to come from, by its `X-Forwarded-For` or `Forwarded`
    /// header (set by a tunnel or proxy, or by anyone: it is shown as a claim, and
    /// never used for a decision). The first address of the chain, the original client.
    pub fn claimed_origin(&self) -> Option<&str> {
        let from_xff = || {
            let value = self.header("x-forwarded-for")?;
            value
                .split(',')
                .map(str::trim)
                .find(|part| !part.is_empty())
        };
        let from_forwarded = || {
            let value = self.header("forwarded")?;
            value
                .split([',', ';'])
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .map(|(_, value)| value.trim().trim_matches('"'))
                .filter(|value| !value.is_empty())
        };
        from_xff().or_else(from_forwarded)
    }

    /// The first value of a request header, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Every header as text (values that are not UTF-8 decoded lossily), in order.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&str, std::borrow::Cow<'_, str>)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), String::from_utf8_lossy(value.as_bytes())))
    }

    /// `valid`, `invalid`, or `none` (not a POST, or the body was not read).
    pub fn verdict_label(&self) -> &'static str {
        match &self.verdict {
            Some(verdict) if verdict.is_valid() => "valid",
            Some(_) => "invalid",
            None => "none",
        }
    }

    /// Roughly the memory this exchange holds while it is kept: body, answer,
    /// path, query and headers, plus a fixed allowance for the rest.
    pub fn retained_size(&self) -> u64 {
        const FIXED: usize = 512;
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        let text = self.path.len() + self.query.as_ref().map_or(0, String::len);
        let upstream = self.upstream.as_ref().map_or(0, |leg| {
            let headers: usize = leg
                .headers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len())
                .sum();
            FIXED + leg.url.len() + headers + leg.body.len()
        });
        // Problems are capped (`alert::MAX_PROBLEMS`) and keys bounded
        // (`alert::MAX_KEY_LEN`), but both still count.
        let problems: usize = self.verdict.as_ref().map_or(0, |verdict| {
            verdict
                .problems
                .iter()
                .chain(&verdict.warnings)
                .map(|problem| {
                    FIXED / 8 + problem.pointer.len() + problem.expected.len() + problem.found.len()
                })
                .sum()
        });
        let key = self.attempt.as_ref().map_or(0, |attempt| {
            attempt.key.value.len() + attempt.route.as_ref().map_or(0, String::len)
        });
        (FIXED
            + problems
            + key
            + self.body.len().max(self.body_held)
            + self.reply.body.len()
            + text
            + headers
            + upstream) as u64
    }

    /// The size to report for the body: what was read, or what was declared when refused.
    pub fn body_size(&self) -> u64 {
        match self.body_state {
            BodyState::TooLarge { size } => size,
            _ => self.body.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_kept_in_a_larger_buffer_is_counted_at_the_buffer_size() {
        let mut exchange =
            Exchange::unreadable_head(1, "127.0.0.1:1".parse().unwrap(), 400, "x".into());
        exchange.body = Bytes::from(vec![b'x'; 40_000]);
        let copied = exchange.retained_size();
        assert!(copied >= 40_000);
        exchange.body_held = 65_536;
        assert_eq!(exchange.retained_size() - copied, 65_536 - 40_000);
        exchange.body_held = 10;
        assert_eq!(exchange.retained_size(), copied, "never less than the body");
    }
}
