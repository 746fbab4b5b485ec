//! The scorecard, written for a person (text, coloured like `listen`), for a
//! program (JSON) and for a CI system (JUnit XML). Pure: the binary prints.

use std::fmt::Write as _;

use super::{CheckReport, Score, Scorecard};
use crate::escape::escape_line;
use crate::output::{Tone, painted};

/// The scorecard for a terminal: one line per check, what was sent and got and what
/// the sender would do under the ones that did not pass; text from the receiver
/// escaped. Coloured when `color`. (The same lines as [`text_start`],
/// [`text_check`] and [`text_end`] write one at a time.)
pub fn text(scorecard: &Scorecard, color: bool) -> String {
    let width = name_width(scorecard.checks.iter().map(|check| check.name));
    let mut out = text_start(&scorecard.target, scorecard.profile);
    for check in &scorecard.checks {
        out.push_str(&text_check(check, width, color));
    }
    out.push_str(&text_end(scorecard));
    out
}

/// The widest of these check names, to align the details.
pub fn name_width<'a>(names: impl IntoIterator<Item = &'a str>) -> usize {
    names.into_iter().map(str::len).max().unwrap_or(0)
}

/// The scorecard's first line.
pub fn text_start(target: &str, profile: &str) -> String {
    format!(
        "hookscope probe {} (profile {profile})\n",
        escape_line(target)
    )
}

/// One check's lines, its name padded to `width`.
pub fn text_check(check: &CheckReport, width: usize, color: bool) -> String {
    let (mark, tone) = match check.result {
        Score::Pass => ("✔ pass", Some(Tone::Good)),
        Score::Warn => ("⚠ warn", Some(Tone::Warning)),
        Score::Fail => ("✘ FAIL", Some(Tone::Bad)),
        Score::Skip => ("– skip", None),
    };
    let mark = match tone {
        Some(tone) => painted(mark, tone, color),
        None => mark.to_owned(),
    };
    let mut out = format!(
        "  {mark}  {:width$}  {}\n",
        check.name,
        escape_line(&check.detail)
    );
    if matches!(check.result, Score::Fail | Score::Warn) {
        let mut line = |label: &str, text: &str| {
            let _ = writeln!(out, "  {:width$}        {label} {}", "", escape_line(text));
        };
        for sent in &check.sent {
            line("sent:", sent);
        }
        for received in &check.received {
            line("got: ", received);
        }
        if let Some(would) = &check.sender_would {
            line("then:", would);
        }
    }
    out
}

/// The scorecard's last line: the counts.
pub fn text_end(scorecard: &Scorecard) -> String {
    let total = scorecard.checks.len();
    format!(
        "{total} check{}: {} passed, {} warned, {} failed, {} skipped\n",
        if total == 1 { "" } else { "s" },
        scorecard.count(Score::Pass),
        scorecard.count(Score::Warn),
        scorecard.count(Score::Fail),
        scorecard.count(Score::Skip)
    )
}

/// The scorecard as one JSON document: `{"profile", "target", "checks": [{"name",
/// "result", "detail", "about", "sent", "received", "sender_would", "took_ms"}],
/// "summary": {"pass", "warn", "fail", "skip"}}`.
pub fn json(scorecard: &Scorecard) -> String {
    let summary = serde_json::json!({
        "pass": scorecard.count(Score::Pass),
        "warn": scorecard.count(Score::Warn),
        "fail": scorecard.count(Score::Fail),
        "skip": scorecard.count(Score::Skip),
    });
    let mut document = serde_json::to_value(scorecard).unwrap_or_default();
    document["summary"] = summary;
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut out,
        crate::escape::SafeFormatter(serde_json::ser::CompactFormatter),
    );
    let _ = serde::Serialize::serialize(&document, &mut serializer);
    out.push(b'\n');
    String::from_utf8(out).unwrap_or_default()
}

