//! Hostile and broken clients: hookscope keeps serving the real sender and loses nothing.
//! Every test is loopback-only and bounded in time and count.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Hookscope, RawConnection, alert, assert_never_5xx, client, get_json, rss_kib};
use serde_json::Value;

fn temp_file(name: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("hookscope-hardening-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn stats(hookscope: &Hookscope) -> Value {
    get_json(&hookscope.api("/api/stats")).1
}

/// Whether the server has closed this connection (EOF or reset) within `wait`.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn slowloris_connections_neither_starve_a_sender_nor_stay_open() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--header-read-timeout", "2s"]);
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", hookscope.port)).unwrap();
            stream.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").unwrap();
            stream
        })
        .collect();
    let trickling = Arc::new(AtomicBool::new(true));
    let trickler = {
        let trickling = Arc::clone(&trickling);
        thread::spawn(move || {
            while trickling.load(Ordering::Relaxed) {
                for stream in &mut slow {
                    let _ = stream.write_all(b"X");
                }
                thread::sleep(Duration::from_millis(100));
            }
            slow
        })
    };

    let client = client();
    let mut slowest = Duration::ZERO;
    for n in 0..30 {
        let started = Instant::now();
        let answer = client
            .post(hookscope.url("/"))
            .body(alert(&format!("a{n}")))
            .send()
            .unwrap();
        assert_eq!(answer.status(), 200);
        slowest = slowest.max(started.elapsed());
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        slowest < Duration::from_secs(1),
        "slowest answer took {slowest:?}"
    );

    // Still trickling after the 2 s header timeout: every slow connection is cut off.
    thread::sleep(Duration::from_millis(1500));
    trickling.store(false, Ordering::Relaxed);
    let slow = trickler.join().unwrap();
    let still_open = slow
        .into_iter()
        .filter(|stream| !closed_within(&mut stream.try_clone().unwrap(), Duration::from_secs(3)))
        .count();
    assert_eq!(still_open, 0, "slowloris connections still open");
}

/// Sends a 1 GiB Content-Length and trickles 16 MiB of it: the answer must be 413.
fn refused_gigabyte(port: u16) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
        .unwrap();
    // Trickle 16 MiB of it, as long as the server lets us.
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..256 {
        if stream.write_all(&chunk).is_err() {
            break;
        }
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[test]
fn a_1_gib_content_length_gets_413_without_memory_growth() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--no-admin"]);
    let start = rss_kib(hookscope.pid());
    // Three refusals, 48 MiB trickled in all. The allocator (mimalloc) keeps some
    // memory for later after the first large reads, a little more per worker thread
    // that met them: the whole growth must stay below what one refusal trickled, so
    // not even one body was held.
    for _ in 0..3 {
        refused_gigabyte(hookscope.port);
    }
    let after = rss_kib(hookscope.pid());
    assert!(
        after < start + 16 * 1024,
        "RSS grew from {start} KiB to {after} KiB"
    );
    // And it goes on serving.
    let answer = client()
        .post(hookscope.url("/"))
        .body(alert("after"))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[test]
fn five_thousand_garbage_connections_then_a_valid_alert_is_answered() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--header-read-timeout", "2s"]);
    assert_never_5xx(hookscope.port, 0x5eed, 8, 625, |rng, case| {
        let mut garbage = match case % 3 {
            // Pure noise.
            0 => Vec::new(),
            // A plausible request line, then noise.
            1 => b"POST /x HTTP/1.1\r\n".to_vec(),
            // A whole head, then a noisy body.
            _ => b"POST /y HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n".to_vec(),
        };
        let len = 1 + rng.below(200);
        garbage.extend(rng.bytes(len));
        garbage
    });
    let answer = client()
        .post(hookscope.url("/"))
        .body(alert("survivor"))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().unwrap(), "success");
}

