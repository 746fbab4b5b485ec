//! Webhook signatures, checked offline (`--verify SCHEME:SECRET`) and made
//! (`send --sign SCHEME:SECRET`): Standard Webhooks, GitHub, Stripe, Slack, Shopify,
//! and a generic HMAC-SHA256 header. Pure: the time is passed in.
//!
//! HMAC-SHA256 comes from the RustCrypto `hmac` and `sha2` crates; comparisons go
//! in constant time (`subtle`), one MAC per content tried whatever the number of signatures.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How long a signed timestamp may be off the clock, by default (Stripe's and the
/// Standard Webhooks libraries' 5 minutes).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// How a signature is encoded in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lower-case hex.
    Hex,
    /// Standard base64.
    Base64,
}

/// A signature scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// standardwebhooks.com: `webhook-id`, `webhook-timestamp`, `webhook-signature:
    /// v1,<base64>` over `id.timestamp.body`, a `whsec_` base64 secret.
    StandardWebhooks,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body.
    Github,
    /// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>` over `t.body`.
    Stripe,
    /// Slack: `X-Slack-Signature: v0=<hex>` over `v0:timestamp:body`, with
    /// `X-Slack-Request-Timestamp`.
    Slack,
    /// Shopify: `X-Shopify-Hmac-Sha256: <base64>` over the body.
    Shopify,
    /// Any header holding an HMAC-SHA256 of the body, hex or base64, after a prefix.
    Generic {
        /// The header.
        header: HeaderName,
        /// How the MAC is written.
        encoding: Encoding,
        /// Text before the MAC (`sha256=`), if any.
        prefix: String,
    },
}

impl Scheme {
    /// The name flags use.
    pub fn name(&self) -> String {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks".into(),
            Scheme::Github => "github".into(),
            Scheme::Stripe => "stripe".into(),
            Scheme::Slack => "slack".into(),
            Scheme::Shopify => "shopify".into(),
            Scheme::Generic { header, .. } => format!("hmac-sha256/{header}"),
        }
    }

    /// The header that carries the signature.
    pub fn signature_header(&self) -> HeaderName {
        match self {
            Scheme::StandardWebhooks => HeaderName::from_static("webhook-signature"),
            Scheme::Github => HeaderName::from_static("x-hub-signature-256"),
            Scheme::Stripe => HeaderName::from_static("stripe-signature"),
            Scheme::Slack => HeaderName::from_static("x-slack-signature"),
            Scheme::Shopify => HeaderName::from_static("x-shopify-hmac-sha256"),
            Scheme::Generic { header, .. } => header.clone(),
        }
    }
}

/// A secret, never shown: its `Debug` and `Display` say only how long it is.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes, not shown>)", self.0.len())
    }
}

/// A scheme with its secret: one `--verify` or `--sign`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The scheme.
    pub scheme: Scheme,
    secret: Secret,
    /// The text of the secret as given (for Standard Webhooks, the `whsec_` form),
    /// kept to tell apart "a key used as text" in hints.
    raw_secret: Secret,
}

/// A `--verify`/`--sign` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

const SCHEMES: &str = "standard-webhooks, github, stripe, slack, shopify, or hmac-sha256/HEADER[/hex|base64[/PREFIX]]";

impl FromStr for Key {
    type Err = KeyError;

    /// `SCHEME:SECRET`, where SECRET is the secret itself, `env:NAME` (read from the
    /// environment) or `file:PATH` (read from a file, a final newline dropped), so
    /// that it stays out of shell history and `ps`.
    fn from_str(text: &str) -> Result<Key, KeyError> {
        let (scheme, secret) = text.split_once(':').ok_or_else(|| {
            KeyError(format!(
                "expected SCHEME:SECRET (SCHEME one of {SCHEMES}; SECRET the secret, env:NAME or file:PATH)"
            ))
        })?;
        let scheme = parse_scheme(scheme)?;
        let secret = read_secret(secret)?;
        if secret.is_empty() {
            return Err(KeyError(
                "the secret is empty (an unset variable or an empty file?)".into(),
            ));
        }
        let key = match scheme {
            Scheme::StandardWebhooks => {
                let encoded = secret.strip_prefix("whsec_").unwrap_or(&secret);
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|error| {
                        KeyError(format!(
                            "a standard-webhooks secret is whsec_ followed by base64: {error}"
                        ))
                    })?
            }
            _ => secret.as_bytes().to_vec(),
        };
        Ok(Key {
            scheme,
            secret: Secret(key),
            raw_secret: Secret(secret.into_bytes()),
        })
    }
}

