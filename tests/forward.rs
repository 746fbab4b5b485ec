//! Forward mode: hookscope in front of a developer's own receiver (a real HTTP
//! server in the test, and Panther's Node example), with faults in front of it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::app::{App, Reply};
use common::{Hookscope, alert, client, closed_port, get_json, post_json, run};

fn status_of(url: &str, body: &str) -> u16 {
    post_json(url, body).unwrap().status().as_u16()
}

fn ok_app() -> App {
    App::start(|_| Reply::new(200, "app says ok"))
}

#[test]
fn a_post_to_the_root_goes_to_the_forward_url_itself_not_below_it() {
    // As in the README: Panther posts to the tunnel's root, the app listens on a path.
    let app = ok_app();
    let hookscope = Hookscope::start(&[
        "--forward",
        &format!("{}/webhooks/panther", app.url()),
        "--format",
        "quiet",
    ]);
    for (sent, expected) in [
        ("/", "/webhooks/panther"),
        ("/?source=panther", "/webhooks/panther?source=panther"),
        ("/x", "/webhooks/panther/x"),
    ] {
        assert_eq!(status_of(&hookscope.url(sent), &alert("root")), 200);
        let seen = app.seen();
        assert_eq!(seen.last().unwrap().target, expected, "{sent}");
    }
}

