//! `hookscope validate` and `hookscope schema` agree on every shared test payload.

mod common;

use std::path::PathBuf;

fn payloads(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(common::payload_path(kind))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "too few {kind} payloads");
    files
}

fn schema_validator() -> jsonschema::Validator {
    let output = common::run(&["schema"], b"");
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("schema is JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn cli_says_valid(file: &PathBuf) -> bool {
    let output = common::run(&["validate", file.to_str().unwrap()], b"");
    match output.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("{file:?}: unexpected exit {other:?}"),
    }
}

fn schema_says_valid(validator: &jsonschema::Validator, file: &PathBuf) -> bool {
    match serde_json::from_slice::<serde_json::Value>(&std::fs::read(file).unwrap()) {
        Ok(instance) => validator.is_valid(&instance),
        Err(_) => false,
    }
}

#[test]
fn validator_and_schema_agree_on_every_payload() {
    let validator = schema_validator();
    for (kind, expected) in [("valid", true), ("invalid", false)] {
        for file in payloads(kind) {
            assert_eq!(
                cli_says_valid(&file),
                expected,
                "hookscope validate on {file:?}"
            );
            assert_eq!(
                schema_says_valid(&validator, &file),
                expected,
                "schema on {file:?}"
            );
        }
    }
}

#[test]
fn validate_reports_each_input_and_exits_by_the_worst() {
    let valid = common::payload_path("valid/test-alert.json");
    let invalid = common::payload_path("invalid/bad-severity.json");
    let output = common::run(
        &[
            "validate",
            valid.to_str().unwrap(),
            invalid.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("test-alert.json: valid"), "{stdout}");
    assert!(stdout.contains("bad-severity.json: invalid"), "{stdout}");
    assert!(stdout.contains("✘ /severity: expected one of INFO, LOW, MEDIUM, HIGH, CRITICAL, found string \"SEVERE\""), "{stdout}");

    let output = common::run(
        &["validate", valid.to_str().unwrap(), "/no/such/file.json"],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read /no/such/file.json"));
}

#[test]
fn validate_reads_stdin_and_speaks_json() {
    let alert = common::payload("valid/panther-docs-ipmonitoring.json");
    let output = common::run(&["validate"], &alert);
    assert_eq!(output.status.code(), Some(0));
    let output = common::run(&["validate", "--format", "json", "-"], b"{\"id\": 1}");
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["input"], "-");
    assert_eq!(report["valid"], false);
    assert_eq!(report["problems"][0]["pointer"], "/id");
}