/// Parses `--verify`/`--sign` values for clap without ever echoing them: clap's
/// own message for a bad value quotes it, and this one holds a secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyParser;

impl clap::builder::TypedValueParser for KeyParser {
    type Value = Key;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Key, clap::Error> {
        let flag = arg.map_or_else(|| "the key".to_owned(), |arg| arg.to_string());
        let refuse = |why: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '{flag}' (not shown: it holds a secret): {why}\n"),
            )
            .with_cmd(command)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("it is not UTF-8".into()))?;
        text.parse::<Key>()
            .map_err(|error| refuse(error.to_string()))
    }
}

fn parse_scheme(text: &str) -> Result<Scheme, KeyError> {
    let scheme = match text.trim() {
        "standard-webhooks" => Scheme::StandardWebhooks,
        "github" => Scheme::Github,
        "stripe" => Scheme::Stripe,
        "slack" => Scheme::Slack,
        "shopify" => Scheme::Shopify,
        generic if generic.starts_with("hmac-sha256/") => {
            let mut parts = generic["hmac-sha256/".len()..].splitn(3, '/');
            let header = parts.next().unwrap_or_default();
            let header = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| KeyError(format!("{header:?} is not a header name")))?;
            let encoding = match parts.next() {
                None | Some("hex") => Encoding::Hex,
                Some("base64") => Encoding::Base64,
                Some(other) => {
                    return Err(KeyError(format!(
                        "expected hex or base64 after the header, got {other:?}"
                    )));
                }
            };
            Scheme::Generic {
                header,
                encoding,
                prefix: parts.next().unwrap_or_default().to_owned(),
            }
        }
        other => {
            return Err(KeyError(format!(
                "unknown scheme {other:?}: expected {SCHEMES}"
            )));
        }
    };
    Ok(scheme)
}

fn read_secret(text: &str) -> Result<String, KeyError> {
    if let Some(name) = text.strip_prefix("env:") {
        return std::env::var(name)
            .map_err(|_| KeyError(format!("the environment variable {name} is not set")));
    }
    if let Some(path) = text.strip_prefix("file:") {
        let content = std::fs::read_to_string(path)
            .map_err(|error| KeyError(format!("cannot read the secret file {path}: {error}")))?;
        return Ok(content.trim_end_matches(['\n', '\r']).to_owned());
    }
    Ok(text.to_owned())
}

/// What the check of one request's signature found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Check {
    /// A signature matched.
    Valid,
    /// No signature header (or not all the headers the scheme needs).
    Missing {
        /// The headers looked for.
        expected: String,
    },
    /// A header is there but cannot be read.
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// Readable, but no signature matches.
    Wrong {
        /// What would have matched, when something close does.
        hint: Option<String>,
    },
    /// It matches, but its timestamp is further from now than the tolerance.
    OutsideTolerance {
        /// The timestamp minus now, in seconds (negative: in the past).
        skew_seconds: i64,
    },
}

impl Check {
    /// Its name, as the JSON line's `result` says it.
    pub fn label(&self) -> &'static str {
        match self {
            Check::Valid => "valid",
            Check::Missing { .. } => "missing",
            Check::Malformed { .. } => "malformed",
            Check::Wrong { .. } => "wrong",
            Check::OutsideTolerance { .. } => "outside_tolerance",
        }
    }
}

/// The signature verdict of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureVerdict {
    /// The scheme checked.
    pub scheme: String,
    /// What was found.
    #[serde(flatten)]
    pub check: Check,
}

impl SignatureVerdict {
    /// Whether the signature is valid.
    pub fn is_valid(&self) -> bool {
        self.check == Check::Valid
    }

