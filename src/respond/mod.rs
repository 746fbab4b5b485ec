//! How hookscope answers: the configured [`Behaviour`] and the pure decision of
//! the [`Action`] for one request.

mod auth;
mod decide;
mod script;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use thiserror::Error;

pub use auth::{authorize, mask};
pub use decide::{decide, Action, RequestFacts, ScriptState};
pub use script::{Item, Route, Script, ScriptError, Step};

/// The answer configuration, as given by flags or by a test.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Status of every answer (default 200).
    pub status: StatusCode,
    /// Body of every answer (default `success`, as Panther's example server answers).
    pub body: Bytes,
    /// Headers added to every answer.
    pub headers: HeaderMap,
    /// How long each answer waits before it is sent (a script item's `@delay` overrides it).
    pub delay: Duration,
    /// Sequence of answers for paths no route covers; `None`: always `status`.
    pub script: Option<Script>,
    /// Paths with their own script; the longest matching prefix wins.
    pub routes: Vec<Route>,
    /// Whether each alert walks its own copy of a script, or all requests share one.
    pub scope: ScriptScope,
    /// Fraction (0 to 1) of requests answered `fail_status` at random.
    pub fail_rate: f64,
    /// Status of the random failures.
    pub fail_status: StatusCode,
    /// Answer 400 with the problems to a POST whose body is not a valid alert.
    pub strict: bool,
    /// Headers a request must carry with exactly these values, or get 401.
    pub required_headers: Vec<(HeaderName, HeaderValue)>,
}

/// Whose position in a script a request advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScriptScope {
    /// Each alert (by `alertId`, else `id`, else body hash) has its own position,
    /// so every alert's retries see the whole script however deliveries interleave.
    #[default]
    PerAlert,
    /// One position shared by every request.
    Global,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            status: StatusCode::OK,
            body: Bytes::from_static(b"success"),
            headers: HeaderMap::new(),
            delay: Duration::ZERO,
            script: None,
            routes: Vec::new(),
            scope: ScriptScope::PerAlert,
            fail_rate: 0.0,
            fail_status: StatusCode::INTERNAL_SERVER_ERROR,
            strict: false,
            required_headers: Vec::new(),
        }
    }
}

/// A value given for an answer setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BehaviourError {
    /// Not a status code an HTTP answer can carry.
    #[error("status must be a number from 100 to 599, got {0:?}")]
    Status(String),
    /// Not of the form `Name: value`, or not a legal header.
    #[error("header must look like 'Name: value', got {given:?}: {reason}")]
    Header {
        /// The text as given.
        given: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Parses a status code for an answer: 100 to 599.
pub fn parse_status(text: &str) -> Result<StatusCode, BehaviourError> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|code| (100..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| BehaviourError::Status(text.into()))
}

/// Parses a failure rate: a fraction from 0 to 1.
pub fn parse_fail_rate(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|rate| (0.0..=1.0).contains(rate))
        .ok_or_else(|| format!("expected a fraction from 0 to 1 (e.g. 0.2), got {text:?}"))
}

/// Parses a header given as `Name: value`.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), BehaviourError> {
    let error = |reason| BehaviourError::Header {
        given: text.into(),
        reason,
    };
    let (name, value) = text.split_once(':').ok_or_else(|| error("no ':'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| error("the name is not a valid header name"))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| error("the value has characters a header cannot carry"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_in_range_only() {
        assert_eq!(parse_status("200"), Ok(StatusCode::OK));
        assert_eq!(parse_status("599").unwrap().as_u16(), 599);
        for bad in ["99", "600", "1000", "abc", "", "-1", "200.0"] {
            assert!(parse_status(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_need_a_colon_and_legal_parts() {
        let (name, value) = parse_header("X-Trace:  abc ").unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-trace", "abc"));
        let (_, value) = parse_header("Link: <http://a>; rel=x").unwrap();
        assert_eq!(value, "<http://a>; rel=x");
        assert!(parse_header("NoColon").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert!(parse_header(": x").is_err());
        assert!(parse_header("X-A: a\nb").is_err());
    }
}
