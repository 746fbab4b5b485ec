//! What Panther sends to a Custom Webhook, as its alert-delivery code builds it
//! (github.com/panther-labs/panther, `internal/core/alert_delivery`):
//!
//! - [`Source`] is Panther's internal alert (`api/lambda/delivery/models`: `Alert`), the
//!   test alert (`api/send_test_alert.go`: `generateTestAlert`) and an example of every
//!   alert type;
//! - [`Source::notification`] is `outputs/outputs.go`: `generateNotificationFromAlert`,
//!   with `generateAlertTitle` and `generateURL`;
//! - [`encode`] writes the bytes `outputs/post.go` sends: `jsoniter.Marshal` (its default
//!   configuration escapes `<`, `>` and `&`), keys in the order of the `Notification`
//!   struct, `time.Time` as Go writes it.

use std::fmt::Write as _;

use chrono::{DateTime, FixedOffset, Timelike, Utc};
use serde_json::{Map, Value};

use crate::alert::Alert;

/// The app domain used for links when none is given (Panther's `APP_DOMAIN_URL`).
pub const DEFAULT_APP_URL: &str = "https://example.runpanther.net";

/// The keys of Panther's `Notification` struct, in its order (outputs.go).
pub const NOTIFICATION_KEYS: [&str; 13] = [
    "id",
    "createdAt",
    "severity",
    "type",
    "link",
    "title",
    "name",
    "alertId",
    "alertContext",
    "description",
    "runbook",
    "tags",
    "version",
];

/// An example of each alert type a receiver must handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Example {
    /// A rule matched a log event (type RULE).
    Rule,
    /// A rule raised an exception while running (RULE_ERROR).
    RuleError,
    /// A scheduled query's rule matched (SCHEDULED_RULE).
    ScheduledRule,
    /// A scheduled rule raised an exception (SCHEDULED_RULE_ERROR).
    ScheduledRuleError,
    /// A cloud resource failed a policy (POLICY; `alertId` is null).
    Policy,
    /// Panther itself reports a problem, e.g. a log source that stopped sending (SYSTEM_ERROR).
    SystemError,
}

/// Panther's internal alert: what a notification is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The rule or policy id (`AnalysisID`).
    pub analysis_id: String,
    /// `RULE`, `RULE_ERROR`, `POLICY`, ...
    pub alert_type: String,
    /// When the alert was created.
    pub created_at: DateTime<Utc>,
    /// `INFO` ... `CRITICAL`.
    pub severity: String,
    /// The rule's description.
    pub analysis_description: String,
    /// The rule's display name.
    pub analysis_name: Option<String>,
    /// The rule's version.
    pub version: Option<String>,
    /// The rule's runbook.
    pub runbook: String,
    /// The rule's tags.
    pub tags: Vec<String>,
    /// The alert id (an MD5 hash for rules; none for policies).
    pub alert_id: Option<String>,
    /// The title the rule computed (before `generateAlertTitle` prefixes it).
    pub title: String,
    /// The rule's alert context.
    pub context: Option<Map<String, Value>>,
    /// "Send Test Alert".
    pub is_test: bool,
    /// A manual re-send from the console.
    pub is_resent: bool,
}

impl Source {
    /// `generateTestAlert` (api/send_test_alert.go).
    pub fn test(now: DateTime<Utc>) -> Source {
        Source {
            analysis_id: "Test.Alert".into(),
            alert_type: "RULE".into(),
            created_at: now,
            severity: "INFO".into(),
            analysis_description: "This is a Test Alert".into(),
            analysis_name: Some("Test Alert".into()),
            version: Some("abcdefg".into()),
            runbook: "Stuck? Check out our docs: https://docs.runpanther.io".into(),
            tags: vec!["test".into()],
            alert_id: Some("Test.Alert".into()),
            title: "This is a Test Alert".into(),
            context: None,
            is_test: true,
            is_resent: false,
        }
    }

