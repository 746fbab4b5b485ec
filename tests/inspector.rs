//! The capture store, admin API, live events, record file and replay.

mod common;

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Hookscope, alert, client, get_json, get_text, post_json};
use serde_json::{Value, json};

fn send_json(method: reqwest::Method, url: &str, body: &str) -> (u16, Value) {
    let response = client()
        .request(method, url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(&response.bytes().unwrap()).unwrap(),
    )
}

#[test]
fn the_history_api_lists_filters_shows_and_clears() {
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    post_json(&hookscope.url("/alerts"), &alert("one")).unwrap();
    post_json(&hookscope.url("/alerts"), r#"{"id": 5}"#).unwrap();
    client()
        .get(hookscope.url("/health?deep=1"))
        .send()
        .unwrap();

    let (status, list) = get_json(&hookscope.api("/api/requests"));
    assert_eq!(status, 200);
    let ids: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [3, 2, 1], "newest first");

    let ids_of = |query: &str| -> Vec<u64> {
        let (_, list) = get_json(&hookscope.api(&format!("/api/requests?{query}")));
        list.as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids_of("limit=1"), [3]);
    assert_eq!(ids_of("since=1"), [3, 2]);
    assert_eq!(ids_of("path=/alerts"), [2, 1]);
    assert_eq!(ids_of("verdict=valid"), [1]);
    assert_eq!(ids_of("verdict=invalid"), [2]);
    assert_eq!(ids_of("verdict=none"), [3]);

    let (status, one) = get_json(&hookscope.api("/api/requests/1"));
    assert_eq!(status, 200);
    assert_eq!(one["body"]["alertId"], "one");
    // A compact body is kept byte for byte as `body` (no `raw_body` needed).
    assert!(one.get("raw_body").is_none());
    let text = get_text(&hookscope.api("/api/requests/1"));
    assert!(
        text.contains(&format!("\"body\":{}", alert("one"))),
        "{text}"
    );
    assert_eq!(one["verdict"]["valid"], true);
    assert_eq!(one["attempt"]["number"], 1);
    assert_eq!(one["status"], 200);
    assert!(one["took_ms"].is_f64());
    let (_, third) = get_json(&hookscope.api("/api/requests/3"));
    assert_eq!(third["query"], "deep=1");

    let (status, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(status, 200);
    assert_eq!(stats["requests"], 3);
    assert_eq!(stats["by_status"]["200"], 3);
    assert_eq!(
        stats["by_verdict"],
        json!({"valid": 1, "invalid": 1, "none": 1})
    );
    assert_eq!(stats["by_path"]["/alerts"], 2);
    // `{"id": 5}` has no string id, so it counts as a body, not an alert.
    assert_eq!(stats["deliveries"]["alerts"], 1);
    assert_eq!(stats["dropped_from_store"], 0);

    let response = client()
        .delete(hookscope.api("/api/requests"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, list) = get_json(&hookscope.api("/api/requests"));
    assert_eq!(list, json!([]));
}

#[test]
fn bad_api_input_gets_a_4xx_with_a_json_error() {
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    post_json(&hookscope.url("/"), "{}").unwrap();
    for (method, path, body, content_type, expected) in [
        ("GET", "/api/requests/999", "", "", 404),
        ("GET", "/api/requests/abc", "", "", 400),
        ("GET", "/api/requests?limit=lots", "", "", 400),
        ("GET", "/api/requests?verdict=maybe", "", "", 400),
        ("GET", "/api/nothing-here", "", "", 404),
        ("POST", "/api/stats", "", "", 405),
        ("PUT", "/api/config", "{not json", "application/json", 400),
        (
            "PUT",
            "/api/config",
            r#"{"script": "503*x"}"#,
            "application/json",
            422,
        ),
        (
            "PUT",
            "/api/config",
            r#"{"status": 1000}"#,
            "application/json",
            422,
        ),
        (
            "PUT",
            "/api/config",
            r#"{"colour": "red"}"#,
            "application/json",
            400,
        ),
        (
            "PUT",
            "/api/config",
            r#"{"status": 503}"#,
            "text/plain",
            415,
        ),
        (
            "POST",
            "/api/requests/1/replay",
            r#"{"to": "ftp://x"}"#,
            "application/json",
            400,
        ),
        (
            "POST",
            "/api/requests/1/replay",
            r#"{"destination": 1}"#,
            "application/json",
            400,
        ),
        (
            "POST",
            "/api/requests/77/replay",
            r#"{"to": "http://127.0.0.1:1"}"#,
            "application/json",
            404,
        ),
    ] {
        let mut request = client()
            .request(method.parse().unwrap(), hookscope.api(path))
            .body(body);
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let response = request.send().unwrap();
        assert_eq!(
            response.status().as_u16(),
            expected,
            "{method} {path} {body}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        let error: Value = serde_json::from_slice(&response.bytes().unwrap()).unwrap();
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {path}: {error}"
        );
    }
    // A replay to a closed port is the target's failure: 502, with the reason.
    let (status, error) = send_json(
        reqwest::Method::POST,
        &hookscope.api("/api/requests/1/replay"),
        &json!({ "to": format!("http://127.0.0.1:{}", common::closed_port()) }).to_string(),
    );
    assert_eq!(status, 502);
    assert!(
        error["error"].as_str().unwrap().contains("127.0.0.1:"),
        "{error}"
    );
    // A browser page from another site (DNS rebinding) is refused.
    let response = client()
        .get(hookscope.api("/api/requests"))
        .header("host", "evil.example:9081")
        .send()
        .unwrap();
    assert_eq!(response.status(), 403);
    // And the server still serves.
    assert_eq!(get_json(&hookscope.api("/api/stats")).0, 200);
}

#[test]
fn events_arrive_within_100ms_of_the_exchange() {
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    let response = reqwest::blocking::Client::new()
        .get(hookscope.api("/api/events"))
        .send()
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (events, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(response).lines() {
            let Ok(line) = line else { break };
            if let Some(data) = line.strip_prefix("data: ") {
                event = data.to_owned();
            } else if line.is_empty()
                && !event.is_empty()
                && events
                    .send((Instant::now(), std::mem::take(&mut event)))
                    .is_err()
            {
                break;
            }
        }
    });
    // The first line (a comment) tells us the stream is open before we send.
    std::thread::sleep(Duration::from_millis(200));
    for n in 0..3 {
        let body = alert(&format!("live-{n}"));
        post_json(&hookscope.url("/live"), &body).unwrap();
        let answered = Instant::now();
        let (arrived, data) = received
            .recv_timeout(Duration::from_secs(5))
            .expect("an event");
        let lag = arrived.saturating_duration_since(answered);
        assert!(
            lag < Duration::from_millis(100),
            "event {lag:?} after the answer"
        );
        let exchange: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(exchange["path"], "/live");
        assert_eq!(exchange["body"]["alertId"], format!("live-{n}"));
    }
}

#[test]
fn config_changes_take_effect_on_the_next_request() {
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    assert_eq!(post_json(&hookscope.url("/"), "{}").unwrap().status(), 200);

    let (status, config) = send_json(
        reqwest::Method::PUT,
        &hookscope.api("/api/config"),
        r#"{"status": 503, "body": "down for tests", "headers": ["Retry-After: 1"]}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(config["status"], 503);
    let response = post_json(&hookscope.url("/"), "{}").unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.text().unwrap(), "down for tests");

    send_json(
        reqwest::Method::PUT,
        &hookscope.api("/api/config"),
        r#"{"script": "500,201", "strict": true}"#,
    );
    let (_, config) = get_json(&hookscope.api("/api/config"));
    assert_eq!(config["script"], "500,201");
    assert_eq!(config["strict"], true);
    assert_eq!(
        post_json(&hookscope.url("/"), "not an alert")
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post_json(&hookscope.url("/"), &alert("cfg"))
            .unwrap()
            .status(),
        500
    );
    assert_eq!(
        post_json(&hookscope.url("/"), &alert("cfg"))
            .unwrap()
            .status(),
        201
    );
    // A status set while the script decides every answer would change nothing: it
    // is refused, saying so, and the script stays.
    let (status, refused) = send_json(
        reqwest::Method::PUT,
        &hookscope.api("/api/config"),
        r#"{"status": 404}"#,
    );
    assert_eq!(status, 422);
    let reason = refused["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the script (500,201) decides every answer")
            && reason.contains("\"script\": null"),
        "{reason}"
    );
    let (_, config) = get_json(&hookscope.api("/api/config"));
    assert_eq!(
        (config["status"].as_u64(), config["script"].as_str()),
        (Some(503), Some("500,201"))
    );

    send_json(
        reqwest::Method::PUT,
        &hookscope.api("/api/config"),
        r#"{"script": null, "strict": false, "status": 200}"#,
    );
    assert_eq!(
        post_json(&hookscope.url("/"), "whatever").unwrap().status(),
        200
    );
}

