//! A bounded random-input harness (cargo-fuzz needs a nightly toolchain, which CI
//! does not have): seeded mutations of real alerts and requests, thrown at
//! `validate` in-process and at the whole request path of the real binary.
//! A failure prints its seed; set HOOKSCOPE_FUZZ_SEED to replay it.

mod common;

use common::{
    Hookscope, Rng, assert_never_5xx, assert_terminal_safe, client, is_json_text, payload,
};

fn seed() -> u64 {
    std::env::var("HOOKSCOPE_FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x686f_6f6b)
}

fn corpus() -> Vec<Vec<u8>> {
    let mut corpus = Vec::new();
    for kind in ["valid", "invalid"] {
        let dir = common::payload_path(kind);
        for entry in std::fs::read_dir(dir).unwrap() {
            corpus.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    corpus
}

/// Bytes that tend to matter to JSON, HTTP and terminals.
const INTERESTING: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"\\u0000",
    b"\\ud800",
    b"\x1b[31m",
    b"\x1b]8;;http://x\x1b\\",
    b"\xe2\x80\xae",
    b"\xc2\x9b",
    b"\x7f",
    b"\r\n",
    b"\r\n\r\n",
    b"\x00",
    b"\xff",
    b"1e999",
    b"-0",
    b"9999999999999999999999",
];

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let at = at.min(data.len() - 1);
                data[at] ^= 1 << rng.below(8);
            }
            1 => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            2 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(at..at, piece.iter().copied());
            }
            3 => {
                let len = rng.below(8);
                data.splice(at..at, rng.bytes(len));
            }
            4 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len());
                let end = (from + rng.below(64)).min(other.len());
                data.splice(at..at, other[from..end].iter().copied());
            }
            _ => data.truncate(at),
        }
    }
    data
}

#[test]
fn validate_survives_twenty_thousand_mutated_alerts() {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let corpus = corpus();
    let (mut json, mut valid) = (0, 0);
    for case in 0..20_000 {
        let original = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, original, &corpus);
        let verdict = hookscope::validate(&input);
        let is_json = is_json_text(&input);
        assert_eq!(
            verdict.is_json,
            is_json,
            "seed {seed} case {case}: {:?}",
            String::from_utf8_lossy(&input)
        );
        json += usize::from(is_json);
        valid += usize::from(verdict.is_valid());
    }
    // The mutations must reach the interesting part of the input space.
    assert!(json > 1000 && valid > 100, "json {json}, valid {valid}");
}

fn request(body: &[u8], path: &str) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Panther-Test: yes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

#[test]
fn the_request_path_survives_mutated_requests_and_prints_only_safe_text() {
    let seed = seed();
    let record = std::env::temp_dir().join(format!("hookscope-fuzz-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&record);
    let hookscope = Hookscope::start(&[
        "--format",
        "pretty",
        "--color",
        "never",
        "--no-admin",
        "--header-read-timeout",
        "2s",
        "--record",
        record.to_str().unwrap(),
    ]);
    let corpus = corpus();
    assert_never_5xx(hookscope.port, seed, 4, 500, move |rng, case| {
        let original = &corpus[rng.below(corpus.len())];
        let body = mutate(rng, original, &corpus);
        let path = ["/", "/a/b?c=d", "/\x1b[2J", "/%1b%5b31m"][rng.below(4)];
        let raw = request(&body, path);
        // Half of the cases mangle the head and the framing too.
        if case % 2 == 1 {
            mutate(rng, &raw, &corpus)
        } else {
            raw
        }
    });
    let answer = client()
        .post(hookscope.url("/"))
        .body(payload("valid/test-alert.json"))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);

    let stopped = hookscope.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert_terminal_safe(&stopped.stdout_text());
    let summary = stopped
        .stderr
        .lines()
        .find(|line| line.contains("summary:"))
        .unwrap();
    let recorded = std::fs::read_to_string(&record).unwrap().lines().count();
    assert!(
        summary.contains(&format!("requests: {recorded},")),
        "{recorded} record lines, {summary}"
    );
    assert!(
        recorded > 500,
        "too few requests reached hookscope: {recorded}"
    );
}