#[test]
fn an_http2_rapid_reset_flood_does_not_stop_other_clients() {
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    let port = hookscope.port;
    let flooding = Arc::new(AtomicBool::new(true));
    let flood = {
        let flooding = Arc::clone(&flooding);
        thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let mut connections = 0;
                let mut streams = 0u64;
                // Each connection resets streams until the server closes it; then another.
                while flooding.load(Ordering::Relaxed) && connections < 50 {
                    connections += 1;
                    let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                        break;
                    };
                    let Ok((h2, connection)) = h2::client::handshake(tcp).await else {
                        continue;
                    };
                    tokio::spawn(connection);
                    let mut h2 = h2;
                    while flooding.load(Ordering::Relaxed) {
                        h2 = match h2.ready().await {
                            Ok(h2) => h2,
                            Err(_) => break,
                        };
                        let request = http::Request::post(format!("http://127.0.0.1:{port}/flood"))
                            .body(())
                            .unwrap();
                        match h2.send_request(request, false) {
                            Ok((_, mut stream)) => {
                                stream.send_reset(h2::Reason::CANCEL);
                                streams += 1;
                            }
                            Err(_) => break,
                        }
                    }
                }
                (connections, streams)
            })
        })
    };

    thread::sleep(Duration::from_millis(300));
    let client = client();
    let mut slowest = Duration::ZERO;
    for n in 0..20 {
        let started = Instant::now();
        let answer = client
            .post(hookscope.url("/real"))
            .body(alert(&format!("real{n}")))
            .timeout(Duration::from_secs(5))
            .send()
            .unwrap();
        assert_eq!(answer.status(), 200);
        slowest = slowest.max(started.elapsed());
        thread::sleep(Duration::from_millis(50));
    }
    flooding.store(false, Ordering::Relaxed);
    let (connections, streams) = flood.join().unwrap();
    assert!(streams > 100, "the flood hardly ran: {streams} streams");
    assert!(
        slowest < Duration::from_secs(1),
        "slowest answer took {slowest:?} under the flood ({connections} connections, {streams} reset streams)"
    );
    let stats = stats(&hookscope);
    assert_eq!(stats["by_path"]["/real"], 20, "{stats}");
}

#[test]
fn ten_thousand_scripted_requests_over_200_connections_lose_nothing() {
    const CONNECTIONS: usize = 200;
    const REQUESTS_PER_CONNECTION: usize = 50;
    let record = temp_file("no-loss.jsonl");
    let hookscope = Hookscope::start(&[
        "--format",
        "quiet",
        "--script",
        "500*2,200",
        "--record",
        record.to_str().unwrap(),
    ]);
    let port = hookscope.port;
    let senders: Vec<_> = (0..CONNECTIONS)
        .map(|connection| {
            thread::spawn(move || {
                let mut raw = RawConnection::connect(port).unwrap();
                let mut statuses = Vec::new();
                for n in 0..REQUESTS_PER_CONNECTION {
                    // Each alert is retried until acknowledged: 500, 500, 200.
                    let body = alert(&format!("c{connection}-a{}", n / 3));
                    let (status, _) = raw.post("/", body.as_bytes()).unwrap();
                    statuses.push(status);
                }
                statuses
            })
        })
        .collect();
    let mut sent = 0;
    let mut by_status = std::collections::BTreeMap::new();
    for sender in senders {
        let statuses = sender.join().unwrap();
        for (n, status) in statuses.iter().enumerate() {
            let expected = if n % 3 == 2 { 200 } else { 500 };
            assert_eq!(*status, expected, "request {n} on a connection");
            *by_status.entry(*status).or_insert(0u64) += 1;
        }
        sent += statuses.len() as u64;
    }
    assert_eq!(sent, 10_000);

    let stats = stats(&hookscope);
    assert_eq!(stats["requests"], sent, "{stats}");
    assert_eq!(stats["by_status"]["500"], by_status[&500]);
    assert_eq!(stats["by_status"]["200"], by_status[&200]);
    assert_eq!(stats["deliveries"]["alerts"], (CONNECTIONS * 17) as u64);
    assert_eq!(stats["deliveries"]["never_acked"], CONNECTIONS as u64);

    let stopped = hookscope.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    let text = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("every record line parses"))
        .collect();
    assert_eq!(lines.len() as u64, sent);
    let acknowledged = lines.iter().filter(|line| line["status"] == 200).count() as u64;
    assert_eq!(acknowledged, by_status[&200]);
    assert!(
        stopped.stderr.contains(&format!("requests: {sent},")),
        "{}",
        stopped.stderr
    );
}

