//! Answers built from the request: `--body` and `--header` values may be minijinja
//! templates over the request (`{{ body.alertId }}`, `{{ attempt }}`,
//! `{{ header["x-request-id"] }}`...). Values are data, never template text: a body
//! holding `{{ ... }}` is shown as it is. Escaping follows the answer's type: inside a
//! JSON body, strings are escaped as JSON string contents; in HTML, as HTML.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, State, UndefinedBehavior};
use serde::Serialize;

/// The escaping of a JSON answer: values go inside JSON strings or stand as JSON.
const JSON_ESCAPE: &str = "json-contents";

/// The compiled templates of a behaviour.
#[derive(Clone)]
pub struct AnswerTemplates {
    env: Arc<Environment<'static>>,
    body: bool,
    headers: Vec<usize>,
}

impl fmt::Debug for AnswerTemplates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnswerTemplates")
            .field("body", &self.body)
            .field("headers", &self.headers)
            .finish()
    }
}

/// A template that does not parse, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid template in {flag} {text:?} at position {position}: {message}")]
pub struct TemplateError {
    /// `--body` or `--header`.
    pub flag: &'static str,
    /// The template.
    pub text: String,
    /// 1-based character position of the mistake.
    pub position: usize,
    /// What minijinja said.
    pub message: String,
}

/// What a template can use: the request and where it stands.
#[derive(Debug, Serialize)]
pub struct RequestContext<'a> {
    /// The body as JSON when it is JSON, else as text.
    pub body: serde_json::Value,
    /// Request headers by lower-case name (repeated ones joined with ", ").
    pub header: std::collections::BTreeMap<&'a str, String>,
    /// The path.
    pub path: &'a str,
    /// Query parameters by name (the first of repeated ones).
    pub query: std::collections::BTreeMap<String, String>,
    /// Which attempt of its alert this is.
    pub attempt: u32,
    /// The alert key attempts are counted by.
    pub alert_key: &'a str,
    /// Now, RFC 3339.
    pub now: String,
    /// The exchange's id.
    pub id: u64,
}

impl<'a> RequestContext<'a> {
    /// The context of one request.
    pub fn new(
        body: &[u8],
        headers: &'a HeaderMap,
        path: &'a str,
        query: Option<&str>,
        (attempt, alert_key, id): (u32, &'a str, u64),
    ) -> RequestContext<'a> {
        let body = serde_json::from_slice(body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
        });
        let mut header = std::collections::BTreeMap::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            header
                .entry(name.as_str())
                .and_modify(|joined: &mut String| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        let mut parameters = std::collections::BTreeMap::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            parameters
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        RequestContext {
            body,
            header,
            path,
            query: parameters,
            attempt,
            alert_key,
            now: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            id,
        }
    }
}

fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

impl AnswerTemplates {
    /// Compiles the templates among `body` and the header values; `None` when none is one.
    pub fn compile(
        body: Option<&Bytes>,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Option<AnswerTemplates>, TemplateError> {
        let body_text = body.map(|body| String::from_utf8_lossy(body).into_owned());
        let templated_body = body_text.as_deref().filter(|text| is_template(text));
        let templated_headers: Vec<(usize, String)> = headers
            .iter()
            .enumerate()
            .filter_map(|(index, (_, value))| {
                let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
                is_template(&text).then_some((index, text))
            })
            .collect();
        if templated_body.is_none() && templated_headers.is_empty() {
            return Ok(None);
        }
        let json_body = templated_body.is_some_and(|text| {
            let start = text.trim_start();
            start.starts_with('{') || start.starts_with('[')
        }) || headers.iter().any(|(name, value)| {
            name == http::header::CONTENT_TYPE
                && crate::values::is_json_media_type(value.to_str().unwrap_or_default())
        });
        let html_body = headers.iter().any(|(name, value)| {
            name == http::header::CONTENT_TYPE
                && value.to_str().unwrap_or_default().contains("html")
        });
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        // A template may loop over what the sender sent: its work is bounded, as its output is.
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_auto_escape_callback(move |name| match name {
            "body" if json_body => AutoEscape::Custom(JSON_ESCAPE),
            "body" if html_body => AutoEscape::Html,
            _ => AutoEscape::None,
        });
        env.set_formatter(format_value);
        if let Some(text) = templated_body {
            env.add_template_owned("body", text.to_owned())
                .map_err(|error| located("--body", text, &error))?;
        }
        for (index, text) in &templated_headers {
            env.add_template_owned(format!("header{index}"), text.clone())
                .map_err(|error| located("--header", text, &error))?;
        }
        Ok(Some(AnswerTemplates {
            env: Arc::new(env),
            body: templated_body.is_some(),
            headers: templated_headers.iter().map(|(index, _)| *index).collect(),
        }))
    }

    /// Whether the body is a template.
    pub fn has_body(&self) -> bool {
        self.body
    }

    /// The rendered body; a failure is said in the body, so that it is seen where the answer is.
    pub fn render_body(&self, context: &RequestContext<'_>) -> Bytes {
        match self.render("body", context) {
            Ok(text) => Bytes::from(text),
            Err(error) => Bytes::from(format!(
                "hookscope: the --body template failed: {}\n",
                crate::values::error_with_causes(&error)
            )),
        }
    }

    /// Renders the templated header values into `headers` (the answer's headers, in
    /// the order of `all`, the behaviour's); a value that cannot be a header is dropped.
    pub fn render_headers(
        &self,
        all: &[(HeaderName, HeaderValue)],
        context: &RequestContext<'_>,
        headers: &mut HeaderMap,
    ) {
        for index in &self.headers {
            let Some((name, _)) = all.get(*index) else {
                continue;
            };
            let rendered = self.render(&format!("header{index}"), context);
            headers.remove(name);
            let value = rendered
                .ok()
                .map(|text| text.replace(['\r', '\n'], " "))
                .and_then(|text| HeaderValue::from_str(&text).ok());
            if let Some(value) = value {
                headers.append(name.clone(), value);
            }
        }
    }
}

impl AnswerTemplates {
    /// Renders one template, within [`TEMPLATE_FUEL`] and [`MAX_TEMPLATE_OUTPUT`].
    fn render(&self, name: &str, context: &RequestContext<'_>) -> Result<String, Error> {
        let mut out = Capped(Vec::new());
        self.env
            .get_template(name)?
            .render_captured_to(context, &mut out)?;
        // Written from `str` pieces, so whole UTF-8; lossy only to avoid a panic path.
        Ok(String::from_utf8(out.0)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()))
    }
}

