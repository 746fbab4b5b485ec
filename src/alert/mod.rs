//! The Panther alert: its type, and the check of a delivered body against the schema.
//!
//! [`validate`] is the one definition of "is this a valid Panther alert". It reads the
//! top level once into borrowed raw values (no tree is built for `alertContext` or
//! any other value) and then checks each known key on its own small slice.

mod datetime;
mod scan;
mod schema;

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use datetime::{DateTimeError, parse_aws_datetime};
pub use schema::JSON_SCHEMA;

/// Severities Panther assigns, lowest first.
pub const SEVERITIES: [&str; 5] = ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

/// Alert types Panther documents. Panther adds types over time, so an unknown
/// one is a warning, not a problem.
pub const ALERT_TYPES: [&str; 6] = [
    "RULE",
    "RULE_ERROR",
    "POLICY",
    "SCHEDULED_RULE",
    "SCHEDULED_RULE_ERROR",
    "SYSTEM_ERROR",
];

/// A Panther alert as its Custom Webhook destination delivers it.
///
/// Panther always writes every key, with `null` where a value is absent, so
/// serialising an `Alert` does the same. `alert_context` is absent from older payloads.
///
/// ```
/// let alert = hookscope::Alert::test_alert(chrono::Utc::now());
/// assert!(alert.check().is_valid());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// The rule or policy id, e.g. `AllLogs.IPMonitoring`.
    pub id: String,
    /// When the alert was created, as an AWSDateTime.
    pub created_at: String,
    /// One of [`SEVERITIES`].
    pub severity: String,
    /// One of [`ALERT_TYPES`] (or a newer type).
    #[serde(rename = "type")]
    pub alert_type: String,
    /// Link to the alert in the Panther console.
    pub link: String,
    /// The alert's title.
    pub title: String,
    /// The rule's display name.
    pub name: Option<String>,
    /// The alert's own id; `null` for policy alerts. Retries of one delivery share it.
    pub alert_id: Option<String>,
    /// The rule's description.
    pub description: Option<String>,
    /// The rule's runbook.
    pub runbook: Option<String>,
    /// The rule's tags.
    pub tags: Vec<String>,
    /// The rule's version.
    pub version: Option<String>,
    /// Free-form context the rule attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_context: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Alert {
    /// Checks this alert against the schema, exactly as a delivery of it would be checked.
    pub fn check(&self) -> Verdict {
        match serde_json::to_vec(self) {
            Ok(bytes) => validate(&bytes),
            Err(error) => Verdict::malformed(Problem::new("", "a serialisable alert", error)),
        }
    }
}

/// One thing wrong (or odd) with a payload, located by a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// RFC 6901 pointer to the offending value (`""` is the whole body).
    pub pointer: String,
    /// What the schema wants there.
    pub expected: String,
    /// What was there instead (a short, truncated rendering).
    pub found: String,
}

impl Problem {
    fn new(
        pointer: impl Into<String>,
        expected: impl Into<String>,
        found: impl fmt::Display,
    ) -> Self {
        Problem {
            pointer: pointer.into(),
            expected: expected.into(),
            found: found.to_string(),
        }
    }
}

/// A warning for an alert sent without `Content-Type: application/json`: Panther
/// always sends it, and a receiver may refuse anything else (`curl -d` sends a form
/// type). The pointer names the header, since the body itself may be fine.
pub fn content_type_warning(content_type: Option<&str>) -> Option<Problem> {
    match content_type {
        Some(value) if crate::values::is_json_media_type(value) => None,
        Some(other) => Some(Problem::new(
            "header:content-type",
            "application/json, as Panther sends it",
            format_args!("{other:?}"),
        )),
        None => Some(Problem::new(
            "header:content-type",
            "application/json, as Panther sends it",
            "no Content-Type",
        )),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "(body)"
        } else {
            &self.pointer
        };
        write!(f, "{at}: expected {}, found {}", self.expected, self.found)
    }
}

