//! Property tests: arbitrary input never panics the parsers, and what can round-trip does.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::is_json_text;

use hookscope::alert::parse_aws_datetime;
use hookscope::values::{parse_duration, parse_size};
use hookscope::{Script, Step, validate};
use proptest::prelude::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------- validator

fn docs_alert() -> Value {
    json!({
        "id": "AllLogs.IPMonitoring",
        "createdAt": "2020-10-13T03:35:39Z",
        "severity": "INFO",
        "type": "RULE",
        "link": "https://runpanther.io/alerts/b90c19e66e160e194a5b3b94ec27fb7c",
        "title": "New Alert: Suspicious traffic detected from [123.123.123.123]",
        "name": "Monitor Suspicious IPs",
        "alertId": "b90c19e66e160e194a5b3b94ec27fb7c",
        "description": "This rule alerts on any activity outside of our IP address whitelist",
        "runbook": "",
        "tags": ["Network Monitoring", "Threat Intel"],
        "version": "CJm9PiaXV0q8U7Qhg3HcSw9xo0ZWZwMm",
        "alertContext": {"ip": "123.123.123.123", "actions": ["ssh", "scan"]}
    })
}

/// The keys the published schema describes, in its order.
fn fields() -> &'static [String] {
    static FIELDS: OnceLock<Vec<String>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let schema: Value = serde_json::from_str(hookscope::alert::JSON_SCHEMA).unwrap();
        schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    })
}

/// JSON values of every kind, including the ones the schema singles out.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("INFO"),
            Just("CRITICAL"),
            Just("RULE"),
            Just("POLICY"),
            Just("2024-02-29T12:00Z"),
            Just("2023-02-29T12:00Z"),
            Just("2024-01-01T00:00:00+0100"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Replace(usize, Value),
    Add(String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..fields().len()).prop_map(Mutation::Remove),
        (0..fields().len(), any_json()).prop_map(|(field, value)| Mutation::Replace(field, value)),
        ("[a-zA-Z]{1,8}", any_json()).prop_map(|(key, value)| Mutation::Add(key, value)),
    ]
}

fn schema_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(hookscope::alert::JSON_SCHEMA).expect("schema is JSON");
        jsonschema::validator_for(&schema).expect("schema compiles")
    })
}

proptest! {
    #[test]
    fn validate_never_panics_and_knows_what_is_json(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let verdict = validate(&body);
        let is_json = is_json_text(&body);
        prop_assert_eq!(verdict.is_json, is_json);
        if !is_json {
            prop_assert!(!verdict.is_valid());
        }
    }

    #[test]
    fn validate_never_panics_on_json_like_text(body in r#"[{}\[\]":,a-zA-Z0-9 .\\-]{0,200}"#) {
        let _ = validate(body.as_bytes());
    }

    #[test]
    fn validator_agrees_with_the_published_schema(mutations in prop::collection::vec(mutation(), 0..4)) {
        let mut alert = docs_alert();
        let object = alert.as_object_mut().unwrap();
        for mutation in &mutations {
            match mutation {
                Mutation::Remove(field) => { object.remove(&fields()[*field]); }
                Mutation::Replace(field, value) => { object.insert(fields()[*field].clone(), value.clone()); }
                Mutation::Add(key, value) => { object.insert(key.clone(), value.clone()); }
            }
        }
        let body = serde_json::to_vec(&alert).unwrap();
        let ours = validate(&body);
        let schema = schema_validator();
        prop_assert_eq!(
            ours.is_valid(),
            schema.is_valid(&alert),
            "{} problems {:?}", alert, ours.problems
        );
    }
}

// ---------------------------------------------------------------- AWSDateTime

/// An independent reading of the AWSDateTime grammar: slices and a civil-calendar
/// formula instead of a scanner and chrono. Returns Unix seconds and nanoseconds.
fn reference_aws_datetime(text: &str) -> Option<(i64, u32)> {
    fn number(bytes: Option<&[u8]>) -> Option<i64> {
        let bytes = bytes?;
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(bytes.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }
    fn days_in_month(year: i64, month: i64) -> i64 {
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        match month {
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 31,
        }
    }
    // Howard Hinnant's days_from_civil.
    fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    let b = text.as_bytes();
    let at = |i: usize| b.get(i).copied();
    if at(4) != Some(b'-') || at(7) != Some(b'-') || at(10) != Some(b'T') || at(13) != Some(b':') {
        return None;
    }
    let year = number(b.get(0..4))?;
    let month = number(b.get(5..7))?;
    let day = number(b.get(8..10))?;
    let hour = number(b.get(11..13))?;
    let minute = number(b.get(14..16))?;
    let mut rest = b.get(16..)?;
    let (mut second, mut nanos) = (0, 0u32);
    if rest.first() == Some(&b':') {
        second = number(rest.get(1..3))?;
        rest = &rest[3..];
        if rest.first() == Some(&b'.') {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=9).contains(&digits) {
                return None;
            }
            let fraction = number(rest.get(1..1 + digits))?;
            nanos = (fraction * 10i64.pow(9 - digits as u32)) as u32;
            rest = &rest[1 + digits..];
        }
    }
    let offset = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (hours, minutes, seconds) = match tail.len() {
                5 if tail[2] == b':' => (number(tail.get(0..2))?, number(tail.get(3..5))?, 0),
                8 if tail[2] == b':' && tail[5] == b':' => (
                    number(tail.get(0..2))?,
                    number(tail.get(3..5))?,
                    number(tail.get(6..8))?,
                ),
                _ => return None,
            };
            if hours > 23 || minutes > 59 || seconds > 59 {
                return None;
            }
            let total = hours * 3600 + minutes * 60 + seconds;
            if *sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    let date_ok = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    if !date_ok || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some((local - offset, nanos))
}

