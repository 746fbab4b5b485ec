//! What a probe sends: each profile is a table of checks and the payloads they send,
//! so that another sender's expectations are a new table, not new code paths.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::panther::{self, Example, Source};

/// Which sender a probe plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileName {
    /// Panther's Custom Webhook: its alert types, wire format, timeout and retries.
    Panther,
    /// A Standard Webhooks sender (Svix and others): signed events, `webhook-id` as the
    /// idempotency key, a 15 s timeout.
    StandardWebhooks,
}

/// What a check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every payload of [`Profile::shapes`] gets a 2XX.
    Shapes,
    /// The first shape with `Content-Type: application/json; charset=utf-8` gets a 2XX.
    ContentType,
    /// A wrong signature and an expired one are refused (4XX).
    Signature,
    /// The answers so far came in time: p50 and p99, against the sender's limit.
    Latency,
    /// The same payload twice (a lost acknowledgement) has one effect; a re-sent
    /// copy is reported.
    Idempotency,
    /// Many payloads at once all get a 2XX.
    Storm,
    /// Every payload of [`Profile::hard_bodies`] gets a 2XX.
    HardBodies,
    /// A body trickled in pieces gets a 2XX.
    SlowBody,
    /// An https receiver's certificate is trusted for its host name.
    Certificate,
    /// A second request on the same connection is answered.
    KeepAlive,
}

/// One check of a profile: its name (what `--only` takes), what it is about, and
/// what it does.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// The name on the scorecard.
    pub name: &'static str,
    /// What passing means, in one line.
    pub about: &'static str,
    /// What it does.
    pub kind: Kind,
}

/// One body a check sends, with the key a receiver would deduplicate on.
#[derive(Debug, Clone)]
pub struct Payload {
    /// How the scorecard names it.
    pub label: String,
    /// The bytes.
    pub body: Bytes,
    /// The idempotency key it carries (`alertId`, or the `webhook-id` to send).
    pub key: String,
}

/// A sender's expectations, as data.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// `--profile`'s name.
    pub name: &'static str,
    /// Who sends like this.
    pub sender: &'static str,
    /// An answer later than this is a failure to the sender.
    pub answer_limit: Duration,
    /// What the sender records for an answer past the limit.
    pub on_timeout: &'static str,
    /// What the sender does after a failed attempt.
    pub retries: &'static str,
    /// What a receiver deduplicates on.
    pub idempotency_key: &'static str,
    /// The `User-Agent` the sender writes.
    pub user_agent: &'static str,
    /// Whether attempts are signed (`--sign`) by this sender.
    pub signs: bool,
    /// The checks of this sender alone; [`Profile::checks`] adds the shared ones.
    pub own_checks: &'static [Check],
    /// Every shape of payload the sender sends.
    pub shapes: fn(&mut Ids) -> Vec<Payload>,
    /// The payloads that break naive receivers.
    pub hard_bodies: fn(&mut Ids) -> Vec<Payload>,
    /// A re-sent copy of a payload, when the sender has such a thing.
    pub resent: Option<fn(&mut Ids, &str) -> Payload>,
    /// One ordinary payload with this key (for the storm and the duplicates).
    pub ordinary: fn(&mut Ids, &str) -> Payload,
}

/// Fresh keys for one probe run, so that a receiver that deduplicates never mistakes
/// one check's payload for another's, and a repeated run for the one before.
#[derive(Debug)]
pub struct Ids {
    rng: fastrand::Rng,
    /// When the payloads claim to be made.
    pub now: DateTime<Utc>,
}

impl Ids {
    /// Keys drawn from `rng`, payloads made at `now`.
    pub fn new(rng: fastrand::Rng, now: DateTime<Utc>) -> Ids {
        Ids { rng, now }
    }

    /// A new key of 32 hex digits (Panther's alertId is an MD5 in hex).
    pub fn key(&mut self) -> String {
        format!("{:016x}{:016x}", self.rng.u64(..), self.rng.u64(..))
    }
}

const fn check(name: &'static str, about: &'static str, kind: Kind) -> Check {
    Check { name, about, kind }
}

