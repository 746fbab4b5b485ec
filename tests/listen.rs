//! `hookscope listen`, driven as a user would: the real binary, a real HTTP client.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Hookscope, assert_terminal_safe, client, payload};

#[test]
fn acknowledges_like_panthers_example_by_default() {
    let hookscope = Hookscope::start(&["--format", "json"]);
    let response = client()
        .post(hookscope.url("/"))
        .header("content-type", "application/json")
        .body(payload("valid/panther-docs-ipmonitoring.json"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), "success");
    let stopped = hookscope.stop();
    let lines = stopped.json_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["verdict"]["valid"], true);
    assert_eq!(lines[0]["status"], 200);
}

#[test]
fn every_answer_flag_shapes_the_answer() {
    let hookscope = Hookscope::start(&[
        "--status",
        "503",
        "--body",
        "try later",
        "--header",
        "Retry-After: 5",
        "--header",
        "X-Hookscope-Test: yes",
        "--delay",
        "300ms",
        "--format",
        "quiet",
    ]);
    let started = Instant::now();
    let response = client()
        .post(hookscope.url("/hook"))
        .body("{}")
        .send()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(response.headers()["x-hookscope-test"], "yes");
    assert_eq!(response.text().unwrap(), "try later");
    assert!(
        took >= Duration::from_millis(300),
        "answered after {took:?}"
    );
    // Any method, any path is captured and answered the same way.
    let response = client()
        .delete(hookscope.url("/any/where?x=1"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 503);
}

#[test]
fn bad_flags_are_refused_at_start_with_exit_2_naming_the_flag() {
    for (args, flag) in [
        (&["--status", "99"][..], "--status"),
        (&["--status", "600"], "--status"),
        (&["--status", "ok"], "--status"),
        (&["--header", "NoColon"], "--header"),
        (&["--header", "Bad Name: x"], "--header"),
        (&["--delay", "fast"], "--delay"),
        (&["--delay", "2"], "--delay"),
        (&["--max-body", "lots"], "--max-body"),
        (&["--keep-bytes", "much"], "--keep-bytes"),
        (&["--format", "xml"], "--format"),
        (&["--color", "sometimes"], "--color"),
        (&["--port", "70000"], "--port"),
        (&["--bind", "localhost:1"], "--bind"),
        (&["--no-such-flag"], "--no-such-flag"),
    ] {
        let output = common::run(&[&["listen"], args].concat(), b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag),
            "{args:?} should name {flag}: {stderr}"
        );
    }
}

#[test]
fn a_port_in_use_is_a_clear_failure() {
    let hookscope = Hookscope::start(&[]);
    let port = hookscope.port.to_string();
    let output = common::run(&["listen", "--port", &port], b"");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Like every start-up failure, a usage error (issue 19): the user picks another port.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn bodies_over_max_body_get_413_and_the_server_keeps_serving() {
    let hookscope = Hookscope::start(&["--max-body", "1KiB", "--format", "json"]);
    let client = client();

    // Declared length over the limit.
    let response = client
        .post(hookscope.url("/big"))
        .body(vec![b'x'; 4096])
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
    let reason = response.text().unwrap();
    assert_eq!(reason.lines().count(), 1);
    assert!(
        reason.contains("too large") && reason.contains("1024"),
        "{reason}"
    );

    // No declared length (chunked): refused once the limit is crossed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..8).map(|_| Ok(vec![b'y'; 512])).collect();
    let body = reqwest::blocking::Body::new(ChunkedReader::new(chunks));
    let response = client
        .post(hookscope.url("/chunked"))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);

    // Exactly at the limit is fine, and the server still answers.
    let response = client
        .post(hookscope.url("/ok"))
        .body(vec![b' '; 1024])
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);

    let lines = hookscope.stop().json_lines();
    let states: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                l["path"].clone(),
                l["status"].clone(),
                l["body_state"].clone(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("/big".into(), 413.into(), "too_large".into()),
            ("/chunked".into(), 413.into(), "too_large".into()),
            ("/ok".into(), 200.into(), "complete".into()),
        ]
    );
    assert_eq!(lines[0]["body_size"], 4096);
}

/// A reader that hands out chunks one by one, so reqwest sends no Content-Length.
struct ChunkedReader {
    chunks: std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>,
    current: std::io::Cursor<Vec<u8>>,
}

