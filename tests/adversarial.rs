//! Attacks a stranger who found the tunnel's URL can make cheaply, each with a
//! well-behaved sender beside it: the sender is answered within 2 s throughout, and
//! hookscope's peak memory (VmHWM) stays within a bound. Loopback only, bounded
//! counts and durations.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Hookscope, RawConnection, alert_with, client, get_json, peak_rss_kib};

/// How long the well-behaved sender may wait for any answer.
const ANSWERED_WITHIN: Duration = Duration::from_secs(2);

/// A well-behaved sender: posts an alert on a new connection every 50 ms (as a
/// Lambda would) until it is stopped, and notes every answer it got.
struct Bystander {
    running: Arc<AtomicBool>,
    sender: thread::JoinHandle<Vec<Answer>>,
}

#[derive(Debug)]
struct Answer {
    /// The status, or why there was none.
    status: Result<u16, String>,
    took: Duration,
}

impl Bystander {
    fn start(url: &str) -> Bystander {
        let url = url.to_owned();
        let running = Arc::new(AtomicBool::new(true));
        let keep_going = Arc::clone(&running);
        let sender = thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(ANSWERED_WITHIN * 3)
                .build()
                .unwrap();
            let mut answers = Vec::new();
            let mut n = 0;
            // At least a few answers, however short the attack.
            while keep_going.load(Ordering::Relaxed) || answers.len() < 5 {
                n += 1;
                let started = Instant::now();
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(alert_with(&[("alertId", &format!("bystander-{n}"))]))
                    .send();
                answers.push(Answer {
                    status: answer
                        .map(|answer| answer.status().as_u16())
                        .map_err(|error| error.to_string()),
                    took: started.elapsed(),
                });
                thread::sleep(Duration::from_millis(50));
            }
            answers
        });
        Bystander { running, sender }
    }

    /// Stops the sender; asserts every answer came within 2 s with one of `allowed`.
    fn finish(self, allowed: &[u16]) -> Vec<Answer> {
        self.running.store(false, Ordering::Relaxed);
        let answers = self.sender.join().unwrap();
        assert!(
            answers.len() >= 5,
            "the sender sent too little: {answers:?}"
        );
        let bad: Vec<&Answer> = answers
            .iter()
            .filter(|answer| {
                answer.took > ANSWERED_WITHIN
                    || !answer
                        .status
                        .as_ref()
                        .is_ok_and(|status| allowed.contains(status))
            })
            .collect();
        assert!(
            bad.is_empty(),
            "{} of {} answers were late or not {allowed:?}: {:?}",
            bad.len(),
            answers.len(),
            &bad[..bad.len().min(5)]
        );
        answers
    }

    /// Runs for `period`, then `finish`.
    fn run_for(url: &str, period: Duration, allowed: &[u16]) -> Vec<Answer> {
        let bystander = Bystander::start(url);
        thread::sleep(period);
        bystander.finish(allowed)
    }
}