#[test]
fn replay_sends_a_captured_request_to_a_second_hookscope() {
    let first = Hookscope::start(&["--format", "quiet"]);
    let second = Hookscope::start(&["--format", "quiet", "--status", "202", "--body", "second"]);
    client()
        .post(first.url("/alerts?from=panther"))
        .header("content-type", "application/json")
        .header("x-panther-signature", "sig")
        .body(alert("replayed"))
        .send()
        .unwrap();
    let (status, replayed) = send_json(
        reqwest::Method::POST,
        &first.api("/api/requests/1/replay"),
        &json!({"to": second.url}).to_string(),
    );
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["status"], 202);
    assert_eq!(replayed["body"], "second");
    assert_eq!(
        replayed["url"],
        format!("{}/alerts?from=panther", second.url)
    );

    let (_, received) = get_json(&second.api("/api/requests/1"));
    assert_eq!(received["method"], "POST");
    assert_eq!(received["path"], "/alerts");
    assert_eq!(received["query"], "from=panther");
    let text = get_text(&second.api("/api/requests/1"));
    assert!(
        text.contains(&format!("\"body\":{}}}", alert("replayed"))),
        "the exact bytes: {text}"
    );
    assert_eq!(received["headers"]["x-panther-signature"], "sig");
    assert_eq!(
        received["headers"]["host"],
        second.url.trim_start_matches("http://")
    );
}