impl ChunkedReader {
    fn new(chunks: Vec<Result<Vec<u8>, std::io::Error>>) -> Self {
        ChunkedReader {
            chunks: chunks.into_iter(),
            current: std::io::Cursor::new(Vec::new()),
        }
    }
}

impl Read for ChunkedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match self.chunks.next() {
                Some(chunk) => self.current = std::io::Cursor::new(chunk?),
                None => return Ok(0),
            }
        }
    }
}

#[test]
fn json_lines_carry_request_verdict_and_answer() {
    let hookscope = Hookscope::start(&["--format", "json"]);
    let client = client();
    client
        .post(hookscope.url("/alerts?source=panther"))
        .header("content-type", "application/json")
        .header("x-panther-token", "abc")
        .body(payload("valid/panther-docs-ipmonitoring.json"))
        .send()
        .unwrap();
    client
        .post(hookscope.url("/alerts"))
        .body(payload("invalid/tag-not-string.json"))
        .send()
        .unwrap();
    client.get(hookscope.url("/health")).send().unwrap();
    let lines = hookscope.stop().json_lines();
    assert_eq!(lines.len(), 3);

    let valid = &lines[0];
    assert_eq!(valid["method"], "POST");
    assert_eq!(valid["path"], "/alerts");
    assert_eq!(valid["query"], "source=panther");
    assert_eq!(valid["headers"]["x-panther-token"], "abc");
    assert_eq!(valid["body_encoding"], "json");
    assert_eq!(valid["body"]["id"], "AllLogs.IPMonitoring");
    assert_eq!(valid["verdict"]["valid"], true);
    assert_eq!(valid["status"], 200);
    assert_eq!(valid["response_body"], "success");
    assert!(valid["received_at"].as_str().unwrap().ends_with('Z'));
    assert!(valid["answered_at"].as_str().unwrap() >= valid["received_at"].as_str().unwrap());
    assert!(valid["peer"].as_str().unwrap().starts_with("127.0.0.1:"));

    let invalid = &lines[1];
    assert_eq!(invalid["verdict"]["valid"], false);
    assert_eq!(invalid["verdict"]["problems"][0]["pointer"], "/tags/1");
    assert_eq!(invalid["verdict"]["problems"][0]["expected"], "a string");
    assert_eq!(invalid["verdict"]["problems"][0]["found"], "number 2");
    // The verdict never changes the answer (that is --strict's job).
    assert_eq!(invalid["status"], 200);

    assert_eq!(lines[2]["method"], "GET");
    assert!(lines[2]["verdict"].is_null());
}