/// The outcome of checking a body against the alert schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Violations: any one makes the body an invalid alert.
    pub problems: Vec<Problem>,
    /// Oddities that Panther may legitimately produce (unknown keys, new alert types).
    #[serde(default)]
    pub warnings: Vec<Problem>,
    /// Problems and warnings found beyond the first [`MAX_PROBLEMS`] of each: counted,
    /// not kept, so that what a request costs does not grow with what is wrong in it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: u64,
    /// True when the body is syntactically JSON (whatever its shape).
    #[serde(skip)]
    pub is_json: bool,
}

/// The most problems (and, apart, warnings) a verdict keeps; the rest are counted.
pub const MAX_PROBLEMS: usize = 100;

fn is_zero(count: &u64) -> bool {
    *count == 0
}

impl Verdict {
    /// No problems (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    /// Notes a problem: kept among the first [`MAX_PROBLEMS`], else counted.
    pub fn add_problem(&mut self, problem: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        } else {
            self.omitted += 1;
        }
    }

    /// Notes a warning: kept among the first [`MAX_PROBLEMS`], else counted.
    pub fn add_warning(&mut self, warning: Problem) {
        if self.warnings.len() < MAX_PROBLEMS {
            self.warnings.push(warning);
        } else {
            self.omitted += 1;
        }
    }

    fn malformed(problem: Problem) -> Verdict {
        Verdict {
            problems: vec![problem],
            warnings: Vec::new(),
            omitted: 0,
            is_json: false,
        }
    }
}

/// Which alert a delivery belongs to, so retries of one alert can be counted together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertKey {
    /// The key text: the `alertId`, else the `id`, else a hash of the body.
    pub value: String,
    /// Where the key came from.
    pub source: KeySource,
    /// The title starts with `[Re-sent]: `: a manual re-send from Panther's Alert Details page.
    pub resent: bool,
}

/// Where an [`AlertKey`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// The `alertId` field (retries of one alert share it).
    AlertId,
    /// The `id` field (the rule id, when `alertId` is null).
    Id,
    /// No id at all: a hash of the raw body.
    BodyHash,
}

impl AlertKey {
    /// The key of a body that carries no alert id: a hash of its bytes.
    pub fn of_body(body: &[u8]) -> AlertKey {
        use std::hash::{Hash, Hasher};
        // DefaultHasher::new() is unkeyed, so the same body hashes the same within a run.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut hasher);
        AlertKey {
            value: format!("body:{:016x}", hasher.finish()),
            source: KeySource::BodyHash,
            resent: false,
        }
    }

    /// Whether the key identifies an alert (not just a body).
    pub fn is_alert(&self) -> bool {
        self.source != KeySource::BodyHash
    }
}

/// The longest id kept whole as a key. Panther's ids are 32 hex digits; a longer one
/// (an id is whatever a sender writes) is kept as its first characters and a digest
/// of all of it, so that a key costs the same whatever the sender made it.
pub const MAX_KEY_LEN: usize = 128;

/// How many characters of a long id are kept for display.
const KEPT_OF_A_LONG_KEY: usize = 64;

/// The key text for an id: the id itself, or, when longer than [`MAX_KEY_LEN`],
/// its first characters, `…` and 128 bits of its SHA-256.
fn bounded_key(id: Cow<'_, str>) -> String {
    use sha2::Digest;
    if id.len() <= MAX_KEY_LEN {
        return id.into_owned();
    }
    let mut end = KEPT_OF_A_LONG_KEY;
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    let digest = sha2::Sha256::digest(id.as_bytes());
    format!("{}…sha256:{}", &id[..end], hex::encode(&digest[..16]))
}

/// Title prefix Panther puts on a manual re-send.
pub const RESENT_PREFIX: &str = "[Re-sent]: ";

/// A body's verdict and the key its deliveries are counted under, from one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The schema check.
    pub verdict: Verdict,
    /// Which alert this is.
    pub key: AlertKey,
}