    /// The rule alert the other examples are variations of.
    fn rule_example(now: DateTime<Utc>) -> Source {
        Source {
            analysis_id: "AWS.CloudTrail.ConsoleLoginWithoutMFA".into(),
            alert_type: "RULE".into(),
            created_at: now,
            severity: "HIGH".into(),
            analysis_description: "A user logged in to the AWS console without multi-factor authentication.".into(),
            analysis_name: Some("AWS Console Login Without MFA".into()),
            version: Some("7Hc3Jm.iRBx1l0nNfz2pc9xXmFpaY3_S".into()),
            runbook: "Ask the user whether they logged in; if not, disable the credentials and rotate them.".into(),
            tags: vec!["AWS".into(), "Identity & Access Management".into(), "Initial Access:Valid Accounts".into()],
            alert_id: Some("5d8a73b4c6ed20a5f8d0c9e1b2a34f67".into()),
            title: "AWS login without MFA for user [jane.doe] from 203.0.113.9".into(),
            context: alert_context(serde_json::json!({
                "userIdentity": {"type": "IAMUser", "userName": "jane.doe", "accountId": "123456789012"},
                "sourceIPAddress": "203.0.113.9",
                "eventTime": "2026-11-27T08:12:30Z",
                "mfaUsed": "No",
            })),
            is_test: false,
            is_resent: false,
        }
    }

    /// A realistic alert of this type, created at `now`.
    pub fn example(example: Example, now: DateTime<Utc>) -> Source {
        let rule = Source::rule_example(now);
        match example {
            Example::Rule => rule,
            Example::RuleError => Source {
                alert_type: "RULE_ERROR".into(),
                severity: "INFO".into(),
                alert_id: Some("0c2f4e9d8b7a61534f2e1d0c9b8a7f6e".into()),
                title: "KeyError: 'userIdentity'".into(),
                context: alert_context(serde_json::json!({
                    "error": "KeyError: 'userIdentity'",
                    "traceback": "File \"rule.py\", line 12, in rule\n    return event['userIdentity']['type'] == 'Root'",
                    "logType": "AWS.CloudTrail",
                })),
                ..rule
            },
            Example::ScheduledRule => Source {
                analysis_id: "Okta.BruteForceLogins.Scheduled".into(),
                alert_type: "SCHEDULED_RULE".into(),
                severity: "MEDIUM".into(),
                analysis_description:
                    "More than 10 failed Okta logins for one user within an hour.".into(),
                analysis_name: Some("Okta Brute Force Logins (scheduled)".into()),
                runbook:
                    "Check the user's recent sign-ins in Okta and reset their password if needed."
                        .into(),
                tags: vec!["Okta".into(), "Credential Access:Brute Force".into()],
                alert_id: Some("9f1e2d3c4b5a69788796a5b4c3d2e1f0".into()),
                title: "12 failed Okta logins for jane.doe@example.com in the last hour".into(),
                context: alert_context(serde_json::json!({
                    "query": "Okta.FailedLogins.Hourly",
                    "user": "jane.doe@example.com",
                    "failedLogins": 12,
                    "windowStart": "2026-11-27T07:00:00Z",
                })),
                ..rule
            },
            Example::ScheduledRuleError => Source {
                alert_type: "SCHEDULED_RULE_ERROR".into(),
                severity: "INFO".into(),
                alert_id: Some("1a2b3c4d5e6f70819203a4b5c6d7e8f9".into()),
                title: "TypeError: '>' not supported between instances of 'NoneType' and 'int'"
                    .into(),
                context: alert_context(serde_json::json!({
                    "error": "TypeError: '>' not supported between instances of 'NoneType' and 'int'",
                    "query": "Okta.FailedLogins.Hourly",
                })),
                ..Source::example(Example::ScheduledRule, now)
            },
            Example::Policy => Source {
                analysis_id: "AWS.S3.Bucket.PublicRead".into(),
                alert_type: "POLICY".into(),
                severity: "CRITICAL".into(),
                analysis_description: "S3 buckets must not grant read access to everyone.".into(),
                analysis_name: Some("AWS S3 Bucket Public Read".into()),
                runbook: "Remove the public grant from the bucket's ACL and policy.".into(),
                tags: vec!["AWS".into(), "Data Protection".into(), "CIS".into()],
                alert_id: None,
                title: "AWS S3 Bucket Public Read".into(),
                context: alert_context(serde_json::json!({
                    "resourceId": "arn:aws:s3:::acme-public-reports",
                    "resourceType": "AWS.S3.Bucket",
                    "region": "us-east-1",
                })),
                ..rule
            },
            Example::SystemError => Source {
                analysis_id: "System.LogSource.NoData".into(),
                alert_type: "SYSTEM_ERROR".into(),
                severity: "MEDIUM".into(),
                analysis_description:
                    "A log source has not sent data for longer than its threshold.".into(),
                analysis_name: Some("Log source is not sending data".into()),
                version: None,
                runbook: "Check the source's IAM role and the S3 bucket notifications.".into(),
                tags: vec![],
                alert_id: Some("e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9".into()),
                title: "Log source [prod-cloudtrail] has not sent data for 60 minutes".into(),
                context: alert_context(serde_json::json!({
                    "sourceId": "4b0a0bf0-9c6e-4c1c-8d1a-2f3e4d5c6b7a",
                    "sourceLabel": "prod-cloudtrail",
                    "lastEventReceived": "2026-11-27T07:12:30Z",
                })),
                ..rule
            },
        }
    }

