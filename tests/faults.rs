//! Fault injection and delivery tracking, seen from a sender's side.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Hookscope, alert_with, client, payload, post_json};

/// An alert with its own alertId, as Panther would send it.
#[test]
fn a_retrying_sender_sees_the_script_in_order_for_each_interleaved_alert() {
    let hookscope = Hookscope::start(&["--script", "503*3,200", "--format", "json"]);
    let alerts = [
        alert_with(&[("alertId", "alert-a"), ("title", "A")]),
        alert_with(&[("alertId", "alert-b"), ("title", "B")]),
    ];
    let mut seen: [Vec<u16>; 2] = [Vec::new(), Vec::new()];
    // Deliver both alerts in turns, each retried until acknowledged (like Panther).
    for _round in 0..10 {
        for (index, body) in alerts.iter().enumerate() {
            if seen[index].last() != Some(&200) {
                seen[index].push(
                    post_json(&hookscope.url("/"), body)
                        .unwrap()
                        .status()
                        .as_u16(),
                );
            }
        }
    }
    assert_eq!(seen[0], [503, 503, 503, 200]);
    assert_eq!(seen[1], [503, 503, 503, 200]);

    let stopped = hookscope.stop();
    let lines = stopped.json_lines();
    let attempts = |key: &str| -> Vec<(u64, bool)> {
        lines
            .iter()
            .filter(|l| l["attempt"]["key"] == key)
            .map(|l| {
                (
                    l["attempt"]["number"].as_u64().unwrap(),
                    l["attempt"]["gap_ms"].is_f64(),
                )
            })
            .collect()
    };
    assert_eq!(
        attempts("alert-a"),
        [(1, false), (2, true), (3, true), (4, true)]
    );
    assert_eq!(
        attempts("alert-b"),
        [(1, false), (2, true), (3, true), (4, true)]
    );
    assert_eq!(lines[0]["attempt"]["key_source"], "alertId");
    assert!(
        stopped
            .stderr
            .contains("alerts: 2, delivered after retries: 2, never acked: 0"),
        "{}",
        stopped.stderr
    );
}

/// Sends a raw request and reports how the connection ended.
fn raw_outcome(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    .unwrap();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(0) => "closed without an answer".into(),
        Ok(_) => String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        Err(error) if error.kind() == ErrorKind::ConnectionReset => "reset".into(),
        Err(error) => format!("error {error}"),
    }
}

#[test]
fn drop_and_reset_surface_as_connection_errors() {
    let hookscope = Hookscope::start(&["--script", "drop,reset,200", "--script-scope", "global"]);
    assert_eq!(raw_outcome(hookscope.port, "/"), "closed without an answer");
    assert_eq!(raw_outcome(hookscope.port, "/"), "reset");
    assert_eq!(raw_outcome(hookscope.port, "/"), "HTTP/1.1 200 OK");

    // An HTTP client sees an error, never a status.
    let hookscope = Hookscope::start(&["--script", "drop,reset,200", "--script-scope", "global"]);
    for _ in 0..2 {
        let error = post_json(&hookscope.url("/"), "{}").unwrap_err();
        assert!(error.status().is_none() && error.is_request(), "{error:?}");
    }
    assert_eq!(post_json(&hookscope.url("/"), "{}").unwrap().status(), 200);
}

#[test]
fn hang_times_the_client_out_while_others_are_served() {
    let hookscope = Hookscope::start(&["--route", "/stuck=hang", "--format", "json"]);
    let url = hookscope.url("/stuck");
    let hung = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(700))
            .build()
            .unwrap();
        client.post(url).body("{}").send()
    });
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(
            post_json(&hookscope.url("/fine"), "{}").unwrap().status(),
            200
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let error = hung.join().unwrap().unwrap_err();
    assert!(error.is_timeout(), "{error:?}");

    // A hung request still there at shutdown does not hold the shutdown up.
    let url = hookscope.url("/stuck");
    std::thread::spawn(move || client().post(url).body("{}").send());
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let stopped = hookscope.stop();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let outcomes: Vec<_> = stopped
        .json_lines()
        .iter()
        .map(|l| l["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "hung").count(),
        2,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "200").count(),
        5,
        "{outcomes:?}"
    );
}

