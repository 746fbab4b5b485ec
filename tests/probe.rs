//! `hookscope probe`: the real binary against toy receivers (real HTTP servers on
//! loopback), each wrong in one way a production receiver is, and one right in all.
//! Each scorecard is asserted check by check.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::app::{App, Reply, Seen};
use common::{Hookscope, run};

/// How a toy receiver treats the alerts it is given.
#[derive(Clone, Copy, PartialEq)]
enum Flaw {
    /// Deduplicates on alertId, answers at once, takes any JSON.
    None,
    /// Acts on every copy: a duplicate opens a second ticket.
    DoubleProcesses,
    /// Takes 300 ms per alert.
    Slow,
    /// Refuses any Content-Type but exactly `application/json`.
    StrictContentType,
    /// Fails on characters beyond the BMP (a 4-byte UTF-8 sequence).
    CrashesOnAstralUnicode,
}

/// A receiver that opens a ticket per alert (per alertId, or per copy when it
/// double-processes) and says how many at `GET /state`: `{"tickets": N}`.
fn receiver(flaw: Flaw) -> App {
    let seen_ids = Arc::new(Mutex::new(HashSet::new()));
    let tickets = Arc::new(Mutex::new(0u64));
    App::start(move |request: &Seen| {
        if request.method == "GET" && request.target == "/state" {
            return Reply::new(200, format!(r#"{{"tickets":{}}}"#, tickets.lock().unwrap()))
                .header("content-type", "application/json");
        }
        let content_type = request.header("content-type").unwrap_or_default();
        if flaw == Flaw::StrictContentType && content_type != "application/json" {
            return Reply::new(415, "Unsupported Media Type");
        }
        if flaw == Flaw::CrashesOnAstralUnicode && request.body.iter().any(|byte| *byte >= 0xF0) {
            return Reply::new(500, "Internal Server Error");
        }
        let Ok(alert) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return Reply::new(400, "not JSON");
        };
        let key = alert["alertId"]
            .as_str()
            .map_or_else(|| alert["id"].to_string(), str::to_owned);
        let first_time = seen_ids.lock().unwrap().insert(key);
        if first_time || flaw == Flaw::DoubleProcesses {
            *tickets.lock().unwrap() += 1;
        }
        let reply = Reply::new(200, "ticket opened");
        if flaw == Flaw::Slow {
            Reply {
                delay: Duration::from_millis(300),
                ..reply
            }
        } else {
            reply
        }
    })
}

/// Runs `hookscope probe` on the receiver with these flags: the exit code and the
/// JSON scorecard.
fn probe(app: &App, flags: &[&str]) -> (Option<i32>, serde_json::Value) {
    let url = format!("{}/hooks/panther", app.url());
    let state = format!("{}/state", app.url());
    let mut args = vec![
        "probe",
        url.as_str(),
        "--format",
        "json",
        "--trickle",
        "200ms",
    ];
    if !flags.contains(&"--no-state") {
        args.extend(["--state", state.as_str()]);
    }
    args.extend(flags.iter().filter(|flag| **flag != "--no-state"));
    probe_with(&args)
}

/// Runs `hookscope` with `args` (a `probe ... --format json`): the exit code and the
/// JSON scorecard.
fn probe_with(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = run(args, b"");
    let scorecard = serde_json::from_slice(&out.stdout).unwrap_or_else(|error| {
        panic!(
            "{error}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), scorecard)
}

/// Each check's result, by name.
fn results(scorecard: &serde_json::Value) -> Vec<(String, String)> {
    scorecard["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| {
            (
                said(check, "name").to_owned(),
                said(check, "result").to_owned(),
            )
        })
        .collect()
}

/// A text field of a check, or "" when it has none.
fn said<'a>(check: &'a serde_json::Value, field: &str) -> &'a str {
    check[field].as_str().unwrap_or_default()
}

fn check<'a>(scorecard: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    scorecard["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {scorecard}"))
}

