//! `--schema`: bodies checked against any JSON Schema, per path, with the problems in
//! the same pointer / expected / found form as Panther's check; tried on three real
//! public schemas (tests/fixtures/schemas/README.md says where they come from).

mod common;

use std::path::PathBuf;

use common::{Hookscope, client, get_json, payload, payload_path, run};

fn fixture(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schemas")
        .join(path)
        .display()
        .to_string()
}

fn validate(schema: &str, input: &str) -> (i32, String) {
    let output = run(&["validate", "--schema", schema, input], b"");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn githubs_ping_schema_from_octokit_checks_a_real_payload_and_a_broken_one() {
    let schema = fixture("github/ping.schema.json");
    let (code, out) = validate(&schema, &fixture("github/ping.payload.json"));
    assert_eq!(code, 0, "{out}");
    let mut broken: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("github/ping.payload.json")).unwrap(),
    )
    .unwrap();
    broken["hook_id"] = "12".into();
    broken["hook"]["config"]
        .as_object_mut()
        .unwrap()
        .remove("url");
    let file = std::env::temp_dir().join(format!("hookscope-ping-{}.json", std::process::id()));
    std::fs::write(&file, broken.to_string()).unwrap();
    let (code, out) = validate(&schema, file.to_str().unwrap());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("/hook_id: expected an integer, found string \"12\""),
        "{out}"
    );
    assert!(
        out.contains("/hook/config: expected key \"url\" (required), found nothing (missing)"),
        "{out}"
    );
    let _ = std::fs::remove_file(file);
}

#[test]
fn the_cloudevents_schema_checks_events() {
    let schema = fixture("cloudevents/cloudevents.schema.json");
    assert_eq!(validate(&schema, &fixture("cloudevents/event.json")).0, 0);
    let output = run(
        &["validate", "--schema", &schema, "--format", "json", "-"],
        br#"{"specversion":"1.0","id":"","type":"x"}"#,
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let pointers: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"") && pointers.contains(&"/id"),
        "{report}"
    );
}

#[test]
fn panthers_published_schema_agrees_with_the_panther_check() {
    let printed = run(&["schema"], b"");
    let schema =
        std::env::temp_dir().join(format!("hookscope-panther-{}.json", std::process::id()));
    std::fs::write(&schema, &printed.stdout).unwrap();
    let schema = schema.to_str().unwrap().to_owned();
    for valid in ["panther-docs-ipmonitoring", "policy-nulls", "test-alert"] {
        let path = payload_path(&format!("valid/{valid}.json"));
        assert_eq!(validate(&schema, path.to_str().unwrap()).0, 0, "{valid}");
    }
    for invalid in [
        "array-not-object",
        "bad-severity",
        "tag-not-string",
        "tags-missing",
        "title-null",
        "type-not-string",
        "not-json",
    ] {
        let path = payload_path(&format!("invalid/{invalid}.json"));
        let path = path.to_str().unwrap();
        assert_eq!(
            validate(&schema, path).0,
            1,
            "{invalid} with the schema file"
        );
        assert_eq!(
            validate("panther", path).0,
            1,
            "{invalid} with the Panther check"
        );
    }
    let _ = std::fs::remove_file(schema);
}

#[test]
fn each_path_gets_its_schema_and_the_json_line_says_which() {
    let ping = fixture("github/ping.schema.json");
    let hookscope = Hookscope::start(&[
        "--schema-route",
        &format!("/github={ping}"),
        "--schema-route",
        "/free=none",
        "--format",
        "json",
    ]);
    let github_payload = std::fs::read(fixture("github/ping.payload.json")).unwrap();
    for (path, body) in [
        ("/github", github_payload.clone()),
        ("/github/again", br#"{"zen": 1}"#.to_vec()),
        ("/free", b"anything at all".to_vec()),
        ("/panther", payload("valid/panther-docs-ipmonitoring.json")),
    ] {
        client()
            .post(hookscope.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
    }
    let (_, stats) = get_json(&hookscope.api("/api/stats"));
    assert_eq!(stats["by_verdict"]["valid"], 2, "{stats}");
    let lines = hookscope.stop().json_lines();
    let seen: Vec<(String, serde_json::Value)> = lines
        .iter()
        .map(|l| {
            (
                l["schema"].as_str().unwrap().to_owned(),
                l["verdict"]["valid"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ping.schema.json".to_owned(), true.into()),
            ("ping.schema.json".to_owned(), false.into()),
            ("none".to_owned(), serde_json::Value::Null),
            ("panther".to_owned(), true.into()),
        ]
    );
}

#[test]
fn unusable_schemas_stop_start_up_naming_the_flag() {
    for (args, expected) in [
        (
            vec!["listen", "--schema", "/no/such/schema.json"],
            "--schema",
        ),
        (
            vec!["listen", "--schema-route", "/x=/no/such.json"],
            "--schema-route",
        ),
        (
            vec!["listen", "--schema-route", "no-slash=none"],
            "must start with '/'",
        ),
        (
            vec!["validate", "--schema", "/no/such/schema.json", "-"],
            "cannot read the schema",
        ),
    ] {
        let output = run(&args, b"{}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let not_a_schema =
        std::env::temp_dir().join(format!("hookscope-bad-schema-{}.json", std::process::id()));
    std::fs::write(&not_a_schema, r#"{"type": 12}"#).unwrap();
    let output = run(&["listen", "--schema", not_a_schema.to_str().unwrap()], b"");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Where the mistake is in the user's file, not a path inside the meta-schema.
    assert!(
        stderr.contains("not a valid JSON Schema: at /type:") && !stderr.contains("anyOf"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(not_a_schema);
}

#[test]
fn rules_reached_through_a_ref_are_worded_as_panthers_checks_are() {
    let schema =
        std::env::temp_dir().join(format!("hookscope-ref-schema-{}.json", std::process::id()));
    std::fs::write(
        &schema,
        r##"{"$defs": {"name": {"type": "string"}, "level": {"enum": ["low", "high"]}},
            "properties": {"name": {"$ref": "#/$defs/name"}, "level": {"$ref": "#/$defs/level"}}}"##,
    )
    .unwrap();
    let output = run(
        &["validate", "--schema", schema.to_str().unwrap(), "-"],
        br#"{"name": 7, "level": "mid"}"#,
    );
    assert_eq!(output.status.code(), Some(1));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.contains("/name: expected a string, found number 7"),
        "{shown}"
    );
    assert!(
        shown.contains(r#"/level: expected one of ["low","high"], found string "mid""#),
        "{shown}"
    );
    assert!(!shown.contains("the schema's"), "{shown}");
    let _ = std::fs::remove_file(schema);
}
