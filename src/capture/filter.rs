//! Finding exchanges: the one filter language of the inspector's find bar,
//! `/api/requests`, the HAR export, and `export`/`replay --filter`. Pure: parsed from
//! query parameters (or `FIELD=VALUE` flags), matched against an exchange or a record line.

use std::collections::HashMap;

use super::{Exchange, Outcome, RecordLine};

/// Conditions on exchanges; every one given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only the exchange with this id.
    pub id: Option<u64>,
    /// Only ids after this one.
    pub since: u64,
    /// Only ids before this one: the cursor of the next page, newest first.
    pub before: Option<u64>,
    /// A status (`503`), a class (`5xx`), or an outcome (`dropped`, `reset`, `hung`, `client-gone`).
    pub status: Option<String>,
    /// `valid`, `invalid` or `none`.
    pub verdict: Option<String>,
    /// The method, any case.
    pub method: Option<String>,
    /// A path prefix, matched segment by segment (`/a` matches `/a` and `/a/b`, not `/ab`).
    pub path: Option<String>,
    /// The alert key (`alertId`, else `id`), exactly.
    pub alert: Option<String>,
    /// The alert's severity, any case.
    pub severity: Option<String>,
    /// Only exchanges with something to look at: schema problems or warnings, a
    /// signature that is not valid, a refusal, no 2XX, an upstream failure.
    pub problems: bool,
    /// Text found in the headers (names or values) or the body, any case.
    pub text: Option<Needle>,
}

/// The longest text a find may look for: the search is linear in what it reads,
/// and a query is typed by a person.
pub const MAX_NEEDLE: usize = 1024;

/// Text to find, any ASCII case, in time linear in what is searched (an
/// Aho-Corasick automaton, not a window compared at every offset).
#[derive(Clone)]
pub struct Needle {
    text: String,
    finder: aho_corasick::AhoCorasick,
}

impl Needle {
    /// A needle for `text`, or why it cannot be one.
    pub fn new(text: &str) -> Result<Needle, String> {
        if text.len() > MAX_NEEDLE {
            return Err(format!(
                "q is {} bytes long; a search looks for at most {MAX_NEEDLE}",
                text.len()
            ));
        }
        let finder = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build([text])
            .map_err(|error| format!("q cannot be searched for: {error}"))?;
        Ok(Needle {
            text: text.to_owned(),
            finder,
        })
    }

    /// The text looked for.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn is_in(&self, bytes: &[u8]) -> bool {
        self.finder.is_match(bytes)
    }

    /// Whether a record line writes this text as it is wherever it occurs: ASCII
    /// letters, digits and punctuation that no JSON string escapes (not `"`, `\`,
    /// nor `<`, `>`, `&`, which HTML-safe encoders escape).
    fn is_written_as_is(&self) -> bool {
        self.text.bytes().all(|byte| {
            byte.is_ascii_graphic() && !matches!(byte, b'"' | b'\\' | b'<' | b'>' | b'&')
                || byte == b' '
        })
    }
}

impl PartialEq for Needle {
    fn eq(&self, other: &Needle) -> bool {
        self.text == other.text
    }
}

impl Eq for Needle {}

impl std::fmt::Debug for Needle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Needle").field(&self.text).finish()
    }
}