    /// The same alert, re-sent by hand from the console.
    pub fn resent(self) -> Source {
        Source {
            is_resent: true,
            ..self
        }
    }

    /// The notification a Custom Webhook receives (`generateNotificationFromAlert`;
    /// `ReplaceMapSliceNils` turns a missing context into `{}`). `app_url` is
    /// Panther's `APP_DOMAIN_URL`, e.g. `https://acme.runpanther.net`.
    pub fn notification(&self, app_url: &str) -> Alert {
        Alert {
            id: self.analysis_id.clone(),
            created_at: go_time(self.created_at),
            severity: self.severity.clone(),
            alert_type: self.alert_type.clone(),
            link: self.link(app_url),
            title: self.title(),
            name: self.analysis_name.clone(),
            alert_id: self.alert_id.clone(),
            description: Some(self.analysis_description.clone()),
            runbook: Some(self.runbook.clone()),
            tags: self.tags.clone(),
            version: self.version.clone(),
            alert_context: Some(self.context.clone().unwrap_or_default()),
        }
    }

    fn display_name(&self) -> &str {
        match self.analysis_name.as_deref() {
            Some(name) if !name.is_empty() => name,
            _ => &self.analysis_id,
        }
    }

    /// `generateAlertTitle`. The scheduled types and SYSTEM_ERROR are not in the
    /// open-source code (it panics on them): they take the form of their kin.
    fn title(&self) -> String {
        if self.is_resent {
            return format!("[Re-sent]: {}", self.title);
        }
        match self.alert_type.as_str() {
            "RULE" | "SCHEDULED_RULE" if !self.title.is_empty() => {
                format!("New Alert: {}", self.title)
            }
            "RULE" | "SCHEDULED_RULE" => format!("New Alert: {}", self.display_name()),
            "RULE_ERROR" | "SCHEDULED_RULE_ERROR" => format!("New rule error: {}", self.title),
            "POLICY" => format!("Policy Failure: {}", self.display_name()),
            _ => self.title.clone(),
        }
    }