/// What a key's value must be.
#[derive(Clone, Copy)]
enum Rule {
    NonEmptyString,
    String,
    NullableString,
    Severity,
    AlertType,
    DateTime,
    Tags,
    Context,
}

impl Rule {
    fn expected(self) -> &'static str {
        match self {
            Rule::NonEmptyString => "a non-empty string",
            Rule::String => "a string",
            Rule::NullableString => "a string or null",
            Rule::Severity => "one of INFO, LOW, MEDIUM, HIGH, CRITICAL",
            Rule::AlertType => {
                "one of RULE, RULE_ERROR, POLICY, SCHEDULED_RULE, SCHEDULED_RULE_ERROR, SYSTEM_ERROR"
            }
            Rule::DateTime => "an AWSDateTime (YYYY-MM-DDThh:mm[:ss[.f]] and Z or ±hh:mm)",
            Rule::Tags => "an array of strings",
            Rule::Context => "an object",
        }
    }
}

/// Where `key` is in [`KEYS`] (a `match` compares lengths first, then bytes).
fn key_index(key: &str) -> Option<usize> {
    Some(match key {
        "id" => 0,
        "createdAt" => 1,
        "severity" => 2,
        "type" => 3,
        "link" => 4,
        "title" => 5,
        "name" => 6,
        "alertId" => 7,
        "description" => 8,
        "runbook" => 9,
        "tags" => 10,
        "version" => 11,
        "alertContext" => 12,
        _ => return None,
    })
}

/// Every key Panther writes, with its rule and whether it may be absent.
const KEYS: [(&str, Rule, bool); 13] = [
    ("id", Rule::NonEmptyString, true),
    ("createdAt", Rule::DateTime, true),
    ("severity", Rule::Severity, true),
    ("type", Rule::AlertType, true),
    ("link", Rule::String, true),
    ("title", Rule::String, true),
    ("name", Rule::NullableString, true),
    ("alertId", Rule::NullableString, true),
    ("description", Rule::NullableString, true),
    ("runbook", Rule::NullableString, true),
    ("tags", Rule::Tags, true),
    ("version", Rule::NullableString, true),
    ("alertContext", Rule::Context, false),
];

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The top-level object, checked member by member as the parser reaches it: each
/// value is taken as raw JSON text (no tree) and checked on its own small slice.
struct Checked<'a> {
    verdict: Verdict,
    identity: Identity<'a>,
}

impl<'de> Deserialize<'de> for Checked<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CheckingVisitor;
        impl<'de> Visitor<'de> for CheckingVisitor {
            type Value = Checked<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut checker = Checker::default();
                while let Some((Key(key), value)) = map.next_entry::<Key, &RawValue>()? {
                    checker.member(&key, value.get());
                }
                Ok(checker.finish())
            }
        }
        deserializer.deserialize_map(CheckingVisitor)
    }
}

/// Checks a delivered body against the Panther alert schema.
///
/// Never panics, whatever the bytes; nesting deeper than serde_json's recursion
/// limit is reported as a problem rather than followed.
///
/// ```
/// let verdict = hookscope::validate(br#"{"id": 1}"#);
/// assert!(!verdict.is_valid());
/// assert_eq!(verdict.problems[0].pointer, "/id");
/// ```
pub fn validate(body: &[u8]) -> Verdict {
    inspect(body).verdict
}

/// Checks a body and works out which alert it is, reading the bytes once.
pub fn inspect(body: &[u8]) -> Inspection {
    let (verdict, identity) = check(body);
    let key = match identity {
        Identity {
            alert_id: Some(value),
            resent,
            ..
        } => AlertKey {
            value: bounded_key(value),
            source: KeySource::AlertId,
            resent,
        },
        Identity {
            id: Some(value),
            resent,
            ..
        } => AlertKey {
            value: bounded_key(value),
            source: KeySource::Id,
            resent,
        },
        _ => AlertKey::of_body(body),
    };
    Inspection { verdict, key }
}

