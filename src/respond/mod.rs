//! How hookscope answers: the configured [`Behaviour`] and the pure decision of
//! the [`Action`] for one request.

mod auth;
mod decide;
mod script;
mod template;

use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Parser, ValueEnum};
use http::{HeaderName, HeaderValue, StatusCode};

pub use auth::{Unauthorized, authorize, mask};
pub use decide::{Action, Answer, RequestFacts, ScriptState, decide, global_script_route};
pub use script::{Instead, Item, Route, Script, ScriptError, Step, route_for};
pub use template::{AnswerTemplates, RequestContext, TemplateError};

use crate::values::{
    parse_answer_header, parse_body, parse_duration, parse_fail_rate, parse_http_url, parse_status,
};

/// The answer configuration. The same struct is the flags of `hookscope listen`
/// (each field's doc is its `--help` line), the builder's settings and what the
/// admin API shows and changes: its defaults are written once, on the flags.
#[derive(Debug, Clone, Args)]
pub struct Behaviour {
    /// Status of every answer (100-599). Not with --forward, where your receiver answers
    /// (a script step gives a status in front of it: --script '503*2,forward').
    #[arg(long, default_value = "200", value_parser = parse_status, value_name = "CODE", conflicts_with = "forward")]
    pub status: StatusCode,

    /// Body of every answer made from a status (--status, a script or route step, --fail-rate);
    /// Panther keeps it in the alert's delivery status. Without it, a 2XX says `success` and any
    /// other status its reason phrase (`Service Unavailable`). A body that is JSON is sent as
    /// application/json, unless a --header sets Content-Type. It may be a template over the
    /// request: '{"received":"{{ body.alertId }}","attempt":{{ attempt }}}'.
    #[arg(long, value_parser = parse_body, value_name = "TEXT")]
    pub body: Option<Bytes>,

    /// Header added to every answer, as 'Name: value' (repeatable); not the ones that frame
    /// the answer (Content-Length, Transfer-Encoding, Connection...), which hookscope writes.
    /// The value may be a template, as --body's: 'X-Attempt: {{ attempt }}'.
    #[arg(long = "header", value_parser = parse_answer_header, value_name = "'NAME: VALUE'")]
    pub headers: Vec<(HeaderName, HeaderValue)>,

    /// How long each answer waits before it is sent, e.g. 250ms, 2s, 1m.
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub delay: Duration,

    /// Sequence of answers, e.g. '503*3,200' or '500,drop,reset,hang,200@2s'; the last repeats.
    #[arg(long, value_name = "SPEC")]
    pub script: Option<Script>,

    /// Whose position in the script a request advances: each alert's own, or one shared.
    #[arg(long = "script-scope", value_enum, default_value_t = ScriptScope::PerAlert, value_name = "SCOPE")]
    pub scope: ScriptScope,

    /// A path prefix with its own script, e.g. '/flaky=500*2,200' (repeatable; longest prefix wins).
    #[arg(long = "route", value_name = "PATH=SPEC")]
    pub routes: Vec<Route>,

    /// Fraction of requests (0 to 1) answered --fail-status at random.
    #[arg(long, default_value = "0", value_parser = parse_fail_rate, value_name = "RATE")]
    pub fail_rate: f64,

    /// Status of the random failures.
    #[arg(long, default_value = "500", value_parser = parse_status, value_name = "CODE")]
    pub fail_status: StatusCode,

    /// Answer 400 with the problems (JSON) to a POST that is not a valid alert.
    #[arg(long)]
    pub strict: bool,

    /// Send each request on to your own receiver at URL (http or https; a path in it is a
    /// prefix) and pass its answer back. Faults still decide first: the script step
    /// `forward` is the default, and 'forward>503' forwards but tells the sender 503.
    #[arg(help_heading = "Forwarding", long, value_parser = parse_http_url, value_name = "URL")]
    pub forward: Option<url::Url>,

    /// Check each request's signature: SCHEME:SECRET with SCHEME one of standard-webhooks, github,
    /// stripe, slack, shopify, hmac-sha256/HEADER[/hex|base64[/PREFIX]], and SECRET the secret,
    /// env:NAME or file:PATH (repeatable). The result is shown with each request, never the secret.
    #[arg(
        help_heading = "TLS and auth",
        long = "verify",
        value_parser = crate::signature::KeyParser::for_verifying(),
        value_name = "SCHEME:SECRET"
    )]
    pub verify: Vec<crate::signature::Key>,

    /// How far a signed timestamp may be from the clock (replays).
    #[arg(help_heading = "TLS and auth", long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub verify_tolerance: Duration,

    /// Answer 401 to a request whose signature (--verify) is missing, wrong or outside the
    /// tolerance (--strict does too).
    #[arg(help_heading = "TLS and auth", long, requires = "verify")]
    pub require_signature: bool,

    /// The compiled templates among --body and --header, set by [`Behaviour::prepare`].
    #[arg(skip)]
    pub templates: Option<AnswerTemplates>,

    /// Refuse with 401 any request without this header and value, as 'Name: value' (repeatable).
    /// The value is compared in constant time and never printed.
    /// An empty value is refused (an unset variable?) unless written 'Name: ""'.
    #[arg(help_heading = "TLS and auth", long = "require-header", value_parser = crate::values::RequiredHeaderParser, value_name = "'NAME: VALUE'")]
    pub required_headers: Vec<(HeaderName, HeaderValue)>,
}