    /// One line for people: "valid", "wrong: the body was re-encoded...".
    pub fn describe(&self) -> String {
        let scheme = &self.scheme;
        match &self.check {
            Check::Valid => format!("signature valid ({scheme})"),
            Check::Missing { expected } => format!("signature missing ({scheme}: no {expected})"),
            Check::Malformed { reason } => format!("signature malformed ({scheme}): {reason}"),
            Check::Wrong { hint: Some(hint) } => format!("signature wrong ({scheme}): {hint}"),
            Check::Wrong { hint: None } => {
                format!("signature wrong ({scheme}): not made with this secret over these bytes")
            }
            Check::OutsideTolerance { skew_seconds } => format!(
                "signature outside the tolerance ({scheme}): signed {} s {}",
                skew_seconds.unsigned_abs(),
                if *skew_seconds < 0 {
                    "ago"
                } else {
                    "in the future"
                }
            ),
        }
    }
}

/// Checks a request against the keys: the verdict of the key whose scheme's header
/// the request carries (a valid one first, when several do), or "missing" for the
/// first key when none does. `None` without keys.
pub fn verify(
    keys: &[Key],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Option<SignatureVerdict> {
    let mut verdicts = keys
        .iter()
        .filter(|key| headers.contains_key(key.scheme.signature_header()))
        .map(|key| SignatureVerdict {
            scheme: key.scheme.name(),
            check: key.check(headers, body, now, tolerance),
        });
    let first = verdicts.next();
    match first {
        Some(verdict) if verdict.is_valid() => Some(verdict),
        Some(verdict) => Some(verdicts.find(SignatureVerdict::is_valid).unwrap_or(verdict)),
        None => keys.first().map(|key| SignatureVerdict {
            scheme: key.scheme.name(),
            check: Check::Missing {
                expected: key.expected_headers(),
            },
        }),
    }
}

/// The most signatures one header may carry (Standard Webhooks and Stripe allow a
/// list, for key rotation; a handful is what real senders send).
pub const MAX_SIGNATURES: usize = 16;

fn malformed(reason: String) -> Check {
    Check::Malformed { reason }
}

/// A signature header's value as text, or why there is none to read.
fn header_text<'h>(
    headers: &'h HeaderMap,
    name: &str,
    expected: impl FnOnce() -> String,
) -> Result<&'h str, Check> {
    match headers.get(name) {
        None => Err(Check::Missing {
            expected: expected(),
        }),
        Some(value) => value
            .to_str()
            .map(str::trim)
            .map_err(|_| malformed(format!("{name} is not text"))),
    }
}

fn decode_hex(text: &str) -> Result<Vec<u8>, Check> {
    hex::decode(text).map_err(|_| malformed(format!("{text:?} is not hex")))
}

fn decode_base64(text: &str) -> Result<Vec<u8>, Check> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| malformed(format!("{text:?} is not base64")))
}

fn parse_timestamp(text: &str) -> Result<i64, Check> {
    text.parse::<i64>()
        .map_err(|_| malformed(format!("the timestamp {text:?} is not a number of seconds")))
}

/// Refuses a header of more than [`MAX_SIGNATURES`] items, counted before anything
/// is decoded or signed: the work must not grow with what a sender puts in one header.
fn at_most(name: &str, items: usize) -> Result<(), Check> {
    if items > MAX_SIGNATURES {
        Err(malformed(format!(
            "{name} holds {items} items, more than the {MAX_SIGNATURES} this check reads"
        )))
    } else {
        Ok(())
    }
}

/// Whether a signature over (secret, what comes before the body, body) is among those given.
type Matches<'a> = dyn Fn(&[u8], &str, &[u8]) -> bool + 'a;

/// The signed content and the signatures a request carries, for one scheme.
struct Signed<'a> {
    /// What comes before the body in the signed content (`id.timestamp.`).
    before_body: String,
    /// The signatures given (decoded MACs), or why they cannot be read.
    signatures: Vec<Vec<u8>>,
    timestamp: Option<i64>,
    body: &'a [u8],
}