/// What says which alert a body is: the first `alertId`, `id` and `title` it holds.
#[derive(Default)]
struct Identity<'a> {
    alert_id: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    resent: bool,
}

impl<'a> Identity<'a> {
    /// Takes note of a known key's raw value (the first of each key only).
    fn note(&mut self, key: &str, raw: &'a str) {
        let non_empty = || string_of(raw).filter(|text| !text.is_empty());
        match key {
            "alertId" => self.alert_id = non_empty(),
            "id" => self.id = non_empty(),
            "title" => {
                self.resent = non_empty().is_some_and(|title| title.starts_with(RESENT_PREFIX))
            }
            _ => {}
        }
    }
}

fn check(body: &[u8]) -> (Verdict, Identity<'_>) {
    let none = Identity::default;
    // simdutf8: the same answer as std, several times faster on the long ASCII
    // runs alerts are made of (this runs on every body).
    let text = match simdutf8::compat::from_utf8(body) {
        Ok(text) => text,
        Err(error) => {
            let problem = Problem::new(
                "",
                "a JSON object (UTF-8 text)",
                format_args!("bytes that are not UTF-8 at byte {}", error.valid_up_to()),
            );
            return (Verdict::malformed(problem), none());
        }
    };
    let first = text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .chars()
        .next();
    match first {
        None => {
            let problem = Problem::new("", "a JSON object", "an empty body");
            return (Verdict::malformed(problem), none());
        }
        Some('{') => {}
        Some(_) => {
            let is_json = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            let found = if is_json {
                format!("a JSON {}", kind_of(text.trim()))
            } else {
                syntax_error_text(text)
            };
            let mut verdict = Verdict::malformed(Problem::new("", "a JSON object", found));
            verdict.is_json = is_json;
            return (verdict, none());
        }
    }
    // The fast path reads well-formed bodies whose keys have no escapes (all but a
    // few); serde_json reads the rest, and says what is wrong with a broken one.
    let mut checker = Checker::default();
    if scan::members(text, |key, raw| checker.member(key, raw)).is_some() {
        let Checked { verdict, identity } = checker.finish();
        return (verdict, identity);
    }
    match serde_json::from_str::<Checked>(text) {
        Ok(Checked { verdict, identity }) => (verdict, identity),
        Err(_) => {
            // Keys are decoded, so a key holding a lone surrogate escape (grammatical
            // JSON, but no Unicode text) fails here and not the syntax check.
            let is_json = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            let found = if is_json {
                "a key that is not Unicode text (a lone surrogate escape)".to_owned()
            } else {
                syntax_error_text(text)
            };
            let mut verdict = Verdict::malformed(Problem::new("", "a JSON object", found));
            verdict.is_json = is_json;
            (verdict, none())
        }
    }
}

/// The check of an object's members, one at a time, whichever parser finds them.
struct Checker<'a> {
    verdict: Verdict,
    identity: Identity<'a>,
    seen: [bool; KEYS.len()],
}

impl Default for Checker<'_> {
    fn default() -> Self {
        Checker {
            verdict: Verdict {
                is_json: true,
                ..Verdict::default()
            },
            identity: Identity::default(),
            seen: [false; KEYS.len()],
        }
    }
}

impl<'a> Checker<'a> {
    /// Checks a member: its (decoded) key and its value's raw JSON text.
    fn member(&mut self, key: &str, raw: &'a str) {
        let verdict = &mut self.verdict;
        match key_index(key) {
            Some(index) if self.seen[index] => verdict.add_problem(Problem::new(
                pointer_to(key),
                "each key once",
                "a duplicate key",
            )),
            Some(index) => {
                self.seen[index] = true;
                check_value(KEYS[index].1, key, raw, verdict);
                self.identity.note(KEYS[index].0, raw);
            }
            None => verdict.add_warning(Problem::new(
                pointer_to(key),
                "only the keys Panther documents",
                "an unknown key",
            )),
        }
    }