#[test]
fn garbage_empty_and_non_json_bodies_get_an_answer_and_a_clear_problem() {
    let hookscope = Hookscope::start(&["--format", "json"]);
    let client = client();
    let bodies: [&[u8]; 5] = [
        b"",
        b"hello, not json",
        b"{\"id\": \"cut",
        b"[1,2,3]",
        &[0xff, 0xfe, 0x00, 0x9b, 0x1b],
    ];
    for body in bodies {
        let response = client
            .post(hookscope.url("/"))
            .body(body.to_vec())
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().unwrap(), "success");
    }
    let lines = hookscope.stop().json_lines();
    let found: Vec<String> = lines
        .iter()
        .map(|line| {
            assert_eq!(line["verdict"]["problems"][0]["pointer"], "");
            line["verdict"]["problems"][0]["found"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(found[0], "an empty body");
    assert!(
        found[1].starts_with("text that is not JSON at byte 0"),
        "{}",
        found[1]
    );
    assert!(
        found[2].starts_with("JSON cut short at byte 11"),
        "{}",
        found[2]
    );
    assert_eq!(found[3], "a JSON array");
    assert_eq!(found[4], "bytes that are not UTF-8 at byte 0");
    assert_eq!(lines[1]["body_encoding"], "text");
    assert_eq!(lines[3]["body_encoding"], "json");
    assert_eq!(lines[4]["body_encoding"], "base64");
    assert_eq!(lines[4]["body"], "//4Amxs=");
}

/// Sends one raw HTTP/1.1 request and returns the raw answer.
fn raw_request(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn hostile_exchanges(port: u16) {
    // ESC in a header value (hyper refuses control characters in headers with 400).
    let answer = raw_request(
        port,
        b"GET /esc HTTP/1.1\r\nHost: x\r\nX-Evil: \x1b[2J\x1b]0;pwned\x07\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    // C1 CSI and a bidi override as UTF-8 in a header value (legal obs-text bytes).
    let answer = raw_request(
        port,
        "GET /c1 HTTP/1.1\r\nHost: x\r\nX-Evil: a\u{9b}31mred \u{202e}txt\r\nConnection: close\r\n\r\n".as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Escape sequences in a non-JSON body and inside a JSON string.
    let client = client();
    let osc8 = "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ \x1b[31mred\x7f\u{85}";
    client
        .post(format!("http://127.0.0.1:{port}/text"))
        .body(osc8)
        .send()
        .unwrap();
    let json = serde_json::json!({"title": osc8, "k\u{1b}[1m": "\u{2066}x\u{2069}"}).to_string();
    client
        .post(format!("http://127.0.0.1:{port}/json"))
        .body(json)
        .send()
        .unwrap();
}

#[test]
fn control_characters_never_reach_stdout_raw_in_pretty_output() {
    let hookscope = Hookscope::start(&["--format", "pretty", "--color", "never"]);
    hostile_exchanges(hookscope.port);
    let stopped = hookscope.stop();
    let stdout = stopped.stdout_text();
    assert_terminal_safe(&stdout);
    assert!(
        stdout.contains("x-evil: a\\x9b31mred \\u{202e}txt"),
        "{stdout}"
    );
    assert!(stdout.contains("\\x1b]8;;http://evil.example"), "{stdout}");
    assert!(stdout.contains("\\u001b[31mred"), "{stdout}");
}

#[test]
fn control_characters_never_reach_stdout_raw_in_json_output() {
    let hookscope = Hookscope::start(&["--format", "json"]);
    hostile_exchanges(hookscope.port);
    let stopped = hookscope.stop();
    assert_terminal_safe(&stopped.stdout_text());
    // Escaped, not lost: the lines decode back to exactly what was sent.
    let lines = stopped.json_lines();
    let c1 = lines.iter().find(|l| l["path"] == "/c1").unwrap();
    assert_eq!(c1["headers"]["x-evil"], "a\u{9b}31mred \u{202e}txt");
    let text = lines.iter().find(|l| l["path"] == "/text").unwrap();
    assert!(
        text["body"]
            .as_str()
            .unwrap()
            .starts_with("\x1b]8;;http://evil.example")
    );
}

#[test]
fn colour_is_on_only_when_asked_or_on_a_terminal() {
    let hookscope = Hookscope::start(&["--format", "pretty", "--color", "always"]);
    client()
        .post(hookscope.url("/"))
        .body(payload("valid/test-alert.json"))
        .send()
        .unwrap();
    let coloured = hookscope.stop().stdout_text();
    assert!(
        coloured.contains("\x1b["),
        "expected ANSI colour: {coloured}"
    );
    // Piped stdout with auto colour: no escapes at all.
    let hookscope = Hookscope::start(&["--format", "pretty"]);
    client()
        .post(hookscope.url("/"))
        .body(payload("valid/test-alert.json"))
        .send()
        .unwrap();
    let plain = hookscope.stop().stdout_text();
    assert!(!plain.contains('\x1b'), "{plain}");
    assert!(plain.contains("✔ valid Panther alert"), "{plain}");
    assert!(plain.contains("\"id\": \"Test.Alert\""), "{plain}");
}

#[test]
fn sigterm_finishes_in_flight_requests_then_prints_the_summary() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--delay", "500ms"]);
    let url = hookscope.url("/slow");
    let in_flight =
        std::thread::spawn(move || client().post(url).body("{}").send().map(|r| r.status()));
    std::thread::sleep(Duration::from_millis(150));
    let stopped = hookscope.stop();
    assert_eq!(in_flight.join().unwrap().unwrap(), 200);
    assert!(stopped.status.success(), "{:?}", stopped.status);
    let summary = stopped
        .stderr
        .lines()
        .find(|l| l.contains("summary:"))
        .unwrap_or_default();
    assert_eq!(
        summary,
        "hookscope: summary: requests: 1, valid: 0, invalid: 1, by status: 200×1; \
         alerts: 0, delivered after retries: 0, never acked: 0"
    );
}

#[test]
fn bare_hookscope_means_listen() {
    let mut child = std::process::Command::new(common::BIN)
        .args(["--port", "0", "--format", "quiet", "--no-admin"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("hookscope: listening on http://127.0.0.1:"),
        "{line}"
    );
}