/// Why a behaviour cannot answer (see [`Behaviour::prepare`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BehaviourError {
    /// A header hookscope writes itself.
    #[error(transparent)]
    Header(#[from] crate::values::ValueError),
    /// A script or route has a `forward` step, but there is no forward URL.
    #[error("{0}")]
    ForwardWithoutTarget(ScriptError),
    /// A `--body` or `--header` template that does not parse.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A forward URL set while running on a receiver started without one: it has no
    /// upstream client, nor the start-up check of where the URL leads.
    #[error(
        "a forward URL cannot be set on a receiver started without one: start it with --forward \
         (or ServerBuilder::forward), then change the URL at will"
    )]
    ForwardNotStarted,
}

/// Whose position in a script a request advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ScriptScope {
    /// Each alert (by `alertId`, else `id`, else body hash) has its own position,
    /// so every alert's retries see the whole script however deliveries interleave.
    #[default]
    PerAlert,
    /// One position shared by every request.
    Global,
}

impl ScriptScope {
    /// The name flags and the admin API use.
    pub fn name(self) -> &'static str {
        match self {
            ScriptScope::PerAlert => "per-alert",
            ScriptScope::Global => "global",
        }
    }
}

impl Behaviour {
    /// The body of an answer with this status: `body`, or without one `success` for
    /// a 2XX (as Panther's example server answers) and the reason phrase otherwise.
    pub fn body_for(&self, status: StatusCode) -> Bytes {
        match &self.body {
            Some(body) => body.clone(),
            None if status.is_success() => Bytes::from_static(b"success"),
            None => Bytes::from_static(status.canonical_reason().unwrap_or("error").as_bytes()),
        }
    }

    /// Makes this behaviour ready to answer with: refuses what does not hold together
    /// (a header that frames the answer, a `forward` step without a forward URL) and
    /// compiles the templates among `body` and the header values. Every path that sets
    /// a behaviour goes through it (start-up, `PUT /api/config`,
    /// `Handle::set_behaviour` and `update_behaviour`), so that what answers is never
    /// a template compiled for another body, nor one left uncompiled.
    pub fn prepare(&mut self) -> Result<(), BehaviourError> {
        for (name, _) in &self.headers {
            crate::values::check_answer_header(name)?;
        }
        self.forward_steps_have_a_target()
            .map_err(BehaviourError::ForwardWithoutTarget)?;
        self.templates = AnswerTemplates::compile(self.body.as_ref(), &self.headers)?;
        Ok(())
    }

    /// Refuses a `forward` step in the script or a route when there is no `--forward`
    /// URL, pointing at the step.
    pub fn forward_steps_have_a_target(&self) -> Result<(), ScriptError> {
        if self.forward.is_some() {
            return Ok(());
        }
        let message = "'forward' needs --forward URL: where should the request go?".to_owned();
        if let Some(script) = &self.script {
            if let Some(position) = script.forward_position() {
                return Err(ScriptError {
                    what: "script",
                    text: script.to_string(),
                    position,
                    message,
                });
            }
        }
        for route in &self.routes {
            if let Some(position) = route.script.forward_position() {
                return Err(ScriptError {
                    what: "route",
                    text: format!("{}={}", route.prefix, route.script),
                    position: position + route.prefix.chars().count() + 1,
                    message,
                });
            }
        }
        Ok(())
    }

    /// The answer headers as a map, for one response.
    pub fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            map.append(name.clone(), value.clone());
        }
        map
    }
}

impl Default for Behaviour {
    /// The defaults of the flags: 200 `success`, as Panther's example server answers.
    fn default() -> Self {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            behaviour: Behaviour,
        }
        Defaults::parse_from(["hookscope"]).behaviour
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_flags_defaults() {
        let behaviour = Behaviour::default();
        assert_eq!(behaviour.status, StatusCode::OK);
        assert_eq!(behaviour.body_for(StatusCode::OK), "success");
        assert_eq!(
            behaviour.body_for(StatusCode::SERVICE_UNAVAILABLE),
            "Service Unavailable"
        );
        assert_eq!(behaviour.fail_status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(behaviour.scope, ScriptScope::PerAlert);
        assert!(behaviour.script.is_none() && behaviour.headers.is_empty());
    }
}
