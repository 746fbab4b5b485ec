//! The values people type, parsed once for every place that takes them (flags,
//! the builder, the admin API): durations, sizes, statuses, headers, rates.
//! A leaf: it depends on no other module of hookscope.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use thiserror::Error;

/// A typed value that cannot be used; its message names what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    /// Not a status code an HTTP answer can carry.
    #[error("status must be a number from 100 to 599, got {0:?}")]
    Status(String),
    /// Not of the form `Name: value`, or not a legal header.
    #[error("header must look like 'Name: value', got {given:?}: {reason}")]
    Header {
        /// The text as given.
        given: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a fraction from 0 to 1.
    #[error("expected a fraction from 0 to 1 (e.g. 0.2), got {0:?}")]
    Rate(String),
    /// Not a duration.
    #[error("expected a duration such as 250ms, 2s or 1m30s, got {0:?}")]
    Duration(String),
    /// A required header (a secret) that cannot be one; its text is not shown.
    #[error("a required header must look like 'Name: value'{}: {reason} (the value is a secret, so it is not shown)", .name.as_deref().map(|name| format!(" (for {name:?})")).unwrap_or_default())]
    SecretHeader {
        /// The header's name, when it is one.
        name: Option<String>,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A required header with an empty value, which is usually an unset variable.
    #[error(
        "the value required for {0} is empty (an unset variable?); to require an empty value on purpose, write '{0}: \"\"'"
    )]
    EmptyRequiredValue(String),
    /// A header that frames the answer, which hookscope writes itself.
    #[error(
        "{0} cannot be set on answers: hookscope writes the framing of each answer itself (a wrong {0} would cut or hang it)"
    )]
    FramingHeader(String),
    /// Not an http(s) URL.
    #[error("expected an http:// or https:// URL such as http://localhost:8081/, got {0:?}")]
    Url(String),
    /// Not a size.
    #[error("expected a size such as 64KiB, 1MiB, 10MB or 1048576 (bytes), got {0:?}")]
    Size(String),
}

/// Parses a duration such as `250ms`, `2s` or `1m30s` (`0` alone is allowed).
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text.trim()).map_err(|_| ValueError::Duration(text.into()))
}

/// Parses a size such as `64KiB`, `10MB` or `1048576`.
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| ValueError::Size(text.into()))
}

/// Parses a size for a buffer in memory, as [`parse_size`] does.
pub fn parse_size_usize(text: &str) -> Result<usize, ValueError> {
    let size = parse_size(text)?;
    usize::try_from(size).map_err(|_| ValueError::Size(text.into()))
}

/// Parses a status code for an answer: 100 to 599.
pub fn parse_status(text: &str) -> Result<StatusCode, ValueError> {
    text.trim()
        .parse::<u16>()
        .map_err(|_| ValueError::Status(text.into()))
        .and_then(status_from_u16)
}

/// A status code for an answer: 100 to 599 (`http` allows up to 999).
pub fn status_from_u16(code: u16) -> Result<StatusCode, ValueError> {
    Some(code)
        .filter(|code| (100..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| ValueError::Status(code.to_string()))
}

/// Parses a failure rate: a fraction from 0 to 1.
pub fn parse_fail_rate(text: &str) -> Result<f64, ValueError> {
    text.trim()
        .parse::<f64>()
        .map_err(|_| ValueError::Rate(text.into()))
        .and_then(fail_rate)
}

/// A failure rate: a fraction from 0 to 1.
pub fn fail_rate(rate: f64) -> Result<f64, ValueError> {
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(ValueError::Rate(rate.to_string()))
    }
}