impl Key {
    fn mac(&self, secret: &[u8], before_body: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
        mac.update(before_body.as_bytes());
        mac.update(body);
        mac
    }

    fn expected_headers(&self) -> String {
        match &self.scheme {
            Scheme::StandardWebhooks => {
                "webhook-id, webhook-timestamp and webhook-signature headers".into()
            }
            Scheme::Slack => "X-Slack-Signature and X-Slack-Request-Timestamp headers".into(),
            other => format!("{} header", other.signature_header()),
        }
    }

    fn check(&self, headers: &HeaderMap, body: &[u8], now: i64, tolerance: Duration) -> Check {
        let signed = match self.read(headers, body) {
            Ok(signed) => signed,
            Err(check) => return check,
        };
        // One MAC per content tried, compared in constant time with each signature.
        let matches = |secret: &[u8], before: &str, body: &[u8]| {
            use subtle::ConstantTimeEq;
            let tag = self.mac(secret, before, body).finalize().into_bytes();
            signed
                .signatures
                .iter()
                .any(|signature| bool::from(tag.as_slice().ct_eq(signature)))
        };
        if matches(self.secret.bytes(), &signed.before_body, signed.body) {
            if let Some(timestamp) = signed.timestamp {
                let skew = timestamp - now;
                if skew.unsigned_abs() > tolerance.as_secs() {
                    return Check::OutsideTolerance { skew_seconds: skew };
                }
            }
            return Check::Valid;
        }
        Check::Wrong {
            hint: self.hint(&signed, &matches),
        }
    }

    /// The most likely reason a signature does not match, when trying it proves it.
    fn hint(&self, signed: &Signed<'_>, matches: &Matches<'_>) -> Option<String> {
        let secret = self.secret.bytes();
        // The narrowest change first: a final newline added or lost on the way.
        if let Some(trimmed) = signed.body.strip_suffix(b"\n") {
            if matches(secret, &signed.before_body, trimmed) {
                return Some(
                    "a signature over the body without its final newline would match".into(),
                );
            }
        }
        let mut with_newline = signed.body.to_vec();
        with_newline.push(b'\n');
        if matches(secret, &signed.before_body, &with_newline) {
            return Some("a signature over the body with a final newline would match".into());
        }
        if let Some(compact) = compact_json(signed.body) {
            if compact != signed.body && matches(secret, &signed.before_body, &compact) {
                return Some(
                    "the body was re-encoded: a signature over the body with its JSON whitespace removed would match"
                        .into(),
                );
            }
        }
        if self.scheme == Scheme::StandardWebhooks
            && matches(self.raw_secret.bytes(), &signed.before_body, signed.body)
        {
            return Some(
                "it was signed with the whsec_ text as the key: the key is the base64 after whsec_, decoded"
                    .into(),
            );
        }
        if matches(secret, "", signed.body) && !signed.before_body.is_empty() {
            return Some(
                "it is a signature over the body alone: this scheme signs the id and timestamp too"
                    .into(),
            );
        }
        None
    }