/// Opens a connection and sends `head` (and nothing else).
fn stalled(port: u16, head: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// What the server said on `stream` within `wait`, up to its close.
fn answer_on(stream: &mut TcpStream, wait: Duration) -> String {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A JSON body of 1 MiB: `{"pad":"xxxx…"}`.
fn mib_of(byte: u8) -> String {
    let pad = String::from(char::from(byte)).repeat(1024 * 1024 - 12);
    format!("{{\"pad\":\"{pad}\"}}")
}

/// A hookscope whose `/slow` answers wait 20 s, keeping little history.
fn with_slow_route() -> Hookscope {
    Hookscope::start(&[
        "--format",
        "quiet",
        "--route",
        "/slow=200@20s",
        "--keep-bytes",
        "4MiB",
    ])
}

const MIB_HEAD: &str = "POST /stall HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n";

#[test]
fn bodies_that_never_arrive_do_not_park_the_budget_and_end_with_408() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--header-read-timeout", "3s"]);
    // 16 x 1 MiB declared is the whole default --max-inflight-bytes.
    let mut attackers: Vec<TcpStream> =
        (0..32).map(|_| stalled(hookscope.port, MIB_HEAD)).collect();
    let started = Instant::now();
    Bystander::run_for(&hookscope.url("/"), Duration::from_secs(2), &[200]);
    for attacker in &mut attackers {
        let answer = answer_on(attacker, Duration::from_secs(10));
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "a stalled body is ended with 408: {answer:?}"
        );
        assert!(answer.contains("stopped arriving"), "{answer}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stalled bodies end between one and two header timeouts: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_body_that_trickles_ends_at_the_body_timeout() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--body-timeout", "2s"]);
    let mut attacker = stalled(hookscope.port, MIB_HEAD);
    let started = Instant::now();
    let mut answer = String::new();
    for _ in 0..40 {
        if attacker.write_all(b"x").is_err() {
            break;
        }
        answer = answer_on(&mut attacker, Duration::from_millis(200));
        if !answer.is_empty() {
            break;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn http2_streams_that_never_send_their_body_do_not_park_the_budget() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--header-read-timeout", "3s"]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let port = hookscope.port;
    // One connection, 32 streams that each declare 1 MiB and send nothing (~1 KB).
    let _attack = runtime.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        let mut streams = Vec::new();
        for _ in 0..32 {
            client = client.ready().await.unwrap();
            let request = http::Request::post(format!("http://127.0.0.1:{port}/stall"))
                .header("content-length", "1048576")
                .body(())
                .unwrap();
            streams.push(client.send_request(request, false).unwrap());
        }
        (client, streams)
    });
    Bystander::run_for(&hookscope.url("/"), Duration::from_secs(2), &[200]);
    // And an HTTP/2 sender is read too.
    let answer = runtime.block_on(async {
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap()
            .post(hookscope.url("/h2"))
            .body(alert_with(&[]))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(answer, 200);
}

#[test]
fn connections_that_send_a_head_and_stall_give_way_to_a_sender() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--max-connections", "64"]);
    // More than every slot, each with a head and a body that never comes.
    let _attackers: Vec<TcpStream> = (0..80).map(|_| stalled(hookscope.port, MIB_HEAD)).collect();
    Bystander::run_for(&hookscope.url("/"), Duration::from_secs(3), &[200]);
}

#[test]
fn bodies_held_by_answers_that_wait_stay_charged_to_the_budget() {
    let hookscope = with_slow_route();
    let bystander = Bystander::start(&hookscope.url("/"));
    // 120 MiB of bodies whose answers wait 20 s: a 16 MiB budget holds 16 of them.
    let port = hookscope.port;
    let senders: Vec<_> = (0..120)
        .map(|_| {
            thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let mut request =
                    b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n".to_vec();
                request.resize(request.len() + 1024 * 1024 - 2, b' ');
                request.extend_from_slice(b"{}");
                let _ = stream.write_all(&request);
                answer_on(&mut stream, Duration::from_secs(4))
            })
        })
        .collect();
    let (mut held, mut deferred) = (0, 0);
    for sender in senders {
        let answer = sender.join().unwrap();
        if answer.starts_with("HTTP/1.1 503") {
            assert!(
                answer.to_ascii_lowercase().contains("retry-after: 1"),
                "{answer}"
            );
            deferred += 1;
        } else {
            assert!(answer.is_empty(), "{answer}");
            held += 1;
        }
    }
    // Answered at once (200) or told to retry (503) while the budget is full.
    bystander.finish(&[200, 503]);
    assert!(held <= 17, "{held} bodies held against a 16 MiB budget");
    assert!(deferred >= 100, "{deferred} deferred");
    let peak_mib = peak_rss_kib(hookscope.pid()) / 1024;
    assert!(peak_mib < 100, "peak RSS {peak_mib} MiB");
}

