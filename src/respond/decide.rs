//! The decision of what to answer, kept free of I/O so it can be tested alone.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::Behaviour;

/// What to do with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer with this status, headers and body, after waiting `delay`.
    Respond {
        /// Status to send.
        status: StatusCode,
        /// Headers to add.
        headers: HeaderMap,
        /// Body to send.
        body: Bytes,
        /// Wait before answering.
        delay: Duration,
    },
}

/// Chooses the answer for one request from the behaviour.
pub fn decide(behaviour: &Behaviour) -> Action {
    Action::Respond {
        status: behaviour.status,
        headers: behaviour.headers.clone(),
        body: behaviour.body.clone(),
        delay: behaviour.delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_behaviour_acknowledges_like_panthers_example() {
        let Action::Respond {
            status,
            body,
            delay,
            ..
        } = decide(&Behaviour::default());
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "success");
        assert_eq!(delay, Duration::ZERO);
    }
}