    /// The verdict, once every member was checked: required keys not seen are missing.
    fn finish(mut self) -> Checked<'a> {
        for ((name, rule, required), seen) in KEYS.iter().zip(self.seen) {
            if *required && !seen {
                self.verdict.add_problem(Problem::new(
                    pointer_to(name),
                    format!("key `{name}`: {}", rule.expected()),
                    "nothing (missing)",
                ));
            }
        }
        Checked {
            verdict: self.verdict,
            identity: self.identity,
        }
    }
}

/// Checks one known key's value. The pointer is only built when there is
/// something to report: valid alerts are the common case.
fn check_value(rule: Rule, key: &str, raw: &str, verdict: &mut Verdict) {
    let pointer = || pointer_to(key);
    let problem = |verdict: &mut Verdict| {
        verdict.add_problem(Problem::new(pointer(), rule.expected(), describe(raw)))
    };
    match rule {
        Rule::NullableString if raw == "null" => {}
        Rule::NullableString | Rule::String => {
            if !is_string(raw) {
                problem(verdict)
            }
        }
        Rule::NonEmptyString => {
            if !is_string(raw) || raw == "\"\"" {
                problem(verdict)
            }
        }
        Rule::Severity => match string_of(raw) {
            Some(s) if SEVERITIES.contains(&s.as_ref()) => {}
            _ => problem(verdict),
        },
        Rule::AlertType => match string_of(raw) {
            Some(s) if ALERT_TYPES.contains(&s.as_ref()) => {}
            Some(_) => verdict.add_warning(Problem::new(pointer(), rule.expected(), describe(raw))),
            None => problem(verdict),
        },
        Rule::DateTime => match string_of(raw) {
            Some(s) => {
                if let Err(error) = parse_aws_datetime(&s) {
                    verdict.add_problem(Problem::new(
                        pointer(),
                        rule.expected(),
                        format_args!("{} ({error})", describe(raw)),
                    ))
                }
            }
            None => problem(verdict),
        },
        Rule::Tags if only_plain_strings(raw) => {}
        Rule::Tags => match serde_json::from_str::<NonStrings>(raw) {
            Ok(NonStrings(items, more)) => {
                verdict.omitted += more;
                for (index, item) in items {
                    verdict.add_problem(Problem::new(
                        format!("{}/{index}", pointer()),
                        "a string",
                        describe(item.get()),
                    ));
                }
            }
            Err(_) => problem(verdict),
        },
        Rule::Context => {
            if !raw.starts_with('{') {
                problem(verdict)
            }
        }
    }
}

/// The first [`MAX_PROBLEMS`] items of a JSON array that are not strings, with their
/// indexes, and how many more there were (nothing is kept for the strings, so a valid
/// array costs no allocation).
struct NonStrings<'a>(Vec<(usize, &'a RawValue)>, u64);

impl<'de> Deserialize<'de> for NonStrings<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor;
        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = NonStrings<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
                let mut non_strings = Vec::new();
                let mut more = 0;
                let mut index = 0;
                while let Some(item) = items.next_element::<&RawValue>()? {
                    if !is_string(item.get()) {
                        if non_strings.len() < MAX_PROBLEMS {
                            non_strings.push((index, item));
                        } else {
                            more += 1;
                        }
                    }
                    index += 1;
                }
                Ok(NonStrings(non_strings, more))
            }
        }
        deserializer.deserialize_seq(ItemsVisitor)
    }
}

/// Whether a raw JSON value is a string of Unicode text. Only strings with a
/// `\u` escape are decoded (it could be a lone surrogate); the rest are text already.
fn is_string(raw: &str) -> bool {
    // A backslash is rare in alert strings: one SIMD scan for it settles most of them.
    raw.starts_with('"')
        && (memchr::memchr(b'\\', raw.as_bytes()).is_none()
            || !raw.contains("\\u")
            || string_of(raw).is_some())
}

