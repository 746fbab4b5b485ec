//! Attacks a stranger who found the tunnel's URL can make cheaply, each with a
//! well-behaved sender beside it: the sender is answered within 2 s throughout, and
//! hookscope's peak memory (VmHWM) stays within a bound. Loopback only, bounded
//! counts and durations.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{alert_with, peak_rss_kib, Hookscope};

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
    status: Option<u16>,
    took: Duration,
    error: Option<String>,
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
            while keep_going.load(Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(alert_with(&[("alertId", &format!("bystander-{n}"))]))
                    .send();
                answers.push(match answer {
                    Ok(answer) => Answer {
                        status: Some(answer.status().as_u16()),
                        took: started.elapsed(),
                        error: None,
                    },
                    Err(error) => Answer {
                        status: None,
                        took: started.elapsed(),
                        error: Some(error.to_string()),
                    },
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
                        .is_some_and(|status| allowed.contains(&status))
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

const MIB_HEAD: &str =
    "POST /stall HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n";

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
    let hookscope = Hookscope::start(&[
        "--format",
        "quiet",
        "--route",
        "/slow=200@20s",
        "--keep-bytes",
        "4MiB",
    ]);
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
