//! `hookscope send` puts on the wire what Panther's code does: the bodies (compared
//! byte for byte with tests/fixtures/panther, see its README for the sources), the
//! headers, the escaping and key order, and the retry schedule.

mod common;

use std::path::PathBuf;

use common::app::{App, Reply};
use common::{Hookscope, run};

const CREATED_AT: &str = "2026-11-27T08:12:30.12Z";
const APP_URL: &str = "https://acme.runpanther.net";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/panther/{name}.json"))
}

fn send(app: &App, what: &[&str]) {
    let url = app.url();
    let mut argv = vec!["send", "--to", &url, "--retries", "0"];
    // A fixed time and app URL for the alerts hookscope builds.
    if what.contains(&"--test") || what.contains(&"--example") {
        argv.extend_from_slice(&["--created-at", CREATED_AT, "--panther-url", APP_URL]);
    }
    argv.extend_from_slice(what);
    let output = run(&argv, b"");
    assert!(
        output.status.success(),
        "{what:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_alert_type_is_sent_byte_for_byte_as_panther_builds_it() {
    let app = App::start(|_| Reply::new(200, "ok"));
    let cases: [(&str, &[&str]); 8] = [
        ("test", &["--test"]),
        ("rule", &["--example", "rule"]),
        ("rule-error", &["--example", "rule-error"]),
        ("scheduled-rule", &["--example", "scheduled-rule"]),
        (
            "scheduled-rule-error",
            &["--example", "scheduled-rule-error"],
        ),
        ("policy", &["--example", "policy"]),
        ("system-error", &["--example", "system-error"]),
        ("rule-resent", &["--example", "rule", "--resend"]),
    ];
    for (index, (name, args)) in cases.iter().enumerate() {
        send(&app, args);
        let seen = app.wait_for(index + 1).remove(index);
        let expected = std::fs::read(fixture(name)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&seen.body),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
        assert_eq!(seen.header("user-agent"), Some("Go-http-client/1.1"));
        assert_eq!(seen.header("content-type"), Some("application/json"));
        assert_eq!(seen.header("accept"), Some("application/json"));
        assert_eq!(seen.header("accept-encoding"), Some("gzip"));
    }
}

#[test]
fn hookscope_validate_accepts_every_shape_panther_sends() {
    for name in [
        "test",
        "rule",
        "rule-error",
        "scheduled-rule",
        "scheduled-rule-error",
        "policy",
        "system-error",
        "rule-resent",
    ] {
        let path = fixture(name);
        let output = run(&["validate", path.to_str().unwrap()], b"");
        assert!(
            output.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn a_file_is_re_encoded_with_panthers_escaping_and_key_order_unless_raw() {
    let app = App::start(|_| Reply::new(200, "ok"));
    let mut alert: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("rule")).unwrap()).unwrap();
    alert["title"] = "New Alert: <script>&alert(1)</script>".into();
    // Keys in reverse, as another tool might write them, with spacing.
    let object = alert.as_object().unwrap();
    let reversed: Vec<String> = object
        .iter()
        .rev()
        .map(|(key, value)| format!("{key:?} : {value}"))
        .collect();
    let written = format!("{{ {} }}", reversed.join(" , "));
    let file = std::env::temp_dir().join(format!("hookscope-wire-{}.json", std::process::id()));
    std::fs::write(&file, &written).unwrap();
    let path = file.to_str().unwrap();

    send(&app, &[path]);
    let body = String::from_utf8(app.wait_for(1).remove(0).body).unwrap();
    assert!(
        body.contains(
            r#""title":"New Alert: \u003cscript\u003e\u0026alert(1)\u003c/script\u003e""#
        ),
        "{body}"
    );
    let keys: Vec<usize> = [
        "\"id\"",
        "\"createdAt\"",
        "\"alertId\"",
        "\"alertContext\"",
        "\"version\"",
    ]
    .iter()
    .map(|key| body.find(key).unwrap())
    .collect();
    assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{body}");
    assert!(!body.contains(" : "), "re-encoded compactly");

    send(&app, &["--raw", path]);
    assert_eq!(
        app.wait_for(2).remove(1).body,
        written.as_bytes(),
        "--raw sends the bytes"
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn panthers_schedule_scaled_retries_eleven_times_within_the_scaled_limits() {
    let hookscope = Hookscope::start(&["--script", "500*11", "--format", "json"]);
    let url = hookscope.url("/");
    let output = run(
        &[
            "send",
            "--to",
            &url,
            "--test",
            "--schedule",
            "panther",
            "--time-scale",
            "0.01",
            "--seed",
            "12",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(1), "every attempt failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAILED after 11 attempts"), "{stdout}");
    assert!(
        stdout.contains("request failed: 500 Internal Server Error: Internal Server Error"),
        "Panther's message: {stdout}"
    );
    let stopped = hookscope.stop();
    // The README's own compressed example is not flagged as a sender that retries
    // too soon: the gaps are stated, not judged.
    assert!(
        stopped.stderr.contains("retry gaps ")
            && !stopped.stderr.contains("than Panther ever retries"),
        "{}",
        stopped.stderr
    );
    let lines = stopped.json_lines();
    assert_eq!(lines.len(), 11);
    let gaps: Vec<f64> = lines[1..]
        .iter()
        .map(|line| line["attempt"]["gap_ms"].as_f64().unwrap() / 1000.0)
        .collect();
    // Whole seconds from 30 to 299, scaled by 0.01 (plus the time the request itself took).
    assert!(gaps.iter().all(|gap| (0.3..3.1).contains(gap)), "{gaps:?}");
    let total: f64 = gaps.iter().sum();
    assert!(total < 18.0, "within the 30-minute limit, scaled: {total}");
}

#[test]
fn bad_send_flags_are_refused() {
    let refused = |args: &[&str], expected: &str| {
        let mut argv = vec!["send", "--to", "http://127.0.0.1:9/"];
        argv.extend_from_slice(args);
        let output = run(&argv, b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };
    refused(&["--example", "nope"], "rule, rule-error, scheduled-rule");
    refused(&["--test", "--time-scale", "0"], "--time-scale");
    refused(&["--test", "--time-scale=-1"], "--time-scale");
    refused(&["--test", "--time-scale", "NaN"], "--time-scale");
    refused(&["--test", "--raw"], "--raw");
    refused(&["--test", "--created-at", "yesterday"], "--created-at");
}
