//! `hookscope probe URL`: plays a sender (Panther by default) against the user's own
//! receiver and scores what will go wrong in production: every payload shape, the
//! answer time against the sender's limit, a duplicate after a lost acknowledgement,
//! a burst, hard bodies, slow bodies, the certificate, connection reuse.
//!
//! The checks are a table per profile ([`cases`]); this module runs them and keeps
//! what each sent and got; [`report`] writes the scorecard as text, JSON or JUnit.

pub mod cases;
pub mod report;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde::Serialize;

use crate::outgoing::{self, Trust, Url};
use crate::send::{self, Delivery, DeliveryStatus, RetryPolicy, Sender};
use crate::signature::Key;

pub use cases::{Check, Ids, Kind, Payload, Profile, ProfileName};

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Score {
    /// As the sender needs.
    Pass,
    /// It works, but something will hurt (slow answers, a lost connection, retries needed).
    Warn,
    /// The sender will fail, or a duplicate will act twice.
    Fail,
    /// Not run here (no https, no --state, no --sign).
    Skip,
}

impl Score {
    /// Its word on the scorecard.
    pub fn word(self) -> &'static str {
        match self {
            Score::Pass => "pass",
            Score::Warn => "warn",
            Score::Fail => "fail",
            Score::Skip => "skip",
        }
    }
}

/// One line of the scorecard.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The check's name.
    pub name: &'static str,
    /// What passing means.
    pub about: &'static str,
    /// How it ended.
    pub result: Score,
    /// Why, in one line.
    pub detail: String,
    /// What was sent.
    pub sent: Vec<String>,
    /// What came back (the sender's words for each answer).
    pub received: Vec<String>,
    /// What the sender would do with what came back, when it fails or warns.
    pub sender_would: Option<String>,
    /// How long the check took, in milliseconds.
    pub took_ms: f64,
}

/// Every check's report, in the order they ran.
#[derive(Debug, Clone, Serialize)]
pub struct Scorecard {
    /// The profile played.
    pub profile: &'static str,
    /// The receiver probed.
    pub target: String,
    /// The checks.
    pub checks: Vec<CheckReport>,
}

impl Scorecard {
    /// How many checks ended so.
    pub fn count(&self, result: Score) -> usize {
        self.checks
            .iter()
            .filter(|check| check.result == result)
            .count()
    }

    /// Whether a check failed.
    pub fn failed(&self) -> bool {
        self.count(Score::Fail) > 0
    }
}

/// What to probe, and how.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The receiver.
    pub url: Url,
    /// The sender played.
    pub profile: &'static Profile,
    /// A GET that returns JSON which changes with each effect (`{"tickets": 3}`).
    pub state: Option<Url>,
    /// Wait this long after an answer before reading `state` (a receiver that acts
    /// after answering).
    pub state_settle: Duration,
    /// Only these checks (all when empty).
    pub only: Vec<String>,
    /// Whom https trusts.
    pub trust: Trust,
    /// Give up on one answer after this long.
    pub timeout: Duration,
    /// Warn when p99 is above this.
    pub warn_latency: Duration,
    /// How many deliveries the storm sends at once.
    pub storm: usize,
    /// How failed sends are retried (none by default: a probe reports the first answer).
    pub policy: RetryPolicy,
    /// Keys each attempt is signed with.
    pub signers: Vec<Key>,
    /// How long the slow body takes to arrive.
    pub trickle: Duration,
    /// For repeatable keys and retry waits.
    pub seed: Option<u64>,
}

/// What one delivery got: the sender's words for it, and how long the first answer took.
#[derive(Debug, Clone)]
struct Sent {
    label: String,
    status: DeliveryStatus,
}

impl Sent {
    fn first_took(&self) -> Option<Duration> {
        let first = self.status.attempts.first()?;
        first
            .status
            .map(|_| Duration::from_secs_f64(first.took_ms.max(0.0) / 1000.0))
    }

    fn line(&self) -> String {
        let attempts = self.status.attempts.len();
        let tries = if attempts > 1 {
            format!(" (after {attempts} attempts)")
        } else {
            String::new()
        };
        format!("{}: {}{tries}", self.label, short(&self.status.message))
    }
}