/// The checks every profile runs after its own, in this order.
const SHARED_CHECKS: [Check; 8] = [
    check(
        "content-type",
        "JSON is accepted with a charset parameter too (application/json; charset=utf-8)",
        Kind::ContentType,
    ),
    check(
        "latency",
        "answers come well before the sender gives up",
        Kind::Latency,
    ),
    check(
        "idempotency",
        "the same delivery twice (a lost acknowledgement) has one effect",
        Kind::Idempotency,
    ),
    check(
        "storm",
        "a burst of deliveries at once is answered 2XX, without connection errors",
        Kind::Storm,
    ),
    check(
        "hard-bodies",
        "large, deep, non-BMP, escaped and null-filled payloads are accepted",
        Kind::HardBodies,
    ),
    check(
        "slow-body",
        "a body that arrives slowly, in pieces, is accepted",
        Kind::SlowBody,
    ),
    check(
        "certificate",
        "an https receiver's certificate is valid for its host name",
        Kind::Certificate,
    ),
    check(
        "keep-alive",
        "the connection is kept for the next delivery, as the sender's client reuses it",
        Kind::KeepAlive,
    ),
];

/// Panther's Custom Webhook (internal/core/alert_delivery in panther-labs/panther).
pub const PANTHER: Profile = Profile {
    name: "panther",
    sender: "Panther",
    // The delivery Lambda's 60 s timeout less its 10 s soft deadline (api/send.go,
    // deployments/core.yml).
    answer_limit: Duration::from_secs(50),
    on_timeout: "records \"Timeout: the upstream service did not respond back in time\" and retries",
    retries: "retries a non-2XX answer or a network error up to 10 times, 30 s to 5 min apart, for 30 minutes",
    idempotency_key: "alertId",
    user_agent: "Go-http-client/1.1",
    signs: false,
    own_checks: &[check(
        "alert-types",
        "every alert type Panther sends is accepted (2XX)",
        Kind::Shapes,
    )],
    shapes: panther_shapes,
    hard_bodies: panther_hard_bodies,
    resent: Some(panther_resent),
    ordinary: panther_rule,
};

/// A Standard Webhooks sender (standardwebhooks.com; Svix's defaults where the
/// specification leaves a choice).
pub const STANDARD_WEBHOOKS: Profile = Profile {
    name: "standard-webhooks",
    sender: "a Standard Webhooks sender",
    // Svix gives an endpoint 15 s.
    answer_limit: Duration::from_secs(15),
    on_timeout: "marks the attempt failed and retries",
    retries: "retries a non-2XX answer or a network error on its schedule (Svix: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), re-signed, with the same webhook-id",
    idempotency_key: "webhook-id",
    user_agent: "hookscope-probe",
    signs: true,
    own_checks: &[
        check(
            "event-types",
            "signed events of several types are accepted (2XX)",
            Kind::Shapes,
        ),
        check(
            "signature",
            "a wrong signature and an expired timestamp are refused (4XX)",
            Kind::Signature,
        ),
    ],
    shapes: event_shapes,
    hard_bodies: event_hard_bodies,
    resent: None,
    ordinary: event,
};

impl Profile {
    /// Every check, in the order they run: the profile's own, then the shared ones.
    pub fn checks(&self) -> impl Iterator<Item = &'static Check> {
        self.own_checks.iter().chain(SHARED_CHECKS.iter())
    }
}

impl ProfileName {
    /// The profile's table.
    pub fn profile(self) -> &'static Profile {
        match self {
            ProfileName::Panther => &PANTHER,
            ProfileName::StandardWebhooks => &STANDARD_WEBHOOKS,
        }
    }
}

fn payload(label: impl Into<String>, key: String, body: Vec<u8>) -> Payload {
    Payload {
        label: label.into(),
        body: Bytes::from(body),
        key,
    }
}

/// An alert as Panther sends it, with a fresh alertId (none for a policy).
fn panther_payload(label: &str, mut source: Source, ids: &mut Ids) -> Payload {
    let key = ids.key();
    if source.alert_id.is_some() {
        source.alert_id = Some(key.clone());
    }
    let body = panther::encode(&source.notification(panther::DEFAULT_APP_URL));
    payload(label, source.alert_id.unwrap_or(key), body)
}

fn panther_shapes(ids: &mut Ids) -> Vec<Payload> {
    let now = ids.now;
    let mut shapes = vec![panther_payload("test alert", Source::test(now), ids)];
    for (label, example) in [
        ("rule", Example::Rule),
        ("rule error", Example::RuleError),
        ("scheduled rule", Example::ScheduledRule),
        ("scheduled rule error", Example::ScheduledRuleError),
        ("policy", Example::Policy),
        ("system error", Example::SystemError),
    ] {
        shapes.push(panther_payload(label, Source::example(example, now), ids));
    }
    shapes.push(panther_payload(
        "re-sent rule",
        Source::example(Example::Rule, now).resent(),
        ids,
    ));
    shapes
}

fn panther_rule(ids: &mut Ids, key: &str) -> Payload {
    let mut source = Source::example(Example::Rule, ids.now);
    source.alert_id = Some(key.to_owned());
    let body = panther::encode(&source.notification(panther::DEFAULT_APP_URL));
    payload("rule", key.to_owned(), body)
}

