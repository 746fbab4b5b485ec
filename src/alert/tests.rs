use super::*;

const PANTHER_DOCS_EXAMPLE: &str =
    include_str!("../../tests/payloads/valid/panther-docs-ipmonitoring.json");

fn with(key: &str, value: &str) -> String {
    let mut alert: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(PANTHER_DOCS_EXAMPLE).unwrap();
    match value {
        "<absent>" => {
            alert.remove(key);
        }
        _ => {
            alert.insert(key.into(), serde_json::from_str(value).unwrap());
        }
    }
    serde_json::to_string(&alert).unwrap()
}

fn problems(body: &str) -> Vec<Problem> {
    validate(body.as_bytes()).problems
}

fn only_problem(body: &str) -> Problem {
    let mut found = problems(body);
    assert_eq!(found.len(), 1, "expected one problem in {body}: {found:?}");
    found.remove(0)
}

#[test]
fn panther_docs_example_is_valid() {
    let verdict = validate(PANTHER_DOCS_EXAMPLE.as_bytes());
    assert_eq!(verdict.problems, []);
    assert_eq!(verdict.warnings, []);
    assert!(verdict.is_json);
}

#[test]
fn the_test_alert_is_valid_and_round_trips() {
    let alert = Alert::test_alert(chrono::Utc::now());
    assert!(alert.check().is_valid());
    let bytes = serde_json::to_vec(&alert).unwrap();
    let back: Alert = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, alert);
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["name"], "Test Alert");
    assert!(value["runbook"].is_string());
}

#[test]
fn nullable_keys_accept_null_and_strings_only() {
    for key in ["name", "alertId", "description", "runbook", "version"] {
        assert_eq!(problems(&with(key, "null")), [], "{key}: null");
        assert_eq!(problems(&with(key, "\"x\"")), [], "{key}: string");
        let problem = only_problem(&with(key, "5"));
        assert_eq!(problem.pointer, format!("/{key}"));
        assert_eq!(problem.expected, "a string or null");
        assert_eq!(problem.found, "number 5");
    }
}

#[test]
fn non_nullable_keys_refuse_null() {
    for key in [
        "id",
        "createdAt",
        "severity",
        "type",
        "link",
        "title",
        "tags",
    ] {
        let problem = only_problem(&with(key, "null"));
        assert_eq!(problem.pointer, format!("/{key}"));
        assert_eq!(problem.found, "null");
    }
}

#[test]
fn every_key_but_alert_context_is_required() {
    for (key, _, required) in KEYS {
        let body = with(key, "<absent>");
        if required {
            let problem = only_problem(&body);
            assert_eq!(problem.pointer, format!("/{key}"));
            assert_eq!(problem.found, "nothing (missing)");
        } else {
            assert_eq!(problems(&body), []);
        }
    }
}

#[test]
fn severity_is_one_of_five_exactly() {
    for severity in SEVERITIES {
        assert_eq!(problems(&with("severity", &format!("\"{severity}\""))), []);
    }
    for bad in ["\"info\"", "\"SEVERE\"", "\"\"", "3"] {
        assert_eq!(only_problem(&with("severity", bad)).pointer, "/severity");
    }
}

#[test]
fn unknown_type_is_a_warning_not_a_problem() {
    for known in ALERT_TYPES {
        let verdict = validate(with("type", &format!("\"{known}\"")).as_bytes());
        assert!(verdict.is_valid() && verdict.warnings.is_empty());
    }
    let verdict = validate(with("type", "\"CORRELATION_RULE\"").as_bytes());
    assert!(verdict.is_valid());
    assert_eq!(verdict.warnings[0].pointer, "/type");
    assert_eq!(only_problem(&with("type", "[]")).pointer, "/type");
}

#[test]
fn unknown_keys_are_warnings_with_escaped_pointers() {
    let verdict = validate(with("a/b~c", "1").as_bytes());
    assert!(verdict.is_valid());
    assert_eq!(verdict.warnings[0].pointer, "/a~1b~0c");
}