impl Filter {
    /// Reads the query parameters `id`, `since`, `status`, `verdict`, `method`, `path`,
    /// `alert`, `severity`, `problems` (`true`/`1`) and `q`; others are left to the caller.
    pub fn from_query(query: &HashMap<String, String>) -> Result<Filter, String> {
        let text = |name: &str| query.get(name).filter(|v| !v.is_empty()).cloned();
        let number = |name: &str| {
            query
                .get(name)
                .map(|value| {
                    value
                        .parse::<u64>()
                        .map_err(|_| format!("{name} must be a number, got {value:?}"))
                })
                .transpose()
        };
        let id = number("id")?;
        let since = number("since")?.unwrap_or(0);
        let before = number("before")?;
        let status = text("status");
        if let Some(status) = &status {
            let known = status.parse::<u16>().is_ok_and(|s| (100..600).contains(&s))
                || matches!(status.as_str(), "1xx" | "2xx" | "3xx" | "4xx" | "5xx")
                || matches!(
                    status.as_str(),
                    "dropped" | "reset" | "hung" | "client-gone"
                );
            if !known {
                return Err(format!(
                    "status must be a code (503), a class (5xx) or dropped, reset, hung, client-gone; got {status:?}"
                ));
            }
        }
        let verdict = text("verdict");
        if let Some(other) = verdict
            .as_deref()
            .filter(|v| !matches!(*v, "valid" | "invalid" | "none"))
        {
            return Err(format!(
                "verdict must be valid, invalid or none, got {other:?}"
            ));
        }
        let problems = match query.get("problems").map(String::as_str) {
            None | Some("" | "false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => return Err(format!("problems must be true or false, got {other:?}")),
        };
        Ok(Filter {
            id,
            since,
            before,
            status,
            verdict,
            method: text("method"),
            path: text("path"),
            alert: text("alert"),
            severity: text("severity"),
            problems,
            text: text("q").as_deref().map(Needle::new).transpose()?,
        })
    }

    /// Reads `FIELD=VALUE` conditions (`export --filter`, `replay --filter`), the
    /// fields and values of [`Filter::from_query`]; a field given twice keeps the last.
    pub fn from_pairs(pairs: &[String]) -> Result<Filter, String> {
        let mut query = HashMap::new();
        for pair in pairs {
            let (field, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("expected FIELD=VALUE ({FIELDS}), got {pair:?}"))?;
            if !FIELDS.split(", ").any(|known| known == field) {
                return Err(format!("unknown filter field {field:?} ({FIELDS})"));
            }
            query.insert(field.to_owned(), value.to_owned());
        }
        Filter::from_query(&query)
    }

    /// A stored record line, read, when it passes (the text scanned first, see
    /// [`Filter::may_match_text`]).
    pub(crate) fn read_if_passes<'a>(&self, line: &'a str) -> Option<super::RecordLine<'a>> {
        if !self.may_match_text(line) {
            return None;
        }
        super::RecordLine::parse(line)
            .ok()
            .filter(|parsed| self.matches_line(parsed))
    }

    /// Whether a record line, as the text it is, may pass: `false` only when the
    /// text looked for is written as it is and is nowhere in the line (a body kept
    /// as base64 is searched decoded, so such a line may pass). A scan of the text
    /// is ten times cheaper than reading the line, so a search of the store reads
    /// only the lines that may pass.
    pub fn may_match_text(&self, line: &str) -> bool {
        match &self.text {
            Some(needle) if needle.is_written_as_is() => {
                needle.is_in(line.as_bytes()) || line.contains(r#""body_encoding":"base64""#)
            }
            _ => true,
        }
    }

    /// Whether a record line passes every condition, read as the exchange it records
    /// (a line keeps no signature nor refusal: `problems` reads its verdict, its
    /// status and its upstream).
    pub fn matches_line(&self, line: &RecordLine<'_>) -> bool {
        self.id.is_none_or(|id| line.id == id)
            && line.id > self.since
            && self.before.is_none_or(|before| line.id < before)
            && self
                .status
                .as_deref()
                .is_none_or(|wanted| match line.status {
                    Some(status) => status_matches(wanted, Outcome::Answered(status)),
                    None => line.outcome.as_deref() == Some(wanted),
                })
            && self
                .verdict
                .as_deref()
                .is_none_or(|v| line.verdict_label() == v)
            && self
                .method
                .as_deref()
                .is_none_or(|m| line.method.eq_ignore_ascii_case(m))
            && self
                .path
                .as_deref()
                .is_none_or(|p| path_matches(p, &line.path))
            && self.alert.as_deref().is_none_or(|a| {
                line.attempt
                    .as_ref()
                    .is_some_and(|attempt| attempt.key_source != "body" && attempt.key == a)
            })
            && self.severity.as_deref().is_none_or(|s| {
                severity_in(line.body.get().as_bytes())
                    .is_some_and(|own| own.eq_ignore_ascii_case(s))
            })
            && (!self.problems || line_has_problems(line))
            && self.text.as_ref().is_none_or(|q| {
                line.body_bytes().is_ok_and(|body| q.is_in(&body))
                    || q.is_in(line.path.as_bytes())
                    || line
                        .headers
                        .iter()
                        .any(|(name, value)| q.is_in(name.as_bytes()) || q.is_in(value.as_bytes()))
            })
    }

    /// Whether the exchange passes every condition.
    pub fn matches(&self, exchange: &Exchange) -> bool {
        self.id.is_none_or(|id| exchange.id == id)
            && exchange.id > self.since
            && self.before.is_none_or(|before| exchange.id < before)
            && self
                .status
                .as_deref()
                .is_none_or(|s| status_matches(s, exchange.reply.outcome))
            && self
                .verdict
                .as_deref()
                .is_none_or(|v| exchange.verdict_label() == v)
            && self
                .method
                .as_deref()
                .is_none_or(|m| exchange.method.as_str().eq_ignore_ascii_case(m))
            && self
                .path
                .as_deref()
                .is_none_or(|p| path_matches(p, &exchange.path))
            && self.alert.as_deref().is_none_or(|a| {
                exchange
                    .attempt
                    .as_ref()
                    .is_some_and(|attempt| attempt.key.is_alert() && attempt.key.value == a)
            })
            && self.severity.as_deref().is_none_or(|s| {
                severity_of(exchange).is_some_and(|own| own.eq_ignore_ascii_case(s))
            })
            && (!self.problems || has_problems(exchange))
            && self
                .text
                .as_ref()
                .is_none_or(|q| contains_text(exchange, q))
    }
}

