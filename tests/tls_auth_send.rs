//! HTTPS, --require-header, `hookscope cert` and `hookscope send`.

mod common;

use common::{Hookscope, payload_path, run};

fn repo_file(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn tls_args() -> [String; 4] {
    [
        "--tls-cert".into(),
        repo_file("certs/cert.pem"),
        "--tls-key".into(),
        repo_file("certs/key.pem"),
    ]
}

fn start_tls(extra: &[&str]) -> Hookscope {
    let tls = tls_args();
    let mut args: Vec<&str> = tls.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    Hookscope::start(&args)
}

fn trusting_client(http1_only: bool) -> reqwest::blocking::Client {
    let pem = std::fs::read(repo_file("certs/cert.pem")).unwrap();
    let mut builder = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

#[test]
fn https_with_the_repo_certs_over_http1_and_http2() {
    let hookscope = start_tls(&["--format", "json"]);
    assert!(
        hookscope.url.starts_with("https://127.0.0.1:"),
        "{}",
        hookscope.url
    );
    let url = hookscope.url.replace("127.0.0.1", "localhost");
    for (http1_only, expected) in [
        (true, reqwest::Version::HTTP_11),
        (false, reqwest::Version::HTTP_2),
    ] {
        let response = trusting_client(http1_only)
            .post(&url)
            .body(std::fs::read(payload_path("valid/test-alert.json")).unwrap())
            .send()
            .unwrap();
        assert_eq!(response.version(), expected);
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().unwrap(), "success");
    }
    // A client that does not trust the certificate cannot talk to it.
    let error = reqwest::blocking::Client::new()
        .get(&url)
        .send()
        .unwrap_err();
    assert!(error.is_connect() || error.is_request(), "{error:?}");
    let lines = hookscope.stop().json_lines();
    let versions: Vec<&str> = lines
        .iter()
        .map(|l| l["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["HTTP/1.1", "HTTP/2.0"]);
    assert!(lines.iter().all(|l| l["verdict"]["valid"] == true));
    // HTTP/2's `:authority` is shown as `host`, like HTTP/1.1's header.
    let host = url.trim_start_matches("https://");
    assert!(
        lines.iter().all(|l| l["headers"]["host"] == host),
        "{lines:?}"
    );
}

#[test]
fn unusable_certificates_are_refused_at_start_naming_the_file() {
    let cert = repo_file("certs/cert.pem");
    let key = repo_file("certs/key.pem");
    for (cert_arg, key_arg, expected) in [
        (
            "/no/such/cert.pem",
            key.as_str(),
            "cannot read TLS certificate /no/such/cert.pem",
        ),
        (
            cert.as_str(),
            "/no/such/key.pem",
            "cannot read TLS key /no/such/key.pem",
        ),
        (key.as_str(), key.as_str(), "no usable certificate in"),
        (cert.as_str(), cert.as_str(), "no usable private key in"),
    ] {
        let output = run(
            &[
                "listen",
                "--port",
                "0",
                "--no-admin",
                "--tls-cert",
                cert_arg,
                "--tls-key",
                key_arg,
            ],
            b"",
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
    }
    let output = run(&["listen", "--tls-cert", &cert], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tls-key"));
}

#[test]
fn a_mismatched_key_is_refused() {
    let dir = std::env::temp_dir().join(format!("hookscope-cert-{}", std::process::id()));
    let output = run(
        &[
            "cert",
            "--out",
            dir.to_str().unwrap(),
            "--name",
            "hooks.test",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("curl --cacert") && stdout.contains("hooks.test"),
        "{stdout}"
    );
    let other_key = dir.join("key.pem");
    let output = run(
        &[
            "listen",
            "--port",
            "0",
            "--no-admin",
            "--tls-cert",
            &repo_file("certs/cert.pem"),
            "--tls-key",
            other_key.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used together"));
}

#[test]
fn required_headers_refuse_with_401_and_the_secret_is_never_shown() {
    const SECRET: &str = "pr1vate-T0KEN-value";
    let record =
        std::env::temp_dir().join(format!("hookscope-secret-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&record);
    let hookscope = Hookscope::start(&[
        "--require-header",
        &format!("X-Panther-Token: {SECRET}"),
        "--format",
        "json",
        "--record",
        record.to_str().unwrap(),
        "--strict",
    ]);
    let client = common::client();
    let alert = std::fs::read(payload_path("valid/test-alert.json")).unwrap();
    let missing = client
        .post(hookscope.url("/"))
        .body(alert.clone())
        .send()
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.text().unwrap(),
        "unauthorized: missing header x-panther-token\n"
    );
    let wrong = client
        .post(hookscope.url("/"))
        .header("x-panther-token", "pr1vate-T0KEN-valuX")
        .body("not even json")
        .send()
        .unwrap();
    assert_eq!(
        wrong.status(),
        401,
        "a wrong secret never reaches --strict validation"
    );
    let right = client
        .post(hookscope.url("/"))
        .header("x-panther-token", SECRET)
        .body(alert)
        .send()
        .unwrap();
    assert_eq!(right.status(), 200);
    let (_, api) = (
        0,
        client
            .get(hookscope.api("/api/requests"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
    );
    let stopped = hookscope.stop();

    let lines = stopped.json_lines();
    assert_eq!(
        lines[0]["rejected"],
        "unauthorized: missing header x-panther-token"
    );
    assert!(lines[0]["verdict"].is_null() && lines[0]["attempt"].is_null());
    assert_eq!(
        lines[1]["headers"]["x-panther-token"],
        "<masked: 19 bytes, does not match>"
    );
    assert_eq!(
        lines[2]["headers"]["x-panther-token"],
        "<masked: 19 bytes, matches>"
    );
    assert_eq!(lines[2]["verdict"]["valid"], true);
    let record_text = std::fs::read_to_string(&record).unwrap();
    for (place, text) in [
        ("stdout", stopped.stdout_text()),
        ("stderr", stopped.stderr.clone()),
        ("record", record_text),
        ("api", api),
    ] {
        assert!(!text.contains(SECRET), "the secret leaked into {place}");
        assert!(
            !text.contains("pr1vate"),
            "part of a secret leaked into {place}"
        );
    }
}

fn send(args: &[&str], stdin: &[u8]) -> (Option<i32>, String, String) {
    let output = run(&[&["send"], args].concat(), stdin);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn send_retries_until_acknowledged_and_reports_every_attempt() {
    let hookscope = Hookscope::start(&["--script", "500*3,200", "--format", "json"]);
    let file = payload_path("valid/panther-docs-ipmonitoring.json");
    let (code, stdout, _) = send(
        &[
            "--to",
            &hookscope.url("/hook"),
            "--backoff",
            "0",
            file.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("delivered after 4 attempts"), "{stdout}");
    for (attempt, status) in [(1, 500), (2, 500), (3, 500), (4, 200)] {
        assert!(
            stdout.contains(&format!("attempt  {attempt}"))
                && stdout.contains(&format!("  {status}  ")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("response body: success"), "{stdout}");
    let lines = hookscope.stop().json_lines();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["headers"]["content-type"], "application/json");
    assert_eq!(lines[0]["headers"]["accept"], "application/json");
    assert_eq!(lines[3]["attempt"]["number"], 4);
}

#[test]
fn send_gives_up_after_its_retries() {
    let hookscope = Hookscope::start(&["--script", "500", "--format", "quiet"]);
    let (code, stdout, _) = send(
        &[
            "--to",
            &hookscope.url("/"),
            "--retries",
            "2",
            "--backoff",
            "0",
            "--test",
            "--json",
        ],
        b"",
    );
    assert_eq!(code, Some(1), "{stdout}");
    let status: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(status["delivered"], false);
    assert_eq!(status["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(status["attempts"][2]["status"], 500);
    assert_eq!(status["response_body"], "Internal Server Error");
}

#[test]
fn send_to_a_closed_port_reports_connection_errors() {
    let url = format!("http://127.0.0.1:{}/", common::closed_port());
    let (code, stdout, _) = send(
        &["--to", &url, "--retries", "1", "--backoff", "0", "--test"],
        b"",
    );
    assert_eq!(code, Some(1));
    assert!(stdout.contains("FAILED after 2 attempts"), "{stdout}");
    assert_eq!(stdout.matches("  error: ").count(), 2, "{stdout}");
    assert!(stdout.contains("Connection refused"), "{stdout}");
}

#[test]
fn send_test_arrives_as_a_valid_test_alert_over_https() {
    let hookscope = start_tls(&["--format", "json"]);
    let url = hookscope.url.replace("127.0.0.1", "localhost");
    let (code, stdout, stderr) = send(
        &[
            "--to",
            &url,
            "--test",
            "--cacert",
            &repo_file("certs/cert.pem"),
            "--header",
            "X-Source: tests",
        ],
        b"",
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let line = hookscope.stop().json_lines().remove(0);
    assert_eq!(line["verdict"]["valid"], true);
    assert_eq!(line["body"]["id"], "Test.Alert");
    assert_eq!(line["body"]["alertId"], "Test.Alert");
    assert_eq!(line["body"]["name"], "Test Alert");
    assert_eq!(line["body"]["severity"], "INFO");
    assert_eq!(line["body"]["type"], "RULE");
    // As Panther's generateTestAlert and generateNotificationFromAlert build it.
    assert_eq!(line["body"]["description"], "This is a Test Alert");
    assert_eq!(line["body"]["title"], "New Alert: This is a Test Alert");
    assert_eq!(line["body"]["tags"], serde_json::json!(["test"]));
    assert_eq!(line["body"]["version"], "abcdefg");
    assert_eq!(line["body"]["alertContext"], serde_json::json!({}));
    assert_eq!(line["headers"]["user-agent"], "Go-http-client/1.1");
    assert_eq!(line["headers"]["x-source"], "tests");
}

#[test]
fn send_verifies_https_unless_told_not_to() {
    let hookscope = start_tls(&["--format", "quiet"]);
    let url = hookscope.url.replace("127.0.0.1", "localhost");
    let (code, stdout, _) = send(&["--to", &url, "--test", "--retries", "0"], b"");
    assert_eq!(code, Some(1), "an unknown CA is refused: {stdout}");
    assert!(stdout.contains("error: "), "{stdout}");
    let (code, _, stderr) = send(&["--to", &url, "--test", "--insecure"], b"");
    assert_eq!(code, Some(0));
    assert!(stderr.contains("--insecure"), "{stderr}");
    let (code, _, stderr) = send(
        &["--to", &url, "--test", "--cacert", "/no/such/ca.pem"],
        b"",
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("/no/such/ca.pem"), "{stderr}");
}

#[test]
fn send_refuses_invalid_alerts_unless_asked() {
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    let invalid = std::fs::read(payload_path("invalid/bad-severity.json")).unwrap();
    let (code, _, stderr) = send(&["--to", &hookscope.url("/"), "-"], &invalid);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("not a valid Panther alert") && stderr.contains("/severity"),
        "{stderr}"
    );
    let (code, _, _) = send(
        &["--to", &hookscope.url("/"), "--no-validate", "-"],
        &invalid,
    );
    assert_eq!(code, Some(0));
    let (code, _, stderr) = send(&["--to", &hookscope.url("/"), "/no/such/alert.json"], b"");
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("cannot read /no/such/alert.json"),
        "{stderr}"
    );
    let (code, _, stderr) = send(&["--to", "not a url", "--test"], b"");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--to"), "{stderr}");
}

#[test]
fn failed_tls_handshakes_are_counted_and_said_without_flooding_stderr() {
    let mut hookscope = start_tls(&["--format", "quiet"]);
    let url = hookscope.url.replace("127.0.0.1", "localhost");
    let port = url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    // A client that does not trust the certificate (its line awaited: each failure is
    // its connection's own task, and a later one may be said first), then plain HTTP
    // to the https port, and a burst of the first.
    assert!(reqwest::blocking::Client::new().get(&url).send().is_err());
    let line = hookscope
        .wait_for_stderr("TLS handshake from 127.0.0.1:")
        .expect("a line about the failed handshake");
    assert!(
        line.contains("the client does not trust this certificate"),
        "{line}"
    );
    let plain = common::send_raw(port.parse().unwrap(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!String::from_utf8_lossy(&plain.unwrap_or_default()).contains("200"));
    for _ in 0..20 {
        assert!(reqwest::blocking::Client::new().get(&url).send().is_err());
    }
    let stats = common::stats_when(&hookscope, |stats| {
        stats["tls_handshake_failures"].as_u64() == Some(22)
    });
    assert_eq!(stats["tls_handshake_failures"], 22);
    assert_eq!(stats["requests"], 0, "no exchange is captured for them");
    let stopped = hookscope.stop();
    assert!(
        stopped.stderr.matches("TLS handshake from").count() <= 2,
        "at most one line every 10 s: {}",
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains("TLS handshakes failed: 22"),
        "{}",
        stopped.stderr
    );
}