/// How much work one rendering may do (minijinja's fuel: about one unit per
/// instruction). An answer template of Panther's size takes a few hundred; a loop
/// over a sender's array within an array runs out in milliseconds.
pub const TEMPLATE_FUEL: u64 = 1_000_000;

/// The longest a rendered template may be.
pub const MAX_TEMPLATE_OUTPUT: usize = 1024 * 1024;

/// A writer that refuses to grow past [`MAX_TEMPLATE_OUTPUT`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + bytes.len() > MAX_TEMPLATE_OUTPUT {
            return Err(std::io::Error::other(format!(
                "the output would be longer than {MAX_TEMPLATE_OUTPUT} bytes"
            )));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Values inside a JSON body: strings as JSON string contents (the template puts the
/// quotes), everything else as JSON; otherwise minijinja's own escaping.
fn format_value(out: &mut minijinja::Output, state: &State, value: &Value) -> Result<(), Error> {
    if state.auto_escape() != AutoEscape::Custom(JSON_ESCAPE) {
        return minijinja::escape_formatter(out, state, value);
    }
    let json = match value.as_str() {
        Some(text) => {
            let quoted = serde_json::to_string(text).unwrap_or_default();
            quoted[1..quoted.len() - 1].to_owned()
        }
        None if value.is_undefined() => String::new(),
        None => serde_json::to_string(value).unwrap_or_default(),
    };
    out.write_str(&json)
        .map_err(|_| Error::new(minijinja::ErrorKind::WriteFailure, "write failed"))
}

fn located(flag: &'static str, text: &str, error: &Error) -> TemplateError {
    let position = error
        .range()
        .map(|range| text[..range.start.min(text.len())].chars().count() + 1)
        .unwrap_or(1);
    TemplateError {
        flag,
        text: text.to_owned(),
        position,
        message: error.detail().unwrap_or("syntax error").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, body: &[u8], headers: &HeaderMap) -> String {
        let templates = AnswerTemplates::compile(Some(&Bytes::from(template.to_owned())), &[])
            .unwrap()
            .unwrap();
        let context =
            RequestContext::new(body, headers, "/hook", Some("a=1&b=two"), (3, "key-1", 42));
        String::from_utf8(templates.render_body(&context).to_vec()).unwrap()
    }

    #[test]
    fn every_variable_renders() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("req-9"));
        let body = br#"{"alertId":"a1","alertContext":{"ip":"10.0.0.1"}}"#;
        let out = render(
            r#"{"received":"{{ body.alertId }}","ip":"{{ body.alertContext.ip }}","attempt":{{ attempt }},"key":"{{ alert_key }}","id":{{ id }},"path":"{{ path }}","a":"{{ query.a }}","b":"{{ query.b }}","req":"{{ header["x-request-id"] }}"}"#,
            body,
            &headers,
        );
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"received":"a1","ip":"10.0.0.1","attempt":3,"key":"key-1","id":42,"path":"/hook","a":"1","b":"two","req":"req-9"})
        );
        let now = render("at {{ now }}", b"", &HeaderMap::new());
        assert!(now.starts_with("at 20") && now.ends_with('Z'), "{now}");
    }

    #[test]
    fn hostile_values_are_data_and_stay_valid_json() {
        let body = br#"{"alertId":"{{ 7 * 7 }}\" , \"injected\": true, \"x\": \"\n"}"#;
        let out = render(
            r#"{"received":"{{ body.alertId }}"}"#,
            body,
            &HeaderMap::new(),
        );
        let value: serde_json::Value = serde_json::from_str(&out).expect("still one JSON object");
        assert_eq!(value.as_object().unwrap().len(), 1);
        assert!(
            value["received"]
                .as_str()
                .unwrap()
                .starts_with("{{ 7 * 7 }}")
        );
    }

    #[test]
    fn mistakes_point_inside_the_template() {
        let error = AnswerTemplates::compile(Some(&Bytes::from_static(b"ok {{ body. }}")), &[])
            .unwrap_err();
        assert_eq!(error.flag, "--body");
        assert!(error.position > 3, "{error}");
        assert!(
            AnswerTemplates::compile(Some(&Bytes::from_static(b"plain")), &[])
                .unwrap()
                .is_none()
        );
    }
}