#[test]
fn tags_are_an_array_of_strings() {
    assert_eq!(problems(&with("tags", "[]")), []);
    let problem = only_problem(&with("tags", r#"["ok", 2]"#));
    assert_eq!(problem.pointer, "/tags/1");
    assert_eq!(problem.found, "number 2");
    assert_eq!(only_problem(&with("tags", r#""a""#)).pointer, "/tags");
}

#[test]
fn alert_context_is_an_object_when_present() {
    assert_eq!(problems(&with("alertContext", "{}")), []);
    for bad in ["null", "[]", "\"x\""] {
        assert_eq!(
            only_problem(&with("alertContext", bad)).pointer,
            "/alertContext"
        );
    }
}

#[test]
fn created_at_problems_say_why() {
    let problem = only_problem(&with("createdAt", "\"2023-02-29T10:00Z\""));
    assert_eq!(problem.pointer, "/createdAt");
    assert!(
        problem.found.contains("no such date 2023-02-29"),
        "{}",
        problem.found
    );
    let problem = only_problem(&with("createdAt", "\"2024-01-01T10:00:00+0100\""));
    assert!(
        problem.found.contains("':' in the offset"),
        "{}",
        problem.found
    );
}

#[test]
fn id_must_not_be_empty() {
    assert_eq!(only_problem(&with("id", "\"\"")).pointer, "/id");
}

#[test]
fn duplicate_keys_are_problems() {
    let body = PANTHER_DOCS_EXAMPLE.replacen("\"id\"", "\"severity\": \"LOW\", \"id\"", 1);
    let problem = only_problem(&body);
    assert_eq!(problem.pointer, "/severity");
    assert_eq!(problem.found, "a duplicate key");
}

#[test]
fn whole_body_problems_name_the_byte_offset() {
    let problem = only_problem("");
    assert_eq!(
        (problem.pointer.as_str(), problem.found.as_str()),
        ("", "an empty body")
    );

    let problem = only_problem("   \n");
    assert_eq!(problem.found, "an empty body");

    let problem = only_problem(r#"{"id": "x", "#);
    assert!(
        problem.found.starts_with("JSON cut short at byte 12"),
        "{}",
        problem.found
    );

    let problem = only_problem(r#"{"id": x}"#);
    assert!(
        problem.found.starts_with("text that is not JSON at byte 7"),
        "{}",
        problem.found
    );

    let problem = only_problem("{\n\"a\": 1,\n\"b\" 2}");
    assert!(problem.found.contains("at byte 14"), "{}", problem.found);

    assert_eq!(only_problem("[1, 2]").found, "a JSON array");
    assert_eq!(only_problem("\"alert\"").found, "a JSON string");
    assert!(validate(b"[1]").is_json);
    assert!(!validate(b"nope").is_json);

    let problem = only_problem("hello");
    assert!(
        problem.found.starts_with("text that is not JSON at byte 0"),
        "{}",
        problem.found
    );

    let problem = validate(b"{\"id\": \"\xff\"}").problems.remove(0);
    assert_eq!(problem.found, "bytes that are not UTF-8 at byte 8");
}

#[test]
fn deep_nesting_is_scanned_without_recursion() {
    // alertContext is only scanned (never built into a tree), so depth costs no stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = with("alertContext", "{}").replace("{}", &format!("{{\"x\": {deep}}}"));
    let verdict = validate(body.as_bytes());
    assert!(verdict.is_valid(), "{:?}", verdict.problems);
    let cut = &body[..body.len() - 10];
    assert!(
        validate(cut.as_bytes()).problems[0]
            .found
            .starts_with("JSON cut short")
    );
    assert_eq!(only_problem(&deep).found, "a JSON array");
}

#[test]
fn found_values_are_truncated() {
    let long = format!("\"{}\"", "é".repeat(500));
    let problem = only_problem(&with("tags", &format!("[[{}]]", "1,".repeat(500) + "1")));
    assert_eq!(problem.found, "an array (1003 bytes)");
    let problem = only_problem(&with("severity", &long));
    assert!(problem.found.ends_with('…'));
}

#[test]
fn problems_display_as_one_line() {
    let problem = only_problem(&with("severity", "\"SEVERE\""));
    assert_eq!(
        problem.to_string(),
        "/severity: expected one of INFO, LOW, MEDIUM, HIGH, CRITICAL, found string \"SEVERE\""
    );
}

#[test]
fn the_key_is_alert_id_else_id_else_a_body_hash() {
    let key = inspect(PANTHER_DOCS_EXAMPLE.as_bytes()).key;
    assert_eq!(
        (key.value.as_str(), key.source, key.resent),
        (
            "b90c19e66e160e194a5b3b94ec27fb7c",
            KeySource::AlertId,
            false
        )
    );
    let key = inspect(with("alertId", "null").as_bytes()).key;
    assert_eq!(
        (key.value.as_str(), key.source),
        ("AllLogs.IPMonitoring", KeySource::Id)
    );
    let key = inspect(b"not json").key;
    assert_eq!(key.source, KeySource::BodyHash);
    assert_eq!(key, inspect(b"not json").key);
    assert_ne!(key, inspect(b"not json either").key);
    assert!(!key.is_alert());
}

#[test]
fn a_re_sent_title_marks_the_key() {
    let key = inspect(with("title", "\"[Re-sent]: New Alert\"").as_bytes()).key;
    assert!(key.resent);
    assert!(
        !inspect(with("title", "\"Re-sent: x\"").as_bytes())
            .key
            .resent
    );
}

#[test]
fn lone_surrogates_are_json_but_not_alert_text() {
    let alert = r#"{"id":"A\ud800","createdAt":"2020-10-13T03:35:39Z","severity":"INFO","type":"RULE","link":"l","title":"t","name":null,"alertId":null,"description":null,"runbook":null,"tags":["ok\u00e9"],"version":null}"#;
    let verdict = validate(alert.as_bytes());
    assert!(verdict.is_json);
    assert_eq!(verdict.problems.len(), 1, "{:?}", verdict.problems);
    assert_eq!(verdict.problems[0].pointer, "/id");
    assert!(verdict.problems[0].found.contains("lone surrogate"));

    let key = validate(br#"{"\udc00": 1}"#);
    assert!(key.is_json);
    assert!(!key.is_valid());
}

#[test]
fn key_index_matches_the_table() {
    for (index, (name, _, _)) in KEYS.iter().enumerate() {
        assert_eq!(key_index(name), Some(index), "{name}");
    }
    assert_eq!(key_index("Id"), None);
    assert_eq!(key_index("alertContext "), None);
}

#[test]
fn plain_string_arrays_are_told_apart_without_a_parser() {
    for raw in [
        r#"[]"#,
        r#"[ ]"#,
        r#"["a"]"#,
        r#"[ "a" , "b b","" ]"#,
        "[\n\t\"x\"\r\n]",
    ] {
        assert!(only_plain_strings(raw), "{raw}");
    }
    // Not plain strings, or escapes: the full check decides.
    for raw in [
        r#"[1]"#,
        r#"["a",2]"#,
        r#"[null]"#,
        r#"[["a"]]"#,
        r#"["a\"b"]"#,
        r#"["\u0041"]"#,
        r#"[{"a":"b"}]"#,
    ] {
        assert!(!only_plain_strings(raw), "{raw}");
    }
}

#[test]
fn tags_keep_their_verdicts_on_the_fast_path_and_off_it() {
    assert!(problems(&with("tags", r#"["a", "b"]"#)).is_empty());
    assert!(problems(&with("tags", r#"["a\"quoted\"", "\u0041"]"#)).is_empty());
    // A lone surrogate cannot go through serde_json's Value: spliced in as text.
    let body = with("tags", "[]").replace(r#""tags":[]"#, r#""tags":["a", 2, "\ud800"]"#);
    let found = problems(&body);
    let pointers: Vec<&str> = found.iter().map(|p| p.pointer.as_str()).collect();
    assert_eq!(pointers, ["/tags/1", "/tags/2"]);
}

/// What each path makes of a text: the scanner's (when it reads it) and serde_json's.
fn both_paths(text: &str) -> (Option<Checked<'_>>, Option<Checked<'_>>) {
    let mut checker = Checker::default();
    let fast = scan::members(text, |key, raw| checker.member(key, raw)).map(|()| checker.finish());
    (fast, serde_json::from_str::<Checked>(text).ok())
}

fn same(fast: &Checked<'_>, slow: &Checked<'_>) -> bool {
    fn identity(checked: &Checked<'_>) -> (Option<String>, Option<String>, bool) {
        let Identity {
            alert_id,
            id,
            resent,
        } = &checked.identity;
        (
            alert_id.as_deref().map(str::to_owned),
            id.as_deref().map(str::to_owned),
            *resent,
        )
    }
    fast.verdict == slow.verdict && identity(fast) == identity(slow)
}

#[test]
fn every_valid_payload_takes_the_fast_path_and_it_agrees() {
    let mut read = 0;
    for kind in ["valid", "invalid"] {
        let directory = format!("{}/tests/payloads/{kind}", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(&directory).unwrap().flatten() {
            let path = entry.path();
            let text = std::fs::read_to_string(&path).unwrap();
            match both_paths(&text) {
                (Some(fast), Some(slow)) => assert!(same(&fast, &slow), "{}", path.display()),
                (Some(_), None) => {
                    panic!(
                        "the scanner read what serde_json refuses: {}",
                        path.display()
                    )
                }
                (None, _) => assert!(
                    kind == "invalid",
                    "a valid payload left to serde_json: {}",
                    path.display()
                ),
            }
            read += 1;
        }
    }
    assert!(read >= 10, "{read} payloads");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

    /// Any text the scanner reads, serde_json reads too, with the same verdict:
    /// real alerts with bytes that matter to JSON put in, taken out or swapped.
    #[test]
    fn the_fast_path_reads_only_what_serde_json_reads_and_judges_it_the_same(
        at in 0usize..2000,
        cut in 0usize..4,
        put in proptest::collection::vec(proptest::sample::select(&[
            "\"", "\\", "{", "}", "[", "]", ",", ":", " ", "\t", "\n", "0", "-", ".", "e", "+",
            "1", "u", "\\u00e9", "\\ud800", "t", "true", "null", "f", "\u{1}", "x", "é",
        ][..]), 0..3),
    ) {
        let base = PANTHER_DOCS_EXAMPLE;
        let mut at = at % (base.len() + 1);
        while !base.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + cut).min(base.len());
        while !base.is_char_boundary(end) {
            end += 1;
        }
        let text = format!("{}{}{}", &base[..at], put.concat(), &base[end..]);
        let (fast, slow) = both_paths(&text);
        if let Some(fast) = fast {
            let slow = slow.expect("serde_json reads what the scanner read");
            proptest::prop_assert!(same(&fast, &slow), "{text}");
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20000))]

    /// The same, for short runs of JSON's tokens, well-formed and not, as the value
    /// of a member: where the scanner's grammar and serde_json's could part.
    #[test]
    fn the_fast_path_and_serde_json_agree_on_any_run_of_tokens(
        tokens in proptest::collection::vec(proptest::sample::select(&[
            "{", "}", "[", "]", ",", ":", " ", "\n", "\"a\"", "\"\"", "\"\\x\"", "\"\\n\\/\"",
            "\"\\u00e9\"", "\"\\u12g4\"", "\"\\u12\"", "\"\t\"", "\"é\"", "0", "01", "-", "-0",
            "1.", "1.5", ".5", "1e5", "1E+5", "1e", "2e-", "true", "false", "null", "nul",
            "truex", "x", "\"\\\"\"", "\"\\",
        ][..]), 1..7),
    ) {
        let text = format!("{{\"alertContext\": {}, \"id\": \"x\"}}", tokens.concat());
        let (fast, slow) = both_paths(&text);
        match (fast, slow) {
            (Some(fast), Some(slow)) => proptest::prop_assert!(same(&fast, &slow), "{text}"),
            (Some(_), None) => proptest::prop_assert!(false, "only the scanner reads {text}"),
            (None, _) => {}
        }
    }
}