    fn read<'a>(&self, headers: &HeaderMap, body: &'a [u8]) -> Result<Signed<'a>, Check> {
        let text = |name: &str| header_text(headers, name, || self.expected_headers());
        let signed = |before_body: String, signatures, timestamp| Signed {
            before_body,
            signatures,
            timestamp,
            body,
        };
        let (hex, base64, timestamp) = (decode_hex, decode_base64, parse_timestamp);
        match &self.scheme {
            Scheme::StandardWebhooks => {
                let id = text("webhook-id")?;
                let at = text("webhook-timestamp")?;
                let list = text("webhook-signature")?;
                at_most("webhook-signature", list.split_whitespace().count())?;
                let signatures = list
                    .split_whitespace()
                    .filter_map(|item| item.strip_prefix("v1,"))
                    .map(base64)
                    .collect::<Result<Vec<_>, _>>()?;
                if signatures.is_empty() {
                    return Err(malformed(
                        "no v1,<base64> signature in webhook-signature".into(),
                    ));
                }
                Ok(signed(
                    format!("{id}.{at}."),
                    signatures,
                    Some(timestamp(at)?),
                ))
            }
            Scheme::Github => {
                let value = text("x-hub-signature-256")?;
                let mac = value.strip_prefix("sha256=").ok_or_else(|| {
                    malformed("X-Hub-Signature-256 does not start with sha256=".into())
                })?;
                Ok(signed(String::new(), vec![hex(mac)?], None))
            }
            Scheme::Stripe => {
                let value = text("stripe-signature")?;
                at_most("Stripe-Signature", value.split(',').count())?;
                let mut at = None;
                let mut signatures = Vec::new();
                for pair in value.split(',') {
                    match pair.trim().split_once('=') {
                        Some(("t", t)) => at = Some(t),
                        Some(("v1", mac)) => signatures.push(hex(mac)?),
                        _ => {}
                    }
                }
                let at = at.ok_or_else(|| malformed("Stripe-Signature has no t=".into()))?;
                if signatures.is_empty() {
                    return Err(malformed("Stripe-Signature has no v1=".into()));
                }
                Ok(signed(format!("{at}."), signatures, Some(timestamp(at)?)))
            }
            Scheme::Slack => {
                let value = text("x-slack-signature")?;
                let at = text("x-slack-request-timestamp")?;
                let mac = value
                    .strip_prefix("v0=")
                    .ok_or_else(|| malformed("X-Slack-Signature does not start with v0=".into()))?;
                Ok(signed(
                    format!("v0:{at}:"),
                    vec![hex(mac)?],
                    Some(timestamp(at)?),
                ))
            }
            Scheme::Shopify => {
                let value = text("x-shopify-hmac-sha256")?;
                Ok(signed(String::new(), vec![base64(value)?], None))
            }
            Scheme::Generic {
                header,
                encoding,
                prefix,
            } => {
                let value = text(header.as_str())?;
                let mac = value
                    .strip_prefix(prefix.as_str())
                    .ok_or_else(|| malformed(format!("{header} does not start with {prefix:?}")))?;
                let mac = match encoding {
                    Encoding::Hex => hex(mac)?,
                    Encoding::Base64 => base64(mac)?,
                };
                Ok(signed(String::new(), vec![mac], None))
            }
        }
    }

    /// The headers that sign `body` with this key at `timestamp` (unix seconds);
    /// `id` is the Standard Webhooks message id.
    pub fn sign(&self, body: &[u8], timestamp: i64, id: &str) -> Vec<(HeaderName, HeaderValue)> {
        let hex_mac = |before: &str| {
            hex::encode(
                self.mac(self.secret.bytes(), before, body)
                    .finalize()
                    .into_bytes(),
            )
        };
        let base64_mac = |before: &str| {
            base64::engine::general_purpose::STANDARD.encode(
                self.mac(self.secret.bytes(), before, body)
                    .finalize()
                    .into_bytes(),
            )
        };
        let pairs: Vec<(&str, String)> = match &self.scheme {
            Scheme::StandardWebhooks => vec![
                ("webhook-id", id.to_owned()),
                ("webhook-timestamp", timestamp.to_string()),
                (
                    "webhook-signature",
                    format!("v1,{}", base64_mac(&format!("{id}.{timestamp}."))),
                ),
            ],
            Scheme::Github => vec![("x-hub-signature-256", format!("sha256={}", hex_mac("")))],
            Scheme::Stripe => vec![(
                "stripe-signature",
                format!("t={timestamp},v1={}", hex_mac(&format!("{timestamp}."))),
            )],
            Scheme::Slack => vec![
                ("x-slack-request-timestamp", timestamp.to_string()),
                (
                    "x-slack-signature",
                    format!("v0={}", hex_mac(&format!("v0:{timestamp}:"))),
                ),
            ],
            Scheme::Shopify => vec![("x-shopify-hmac-sha256", base64_mac(""))],
            Scheme::Generic {
                header,
                encoding,
                prefix,
            } => {
                let mac = match encoding {
                    Encoding::Hex => hex_mac(""),
                    Encoding::Base64 => base64_mac(""),
                };
                return HeaderValue::from_str(&format!("{prefix}{mac}"))
                    .map(|value| vec![(header.clone(), value)])
                    .unwrap_or_default();
            }
        };
        pairs
            .into_iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_static(name),
                    HeaderValue::from_str(&value).ok()?,
                ))
            })
            .collect()
    }
}