/// Timestamps near the grammar's edges, most of them well-formed.
fn timestamp() -> impl Strategy<Value = String> {
    let offset = prop_oneof![
        Just("Z".to_owned()),
        (
            prop::sample::select(vec!['+', '-']),
            0..26u32,
            0..62u32,
            prop::option::of(0..62u32)
        )
            .prop_map(|(sign, h, m, s)| match s {
                Some(s) => format!("{sign}{h:02}:{m:02}:{s:02}"),
                None => format!("{sign}{h:02}:{m:02}"),
            }),
        "[+-]?[0-9:]{0,6}",
    ];
    (
        0..10_000u32,
        0..14u32,
        0..33u32,
        0..26u32,
        0..62u32,
        prop::option::of((0..62u32, prop::option::of("[0-9]{0,10}"))),
        offset,
    )
        .prop_map(|(year, month, day, hour, minute, seconds, offset)| {
            let seconds = match seconds {
                None => String::new(),
                Some((s, None)) => format!(":{s:02}"),
                Some((s, Some(fraction))) => format!(":{s:02}.{fraction}"),
            };
            format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}{seconds}{offset}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn aws_datetime_matches_the_reference(text in timestamp()) {
        let ours = parse_aws_datetime(&text)
            .ok()
            .map(|parsed| (parsed.timestamp(), parsed.timestamp_subsec_nanos()));
        prop_assert_eq!(ours, reference_aws_datetime(&text), "{}", text);
    }

    #[test]
    fn aws_datetime_matches_the_reference_on_mangled_text(
        text in timestamp(),
        cut in any::<prop::sample::Index>(),
        insert in prop::option::of(any::<char>()),
    ) {
        let mut chars: Vec<char> = text.chars().collect();
        let at = cut.index(chars.len() + 1);
        match insert {
            Some(c) => chars.insert(at, c),
            None => { chars.truncate(at); }
        }
        let text: String = chars.into_iter().collect();
        let ours = parse_aws_datetime(&text)
            .ok()
            .map(|parsed| (parsed.timestamp(), parsed.timestamp_subsec_nanos()));
        prop_assert_eq!(ours, reference_aws_datetime(&text), "{:?}", text);
    }

    #[test]
    fn aws_datetime_never_panics(text in "\\PC{0,40}") {
        let _ = parse_aws_datetime(&text);
    }
}

// ---------------------------------------------------------------- scripts

fn step() -> impl Strategy<Value = (Step, String)> {
    prop_oneof![
        (100..600u16).prop_map(|code| (
            Step::Status(http::StatusCode::from_u16(code).unwrap()),
            code.to_string()
        )),
        Just((Step::Drop, "drop".to_owned())),
        Just((Step::Reset, "reset".to_owned())),
        Just((Step::Hang, "hang".to_owned())),
    ]
}

proptest! {
    #[test]
    fn scripts_parse_back_to_the_items_they_were_written_from(
        items in prop::collection::vec(
            (step(), 1..1000u32, any::<bool>(), prop::option::of(0..100_000u64), " {0,2}"),
            1..8,
        )
    ) {
        let text = items
            .iter()
            .map(|((_, word), times, explicit, delay, pad)| {
                let mut item = format!("{pad}{word}");
                if *times > 1 || *explicit {
                    item += &format!("*{times}");
                }
                if let Some(ms) = delay {
                    item += &format!("@{ms}ms");
                }
                item + pad
            })
            .collect::<Vec<_>>()
            .join(",");
        let script: Script = text.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(script.items().len(), items.len());
        for (parsed, ((step, _), times, _, delay, _)) in script.items().iter().zip(&items) {
            prop_assert_eq!(parsed.step, *step);
            prop_assert_eq!(parsed.times, *times);
            prop_assert_eq!(parsed.delay, delay.map(Duration::from_millis));
        }
        // Its own rendering parses to the same script.
        let again: Script = script.to_string().parse().unwrap();
        prop_assert_eq!(again.items(), script.items());
    }

    #[test]
    fn script_errors_point_inside_the_text(text in "[0-9a-z*@,. ]{0,30}|\\PC{0,30}") {
        if let Err(error) = text.parse::<Script>() {
            prop_assert!(error.position >= 1);
            prop_assert!(error.position <= text.chars().count() + 1, "{}", error);
        }
    }

    // ------------------------------------------------------------ sizes and durations

    #[test]
    fn plain_byte_counts_parse_to_themselves(n in any::<u64>()) {
        prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
    }

    #[test]
    fn sizes_with_units_scale(n in 0..1_000_000u64, unit in 0..7usize) {
        let (suffix, factor) = [("B", 1), ("KB", 1000), ("KiB", 1024), ("MB", 1_000_000),
            ("MiB", 1 << 20), ("GB", 1_000_000_000), ("GiB", 1 << 30)][unit];
        prop_assert_eq!(parse_size(&format!("{n}{suffix}")), Ok(n * factor));
    }

    #[test]
    fn durations_round_trip_through_their_display(ms in 0..10_000_000_000u64) {
        let duration = Duration::from_millis(ms);
        let text = humantime::format_duration(duration).to_string();
        prop_assert_eq!(parse_duration(&text), Ok(duration), "{}", text);
        prop_assert_eq!(parse_duration(&format!("{ms}ms")), Ok(duration));
    }

    #[test]
    fn size_and_duration_parsers_never_panic(text in "\\PC{0,24}|[0-9 .kKMGiBbsmhu]{0,16}") {
        let _ = parse_size(&text);
        let _ = parse_duration(&text);
        let _ = hookscope::parse_header_size(&text);
    }
}