#[test]
fn sigterm_under_load_drains_within_the_shutdown_timeout_and_writes_the_summary() {
    let record = temp_file("drain.jsonl");
    let hookscope = Hookscope::start(&[
        "--format",
        "quiet",
        "--no-admin",
        "--record",
        record.to_str().unwrap(),
        "--route",
        "/slow=200@30s",
        "--shutdown-timeout",
        "1s",
    ]);
    let port = hookscope.port;
    let acknowledged = Arc::new(Mutex::new(0u64));
    let load: Vec<_> = (0..8)
        .map(|sender| {
            let acknowledged = Arc::clone(&acknowledged);
            thread::spawn(move || {
                let Ok(mut raw) = RawConnection::connect(port) else {
                    return;
                };
                for n in 0..100_000 {
                    match raw.post("/", alert(&format!("s{sender}-{n}")).as_bytes()) {
                        Ok((200, _)) => *acknowledged.lock().unwrap() += 1,
                        _ => return,
                    }
                }
            })
        })
        .collect();
    // Two requests that cannot finish before the timeout.
    let slow: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                let mut raw = RawConnection::connect(port).unwrap();
                raw.post("/slow", alert("slow").as_bytes()).is_ok()
            })
        })
        .collect();
    let started = Instant::now();
    while *acknowledged.lock().unwrap() < 500 && started.elapsed() < Duration::from_secs(20) {
        thread::sleep(Duration::from_millis(10));
    }

    let stopping = Instant::now();
    let stopped = hookscope.stop();
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
    assert!(stopped.status.success(), "{}", stopped.stderr);
    for sender in load {
        sender.join().unwrap();
    }
    for request in slow {
        assert!(!request.join().unwrap(), "a 30 s answer came back");
    }
    let summary = &stopped.stderr;
    let requests = summary_requests(summary);
    let acknowledged = *acknowledged.lock().unwrap();
    assert!(
        requests >= acknowledged,
        "{summary} but {acknowledged} acknowledged"
    );
    let lines = std::fs::read_to_string(&record).unwrap().lines().count() as u64;
    assert_eq!(lines, requests, "record lines vs {summary}");
}

#[test]
fn a_full_disk_is_reported_at_once_and_answered_503() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--no-admin", "--record", "/dev/full"]);
    let client = client();
    for n in 0..3 {
        let answer = client
            .post(hookscope.url("/"))
            .body(alert(&format!("full{n}")))
            .send()
            .unwrap();
        assert_eq!(answer.status(), 503, "an answer that could not be recorded");
    }
    let stopped = hookscope.stop();
    assert!(
        stopped
            .stderr
            .contains("cannot write the record file /dev/full"),
        "{}",
        stopped.stderr
    );
    let summary = stopped
        .stderr
        .lines()
        .find(|line| line.contains("summary:"))
        .unwrap();
    assert!(summary.contains("RECORDING FAILED"), "{summary}");
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--no-admin", "--idle-timeout", "1s"]);
    let mut raw = RawConnection::connect(hookscope.port).unwrap();
    assert_eq!(raw.post("/", alert("idle").as_bytes()).unwrap().0, 200);
    let waited = Instant::now();
    assert!(closed_within(raw.stream(), Duration::from_secs(4)));
    assert!(
        waited.elapsed() >= Duration::from_millis(800),
        "closed too early"
    );
}