#[test]
fn the_store_keeps_its_bound_and_counts_what_it_dropped() {
    let hookscope = Hookscope::start(&["--keep", "10", "--format", "quiet"]);
    for n in 0..50 {
        post_json(&hookscope.url("/"), &alert(&n.to_string())).unwrap();
    }
    let (_, list) = get_json(&hookscope.api("/api/requests?limit=1000"));
    let ids: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (41..=50).rev().collect::<Vec<_>>());
    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(stats["kept"], 10);
    assert_eq!(stats["dropped_from_store"], 40);
    assert_eq!(stats["requests"], 50);
}

#[test]
fn big_bodies_are_pushed_out_of_the_history_by_its_byte_budget() {
    let hookscope = Hookscope::start(&["--keep-bytes", "100KiB", "--format", "quiet"]);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(40_000));
    for _ in 0..8 {
        assert_eq!(post_json(&hookscope.url("/"), &big).unwrap().status(), 200);
    }
    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(stats["requests"], 8);
    assert_eq!(stats["kept"], 2, "{stats}");
    assert_eq!(stats["dropped_from_store"], 6);
    let kept_bytes = stats["kept_bytes"].as_u64().unwrap();
    assert!((80_000..=100 * 1024).contains(&kept_bytes), "{kept_bytes}");
    let (_, list) = get_json(&hookscope.api("/api/requests?limit=1000"));
    let ids: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [8, 7]);
}

#[test]
fn the_inspector_page_is_served_self_contained_on_the_admin_port_only() {
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    let page = client().get(hookscope.api("/")).send().unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let html = page.text().unwrap();
    assert!(html.contains("EventSource('/api/events')"));
    for external in ["src=\"http", "href=\"http", "url(http", "import "] {
        assert!(
            !html.contains(external),
            "no external resources: {external}"
        );
    }
    // The webhook port knows nothing of the API: it captures the request like any other.
    let response = client().get(hookscope.url("/api/stats")).send().unwrap();
    assert_eq!(response.text().unwrap(), "success");
}

#[test]
fn a_public_admin_address_is_refused_without_admin_public() {
    let output = common::run(&["listen", "--port", "0", "--admin", "0.0.0.0:0"], b"");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--admin-public"), "{stderr}");
    let hookscope = Hookscope::start(&[
        "--admin",
        "0.0.0.0:0",
        "--admin-public",
        "--format",
        "quiet",
    ]);
    let warning = hookscope.stop().stderr;
    assert!(
        warning.contains("WARNING: the admin API is exposed"),
        "{warning}"
    );
}

fn temp_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hookscope-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// `hookscope replay RECORD --to URL [FLAGS...]`.
fn replay(record: &std::path::Path, to: &str, flags: &[&str]) -> std::process::Output {
    let command = ["replay", record.to_str().unwrap(), "--to", to];
    common::run(&[&command[..], flags].concat(), b"")
}