fn status_matches(wanted: &str, outcome: Outcome) -> bool {
    match (wanted.as_bytes(), outcome) {
        ([class, b'x', b'x'], Outcome::Answered(status)) => u16::from(class - b'0') == status / 100,
        (_, Outcome::Answered(status)) => wanted.parse::<u16>() == Ok(status),
        (_, other) => other.label() == wanted,
    }
}

fn path_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.is_empty(),
        None => false,
    }
}

/// The fields a filter reads, as flags and the API name them.
const FIELDS: &str =
    "id, since, before, status, verdict, method, path, alert, severity, problems, q";

/// The `severity` of a JSON body, read without building a tree of the rest.
fn severity_of(exchange: &Exchange) -> Option<String> {
    severity_in(&exchange.body)
}

fn severity_in(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Severity {
        severity: Option<String>,
    }
    serde_json::from_slice::<Severity>(body)
        .ok()
        .and_then(|body| body.severity)
}

/// A record line's share of [`has_problems`]: a verdict with problems or warnings,
/// no 2XX, an upstream that failed.
fn line_has_problems(line: &RecordLine<'_>) -> bool {
    let verdict = line
        .verdict
        .as_ref()
        .is_some_and(|verdict| !verdict.valid || verdict.problems + verdict.warnings > 0);
    let answered_2xx = line
        .status
        .is_some_and(|status| (200..300).contains(&status));
    let upstream = line
        .upstream
        .as_ref()
        .is_some_and(|leg| leg.error.is_some());
    verdict || !answered_2xx || upstream
}

fn has_problems(exchange: &Exchange) -> bool {
    let verdict = exchange
        .verdict
        .as_ref()
        .is_some_and(|v| !v.problems.is_empty() || !v.warnings.is_empty());
    let signature = exchange.signature.as_ref().is_some_and(|s| !s.is_valid());
    let answered_2xx = matches!(exchange.reply.outcome, Outcome::Answered(200..=299));
    let upstream = exchange
        .upstream
        .as_ref()
        .is_some_and(|leg| leg.error.is_some());
    verdict || signature || exchange.rejected.is_some() || !answered_2xx || upstream
}

