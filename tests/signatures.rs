//! Signature checks end to end: `hookscope send --sign` into `hookscope listen
//! --verify`, for every scheme, and what a receiver sees when something is off.

mod common;

use common::{Hookscope, client, get_json, run};

const SCHEMES: [&str; 6] = [
    "standard-webhooks:whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "github:gh-s3cret-value",
    "stripe:whsec_stripe-s3cret-value",
    "slack:slack-s3cret-value",
    "shopify:shopify-s3cret-value",
    "hmac-sha256/X-Signature/base64/sha256=:generic-s3cret-value",
];

fn send(url: &str, extra: &[&str]) -> std::process::Output {
    let mut argv = vec!["send", "--to", url, "--test", "--retries", "0"];
    argv.extend_from_slice(extra);
    run(&argv, b"")
}

#[test]
fn every_scheme_round_trips_from_send_sign_to_listen_verify() {
    for scheme in SCHEMES {
        let hookscope = Hookscope::start(&["--verify", scheme, "--format", "json"]);
        let output = send(&hookscope.url("/"), &["--sign", scheme]);
        assert!(output.status.success(), "{scheme}");
        let (_, stats) = get_json(&hookscope.api("/api/stats"));
        assert_eq!(stats["by_signature"]["valid"], 1, "{scheme}: {stats}");
        let stopped = hookscope.stop();
        let line = &stopped.json_lines()[0];
        assert_eq!(line["signature"]["result"], "valid", "{scheme}: {line}");
        let secret = scheme.rsplit(':').next().unwrap();
        for shown in [&stopped.stdout_text(), &stopped.stderr] {
            assert!(!shown.contains(secret), "{scheme}: the secret was shown");
        }
    }
}