/// The body as compact JSON, keys in their order, if it is JSON.
fn compact_json(body: &[u8]) -> Option<Vec<u8>> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut out = Vec::with_capacity(body.len());
    let mut serializer = serde_json::Serializer::new(&mut out);
    serde_transcode::transcode(&mut deserializer, &mut serializer).ok()?;
    deserializer.end().ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Key {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                )
            })
            .collect()
    }

    const FAR: Duration = Duration::from_secs(u64::MAX / 4);

    /// Svix's documented example of the Standard Webhooks scheme ("Verifying
    /// webhooks manually", docs.svix.com; also in the svix-webhooks library tests).
    #[test]
    fn standard_webhooks_matches_the_published_example() {
        let key = key("standard-webhooks:whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        let request = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ]);
        let verdict = verify(
            std::slice::from_ref(&key),
            &request,
            body,
            1614265330,
            DEFAULT_TOLERANCE,
        );
        assert_eq!(verdict.unwrap().check, Check::Valid);
        let signed = key.sign(body, 1614265330, "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(
            signed[2].1,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // Several signatures, one of them valid (a key rotation).
        let rotated = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1a,abc v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ]);
        let verdict = verify(
            std::slice::from_ref(&key),
            &rotated,
            body,
            1614265330,
            DEFAULT_TOLERANCE,
        );
        assert!(verdict.unwrap().is_valid());
        // Ten minutes later it is a replay.
        let late = verify(&[key], &request, body, 1614265330 + 600, DEFAULT_TOLERANCE).unwrap();
        assert_eq!(late.check, Check::OutsideTolerance { skew_seconds: -600 });
        assert!(
            late.describe().contains("signed 600 s ago"),
            "{}",
            late.describe()
        );
    }

    /// The Standard Webhooks project's own test vector
    /// (standard-webhooks/standard-webhooks, libraries/testdata/signatures.json).
    #[test]
    fn standard_webhooks_matches_the_projects_test_vector() {
        let key = key("standard-webhooks:MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"type": "example.created", "timestamp":"2023-09-28T19:20:22+00:00", "data":{"str":"string","bool":true,"int":42}}"#;
        let request = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1696200454"),
            (
                "webhook-signature",
                "v1,GgjvufBlIj71MBIVQotYGb+xEC3LNXCsIZp0HsDC8qs=",
            ),
        ]);
        let verdict = verify(&[key], &request, body, 1696200454, DEFAULT_TOLERANCE).unwrap();
        assert_eq!(verdict.check, Check::Valid);
    }

    /// GitHub's documented test values ("Validating webhook deliveries", docs.github.com).
    #[test]
    fn github_matches_the_documented_test_values() {
        let key = key("github:It's a Secret to Everybody");
        let request = headers(&[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        let verdict = verify(
            std::slice::from_ref(&key),
            &request,
            b"Hello, World!",
            0,
            FAR,
        )
        .unwrap();
        assert_eq!(verdict.check, Check::Valid);
        let wrong = verify(&[key], &request, b"Hello, World?", 0, FAR).unwrap();
        assert_eq!(wrong.check, Check::Wrong { hint: None });
    }

    /// Slack's documented example ("Verifying requests from Slack", api.slack.com).
    #[test]
    fn slack_matches_the_documented_example() {
        let key = key("slack:8f742231b10e8888abcd99yyyzzz85a5");
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let request = headers(&[
            ("x-slack-request-timestamp", "1531420618"),
            (
                "x-slack-signature",
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
        ]);
        let verdict = verify(&[key], &request, body, 1531420618, DEFAULT_TOLERANCE).unwrap();
        assert_eq!(verdict.check, Check::Valid);
    }

    /// Stripe and Shopify publish the algorithm, not a vector: these values were
    /// computed with Python's hmac module (an independent implementation) following
    /// stripe.com/docs/webhooks "Verify signatures manually" and shopify.dev
    /// "Verify a webhook".
    #[test]
    fn stripe_and_shopify_follow_their_documented_algorithms() {
        let body = br#"{"id":"evt_1","object":"event"}"#;
        let stripe = key("stripe:whsec_test_secret");
        let request = headers(&[(
            "stripe-signature",
            "t=1700000000,v1=0000,v1=0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd,v0=abc",
        )]);
        let verdict = verify(
            std::slice::from_ref(&stripe),
            &request,
            body,
            1700000000,
            DEFAULT_TOLERANCE,
        );
        assert_eq!(
            stripe.sign(body, 1700000000, "")[0].1,
            "t=1700000000,v1=0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd"
        );
        assert_eq!(verdict.unwrap().check, Check::Valid);
        let shopify = key("shopify:hush");
        let request = headers(&[(
            "x-shopify-hmac-sha256",
            "Y5yh1MBcvmylNdRGRmMjSnWMAU5vK6ZYOwIowkFMvRk=",
        )]);
        let verdict = verify(&[shopify], &request, body, 0, FAR).unwrap();
        assert_eq!(verdict.check, Check::Valid);
    }

    #[test]
    fn hints_say_what_would_have_matched() {
        let key = key("github:s3cret");
        let sent = br#"{"a": 1,  "b": [1, 2]}"#;
        let compact = br#"{"a":1,"b":[1,2]}"#;
        // The sender signed the compact form but sent it pretty.
        let signature = &key.sign(compact, 0, "")[0].1;
        let request = headers(&[("x-hub-signature-256", signature.to_str().unwrap())]);
        let verdict = verify(std::slice::from_ref(&key), &request, sent, 0, FAR).unwrap();
        assert!(
            verdict.describe().contains("JSON whitespace removed"),
            "{}",
            verdict.describe()
        );
        let with_newline = b"{\"a\":1}\n";
        let signature = &key.sign(b"{\"a\":1}", 0, "")[0].1;
        let request = headers(&[("x-hub-signature-256", signature.to_str().unwrap())]);
        let verdict = verify(&[key], &request, with_newline, 0, FAR).unwrap();
        assert!(
            verdict.describe().contains("without its final newline"),
            "{}",
            verdict.describe()
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let keys = [key("stripe:x"), key("github:y")];
        let none = verify(&keys, &HeaderMap::new(), b"", 0, FAR).unwrap();
        assert_eq!(
            none.check,
            Check::Missing {
                expected: "stripe-signature header".into()
            }
        );
        let bad = headers(&[("stripe-signature", "v1=zz")]);
        let verdict = verify(&keys, &bad, b"", 0, FAR).unwrap();
        assert!(
            matches!(verdict.check, Check::Malformed { .. }),
            "{verdict:?}"
        );
        assert!(verify(&[], &bad, b"", 0, FAR).is_none());
    }

    #[test]
    fn bad_keys_say_why_and_secrets_never_show() {
        let error = |text: &str| text.parse::<Key>().unwrap_err().to_string();
        assert!(error("gitlab:x").contains("unknown scheme \"gitlab\""));
        assert!(error("github").contains("SCHEME:SECRET"));
        assert!(error("standard-webhooks:whsec_not base64!").contains("base64"));
        assert!(error("github:env:HOOKSCOPE_NO_SUCH_VARIABLE").contains("not set"));
        assert!(error("github:").contains("empty"));
        assert!(error("hmac-sha256/X-Sig/octal:x").contains("hex or base64"));
        let key = key("github:hunter2");
        assert!(!format!("{key:?}").contains("hunter2"));
        let generic = key_of("hmac-sha256/X-Signature/base64/sha256=:k");
        assert_eq!(
            generic.scheme,
            Scheme::Generic {
                header: HeaderName::from_static("x-signature"),
                encoding: Encoding::Base64,
                prefix: "sha256=".into()
            }
        );
    }

    fn key_of(text: &str) -> Key {
        text.parse().unwrap()
    }
}