/// Whether a raw JSON array (valid JSON already) holds only strings without
/// escapes, read in one pass without a parser: the usual `tags`. `false` does not
/// mean a problem, only that the array needs the full check.
fn only_plain_strings(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if memchr::memchr(b'\\', bytes).is_some() {
        return false;
    }
    let skip_space = |mut at: usize| {
        while bytes.get(at).is_some_and(|byte| b" \t\n\r".contains(byte)) {
            at += 1;
        }
        at
    };
    let mut at = skip_space(1);
    if bytes.get(at) == Some(&b']') {
        return bytes.first() == Some(&b'[');
    }
    loop {
        if bytes.get(at) != Some(&b'"') {
            return false;
        }
        // No backslash anywhere: the string ends at the next quote.
        let Some(end) = memchr::memchr(b'"', &bytes[at + 1..]) else {
            return false;
        };
        at = skip_space(at + 1 + end + 1);
        match bytes.get(at) {
            Some(b',') => at = skip_space(at + 1),
            Some(b']') => return bytes.first() == Some(&b'['),
            _ => return false,
        }
    }
}

/// The string a raw JSON value holds, if it is a string.
fn string_of(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.starts_with('"') {
        return None;
    }
    // Borrow when the string has no escapes (the usual case); decode otherwise.
    // A raw value is valid JSON already, so a string without a backslash is its
    // text between the quotes.
    let inner = &raw[1..raw.len().saturating_sub(1).max(1)];
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return Some(Cow::Borrowed(inner));
    }
    match serde_json::from_str::<&str>(raw) {
        Ok(text) => Some(Cow::Borrowed(text)),
        Err(_) => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
    }
}

/// RFC 6901 pointer to a top-level key.
fn pointer_to(key: &str) -> String {
    let mut pointer = String::with_capacity(key.len() + 1);
    pointer.push('/');
    for c in key.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
    pointer
}

fn kind_of(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "string",
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// A short rendering of a raw value for a problem's `found` (`number 7`, `null`,
/// `an object (812 bytes)`): the words of every check, Panther's or a schema's.
pub(crate) fn describe(raw: &str) -> String {
    const LIMIT: usize = 60;
    let kind = kind_of(raw);
    match kind {
        "null" => "null".into(),
        "string" if !is_string(raw) => {
            "a string with a lone surrogate escape (not Unicode text)".into()
        }
        "object" | "array" if raw.len() > LIMIT => format!("an {kind} ({} bytes)", raw.len()),
        _ if raw.len() > LIMIT => {
            let mut end = LIMIT;
            while !raw.is_char_boundary(end) {
                end -= 1;
            }
            format!("{kind} {}…", &raw[..end])
        }
        _ => format!("{kind} {raw}"),
    }
}

/// Says where and how a text stops being JSON, with the byte offset.
fn syntax_error_text(text: &str) -> String {
    let error = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Ok(_) => return "valid JSON".into(),
        Err(error) => error,
    };
    let offset = if error.is_eof() {
        text.len()
    } else {
        byte_offset(text, error.line(), error.column())
    };
    let what = if error.is_eof() {
        "JSON cut short"
    } else {
        "text that is not JSON"
    };
    let reason = error.to_string();
    // serde_json appends " at line L column C"; the byte offset replaces it.
    let reason = reason.split(" at line ").next().unwrap_or(&reason);
    format!("{what} at byte {offset} ({reason})")
}

fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (line_start + column.saturating_sub(1)).min(text.len())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod content_type_tests {
    use super::content_type_warning;

    #[test]
    fn only_json_content_types_pass() {
        assert!(content_type_warning(Some("application/json")).is_none());
        assert!(content_type_warning(Some("Application/JSON; charset=utf-8")).is_none());
        let form = content_type_warning(Some("application/x-www-form-urlencoded")).unwrap();
        assert!(form.to_string().contains("x-www-form-urlencoded"), "{form}");
        assert!(
            content_type_warning(None)
                .unwrap()
                .found
                .contains("no Content-Type")
        );
    }
}