/// `hookscope replay RECORD --to URL --filter FILTER`.
fn replay_filtered(record: &std::path::Path, to: &str, filter: &str) -> std::process::Output {
    replay(record, to, &["--filter", filter])
}

#[test]
fn record_then_replay_from_the_file() {
    let record = temp_file("replay.jsonl");
    let hookscope = Hookscope::start(&["--record", record.to_str().unwrap(), "--format", "quiet"]);
    post_json(&hookscope.url("/a"), &alert("first")).unwrap();
    post_json(&hookscope.url("/b"), "not json \u{1b}[31m").unwrap();
    client()
        .put(hookscope.url("/c"))
        .body(vec![0xffu8, 0x00, 0x9b])
        .send()
        .unwrap();
    hookscope.stop();
    let text = std::fs::read_to_string(&record).unwrap();
    assert_eq!(text.lines().count(), 3);
    // An unfinished last line, as a crash mid-write could leave.
    std::fs::write(&record, format!("{text}{{\"id\":4,\"meth")).unwrap();

    let target = Hookscope::start(&["--format", "quiet"]);
    let output = replay(&record, &target.url, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Every complete line was sent; the unfinished one was not, and the exit code
    // says so (issue 16: a replay that skipped lines exits non-zero).
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("1 line(s) could not be read"), "{stderr}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.contains("#1 POST /a → 200"), "{stdout}");
    assert!(stderr.contains(":4: not a complete JSON line"), "{stderr}");
    let (_, received) = get_json(&target.api("/api/requests"));
    let bodies: Vec<(String, String)> = received
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|x| {
            (
                x["path"].as_str().unwrap().to_owned(),
                x["body_encoding"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        bodies,
        [
            ("/a".into(), "json".into()),
            ("/b".into(), "text".into()),
            ("/c".into(), "base64".into())
        ]
    );
    assert_eq!(received[2]["body"]["alertId"], "first");
    assert_eq!(received[0]["body"], "/wCb");

    let output = replay_filtered(&record, &target.url, "path=/b");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
    let closed = format!("http://127.0.0.1:{}", common::closed_port());
    let output = replay_filtered(&record, &closed, "id=1");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("no answer"));
    let output = common::run(&["replay", "/no/such/record", "--to", &target.url], b"");
    assert_eq!(output.status.code(), Some(2));
    let output = replay_filtered(&record, &target.url, "colour=red");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn every_acknowledged_request_survives_sigkill_mid_load() {
    let record = temp_file("kill9.jsonl");
    let hookscope = Hookscope::start(&[
        "--record",
        record.to_str().unwrap(),
        "--format",
        "quiet",
        "--no-admin",
    ]);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let (url, acked, stop) = (
                hookscope.url("/load"),
                Arc::clone(&acked),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                for n in 0..5000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = format!("s{sender}-{n}");
                    match client.post(&url).body(alert(&id)).send() {
                        Ok(response) if response.status() == 200 => acked.lock().unwrap().push(id),
                        _ => break,
                    }
                }
            })
        })
        .collect();
    // Let load build up, then kill without warning.
    let started = Instant::now();
    while acked.lock().unwrap().len() < 500 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    unsafe { libc::kill(hookscope.pid() as libc::pid_t, libc::SIGKILL) };
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 500, "only {} acknowledged", acked.len());

    let text = std::fs::read_to_string(&record).unwrap();
    let mut lines: Vec<&str> = text.split('\n').collect();
    let unfinished = lines.pop().unwrap();
    let recorded: std::collections::HashSet<String> = lines
        .iter()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("every finished line parses");
            value["body"]["alertId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(unfinished.is_empty() || serde_json::from_str::<Value>(unfinished).is_err());
    let missing: Vec<&String> = acked.iter().filter(|id| !recorded.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged but not recorded, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn requests_the_http_parser_refuses_are_captured_recorded_and_not_replayed() {
    let record = temp_file("refused.jsonl");
    let hookscope = Hookscope::start(&[
        "--record",
        record.to_str().unwrap(),
        "--format",
        "json",
        "--max-header-size",
        "8KiB",
    ]);
    let port = hookscope.port;
    let answers: Vec<String> = [
        b"\x16\x03\x01 not http at all\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nBad Header: x\r\n\r\n".to_vec(),
        format!("POST / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "y".repeat(10_000)).into_bytes(),
    ]
    .iter()
    .map(|bytes| {
        String::from_utf8_lossy(&common::send_raw_and_close(port, bytes).unwrap()).into_owned()
    })
    .collect();
    assert!(answers[0].starts_with("HTTP/1.1 400"), "{answers:?}");
    assert!(answers[1].starts_with("HTTP/1.1 400"), "{answers:?}");
    assert!(answers[2].starts_with("HTTP/1.1 431"), "{answers:?}");
    // A connection that opens and closes without a byte is nothing to capture.
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    assert_eq!(
        post_json(&hookscope.url("/ok"), &alert("after"))
            .unwrap()
            .status(),
        200
    );

    let stats = common::stats_when(&hookscope, |stats| stats["requests"] == 4);
    assert_eq!(stats["requests"], 4, "{stats}");
    assert_eq!(stats["by_status"]["400"], 2);
    assert_eq!(stats["by_status"]["431"], 1);
    let (status, refusal) = send_json(
        reqwest::Method::POST,
        &hookscope.api("/api/requests/1/replay"),
        &json!({"to": hookscope.url("/")}).to_string(),
    );
    assert_eq!(status, 409);
    assert!(
        refusal["error"]
            .as_str()
            .unwrap()
            .contains("nothing to replay")
    );

    let stopped = hookscope.stop();
    let lines = stopped.json_lines();
    assert_eq!(lines.len(), 4);
    // A refusal is published when its connection ends, which can be after the client
    // has its answer and has sent the next request: the order is not fixed.
    let (refused, served): (Vec<_>, Vec<_>) = lines.iter().partition(|line| line["method"] == "-");
    assert_eq!((refused.len(), served.len()), (3, 1), "{lines:?}");
    for line in &refused {
        assert_eq!(line["path"], "");
        let why = line["rejected"].as_str().unwrap();
        assert!(
            why.starts_with("the request head could not be read: "),
            "{why}"
        );
    }
    assert!(
        refused.iter().any(|line| line["rejected"]
            == "the request head could not be read: message head is too large"),
        "{refused:?}"
    );
    assert_eq!(served[0]["path"], "/ok");
    let text = std::fs::read_to_string(&record).unwrap();
    assert_eq!(text.lines().count(), 4);

    let target = Hookscope::start(&["--format", "quiet"]);
    let output = replay(&record, &target.url, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Refused heads are skipped with a reason: there was nothing to send, and no
    // line that could not be read, so the replay succeeds.
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stderr
            .contains(":1: the request head could not be read when it arrived: nothing to replay"),
        "{stderr}"
    );
}

#[test]
fn a_masked_secret_is_given_again_to_replay() {
    let record = temp_file("secret.jsonl");
    let secret = ["--require-header", "X-Token: s3cret"];
    let source = Hookscope::start(
        &[
            &secret[..],
            &["--record", record.to_str().unwrap(), "--format", "quiet"],
        ]
        .concat(),
    );
    let answer = client()
        .post(source.url("/hook"))
        .header("x-token", "s3cret")
        .body(alert("secret"))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(!std::fs::read_to_string(&record).unwrap().contains("s3cret"));

    let target = Hookscope::start(&[&secret[..], &["--format", "quiet"]].concat());
    // Without the secret, the mask is not sent as if it were the value: the request
    // is not sent at all, and the user is told how to give it.
    let output = replay(&record, &target.url, &[]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("#1 POST /hook → not sent: x-token was masked when it was captured")
            && said.contains("--header 'x-token: VALUE'"),
        "{said}"
    );
    let (_, stats) = get_json(&target.api("/api/stats"));
    assert_eq!(stats["requests"], 0, "nothing reached the target");
    let output = replay(&record, &target.url, &["--header", "X-Token: s3cret"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("#1 POST /hook → 200"));

    // The inspector's replay of the captured exchange: refused with the reason, 422.
    let answer = client()
        .post(source.api("/api/requests/1/replay"))
        .json(&serde_json::json!({"to": target.url}))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 422);
    assert!(answer.text().unwrap().contains("x-token was masked"));
}

/// The page shows only network text, and sets it only as text: no API that parses a
/// string as markup appears in it (the XSS guarantee a reviewer can check by grep,
/// and one reason the page is plain code rather than templates).
#[test]
fn the_served_page_never_parses_text_as_markup() {
    let hookscope = Hookscope::start(&[]);
    let page = get_text(&hookscope.api("/"));
    assert!(page.contains("<title>hookscope inspector</title>"));
    for markup in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "createContextualFragment",
        "DOMParser",
    ] {
        assert!(!page.contains(markup), "the inspector page uses {markup}");
    }
}