#[test]
fn the_terminal_names_where_a_request_went_and_what_the_app_said() {
    let app = App::start(|_| Reply::new(404, r#"{"detail":"Not Found"}"#));
    let forward_url = format!("{}/webhooks/panther", app.url());
    for format in ["pretty", "line"] {
        let hookscope = Hookscope::start(&["--forward", &forward_url, "--format", format]);
        assert_eq!(status_of(&hookscope.url("/"), &alert("where")), 404);
        let shown = hookscope.stop().stdout_text();
        assert!(
            shown.contains(&format!("→ {forward_url} 404 Not Found")),
            "{format}: {shown}"
        );
        if format == "pretty" {
            assert!(
                shown.contains(r#"404 Not Found in "#)
                    && shown.contains(r#": {"detail":"Not Found"}"#),
                "the app's reason: {shown}"
            );
        }
    }
}

#[test]
fn the_app_gets_each_request_as_sent_and_the_sender_gets_the_apps_answer() {
    let app = App::start(|_| {
        Reply::new(202, "taken")
            .header("x-app", "yes")
            .header("content-type", "text/plain")
    });
    let hookscope = Hookscope::start(&[
        "--forward",
        &format!("{}/base/", app.url()),
        "--format",
        "json",
    ]);
    let body = alert("exact-1");
    let answer = client()
        .post(hookscope.url("/hook?x=1&y=%20z"))
        .header("content-type", "application/json")
        .header("x-custom", "first")
        .header("x-custom", "second")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-panther-token", "s3cret")
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(answer.status(), 202);
    assert_eq!(answer.headers()["x-app"], "yes");
    assert_eq!(answer.text().unwrap(), "taken");

    let seen = app.wait_for(1).remove(0);
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/base/hook?x=1&y=%20z");
    assert_eq!(seen.body, body.as_bytes(), "the body byte for byte");
    assert_eq!(seen.all("x-custom"), ["first", "second"]);
    assert_eq!(seen.header("x-panther-token"), Some("s3cret"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    let own = hookscope.url("").trim_start_matches("http://").to_owned();
    assert_eq!(seen.header("x-forwarded-host"), Some(own.as_str()));
    assert_eq!(seen.header("host"), Some(&*app.addr.to_string()));

    // A chunked body goes on whole, with its length, and without the chunking.
    let port = hookscope
        .url("")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .unwrap();
    let mut reply = String::new();
    raw.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 202"), "{reply}");
    let chunked = app.wait_for(2).remove(1);
    assert_eq!(chunked.body, b"hello world");
    assert_eq!(chunked.header("content-length"), Some("11"));
    assert_eq!(chunked.header("transfer-encoding"), None);
    assert_eq!(chunked.header("connection"), None);

    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(stats["upstream"]["forwarded"], 2);
    assert_eq!(stats["upstream"]["by_status"]["202"], 2);
    let lines = hookscope.stop().json_lines();
    let first = &lines[0];
    assert_eq!(first["claimed_origin"], "203.0.113.9");
    assert_eq!(first["status"], 202);
    assert_eq!(first["upstream"]["status"], 202);
    assert_eq!(
        first["upstream"]["url"],
        format!("{}/base/hook?x=1&y=%20z", app.url())
    );
    assert_eq!(first["upstream"]["body"], "taken");
    assert_eq!(first["upstream"]["headers"]["x-app"], "yes");
    assert!(first["upstream"]["first_byte_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(first["verdict"]["valid"], true, "validated as always");
}

#[test]
fn faults_decide_first_and_the_app_gets_one_request_per_alert() {
    let app = ok_app();
    let hookscope = Hookscope::start(&[
        "--forward",
        &app.url(),
        "--script",
        "503*2,forward",
        "--format",
        "quiet",
    ]);
    let alerts = [alert("a"), alert("b")];
    let mut statuses = Vec::new();
    for _attempt in 0..3 {
        for body in &alerts {
            statuses.push(status_of(&hookscope.url("/"), body));
        }
    }
    assert_eq!(statuses, [503, 503, 503, 503, 200, 200]);
    let seen = app.wait_for(2);
    let ids: Vec<String> = seen
        .iter()
        .map(|s| {
            serde_json::from_slice::<serde_json::Value>(&s.body).unwrap()["alertId"].to_string()
        })
        .collect();
    assert_eq!(ids, ["\"a\"", "\"b\""]);
    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(stats["upstream"]["forwarded"], 2);
    assert_eq!(stats["deliveries"]["delivered_after_retries"], 2);
    assert_eq!(stats["deliveries"]["duplicates_upstream"], 0);
    assert_eq!(app.seen().len(), 2, "the app never saw the 503s");
    let ports: std::collections::BTreeSet<u16> = seen.iter().map(|s| s.peer_port).collect();
    assert_eq!(
        ports.len(),
        1,
        "one connection to the app, reused: {ports:?}"
    );
}

#[test]
fn unauthenticated_and_invalid_requests_never_reach_the_app() {
    let app = ok_app();
    let hookscope = Hookscope::start(&[
        "--forward",
        &app.url(),
        "--require-header",
        "X-Token: s3cret",
        "--strict",
        "--format",
        "quiet",
    ]);
    assert_eq!(status_of(&hookscope.url("/"), &alert("no-token")), 401);
    let invalid = client()
        .post(hookscope.url("/"))
        .header("x-token", "s3cret")
        .body(r#"{"alertId": "half an alert"}"#)
        .send()
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let good = client()
        .post(hookscope.url("/"))
        .header("x-token", "s3cret")
        .body(alert("with-token"))
        .send()
        .unwrap();
    assert_eq!(good.status(), 200);
    let seen = app.wait_for(1);
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("x-token"),
        Some("s3cret"),
        "the app gets the header it may check, unmasked"
    );
    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(stats["upstream"]["forwarded"], 1);
}

#[test]
fn a_lost_acknowledgement_delivers_the_alert_twice_and_says_so() {
    let app = ok_app();
    let hookscope = Hookscope::start(&[
        "--forward",
        &app.url(),
        "--script",
        "forward>503,forward",
        "--route",
        "/dropped=forward>drop,forward",
        "--format",
        "json",
    ]);
    let body = alert("lost-ack");
    assert_eq!(status_of(&hookscope.url("/"), &body), 503);
    assert_eq!(status_of(&hookscope.url("/"), &body), 200);
    assert_eq!(app.wait_for(2).len(), 2, "the app got the alert twice");

    let other = alert("dropped-ack");
    assert!(
        post_json(&hookscope.url("/dropped"), &other).is_err(),
        "the connection closed with no answer"
    );
    assert_eq!(status_of(&hookscope.url("/dropped"), &other), 200);
    assert_eq!(app.wait_for(4).len(), 4);

    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(stats["deliveries"]["duplicates_upstream"], 2);
    assert_eq!(stats["upstream"]["by_status"]["200"], 4);
    let stopped = hookscope.stop();
    assert!(
        stopped
            .stderr
            .contains("forwarded: 4, upstream: 200×4, duplicates delivered upstream: 2"),
        "{}",
        stopped.stderr
    );
    let lines = stopped.json_lines();
    assert_eq!(lines[0]["status"], 503);
    assert_eq!(lines[0]["upstream"]["status"], 200);
    assert_eq!(lines[0]["attempt"]["duplicate_upstream"], false);
    assert_eq!(lines[1]["attempt"]["duplicate_upstream"], true);
    assert_eq!(lines[2]["outcome"], "dropped");
}

#[test]
fn a_lost_acknowledgement_is_shown_in_a_colour_readable_on_black() {
    let app = ok_app();
    let hookscope = Hookscope::start(&[
        "--forward",
        &app.url(),
        "--script",
        "forward>503,forward",
        "--format",
        "pretty",
        "--color",
        "always",
    ]);
    assert_eq!(status_of(&hookscope.url("/"), &alert("colour")), 503);
    let shown = hookscope.stop().stdout_text();
    let line = shown
        .lines()
        .find(|line| line.contains("a lost acknowledgement"))
        .unwrap_or_else(|| panic!("no lost-acknowledgement line: {shown}"));
    // Yellow, bold (SGR 1 and 33), never the dark blue (SGR 34) that black hides.
    assert!(line.contains("\u{1b}[1;33m"), "{line:?}");
    assert!(!shown.contains("\u{1b}[34m"), "{shown:?}");
}

#[test]
fn an_upstream_that_is_down_gets_502_with_the_reason_then_recovers() {
    let port = closed_port();
    let mut hookscope = Hookscope::start(&[
        "--forward",
        &format!("http://127.0.0.1:{port}/app"),
        "--format",
        "quiet",
    ]);
    let warning = hookscope
        .stderr_line("is not reachable yet")
        .expect("a warning at start-up");
    assert!(
        warning.contains("hookscope: warning: --forward"),
        "{warning}"
    );

    let answer = post_json(&hookscope.url("/hook"), &alert("down")).unwrap();
    assert_eq!(answer.status(), 502);
    let reason = answer.text().unwrap();
    assert!(
        reason.contains(&format!("cannot connect to 127.0.0.1:{port}"))
            && reason.contains("refused")
            && reason.ends_with('\n')
            && reason.lines().count() == 1,
        "{reason:?}"
    );

    let app = App::start_on(port, |_| Reply::new(200, "back"));
    let answer = post_json(&hookscope.url("/hook"), &alert("down")).unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().unwrap(), "back");
    assert_eq!(app.wait_for(1)[0].target, "/app/hook");
    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(stats["upstream"]["errors"], 1);
    assert_eq!(stats["upstream"]["by_status"]["error"], 1);
    assert_eq!(stats["by_status"]["502"], 1);
    assert_eq!(stats["deliveries"]["delivered_after_retries"], 1);
}

#[test]
fn an_upstream_that_hangs_up_gets_502_saying_what_happened() {
    // An app that reads the request and closes the connection without answering.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // (hookscope's start-up check that the app is up is one of its connections.)
    std::thread::spawn(move || {
        for mut connection in listener.incoming().take(4).flatten() {
            let mut head = [0u8; 4096];
            let _ = connection.read(&mut head);
        }
    });
    let hookscope = Hookscope::start(&[
        "--forward",
        &format!("http://127.0.0.1:{port}/hook"),
        "--format",
        "quiet",
    ]);
    let answer = post_json(&hookscope.url("/"), &alert("hang-up")).unwrap();
    assert_eq!(answer.status(), 502);
    let reason = answer.text().unwrap();
    assert!(
        reason.contains(&format!(
            "the request to 127.0.0.1:{port} failed: connection closed"
        )),
        "{reason}"
    );
    assert!(!reason.contains("client error"), "{reason}");
}

#[test]
fn a_slow_upstream_gets_504() {
    let app = App::start(|_| Reply {
        delay: Duration::from_secs(30),
        ..Reply::new(200, "too late")
    });
    let hookscope = Hookscope::start(&[
        "--forward",
        &app.url(),
        "--forward-timeout",
        "300ms",
        "--format",
        "json",
    ]);
    let answer = post_json(&hookscope.url("/"), &alert("slow")).unwrap();
    assert_eq!(answer.status(), 504);
    assert!(
        answer
            .text()
            .unwrap()
            .contains("no answer within 300ms (--forward-timeout)")
    );
    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(stats["upstream"]["by_status"]["timeout"], 1);
    let lines = hookscope.stop().json_lines();
    assert_eq!(lines[0]["upstream"]["timed_out"], true);
    assert_eq!(lines[0]["upstream"]["status"], serde_json::Value::Null);
}

#[test]
fn an_https_upstream_is_trusted_with_forward_cacert_and_speaks_http2() {
    let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/certs");
    let app = Hookscope::start(&[
        "--tls-cert",
        &format!("{certs}/cert.pem"),
        "--tls-key",
        &format!("{certs}/key.pem"),
        "--status",
        "201",
        "--no-admin",
        "--format",
        "quiet",
    ]);
    let app_url = app.url("").replace("127.0.0.1", "localhost");
    let trusted = Hookscope::start(&[
        "--forward",
        &app_url,
        "--forward-cacert",
        &format!("{certs}/cert.pem"),
        "--format",
        "json",
    ]);
    assert_eq!(status_of(&trusted.url("/"), &alert("tls")), 201);
    let lines = trusted.stop().json_lines();
    assert_eq!(lines[0]["upstream"]["version"], "HTTP/2.0");

    let untrusted = Hookscope::start(&["--forward", &app_url, "--format", "quiet"]);
    let answer = post_json(&untrusted.url("/"), &alert("tls")).unwrap();
    assert_eq!(answer.status(), 502);
    let reason = answer.text().unwrap();
    assert!(reason.contains("certificate"), "{reason}");

    let insecure = Hookscope::start(&[
        "--forward",
        &app_url,
        "--forward-insecure",
        "--format",
        "quiet",
    ]);
    assert_eq!(status_of(&insecure.url("/"), &alert("tls")), 201);
}

#[test]
fn a_big_answer_reaches_the_sender_whole_and_is_kept_in_part() {
    let big = Bytes::from(
        (0..1_000_000u32)
            .map(|n| b'a' + (n % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let answer_body = big.clone();
    let app = App::start(move |_| Reply::new(200, answer_body.clone()));
    let hookscope = Hookscope::start(&[
        "--forward",
        &app.url(),
        "--max-body",
        "64KiB",
        "--format",
        "json",
    ]);
    let answer = post_json(&hookscope.url("/"), &alert("big")).unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-length"], "1000000");
    assert_eq!(answer.bytes().unwrap(), big, "passed on whole");
    let lines = hookscope.stop().json_lines();
    let leg = &lines[0]["upstream"];
    assert_eq!(leg["body_truncated"], true);
    assert_eq!(leg["body"].as_str().unwrap().len(), 64 * 1024);
}

#[test]
fn redirects_are_passed_on_not_followed() {
    let app = App::start(|seen| {
        if seen.target == "/moved" {
            Reply::new(302, "").header("location", "/elsewhere")
        } else {
            Reply::new(200, "elsewhere")
        }
    });
    let hookscope = Hookscope::start(&["--forward", &app.url(), "--format", "quiet"]);
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = no_redirects
        .post(hookscope.url("/moved"))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(answer.status(), 302);
    assert_eq!(answer.headers()["location"], "/elsewhere");
    assert_eq!(app.seen().len(), 1, "hookscope did not follow it");
}

#[test]
fn bad_forward_settings_are_refused_at_start_up() {
    let refused = |args: &[&str], expected: &str| {
        let mut argv = vec!["listen", "--port", "0", "--no-admin"];
        argv.extend_from_slice(args);
        let output = run(&argv, b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };
    refused(&["--forward", "ftp://example.test/"], "--forward");
    refused(&["--forward", "not a url"], "--forward");
    refused(
        &["--script", "503,forward"],
        "invalid script \"503,forward\" at position 5: 'forward' needs --forward URL",
    );
    refused(
        &["--route", "/app=forward>503"],
        "invalid route \"/app=forward>503\" at position 6",
    );
    refused(
        &[
            "--forward",
            "http://127.0.0.1:9",
            "--script",
            "forward>maybe",
        ],
        "at position 9",
    );
    refused(
        &["--forward", "http://127.0.0.1:9", "--status", "503"],
        "--status",
    );
    refused(&["--forward-insecure"], "--forward");
    let port = closed_port().to_string();
    let output = run(
        &[
            "listen",
            "--port",
            &port,
            "--no-admin",
            "--forward",
            &format!("http://localhost:{port}/x"),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("this listener's own address"), "{stderr}");
}

#[test]
fn a_replay_goes_where_the_request_was_forwarded() {
    let app = ok_app();
    let record =
        std::env::temp_dir().join(format!("hookscope-forward-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&record);
    let hookscope = Hookscope::start(&[
        "--forward",
        &format!("{}/in", app.url()),
        "--record",
        record.to_str().unwrap(),
        "--format",
        "quiet",
    ]);
    assert_eq!(status_of(&hookscope.url("/hook?n=1"), &alert("again")), 200);
    let replayed = client()
        .post(hookscope.api("/api/requests/1/replay"))
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(replayed.status(), 200);
    let replayed: serde_json::Value = replayed.json().unwrap();
    assert_eq!(replayed["url"], format!("{}/in/hook?n=1", app.url()));
    assert_eq!(app.wait_for(2)[1].target, "/in/hook?n=1");
    drop(hookscope);

    let output = run(&["replay", record.to_str().unwrap()], b"");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen = app.wait_for(3);
    assert_eq!(seen[2].target, "/in/hook?n=1");
    assert_eq!(seen[2].body, seen[0].body);
    let _ = std::fs::remove_file(&record);
}

#[test]
fn panthers_node_example_works_behind_hookscope() {
    let mut node = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/bench/node-example.js"
        ))
        .arg("0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut stderr = std::io::BufReader::new(node.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let hookscope = Hookscope::start(&["--forward", &url, "--format", "json"]);
    let answer = post_json(&hookscope.url("/"), &alert("node")).unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().unwrap(), "success");
    let lines = hookscope.stop().json_lines();
    assert_eq!(lines[0]["upstream"]["body"], "success");
    assert_eq!(lines[0]["verdict"]["valid"], true);
    let _ = node.kill();
    let _ = node.wait();
}

/// Sends `size` bytes with curl, which asks `Expect: 100-continue` first (curl 7.88
/// does for any body over 1 KiB; 8.x over 1 MiB, so it is asked for here by name),
/// waiting up to 30 s for the go-ahead: curl's verbose lines, and whether it succeeded.
fn curl_upload(url: &str, size: usize) -> (String, bool) {
    let dir = std::env::temp_dir().join(format!("hookscope-expect-{}-{size}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("body.json");
    let (start, end) = (r#"{"title":"large","alertContext":{"pad":""#, r#""}}"#);
    let padding = "x".repeat(size - start.len() - end.len());
    std::fs::write(&file, format!("{start}{padding}{end}")).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "-v", "--expect100-timeout", "30", "--max-time", "60"])
        .args([
            "-H",
            "Expect: 100-continue",
            "-H",
            "Content-Type: application/json",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(url)
        .output()
        .expect("curl runs (apt-get install curl)");
    let _ = std::fs::remove_dir_all(&dir);
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[test]
fn expect_100_continue_is_answered_by_hookscope_and_not_passed_on() {
    // hookscope reads and checks the whole body before the app sees a byte, so the
    // go-ahead is its own to give, and the app gets a body with nothing to wait for.
    let app = ok_app();
    let hookscope = Hookscope::start(&[
        "--forward",
        &app.url(),
        "--format",
        "quiet",
        "--max-body",
        "4MiB",
    ]);
    let size = 2 * 1024 * 1024;
    let (verbose, ok) = curl_upload(&hookscope.url("/upload"), size);
    assert!(ok, "{verbose}");
    assert!(
        verbose.contains("> Expect: 100-continue") && verbose.contains("< HTTP/1.1 100 Continue"),
        "hookscope gives the go-ahead: {verbose}"
    );
    assert!(verbose.contains("< HTTP/1.1 200 OK"), "{verbose}");
    let seen = app.wait_for(1);
    assert_eq!(seen[0].body.len(), size, "the whole body reached the app");
    assert_eq!(seen[0].header("expect"), None, "{:?}", seen[0].headers);
    // A body over --max-body is refused on its declared length, before curl sends it.
    let small = Hookscope::start(&[
        "--forward",
        &app.url(),
        "--format",
        "quiet",
        "--max-body",
        "1MiB",
    ]);
    let (verbose, _) = curl_upload(&small.url("/upload"), size);
    assert!(verbose.contains("< HTTP/1.1 413"), "{verbose}");
    assert!(
        !verbose.contains("100 Continue"),
        "no go-ahead for a refused body: {verbose}"
    );
    assert_eq!(
        app.seen().len(),
        1,
        "the refused body never reached the app"
    );
}

#[test]
fn the_apps_connection_is_kept_for_the_next_request() {
    let app = ok_app();
    let hookscope = Hookscope::start(&["--forward", &app.url(), "--format", "quiet"]);
    for n in 0..5 {
        assert_eq!(
            status_of(&hookscope.url("/"), &alert(&format!("kept-{n}"))),
            200
        );
    }
    let ports: std::collections::BTreeSet<u16> =
        app.wait_for(5).iter().map(|seen| seen.peer_port).collect();
    assert_eq!(
        ports.len(),
        1,
        "five requests in turn, one connection: {ports:?}"
    );
}

#[test]
fn an_app_that_closes_after_every_answer_gets_every_request() {
    let app = App::start(|_| Reply::new(200, "bye").header("connection", "close"));
    let hookscope = Hookscope::start(&["--forward", &app.url(), "--format", "quiet"]);
    for n in 0..3 {
        let answer = post_json(&hookscope.url("/"), &alert(&format!("close-{n}"))).unwrap();
        assert_eq!(answer.status(), 200);
        assert!(
            answer.headers().get("connection").is_none(),
            "hop-by-hop, not passed on"
        );
        assert_eq!(answer.text().unwrap(), "bye");
    }
    let ports: std::collections::BTreeSet<u16> =
        app.wait_for(3).iter().map(|seen| seen.peer_port).collect();
    assert_eq!(ports.len(), 3, "a connection per request: {ports:?}");
}

/// Node closes a kept-alive connection after 5 s without a request (its
/// `keepAliveTimeout`): a request after that must go on a new connection, not fail
/// on the closed one. Here Node closes after 50 ms and prints each close.
#[test]
fn an_app_that_closes_idle_connections_as_node_does_loses_no_request() {
    const APP: &str = "const http = require('http');
        const server = http.createServer((req, res) => {
          req.resume();
          req.on('end', () => res.end('node ok'));
        });
        server.keepAliveTimeout = 50;
        server.on('connection', (socket) => socket.on('close', () => console.log('closed')));
        server.listen(0, '127.0.0.1', () =>
          console.log('listening on http://127.0.0.1:' + server.address().port));";
    /// Node, stopped however the test ends.
    struct Node(std::process::Child);
    impl Drop for Node {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut node = Node(
        std::process::Command::new("node")
            .args(["-e", APP])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node runs"),
    );
    let (lines, printed) = std::sync::mpsc::channel();
    let stdout = node.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let next_line = || {
        printed
            .recv_timeout(Duration::from_secs(30))
            .expect("node says what it did")
    };
    let listening = next_line();
    let url = listening.trim_start_matches("listening on ").to_owned();
    let hookscope = Hookscope::start(&["--forward", &url, "--format", "quiet"]);
    for n in 0..3 {
        let answer = post_json(&hookscope.url("/"), &alert(&format!("idle-{n}"))).unwrap();
        assert_eq!(answer.status(), 200, "request {n}");
        assert_eq!(answer.text().unwrap(), "node ok");
        // Node has closed the connection hookscope kept before the next request.
        assert_eq!(next_line(), "closed");
    }
    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(stats["upstream"]["errors"], 0, "{stats}");
}
