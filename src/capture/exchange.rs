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
    /// The schema check, for POST requests whose body was read whole.
    pub verdict: Option<Verdict>,
    /// Which attempt of which alert this was.
    pub attempt: Option<Attempt>,
    /// Why it was refused before validation (`--require-header`), if it was.
    pub rejected: Option<String>,
    /// What was answered.
    pub reply: Reply,
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
    /// Not read: the bodies being read already filled `--max-inflight-bytes`, and
    /// an HTTP/2 stream cannot wait for room without stalling its connection; it
    /// was answered 503 with `Retry-After`, and its bytes were discarded.
    OverBudget,
}

/// The answer hookscope gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// What happened to the request.
    pub outcome: Outcome,
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
            verdict: None,
            attempt: None,
            rejected: Some(reason),
            reply: Reply {
                outcome: Outcome::Answered(status),
                body: Bytes::new(),
                took: Duration::ZERO,
            },
        }
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
        (FIXED + self.body.len() + self.reply.body.len() + text + headers) as u64
    }

    /// The size to report for the body: what was read, or what was declared when refused.
    pub fn body_size(&self) -> u64 {
        match self.body_state {
            BodyState::TooLarge { size } => size,
            _ => self.body.len() as u64,
        }
    }
}
