//! The `--format json` line: one self-contained JSON object per exchange.

use base64::Engine as _;
use serde::Serialize;
use serde_json::ser::CompactFormatter;

use std::borrow::Cow;

use super::escape::{is_unsafe, SafeFormatter};
use crate::alert::{KeySource, Problem, Verdict};
use crate::capture::{Attempt, BodyState, Exchange};

#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_body: Option<&'a str>,
    id: u64,
    received_at: String,
    answered_at: String,
    peer: String,
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    version: &'a str,
    headers: serde_json::Map<String, serde_json::Value>,
    body_size: u64,
    body_state: &'static str,
    body_encoding: &'static str,
    verdict: Option<VerdictView<'a>>,
    attempt: Option<AttemptView<'a>>,
    rejected: Option<&'a str>,
    status: Option<u16>,
    outcome: String,
    response_body: String,
    took_ms: f64,
}

#[derive(Serialize)]
struct AttemptView<'a> {
    key: &'a str,
    key_source: &'static str,
    number: u32,
    gap_ms: Option<f64>,
    resent: bool,
}

impl<'a> From<&'a Attempt> for AttemptView<'a> {
    fn from(attempt: &'a Attempt) -> Self {
        AttemptView {
            key: &attempt.key.value,
            key_source: match attempt.key.source {
                KeySource::AlertId => "alertId",
                KeySource::Id => "id",
                KeySource::BodyHash => "body",
            },
            number: attempt.number,
            gap_ms: attempt.gap.map(|gap| gap.as_secs_f64() * 1000.0),
            resent: attempt.key.resent,
        }
    }
}

#[derive(Serialize)]
struct VerdictView<'a> {
    valid: bool,
    problems: &'a [Problem],
    warnings: &'a [Problem],
}

impl<'a> From<&'a Verdict> for VerdictView<'a> {
    fn from(verdict: &'a Verdict) -> Self {
        VerdictView {
            valid: verdict.is_valid(),
            problems: &verdict.problems,
            warnings: &verdict.warnings,
        }
    }
}

/// Renders one exchange as a JSON line (without the newline). Every string,
/// including the ones inside the body, is terminal-safe.
pub fn json_line(exchange: &Exchange) -> Vec<u8> {
    line(exchange, false)
}

/// Like [`json_line`], plus `raw_body`, the exact text received, whenever `body`
/// is not byte for byte what was received: a replay then sends the very same bytes.
pub fn record_line(exchange: &Exchange) -> Vec<u8> {
    line(exchange, true)
}

fn line(exchange: &Exchange, with_raw_body: bool) -> Vec<u8> {
    let text = std::str::from_utf8(&exchange.body).ok();
    let known_json = exchange
        .verdict
        .as_ref()
        .is_some_and(|verdict| verdict.is_json);
    if let (Some(text), true) = (text, known_json) {
        // The common case: valid JSON without anything to escape is copied, not re-serialised.
        if let Some(embedded) = embeddable_json(text) {
            let raw_body = (with_raw_body && matches!(embedded, Cow::Owned(_))).then_some(text);
            if let Some(line) = render(exchange, raw_body, "json", embedded.as_bytes()) {
                return line;
            }
        }
    }
    if let Some(text) = text.filter(|text| !text.trim().is_empty()) {
        // Transcoding sends every string of the body through the escaping formatter.
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let mut body = Vec::with_capacity(text.len() + 64);
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut body, SafeFormatter(CompactFormatter));
        if serde_transcode::transcode(&mut deserializer, &mut serializer).is_ok()
            && deserializer.end().is_ok()
        {
            let raw_body = with_raw_body.then_some(text);
            if let Some(line) = render(exchange, raw_body, "json", &body) {
                return line;
            }
        }
    }
    let (encoding, body) = match text {
        Some(text) => ("text", text.to_owned()),
        None => (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(&exchange.body),
        ),
    };
    let mut quoted = Vec::with_capacity(body.len() + 2);
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut quoted, SafeFormatter(CompactFormatter));
    if body.serialize(&mut serializer).is_err() {
        quoted = b"null".to_vec();
    }
    render(exchange, None, encoding, &quoted).unwrap_or_default()
}