#[test]
fn connections_beyond_the_cap_wait_and_those_in_flight_are_unaffected() {
    let hookscope =
        Hookscope::start(&["--format", "quiet", "--no-admin", "--max-connections", "2"]);
    let mut first = RawConnection::connect(hookscope.port).unwrap();
    let mut second = RawConnection::connect(hookscope.port).unwrap();
    assert_eq!(first.post("/", b"{}").unwrap().0, 200);
    assert_eq!(second.post("/", b"{}").unwrap().0, 200);

    let port = hookscope.port;
    let third = thread::spawn(move || {
        let started = Instant::now();
        let mut third = RawConnection::connect(port).unwrap();
        let status = third.post("/", b"{}").unwrap().0;
        (status, started.elapsed())
    });
    thread::sleep(Duration::from_millis(700));
    // The two served connections keep working while the third waits.
    assert_eq!(first.post("/", b"{}").unwrap().0, 200);
    drop(second);
    let (status, waited) = third.join().unwrap();
    assert_eq!(status, 200);
    assert!(
        waited >= Duration::from_millis(600),
        "the third connection was served at once"
    );
}

#[test]
fn limit_flags_are_checked_at_start() {
    for args in [
        &["--max-header-size", "1KiB"][..],
        &["--max-connections", "0"],
        &["--idle-timeout", "soon"],
        &["--shutdown-timeout", "forever"],
        &["--h2-max-streams", "0"],
    ] {
        let mut all = vec!["listen", "--no-admin", "--port", "0"];
        all.extend_from_slice(args);
        let output = common::run(&all, b"");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(args[0]), "{args:?}: {stderr}");
    }
}

#[test]
fn an_unwritable_record_file_is_refused_at_start() {
    for path in ["/nonexistent-dir/record.jsonl", "/"] {
        let output = common::run(
            &["listen", "--no-admin", "--port", "0", "--record", path],
            b"",
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--record") && stderr.contains(path),
            "{stderr}"
        );
        assert_eq!(
            stderr.matches("(os error").count(),
            1,
            "cause printed once: {stderr}"
        );
    }
}

/// A valid alert of about 64 KB (its alertContext padded), with its own alertId.
fn big_alert(alert_id: &str) -> String {
    let mut alert: Value =
        serde_json::from_slice(&common::payload("valid/panther-docs-ipmonitoring.json")).unwrap();
    alert["alertId"] = alert_id.into();
    alert["alertContext"] = serde_json::json!({ "padding": "x".repeat(64 * 1024) });
    alert.to_string()
}

