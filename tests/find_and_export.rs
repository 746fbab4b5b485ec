//! Finding exchanges on the server (`/api/requests` filters) and taking them away as
//! HAR 1.2: from the admin API, from `hookscope export`, and back in with `replay`.

mod common;

use std::path::PathBuf;

use common::{Hookscope, alert_with, client, get_json, post_json, run};

fn ids(url: &str) -> Vec<u64> {
    let (status, list) = get_json(url);
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_u64().unwrap())
        .collect()
}

fn har_schema() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schemas/har/har.json")
        .display()
        .to_string()
}

#[test]
fn the_server_finds_by_status_text_alert_severity_path_and_problems() {
    let hookscope = Hookscope::start(&["--route", "/flaky=503", "--format", "quiet"]);
    assert_eq!(
        post_json(
            &hookscope.url("/panther"),
            &alert_with(&[
                ("alertId", "a-1"),
                ("severity", "HIGH"),
                ("title", "Disk full on db-1")
            ])
        )
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        post_json(
            &hookscope.url("/flaky/x"),
            &alert_with(&[
                ("alertId", "a-2"),
                ("severity", "LOW"),
                ("title", "Login from Paris")
            ])
        )
        .unwrap()
        .status(),
        503
    );
    assert_eq!(
        post_json(&hookscope.url("/panther"), r#"{"not":"an alert"}"#)
            .unwrap()
            .status(),
        200
    );
    let api = |query: &str| ids(&hookscope.api(&format!("/api/requests?{query}")));
    assert_eq!(api("status=5xx"), [2]);
    assert_eq!(api("status=200"), [3, 1]);
    assert_eq!(api("q=DISK%20FULL"), [1]);
    assert_eq!(api("alert=a-2"), [2]);
    assert_eq!(api("severity=high"), [1]);
    assert_eq!(api("path=/flaky"), [2]);
    assert_eq!(api("problems=true"), [3, 2]);
    assert_eq!(api("verdict=invalid&method=post"), [3]);
    for bad in ["status=6xx", "problems=maybe", "verdict=perhaps", "since=x"] {
        let (status, error) = get_json(&hookscope.api(&format!("/api/requests?{bad}")));
        assert_eq!(status, 400, "{bad}");
        assert!(error["error"].is_string());
    }
}

#[test]
fn finding_among_ten_thousand_kept_exchanges_stays_quick() {
    let hookscope = Hookscope::start(&["--keep", "10000", "--format", "quiet"]);
    let body = alert_with(&[
        ("alertId", "bulk"),
        ("severity", "INFO"),
        ("title", "routine"),
    ]);
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let (url, body) = (hookscope.url("/"), body.clone());
            scope.spawn(move || {
                for n in 0..1250 {
                    let body = if worker == 3 && n == 700 {
                        alert_with(&[
                            ("alertId", "needle"),
                            ("severity", "CRITICAL"),
                            ("title", "the one to find"),
                        ])
                    } else {
                        body.clone()
                    };
                    post_json(&url, &body).unwrap().status();
                }
            });
        }
    });
    let started = std::time::Instant::now();
    let found = ids(&hookscope.api("/api/requests?q=the%20one%20to%20find&limit=10000"));
    let took = started.elapsed();
    assert_eq!(found.len(), 1);
    assert!(
        took < std::time::Duration::from_secs(2),
        "{took:?} to search 10,000"
    );
    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(stats["kept"], 10000);
}