/// The body, known to be valid JSON, as one terminal-safe line, if it can be used
/// as it is: borrowed when it already is one, with its line breaks removed when
/// those are all that stand in the way (raw CR and LF can only be whitespace
/// between tokens in valid JSON). `None` when a string holds a character that must
/// be escaped (DEL, C1, bidi controls): then the body is transcoded.
fn embeddable_json(text: &str) -> Option<Cow<'_, str>> {
    let bytes = text.as_bytes();
    if (!bytes.is_ascii() || bytes.contains(&0x7f)) && text.chars().any(is_unsafe_in_json) {
        return None;
    }
    if bytes.iter().any(|&b| b == b'\n' || b == b'\r') {
        Some(Cow::Owned(text.replace(['\n', '\r'], "")))
    } else {
        Some(Cow::Borrowed(text))
    }
}

/// Unsafe characters that valid JSON may hold raw (C0 controls must be escaped in
/// JSON strings, so raw ones can only be whitespace between tokens).
fn is_unsafe_in_json(c: char) -> bool {
    !matches!(c, '\n' | '\r' | '\t') && is_unsafe(c)
}

/// Serialises everything but the body, then appends `"body":` and the body's JSON text.
fn render(
    exchange: &Exchange,
    raw_body: Option<&str>,
    body_encoding: &'static str,
    body: &[u8],
) -> Option<Vec<u8>> {
    let mut headers = serde_json::Map::new();
    for (name, value) in exchange.header_pairs() {
        match headers.get_mut(name) {
            Some(serde_json::Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.to_owned(), value.into_owned().into());
            }
        }
    }
    let answered_at =
        exchange.received_at + chrono::Duration::from_std(exchange.reply.took).unwrap_or_default();
    let line = Line {
        raw_body,
        id: exchange.id,
        received_at: timestamp(exchange.received_at),
        answered_at: timestamp(answered_at),
        peer: exchange.peer.to_string(),
        method: exchange.method.as_str(),
        path: &exchange.path,
        query: exchange.query.as_deref(),
        version: exchange.version,
        headers,
        body_size: exchange.body_size(),
        body_state: match exchange.body_state {
            BodyState::Complete => "complete",
            BodyState::TooLarge { .. } => "too_large",
            BodyState::Interrupted => "interrupted",
        },
        body_encoding,
        verdict: exchange.verdict.as_ref().map(VerdictView::from),
        attempt: exchange.attempt.as_ref().map(AttemptView::from),
        rejected: exchange.rejected.as_deref(),
        status: exchange.reply.outcome.status(),
        outcome: exchange.reply.outcome.label(),
        response_body: String::from_utf8_lossy(&exchange.reply.body).into_owned(),
        took_ms: exchange.reply.took.as_secs_f64() * 1000.0,
    };
    let mut out = Vec::with_capacity(body.len() + raw_body.map_or(0, str::len) + 768);
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, SafeFormatter(CompactFormatter));
    line.serialize(&mut serializer).ok()?;
    // `out` ends with the object's closing brace: the body goes just before it.
    out.pop();
    out.extend_from_slice(b",\"body\":");
    out.extend_from_slice(body);
    out.push(b'}');
    Some(out)
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_json_is_copied_and_line_breaks_dropped() {
        assert!(matches!(
            embeddable_json(r#"{"a":[1,2]}"#),
            Some(Cow::Borrowed(_))
        ));
        let pretty = "{\n  \"a\": \"é ✓\",\r\n  \"b\": [1, 2]\n}";
        assert_eq!(
            embeddable_json(pretty).unwrap(),
            "{  \"a\": \"é ✓\",  \"b\": [1, 2]}"
        );
        assert!(
            embeddable_json(r#"{"a":"\u001b[31m"}"#).is_some(),
            "escaped in the source stays escaped"
        );
        for unsafe_text in [
            "{\"a\":\"\u{7f}\"}",
            "{\"a\":\"\u{9b}\"}",
            "{\"a\":\"\u{202e}\"}",
            "{\"\u{2066}\":1}",
        ] {
            assert!(embeddable_json(unsafe_text).is_none(), "{unsafe_text:?}");
        }
    }
}
