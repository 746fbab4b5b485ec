//! HAR 1.2 (the HTTP Archive format browsers' DevTools import and export): the
//! exchanges of a record or of the history, as one document. Built from record
//! lines, so that `hookscope export RECORD --har` and the inspector's export are
//! the same code. (Reading a HAR file back, for a replay, is `send`'s.)

use serde_json::{Value, json};

use super::RecordLine;
use super::line::HeaderLines;

/// What a HAR document written one entry at a time starts with (see [`har_entry`]);
/// the entries follow, separated by commas, then [`HAR_END`].
pub const HAR_START: &str = concat!(
    r#"{"log":{"version":"1.2","creator":{"name":"hookscope","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""},"entries":["#
);

/// What a HAR document written one entry at a time ends with.
pub const HAR_END: &str = "]}}";

/// One HAR entry (none for a request whose head could not be read).
pub fn har_entry(line: &RecordLine<'_>) -> Option<Value> {
    entry(line)
}

/// A HAR 1.2 document holding these exchanges, in order.
pub fn har<'a>(lines: impl IntoIterator<Item = RecordLine<'a>>) -> Value {
    let entries: Vec<Value> = lines.into_iter().filter_map(|line| entry(&line)).collect();
    json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "hookscope", "version": env!("CARGO_PKG_VERSION")},
            "entries": entries,
        }
    })
}

/// Each header line as a HAR name and value: a repeated header stays one entry per line.
fn pairs(headers: &HeaderLines) -> Vec<Value> {
    headers
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}

fn entry(line: &RecordLine<'_>) -> Option<Value> {
    if line.is_unreadable_head() {
        return None;
    }
    let body = line.body_bytes().ok()?;
    let text = String::from_utf8_lossy(&body).into_owned();
    let host = line.headers.get("host").unwrap_or("localhost");
    let url = match &line.query {
        Some(query) => format!("http://{host}{}?{query}", line.path),
        None => format!("http://{host}{}", line.path),
    };
    let query: Vec<Value> =
        form_urlencoded::parse(line.query.as_deref().unwrap_or_default().as_bytes())
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
    let mime = line
        .headers
        .get("content-type")
        .unwrap_or("application/octet-stream");
    let version = line.version.clone().unwrap_or_else(|| "HTTP/1.1".into());
    let answer = line.response_body.clone().unwrap_or_default();
    // What the sender was told: hookscope's answer's headers (in forward mode, the
    // upstream's passed on), or, in lines from before those were kept, the upstream's.
    let answered = line
        .response_headers
        .as_ref()
        .or_else(|| line.upstream.as_ref().map(|upstream| &upstream.headers));
    let answer_headers = answered.map(pairs).unwrap_or_default();
    let answer_mime = answered
        .and_then(|headers| headers.get("content-type"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let json = serde_json::from_str::<serde::de::IgnoredAny>(&answer).is_ok();
            if json {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            }
            .into()
        });
    // No answer (dropped, reset, hung): status 0, as browsers write a failed request.
    let status = line.status.unwrap_or(0);
    let status_text = match line.status {
        Some(code) => http::StatusCode::from_u16(code)
            .ok()
            .and_then(|code| code.canonical_reason())
            .unwrap_or("")
            .to_owned(),
        None => line.outcome.clone().unwrap_or_default(),
    };
    let took = line.took_ms.unwrap_or(0.0);
    Some(json!({
        "startedDateTime": line.received_at.clone().unwrap_or_else(|| "1970-01-01T00:00:00Z".into()),
        "time": took,
        "request": {
            "method": line.method,
            "url": url,
            "httpVersion": version,
            "cookies": [],
            "headers": pairs(&line.headers),
            "queryString": query,
            "postData": {"mimeType": mime, "text": text},
            "headersSize": -1,
            "bodySize": body.len(),
        },
        "response": {
            "status": status,
            "statusText": status_text,
            "httpVersion": version,
            "cookies": [],
            "headers": answer_headers,
            "content": {"size": answer.len(), "mimeType": answer_mime, "text": answer},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": answer.len(),
        },
        "cache": {},
        "timings": {"send": 0, "wait": took, "receive": 0},
        "_hookscope": {"id": line.id},
    }))
}