#[test]
fn routes_pick_the_script_by_longest_prefix() {
    let hookscope = Hookscope::start(&[
        "--script",
        "418",
        "--route",
        "/ok=200",
        "--route",
        "/flaky=500*2,200",
        "--route",
        "/flaky/down=503",
        "--format",
        "quiet",
    ]);
    let status = |path: &str| {
        post_json(
            &hookscope.url(path),
            &alert_with(&[("alertId", "same"), ("title", "t")]),
        )
        .unwrap()
        .status()
        .as_u16()
    };
    assert_eq!(status("/ok"), 200);
    assert_eq!(status("/ok/nested"), 200);
    assert_eq!(status("/flaky/down"), 503);
    assert_eq!(status("/elsewhere"), 418);
    assert_eq!(status("/okay"), 418);
    // /flaky has its own sequence per alert: a fresh alert sees 500, 500, 200.
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            post_json(
                &hookscope.url("/flaky"),
                &alert_with(&[("alertId", "flaky-one"), ("title", "t")]),
            )
            .unwrap()
            .status()
            .as_u16()
        })
        .collect();
    assert_eq!(statuses, [500, 500, 200]);
}

fn statuses_with_seed(seed: &str) -> Vec<u16> {
    let hookscope = Hookscope::start(&[
        "--fail-rate",
        "0.3",
        "--fail-status",
        "502",
        "--seed",
        seed,
        "--format",
        "quiet",
    ]);
    (0..60)
        .map(|_| {
            post_json(&hookscope.url("/"), "{}")
                .unwrap()
                .status()
                .as_u16()
        })
        .collect()
}

#[test]
fn fail_rate_with_a_seed_is_reproducible_across_runs() {
    let first = statuses_with_seed("42");
    assert_eq!(first, statuses_with_seed("42"));
    assert_ne!(first, statuses_with_seed("43"));
    let failures = first.iter().filter(|&&s| s == 502).count();
    assert!(
        (5..=35).contains(&failures),
        "{failures} of 60 failed: {first:?}"
    );
    assert!(first.iter().all(|&s| s == 200 || s == 502));
}