/// At most a line of text from the network, for the scorecard.
fn short(text: &str) -> String {
    const MOST: usize = 160;
    let line = text.trim().replace(['\n', '\r'], " ");
    crate::values::at_most_chars(&line, MOST).into_owned()
}

/// A probe in progress: the client, the keys, the answer times so far.
struct Run<'a> {
    probe: &'a Probe,
    sender: Sender,
    /// Reads `--state` (a plain client: the state is the receiver's, not a delivery).
    state_reader: outgoing::Client,
    ids: Ids,
    rng: fastrand::Rng,
    latencies: Vec<Duration>,
}

/// Runs the probe's checks in order and returns the scorecard, telling `on_check`
/// of each as it ends (a probe of a slow receiver takes minutes). A CA file that
/// cannot be used is the one error: everything the receiver does is a result.
pub async fn run(
    probe: &Probe,
    on_check: &mut dyn FnMut(&CheckReport),
) -> std::result::Result<Scorecard, outgoing::TrustError> {
    let sender = Sender::as_panther(&probe.trust, probe.timeout)?;
    let state_reader = outgoing::Client::new(&probe.trust, probe.timeout)?;
    let mut rng = probe
        .seed
        .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
    let ids = Ids::new(rng.fork(), chrono::Utc::now());
    let mut run = Run {
        probe,
        sender,
        state_reader,
        ids,
        rng,
        latencies: Vec::new(),
    };
    let mut checks = Vec::new();
    for check in probe.profile.checks() {
        if !probe.only.is_empty() && !probe.only.iter().any(|name| name == check.name) {
            continue;
        }
        let started = tokio::time::Instant::now();
        let mut report = run.check(check).await;
        report.took_ms = started.elapsed().as_secs_f64() * 1000.0;
        on_check(&report);
        checks.push(report);
    }
    Ok(Scorecard {
        profile: probe.profile.name,
        target: probe.url.to_string(),
        checks,
    })
}

/// A report with nothing sent yet.
fn report(check: &Check, result: Score, detail: impl Into<String>) -> CheckReport {
    CheckReport {
        name: check.name,
        about: check.about,
        result,
        detail: detail.into(),
        sent: Vec::new(),
        received: Vec::new(),
        sender_would: None,
        took_ms: 0.0,
    }
}