/// Parses a header given as `Name: value`.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), ValueError> {
    let error = |reason| ValueError::Header {
        given: text.into(),
        reason,
    };
    let (name, value) = text.split_once(':').ok_or_else(|| error("no ':'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| error("the name is not a valid header name"))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| error("the value has characters a header cannot carry"))?;
    Ok((name, value))
}

/// Parses the URL of a receiver: http or https, with a host (`localhost:8081` alone
/// would parse as a URL of scheme `localhost`).
pub fn parse_http_url(text: &str) -> Result<url::Url, ValueError> {
    match url::Url::parse(text.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        _ => Err(ValueError::Url(text.into())),
    }
}

/// How a received secret header (`--require-header`) is shown and kept: never its
/// text, only its length and whether it matched.
pub fn mask(value: &[u8], matches: bool) -> String {
    let verdict = if matches { "matches" } else { "does not match" };
    format!("{MASK_START}{} bytes, {verdict}>", value.len())
}

/// How every [`mask`] starts.
const MASK_START: &str = "<masked: ";

/// Whether a kept header value is a [`mask`], not what was sent: a replay must
/// not send it as the secret.
pub fn is_mask(value: &str) -> bool {
    value == "<masked>" || (value.starts_with(MASK_START) && value.ends_with('>'))
}

/// Headers that frame the message or the connection, which hookscope writes
/// itself: an answer header among them would contradict the answer on the wire
/// (`Content-Length: 0` with a body, `Transfer-Encoding: chunked` without chunks).
const FRAMING_HEADERS: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Refuses a header an answer must not carry: one that frames the message or the connection.
pub fn check_answer_header(name: &HeaderName) -> Result<(), ValueError> {
    if FRAMING_HEADERS.contains(&name.as_str()) {
        return Err(ValueError::FramingHeader(name.to_string()));
    }
    Ok(())
}

/// Parses a header to add to every answer, as `Name: value`; framing headers are refused.
pub fn parse_answer_header(text: &str) -> Result<(HeaderName, HeaderValue), ValueError> {
    let (name, value) = parse_header(text)?;
    check_answer_header(&name)?;
    Ok((name, value))
}

/// Parses a header a request must carry, as `Name: value`. An empty value is
/// refused, because it is what an unset variable gives (`"X-Token: $TOKEN"`), and
/// every real request would then get 401; `Name: ""` requires an empty value on purpose.
pub fn parse_required_header(text: &str) -> Result<(HeaderName, HeaderValue), ValueError> {
    let (name, value) = parse_header(text).map_err(|error| match error {
        ValueError::Header { reason, .. } => ValueError::SecretHeader {
            name: text
                .split_once(':')
                .and_then(|(name, _)| HeaderName::from_bytes(name.trim().as_bytes()).ok())
                .map(|name| name.to_string()),
            reason,
        },
        other => other,
    })?;
    match value.as_bytes() {
        b"" => Err(ValueError::EmptyRequiredValue(name.to_string())),
        b"\"\"" => Ok((name, HeaderValue::from_static(""))),
        _ => Ok((name, value)),
    }
}

/// The command-line parser of `--require-header`: its error names the flag and what
/// is wrong, never the text given (clap's own message would quote it: a secret).
#[derive(Debug, Clone, Copy)]
pub struct RequiredHeaderParser;

impl clap::builder::TypedValueParser for RequiredHeaderParser {
    type Value = (HeaderName, HeaderValue);

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let flag = arg.map_or_else(|| "--require-header".to_owned(), ToString::to_string);
        let refuse = |reason: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for {flag}: {reason}\n"),
            )
            .with_cmd(command)
        };
        let text = value.to_str().ok_or_else(|| {
            refuse("it is not UTF-8 text (the value is a secret, so it is not shown)".into())
        })?;
        parse_required_header(text).map_err(|error| refuse(error.to_string()))
    }
}

/// Whether a Content-Type value is JSON: `application/json`, in any case, with or
/// without parameters (`; charset=utf-8`), and nothing else (`application/jsonx`).
pub fn is_json_media_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// An answer body given as text.
pub fn parse_body(text: &str) -> Result<Bytes, std::convert::Infallible> {
    Ok(Bytes::copy_from_slice(text.as_bytes()))
}

/// `text` cut after `most` characters, with `…` where something was cut: a long
/// value shown in one line of a report.
pub fn at_most_chars(text: &str, most: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(most) {
        Some((cut, _)) => format!("{}…", &text[..cut]).into(),
        None => text.into(),
    }
}

/// An error and its causes on one line, each cause once ("cannot connect: Connection
/// refused (os error 111)"): how hookscope reports errors it did not write itself.
pub fn error_with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character() {
        assert_eq!(at_most_chars("short", 5), "short");
        assert_eq!(at_most_chars("éééé", 2), "éé…");
        assert!(matches!(
            at_most_chars("kept", 9),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1KiB").is_err());
    }

    #[test]
    fn statuses_in_range_only() {
        assert_eq!(parse_status("200"), Ok(StatusCode::OK));
        assert_eq!(parse_status("599").unwrap().as_u16(), 599);
        for bad in ["99", "600", "1000", "abc", "", "-1", "200.0"] {
            assert!(parse_status(bad).is_err(), "{bad}");
        }
        assert!(status_from_u16(42).is_err());
        assert!(status_from_u16(700).is_err());
    }

    #[test]
    fn receiver_urls_need_http_or_https_and_a_host() {
        assert!(parse_http_url("http://localhost:8081/").is_ok());
        assert!(parse_http_url("https://[::1]:443/alerts?x=1").is_ok());
        for bad in [
            "localhost:18599",
            "ftp://x/",
            "file:///etc/passwd",
            "",
            "not a url",
        ] {
            let error = parse_http_url(bad).unwrap_err().to_string();
            assert!(error.contains("http://"), "{bad}: {error}");
        }
    }

    #[test]
    fn an_empty_required_value_must_be_meant() {
        let error = parse_required_header("X-Panther-Token: ")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unset variable") && error.contains("x-panther-token"),
            "{error}"
        );
        let (_, value) = parse_required_header(r#"X-Empty: """#).unwrap();
        assert_eq!(value, "");
        assert_eq!(parse_required_header("X-T: s3cret").unwrap().1, "s3cret");
    }

    #[test]
    fn framing_headers_are_not_answer_headers() {
        for framing in [
            "Content-Length: 0",
            "transfer-encoding: chunked",
            "Connection: close",
        ] {
            let error = parse_answer_header(framing).unwrap_err().to_string();
            assert!(error.contains("cannot be set on answers"), "{error}");
        }
        assert!(parse_answer_header("Retry-After: 5").is_ok());
    }

    #[test]
    fn rates_from_zero_to_one() {
        assert_eq!(parse_fail_rate("0.25"), Ok(0.25));
        for bad in ["1.5", "-0.1", "half", "NaN"] {
            assert!(parse_fail_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_need_a_colon_and_legal_parts() {
        let (name, value) = parse_header("X-Trace:  abc ").unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-trace", "abc"));
        let (_, value) = parse_header("Link: <http://a>; rel=x").unwrap();
        assert_eq!(value, "<http://a>; rel=x");
        assert!(parse_header("NoColon").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert!(parse_header(": x").is_err());
        assert!(parse_header("X-A: a\nb").is_err());
    }
}
