//! A receiver that answers with an endless body cannot make `send`, `replay` or
//! the inspector's replay hold it in memory (issue 16, item 3). Its own test
//! binary: the peak memory of the commands is read from the children this process
//! waited for, and no other test's children may count.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{Hookscope, client};

/// A receiver that reads a request and answers 200 with a 10 GB body it streams
/// for as long as the client reads. Returns its base URL.
fn endless_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            std::thread::spawn(move || {
                let mut request = [0u8; 16 * 1024];
                let _ = stream.read(&mut request);
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 10000000000\r\n\r\n";
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline && stream.write_all(&chunk).is_ok() {}
            });
        }
    });
    url
}

/// The largest resident memory of any child waited for so far, in MiB.
fn children_peak_mib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one rusage into the pointer it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    usage.ru_maxrss / 1024
}

#[test]
fn endless_response_bodies_are_cut_not_held() {
    let receiver = endless_receiver();
    let started = Instant::now();
    let output = common::run(
        &[
            "send",
            "--to",
            &receiver,
            "--test",
            "--retries",
            "0",
            "--timeout",
            "10s",
        ],
        b"",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("response body (cut at --max-response-body): xxx"),
        "{}",
        &stdout[..200.min(stdout.len())]
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "it read on: {:?}",
        started.elapsed()
    );

    // A record to replay, then the CLI's replay and the inspector's.
    let record = std::env::temp_dir().join(format!("hookscope-caps-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&record);
    let source = Hookscope::start(&["--record", record.to_str().unwrap(), "--format", "quiet"]);
    client().post(source.url("/")).body("{}").send().unwrap();
    let output = common::run(
        &[
            "replay",
            record.to_str().unwrap(),
            "--to",
            &receiver,
            "--max-response-body",
            "64KiB",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("(cut at --max-response-body)"));
    assert!(
        children_peak_mib() < 128,
        "a command held {} MiB",
        children_peak_mib()
    );

    let before = common::rss_kib(source.pid()) / 1024;
    let replayed = client()
        .post(source.api("/api/requests/1/replay"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"to":"{receiver}"}}"#))
        .send()
        .unwrap();
    assert_eq!(replayed.status(), 200);
    let replayed: serde_json::Value = replayed.json().unwrap();
    assert_eq!(replayed["truncated"], true);
    assert_eq!(replayed["body"].as_str().unwrap().len(), 1024 * 1024);
    let peak = common::peak_rss_kib(source.pid()) / 1024;
    assert!(
        peak < before + 64,
        "the listener went from {before} to {peak} MiB"
    );
    let _ = std::fs::remove_file(record);
}

#[test]
fn a_record_line_past_max_line_is_skipped_without_being_held() {
    let record =
        std::env::temp_dir().join(format!("hookscope-long-line-{}.jsonl", std::process::id()));
    let normal = r#"{"id":2,"method":"POST","path":"/ok","query":null,"headers":{},"body_encoding":"text","body":"fine"}"#;
    let mut file = std::fs::File::create(&record).unwrap();
    file.write_all(
        br#"{"id":1,"method":"POST","path":"/huge","headers":{},"body_encoding":"text","body":""#,
    )
    .unwrap();
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..40 {
        file.write_all(&chunk).unwrap();
    }
    file.write_all(b"\"}\n").unwrap();
    file.write_all(normal.as_bytes()).unwrap();
    file.write_all(b"\n").unwrap();
    drop(file);
    let target = Hookscope::start(&["--format", "json"]);
    let output = common::run(
        &["replay", record.to_str().unwrap(), "--to", &target.url],
        b"",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(":1: longer than --max-line"), "{stderr}");
    let lines = target.stop().json_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["path"], "/ok");
    assert!(
        children_peak_mib() < 128,
        "replay held {} MiB",
        children_peak_mib()
    );
    let _ = std::fs::remove_file(record);
}