#[test]
fn huge_alert_ids_cost_a_bounded_key_each() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--keep-bytes", "8MiB"]);
    let bystander = Bystander::start(&hookscope.url("/"));
    let mut sender = RawConnection::connect(hookscope.port).unwrap();
    // 200 alerts whose alertId is 1,000,000 characters: 200 MB of keys, if kept whole.
    for n in 0..200 {
        let id = format!("{n:03}{}", "k".repeat(1_000_000));
        let (status, _) = sender
            .post("/", alert_with(&[("alertId", &id)]).as_bytes())
            .unwrap();
        assert_eq!(status, 200);
    }
    bystander.finish(&[200]);
    let peak_mib = peak_rss_kib(hookscope.pid()) / 1024;
    assert!(peak_mib < 120, "peak RSS {peak_mib} MiB");
    // Shown by a prefix and a digest: still one alert per id, each told apart.
    let (_, alerts) = get_json(&hookscope.api("/api/alerts"));
    let keys: Vec<&str> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|alert| alert["key"].as_str())
        .filter(|key| key.contains("kkkk"))
        .collect();
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(key.len() < 120, "{} bytes", key.len());
        assert!(key.contains("…sha256:"), "{key}");
    }
    let distinct: std::collections::HashSet<&&str> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len());
}

#[test]
fn clearing_the_history_forgets_the_attempt_numbers() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--status", "500"]);
    let alert = alert_with(&[("alertId", "cleared-alert")]);
    let attempt = || {
        common::post_json(&hookscope.url("/"), &alert).unwrap();
        let (_, requests) = get_json(&hookscope.api("/api/requests"));
        requests[0]["attempt"]["number"].as_u64().unwrap()
    };
    assert_eq!((attempt(), attempt(), attempt()), (1, 2, 3));
    let cleared = client()
        .delete(hookscope.api("/api/requests"))
        .send()
        .unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(
        attempt(),
        1,
        "DELETE /api/requests forgets the deliveries too"
    );
}

#[test]
fn a_body_with_half_a_million_problems_keeps_the_first_hundred_and_a_count() {
    let hookscope = Hookscope::start(&["--format", "json", "--keep-bytes", "64MiB"]);
    let bystander = Bystander::start(&hookscope.url("/"));
    // {"tags":[1,1,...]}: 524,283 problems in 1 MiB, each a kept problem before.
    let mut body = String::from(r#"{"tags":["#);
    while body.len() < 1024 * 1024 - 4 {
        body.push_str("1,");
    }
    body.push_str("1]}");
    let mut sender = RawConnection::connect(hookscope.port).unwrap();
    for _ in 0..20 {
        let (status, _) = sender.post("/tags", body.as_bytes()).unwrap();
        assert_eq!(status, 200);
    }
    bystander.finish(&[200]);
    let peak_mib = peak_rss_kib(hookscope.pid()) / 1024;
    assert!(peak_mib < 200, "peak RSS {peak_mib} MiB");
    let listing = client()
        .get(hookscope.api("/api/requests?path=/tags"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert!(listing.len() < 40 * 1024 * 1024, "{} bytes", listing.len());
    let requests: serde_json::Value = serde_json::from_slice(&listing).unwrap();
    let verdict = &requests[0]["verdict"];
    assert_eq!(verdict["problems"].as_array().unwrap().len(), 100);
    let problems = 100 + verdict["omitted"].as_u64().unwrap();
    assert!(problems > 500_000, "{problems}");
    // The terminal line says how many there were, not each of them.
    let stopped = hookscope.stop();
    let longest = stopped.stdout_text().lines().map(str::len).max().unwrap();
    assert!(longest < 4 * 1024 * 1024, "a {longest}-byte line");
}

#[test]
fn a_header_full_of_wrong_signatures_is_refused_before_any_hmac() {
    let hookscope = Hookscope::start(&[
        "--format",
        "quiet",
        "--verify",
        "standard-webhooks:whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "--verify",
        "stripe:whsec_stripe-s3cret-value",
    ]);
    let bystander = Bystander::start(&hookscope.url("/"));
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024 - 16));
    let wrong = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=";
    let many = vec![wrong; 1_300].join(" ");
    let stripe = format!("t=1,{}", vec!["v1=00"; 5_000].join(","));
    let started = Instant::now();
    let senders: Vec<_> = (0..4)
        .map(|n| {
            let (url, body, many, stripe) = (
                hookscope.url("/"),
                body.clone(),
                many.clone(),
                stripe.clone(),
            );
            thread::spawn(move || {
                let request = client().post(url).body(body);
                let request = if n % 2 == 0 {
                    request
                        .header("webhook-id", "msg_1")
                        .header("webhook-timestamp", "1")
                        .header("webhook-signature", many)
                } else {
                    request.header("stripe-signature", stripe)
                };
                request.send().unwrap().status().as_u16()
            })
        })
        .collect();
    for sender in senders {
        assert_eq!(sender.join().unwrap(), 200);
    }
    let took = started.elapsed();
    bystander.finish(&[200]);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let (_, requests) = get_json(&hookscope.api("/api/requests?signature=malformed"));
    let reasons: Vec<&str> = requests
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|request| request["signature"]["reason"].as_str())
        .collect();
    assert_eq!(reasons.len(), 4, "{requests}");
    assert!(
        reasons
            .iter()
            .all(|reason| reason.contains("more than the 16")),
        "{reasons:?}"
    );
}