#[test]
fn strict_refuses_invalid_alerts_with_pointers_and_scripts_the_rest() {
    let hookscope = Hookscope::start(&["--strict", "--script", "201", "--format", "quiet"]);
    let response = post_json(
        &hookscope.url("/"),
        &String::from_utf8(payload("invalid/tag-not-string.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().unwrap()).unwrap();
    assert_eq!(body["problems"][0]["pointer"], "/tags/1");
    assert_eq!(body["problems"][0]["expected"], "a string");
    assert_eq!(body["problems"][0]["found"], "number 2");
    let response = post_json(&hookscope.url("/"), "not json").unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        post_json(
            &hookscope.url("/"),
            &alert_with(&[("alertId", "ok"), ("title", "t")])
        )
        .unwrap()
        .status(),
        201
    );
    // Not a POST: no verdict, so --strict does not apply.
    assert_eq!(
        client().get(hookscope.url("/")).send().unwrap().status(),
        201
    );
}

#[test]
fn re_sent_alerts_start_a_new_count_and_the_summary_counts_deliveries() {
    let hookscope = Hookscope::start(&["--script", "500*2,200", "--format", "json"]);
    let original = alert_with(&[
        ("alertId", "b90c19e66e160e194a5b3b94ec27fb7c"),
        ("title", "New Alert: x"),
    ]);
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            post_json(&hookscope.url("/"), &original)
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(statuses, [500, 500, 200]);
    let resent = alert_with(&[
        ("alertId", "b90c19e66e160e194a5b3b94ec27fb7c"),
        ("title", "[Re-sent]: New Alert: x"),
    ]);
    assert_eq!(
        post_json(&hookscope.url("/"), &resent).unwrap().status(),
        500
    );
    let stopped = hookscope.stop();
    let last = stopped.json_lines().pop().unwrap();
    assert_eq!(last["attempt"]["number"], 1);
    assert_eq!(last["attempt"]["resent"], true);
    assert!(
        stopped
            .stderr
            .contains("alerts: 2, delivered after retries: 1, never acked: 1"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn pretty_output_numbers_attempts() {
    let hookscope = Hookscope::start(&[
        "--script", "500,200", "--format", "pretty", "--color", "never",
    ]);
    let body = alert_with(&[
        ("alertId", "b90c19e66e160e194a5b3b94ec27fb7c"),
        ("title", "t"),
    ]);
    post_json(&hookscope.url("/"), &body).unwrap();
    post_json(&hookscope.url("/"), &body).unwrap();
    let stdout = hookscope.stop().stdout_text();
    // Ids are shown up to 32 characters (issue 19): a Panther alertId whole.
    assert!(
        stdout.contains("attempt 1 of alert b90c19e66e160e194a5b3b94ec27fb7c\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("attempt 2 of alert b90c19e66e160e194a5b3b94ec27fb7c, "),
        "{stdout}"
    );
    assert!(stdout.contains(" s after attempt 1"), "{stdout}");
}

#[test]
fn bad_scripts_are_refused_at_start_with_the_position() {
    let output = common::run(&["listen", "--script", "503*3,20x"], b"");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--script") && stderr.contains("at position 7"),
        "{stderr}"
    );
    let output = common::run(&["listen", "--route", "/x=200,hng"], b"");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--route") && stderr.contains("at position 8"),
        "{stderr}"
    );
    let output = common::run(&["listen", "--fail-rate", "2"], b"");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_summary_and_api_stats_are_one_source_after_a_faulted_run() {
    let hookscope = Hookscope::start(&[
        "--script",
        "503,drop,200",
        "--route",
        "/flaky=429",
        "--format",
        "quiet",
    ]);
    for n in 0..6 {
        let body = alert_with(&[("alertId", &format!("alert-{n}")), ("title", "A")]);
        for _ in 0..4 {
            let _ = post_json(&hookscope.url("/"), &body);
        }
    }
    let _ = post_json(
        &hookscope.url("/flaky"),
        &alert_with(&[("alertId", "limited"), ("title", "L")]),
    );
    let _ = post_json(&hookscope.url("/"), "{not an alert");
    let (status, api) = common::get_json(&hookscope.api("/api/stats"));
    assert_eq!(status, 200);
    let stats: hookscope::Stats = serde_json::from_value(api.clone()).unwrap();
    let stopped = hookscope.stop();
    let printed = stopped
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("hookscope: summary: "))
        .unwrap_or_else(|| panic!("no summary in {}", stopped.stderr));
    // The run had every kind of outcome, so equal lines mean equal counts.
    assert!(stats.by_status.contains_key("503"), "{api}");
    assert!(stats.by_status.contains_key("dropped"), "{api}");
    assert!(stats.by_status.contains_key("429"), "{api}");
    assert!(stats.deliveries.delivered_after_retries > 0, "{api}");
    assert_eq!(stats.requests, 26, "{api}");
    assert_eq!(printed, hookscope::output::summary_line(&stats));
}

#[test]
fn answers_are_built_from_the_request_and_say_which_attempt_was_acknowledged() {
    let hookscope = Hookscope::start(&[
        "--script",
        "503,200",
        "--body",
        r#"{"received":"{{ body.alertId }}","attempt":{{ attempt }},"path":"{{ path }}"}"#,
        "--header",
        "X-Attempt: {{ attempt }}",
        "--format",
        "json",
    ]);
    let body = alert_with(&[("alertId", "templated-1"), ("title", "T")]);
    let first = post_json(&hookscope.url("/alerts"), &body).unwrap();
    assert_eq!(first.status(), 503);
    assert_eq!(first.headers()["x-attempt"], "1");
    assert_eq!(
        first.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"received": "templated-1", "attempt": 1, "path": "/alerts"})
    );
    let second = post_json(&hookscope.url("/alerts"), &body).unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["content-type"], "application/json");
    let answer: serde_json::Value = second.json().unwrap();
    assert_eq!(
        answer["attempt"], 2,
        "Panther keeps this: the second attempt was acknowledged"
    );
    // A value holding template syntax and quotes is data: the answer stays one JSON object.
    let hostile = alert_with(&[
        ("alertId", "{{ 7 * 7 }}\", \"injected\": \"yes"),
        ("title", "H"),
    ]);
    let answer: serde_json::Value = post_json(&hookscope.url("/alerts"), &hostile)
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(answer["received"], "{{ 7 * 7 }}\", \"injected\": \"yes");
    assert!(answer.get("injected").is_none());
    let lines = hookscope.stop().json_lines();
    assert_eq!(
        lines[1]["response_body"],
        r#"{"received":"templated-1","attempt":2,"path":"/alerts"}"#
    );
}

#[test]
fn a_template_that_does_not_parse_stops_start_up_pointing_inside_it() {
    let output = common::run(&["listen", "--no-admin", "--body", "ok {{ body. }}"], b"");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid template in --body \"ok {{ body. }}\" at position"),
        "{stderr}"
    );
}
