//! The `--format json` line: one self-contained JSON object per exchange.

use base64::Engine as _;
use serde::Serialize;
use serde_json::ser::CompactFormatter;

use super::escape::SafeFormatter;
use crate::alert::{KeySource, Problem, Verdict};
use crate::capture::{Attempt, BodyState, Exchange};

#[derive(Serialize)]
struct Line<'a, B: Serialize> {
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
    body: B,
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
/// including the ones inside the body, is escaped so the line is terminal-safe.
pub fn json_line(exchange: &Exchange) -> Vec<u8> {
    line(exchange, false)
}

/// Like [`json_line`], plus `raw_body`: the body's exact text when it is JSON
/// (`body` then holds it parsed), so a replay sends the very same bytes.
pub fn record_line(exchange: &Exchange) -> Vec<u8> {
    line(exchange, true)
}

fn line(exchange: &Exchange, with_raw_body: bool) -> Vec<u8> {
    let text = std::str::from_utf8(&exchange.body).ok();
    if let Some(text) = text.filter(|text| !text.trim().is_empty()) {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        // Transcoding (not embedding the raw text) sends the body's strings through
        // the escaping formatter too; a body that is not JSON falls back to text.
        let transcoded = serde_transcode::Transcoder::new(&mut deserializer);
        let raw = with_raw_body.then_some(text);
        if let Some(line) = render(exchange, raw, "json", transcoded) {
            if deserializer.end().is_ok() {
                return line;
            }
        }
    }
    match text {
        Some(text) => render(exchange, None, "text", text),
        None => render(
            exchange,
            None,
            "base64",
            base64::engine::general_purpose::STANDARD.encode(&exchange.body),
        ),
    }
    .unwrap_or_default()
}

fn render<B: Serialize>(
    exchange: &Exchange,
    raw_body: Option<&str>,
    body_encoding: &'static str,
    body: B,
) -> Option<Vec<u8>> {
    let mut headers = serde_json::Map::new();
    for (name, value) in &exchange.headers {
        match headers.get_mut(name) {
            Some(serde_json::Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), value.clone().into());
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
        method: &exchange.method,
        path: &exchange.path,
        query: exchange.query.as_deref(),
        version: &exchange.version,
        headers,
        body_size: exchange.body_size(),
        body_state: match exchange.body_state {
            BodyState::Complete => "complete",
            BodyState::TooLarge { .. } => "too_large",
            BodyState::Interrupted => "interrupted",
        },
        body_encoding,
        body,
        verdict: exchange.verdict.as_ref().map(VerdictView::from),
        attempt: exchange.attempt.as_ref().map(AttemptView::from),
        rejected: exchange.rejected.as_deref(),
        status: exchange.reply.outcome.status(),
        outcome: exchange.reply.outcome.label(),
        response_body: String::from_utf8_lossy(&exchange.reply.body).into_owned(),
        took_ms: exchange.reply.took.as_secs_f64() * 1000.0,
    };
    let mut out = Vec::with_capacity(exchange.body.len() + 512);
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, SafeFormatter(CompactFormatter));
    line.serialize(&mut serializer).ok()?;
    Some(out)
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