#[test]
fn a_record_file_that_stops_taking_writes_does_not_turn_a_flood_into_memory() {
    // A pipe that nobody reads: the record writer blocks once its 64 KiB are full.
    let fifo = std::env::temp_dir().join(format!("hookscope-stuck-{}.fifo", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let _never_read = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap()
    };
    let hookscope = Hookscope::start(&[
        "--format",
        "quiet",
        "--status",
        "500",
        "--keep-bytes",
        "4MiB",
        "--record",
        fifo.to_str().unwrap(),
    ]);
    let bystander = Bystander::start(&hookscope.url("/"));
    let port = hookscope.port;
    // Flooded until 500 lines (43 MiB of them) were left out, whatever the machine's
    // speed: more than the queue holds, so an unbounded queue would hold them all.
    let flooding = Arc::new(AtomicBool::new(true));
    let flooders: Vec<_> = (0..6)
        .map(|_| {
            let flooding = Arc::clone(&flooding);
            thread::spawn(move || {
                let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(64 * 1024));
                let mut sender = RawConnection::connect(port).unwrap();
                let mut sent = 0u64;
                while flooding.load(Ordering::Relaxed) {
                    let (status, _) = sender.post("/flood", body.as_bytes()).unwrap();
                    assert_eq!(status, 500);
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let started = Instant::now();
    let left_out = || get_json(&hookscope.api("/api/stats")).1["record_left_out"].as_u64();
    while left_out().unwrap_or(0) < 500 && started.elapsed() < Duration::from_secs(30) {
        thread::sleep(Duration::from_millis(100));
    }
    flooding.store(false, Ordering::Relaxed);
    let sent: u64 = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    bystander.finish(&[500]);
    let peak_mib = peak_rss_kib(hookscope.pid()) / 1024;
    let _ = std::fs::remove_file(&fifo);
    eprintln!("peak RSS {peak_mib} MiB after {sent} x 64 KiB");
    assert!(
        peak_mib < 150,
        "peak RSS {peak_mib} MiB after {sent} x 64 KiB"
    );
    assert!(left_out().unwrap_or(0) >= 500, "{sent} sent");
}

#[test]
fn searches_over_a_full_history_never_hold_the_webhook_path() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--keep-bytes", "64MiB"]);
    // 48 MiB of history where every offset begins a near match.
    let body = mib_of(b'a');
    let mut sender = RawConnection::connect(hookscope.port).unwrap();
    for _ in 0..48 {
        assert_eq!(sender.post("/big", body.as_bytes()).unwrap().0, 200);
    }
    let needle = format!("{}b", "a".repeat(1000));
    let searching = Arc::new(AtomicBool::new(true));
    let searchers: Vec<_> = (0..6)
        .map(|_| {
            let url = hookscope.api(&format!("/api/requests?q={needle}&limit=1000"));
            let searching = Arc::clone(&searching);
            thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut statuses = Vec::new();
                while searching.load(Ordering::Relaxed) {
                    match client.get(&url).send() {
                        Ok(answer) => statuses.push(answer.status().as_u16()),
                        Err(_) => statuses.push(0),
                    }
                }
                statuses
            })
        })
        .collect();
    let answers = Bystander::run_for(&hookscope.url("/"), Duration::from_secs(4), &[200]);
    searching.store(false, Ordering::Relaxed);
    let mut took: Vec<Duration> = answers.iter().map(|answer| answer.took).collect();
    took.sort();
    let median = took[took.len() / 2];
    assert!(
        median < Duration::from_millis(250),
        "webhook median {median:?}"
    );
    for searcher in searchers {
        let statuses = searcher.join().unwrap();
        assert!(
            statuses.iter().all(|status| [200, 503].contains(status)),
            "{statuses:?}"
        );
    }
    // A search finds what is there, and says when it is too long to run.
    let (status, found) = get_json(&hookscope.api("/api/requests?q=AAAA&limit=3"));
    assert_eq!((status, found.as_array().unwrap().len()), (200, 3));
    let too_long = "x".repeat(2000);
    let (status, _) = get_json(&hookscope.api(&format!("/api/requests?q={too_long}")));
    assert_eq!(status, 400);
}

#[test]
fn forward_loops_through_other_names_are_refused_at_start_up() {
    let port = common::closed_port().to_string();
    for target in [
        format!("http://0.0.0.0:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ] {
        let output = common::run(
            &[
                "listen",
                "--port",
                &port,
                "--no-admin",
                "--forward",
                &target,
            ],
            b"",
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{target}: {stderr}");
        assert!(
            stderr.contains("this listener's own address"),
            "{target}: {stderr}"
        );
    }
}

#[test]
fn two_instances_forwarding_to_each_other_answer_508_at_once() {
    let first_port = common::closed_port();
    let second = Hookscope::start(&[
        "--format",
        "quiet",
        "--forward",
        &format!("http://127.0.0.1:{first_port}/round"),
    ]);
    let first = Hookscope::start(&[
        "--format",
        "quiet",
        "--port",
        &first_port.to_string(),
        "--forward",
        &format!("http://127.0.0.1:{}/round", second.port),
    ]);
    let started = Instant::now();
    let answer = common::post_json(&first.url("/"), &alert_with(&[])).unwrap();
    assert_eq!(answer.status(), 508);
    assert!(answer.text().unwrap().contains("came back round a loop"));
    assert!(
        started.elapsed() < ANSWERED_WITHIN,
        "{:?}",
        started.elapsed()
    );
    // Each instance saw the request once from the sender's side and once come round.
    let (_, stats) = get_json(&first.api("/api/stats"));
    assert_eq!(stats["requests"], 2, "{stats}");
    assert_eq!(stats["by_status"]["508"], 2, "{stats}");
}

/// `{"tags":[1,1,...]}` of about `size` bytes: a problem every two bytes.
fn tags_of_numbers(size: usize) -> String {
    let mut body = String::from(r#"{"tags":["#);
    while body.len() < size - 4 {
        body.push_str("1,");
    }
    body.push_str("1]}");
    body
}

#[test]
fn admin_reads_cost_about_what_they_return() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--keep-bytes", "48MiB"]);
    let bystander = Bystander::start(&hookscope.url("/"));
    // A CORS simple request of 4 MiB, six at once: they take turns (one waits at most
    // 10 s for its turn, then 503), and each answer is the first problems and a count.
    let body = tags_of_numbers(4 * 1024 * 1024 - 16);
    let validators: Vec<_> = (0..6)
        .map(|_| {
            let (url, body) = (hookscope.api("/api/validate"), body.clone());
            thread::spawn(move || {
                let answer = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .unwrap()
                    .post(url)
                    .header("content-type", "text/plain")
                    .body(body)
                    .send()
                    .unwrap();
                let status = answer.status().as_u16();
                (status, answer.bytes().unwrap().len())
            })
        })
        .collect();
    let answers: Vec<(u16, usize)> = validators.into_iter().map(|v| v.join().unwrap()).collect();
    assert!(
        answers.iter().any(|(status, _)| *status == 200),
        "{answers:?}"
    );
    for (status, size) in answers {
        assert!([200, 503].contains(&status), "{status}");
        assert!(size < 64 * 1024, "a {size}-byte answer to /api/validate");
    }
    // A history of 40 MiB, exported as HAR while it is being read live.
    let big = mib_of(b'x');
    let mut sender = RawConnection::connect(hookscope.port).unwrap();
    for _ in 0..40 {
        assert_eq!(sender.post("/big", big.as_bytes()).unwrap().0, 200);
    }
    let before_export = peak_rss_kib(hookscope.pid()) / 1024;
    let har = client()
        .get(hookscope.api("/api/export.har?path=/big"))
        .send()
        .unwrap();
    assert_eq!(har.status(), 200);
    let har: serde_json::Value = serde_json::from_slice(&har.bytes().unwrap()).unwrap();
    assert_eq!(har["log"]["entries"].as_array().unwrap().len(), 40);
    let after_export = peak_rss_kib(hookscope.pid()) / 1024;
    bystander.finish(&[200]);
    assert!(
        after_export < before_export + 64,
        "exporting 40 MiB raised the peak from {before_export} to {after_export} MiB"
    );
    assert!(after_export < 250, "peak RSS {after_export} MiB");
}

#[test]
fn live_readers_that_never_read_are_bounded_in_number_and_memory() {
    let hookscope = Hookscope::start(&["--format", "quiet", "--keep-bytes", "16MiB"]);
    let admin_port: u16 = hookscope
        .api("")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut readers: Vec<TcpStream> = (0..40)
        .map(|_| {
            stalled(
                admin_port,
                "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
            )
        })
        .collect();
    let bystander = Bystander::start(&hookscope.url("/"));
    let big = mib_of(b'x');
    let mut sender = RawConnection::connect(hookscope.port).unwrap();
    for _ in 0..80 {
        assert_eq!(sender.post("/big", big.as_bytes()).unwrap().0, 200);
    }
    bystander.finish(&[200]);
    let peak_mib = peak_rss_kib(hookscope.pid()) / 1024;
    assert!(
        peak_mib < 150,
        "peak RSS {peak_mib} MiB with 40 readers that never read"
    );
    // Beyond 32 readers, a clear refusal.
    let refused = readers
        .iter_mut()
        .map(|reader| answer_on(reader, Duration::from_millis(200)))
        .filter(|answer| answer.starts_with("HTTP/1.1 503"))
        .count();
    assert_eq!(refused, 8);
}

#[test]
fn a_template_that_loops_over_the_request_runs_out_of_fuel() {
    let hookscope = Hookscope::start(&[
        "--format",
        "quiet",
        "--body",
        "{% for a in body.tags %}{% for b in body.tags %}{% for c in body.tags %}x{% endfor %}{% endfor %}{% endfor %}",
    ]);
    let bystander = Bystander::start(&hookscope.url("/"));
    // 3,000 tags: 27 billion iterations without a bound.
    let tags: Vec<String> = (0..3000).map(|n| format!("\"t{n}\"")).collect();
    let mut alert: serde_json::Value = serde_json::from_str(&alert_with(&[])).unwrap();
    alert["tags"] = serde_json::from_str(&format!("[{}]", tags.join(","))).unwrap();
    let started = Instant::now();
    let answer = common::post_json(&hookscope.url("/loop"), &alert.to_string()).unwrap();
    assert_eq!(answer.status(), 200);
    let text = answer.text().unwrap();
    assert!(
        text.starts_with("hookscope: the --body template failed"),
        "{text}"
    );
    assert!(text.contains("fuel"), "{text}");
    assert!(
        started.elapsed() < ANSWERED_WITHIN,
        "{:?}",
        started.elapsed()
    );
    bystander.finish(&[200]);
}

#[test]
fn a_template_output_is_capped() {
    // One loop of 100,000 within the fuel, each writing the whole 1 MiB body back.
    let hookscope = Hookscope::start(&[
        "--format",
        "quiet",
        "--body",
        "{% for i in range(100000) %}{{ body.pad }}{% endfor %}",
    ]);
    let body = mib_of(b'x');
    let answer = common::post_json(&hookscope.url("/big"), &body).unwrap();
    let text = answer.text().unwrap();
    assert!(text.len() < 4096, "{} bytes", text.len());
    assert!(text.contains("longer than 1048576 bytes"), "{text}");
    let peak_mib = peak_rss_kib(hookscope.pid()) / 1024;
    assert!(peak_mib < 100, "peak RSS {peak_mib} MiB");
}

#[test]
fn a_malformed_required_header_is_refused_without_showing_the_secret() {
    for given in [
        "X-Token: s3cret\u{1}value",
        "X-Token s3cretvalue",
        "X Token: s3cretvalue",
    ] {
        let output = common::run(&["listen", "--port", "0", "--require-header", given], b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--require-header"), "{stderr}");
        assert!(!stderr.contains("s3cret"), "the secret was shown: {stderr}");
    }
}

#[test]
fn the_forward_timeout_covers_the_whole_answer() {
    // An upstream that sends the head and 1.5 MiB of a 4 MiB answer, then stalls.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    // (hookscope's start-up check connects first and sends nothing.)
    thread::spawn(move || {
        for connection in upstream.incoming().take(4) {
            let Ok(mut connection) = connection else {
                break;
            };
            thread::spawn(move || {
                let mut request = [0u8; 4096];
                if !matches!(connection.read(&mut request), Ok(n) if n > 0) {
                    return;
                }
                let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 4194304\r\n\r\n".to_vec();
                answer.resize(answer.len() + 1536 * 1024, b'x');
                let _ = connection.write_all(&answer);
                // Held open, silent, until hookscope gives up on it.
                connection
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let _ = connection.read(&mut request);
            });
        }
    });
    let hookscope = Hookscope::start(&[
        "--format",
        "quiet",
        "--forward",
        &format!("http://127.0.0.1:{upstream_port}/app"),
        "--forward-timeout",
        "2s",
    ]);
    let started = Instant::now();
    let answer = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .post(hookscope.url("/"))
        .body(alert_with(&[]))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body = answer.bytes();
    let took = started.elapsed();
    assert!(body.is_err(), "the answer was cut short, not completed");
    assert!(
        took < Duration::from_secs(5),
        "the sender was held {took:?}"
    );
    drop(hookscope);
}

#[test]
fn a_stalled_stdout_holds_a_bounded_number_of_bytes() {
    let mut hookscope =
        Hookscope::start_with_stalled_stdout(&["--format", "json", "--keep-bytes", "4MiB"]);
    let port = hookscope.port;
    // 200 bodies of 1 MiB while nobody reads stdout: answers wait for the printer,
    // and what waits is bounded in bytes, not only in count (1,024 exchanges).
    let senders: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                let body = mib_of(b'x');
                let mut statuses = Vec::new();
                for _ in 0..25 {
                    let Ok(mut sender) = RawConnection::connect(port) else {
                        break;
                    };
                    let _ = sender
                        .stream()
                        .set_read_timeout(Some(Duration::from_secs(2)));
                    let answer = sender.post("/big", body.as_bytes());
                    let held_back = answer.is_err();
                    statuses.push(answer.map(|(status, _)| status));
                    if held_back {
                        break;
                    }
                }
                statuses
            })
        })
        .collect();
    let statuses: Vec<_> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    let peak_mib = peak_rss_kib(hookscope.pid()) / 1024;
    eprintln!("peak RSS {peak_mib} MiB after {} answers", statuses.len());
    assert!(
        peak_mib < 120,
        "peak RSS {peak_mib} MiB with stdout stalled"
    );
    assert!(statuses.iter().any(|status| matches!(status, Ok(200))));
    hookscope.release_stdout();
    let stopped = hookscope.stop();
    assert!(stopped.status.success());
}

/// Runs `hookscope ARGS`, returning its output and its peak resident memory in MiB,
/// read from its own `/proc/PID/status` (VmHWM) every 2 ms while it runs. (`wait4`'s
/// usage would not do: a spawned child's maximum starts from its parent's, and the
/// tests run as threads of one large process.)
fn run_measured(args: &[&str]) -> (std::process::Output, u64) {
    use std::process::{Command, Stdio};
    let child = Command::new(common::BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let watching = Arc::clone(&watching);
        thread::spawn(move || {
            let mut peak_kib = 0u64;
            while watching.load(Ordering::Relaxed) {
                let Some(hwm) = common::try_status_kib(pid, "VmHWM:") else {
                    break;
                };
                peak_kib = peak_kib.max(hwm);
                thread::sleep(Duration::from_millis(2));
            }
            peak_kib
        })
    };
    let output = child.wait_with_output().unwrap();
    watching.store(false, Ordering::Relaxed);
    (output, watcher.join().unwrap() / 1024)
}

#[test]
fn export_and_har_replay_hold_about_one_entry_not_the_file_many_times() {
    // One real record line, then 40 like it with 1 MiB bodies: a 40 MiB record.
    let record = std::env::temp_dir().join(format!("hookscope-big-{}.jsonl", std::process::id()));
    let har = record.with_extension("har");
    let hookscope = Hookscope::start(&["--format", "quiet", "--record", record.to_str().unwrap()]);
    common::post_json(&hookscope.url("/big"), &alert_with(&[])).unwrap();
    hookscope.stop();
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&record).unwrap().trim()).unwrap();
    let mut big = String::new();
    for id in 1..=40 {
        let mut line = line.clone();
        line["id"] = id.into();
        line["body"] = serde_json::json!({ "pad": "x".repeat(1024 * 1024) });
        big.push_str(&line.to_string());
        big.push('\n');
    }
    std::fs::write(&record, big).unwrap();

    let (exported, export_peak) = run_measured(&["export", record.to_str().unwrap(), "--har"]);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let document: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(document["log"]["entries"].as_array().unwrap().len(), 40);
    std::fs::write(&har, &exported.stdout).unwrap();
    drop(document);

    let closed = format!("http://127.0.0.1:{}", common::closed_port());
    let (replayed, replay_peak) = run_measured(&[
        "replay",
        har.to_str().unwrap(),
        "--to",
        &closed,
        "--timeout",
        "1s",
    ]);
    let stderr = String::from_utf8_lossy(&replayed.stderr);
    assert!(stderr.contains("replayed 40 request(s)"), "{stderr}");
    let _ = std::fs::remove_file(&record);
    let _ = std::fs::remove_file(&har);
    assert!(
        export_peak < 64,
        "export of a 40 MiB record peaked at {export_peak} MiB"
    );
    assert!(
        replay_peak < 128,
        "replay of a 40 MiB HAR peaked at {replay_peak} MiB"
    );
}

