//! The answer behaviour as the admin API shows and takes it (`/api/config`).

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::respond::{Behaviour, Route, Script, ScriptScope};
use crate::values::{fail_rate, parse_answer_header, parse_duration, status_from_u16};
use clap::ValueEnum as _;

/// The behaviour in JSON-friendly form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigView {
    status: u16,
    body: Option<String>,
    headers: Vec<String>,
    delay: String,
    script: Option<String>,
    script_scope: &'static str,
    routes: Vec<String>,
    fail_rate: f64,
    fail_status: u16,
    strict: bool,
    /// `--forward` (not changed through the API): where requests go on to, and
    /// where a replay goes by default.
    forward: Option<String>,
}

impl From<&Behaviour> for ConfigView {
    fn from(behaviour: &Behaviour) -> Self {
        ConfigView {
            status: behaviour.status.as_u16(),
            body: behaviour
                .body
                .as_ref()
                .map(|body| String::from_utf8_lossy(body).into_owned()),
            headers: behaviour
                .headers
                .iter()
                .map(|(name, value)| {
                    format!("{name}: {}", String::from_utf8_lossy(value.as_bytes()))
                })
                .collect(),
            delay: humantime::format_duration(behaviour.delay).to_string(),
            script: behaviour.script.as_ref().map(|s| s.as_str().to_owned()),
            script_scope: behaviour.scope.name(),
            routes: behaviour
                .routes
                .iter()
                .map(|route| format!("{}={}", route.prefix, route.script))
                .collect(),
            fail_rate: behaviour.fail_rate,
            fail_status: behaviour.fail_status.as_u16(),
            strict: behaviour.strict,
            forward: behaviour.forward.as_ref().map(ToString::to_string),
        }
    }
}

/// A change to the behaviour: only the fields given are changed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    status: Option<u16>,
    /// `null` goes back to the default body.
    #[serde(default, deserialize_with = "present")]
    body: Option<Option<String>>,
    headers: Option<Vec<String>>,
    delay: Option<String>,
    /// `null` removes the script.
    #[serde(default, deserialize_with = "present")]
    script: Option<Option<String>>,
    script_scope: Option<String>,
    routes: Option<Vec<String>>,
    fail_rate: Option<f64>,
    fail_status: Option<u16>,
    strict: Option<bool>,
}

/// Tells `null` (Some(None)) apart from an absent field (None).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

impl ConfigPatch {
    /// The behaviour with this change applied, or why the change is refused.
    pub fn apply(self, current: &Behaviour) -> Result<Behaviour, String> {
        let mut next = current.clone();
        if let Some(status) = self.status {
            next.status = status_from(status, "status")?;
        }
        if let Some(body) = self.body {
            next.body = body.map(Bytes::from);
        }
        if let Some(headers) = self.headers {
            next.headers = headers
                .iter()
                .map(|header| parse_answer_header(header).map_err(|error| error.to_string()))
                .collect::<Result<_, _>>()?;
        }
        if let Some(delay) = self.delay {
            next.delay = parse_duration(&delay).map_err(|error| format!("delay: {error}"))?;
        }
        if let Some(script) = self.script {
            next.script = match script {
                Some(text) => Some(text.parse::<Script>().map_err(|error| error.to_string())?),
                None => None,
            };
        }
        if let Some(scope) = self.script_scope {
            next.scope = ScriptScope::from_str(&scope, false)
                .map_err(|_| format!("script_scope must be per-alert or global, got {scope:?}"))?;
        }
        if let Some(routes) = self.routes {
            next.routes = routes
                .iter()
                .map(|route| route.parse::<Route>().map_err(|error| error.to_string()))
                .collect::<Result<_, _>>()?;
        }
        if let Some(rate) = self.fail_rate {
            next.fail_rate = fail_rate(rate).map_err(|error| format!("fail_rate: {error}"))?;
        }
        if let Some(status) = self.fail_status {
            next.fail_status = status_from(status, "fail_status")?;
        }
        if let Some(strict) = self.strict {
            next.strict = strict;
        }
        let new_status = self
            .status
            .filter(|status| *status != current.status.as_u16());
        if let (Some(status), Some(script)) = (new_status, &next.script) {
            // Accepted and echoed back, it would look set while changing nothing (the
            // inspector's form sends the status unchanged with every save).
            return Err(format!(
                "status {status} would have no effect: the script ({}) decides every answer; \
                 send \"script\": null with it to answer {status}, or change the script",
                script.as_str()
            ));
        }
        Ok(next)
    }
}

fn status_from(code: u16, field: &str) -> Result<StatusCode, String> {
    status_from_u16(code).map_err(|error| format!("{field}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A patch applied and prepared, as `PUT /api/config` does (through `Shared`).
    fn patch(json: &str) -> Result<Behaviour, String> {
        let patch: ConfigPatch = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut next = patch.apply(&Behaviour::default())?;
        next.prepare().map_err(|error| error.to_string())?;
        Ok(next)
    }

    #[test]
    fn only_given_fields_change() {
        let behaviour =
            patch(r#"{"status": 503, "routes": ["/ok=200"], "delay": "250ms"}"#).unwrap();
        assert_eq!(behaviour.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(behaviour.body, None);
        assert_eq!(behaviour.delay, std::time::Duration::from_millis(250));
        let view = ConfigView::from(&behaviour);
        assert_eq!(view.script, None);
        assert_eq!(view.routes, ["/ok=200"]);
        assert_eq!(view.delay, "250ms");
    }

    #[test]
    fn null_removes_the_script() {
        let with_script = patch(r#"{"script": "503"}"#).unwrap();
        let patch: ConfigPatch = serde_json::from_str(r#"{"script": null}"#).unwrap();
        assert!(patch.apply(&with_script).unwrap().script.is_none());
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        for (json, reason) in [
            (r#"{"status": 99}"#, "status"),
            (r#"{"script": "503*x"}"#, "at position 5"),
            (r#"{"fail_rate": 2}"#, "fail_rate"),
            (r#"{"headers": ["nope"]}"#, "Name: value"),
            (r#"{"delay": "soon"}"#, "delay"),
            (r#"{"script": "503,forward"}"#, "needs --forward"),
            (r#"{"colour": "red"}"#, "unknown field"),
            (
                r#"{"script": "500", "status": 503}"#,
                "the script (500) decides",
            ),
        ] {
            let error = patch(json).unwrap_err();
            assert!(error.contains(reason), "{json}: {error}");
        }
    }
}