#[test]
fn a_well_behaved_receiver_passes_every_check() {
    let app = receiver(Flaw::None);
    let (code, scorecard) = probe(&app, &[]);
    assert_eq!(code, Some(0), "{scorecard:#}");
    let expected = [
        ("alert-types", "pass"),
        ("content-type", "pass"),
        ("latency", "pass"),
        ("idempotency", "pass"),
        ("storm", "pass"),
        ("hard-bodies", "pass"),
        ("slow-body", "pass"),
        ("certificate", "skip"),
        ("keep-alive", "pass"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(name, result)| ((*name).to_owned(), (*result).to_owned()))
        .collect();
    assert_eq!(results(&scorecard), expected, "{scorecard:#}");
    let idempotency = check(&scorecard, "idempotency");
    assert!(
        said(idempotency, "detail").contains(r#"one effect for two copies"#),
        "{idempotency}"
    );
    // Every alert type arrived, each once, as Panther sends it.
    let posts: Vec<Seen> = app
        .seen()
        .into_iter()
        .filter(|seen| seen.method == "POST")
        .collect();
    let types: HashSet<String> = posts
        .iter()
        .filter_map(|seen| serde_json::from_slice::<serde_json::Value>(&seen.body).ok())
        .filter_map(|alert| alert["type"].as_str().map(str::to_owned))
        .collect();
    for kind in [
        "RULE",
        "RULE_ERROR",
        "SCHEDULED_RULE",
        "SCHEDULED_RULE_ERROR",
        "POLICY",
        "SYSTEM_ERROR",
    ] {
        assert!(types.contains(kind), "{kind} not sent: {types:?}");
    }
    assert!(
        posts
            .iter()
            .all(|seen| seen.header("user-agent") == Some("Go-http-client/1.1"))
    );
    assert_eq!(scorecard["summary"]["fail"], 0);
}

#[test]
fn a_receiver_that_acts_on_duplicates_fails_idempotency_with_state_only() {
    let app = receiver(Flaw::DoubleProcesses);
    let (code, scorecard) = probe(&app, &["--only", "idempotency"]);
    assert_eq!(code, Some(1), "{scorecard:#}");
    let idempotency = check(&scorecard, "idempotency");
    assert_eq!(idempotency["result"], "fail", "{idempotency}");
    let detail = said(idempotency, "detail");
    assert!(
        detail.contains(r#"the duplicate had an effect: {"tickets":1} → {"tickets":2}"#),
        "{detail}"
    );
    assert!(
        said(idempotency, "sender_would").contains("deduplicate on alertId"),
        "{idempotency}"
    );
    // Without --state it cannot tell, and says so rather than passing.
    let (code, scorecard) = probe(&app, &["--only", "idempotency", "--no-state"]);
    assert_eq!(code, Some(0));
    let idempotency = check(&scorecard, "idempotency");
    assert_eq!(idempotency["result"], "skip");
    assert!(said(idempotency, "detail").contains("cannot tell without --state"));
}

#[test]
fn a_slow_receiver_is_warned_about_before_the_limit() {
    let app = receiver(Flaw::Slow);
    let (code, scorecard) = probe(&app, &["--only", "latency", "--warn-latency", "200ms"]);
    assert_eq!(code, Some(0), "a warning is not a failure: {scorecard:#}");
    let latency = check(&scorecard, "latency");
    assert_eq!(latency["result"], "warn", "{latency}");
    let detail = said(latency, "detail");
    assert!(
        detail.contains("above the 200 ms warning") && detail.contains("the limit is 50.0 s"),
        "{detail}"
    );
    assert!(
        said(latency, "sender_would")
            .contains("Timeout: the upstream service did not respond back in time"),
        "{latency}"
    );
    // Past --timeout, the answer counts as none: Panther's timeout message.
    let (code, scorecard) = probe(&app, &["--only", "alert-types", "--timeout", "100ms"]);
    assert_eq!(code, Some(1), "{scorecard:#}");
    let types = check(&scorecard, "alert-types");
    assert_eq!(types["result"], "fail");
    assert!(
        said(types, "sender_would").contains("Timeout: the upstream service"),
        "{types}"
    );
}

#[test]
fn a_receiver_that_refuses_a_charset_fails_content_type_alone() {
    let app = receiver(Flaw::StrictContentType);
    let (code, scorecard) = probe(&app, &["--only", "alert-types", "--only", "content-type"]);
    assert_eq!(code, Some(1), "{scorecard:#}");
    assert_eq!(check(&scorecard, "alert-types")["result"], "pass");
    let content_type = check(&scorecard, "content-type");
    assert_eq!(content_type["result"], "fail");
    let detail = said(content_type, "detail");
    assert!(
        detail.contains("charset=utf-8")
            && detail
                .contains("request failed: 415 Unsupported Media Type: Unsupported Media Type"),
        "{detail}"
    );
}

#[test]
fn a_receiver_that_crashes_on_astral_unicode_fails_hard_bodies() {
    let app = receiver(Flaw::CrashesOnAstralUnicode);
    let (code, scorecard) = probe(&app, &["--only", "hard-bodies"]);
    assert_eq!(code, Some(1), "{scorecard:#}");
    let hard = check(&scorecard, "hard-bodies");
    assert_eq!(hard["result"], "fail");
    let detail = said(hard, "detail");
    assert!(
        detail.contains("Unicode beyond the BMP: request failed: 500 Internal Server Error"),
        "{detail}"
    );
    assert!(
        said(hard, "sender_would").contains("retries a non-2XX answer"),
        "{hard}"
    );
}

#[test]
fn a_receiver_that_recovers_is_seen_recovering_with_retries() {
    // Down for its first two answers (a restart), then fine.
    let answered = Arc::new(Mutex::new(0u32));
    let app = App::start(move |_| {
        let mut answered = answered.lock().unwrap();
        *answered += 1;
        if *answered <= 2 {
            Reply::new(503, "restarting")
        } else {
            Reply::new(200, "ok")
        }
    });
    let flags = [
        "--only",
        "content-type",
        "--no-state",
        "--retries",
        "3",
        "--time-scale",
        "0.001",
    ];
    let (code, scorecard) = probe(&app, &flags);
    assert_eq!(code, Some(0), "{scorecard:#}");
    let content_type = check(&scorecard, "content-type");
    assert_eq!(content_type["result"], "warn", "{content_type}");
    assert!(
        said(content_type, "detail").contains("(after 3 attempts)"),
        "{content_type}"
    );
}

#[test]
fn standard_webhooks_receivers_must_refuse_bad_signatures() {
    const KEY: &str = "standard-webhooks:whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let signed_probe = |url: &str, checks: &[&str]| {
        let mut args = vec![
            "probe",
            url,
            "--profile",
            "standard-webhooks",
            "--sign",
            KEY,
        ];
        args.extend(["--format", "json"]);
        for name in checks {
            args.extend(["--only", name]);
        }
        probe_with(&args)
    };
    // hookscope itself as a receiver that checks: every signed event passes, the
    // wrong and the expired signatures are refused.
    let checking = Hookscope::start(&["--verify", KEY, "--require-signature", "--format", "quiet"]);
    let (code, scorecard) = signed_probe(&checking.url("/svix"), &["event-types", "signature"]);
    assert_eq!(code, Some(0), "{scorecard:#}");
    assert_eq!(
        results(&scorecard),
        [
            ("event-types".to_owned(), "pass".to_owned()),
            ("signature".to_owned(), "pass".to_owned())
        ]
    );
    // A receiver that checks nothing takes both.
    let trusting = receiver(Flaw::None);
    let (code, scorecard) = signed_probe(&trusting.url(), &["signature"]);
    assert_eq!(code, Some(1), "{scorecard:#}");
    let signature = check(&scorecard, "signature");
    assert_eq!(signature["result"], "fail");
    let detail = said(signature, "detail");
    assert!(
        detail.contains("accepted a request it should refuse"),
        "{detail}"
    );
}

#[test]
fn the_text_scorecard_says_what_was_sent_got_and_what_panther_would_do() {
    let app = receiver(Flaw::CrashesOnAstralUnicode);
    let url = format!("{}/hooks/panther", app.url());
    let out = run(
        &["probe", &url, "--only", "hard-bodies", "--color", "always"],
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("\u{1b}[1;31m✘ FAIL\u{1b}[0m  hard-bodies"),
        "{text}"
    );
    assert!(text.contains("sent: Unicode beyond the BMP ("), "{text}");
    assert!(
        text.contains("got:  Unicode beyond the BMP: request failed: 500 Internal Server Error"),
        "{text}"
    );
    assert!(
        text.contains("then: Panther keeps \"request failed: 500"),
        "{text}"
    );
    assert!(
        text.trim_end()
            .ends_with("1 check: 0 passed, 0 warned, 1 failed, 0 skipped"),
        "{text}"
    );
}

#[test]
fn bad_probe_flags_are_refused_with_exit_2() {
    for (args, expected) in [
        (
            &["probe", "http://127.0.0.1:9/", "--only", "nope"][..],
            "--only nope: no such check",
        ),
        (&["probe", "localhost:3000"][..], "URL"),
        (
            &["probe", "http://127.0.0.1:9/", "--storm", "0"][..],
            "--storm",
        ),
        (
            &["probe", "http://127.0.0.1:9/", "--profile", "zapier"][..],
            "--profile",
        ),
    ] {
        let out = run(args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn an_unreachable_receiver_fails_without_hanging() {
    let port = common::closed_port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = run(
        &[
            "probe",
            &url,
            "--format",
            "json",
            "--only",
            "alert-types",
            "--only",
            "keep-alive",
        ],
        b"",
    );
    let scorecard: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{scorecard:#}");
    let types = check(&scorecard, "alert-types");
    assert!(
        said(types, "detail").contains("Connection refused"),
        "{types}"
    );
    assert_eq!(check(&scorecard, "keep-alive")["result"], "fail");
}

fn repo_file(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn an_https_receiver_is_checked_for_a_certificate_valid_for_its_name() {
    let (cert, key) = (repo_file("certs/cert.pem"), repo_file("certs/key.pem"));
    let tls = Hookscope::start(&["--tls-cert", &cert, "--tls-key", &key, "--format", "quiet"]);
    // The development certificate is for localhost, issued by itself.
    let url = tls.url("/panther").replace("127.0.0.1", "localhost");
    assert!(url.starts_with("https://localhost:"), "{url}");
    let probe = |extra: &[&str]| {
        let mut args = vec![
            "probe",
            url.as_str(),
            "--format",
            "json",
            "--only",
            "certificate",
            "--only",
            "keep-alive",
        ];
        args.extend(extra);
        let out = run(&args, b"");
        let scorecard: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), scorecard)
    };
    let (code, trusted) = probe(&["--cacert", &cert]);
    assert_eq!(code, Some(0), "{trusted:#}");
    assert_eq!(check(&trusted, "certificate")["result"], "pass");
    assert_eq!(
        check(&trusted, "keep-alive")["result"],
        "pass",
        "one TLS connection, two requests"
    );
    let (code, untrusted) = probe(&[]);
    assert_eq!(code, Some(1), "{untrusted:#}");
    let certificate = check(&untrusted, "certificate");
    assert_eq!(certificate["result"], "fail");
    assert!(
        said(certificate, "sender_would").contains("Panther verifies certificates"),
        "{certificate}"
    );
}

#[test]
fn a_receiver_that_closes_every_connection_is_warned_about() {
    let app = App::start(|_| Reply::new(200, "ok").header("connection", "close"));
    let (code, scorecard) = probe(&app, &["--only", "keep-alive", "--no-state"]);
    assert_eq!(code, Some(0), "{scorecard:#}");
    let keep_alive = check(&scorecard, "keep-alive");
    assert_eq!(keep_alive["result"], "warn", "{keep_alive}");
    assert!(
        said(keep_alive, "detail").contains("closed the connection after the first answer"),
        "{keep_alive}"
    );
}

#[test]
fn a_receiver_that_never_answers_is_scored_within_the_timeouts() {
    // Answers after a minute: long past every --timeout below.
    let app = App::start(|_| Reply {
        delay: Duration::from_secs(60),
        ..Reply::new(200, "late")
    });
    let started = std::time::Instant::now();
    let (code, scorecard) = probe(&app, &["--no-state", "--timeout", "300ms"]);
    let took = started.elapsed();
    assert_eq!(code, Some(1), "{scorecard:#}");
    // Each check waits for at most one timeout (two for keep-alive), not one per payload.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let types = check(&scorecard, "alert-types");
    assert_eq!(types["result"], "fail");
    assert!(
        said(types, "detail").contains("(7 more not sent after a timeout)"),
        "{types}"
    );
    assert!(
        said(types, "sender_would").contains("Timeout: the upstream service"),
        "{types}"
    );
    for name in [
        "content-type",
        "latency",
        "storm",
        "hard-bodies",
        "slow-body",
        "keep-alive",
    ] {
        assert_eq!(
            check(&scorecard, name)["result"],
            "fail",
            "{name}: {scorecard:#}"
        );
    }
}