impl Run<'_> {
    async fn check(&mut self, check: &Check) -> CheckReport {
        match check.kind {
            Kind::Shapes => {
                let payloads = (self.probe.profile.shapes)(&mut self.ids);
                self.all_accepted(check, payloads, HeaderMap::new()).await
            }
            Kind::HardBodies => {
                let payloads = (self.probe.profile.hard_bodies)(&mut self.ids);
                self.all_accepted(check, payloads, HeaderMap::new()).await
            }
            Kind::ContentType => {
                let key = self.ids.key();
                let payload = (self.probe.profile.ordinary)(&mut self.ids, &key);
                let mut headers = HeaderMap::new();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                );
                self.all_accepted(check, vec![payload], headers).await
            }
            Kind::Signature => self.signature(check).await,
            Kind::Latency => self.latency(check).await,
            Kind::Idempotency => self.idempotency(check).await,
            Kind::Storm => self.storm(check).await,
            Kind::SlowBody => self.slow_body(check).await,
            Kind::Certificate => self.certificate(check).await,
            Kind::KeepAlive => self.keep_alive(check).await,
        }
    }

    fn delivery(&self, payload: &Payload, headers: HeaderMap) -> Delivery {
        let profile = self.probe.profile;
        Delivery {
            url: self.probe.url.clone(),
            user_agent: HeaderValue::from_static(profile.user_agent),
            body: payload.body.clone(),
            headers,
            max_response_body: outgoing::DEFAULT_MAX_RESPONSE_BODY,
            signers: self.probe.signers.clone(),
            sign_timestamp: None,
            message_id: profile.signs.then(|| payload.key.clone()),
        }
    }

    /// Delivers one payload (with retries, if asked) and keeps its answer time.
    async fn send(&mut self, payload: &Payload, headers: HeaderMap) -> Sent {
        let delivery = self.delivery(payload, headers);
        let status = send::deliver(
            &self.sender,
            &delivery,
            self.probe.policy,
            &mut self.rng,
            &mut |_| {},
        )
        .await;
        let sent = Sent {
            label: payload.label.clone(),
            status,
        };
        self.latencies.extend(sent.first_took());
        sent
    }

    /// What the sender would do after these deliveries, if one was not a first-time 2XX.
    fn sender_would(&self, sent: &[Sent]) -> Option<String> {
        let profile = self.probe.profile;
        let failed = sent.iter().find(|sent| !sent.status.delivered)?;
        let timed_out = failed
            .status
            .attempts
            .iter()
            .any(|attempt| attempt.timed_out);
        Some(if timed_out {
            format!("{} {}", profile.sender, profile.on_timeout)
        } else {
            format!(
                "{} keeps \"{}\" in the delivery status and {}",
                profile.sender,
                short(&failed.status.message),
                profile.retries
            )
        })
    }

    async fn all_accepted(
        &mut self,
        check: &Check,
        payloads: Vec<Payload>,
        headers: HeaderMap,
    ) -> CheckReport {
        let mut sent = Vec::with_capacity(payloads.len());
        for payload in &payloads {
            let one = self.send(payload, headers.clone()).await;
            // A receiver that does not answer would cost --timeout per payload: one
            // timeout says enough.
            let timed_out = !one.status.delivered
                && one.status.attempts.iter().all(|attempt| attempt.timed_out);
            sent.push(one);
            if timed_out {
                break;
            }
        }
        let unsent = match payloads.len() - sent.len() {
            0 => String::new(),
            left => format!(" ({left} more not sent after a timeout)"),
        };
        let refused: Vec<&Sent> = sent.iter().filter(|sent| !sent.status.delivered).collect();
        let retried: Vec<&Sent> = sent
            .iter()
            .filter(|sent| sent.status.delivered && sent.status.attempts.len() > 1)
            .collect();
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| format!(" with Content-Type: {value}"))
            .unwrap_or_default();
        let (result, detail) = match (refused.first(), retried.first()) {
            (Some(first), _) => (
                Score::Fail,
                format!(
                    "{} of {} not accepted{content_type}{unsent}: {}",
                    refused.len(),
                    sent.len(),
                    first.line()
                ),
            ),
            (None, Some(first)) => (
                Score::Warn,
                format!("accepted only after retries: {}", first.line()),
            ),
            (None, None) => (
                Score::Pass,
                format!(
                    "{} accepted{content_type}: {}",
                    sent.len(),
                    sent.iter()
                        .map(|sent| sent.label.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        };
        CheckReport {
            sent: payloads
                .iter()
                .map(|payload| format!("{} ({} bytes)", payload.label, payload.body.len()))
                .collect(),
            received: sent.iter().map(Sent::line).collect(),
            sender_would: self.sender_would(&sent),
            ..report(check, result, detail)
        }
    }
}

/// The nearest-rank percentile `p` (0 to 100) of `values`, sorted.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// "p50 …, p99 …" of answer times, sorted.
fn spread(sorted: &[Duration]) -> String {
    format!(
        "p50 {}, p99 {}",
        seconds(percentile(sorted, 50)),
        seconds(percentile(sorted, 99))
    )
}

fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

impl Run<'_> {
    async fn signature(&mut self, check: &Check) -> CheckReport {
        let Some(key) = self.probe.signers.first().cloned() else {
            return report(
                check,
                Score::Skip,
                "no --sign: give the receiver's key (--sign standard-webhooks:whsec_...) to check that it refuses bad signatures",
            );
        };
        let key_text = self.ids.key();
        let payload = (self.probe.profile.ordinary)(&mut self.ids, &format!("msg_{key_text}"));
        // The same request signed with a secret the receiver does not know, then with
        // its own key ten minutes ago: each must be refused.
        let other: Key = match format!("{}:{}", key.scheme.name(), wrong_secret(&key)).parse() {
            Ok(other) => other,
            Err(_) => {
                return report(
                    check,
                    Score::Skip,
                    "this scheme cannot be signed wrongly here",
                );
            }
        };
        let mut cases = Vec::new();
        for (label, signer, timestamp) in [
            ("signed with another secret", other, None),
            (
                "signed 10 minutes ago",
                key,
                Some(self.ids.now.timestamp() - 600),
            ),
        ] {
            let mut delivery = self.delivery(&payload, HeaderMap::new());
            delivery.signers = vec![signer];
            delivery.sign_timestamp = timestamp;
            let status = send::deliver(
                &self.sender,
                &delivery,
                RetryPolicy {
                    retries: 0,
                    ..self.probe.policy
                },
                &mut self.rng,
                &mut |_| {},
            )
            .await;
            cases.push(Sent {
                label: label.to_owned(),
                status,
            });
        }
        let accepted: Vec<&Sent> = cases.iter().filter(|sent| sent.status.delivered).collect();
        let (score, detail) = match accepted.first() {
            Some(first) => (
                Score::Fail,
                format!("accepted a request it should refuse: {}", first.line()),
            ),
            None => (Score::Pass, "both refused".to_owned()),
        };
        CheckReport {
            sent: cases.iter().map(|sent| sent.label.clone()).collect(),
            received: cases.iter().map(Sent::line).collect(),
            sender_would: (!accepted.is_empty()).then(|| {
                "anyone who can reach the URL can make the receiver act: check the signature and the timestamp (5 minutes' tolerance) before anything else".to_owned()
            }),
            ..report(check, score, detail)
        }
    }

    async fn latency(&mut self, check: &Check) -> CheckReport {
        if self.latencies.is_empty() {
            let payloads = (self.probe.profile.shapes)(&mut self.ids);
            for payload in &payloads {
                self.send(payload, HeaderMap::new()).await;
            }
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let p99 = percentile(&sorted, 99);
        let slowest = sorted.last().copied().unwrap_or_default();
        let profile = self.probe.profile;
        let measured = format!(
            "{}, slowest {} over {} answers",
            spread(&sorted),
            seconds(slowest),
            sorted.len()
        );
        let (score, detail, would) = if sorted.is_empty() {
            (
                Score::Fail,
                "no answer came back to measure".to_owned(),
                None,
            )
        } else if slowest >= profile.answer_limit {
            (
                Score::Fail,
                format!(
                    "{measured}: past {}'s {} limit",
                    profile.sender,
                    seconds(profile.answer_limit)
                ),
                Some(format!("{} {}", profile.sender, profile.on_timeout)),
            )
        } else if p99 > self.probe.warn_latency {
            (
                Score::Warn,
                format!(
                    "{measured}: above the {} warning (the limit is {}: answer first, work after)",
                    seconds(self.probe.warn_latency),
                    seconds(profile.answer_limit)
                ),
                Some(format!(
                    "past {} {} {}",
                    seconds(profile.answer_limit),
                    profile.sender,
                    profile.on_timeout
                )),
            )
        } else {
            (Score::Pass, measured, None)
        };
        CheckReport {
            sender_would: would,
            ..report(check, score, detail)
        }
    }

    /// The receiver's state (`--state`), as JSON, after `--state-settle`.
    async fn state(&self) -> std::result::Result<serde_json::Value, String> {
        let Some(url) = &self.probe.state else {
            return Err("no --state".into());
        };
        if !self.probe.state_settle.is_zero() {
            tokio::time::sleep(self.probe.state_settle).await;
        }
        let request = Request::get(url.as_str())
            .body(http_body_util::Full::new(Bytes::new()))
            .map_err(|error| error.to_string())?;
        let deadline = tokio::time::Instant::now() + self.probe.timeout;
        let answer = self
            .state_reader
            .send(request, deadline)
            .await
            .map_err(|failure| failure.describe(url, "--timeout"))?;
        let status = answer.status();
        let mut body = answer.into_body();
        let capped =
            outgoing::read_capped(&mut body, outgoing::DEFAULT_MAX_RESPONSE_BODY, deadline)
                .await
                .map_err(|error| error.to_string())?;
        if !status.is_success() {
            return Err(format!("--state answered {status}"));
        }
        serde_json::from_slice(&capped.kept)
            .map_err(|error| format!("--state is not JSON: {error}"))
    }

    async fn idempotency(&mut self, check: &Check) -> CheckReport {
        let profile = self.probe.profile;
        let key = match profile.signs {
            true => format!("msg_{}", self.ids.key()),
            false => self.ids.key(),
        };
        let payload = (profile.ordinary)(&mut self.ids, &key);
        let what = format!(
            "the same delivery twice ({} {key}), as after a lost acknowledgement",
            profile.idempotency_key
        );
        if self.probe.state.is_none() {
            let first = self.send(&payload, HeaderMap::new()).await;
            let second = self.send(&payload, HeaderMap::new()).await;
            return CheckReport {
                sent: vec![what],
                received: vec![first.line(), second.line()],
                ..report(
                    check,
                    Score::Skip,
                    format!(
                        "cannot tell without --state URL (a GET whose JSON changes with each effect): both copies were answered; deduplicate on {}",
                        profile.idempotency_key
                    ),
                )
            };
        }
        let mut steps = Vec::new();
        let mut states = Vec::new();
        match self.state().await {
            Ok(state) => states.push(state),
            Err(error) => return report(check, Score::Fail, format!("reading --state: {error}")),
        }
        let mut sends = vec![("first copy", payload.clone()), ("duplicate", payload)];
        if let Some(resent) = profile.resent {
            sends.push(("re-sent copy", resent(&mut self.ids, &key)));
        }
        for (label, payload) in &sends {
            let sent = self.send(payload, HeaderMap::new()).await;
            steps.push(format!("{label}: {}", sent.line()));
            match self.state().await {
                Ok(state) => states.push(state),
                Err(error) => {
                    return report(check, Score::Fail, format!("reading --state: {error}"));
                }
            }
        }
        let shown = |value: &serde_json::Value| short(&value.to_string());
        let (score, detail, would) = if states[2] != states[1] {
            (
                Score::Fail,
                format!(
                    "the duplicate had an effect: {} → {}",
                    shown(&states[1]),
                    shown(&states[2])
                ),
                Some(format!(
                    "{} delivers an alert again whenever an acknowledgement is lost (a timeout, a reset, a 5XX from a proxy): deduplicate on {}",
                    profile.sender, profile.idempotency_key
                )),
            )
        } else if states[1] == states[0] {
            (
                Score::Warn,
                format!(
                    "--state did not change after the first copy ({}): it may not show the effect",
                    shown(&states[0])
                ),
                None,
            )
        } else {
            let resent = match states.get(3) {
                Some(after) if after != &states[2] => "; the re-sent copy made a new effect",
                Some(_) => "; the re-sent copy was taken as the same alert",
                None => "",
            };
            (
                Score::Pass,
                format!(
                    "one effect for two copies ({} → {}){resent}",
                    shown(&states[0]),
                    shown(&states[1])
                ),
                None,
            )
        };
        CheckReport {
            sent: vec![what],
            received: steps,
            sender_would: would,
            ..report(check, score, detail)
        }
    }
}

/// A secret of the key's scheme that is not the key's, to sign a request wrongly.
fn wrong_secret(key: &Key) -> &'static str {
    match key.scheme {
        crate::signature::Scheme::StandardWebhooks => "whsec_d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==",
        _ => "hookscope-probe-wrong-secret",
    }
}

