//! The `--format json` line: one self-contained JSON object per exchange.

use base64::Engine as _;
use serde::Serialize;
use serde_json::ser::CompactFormatter;

use std::borrow::Cow;

use bytes::Bytes;

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
    headers: HeadersView<'a>,
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

/// Headers as a JSON object, a repeated header's values joined with ", ";
/// serialised straight from the map, without copies.
struct HeadersView<'a>(&'a http::HeaderMap);

impl Serialize for HeadersView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            let mut values = self.0.get_all(name).iter();
            let first = values.next().map(|v| String::from_utf8_lossy(v.as_bytes()));
            let mut joined = first.unwrap_or_default();
            for value in values {
                let joined = joined.to_mut();
                joined.push_str(", ");
                joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
            }
            map.serialize_entry(name.as_str(), &joined)?;
        }
        map.end()
    }
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
pub fn json_line(exchange: &Exchange) -> Bytes {
    exchange
        .line
        .get_or_init(|| line(exchange, false).0.into())
        .clone()
}

/// Like [`json_line`], plus `raw_body`, the exact text received, whenever `body`
/// is not byte for byte what was received: a replay then sends the very same bytes.
/// Usually the two lines are the same, and then this one is kept for `json_line`.
pub fn record_line(exchange: &Exchange) -> Bytes {
    if let Some(line) = exchange.line.get().filter(|_| !needs_raw_body(exchange)) {
        return line.clone();
    }
    let (line, with_raw_body) = line(exchange, true);
    let line = Bytes::from(line);
    if !with_raw_body {
        let _ = exchange.line.set(line.clone());
    }
    line
}

/// Whether the record line carries `raw_body` (conservatively: a known-JSON body
/// that is not already a terminal-safe single line).
fn needs_raw_body(exchange: &Exchange) -> bool {
    let known_json = exchange
        .verdict
        .as_ref()
        .is_some_and(|verdict| verdict.is_json);
    match std::str::from_utf8(&exchange.body) {
        Ok(text) if known_json => !matches!(embeddable_json(text), Some(Cow::Borrowed(_))),
        Ok(_) => !exchange.body.is_empty(),
        Err(_) => false,
    }
}

/// The line, and whether it carries `raw_body`.
fn line(exchange: &Exchange, with_raw_body: bool) -> (Vec<u8>, bool) {
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
                return (line, raw_body.is_some());
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
                return (line, raw_body.is_some());
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
    (
        render(exchange, None, encoding, &quoted).unwrap_or_default(),
        false,
    )
}

/// The body, known to be valid JSON, as one terminal-safe line, if it can be used
/// as it is: borrowed when it already is one, with its line breaks removed when
/// those are all that stand in the way (raw CR and LF can only be whitespace
/// between tokens in valid JSON). `None` when a string holds a character that must
/// be escaped (DEL, C1, bidi controls): then the body is transcoded.
fn embeddable_json(text: &str) -> Option<Cow<'_, str>> {
    let bytes = text.as_bytes();
    // Word-at-a-time and SIMD scans settle the usual case (plain ASCII on one line)
    // at memory speed: this runs on every body, and bodies can be 64 KB and more.
    let high = !bytes.is_ascii() || memchr::memchr(0x7f, bytes).is_some();
    if high && text.chars().any(is_unsafe_in_json) {
        return None;
    }
    if memchr::memchr2(b'\n', b'\r', bytes).is_none() {
        return Some(Cow::Borrowed(text));
    }
    let mut line = String::with_capacity(text.len());
    let mut start = 0;
    for at in memchr::memchr2_iter(b'\n', b'\r', bytes) {
        line.push_str(&text[start..at]);
        start = at + 1;
    }
    line.push_str(&text[start..]);
    Some(Cow::Owned(line))
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
        headers: HeadersView(&exchange.headers),
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