#[test]
fn http2_bodies_held_by_answers_that_wait_stay_charged_to_the_budget() {
    let hookscope = with_slow_route();
    let bystander = Bystander::start(&hookscope.url("/"));
    let url = hookscope.url("/slow");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // 10 connections x 30 streams x 1 MiB, each answer held 20 s: 300 MiB unbounded.
    let statuses = runtime.block_on(async {
        let body = bytes::Bytes::from(vec![b' '; 1024 * 1024]);
        let mut uploads = Vec::new();
        for _ in 0..10 {
            let connection = reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .unwrap();
            for _ in 0..30 {
                let request = connection.post(&url).body(body.clone()).send();
                uploads.push(tokio::spawn(tokio::time::timeout(
                    Duration::from_secs(6),
                    request,
                )));
            }
        }
        let mut statuses = Vec::new();
        for upload in uploads {
            statuses.push(match upload.await.unwrap() {
                Ok(Ok(answer)) => answer.status().as_u16(),
                Ok(Err(_)) => 0,
                Err(_) => 1, // still held after 6 s: its answer waits 20 s
            });
        }
        statuses
    });
    bystander.finish(&[200, 503]);
    let held = statuses.iter().filter(|&&status| status == 1).count();
    let deferred = statuses.iter().filter(|&&status| status == 503).count();
    assert!(
        held <= 17,
        "{held} held against a 16 MiB budget: {statuses:?}"
    );
    assert!(held + deferred >= 290, "{statuses:?}");
    let peak_mib = peak_rss_kib(hookscope.pid()) / 1024;
    assert!(peak_mib < 150, "peak RSS {peak_mib} MiB");
}

#[test]
fn half_sent_bodies_that_stall_give_way_to_a_sender_that_is_sending() {
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    // 20 bodies that declare 1 MiB (reserved as soon as a second piece arrives), send
    // 600 KiB and stall: more than the 16 MiB budget, held until they time out.
    let port = hookscope.port;
    let attackers: Vec<_> = (0..20)
        .map(|_| {
            thread::spawn(move || {
                let mut stream = stalled(port, MIB_HEAD);
                for _ in 0..6 {
                    let _ = stream.write_all(&[b' '; 100 * 1024]);
                }
                stream
            })
        })
        .collect();
    let _attackers: Vec<TcpStream> = attackers.into_iter().map(|a| a.join().unwrap()).collect();
    Bystander::run_for(&hookscope.url("/"), Duration::from_secs(3), &[200]);
}