    /// `generateURL`: the app itself for a test alert; policies link to the policy
    /// (`POLICY_URL_PREFIX`, as before panther#2293), the rest to the alert
    /// (`ALERT_URL_PREFIX`), prefixes as deployments/core.yml sets them.
    fn link(&self, app_url: &str) -> String {
        let app_url = app_url.trim_end_matches('/');
        if self.is_test {
            return app_url.to_owned();
        }
        match (&self.alert_id, self.alert_type.as_str()) {
            (_, "POLICY") | (None, _) => {
                format!("{app_url}/cloud-security/policies/{}", self.analysis_id)
            }
            (Some(alert_id), _) => format!("{app_url}/log-analysis/alerts/{alert_id}"),
        }
    }
}

impl Alert {
    /// The payload Panther sends when you press "Send Test Alert" on a destination,
    /// with links to [`DEFAULT_APP_URL`] (see [`Source::test`] for another app URL).
    ///
    /// ```
    /// let alert = hookscope::Alert::test_alert(chrono::Utc::now());
    /// assert_eq!(alert.title, "New Alert: This is a Test Alert");
    /// assert!(alert.check().is_valid());
    /// ```
    pub fn test_alert(now: DateTime<Utc>) -> Alert {
        Source::test(now).notification(DEFAULT_APP_URL)
    }
}

/// A time as Go's `time.Time` writes itself to JSON (RFC 3339 with nanoseconds,
/// trailing zeros dropped, `Z` for UTC): `2026-11-27T08:12:30.1234Z`, `...30Z`.
///
/// ```
/// use chrono::TimeZone;
/// let at = chrono::Utc.with_ymd_and_hms(2026, 11, 27, 8, 12, 30).unwrap();
/// assert_eq!(hookscope::panther::go_time(at), "2026-11-27T08:12:30Z");
/// let at = at + chrono::Duration::nanoseconds(123_400_000);
/// assert_eq!(hookscope::panther::go_time(at), "2026-11-27T08:12:30.1234Z");
/// ```
pub fn go_time(at: DateTime<Utc>) -> String {
    go_time_in(at.fixed_offset())
}

/// A time as Go writes it in its own offset (`Z` when the offset is zero,
/// `+02:00` otherwise), as a `time.Time` decoded from that text writes itself again.
fn go_time_in(at: DateTime<FixedOffset>) -> String {
    let mut text = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = at.nanosecond() % 1_000_000_000;
    if nanos > 0 {
        let digits = format!("{nanos:09}");
        let _ = write!(text, ".{}", digits.trim_end_matches('0'));
    }
    if at.offset().local_minus_utc() == 0 {
        text.push('Z');
    } else {
        let _ = write!(text, "{}", at.format("%:z"));
    }
    text
}