#[test]
fn the_filtered_set_exports_as_valid_har_and_replays_from_it() {
    let record = std::env::temp_dir().join(format!("hookscope-har-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&record);
    let hookscope = Hookscope::start(&[
        "--record",
        record.to_str().unwrap(),
        "--script",
        "503,200",
        "--format",
        "quiet",
    ]);
    let body = alert_with(&[
        ("alertId", "har-1"),
        ("severity", "MEDIUM"),
        ("title", "exported"),
    ]);
    assert_eq!(
        post_json(&hookscope.url("/alerts?x=1"), &body)
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        post_json(&hookscope.url("/alerts?x=1"), &body)
            .unwrap()
            .status(),
        200
    );
    let response = client()
        .get(hookscope.api("/api/export.har?status=5xx"))
        .send()
        .unwrap();
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("hookscope.har")
    );
    let document: serde_json::Value = response.json().unwrap();
    let entries = document["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "only the filtered one");
    assert_eq!(entries[0]["response"]["status"], 503);
    assert_eq!(
        entries[0]["request"]["url"],
        format!("{}/alerts?x=1", hookscope.url(""))
    );
    assert_eq!(entries[0]["request"]["postData"]["text"], body);
    drop(hookscope);

    // The same from the command line, checked against the HAR 1.2 schema.
    let output = run(&["export", record.to_str().unwrap(), "--har"], b"");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let har_file = record.with_extension("har");
    std::fs::write(&har_file, &output.stdout).unwrap();
    let check = run(
        &[
            "validate",
            "--schema",
            &har_schema(),
            har_file.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["log"]["version"], "1.2");
    assert_eq!(document["log"]["entries"].as_array().unwrap().len(), 2);

    // And back: replay reads a HAR file as well as a record.
    let target = Hookscope::start(&["--format", "json"]);
    let replayed = run(
        &[
            "replay",
            har_file.to_str().unwrap(),
            "--to",
            &target.url(""),
        ],
        b"",
    );
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let lines = target.stop().json_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["path"], "/alerts");
    assert_eq!(lines[0]["query"], "x=1");
    assert_eq!(lines[0]["verdict"]["valid"], true);
    let no_target = run(&["replay", har_file.to_str().unwrap()], b"");
    assert_eq!(no_target.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_target.stderr).contains("give --to"));
    // HAR is the one format: saying so is optional.
    let no_format = run(&["export", record.to_str().unwrap()], b"");
    assert_eq!(no_format.status.code(), Some(0));
    assert_eq!(no_format.stdout, output.stdout, "the same HAR");
    let _ = std::fs::remove_file(&record);
    let _ = std::fs::remove_file(&har_file);
}

#[test]
fn the_alerts_view_groups_attempts_into_deliveries_with_their_state() {
    let hookscope = Hookscope::start(&["--script", "503*2,200", "--format", "quiet"]);
    let retried = alert_with(&[
        ("alertId", "retried"),
        ("severity", "HIGH"),
        ("title", "three attempts"),
    ]);
    for _ in 0..3 {
        post_json(&hookscope.url("/"), &retried).unwrap().status();
    }
    post_json(
        &hookscope.url("/"),
        &alert_with(&[
            ("alertId", "failing"),
            ("severity", "LOW"),
            ("title", "one attempt"),
        ]),
    )
    .unwrap()
    .status();
    post_json(&hookscope.url("/"), r#"{"no": "alert"}"#)
        .unwrap()
        .status();
    let (status, deliveries) = get_json(&hookscope.api("/api/alerts"));
    assert_eq!(status, 200);
    let deliveries = deliveries.as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    assert_eq!(deliveries[0]["key"], "failing");
    assert_eq!(deliveries[0]["state"], "never acked");
    assert_eq!(deliveries[1]["key"], "retried");
    assert_eq!(deliveries[1]["state"], "delivered after 3 attempts");
    let attempts = deliveries[1]["attempts"].as_array().unwrap();
    let outcomes: Vec<&str> = attempts
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["503", "503", "200"]);
    assert!(attempts[0]["gap_ms"].is_null() && attempts[2]["gap_ms"].as_f64().is_some());
    let (_, filtered) = get_json(&hookscope.api("/api/alerts?severity=low"));
    assert_eq!(filtered.as_array().unwrap().len(), 1);
}

#[test]
fn edited_requests_are_checked_sent_and_marked_and_a_found_set_replays_in_order() {
    let hookscope = Hookscope::start(&["--route", "/down=503", "--format", "quiet"]);
    post_json(
        &hookscope.url("/down"),
        &alert_with(&[("alertId", "d-1"), ("severity", "LOW"), ("title", "first")]),
    )
    .unwrap()
    .status();
    post_json(
        &hookscope.url("/down"),
        &alert_with(&[("alertId", "d-2"), ("severity", "LOW"), ("title", "second")]),
    )
    .unwrap()
    .status();
    post_json(
        &hookscope.url("/up"),
        &alert_with(&[("alertId", "u-1"), ("severity", "LOW"), ("title", "fine")]),
    )
    .unwrap()
    .status();

    let checked: serde_json::Value = client()
        .post(hookscope.api("/api/validate"))
        .body(r#"{"title": 7}"#)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(checked["valid"], false);
    assert!(
        checked["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pointer"] == "/title")
    );

    let edited = serde_json::json!({
        "method": "POST",
        "url": hookscope.url("/up/edited"),
        "headers": [["content-type", "application/json"]],
        "body": alert_with(&[("alertId", "edited"), ("severity", "HIGH"), ("title", "changed by hand")]),
        "from": 1,
    });
    let sent = client()
        .post(hookscope.api("/api/send"))
        .json(&edited)
        .send()
        .unwrap();
    assert_eq!(sent.status(), 200);
    let landed = &get_json(&hookscope.api("/api/requests?path=/up/edited")).1[0];
    assert_eq!(landed["headers"]["x-hookscope-replay"], "1");
    assert_eq!(landed["body"]["alertId"], "edited");
    let mut into_admin = edited.clone();
    into_admin["url"] = hookscope.api("/api/requests").into();
    let refused = client()
        .post(hookscope.api("/api/send"))
        .json(&into_admin)
        .send()
        .unwrap();
    assert_eq!(refused.status(), 400);

    let target = Hookscope::start(&["--format", "json"]);
    let replayed: serde_json::Value = client()
        .post(hookscope.api("/api/replay?status=503"))
        .json(&serde_json::json!({"to": target.url("")}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let ids: Vec<u64> = replayed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2], "the found set, oldest first");
    let lines = target.stop().json_lines();
    let keys: Vec<&str> = lines
        .iter()
        .map(|l| l["body"]["alertId"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["d-1", "d-2"]);
}