impl Run<'_> {
    async fn storm(&mut self, check: &Check) -> CheckReport {
        let count = self.probe.storm.max(1);
        let payloads: Vec<Payload> = (0..count)
            .map(|_| {
                let key = self.ids.key();
                (self.probe.profile.ordinary)(&mut self.ids, &key)
            })
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for payload in &payloads {
            let delivery = self.delivery(payload, HeaderMap::new());
            let sender = self.sender.clone();
            let policy = self.probe.policy;
            let mut rng = self.rng.fork();
            tasks.spawn(async move {
                send::deliver(&sender, &delivery, policy, &mut rng, &mut |_| {}).await
            });
        }
        let mut statuses = Vec::with_capacity(count);
        while let Some(done) = tasks.join_next().await {
            if let Ok(status) = done {
                statuses.push(status);
            }
        }
        let mut sorted: Vec<Duration> = statuses
            .iter()
            .filter_map(|status| status.attempts.first())
            .filter(|attempt| attempt.status.is_some())
            .map(|attempt| Duration::from_secs_f64(attempt.took_ms.max(0.0) / 1000.0))
            .collect();
        sorted.sort_unstable();
        let errors = statuses
            .iter()
            .filter(|status| {
                status
                    .attempts
                    .first()
                    .is_some_and(|attempt| attempt.status.is_none())
            })
            .count();
        let refused = statuses.iter().filter(|status| !status.delivered).count();
        let timing = spread(&sorted);
        let first_failure = statuses.iter().find(|status| !status.delivered);
        let (score, detail) = if refused > 0 {
            (
                Score::Fail,
                format!(
                    "{refused} of {count} at once not accepted ({errors} connection errors; {timing}): {}",
                    first_failure
                        .map(|status| short(&status.message))
                        .unwrap_or_default()
                ),
            )
        } else if percentile(&sorted, 99) > self.probe.warn_latency {
            (
                Score::Warn,
                format!("{count} at once accepted, slowly: {timing}"),
            )
        } else {
            (Score::Pass, format!("{count} at once accepted: {timing}"))
        };
        let would = first_failure.map(|status| {
            format!(
                "{} keeps \"{}\" and {}",
                self.probe.profile.sender,
                short(&status.message),
                self.probe.profile.retries
            )
        });
        CheckReport {
            sent: vec![format!(
                "{count} deliveries at once, each with its own {}",
                self.probe.profile.idempotency_key
            )],
            sender_would: would,
            ..report(check, score, detail)
        }
    }

    /// A request of `payload` for one [`outgoing::Connection`], its body given by `body`.
    fn connection_request(
        &self,
        payload: &Payload,
        body: outgoing::StreamedBody,
    ) -> std::result::Result<Request<outgoing::StreamedBody>, String> {
        let url = &self.probe.url;
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let delivery = self.delivery(payload, HeaderMap::new());
        let timestamp = self.ids.now.timestamp();
        let mut headers = send::attempt_headers(&delivery, timestamp, &payload.key);
        // One connection of our own: no pool writes `Host` for https.
        if !headers.contains_key(http::header::HOST) {
            let host = outgoing::host_header(url).ok_or_else(|| format!("cannot address {url}"))?;
            headers.insert(http::header::HOST, host);
        }
        let mut request = Request::post(path)
            .body(body)
            .map_err(|error| error.to_string())?;
        *request.headers_mut() = headers;
        Ok(request)
    }

    async fn slow_body(&mut self, check: &Check) -> CheckReport {
        let key = self.ids.key();
        let payload = (self.probe.profile.ordinary)(&mut self.ids, &key);
        const PIECES: usize = 8;
        let pause = self.probe.trickle / PIECES as u32;
        let piece = payload.body.len().div_ceil(PIECES).max(1);
        let chunks: Vec<Bytes> = payload
            .body
            .chunks(piece)
            .map(Bytes::copy_from_slice)
            .collect();
        let trickle =
            futures_util::stream::unfold(chunks.into_iter(), move |mut chunks| async move {
                let chunk = chunks.next()?;
                tokio::time::sleep(pause).await;
                Some((
                    Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk)),
                    chunks,
                ))
            });
        let body = http_body_util::StreamBody::new(trickle).boxed();
        let sent = format!(
            "{} bytes in {PIECES} pieces over {}",
            payload.body.len(),
            seconds(self.probe.trickle)
        );
        let answer = self.one_connection(&payload, body).await;
        let (score, detail) = match &answer {
            Ok((status, text)) if status.is_success() => {
                (Score::Pass, format!("{status} {}", short(text)))
            }
            Ok((status, text)) => (Score::Fail, send::panther_message(*status, text)),
            Err(error) => (Score::Fail, format!("no answer: {error}")),
        };
        CheckReport {
            sent: vec![sent],
            sender_would: (score == Score::Fail).then(|| {
                format!(
                    "a slow link or a proxy that passes bodies on as they come makes this: {} {}",
                    self.probe.profile.sender, self.probe.profile.retries
                )
            }),
            ..report(check, score, detail)
        }
    }

    /// Sends one request of `payload` on a connection of its own: status and body.
    async fn one_connection(
        &self,
        payload: &Payload,
        body: outgoing::StreamedBody,
    ) -> std::result::Result<(StatusCode, String), String> {
        let deadline = tokio::time::Instant::now() + self.probe.timeout + self.probe.trickle;
        let mut connection =
            outgoing::Connection::open(&self.probe.url, &self.probe.trust, deadline)
                .await
                .map_err(|error| error.to_string())?;
        let request = self.connection_request(payload, body)?;
        answer_of(&mut connection, request, deadline).await
    }

    async fn certificate(&mut self, check: &Check) -> CheckReport {
        if self.probe.url.scheme() != "https" {
            return report(
                check,
                Score::Skip,
                "http://: no certificate to check (behind a tunnel, the tunnel's https is what the sender sees)",
            );
        }
        if self.probe.trust == Trust::Insecure {
            return report(
                check,
                Score::Skip,
                "--insecure: certificates are not checked",
            );
        }
        let key = self.ids.key();
        let payload = (self.probe.profile.ordinary)(&mut self.ids, &key);
        let sent = self.send(&payload, HeaderMap::new()).await;
        let untrusted = sent.status.stopped == Some(send::Unfixable::UntrustedCertificate)
            || sent.status.message.contains("certificate");
        let (score, detail) = if untrusted {
            (
                Score::Fail,
                format!("not trusted: {}", short(&sent.status.message)),
            )
        } else {
            (
                Score::Pass,
                format!(
                    "trusted for {}",
                    self.probe.url.host_str().unwrap_or_default()
                ),
            )
        };
        CheckReport {
            received: vec![sent.line()],
            sender_would: untrusted.then(|| {
                format!(
                    "{} verifies certificates: every delivery fails before a byte is sent, and {}",
                    self.probe.profile.sender, self.probe.profile.retries
                )
            }),
            ..report(check, score, detail)
        }
    }

    async fn keep_alive(&mut self, check: &Check) -> CheckReport {
        let deadline = tokio::time::Instant::now() + self.probe.timeout * 2;
        let opened = outgoing::Connection::open(&self.probe.url, &self.probe.trust, deadline).await;
        let mut connection = match opened {
            Ok(connection) => connection,
            Err(error) => return report(check, Score::Fail, format!("cannot connect: {error}")),
        };
        let mut lines = Vec::new();
        for number in 1..=2 {
            let key = self.ids.key();
            let payload = (self.probe.profile.ordinary)(&mut self.ids, &key);
            let body = http_body_util::Full::new(payload.body.clone())
                .map_err(|never| match never {})
                .boxed();
            let request = match self.connection_request(&payload, body) {
                Ok(request) => request,
                Err(error) => return report(check, Score::Fail, error),
            };
            // The server's close may be seen before the second request, or by it.
            let answer = if number == 2 && connection.is_closed() {
                Err("the connection was closed".to_owned())
            } else {
                answer_of(&mut connection, request, deadline).await
            };
            match answer {
                Ok((status, text)) => lines.push(format!(
                    "request {number}: {}",
                    send::panther_message(status, &text)
                )),
                Err(error) if number == 1 => {
                    return report(check, Score::Fail, format!("no answer: {error}"));
                }
                Err(error) => {
                    lines.push(format!("request 2: {error}"));
                    return CheckReport {
                        received: lines,
                        sender_would: Some(format!(
                            "{}'s client opens a new connection for each delivery then (a TCP and TLS handshake each time)",
                            self.probe.profile.sender
                        )),
                        ..report(
                            check,
                            Score::Warn,
                            "the receiver closed the connection after the first answer",
                        )
                    };
                }
            }
        }
        CheckReport {
            received: lines,
            ..report(
                check,
                Score::Pass,
                "two deliveries answered on one connection",
            )
        }
    }
}

/// Sends `request` on `connection` and reads the answer (its body up to the usual cap).
async fn answer_of(
    connection: &mut outgoing::Connection,
    request: Request<outgoing::StreamedBody>,
    deadline: tokio::time::Instant,
) -> std::result::Result<(StatusCode, String), String> {
    let answer = connection
        .send(request, deadline)
        .await
        .map_err(|error| error.to_string())?;
    let status = answer.status();
    let mut body = answer.into_body();
    let capped = outgoing::read_capped(&mut body, outgoing::DEFAULT_MAX_RESPONSE_BODY, deadline)
        .await
        .map_err(|error| error.to_string())?;
    Ok((status, String::from_utf8_lossy(&capped.kept).into_owned()))
}