/// A number as Go writes a float64 into JSON through jsoniter 1.1.10's
/// `WriteFloat64` (Panther's version): `strconv.AppendFloat(value, format, -1, 64)`,
/// the format `e` below 1e-6 and from 1e21, `f` otherwise: the shortest digits that
/// read back to the same float64 (`1.0` is `1`, `12345678901234567890` is
/// `12345678901234567000`, `-0.0` is `-0`, `1.5e-7` is `1.5e-07`).
///
/// ```
/// assert_eq!(hookscope::panther::go_float64(1.5e-7), "1.5e-07");
/// assert_eq!(hookscope::panther::go_float64(1e21), "1e+21");
/// assert_eq!(hookscope::panther::go_float64(0.1), "0.1");
/// ```
pub fn go_float64(value: f64) -> String {
    let sign = if value.is_sign_negative() { "-" } else { "" };
    let magnitude = value.abs();
    // Rust's exponent form holds the same shortest round-trip digits Go's -1 precision
    // writes; only the layout differs.
    let shortest = format!("{magnitude:e}");
    let (mantissa, exponent) = shortest.split_once('e').unwrap_or((&shortest, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits = mantissa.replace('.', "");
    let scientific = magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude);
    if scientific {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!(
            "{sign}{first}{point}{rest}e{exponent_sign}{:02}",
            exponent.unsigned_abs()
        );
    }
    let before_point = exponent + 1;
    match usize::try_from(before_point) {
        Err(_) | Ok(0) => format!(
            "{sign}0.{}{digits}",
            "0".repeat(before_point.unsigned_abs() as usize)
        ),
        Ok(whole) if whole >= digits.len() => {
            format!("{sign}{digits}{}", "0".repeat(whole - digits.len()))
        }
        Ok(whole) => format!("{sign}{}.{}", &digits[..whole], &digits[whole..]),
    }
}

/// The bytes Panther sends for this alert (see [`encode_map`]).
pub fn encode(alert: &Alert) -> Vec<u8> {
    match serde_json::to_value(alert) {
        Ok(Value::Object(map)) => encode_map(&map),
        _ => Vec::new(),
    }
}

/// A JSON object written as Panther's sender writes a notification: the keys of
/// [`NOTIFICATION_KEYS`], in that order, each present (what Go writes for a field the
/// object lacks: `""`, `null`, the zero time; `tags` and `alertContext` as `[]` and
/// `{}`, as `genericapi.ReplaceMapSliceNils` makes them), and no other (Go's struct
/// has no place for them); every string escaped as `jsoniter.Marshal` does by default
/// (`<`, `>`, `&`, U+2028 and U+2029 as `\u003c`..., other controls as `\u00XX`).
/// As Panther's Go decodes and encodes them: `createdAt` is a `time.Time` (its
/// fraction's trailing zeros dropped), and numbers are float64s ([`go_float64`]),
/// the only numbers a notification holds being in `alertContext`'s
/// `map[string]interface{}`.
pub fn encode_map(map: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.push(b'{');
    let mut first = true;
    let mut member = |out: &mut Vec<u8>, key: &str, value: &Value| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        go_string(out, key);
        out.push(b':');
        go_value(out, value);
    };
    for key in NOTIFICATION_KEYS {
        match (key, map.get(key)) {
            ("createdAt", Some(Value::String(text))) => {
                let written =
                    DateTime::parse_from_rfc3339(text).map_or_else(|_| text.clone(), go_time_in);
                member(&mut out, key, &Value::String(written));
            }
            (_, Some(value)) if !value.is_null() => member(&mut out, key, value),
            (_, _) => member(&mut out, key, &go_zero_value(key)),
        }
    }
    out.push(b'}');
    out
}

/// What Go writes for a `Notification` field that was null or absent.
fn go_zero_value(key: &str) -> Value {
    match key {
        "createdAt" => Value::String("0001-01-01T00:00:00Z".into()),
        "alertContext" => Value::Object(Map::new()),
        "tags" => Value::Array(Vec::new()),
        "id" | "severity" | "type" | "link" | "title" => Value::String(String::new()),
        _ => Value::Null,
    }
}