fn panther_resent(ids: &mut Ids, key: &str) -> Payload {
    let mut source = Source::example(Example::Rule, ids.now).resent();
    source.alert_id = Some(key.to_owned());
    let body = panther::encode(&source.notification(panther::DEFAULT_APP_URL));
    payload("re-sent rule", key.to_owned(), body)
}

/// A JSON value nested `depth` objects deep.
fn nested(depth: usize) -> serde_json::Value {
    (0..depth).fold(json!("bottom"), |inner, _| json!({ "level": inner }))
}

/// About `bytes` of log events, as a rule's context may carry.
fn events(bytes: usize) -> serde_json::Value {
    let event = json!({
        "eventName": "ConsoleLogin",
        "sourceIPAddress": "203.0.113.9",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
        "requestParameters": {"bucketName": "acme-logs", "key": "2026/12/06/events.json.gz"},
    });
    let size = event.to_string().len() + 1;
    json!(vec![event; bytes / size + 1])
}

fn panther_hard_bodies(ids: &mut Ids) -> Vec<Payload> {
    let now = ids.now;
    let with = |ids: &mut Ids, label: &str, change: &dyn Fn(&mut Source)| {
        let mut source = Source::example(Example::Rule, now);
        change(&mut source);
        panther_payload(label, source, ids)
    };
    vec![
        with(ids, "a 300 KB alertContext", &|source| {
            source.context = Some(serde_json::Map::from_iter([(
                "events".to_owned(),
                events(300 * 1024),
            )]));
        }),
        with(ids, "alertContext nested 64 deep", &|source| {
            source.context = Some(serde_json::Map::from_iter([(
                "deep".to_owned(),
                nested(64),
            )]));
        }),
        with(ids, "Unicode beyond the BMP", &|source| {
            source.title = "🚨 Login from 𝒰𝓃𝓀𝓃ℴ𝓌𝓃 device — 東京 🔐".into();
            source.context = Some(serde_json::Map::from_iter([(
                "user".to_owned(),
                json!("José 😀 𐍈"),
            )]));
        }),
        with(
            ids,
            "characters Panther escapes (<>& U+2028 U+2029)",
            &|source| {
                source.title = "<script>alert(1)</script> & more".into();
                source.analysis_description =
                    "line\u{2028}separator\u{2029}paragraph <b>&amp;</b>".into();
            },
        ),
        with(ids, "empty tags and runbook", &|source| {
            source.tags.clear();
            source.runbook.clear();
        }),
        with(ids, "null name, version and context", &|source| {
            source.analysis_name = None;
            source.version = None;
            source.context = None;
        }),
        panther_payload(
            "a policy (alertId null)",
            Source::example(Example::Policy, now),
            ids,
        ),
    ]
}

fn event_body(kind: &str, key: &str, data: serde_json::Value, now: DateTime<Utc>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": kind,
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
        "id": key,
    }))
    .unwrap_or_default()
}

fn event_of(ids: &mut Ids, kind: &str, data: serde_json::Value) -> Payload {
    let key = format!("msg_{}", ids.key());
    let body = event_body(kind, &key, data, ids.now);
    payload(kind, key, body)
}

fn event(ids: &mut Ids, key: &str) -> Payload {
    let body = event_body(
        "invoice.paid",
        key,
        json!({"id": "in_1", "amount": 1200, "currency": "usd"}),
        ids.now,
    );
    payload("invoice.paid", key.to_owned(), body)
}

fn event_shapes(ids: &mut Ids) -> Vec<Payload> {
    vec![
        event_of(
            ids,
            "invoice.paid",
            json!({"id": "in_1", "amount": 1200, "currency": "usd"}),
        ),
        event_of(
            ids,
            "contact.created",
            json!({"id": "c_1", "email": "jane@example.com"}),
        ),
        event_of(
            ids,
            "user.deleted",
            json!({"id": "u_1", "deleted": true, "reason": null}),
        ),
    ]
}

fn event_hard_bodies(ids: &mut Ids) -> Vec<Payload> {
    vec![
        event_of(ids, "batch.large", json!({"events": events(300 * 1024)})),
        event_of(ids, "nested.deep", nested(64)),
        event_of(
            ids,
            "unicode.astral",
            json!({"name": "José 😀 𐍈", "city": "東京"}),
        ),
        event_of(
            ids,
            "escapes",
            json!({"html": "<script>&</script>", "separators": "\u{2028}\u{2029}"}),
        ),
        event_of(ids, "nulls", json!({"id": null, "tags": [], "note": null})),
    ]
}
