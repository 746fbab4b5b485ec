//! What a new user trips over in the first ten minutes (issue 19): each test runs
//! the real binary the way the README tells a user to.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Hookscope, client, get_json, payload, run};
use serde_json::Value;

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookscope-first-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_receiver_url_without_a_scheme_is_a_usage_error_at_once() {
    let started = Instant::now();
    let output = run(&["send", "--to", "localhost:18599", "--test"], b"");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(started.elapsed() < Duration::from_secs(5), "it was retried");
    let message = stderr(&output);
    assert!(
        message.contains("--to") && message.contains("http://"),
        "{message}"
    );
    let output = run(&["replay", "x.jsonl", "--to", "localhost:8081"], b"");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

#[test]
fn send_reports_each_attempt_as_it_ends_and_the_wait_before_the_next() {
    let sink = Hookscope::start(&["--script", "503*2,200", "--format", "quiet"]);
    let output = run(
        &["send", "--to", &sink.url, "--test", "--backoff", "10ms"],
        b"",
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines: Vec<String> = stderr(&output).lines().map(str::to_owned).collect();
    let live: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("hookscope: attempt"))
        .collect();
    assert_eq!(live.len(), 5, "{lines:#?}");
    assert!(live[0].contains("attempt  1") && live[0].contains(" 503 "));
    assert!(live[1].contains("attempt 2 of 11 in"), "{}", live[1]);
    assert!(live[4].contains("attempt  3") && live[4].contains(" 200 "));
}

#[test]
fn send_colours_each_attempt_and_lists_it_once_on_a_terminal() {
    let sink = Hookscope::start(&["--script", "503,200", "--format", "quiet"]);
    let send = ["send", "--to", &sink.url, "--test", "--backoff", "10ms"];
    let mut coloured = send.to_vec();
    coloured.extend(["--color", "always"]);
    let output = run(&coloured, b"");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let message = stderr(&output);
    let line = |number: &str| {
        message
            .lines()
            .find(|line| line.contains(&format!("attempt  {number}")))
            .unwrap_or_else(|| panic!("no attempt {number}: {message}"))
            .to_owned()
    };
    assert!(line("1").contains("\u{1b}[1;31m503"), "{:?}", line("1"));
    assert!(line("2").contains("\u{1b}[32m200"), "{:?}", line("2"));
    let status = String::from_utf8_lossy(&output.stdout);
    assert!(
        status.contains("\u{1b}[32mdelivered after 2 attempts"),
        "{status:?}"
    );

    // On a terminal (stdout and stderr the same screen, as `script` gives), each
    // attempt is listed once: live as it ends, not again in the delivery status.
    let command = format!(
        "{} {} --color never",
        env!("CARGO_BIN_EXE_hookscope"),
        send.join(" ")
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (util-linux) runs");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(screen.matches("attempt  1").count(), 1, "{screen}");
    assert_eq!(screen.matches("attempt  2").count(), 1, "{screen}");
    assert!(
        screen.contains("delivered after 2 attempts (above)"),
        "{screen}"
    );
}

#[test]
fn send_with_nothing_to_send_on_a_terminal_says_so_instead_of_waiting() {
    let sink = Hookscope::start(&["--format", "quiet"]);
    // `script` gives the command a terminal for stdin; it would wait for typing.
    let command = format!("{} send --to {}", env!("CARGO_BIN_EXE_hookscope"), sink.url);
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    let status = common::wait_with_timeout(&mut child, Duration::from_secs(10));
    let mut screen = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut screen).unwrap();
    assert!(
        screen.contains("no alert to send: give a FILE, --test or --example TYPE"),
        "{screen}"
    );
    assert_eq!(status.code(), Some(2), "{screen}");
}

#[test]
fn an_untrusted_certificate_stops_at_once_with_the_fix_unless_asked_to_retry() {
    let root = env!("CARGO_MANIFEST_DIR");
    let cert = format!("{root}/certs/cert.pem");
    let key = format!("{root}/certs/key.pem");
    let sink = Hookscope::start(&["--tls-cert", &cert, "--tls-key", &key, "--format", "quiet"]);
    let url = sink.url.replace("127.0.0.1", "localhost");
    let send = |extra: &[&str]| {
        let mut args = vec![
            "send",
            "--to",
            &url,
            "--test",
            "--retries",
            "2",
            "--backoff",
            "0",
        ];
        args.extend_from_slice(extra);
        run(&args, b"")
    };
    let output = send(&[]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.matches("hookscope: hint:").count(), 1, "{message}");
    assert!(message.contains("--cacert") && message.contains("--insecure"));
    assert!(message.contains("--retry-all-errors"), "{message}");
    assert_eq!(
        message.matches("hookscope: attempt  ").count(),
        1,
        "retrying cannot fix a certificate: {message}"
    );
    // As Panther does: every attempt is made.
    let output = send(&["--retry-all-errors"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(
        message.matches("hookscope: attempt  ").count(),
        3,
        "{message}"
    );
}

#[test]
fn a_host_name_that_does_not_resolve_is_not_retried() {
    let output = run(
        &[
            "send",
            "--to",
            "http://no-such-host.invalid/",
            "--test",
            "--retries",
            "3",
            "--backoff",
            "0",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(
        message.matches("hookscope: attempt  ").count(),
        1,
        "{message}"
    );
    assert!(
        message.contains("cannot resolve no-such-host.invalid:80"),
        "{message}"
    );
    assert!(message.contains("check the host name in --to"), "{message}");
}

#[test]
fn an_empty_required_value_stops_listen_unless_it_is_meant() {
    let output = run(
        &[
            "listen",
            "--port",
            "0",
            "--no-admin",
            "--require-header",
            "X-Panther-Token: ",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("--require-header") && message.contains("unset variable"),
        "{message}"
    );
    let hookscope = Hookscope::start(&["--require-header", r#"X-Empty: """#, "--format", "quiet"]);
    let status = |request: reqwest::blocking::RequestBuilder| request.send().unwrap().status();
    assert_eq!(status(client().post(hookscope.url("/"))), 401);
    assert_eq!(
        status(client().post(hookscope.url("/")).header("x-empty", "")),
        200
    );
}

#[test]
fn cert_keeps_an_existing_pair_unless_forced() {
    let dir = temp_dir("cert");
    let out = dir.to_str().unwrap();
    assert_eq!(run(&["cert", "--out", out], b"").status.code(), Some(0));
    let key = std::fs::read(dir.join("key.pem")).unwrap();
    let again = run(&["cert", "--out", out], b"");
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(std::fs::read(dir.join("key.pem")).unwrap(), key);
    let forced = run(&["cert", "--out", out, "--force"], b"");
    assert_eq!(forced.status.code(), Some(0));
    assert_ne!(std::fs::read(dir.join("key.pem")).unwrap(), key);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn validate_json_prints_one_object_per_input_even_unreadable_ones() {
    let valid = common::payload_path("valid/panther-docs-ipmonitoring.json");
    let output = run(
        &[
            "validate",
            "--format",
            "json",
            valid.to_str().unwrap(),
            "/no/such/alert.json",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    let objects: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["valid"], true);
    assert_eq!(objects[1]["input"], "/no/such/alert.json");
    assert!(
        objects[1]["error"]
            .as_str()
            .is_some_and(|error| error.contains("/no/such/alert.json"))
    );
}

#[test]
fn clearing_the_history_clears_every_count() {
    let hookscope = Hookscope::start(&["--script", "500,200", "--format", "quiet"]);
    let alert = payload("valid/panther-docs-ipmonitoring.json");
    for _ in 0..2 {
        client()
            .post(hookscope.url("/"))
            .body(alert.clone())
            .send()
            .unwrap();
    }
    let (_, before) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(before["deliveries"]["delivered_after_retries"], 1);
    hookscope.store_clear();
    let (_, after) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(after["requests"], 0, "{after}");
    assert_eq!(
        after["deliveries"],
        serde_json::json!({"alerts": 0, "acked": 0, "delivered_after_retries": 0, "never_acked": 0, "duplicates_upstream": 0, "shortest_gap_us": null, "longest_gap_us": null})
    );
}

#[test]
fn each_route_numbers_attempts_of_its_own() {
    let hookscope = Hookscope::start(&[
        "--route",
        "/down=503",
        "--route",
        "/slow=200",
        "--format",
        "json",
    ]);
    let alert = payload("valid/panther-docs-ipmonitoring.json");
    for path in ["/down", "/down", "/slow"] {
        client()
            .post(hookscope.url(path))
            .body(alert.clone())
            .send()
            .unwrap();
    }
    let lines = hookscope.stop().json_lines();
    let numbers: Vec<(&str, u64)> = lines
        .iter()
        .map(|line| {
            (
                line["path"].as_str().unwrap(),
                line["attempt"]["number"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(numbers, [("/down", 1), ("/down", 2), ("/slow", 1)]);
}

#[test]
fn a_port_in_use_is_a_usage_error_that_names_it_and_the_way_out() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run(&["listen", "--port", &port, "--no-admin"], b"");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("--port 0"),
        "{message}"
    );
    let admin = format!("127.0.0.1:{port}");
    let output = run(&["listen", "--port", "0", "--admin", &admin], b"");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("inspector") && message.contains("--admin 127.0.0.1:0"),
        "{message}"
    );
}

#[test]
fn body_is_the_body_of_every_answer_made_from_a_status() {
    let answer = |args: &[&str]| {
        let hookscope = Hookscope::start(&[args, &["--format", "quiet"]].concat());
        let response = client().post(hookscope.url("/")).send().unwrap();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        (
            response.status().as_u16(),
            content_type,
            response.text().unwrap(),
        )
    };
    let text = "text/plain; charset=utf-8".to_owned();
    assert_eq!(answer(&[]), (200, text.clone(), "success".into()));
    assert_eq!(
        answer(&["--status", "503"]),
        (503, text.clone(), "Service Unavailable".into())
    );
    assert_eq!(
        answer(&["--status", "503", "--body", "x"]),
        (503, text.clone(), "x".into())
    );
    assert_eq!(
        answer(&["--script", "500", "--body", "x"]),
        (500, text.clone(), "x".into())
    );
    assert_eq!(
        answer(&["--body", r#"{"ok":true}"#]),
        (200, "application/json".into(), r#"{"ok":true}"#.into())
    );
    assert_eq!(
        answer(&[
            "--body",
            r#"{"ok":true}"#,
            "--header",
            "Content-Type: text/csv"
        ]),
        (200, "text/csv".into(), r#"{"ok":true}"#.into())
    );
}

#[test]
fn format_line_prints_one_line_per_exchange_and_pretty_links_to_the_inspector() {
    let hookscope = Hookscope::start(&[
        "--format",
        "line",
        "--color",
        "never",
        "--script",
        "500*2,200",
    ]);
    let alert = payload("valid/panther-docs-ipmonitoring.json");
    for _ in 0..3 {
        client()
            .post(hookscope.url("/alerts"))
            .body(alert.clone())
            .send()
            .unwrap();
    }
    let text = hookscope.stop().stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains("#1 POST /alerts → 500 valid attempt 1"),
        "{text}"
    );
    assert!(
        lines[2].contains("#3 POST /alerts → 200 valid attempt 3"),
        "{text}"
    );

    let hookscope = Hookscope::start(&["--format", "pretty", "--color", "never"]);
    let admin = hookscope.admin.clone().unwrap();
    client().post(hookscope.url("/")).body("{}").send().unwrap();
    let text = hookscope.stop().stdout_text();
    assert!(text.contains(&format!("↗ {admin}/#1")), "{text}");
}

#[test]
fn error_messages_speak_to_the_user_not_from_the_libraries() {
    for (flag, value, expected) in [
        ("--max-body", "5x", "expected a size such as 64KiB"),
        ("--delay", "5x", "expected a duration such as 250ms"),
    ] {
        let output = run(&["listen", flag, value], b"");
        assert_eq!(output.status.code(), Some(2));
        let message = stderr(&output);
        assert!(
            message.contains(expected) && message.contains(flag),
            "{message}"
        );
        assert!(!message.contains("Failed to parse unit"), "{message}");
    }
    let output = run(&["listen", "--route", "nopath=200"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("invalid route \"nopath=200\""),
        "{}",
        stderr(&output)
    );

    let dir = temp_dir("pairs");
    let (first, second) = (dir.join("a"), dir.join("b"));
    for out in [&first, &second] {
        assert_eq!(
            run(&["cert", "--out", out.to_str().unwrap()], b"")
                .status
                .code(),
            Some(0)
        );
    }
    let cert = first.join("cert.pem");
    let key = second.join("key.pem");
    let output = run(
        &[
            "listen",
            "--port",
            "0",
            "--no-admin",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("the key does not belong to the certificate"),
        "{message}"
    );
    assert!(!message.contains("KeyMismatch"), "{message}");
    let _ = std::fs::remove_dir_all(dir);

    let port = common::closed_port();
    let output = run(
        &[
            "send",
            "--to",
            &format!("http://127.0.0.1:{port}/"),
            "--test",
            "--retries",
            "0",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{message}"
    );
    assert!(!message.contains("client error (Connect)"), "{message}");

    let output = run(&["validate", "/no/such/alert.json"], b"");
    assert!(
        stderr(&output).starts_with("hookscope: error: cannot read /no/such/alert.json"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_alert_without_a_json_content_type_gets_a_warning() {
    let hookscope = Hookscope::start(&["--format", "json"]);
    let alert = payload("valid/panther-docs-ipmonitoring.json");
    for content_type in ["application/x-www-form-urlencoded", "application/json"] {
        client()
            .post(hookscope.url("/"))
            .header("content-type", content_type)
            .body(alert.clone())
            .send()
            .unwrap();
    }
    let lines = hookscope.stop().json_lines();
    let warnings = |line: &Value| line["verdict"]["warnings"].as_array().unwrap().clone();
    assert_eq!(
        lines[0]["verdict"]["valid"], true,
        "a warning, not a problem"
    );
    assert_eq!(warnings(&lines[0])[0]["pointer"], "header:content-type");
    assert!(warnings(&lines[1]).is_empty());
}

#[test]
fn a_body_s_final_newline_is_not_shown_as_backslash_n() {
    let sink = Hookscope::start(&["--require-header", "X-Token: s3cret", "--format", "quiet"]);
    let output = run(
        &["send", "--to", &sink.url, "--test", "--retries", "0"],
        b"",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("response body: unauthorized: missing header x-token\n"),
        "{stdout}"
    );
}

#[test]
fn on_a_terminal_send_counts_down_to_the_next_attempt() {
    // `script` gives the command a terminal, as a user's shell would.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs script (util-linux)");
        return;
    }
    let sink = Hookscope::start(&["--script", "503,200", "--format", "quiet"]);
    let command = format!(
        "{} send --to {} --test --backoff 1200ms",
        common::BIN,
        sink.url
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(
        terminal.contains("\rhookscope: attempt 2 of 11 in "),
        "{terminal:?}"
    );
    assert!(
        terminal.contains("\r\x1b[K"),
        "the countdown is cleared: {terminal:?}"
    );
}

#[test]
fn help_examples_prints_the_cookbook_and_help_says_what_each_format_does() {
    let cookbook = common::run(&["examples"], b"");
    let asked = common::run(&["help", "examples"], b"");
    assert!(asked.status.success());
    assert_eq!(asked.stdout, cookbook.stdout);
    assert!(String::from_utf8_lossy(&asked.stdout).contains("hookscope --require-header"));

    let help =
        String::from_utf8_lossy(&common::run(&["listen", "--help"], b"").stdout).into_owned();
    assert!(!help.contains("[`"), "rustdoc link text in --help: {help}");
    for said in [
        "readable block",
        "for jq and scripts",
        "One short line",
        "Nothing per exchange",
    ] {
        assert!(help.contains(said), "--help does not say {said:?}");
    }
}

#[test]
fn a_reader_that_goes_away_ends_a_printing_command_without_a_panic() {
    for args in [&["examples"][..], &["schema"][..]] {
        let mut child = std::process::Command::new(common::BIN)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
