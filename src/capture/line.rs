//! The JSON line of an exchange: what `--record` writes, `--format json` prints and
//! the admin API serves. One self-contained JSON object per exchange.
//!
//! It is written by hand rather than by serde's derive because that is measurably
//! cheaper on the request path: with a derived envelope (same fields, same safe
//! formatter, body shared), callgrind counted 11k more instructions per 1 KB
//! request with `--format json --record` (+18%), and an interleaved `bench/run.sh`
//! gave 7% fewer requests per second (README, Performance). The serde rendering
//! is kept in the tests as the reference the hand-written line must equal.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::ser::CompactFormatter;
use serde_json::value::RawValue;
use std::io::Write as _;

use std::borrow::Cow;

use bytes::Bytes;

use super::{BodyState, Exchange, Outcome, UNREADABLE_METHOD, UpstreamLeg};
use crate::alert::{KeySource, Problem};
use crate::escape::{SafeFormatter, is_unsafe};

/// One rendered JSON line (without its newline), in three pieces: everything up to
/// `"body":`, the body's JSON text, and the closing brace. A body that is valid,
/// terminal-safe JSON already is the very bytes received, shared rather than
/// copied: with 64 KB alerts the line would otherwise double the memory and the
/// copying per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonLine {
    parts: [Bytes; 3],
}

impl JsonLine {
    fn new(head: Vec<u8>, body: Bytes) -> JsonLine {
        JsonLine {
            parts: [Bytes::from(head), body, Bytes::from_static(b"}")],
        }
    }

    /// A line given whole (an imported record line; tests).
    pub fn of_text(text: impl Into<String>) -> JsonLine {
        JsonLine {
            parts: [Bytes::from(text.into()), Bytes::new(), Bytes::new()],
        }
    }

    /// The pieces, to be written one after the other (e.g. with a vectored write).
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// Whether it is empty (only the default line is).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the whole line to `out`.
    pub fn append_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len());
        for part in &self.parts {
            out.extend_from_slice(part);
        }
    }

    /// The whole line in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.append_to(&mut out);
        out
    }
}

/// Renders one exchange as a JSON line (without the newline). Every string,
/// including the ones inside the body, is terminal-safe.
pub fn json_line(exchange: &Exchange) -> JsonLine {
    line(exchange, false).0
}

/// The record line `line` with its top-level `id` set to `id`, every other byte as
/// it was (an import renumbers lines; reparsing and writing them again would not
/// keep them byte for byte). `None` when the line has no top-level `id`.
pub fn with_id(line: &str, id: u64) -> Option<String> {
    let bytes = line.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            at += 1;
            continue;
        }
        match byte {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' if depth == 1 && bytes[at..].starts_with(b"\"id\":") => {
                let start = at + 5;
                let length = bytes[start..]
                    .iter()
                    .take_while(|byte| byte.is_ascii_digit())
                    .count();
                if length == 0 {
                    return None;
                }
                return Some(format!("{}{id}{}", &line[..start], &line[start + length..]));
            }
            b'"' => in_string = true,
            _ => {}
        }
        at += 1;
    }
    None
}

/// Like [`json_line`], plus `raw_body`, the exact text received, whenever `body`
/// is not byte for byte what was received: a replay then sends the very same bytes.
pub fn record_line(exchange: &Exchange) -> JsonLine {
    record_line_and_sameness(exchange).0
}

/// The record line, and whether it is also the [`json_line`], so that one
/// rendering can serve both the record and stdout.
pub(crate) fn record_line_and_sameness(exchange: &Exchange) -> (JsonLine, bool) {
    // One pass over the body: `raw_body` is added only where it is needed.
    let (line, with_raw_body) = line(exchange, true);
    (line, !with_raw_body)
}