fn contains_text(exchange: &Exchange, needle: &Needle) -> bool {
    let found = |bytes: &[u8]| needle.is_in(bytes);
    found(exchange.body.as_ref())
        || found(exchange.path.as_bytes())
        || exchange
            .headers
            .iter()
            .any(|(name, value)| found(name.as_str().as_bytes()) || found(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(id: u64, path: &str, status: u16, body: &str) -> Exchange {
        let mut exchange = Exchange::posted(id, path, status, body.as_bytes());
        exchange.verdict = Some(crate::alert::validate(body.as_bytes()));
        exchange
            .headers
            .insert("x-trace", http::HeaderValue::from_static("Trace-ABC"));
        exchange
    }

    fn filter(query: &[(&str, &str)]) -> Filter {
        let map = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Filter::from_query(&map).unwrap()
    }

    #[test]
    fn each_condition_narrows() {
        let a = exchange(
            1,
            "/alerts/x",
            503,
            r#"{"severity":"HIGH","title":"Disk full"}"#,
        );
        let b = exchange(2, "/alertsx", 200, r#"{"severity":"low"}"#);
        let matching = |query: &[(&str, &str)]| -> Vec<u64> {
            let filter = filter(query);
            [&a, &b]
                .iter()
                .filter(|e| filter.matches(e))
                .map(|e| e.id)
                .collect()
        };
        assert_eq!(matching(&[("status", "5xx")]), [1]);
        assert_eq!(matching(&[("status", "200")]), [2]);
        assert_eq!(matching(&[("path", "/alerts")]), [1]);
        assert_eq!(matching(&[("severity", "high")]), [1]);
        assert_eq!(matching(&[("q", "disk FULL")]), [1]);
        assert_eq!(matching(&[("q", "trace-abc")]), [1, 2], "header values too");
        assert_eq!(matching(&[("method", "post"), ("since", "1")]), [2]);
        assert_eq!(
            matching(&[("problems", "true")]),
            [1, 2],
            "both are invalid alerts"
        );
        assert_eq!(matching(&[]), [1, 2]);
    }

    #[test]
    fn bad_values_say_why() {
        let error = |query: &[(&str, &str)]| {
            let map = query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Filter::from_query(&map).unwrap_err()
        };
        assert!(error(&[("status", "6xx")]).contains("status"));
        assert!(error(&[("verdict", "maybe")]).contains("verdict"));
        assert!(error(&[("problems", "yes")]).contains("problems"));
        assert!(error(&[("since", "x")]).contains("since"));
    }

    #[test]
    fn the_text_scan_never_leaves_out_a_line_that_matches() {
        let lines: Vec<String> = [
            exchange(
                1,
                "/a",
                200,
                r#"{"title":"Disk FULL on <b> & \"c\"","ip":"h\u00e9"}"#,
            ),
            exchange(2, "/b", 200, "plain text, hello world \u{2028} é"),
            Exchange::posted(3, "/c", 200, b"\x00\x01binary secret-in-binary \xff"),
        ]
        .iter()
        .map(|exchange| String::from_utf8(super::super::record_line(exchange).to_vec()).unwrap())
        .collect();
        for needle in [
            "disk full",
            "trace-abc",
            "hello world",
            "secret-in-binary",
            "é",
            r#"\"c\""#,
            "<b>",
            "nowhere",
            "/a",
            "he",
        ] {
            let filter = Filter::from_pairs(&[format!("q={needle}")]).unwrap();
            for line in &lines {
                let matches = filter.matches_line(&RecordLine::parse(line).unwrap());
                assert!(
                    !matches || filter.may_match_text(line),
                    "{needle:?} matches but the scan left out {line}"
                );
            }
        }
        assert!(
            lines[2].contains(r#""body_encoding":"base64""#),
            "{}",
            lines[2]
        );
        let binary = Filter::from_pairs(&["q=secret-in-binary".to_owned()]).unwrap();
        assert!(binary.matches_line(&RecordLine::parse(&lines[2]).unwrap()));
        let absent = Filter::from_pairs(&["q=nowhere".to_owned()]).unwrap();
        assert!(
            !absent.may_match_text(&lines[0]),
            "a plain text not there is left out"
        );
        let quoted = Filter::from_pairs(&[r#"q=a"b"#.to_owned()]).unwrap();
        assert!(
            quoted.may_match_text(&lines[0]),
            "a quote may be escaped: read the line"
        );
    }

    #[test]
    fn record_lines_are_found_in_the_same_language() {
        let line = RecordLine::parse(
            r#"{"id":7,"method":"POST","path":"/alerts/x","headers":{"x-trace":"Trace-ABC"},"body_encoding":"json","body":{"severity":"HIGH"},"status":500,"verdict":{"valid":false,"problems":[{"pointer":"/id"}],"warnings":[]},"attempt":{"key":"abc","key_source":"alertId","number":2}}"#,
        )
        .unwrap();
        for (pair, expected) in [
            ("id=7", true),
            ("id=8", false),
            ("since=6", true),
            ("path=/alerts", true),
            ("path=/alert", false),
            ("method=post", true),
            ("verdict=invalid", true),
            ("verdict=valid", false),
            ("status=500", true),
            ("status=5xx", true),
            ("status=4xx", false),
            ("alert=abc", true),
            ("severity=high", true),
            ("problems=true", true),
            ("q=trace-abc", true),
            ("q=nowhere", false),
        ] {
            let filter = Filter::from_pairs(&[pair.to_owned()]).unwrap();
            assert_eq!(filter.matches_line(&line), expected, "{pair}");
        }
        for bad in [
            "colour=red",
            "id=x",
            "verdict=maybe",
            "nothing",
            "status=600",
        ] {
            assert!(Filter::from_pairs(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }
}