/// The scorecard as JUnit XML (the Ant/Jenkins form most CI systems read): one
/// `testsuite`, a `testcase` per check, a failure with its detail for a failed one,
/// `skipped` for a skipped one; a warning passes, its detail in `system-out`.
pub fn junit(scorecard: &Scorecard) -> String {
    let total: f64 = scorecard.checks.iter().map(|check| check.took_ms).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"hookscope probe\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        scorecard.checks.len(),
        scorecard.count(Score::Fail),
        scorecard.count(Score::Skip),
        total / 1000.0
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        xml(&format!("{} {}", scorecard.profile, scorecard.target)),
        scorecard.checks.len(),
        scorecard.count(Score::Fail),
        scorecard.count(Score::Skip),
        total / 1000.0
    );
    for check in &scorecard.checks {
        let _ = write!(
            out,
            "    <testcase classname=\"hookscope.probe.{}\" name=\"{}\" time=\"{:.3}\"",
            xml(scorecard.profile),
            xml(check.name),
            check.took_ms / 1000.0
        );
        let mut body = String::new();
        match check.result {
            Score::Fail => {
                let mut text = check
                    .sent
                    .iter()
                    .map(|sent| format!("sent: {sent}"))
                    .collect::<Vec<_>>();
                text.extend(check.received.iter().map(|got| format!("got: {got}")));
                text.extend(
                    check
                        .sender_would
                        .iter()
                        .map(|would| format!("then: {would}")),
                );
                let _ = write!(
                    body,
                    "\n      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    xml(&check.detail),
                    xml(check.name),
                    xml(&text.join("\n"))
                );
            }
            Score::Skip => {
                let _ = write!(
                    body,
                    "\n      <skipped message=\"{}\"/>",
                    xml(&check.detail)
                );
            }
            Score::Warn | Score::Pass => {
                let _ = write!(
                    body,
                    "\n      <system-out>{}: {}</system-out>",
                    check.result.word(),
                    xml(&check.detail)
                );
            }
        }
        let _ = writeln!(out, ">{body}\n    </testcase>");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Text as XML character data or an attribute value: the five markup characters
/// escaped, and the characters XML 1.0 cannot hold at all (controls but tab,
/// newline and return; U+FFFE, U+FFFF) replaced with U+FFFD, since what a receiver
/// answers may hold anything.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scorecard() -> Scorecard {
        let check = |name, result, detail: &str| CheckReport {
            name,
            about: "about",
            result,
            detail: detail.to_owned(),
            sent: vec!["rule (600 bytes)".into()],
            received: vec![
                "rule: request failed: 500 Internal Server Error: \u{1b}[31mboom".into(),
            ],
            sender_would: Some("Panther retries".into()),
            took_ms: 12.5,
        };
        Scorecard {
            profile: "panther",
            target: "http://127.0.0.1:3000/hook".into(),
            checks: vec![
                check("alert-types", Score::Pass, "9 accepted"),
                check("latency", Score::Warn, "p99 2 s"),
                check("hard-bodies", Score::Fail, "1 of 7 <not> accepted & \u{0}"),
                check("certificate", Score::Skip, "http://"),
            ],
        }
    }

    #[test]
    fn text_names_each_check_and_escapes_what_the_receiver_said() {
        let text = text(&scorecard(), false);
        assert!(text.contains("✔ pass  alert-types"), "{text}");
        assert!(text.contains("✘ FAIL  hard-bodies"), "{text}");
        assert!(text.contains("then: Panther retries"), "{text}");
        assert!(
            !text.contains('\u{1b}'),
            "no raw escape from the network: {text}"
        );
        assert!(
            text.ends_with("4 checks: 1 passed, 1 warned, 1 failed, 1 skipped\n"),
            "{text}"
        );
    }

    #[test]
    fn json_has_each_check_and_a_summary() {
        let value: serde_json::Value = serde_json::from_str(&json(&scorecard())).unwrap();
        assert_eq!(value["checks"][2]["name"], "hard-bodies");
        assert_eq!(value["checks"][2]["result"], "fail");
        assert_eq!(value["summary"]["fail"], 1);
    }

    #[test]
    fn junit_escapes_markup_and_characters_xml_cannot_hold() {
        let xml = junit(&scorecard());
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("<skipped message=\"http://\"/>"), "{xml}");
        assert!(
            xml.contains("1 of 7 &lt;not&gt; accepted &amp; \u{FFFD}"),
            "{xml}"
        );
        assert!(!xml.contains('\u{1b}') && !xml.contains('\u{0}'), "{xml}");
    }
}