#[test]
fn wrong_expired_missing_and_malformed_signatures_are_told_apart_and_refused() {
    let scheme = "stripe:whsec_stripe-s3cret-value";
    let hookscope = Hookscope::start(&[
        "--verify",
        scheme,
        "--require-signature",
        "--format",
        "json",
    ]);
    let url = hookscope.url("/");
    // Signed with another secret.
    let wrong = send(&url, &["--sign", "stripe:not-the-secret"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("401"));
    // Signed an hour ago: a replay.
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1))
        .timestamp()
        .to_string();
    let expired = send(&url, &["--sign", scheme, "--sign-timestamp", &hour_ago]);
    assert_eq!(expired.status.code(), Some(1));
    // No signature at all, and one that cannot be read.
    let missing = client().post(&url).body("{}").send().unwrap();
    assert_eq!(missing.status(), 401);
    assert!(
        missing
            .text()
            .unwrap()
            .contains("signature missing (stripe: no stripe-signature header)")
    );
    let malformed = client()
        .post(&url)
        .header("stripe-signature", "t=12,v1=not-hex")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(malformed.status(), 401);
    // Signed right: acknowledged.
    assert!(send(&url, &["--sign", scheme]).status.success());

    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    let by_signature = &stats["by_signature"];
    for (result, count) in [
        ("wrong", 1),
        ("outside_tolerance", 1),
        ("missing", 1),
        ("malformed", 1),
        ("valid", 1),
    ] {
        assert_eq!(by_signature[result], count, "{result}: {stats}");
    }
    let stopped = hookscope.stop();
    let lines = stopped.json_lines();
    let expired_line = &lines[1]["signature"];
    assert_eq!(expired_line["result"], "outside_tolerance");
    let skew = expired_line["skew_seconds"].as_i64().unwrap();
    assert!((-3700..=-3500).contains(&skew), "{skew}");
    assert_eq!(lines[0]["status"], 401);
    assert!(
        stopped
            .stderr
            .contains("signatures: malformed×1 missing×1 outside_tolerance×1 valid×1 wrong×1"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn a_rotated_key_with_several_signatures_passes_and_a_re_encoded_body_gets_a_hint() {
    let scheme = "github:gh-s3cret-value";
    let hookscope = Hookscope::start(&["--verify", scheme, "--format", "json"]);
    // What the sender signed: compact JSON; what arrived: the same, pretty.
    let compact = br#"{"action":"opened","number":7}"#;
    let key: hookscope::signature::Key = scheme.parse().unwrap();
    let signature = key.sign(compact, 0, "").remove(0).1;
    let pretty = "{\n  \"action\": \"opened\",\n  \"number\": 7\n}";
    client()
        .post(hookscope.url("/"))
        .header("x-hub-signature-256", signature.clone())
        .body(pretty)
        .send()
        .unwrap();
    // Standard Webhooks during a key rotation: two signatures, the second valid.
    let rotation = "standard-webhooks:whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let rotating = Hookscope::start(&["--verify", rotation, "--format", "json"]);
    let key: hookscope::signature::Key = rotation.parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    let signed = key.sign(compact, now, "msg_1");
    let valid = signed[2].1.to_str().unwrap();
    client()
        .post(rotating.url("/"))
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", now.to_string())
        .header(
            "webhook-signature",
            format!("v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= {valid}"),
        )
        .body(compact.to_vec())
        .send()
        .unwrap();
    assert_eq!(
        rotating.stop().json_lines()[0]["signature"]["result"],
        "valid"
    );

    let line = &hookscope.stop().json_lines()[0];
    assert_eq!(line["signature"]["result"], "wrong");
    assert!(
        line["signature"]["hint"]
            .as_str()
            .unwrap()
            .contains("JSON whitespace removed would match"),
        "{line}"
    );
}

#[test]
fn secrets_come_from_the_environment_or_a_file_and_are_never_shown() {
    let file = std::env::temp_dir().join(format!("hookscope-secret-{}", std::process::id()));
    std::fs::write(&file, "file-s3cret-value\n").unwrap();
    let from_file = format!("github:file:{}", file.display());
    let hookscope = Hookscope::start(&[
        "--verify", &from_file, "--format", "pretty", "--color", "never",
    ]);
    let output = send(&hookscope.url("/"), &["--sign", "github:file-s3cret-value"]);
    assert!(output.status.success());
    let (_, config) = get_json(&hookscope.api("/api/config"));
    assert!(!config.to_string().contains("file-s3cret-value"));
    let stopped = hookscope.stop();
    assert!(
        stopped.stdout_text().contains("✔ signature valid (github)"),
        "{}",
        stopped.stdout_text()
    );
    assert!(!stopped.stdout_text().contains("file-s3cret-value"));
    let _ = std::fs::remove_file(&file);

    // From the environment, for `send`.
    let hookscope = Hookscope::start(&["--verify", "slack:env-s3cret-value", "--format", "json"]);
    let status = std::process::Command::new(common::BIN)
        .args([
            "send",
            "--to",
            &hookscope.url("/"),
            "--test",
            "--retries",
            "0",
        ])
        .args(["--sign", "slack:env:HOOKSCOPE_TEST_SECRET"])
        .env("HOOKSCOPE_TEST_SECRET", "env-s3cret-value")
        .output()
        .unwrap();
    assert!(status.status.success());
    assert_eq!(
        hookscope.stop().json_lines()[0]["signature"]["result"],
        "valid"
    );
}

#[test]
fn bad_keys_stop_start_up_naming_the_flag_without_the_secret() {
    for (args, expected) in [
        (
            &["listen", "--verify", "gitlab:hunter2"][..],
            "unknown scheme \"gitlab\"",
        ),
        (
            &["listen", "--verify", "standard-webhooks:whsec_%hunter2"][..],
            "whsec_ followed by base64",
        ),
        (
            &["listen", "--verify", "github:env:HOOKSCOPE_UNSET_hunter2"][..],
            "is not set",
        ),
        (&["listen", "--require-signature"][..], "--verify"),
        (
            &[
                "send",
                "--to",
                "http://127.0.0.1:9/",
                "--test",
                "--sign",
                "nope:hunter2",
            ][..],
            "--sign",
        ),
        (
            &[
                "send",
                "--to",
                "http://127.0.0.1:9/",
                "--test",
                "--sign",
                // An ed25519 public key (RFC 8032's first): it cannot sign.
                "standard-webhooks:whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
            ][..],
            "cannot sign: give the whsk_ secret key",
        ),
        (
            &["listen", "--verify", "standard-webhooks:whsk_hunter22"][..],
            "32-byte ed25519 seed",
        ),
    ] {
        let output = run(args, b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        if !expected.contains("is not set") {
            assert!(
                !stderr.contains("hunter2"),
                "the secret was shown: {stderr}"
            );
        }
    }
}
