//! How hookscope answers: the configured [`Behaviour`] and the pure decision of
//! the [`Action`] for one request.

mod decide;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use thiserror::Error;

pub use decide::{decide, Action};

/// The answer configuration, as given by flags or by a test.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Status of every answer (default 200).
    pub status: StatusCode,
    /// Body of every answer (default `success`, as Panther's example server answers).
    pub body: Bytes,
    /// Headers added to every answer.
    pub headers: HeaderMap,
    /// How long each answer waits before it is sent.
    pub delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            status: StatusCode::OK,
            body: Bytes::from_static(b"success"),
            headers: HeaderMap::new(),
            delay: Duration::ZERO,
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
