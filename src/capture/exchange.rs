//! One request and the answer it got.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};

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
    pub method: String,
    /// Request path, as sent (still percent-encoded).
    pub path: String,
    /// Query string without the `?`, if any.
    pub query: Option<String>,
    /// HTTP version, e.g. `HTTP/1.1`.
    pub version: String,
    /// Request headers in arrival order; values that are not UTF-8 are decoded lossily.
    pub headers: Vec<(String, String)>,
    /// The body bytes that were read (all of them unless `body_state` says otherwise).
    pub body: Bytes,
    /// Whether the whole body was read.
    pub body_state: BodyState,
    /// The schema check, for POST requests whose body was read whole.
    pub verdict: Option<Verdict>,
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
}

/// The answer hookscope gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Status sent; `None` when no answer could be sent.
    pub status: Option<u16>,
    /// Body sent.
    pub body: Bytes,
    /// From the request head arriving to the answer being handed to the connection.
    pub took: Duration,
}

impl Exchange {
    /// The size to report for the body: what was read, or what was declared when refused.
    pub fn body_size(&self) -> u64 {
        match self.body_state {
            BodyState::TooLarge { size } => size,
            _ => self.body.len() as u64,
        }
    }
}