/// The line, and whether it carries `raw_body`.
fn line(exchange: &Exchange, with_raw_body: bool) -> (JsonLine, bool) {
    let text = simdutf8::basic::from_utf8(&exchange.body).ok();
    let known_json = exchange
        .verdict
        .as_ref()
        .is_some_and(|verdict| verdict.is_json);
    if let (Some(text), true) = (text, known_json) {
        // The common case: valid JSON without anything to escape is copied, not re-serialised.
        if let Some(embedded) = embeddable_json(text) {
            let raw_body = (with_raw_body && matches!(embedded, Cow::Owned(_))).then_some(text);
            let body = match embedded {
                Cow::Borrowed(text) => exchange.body.slice_ref(text.as_bytes()),
                Cow::Owned(text) => Bytes::from(text),
            };
            if let Some(line) = render(exchange, raw_body, "json", body) {
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
            if let Some(line) = render(exchange, raw_body, "json", body.into()) {
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
        render(exchange, None, encoding, quoted.into()).unwrap_or_default(),
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

/// Writes the line by hand: every key is a constant and most values are plain
/// ASCII, which a generic serialiser spends most of its time checking.
/// (The tests compare it with a serde rendering of the same fields.)
fn render(
    exchange: &Exchange,
    raw_body: Option<&str>,
    body_encoding: &'static str,
    body: Bytes,
) -> Option<JsonLine> {
    let answered_at =
        exchange.received_at + chrono::Duration::from_std(exchange.reply.took).unwrap_or_default();
    let mut out = Vec::with_capacity(raw_body.map_or(0, str::len) + 768);
    out.push(b'{');
    if let Some(raw_body) = raw_body {
        out.extend_from_slice(b"\"raw_body\":");
        string(&mut out, raw_body);
        out.push(b',');
    }
    out.extend_from_slice(b"\"id\":");
    out.extend_from_slice(itoa::Buffer::new().format(exchange.id).as_bytes());
    out.extend_from_slice(b",\"received_at\":");
    timestamp_into(&mut out, exchange.received_at);
    out.extend_from_slice(b",\"answered_at\":");
    timestamp_into(&mut out, answered_at);
    out.extend_from_slice(b",\"peer\":\"");
    peer(&mut out, exchange.peer);
    out.extend_from_slice(b"\",\"claimed_origin\":");
    optional_string(&mut out, exchange.claimed_origin());
    out.extend_from_slice(b",\"method\":");
    string(&mut out, exchange.method.as_str());
    out.extend_from_slice(b",\"path\":");
    string(&mut out, &exchange.path);
    out.extend_from_slice(b",\"query\":");
    optional_string(&mut out, exchange.query.as_deref());
    out.extend_from_slice(b",\"version\":");
    string(&mut out, exchange.version);
    out.extend_from_slice(b",\"headers\":");
    headers(&mut out, &exchange.headers);
    out.extend_from_slice(b",\"body_size\":");
    out.extend_from_slice(itoa::Buffer::new().format(exchange.body_size()).as_bytes());
    out.extend_from_slice(b",\"body_state\":\"");
    out.extend_from_slice(match exchange.body_state {
        BodyState::Complete => b"complete",
        BodyState::TooLarge { .. } => b"too_large",
        BodyState::Interrupted => b"interrupted",
        BodyState::Malformed => b"malformed",
        BodyState::OverBudget => b"over_budget",
        BodyState::Stalled => b"stalled",
    });
    out.extend_from_slice(b"\",\"body_encoding\":\"");
    out.extend_from_slice(body_encoding.as_bytes());
    out.extend_from_slice(b"\",\"verdict\":");
    verdict(&mut out, exchange.verdict.as_ref());
    out.extend_from_slice(b",\"schema\":");
    string(&mut out, exchange.schema.as_deref().unwrap_or("panther"));
    out.extend_from_slice(b",\"signature\":");
    match &exchange.signature {
        Some(signature) => safe_json(&mut out, signature),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"attempt\":");
    attempt(&mut out, exchange.attempt.as_ref());
    out.extend_from_slice(b",\"rejected\":");
    optional_string(&mut out, exchange.rejected.as_deref());
    out.extend_from_slice(b",\"status\":");
    match exchange.reply.outcome.status() {
        Some(status) => out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"outcome\":");
    exchange
        .reply
        .outcome
        .with_label(|label| string(&mut out, label));
    out.extend_from_slice(b",\"response_headers\":");
    match exchange.reply.outcome {
        Outcome::Answered(_) => headers(&mut out, &exchange.reply.headers),
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"response_body\":");
    string(&mut out, &String::from_utf8_lossy(&exchange.reply.body));
    out.extend_from_slice(b",\"took_ms\":");
    milliseconds(&mut out, exchange.reply.took);
    out.extend_from_slice(b",\"upstream\":");
    match &exchange.upstream {
        Some(leg) => upstream(&mut out, leg),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"body\":");
    Some(JsonLine::new(out, body))
}

/// The verdict object: validity, the problems and warnings kept, what was left out.
fn verdict(out: &mut Vec<u8>, verdict: Option<&crate::alert::Verdict>) {
    match verdict {
        Some(verdict) => {
            out.extend_from_slice(if verdict.is_valid() {
                b"{\"valid\":true,\"problems\":"
            } else {
                b"{\"valid\":false,\"problems\":"
            });
            problems(out, &verdict.problems);
            out.extend_from_slice(b",\"warnings\":");
            problems(out, &verdict.warnings);
            if verdict.omitted > 0 {
                out.extend_from_slice(b",\"omitted\":");
                out.extend_from_slice(itoa::Buffer::new().format(verdict.omitted).as_bytes());
            }
            out.push(b'}');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// The attempt object: the alert key and its source, the number, the gap, the marks.
fn attempt(out: &mut Vec<u8>, attempt: Option<&super::Attempt>) {
    match attempt {
        Some(attempt) => {
            out.extend_from_slice(b"{\"key\":");
            string(out, &attempt.key.value);
            out.extend_from_slice(b",\"key_source\":\"");
            out.extend_from_slice(match attempt.key.source {
                KeySource::AlertId => b"alertId",
                KeySource::Id => b"id",
                KeySource::BodyHash => b"body",
            });
            out.extend_from_slice(b"\",\"number\":");
            out.extend_from_slice(itoa::Buffer::new().format(attempt.number).as_bytes());
            out.extend_from_slice(b",\"gap_ms\":");
            match attempt.gap {
                Some(gap) => milliseconds(out, gap),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(if attempt.key.resent {
                b",\"resent\":true"
            } else {
                b",\"resent\":false"
            });
            out.extend_from_slice(if attempt.duplicate_upstream {
                b",\"duplicate_upstream\":true}"
            } else {
                b",\"duplicate_upstream\":false}"
            });
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// The forwarded leg (`--forward`); its body as text, like `response_body`.
fn upstream(out: &mut Vec<u8>, leg: &UpstreamLeg) {
    out.extend_from_slice(b"{\"url\":");
    string(out, &leg.url);
    out.extend_from_slice(b",\"status\":");
    match leg.status {
        Some(status) => out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"version\":");
    optional_string(out, leg.version);
    out.extend_from_slice(b",\"headers\":");
    headers(out, &leg.headers);
    out.extend_from_slice(b",\"body\":");
    string(out, &String::from_utf8_lossy(&leg.body));
    out.extend_from_slice(if leg.truncated {
        b",\"body_truncated\":true"
    } else {
        b",\"body_truncated\":false"
    });
    out.extend_from_slice(b",\"first_byte_ms\":");
    match leg.first_byte {
        Some(first_byte) => milliseconds(out, first_byte),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"took_ms\":");
    milliseconds(out, leg.took);
    out.extend_from_slice(b",\"error\":");
    optional_string(out, leg.error.as_deref());
    out.extend_from_slice(if leg.timed_out {
        b",\"timed_out\":true}"
    } else {
        b",\"timed_out\":false}"
    });
}

/// Any serialisable value, terminal-safe.
fn safe_json(out: &mut Vec<u8>, value: &impl Serialize) {
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut *out, SafeFormatter(CompactFormatter));
    if value.serialize(&mut serializer).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// A JSON string, terminal-safe: plain printable ASCII is copied as it is, anything
/// else goes through serde_json and the escaping formatter.
fn string(out: &mut Vec<u8>, text: &str) {
    if is_plain(text.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut *out, SafeFormatter(CompactFormatter));
    let _ = text.serialize(&mut serializer);
}

/// Printable ASCII without `"` or `\\`: written into a JSON string as it is.
fn is_plain(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&byte| (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\')
}

/// The peer address as `Display` writes it; IPv4, the usual case, without the formatter.
fn peer(out: &mut Vec<u8>, peer: std::net::SocketAddr) {
    match peer {
        std::net::SocketAddr::V4(peer) => {
            for (index, octet) in peer.ip().octets().into_iter().enumerate() {
                if index > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
            }
            out.push(b':');
            out.extend_from_slice(itoa::Buffer::new().format(peer.port()).as_bytes());
        }
        std::net::SocketAddr::V6(_) => {
            let _ = write!(out, "{peer}");
        }
    }
}

fn optional_string(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// Headers as a JSON object: a name's value as text, or a repeated header's values
/// as an array of texts, one per line received (joining them with ", " would change
/// `Set-Cookie` and any header whose values hold commas). The map gives a name's
/// values one after the other: walking it once spares a lookup (hashing the name
/// again) per header.
fn headers(out: &mut Vec<u8>, headers: &http::HeaderMap) {
    out.push(b'{');
    let mut entries = headers.iter().peekable();
    let mut first = true;
    while let Some((name, value)) = entries.next() {
        if !first {
            out.push(b',');
        }
        first = false;
        // A header name is a token: lowercase letters, digits and `!#$%&'*+-.^_`|~`,
        // nothing JSON or a terminal would need escaped.
        out.push(b'"');
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b"\":");
        let repeated = entries.peek().is_some_and(|(next, _)| *next == name);
        if !repeated && is_plain(value.as_bytes()) {
            out.push(b'"');
            out.extend_from_slice(value.as_bytes());
            out.push(b'"');
            continue;
        }
        if !repeated {
            string(out, &String::from_utf8_lossy(value.as_bytes()));
            continue;
        }
        out.push(b'[');
        string(out, &String::from_utf8_lossy(value.as_bytes()));
        while let Some((_, repeated)) = entries.next_if(|(next, _)| *next == name) {
            out.push(b',');
            string(out, &String::from_utf8_lossy(repeated.as_bytes()));
        }
        out.push(b']');
    }
    out.push(b'}');
}

fn problems(out: &mut Vec<u8>, problems: &[Problem]) {
    out.push(b'[');
    for (index, problem) in problems.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"pointer\":");
        string(out, &problem.pointer);
        out.extend_from_slice(b",\"expected\":");
        string(out, &problem.expected);
        out.extend_from_slice(b",\"found\":");
        string(out, &problem.found);
        out.push(b'}');
    }
    out.push(b']');
}

/// A duration in milliseconds as a JSON number, written as serde_json writes an f64.
fn milliseconds(out: &mut Vec<u8>, duration: std::time::Duration) {
    let _ = serde_json::to_writer(&mut *out, &(duration.as_secs_f64() * 1000.0));
}

/// An RFC 3339 timestamp with microseconds, in UTC: `"2026-11-22T10:20:30.123456Z"`.
fn timestamp_into(out: &mut Vec<u8>, at: chrono::DateTime<chrono::Utc>) {
    use chrono::{Datelike, Timelike};
    // The fields of the UTC date and time: through `DateTime` each accessor would
    // apply the (zero) offset again.
    let (date, time) = (at.date_naive(), at.time());
    let year = date.year();
    if !(0..=9999).contains(&year) || time.nanosecond() >= 1_000_000_000 {
        // Beyond four digits, or a leap second: let chrono write it.
        string(out, &timestamp(at));
        return;
    }
    let micros = time.nanosecond() / 1000 % 1_000_000;
    let mut text = *b"\"0000-00-00T00:00:00.000000Z\"";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for slot in text[at..at + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(1, 4, year as u32);
    put(6, 2, date.month());
    put(9, 2, date.day());
    put(12, 2, time.hour());
    put(15, 2, time.minute());
    put(18, 2, time.second());
    put(21, 6, micros);
    out.extend_from_slice(&text);
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One line of a `--record` file, read back: the fields a replay and its
/// filters need (the rest of the line is ignored).
#[derive(Debug, Deserialize)]
pub struct RecordLine<'a> {
    /// Sequence number of the exchange.
    pub id: u64,
    /// Request method, or [`UNREADABLE_METHOD`] for a head that could not be read.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Query without `?`.
    #[serde(default)]
    pub query: Option<String>,
    /// Request headers, one per line received.
    #[serde(default)]
    pub headers: HeaderLines,
    /// The headers of hookscope's answer (none for a request without one, and in
    /// lines written before they were recorded).
    #[serde(default)]
    pub response_headers: Option<HeaderLines>,
    /// How `body` is written: `json`, `text` or `base64`.
    pub body_encoding: BodyEncoding,
    /// The body as written in the line.
    #[serde(borrow)]
    pub body: &'a RawValue,
    /// The exact text received, when `body` is not byte for byte that.
    #[serde(default)]
    pub raw_body: Option<String>,
    /// The schema check, if there was one.
    #[serde(default)]
    pub verdict: Option<RecordedVerdict>,
    /// Which attempt of which alert it was.
    #[serde(default)]
    pub attempt: Option<RecordedAttempt>,
    /// The status answered, if an answer was sent.
    #[serde(default)]
    pub status: Option<u16>,
    /// The forwarded leg, if the request was forwarded (`--forward`).
    #[serde(default)]
    pub upstream: Option<RecordedUpstream>,
    /// When the request arrived (RFC 3339).
    #[serde(default)]
    pub received_at: Option<String>,
    /// The request's HTTP version.
    #[serde(default)]
    pub version: Option<String>,
    /// What happened: the status, or `dropped`, `reset`, `hung`, `client-gone`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// The body answered.
    #[serde(default)]
    pub response_body: Option<String>,
    /// From the request head to the answer, in milliseconds.
    #[serde(default)]
    pub took_ms: Option<f64>,
}

/// Header lines as a record line holds them, in its order: a name with its value,
/// or with each value of a repeated header (older lines joined those with ", ").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderLines(pub Vec<(String, String)>);

impl HeaderLines {
    /// The first value of header `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(given, _)| given == name)
            .map(|(_, value)| value.as_str())
    }

    /// Each header line: name and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

impl<'de> Deserialize<'de> for HeaderLines {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Values {
            One(String),
            Many(Vec<String>),
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = HeaderLines;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("an object of header names and values")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<HeaderLines, A::Error> {
                let mut lines = Vec::new();
                while let Some((name, values)) = map.next_entry::<String, Values>()? {
                    match values {
                        Values::One(value) => lines.push((name, value)),
                        Values::Many(values) => {
                            lines.extend(values.into_iter().map(|value| (name.clone(), value)));
                        }
                    }
                }
                Ok(HeaderLines(lines))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The part of a recorded forwarded leg that a replay reads.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordedUpstream {
    /// Where the request was forwarded to.
    pub url: String,
    /// The upstream's answer's headers (passed on to the sender).
    #[serde(default)]
    pub headers: HeaderLines,
    /// Why there was no usable answer, if there was none.
    #[serde(default)]
    pub error: Option<String>,
    /// The upstream's status, when it answered.
    #[serde(default)]
    pub status: Option<u16>,
    /// No answer within `--forward-timeout`.
    #[serde(default)]
    pub timed_out: bool,
}

impl RecordedUpstream {
    /// What the upstream answered, in a word: its status, `timeout` or `error`
    /// (as [`UpstreamLeg::label`](super::UpstreamLeg::label) says it).
    pub fn label(&self) -> String {
        super::exchange::upstream_label(self.status, self.error.is_some(), self.timed_out)
    }
}

/// How a record line writes the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    /// As JSON (byte for byte the body received, unless `raw_body` is given).
    Json,
    /// As a JSON string.
    Text,
    /// As base64 (the body is not UTF-8).
    Base64,
}

/// The part of a recorded verdict that filters read.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct RecordedVerdict {
    /// Whether the body was a valid alert.
    pub valid: bool,
    /// How many problems and warnings it listed (what the `problems` filter reads).
    #[serde(default, deserialize_with = "count_items")]
    pub problems: usize,
    /// Warnings listed.
    #[serde(default, deserialize_with = "count_items")]
    pub warnings: usize,
}

/// The number of items of a JSON array, without keeping them.
fn count_items<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    struct Count;
    impl<'de> serde::de::Visitor<'de> for Count {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<usize, A::Error> {
            let mut count = 0;
            while items.next_element::<serde::de::IgnoredAny>()?.is_some() {
                count += 1;
            }
            Ok(count)
        }
    }
    deserializer.deserialize_seq(Count)
}

/// The attempt a record line was, as far as filters and the alerts view read it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct RecordedAttempt {
    /// The alert key.
    pub key: String,
    /// Where the key came from (`alertId`, `id`, or `body_hash`).
    #[serde(default)]
    pub key_source: String,
    /// 1 for the first attempt.
    #[serde(default)]
    pub number: u32,
    /// Milliseconds since the previous attempt.
    #[serde(default)]
    pub gap_ms: Option<f64>,
    /// A manual re-send.
    #[serde(default)]
    pub resent: bool,
    /// The upstream had acknowledged this delivery already.
    #[serde(default)]
    pub duplicate_upstream: bool,
}

/// Why a record line cannot be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordLineError {
    /// Not JSON: usually the unfinished last line of a file hookscope was killed writing.
    #[error("not a complete JSON line (an unfinished write?)")]
    NotJson,
    /// JSON, but not a hookscope exchange.
    #[error("not a hookscope record line: {0}")]
    Malformed(String),
    /// A request whose head could not be read: there is nothing to send again.
    #[error("the request head could not be read when it arrived: nothing to replay")]
    UnreadableHead,
}

impl<'a> RecordLine<'a> {
    /// Reads one line.
    pub fn parse(line: &'a str) -> Result<RecordLine<'a>, RecordLineError> {
        serde_json::from_str(line).map_err(|error| match error.classify() {
            serde_json::error::Category::Data => RecordLineError::Malformed(error.to_string()),
            _ => RecordLineError::NotJson,
        })
    }

    /// `valid`, `invalid` or `none`, as [`Exchange::verdict_label`] says it.
    pub fn verdict_label(&self) -> &'static str {
        match self.verdict {
            Some(RecordedVerdict { valid: true, .. }) => "valid",
            Some(RecordedVerdict { valid: false, .. }) => "invalid",
            None => "none",
        }
    }

    /// The exact body bytes received.
    pub fn body_bytes(&self) -> Result<Bytes, RecordLineError> {
        self.exact_body()
    }

    /// The request this line records, as an exchange (method, path, query, headers,
    /// body, id), for what reads only those: `compare` of a stored exchange.
    pub fn request_exchange(&self) -> Exchange {
        Exchange::of_request(
            self.id,
            (
                http::Method::from_bytes(self.method.as_bytes()).unwrap_or_default(),
                self.path.clone(),
                self.query.clone(),
            ),
            self.headers.iter(),
            self.exact_body().unwrap_or_default(),
            self.status.unwrap_or(0),
        )
    }

    fn exact_body(&self) -> Result<Bytes, RecordLineError> {
        let malformed = |what: &str| RecordLineError::Malformed(format!("the body is not {what}"));
        match (self.body_encoding, &self.raw_body) {
            (BodyEncoding::Json, Some(raw)) => Ok(Bytes::from(raw.clone())),
            (BodyEncoding::Json, None) => Ok(Bytes::from(self.body.get().to_owned())),
            (BodyEncoding::Text, _) => serde_json::from_str::<String>(self.body.get())
                .map(Bytes::from)
                .map_err(|_| malformed("a string")),
            (BodyEncoding::Base64, _) => serde_json::from_str::<&str>(self.body.get())
                .ok()
                .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
                .map(Bytes::from)
                .ok_or_else(|| malformed("base64")),
        }
    }

    /// Whether this is a request whose head could not be read.
    pub fn is_unreadable_head(&self) -> bool {
        self.method == UNREADABLE_METHOD
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_imported_line_gets_its_new_id_and_keeps_every_other_byte() {
        assert_eq!(
            with_id(r#"{"id":7,"path":"/","body":{"id":3}}"#, 12).as_deref(),
            Some(r#"{"id":12,"path":"/","body":{"id":3}}"#)
        );
        // raw_body comes first when there is one, and may hold "id": itself.
        assert_eq!(
            with_id(r#"{"raw_body":"{\"id\":1} \\","id":41,"x":1}"#, 5).as_deref(),
            Some(r#"{"raw_body":"{\"id\":1} \\","id":5,"x":1}"#)
        );
        assert_eq!(with_id(r#"{"path":"/"}"#, 1), None);
    }
    use super::*;

    /// The reference for [`headers`]: a header's value as text, or a repeated
    /// header's values as a list.
    fn header_values(headers: &http::HeaderMap, name: &http::HeaderName) -> serde_json::Value {
        let mut values: Vec<serde_json::Value> = headers
            .get_all(name)
            .iter()
            .map(|value| {
                String::from_utf8_lossy(value.as_bytes())
                    .into_owned()
                    .into()
            })
            .collect();
        if values.len() == 1 {
            values.remove(0)
        } else {
            values.into()
        }
    }

    // The serde rendering the hand-written one must match, field for field.
    use crate::alert::Verdict;
    use crate::capture::Attempt;

    #[derive(Serialize)]
    struct Line<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        raw_body: Option<&'a str>,
        id: u64,
        received_at: String,
        answered_at: String,
        peer: String,
        claimed_origin: Option<&'a str>,
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        version: &'a str,
        headers: HeadersView<'a>,
        body_size: u64,
        body_state: &'static str,
        body_encoding: &'static str,
        verdict: Option<VerdictView<'a>>,
        schema: &'a str,
        signature: &'a Option<crate::signature::SignatureVerdict>,
        attempt: Option<AttemptView<'a>>,
        rejected: Option<&'a str>,
        status: Option<u16>,
        outcome: String,
        response_headers: Option<HeadersView<'a>>,
        response_body: String,
        took_ms: f64,
        upstream: Option<UpstreamView<'a>>,
    }

    #[derive(Serialize)]
    struct UpstreamView<'a> {
        url: &'a str,
        status: Option<u16>,
        version: Option<&'a str>,
        headers: HeadersView<'a>,
        body: String,
        body_truncated: bool,
        first_byte_ms: Option<f64>,
        took_ms: f64,
        error: Option<&'a str>,
        timed_out: bool,
    }

    impl<'a> From<&'a UpstreamLeg> for UpstreamView<'a> {
        fn from(leg: &'a UpstreamLeg) -> Self {
            UpstreamView {
                url: &leg.url,
                status: leg.status,
                version: leg.version,
                headers: HeadersView(&leg.headers),
                body: String::from_utf8_lossy(&leg.body).into_owned(),
                body_truncated: leg.truncated,
                first_byte_ms: leg.first_byte.map(|at| at.as_secs_f64() * 1000.0),
                took_ms: leg.took.as_secs_f64() * 1000.0,
                error: leg.error.as_deref(),
                timed_out: leg.timed_out,
            }
        }
    }

    /// Headers as a JSON object, a repeated header's values joined with ", ";
    /// serialised straight from the map, without copies.
    struct HeadersView<'a>(&'a http::HeaderMap);

    impl Serialize for HeadersView<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(Some(self.0.keys_len()))?;
            for name in self.0.keys() {
                map.serialize_entry(name.as_str(), &header_values(self.0, name))?;
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
        duplicate_upstream: bool,
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
                duplicate_upstream: attempt.duplicate_upstream,
            }
        }
    }

    #[derive(Serialize)]
    struct VerdictView<'a> {
        valid: bool,
        problems: &'a [Problem],
        warnings: &'a [Problem],
        #[serde(skip_serializing_if = "is_zero")]
        omitted: u64,
    }

    fn is_zero(count: &u64) -> bool {
        *count == 0
    }

    impl<'a> From<&'a Verdict> for VerdictView<'a> {
        fn from(verdict: &'a Verdict) -> Self {
            VerdictView {
                valid: verdict.is_valid(),
                problems: &verdict.problems,
                warnings: &verdict.warnings,
                omitted: verdict.omitted,
            }
        }
    }

    fn reference_render(
        exchange: &Exchange,
        raw_body: Option<&str>,
        body_encoding: &'static str,
        body: &[u8],
    ) -> Vec<u8> {
        let answered_at = exchange.received_at
            + chrono::Duration::from_std(exchange.reply.took).unwrap_or_default();
        let line = Line {
            raw_body,
            id: exchange.id,
            received_at: timestamp(exchange.received_at),
            answered_at: timestamp(answered_at),
            peer: exchange.peer.to_string(),
            claimed_origin: exchange.claimed_origin(),
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
                BodyState::Malformed => "malformed",
                BodyState::OverBudget => "over_budget",
                BodyState::Stalled => "stalled",
            },
            body_encoding,
            verdict: exchange.verdict.as_ref().map(VerdictView::from),
            schema: exchange.schema.as_deref().unwrap_or("panther"),
            signature: &exchange.signature,
            attempt: exchange.attempt.as_ref().map(AttemptView::from),
            rejected: exchange.rejected.as_deref(),
            status: exchange.reply.outcome.status(),
            outcome: exchange.reply.outcome.label(),
            response_headers: matches!(exchange.reply.outcome, Outcome::Answered(_))
                .then_some(HeadersView(&exchange.reply.headers)),
            response_body: String::from_utf8_lossy(&exchange.reply.body).into_owned(),
            took_ms: exchange.reply.took.as_secs_f64() * 1000.0,
            upstream: exchange.upstream.as_ref().map(UpstreamView::from),
        };
        let mut out = Vec::new();
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut out, SafeFormatter(CompactFormatter));
        line.serialize(&mut serializer).unwrap();
        out.pop();
        out.extend_from_slice(b",\"body\":");
        out.extend_from_slice(body);
        out.push(b'}');
        out
    }

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

    fn exchange_for_rendering(variant: u64) -> Exchange {
        use chrono::TimeZone;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        headers.append("x-seen", http::HeaderValue::from_static("one"));
        if variant % 3 == 1 {
            headers.insert(
                "x-forwarded-for",
                http::HeaderValue::from_bytes(b"203.0.113.9\xc2\x9b, 10.0.0.1").unwrap(),
            );
        }
        headers.append(
            "x-seen",
            http::HeaderValue::from_bytes(b"tw\xc3\xa9\t\xc2\x9b \xff").unwrap(),
        );
        let body = br#"{"id":"a","title":"t\u001b"}"#;
        let received_at = chrono::Utc
            .timestamp_opt(
                1_700_000_000 + variant as i64 * 86_399,
                (variant as u32) * 7_654_321,
            )
            .unwrap();
        Exchange {
            id: variant * 1_000_003,
            received_at,
            peer: if variant % 2 == 0 {
                "127.0.0.1:4242".parse().unwrap()
            } else {
                "[::1]:80".parse().unwrap()
            },
            method: http::Method::POST,
            path: ["/", "/a b/\u{202e}é", "/\"q\\"][variant as usize % 3].into(),
            query: (variant % 2 == 1).then(|| "x=1&y=\u{1b}".to_owned()),
            version: "HTTP/1.1",
            headers,
            body: bytes::Bytes::from_static(body),
            body_state: [
                BodyState::Complete,
                BodyState::TooLarge { size: 99 },
                BodyState::Interrupted,
            ][variant as usize % 3],
            body_held: 0,
            verdict: (variant % 3 != 2).then(|| crate::alert::validate(body)),
            schema: (variant % 4 == 3).then(|| std::sync::Arc::from("push \u{1b}.json")),
            signature: (variant % 2 == 1).then(|| crate::signature::SignatureVerdict {
                scheme: "github".into(),
                check: crate::signature::Check::Malformed {
                    reason: "\"\u{1b}[31m\" is not hex".into(),
                },
            }),
            attempt: (variant % 2 == 0).then(|| Attempt {
                key: crate::alert::AlertKey {
                    value: "key\u{9b}".into(),
                    source: KeySource::AlertId,
                    resent: variant % 4 == 0,
                },
                number: variant as u32 + 1,
                gap: (variant > 0).then(|| std::time::Duration::from_micros(variant * 1234)),
                acknowledged: false,
                duplicate_upstream: variant % 3 == 0,
                route: None,
            }),
            rejected: (variant == 3).then(|| "no \"token\"".to_owned()),
            upstream: (variant % 3 != 0).then(|| UpstreamLeg {
                url: "http://127.0.0.1:3000/a b".into(),
                status: (variant % 3 == 1).then_some(202),
                version: (variant % 3 == 1).then_some("HTTP/2.0"),
                headers: http::HeaderMap::new(),
                body: bytes::Bytes::from_static(b"ok \xff\x1b[31m"),
                truncated: variant % 4 == 1,
                first_byte: (variant % 3 == 1).then(|| std::time::Duration::from_micros(1500)),
                took: std::time::Duration::from_micros(variant * 777),
                error: (variant % 3 == 2).then(|| "cannot connect: refused".to_owned()),
                timed_out: variant % 5 == 2,
            }),
            reply: crate::capture::Reply {
                outcome: [
                    crate::capture::Outcome::Answered(200),
                    crate::capture::Outcome::Hung,
                    crate::capture::Outcome::Answered(503),
                    crate::capture::Outcome::ClientGone,
                ][variant as usize % 4],
                headers: {
                    let mut headers = http::HeaderMap::new();
                    headers.insert("content-type", http::HeaderValue::from_static("text/plain"));
                    if variant % 2 == 0 {
                        headers.append("x-seen", http::HeaderValue::from_static("one"));
                        headers.append("x-seen", http::HeaderValue::from_static("two, three"));
                    }
                    headers
                },
                body: bytes::Bytes::from_static(b"ok \xff\n"),
                took: std::time::Duration::from_nanos(variant * 987_654_321),
            },
        }
    }

    #[test]
    fn hand_written_line_matches_the_serde_rendering() {
        for variant in 0..12 {
            let exchange = exchange_for_rendering(variant);
            for (raw_body, encoding) in [(None, "json"), (Some("{ \"a\" :\n1 }"), "text")] {
                let ours = render(
                    &exchange,
                    raw_body,
                    encoding,
                    Bytes::from_static(b"{\"a\":1}"),
                )
                .unwrap()
                .to_vec();
                let reference = reference_render(&exchange, raw_body, encoding, b"{\"a\":1}");
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(reference).unwrap(),
                    "variant {variant}"
                );
            }
        }
    }

    #[test]
    fn timestamps_match_chrono() {
        use chrono::TimeZone;
        for (seconds, nanos) in [
            (0, 0),
            (1_700_000_000, 999_999_999),
            (253_402_300_799, 1),
            (951_782_400, 123_456_789),
        ] {
            let at = chrono::Utc.timestamp_opt(seconds, nanos).unwrap();
            let mut ours = Vec::new();
            timestamp_into(&mut ours, at);
            assert_eq!(ours, format!("\"{}\"", timestamp(at)).into_bytes());
        }
    }

    #[test]
    fn a_safe_body_is_shared_not_copied() {
        let mut exchange = exchange_for_rendering(0);
        exchange.body = Bytes::from_static(br#"{"id":"a"}"#);
        exchange.verdict = Some(crate::alert::validate(&exchange.body));
        let line = json_line(&exchange);
        assert_eq!(line.parts()[1].as_ptr(), exchange.body.as_ptr());
        let text = String::from_utf8(line.to_vec()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["body"]["id"], "a");
        assert_eq!(line.len(), text.len());
    }

    #[test]
    fn peers_are_written_as_display_writes_them() {
        for address in [
            "0.0.0.0:0",
            "127.0.0.1:8081",
            "255.255.255.255:65535",
            "[::1]:443",
        ] {
            let address: std::net::SocketAddr = address.parse().unwrap();
            let mut ours = Vec::new();
            peer(&mut ours, address);
            assert_eq!(ours, address.to_string().into_bytes());
        }
    }
}