/// Posts big alerts from `threads` threads until each has posted `per_thread` or
/// seen an answer take longer than `patience`; returns how many were answered.
fn flood(url: &str, threads: usize, per_thread: usize, patience: Duration) -> usize {
    let client = reqwest::blocking::Client::builder()
        .timeout(patience)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (client, url) = (client.clone(), url.to_owned());
            std::thread::spawn(move || {
                let mut answered = 0;
                for n in 0..per_thread {
                    let body = big_alert(&format!("flood-{thread}-{n}"));
                    match client.post(&url).body(body).send() {
                        Ok(response) if response.status() == 200 => answered += 1,
                        _ => break,
                    }
                }
                answered
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .sum()
}

fn summary_requests(stderr: &str) -> u64 {
    let summary = stderr
        .lines()
        .find(|line| line.contains("summary:"))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    summary
        .split("requests: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {summary}"))
}

#[test]
fn a_stalled_stdout_holds_answers_back_not_memory_and_loses_nothing() {
    let mut hookscope = Hookscope::start_with_stalled_stdout(&["--format", "json"]);
    // Far more than the printer's queue (1,024) and the pipe (64 KiB) hold: once
    // both are full, answers wait, and each thread gives up on its first slow one.
    let answered = flood(&hookscope.url("/"), 8, 400, Duration::from_secs(2));
    assert!(answered < 3200, "no answer was held back: {answered}");
    let peak_mib = common::peak_rss_kib(hookscope.pid()) / 1024;
    assert!(
        peak_mib < 256,
        "peak RSS {peak_mib} MiB with a stalled stdout"
    );
    hookscope.release_stdout();
    let stopped = hookscope.stop();
    let printed = stopped.stdout_text().lines().count() as u64;
    assert_eq!(
        printed,
        summary_requests(&stopped.stderr),
        "every exchange is printed once stdout moves again"
    );
}

#[test]
fn with_stdout_full_drop_answers_go_on_and_what_was_not_printed_is_counted() {
    let mut hookscope =
        Hookscope::start_with_stalled_stdout(&["--format", "json", "--stdout-full", "drop"]);
    let answered = flood(&hookscope.url("/"), 4, 400, Duration::from_secs(5));
    assert_eq!(answered, 1600, "no answer waits for stdout");
    let stats = stats(&hookscope);
    let missed = stats["not_delivered_to_subscribers"].as_u64().unwrap();
    assert!(missed > 0, "{stats}");
    hookscope.release_stdout();
    let stopped = hookscope.stop();
    let printed = stopped.stdout_text().lines().count() as u64;
    assert_eq!(printed + missed, summary_requests(&stopped.stderr));
    assert!(
        stopped.stderr.contains("stdout fell behind") && stopped.stderr.contains("not printed"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn what_was_acknowledged_is_replayable_even_a_number_beyond_f64() {
    let record = temp_file("huge-number.jsonl");
    let source = Hookscope::start(&["--record", record.to_str().unwrap(), "--format", "quiet"]);
    let body = r#"{"x":1e400}"#;
    let answer = client()
        .post(source.url("/"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    source.stop();
    let target = Hookscope::start(&["--format", "json"]);
    let output = common::run(
        &["replay", record.to_str().unwrap(), "--to", &target.url],
        b"",
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let received = target.stop();
    assert!(
        received.stderr.contains("requests: 1,"),
        "{}",
        received.stderr
    );
    let (_, replayed) = (0, std::fs::read_to_string(&record).unwrap());
    assert!(replayed.contains("1e400"), "{replayed}");
}

#[test]
fn headers_that_frame_the_answer_are_refused_at_start_and_by_the_api() {
    for framing in [
        "Content-Length: 0",
        "Transfer-Encoding: chunked",
        "Connection: close",
    ] {
        let output = common::run(&["listen", "--port", "0", "--header", framing], b"");
        assert_eq!(output.status.code(), Some(2), "{framing}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--header") && stderr.contains("cannot be set on answers"),
            "{stderr}"
        );
    }
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    let response = client()
        .put(hookscope.api("/api/config"))
        .header("content-type", "application/json")
        .body(r#"{"headers":["Content-Length: 5"]}"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), 422);
    let answer = client().post(hookscope.url("/")).body("{}").send().unwrap();
    assert_eq!(answer.text().unwrap(), "success", "the answer is whole");
}

#[test]
fn the_admin_api_answers_only_its_own_names_and_never_a_replay() {
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    let admin = hookscope.admin.clone().unwrap();
    let port = admin.rsplit(':').next().unwrap().to_owned();
    let status_with_host = |host: &str| {
        client()
            .get(format!("{admin}/api/stats"))
            .header("host", host)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    for accepted in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "localhost".into(),
    ] {
        assert_eq!(status_with_host(&accepted), 200, "{accepted}");
    }
    for refused in [
        format!("evil.localhost:{port}"),
        format!("127.0.0.2:{port}"),
        "localhost:1".to_owned(),
    ] {
        assert_eq!(status_with_host(&refused), 403, "{refused}");
    }
    // No Host at all (HTTP/1.0).
    let raw = common::send_raw(port.parse().unwrap(), b"GET /api/stats HTTP/1.0\r\n\r\n").unwrap();
    assert!(
        String::from_utf8_lossy(&raw).starts_with("HTTP/1.0 403"),
        "{}",
        String::from_utf8_lossy(&raw)
    );

    // Media types are parsed, not prefix-matched.
    let put = |content_type: &str| {
        client()
            .put(format!("{admin}/api/config"))
            .header("content-type", content_type)
            .body(r#"{"status":200}"#)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(put("APPLICATION/JSON; charset=utf-8"), 200);
    assert_eq!(put("application/jsonx"), 415);

    // A recorded request replayed into the admin API: refused, twice over.
    client()
        .post(hookscope.url("/api/requests/1/replay"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"to":"{admin}"}}"#))
        .send()
        .unwrap();
    let replay = client()
        .post(format!("{admin}/api/requests/1/replay"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"to":"{admin}"}}"#))
        .send()
        .unwrap();
    assert_eq!(replay.status(), 400);
    let marked = client()
        .get(format!("{admin}/api/stats"))
        .header("x-hookscope-replay", "1")
        .send()
        .unwrap();
    assert_eq!(marked.status(), 403);
    // The listener is still well.
    assert_eq!(common::get_json(&format!("{admin}/api/stats")).0, 200);
}

#[test]
fn connect_is_not_answered_as_if_a_tunnel_opened() {
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    let raw = common::send_raw(
        hookscope.port,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 405"), "{text}");
}

#[test]
fn a_deleted_record_file_is_noticed_and_sighup_opens_it_again() {
    let record = temp_file("deleted.jsonl");
    let mut hookscope =
        Hookscope::start(&["--record", record.to_str().unwrap(), "--format", "quiet"]);
    let post = |hookscope: &Hookscope| {
        client()
            .post(hookscope.url("/"))
            .body(alert("rotated"))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post(&hookscope), 200);
    std::fs::remove_file(&record).unwrap();
    // The line would go to an inode nobody reads: not acknowledged.
    assert_eq!(post(&hookscope), 503);
    assert!(hookscope.wait_for_stderr("deleted or moved away").is_some());
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(hookscope.pid() as libc::pid_t, libc::SIGHUP) };
    assert!(hookscope.wait_for_stderr("record file reopened").is_some());
    assert_eq!(post(&hookscope), 200);
    let recorded = std::fs::read_to_string(&record).unwrap();
    assert_eq!(
        recorded.lines().count(),
        1,
        "the new file has the answer after the SIGHUP"
    );

    // A rotation: renamed away, then SIGHUP; the old file keeps what it had.
    let rotated = temp_file("deleted.jsonl.1");
    std::fs::rename(&record, &rotated).unwrap();
    unsafe { libc::kill(hookscope.pid() as libc::pid_t, libc::SIGHUP) };
    assert!(hookscope.wait_for_stderr("record file reopened").is_some());
    assert_eq!(post(&hookscope), 200);
    assert_eq!(std::fs::read_to_string(&record).unwrap().lines().count(), 1);
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap().lines().count(),
        1
    );
    let stopped = hookscope.stop();
    assert_eq!(stopped.status.code(), Some(0));
    let _ = std::fs::remove_file(rotated);
}

#[test]
fn http2_uploads_share_one_body_budget_not_one_max_body_per_stream() {
    // Without a shared budget, 20 connections × 100 streams × 1 MiB is two gigabytes (the issue's case).
    let hookscope = Hookscope::start(&["--format", "quiet", "--keep-bytes", "8MiB"]);
    let url = hookscope.url("/huge");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let uploads = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let body = bytes::Bytes::from(vec![b'x'; 1024 * 1024]);
            let mut uploads = Vec::new();
            for _ in 0..20 {
                let connection = reqwest::Client::builder()
                    .http2_prior_knowledge()
                    .build()
                    .unwrap();
                for _ in 0..100 {
                    let request = connection.post(&url).body(body.clone()).send();
                    uploads.push(tokio::spawn(request));
                }
            }
            let mut statuses = Vec::new();
            for upload in uploads {
                let response = upload.await.unwrap().unwrap();
                if response.status() == 503 {
                    assert_eq!(response.headers()["retry-after"], "1");
                }
                statuses.push(response.status().as_u16());
            }
            statuses
        })
        .await
    });
    let statuses = uploads.expect("every stream was answered: no stalled connection");
    let read = statuses.iter().filter(|&&status| status == 200).count();
    let deferred = statuses.iter().filter(|&&status| status == 503).count();
    assert_eq!(read + deferred, 2000, "{read} read, {deferred} deferred");
    assert!(read >= 16, "at least a budget's worth was read: {read}");
    let peak_mib = common::peak_rss_kib(hookscope.pid()) / 1024;
    assert!(
        peak_mib < 256,
        "peak RSS {peak_mib} MiB for 2,000 streams of 1 MiB"
    );
    assert_eq!(stats(&hookscope)["requests"], 2000);
}

#[test]
fn connections_that_never_send_a_head_give_way_to_a_new_one() {
    let hookscope = Hookscope::start(&["--max-connections", "8", "--format", "quiet"]);
    // Every slot taken by a connection that sends nothing (the head timeout is 10 s).
    let silent: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(("127.0.0.1", hookscope.port)).unwrap())
        .collect();
    // The kernel's accept queue is first in, first out: the eight are taken before
    // the real sender that connects after them.
    let started = Instant::now();
    let answer = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .post(hookscope.url("/"))
        .body(alert("waited"))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a real sender waited {:?} behind silent connections",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn near_the_connection_cap_a_silent_connection_gets_less_time_for_its_head() {
    let hookscope = Hookscope::start(&["--max-connections", "8", "--format", "quiet"]);
    // Seven silent connections with the usual 10 s for a head...
    let early: Vec<TcpStream> = (0..7)
        .map(|_| TcpStream::connect(("127.0.0.1", hookscope.port)).unwrap())
        .collect();
    // ...and the one that takes the last slot: it gets 2 s.
    let started = Instant::now();
    let mut last = TcpStream::connect(("127.0.0.1", hookscope.port)).unwrap();
    last.set_read_timeout(Some(Duration::from_secs(9))).unwrap();
    let mut buffer = [0u8; 64];
    let closed = matches!(last.read(&mut buffer), Ok(0) | Err(_));
    let waited = started.elapsed();
    assert!(closed, "the server closed it");
    assert!(
        waited < Duration::from_secs(6),
        "the last silent connection was given {waited:?} (the usual head timeout is 10 s)"
    );
    // The ones accepted before the pressure still have their time.
    early[0].set_nonblocking(true).unwrap();
    let still_open = matches!(
        early[0].peek(&mut buffer),
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
    );
    assert!(still_open, "a connection accepted earlier keeps its 10 s");
}

#[test]
fn a_connection_that_sends_nothing_is_closed_at_the_head_timeout() {
    let hookscope = Hookscope::start(&["--header-read-timeout", "1s", "--format", "quiet"]);
    let started = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", hookscope.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let closed = matches!(silent.read(&mut [0u8; 16]), Ok(0));
    assert!(
        closed && started.elapsed() < Duration::from_secs(5),
        "closed: {closed}, after {:?} (before: held until the 60 s idle timeout)",
        started.elapsed()
    );
}

#[test]
fn a_malformed_chunked_body_gets_400_and_is_recorded_as_such() {
    let hookscope = Hookscope::start(&["--format", "json"]);
    for chunk_size in ["FFFFFFFFFFFFFFFFFFFF", "zz"] {
        let request = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{chunk_size}\r\nabc\r\n0\r\n\r\n"
        );
        let answer =
            String::from_utf8_lossy(&common::send_raw(hookscope.port, request.as_bytes()).unwrap())
                .into_owned();
        assert!(answer.starts_with("HTTP/1.1 400"), "{chunk_size}: {answer}");
        assert!(answer.contains("chunked encoding is malformed"), "{answer}");
    }
    let lines = hookscope.stop().json_lines();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|line| line["body_state"] == "malformed" && line["status"] == 400)
    );
}