fn go_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => match number.as_f64() {
            Some(value) => out.extend_from_slice(go_float64(value).as_bytes()),
            None => out.extend_from_slice(number.to_string().as_bytes()),
        },
        Value::String(text) => go_string(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                go_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                go_string(out, key);
                out.push(b':');
                go_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// A JSON string as jsoniter's default configuration writes it (EscapeHTML on).
fn go_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                let byte = c as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
            c => {
                let mut buffer = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// An example's `alertContext`: the object given.
fn alert_context(value: Value) -> Option<serde_json::Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 8, 12, 30).unwrap()
            + chrono::Duration::nanoseconds(120_000_000)
    }

    #[test]
    fn titles_and_links_follow_panthers_code() {
        let app = "https://acme.runpanther.net/";
        let test = Source::test(at()).notification(app);
        assert_eq!(test.title, "New Alert: This is a Test Alert");
        assert_eq!(test.link, "https://acme.runpanther.net");
        let rule = Source::example(Example::Rule, at()).notification(app);
        assert!(rule.title.starts_with("New Alert: AWS login without MFA"));
        assert_eq!(
            rule.link,
            "https://acme.runpanther.net/log-analysis/alerts/5d8a73b4c6ed20a5f8d0c9e1b2a34f67"
        );
        let policy = Source::example(Example::Policy, at()).notification(app);
        assert_eq!(policy.title, "Policy Failure: AWS S3 Bucket Public Read");
        assert_eq!(policy.alert_id, None);
        assert_eq!(
            policy.link,
            "https://acme.runpanther.net/cloud-security/policies/AWS.S3.Bucket.PublicRead"
        );
        let error = Source::example(Example::RuleError, at()).notification(app);
        assert_eq!(error.title, "New rule error: KeyError: 'userIdentity'");
        let resent = Source::example(Example::Rule, at())
            .resent()
            .notification(app);
        assert_eq!(
            resent.title,
            "[Re-sent]: AWS login without MFA for user [jane.doe] from 203.0.113.9"
        );
        let mut unnamed = Source::example(Example::Rule, at());
        unnamed.title.clear();
        unnamed.analysis_name = None;
        assert_eq!(
            unnamed.notification(app).title,
            "New Alert: AWS.CloudTrail.ConsoleLoginWithoutMFA"
        );
    }

    #[test]
    fn numbers_and_times_are_written_as_go_writes_them() {
        let cases = [
            ("1.0", "1"),
            ("12345678901234567890", "12345678901234567000"),
            ("-0.0", "-0"),
            ("1.5e-7", "1.5e-07"),
            ("0.000001", "0.000001"),
            ("1e20", "100000000000000000000"),
            ("1e21", "1e+21"),
            ("-2.5e300", "-2.5e+300"),
            ("0.1", "0.1"),
            ("123.456", "123.456"),
            ("9007199254740993", "9007199254740992"),
            ("5e-324", "5e-324"),
            ("0", "0"),
            ("-17", "-17"),
        ];
        for (given, go) in cases {
            let value: f64 = given.parse().unwrap();
            assert_eq!(go_float64(value), go, "{given}");
        }
        let map: Map<String, Value> = serde_json::from_str(
            r#"{"createdAt":"2026-11-27T08:12:30.120000000Z","alertContext":{"n":[1.0,-0.0]}}"#,
        )
        .unwrap();
        let written = String::from_utf8(encode_map(&map)).unwrap();
        assert!(
            written.contains(r#""createdAt":"2026-11-27T08:12:30.12Z""#),
            "{written}"
        );
        assert!(
            written.contains(r#""alertContext":{"n":[1,-0]}"#),
            "{written}"
        );
        let offset: Map<String, Value> =
            serde_json::from_str(r#"{"createdAt":"2026-11-27T10:12:30.000+02:00"}"#).unwrap();
        let written = String::from_utf8(encode_map(&offset)).unwrap();
        assert!(
            written.contains(r#""createdAt":"2026-11-27T10:12:30+02:00""#),
            "{written}"
        );
    }

    #[test]
    fn strings_are_escaped_as_jsoniter_does() {
        let mut out = Vec::new();
        go_string(&mut out, "<script>&\"\\\n\u{1}\u{8}\u{2028}é");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""\u003cscript\u003e\u0026\"\\\n\u0001\u0008\u2028é""#
        );
    }

    #[test]
    fn keys_come_in_the_notification_order_as_gos_struct_writes_them() {
        let map: Map<String, Value> = serde_json::from_str(
            r#"{"version":null,"extra":1,"tags":null,"id":"x","alertContext":null,"title":"<b>"}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(encode_map(&map)).unwrap(),
            concat!(
                r#"{"id":"x","createdAt":"0001-01-01T00:00:00Z","severity":"","type":"","link":"","#,
                r#""title":"\u003cb\u003e","name":null,"alertId":null,"alertContext":{},"#,
                r#""description":null,"runbook":null,"tags":[],"version":null}"#
            )
        );
    }
}
