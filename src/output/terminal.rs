//! The stdout printer: one report per exchange, on its own thread, so a slow
//! terminal never slows an answer.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::thread::JoinHandle;

use super::Format;
use crate::capture::{Attempt, BodyState, Exchange, Outcome, UpstreamLeg, write_lines};
use crate::escape::{SafeFormatter, escape_block, escape_line};
use crate::shared::{Subscription, line_of};
use colored_json::{Color, ColoredFormatter, Paint, PrettyFormatter, Style, Styler};

/// Pause after each batch written (see `spawn_printer`). 1 ms rather than 5: on a
/// busy core the printer's batch runs in one go while answers wait, and a 5 ms
/// batch of 1 KB alerts put the p99 at 2.5× the `print` ceiling's (1 ms: 1.5×,
/// for ~2% of throughput; bench/run.sh).
const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// Exchanges the printer may fall behind by before new ones are skipped on stdout
/// (the capacity to [`subscribe`](crate::Handle::subscribe) it with).
/// Bounded by count: with 64 KB alerts 1,024 of them are 64 MiB, like the history.
pub const BACKLOG: usize = 1024;

/// Most exchanges written to stdout in one call.
const MAX_BATCH: usize = 512;

/// A running printer; [`Printer::finish`] waits until everything queued is written.
pub struct Printer {
    thread: JoinHandle<()>,
}

impl Printer {
    /// Waits for the printer to write what it has (call after the server stopped).
    pub fn finish(self) {
        let _ = self.thread.join();
    }
}

/// Starts the printer on its own thread, writing what `exchanges` gives to stdout;
/// `None` for [`Format::Quiet`].
pub fn spawn_printer(
    format: Format,
    color: bool,
    inspector: Option<String>,
    mut exchanges: Subscription,
) -> Option<Printer> {
    if format == Format::Quiet {
        return None;
    }
    let thread = std::thread::spawn(move || {
        let mut out = io::stdout().lock();
        while let Some(first) = exchanges.blocking_next_published() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match exchanges.try_next_published() {
                    Some(published) => batch.push(published),
                    None => break,
                }
            }
            let written = match format {
                // The lines as rendered (shared with the record), gathered by the kernel.
                Format::Json => {
                    let lines: Vec<_> = batch.iter().map(line_of).collect();
                    write_lines(&mut out, &lines)
                }
                Format::Line => {
                    let lines: String = batch
                        .iter()
                        .map(|(exchange, _)| compact_line(exchange, color) + "\n")
                        .collect();
                    out.write_all(lines.as_bytes())
                }
                _ => {
                    let blocks: String = batch
                        .iter()
                        .map(|(exchange, _)| pretty_block(exchange, color, inspector.as_deref()))
                        .collect();
                    out.write_all(blocks.as_bytes())
                }
            };
            if written.and_then(|()| out.flush()).is_err() {
                return;
            }
            // Under load, let exchanges gather: one wake-up per few milliseconds
            // instead of one per exchange keeps the printer off the answers' CPU.
            std::thread::sleep(BATCH_PAUSE);
        }
    });
    Some(Printer { thread })
}

struct Palette {
    color: bool,
}

impl Palette {
    fn paint(&self, text: &str, style: Style) -> String {
        if self.color {
            text.paint(style).to_string()
        } else {
            text.to_owned()
        }
    }
}

/// Lines of a body shown in pretty mode; the rest is folded (the inspector, the
/// JSON lines and the record have it all).
const MAX_BODY_LINES: usize = 200;

/// Characters of one body line shown in pretty mode.
const MAX_LINE_CHARS: usize = 1000;

/// Characters of an alert key shown in the attempt line.
const MAX_KEY_CHARS: usize = 32;

/// Bytes of a binary body shown as hex.
const BINARY_PREVIEW: usize = 64;

/// Renders one exchange as the readable block `--format pretty` prints; with the
/// inspector's address, the block ends with a link to the exchange there.
pub fn pretty_block(exchange: &Exchange, color: bool, inspector: Option<&str>) -> String {
    let palette = Palette { color };
    let mut out = String::with_capacity(exchange.body.len() * 2 + 512);
    headline(&mut out, exchange, &palette);
    if let Some((text, style)) = upstream_text(exchange) {
        let _ = writeln!(out, "  {}", palette.paint(&text, style));
    }
    if let Some(attempt) = exchange
        .attempt
        .as_ref()
        .filter(|a| a.key.is_alert() || a.number > 1)
    {
        let _ = writeln!(
            out,
            "  {}",
            palette.paint(&attempt_text(attempt), Color::Magenta.foreground())
        );
    }
    if let Some(reason) = &exchange.rejected {
        let _ = writeln!(
            out,
            "  {}",
            palette.paint(
                &format!("✘ rejected, {}", escape_line(reason)),
                Color::Red.bold()
            )
        );
    }
    checks(&mut out, exchange, &palette);
    for (name, value) in exchange.header_pairs() {
        let line = format!("  {}: {}", escape_line(name), escape_line(&value));
        let _ = writeln!(out, "{}", palette.paint(&line, Style::new().dim()));
    }
    let mut body = String::new();
    write_body(&mut body, exchange, color);
    fold_body(&mut out, &body, exchange.id, inspector, color);
    if let Some(inspector) = inspector {
        let link = format!("  ↗ {inspector}/#{}", exchange.id);
        let _ = writeln!(out, "{}", palette.paint(&link, Style::new().dim()));
    }
    out.push('\n');
    out
}

/// The first line: id, time, method, target, origin, size, answer, time taken.
fn headline(out: &mut String, exchange: &Exchange, palette: &Palette) {
    let status = match exchange.reply.outcome {
        Outcome::Answered(code) => {
            let style = match code {
                200..=299 => Color::Green.bold(),
                400..=499 => Color::Yellow.bold(),
                _ => Color::Red.bold(),
            };
            palette.paint(&code.to_string(), style)
        }
        Outcome::Dropped => palette.paint("dropped (no answer)", Color::Red.bold()),
        Outcome::Reset => palette.paint("reset (TCP RST)", Color::Red.bold()),
        Outcome::Hung => palette.paint("hung (never answered)", Color::Red.bold()),
        Outcome::ClientGone => palette.paint("client went away", Color::Red.bold()),
    };
    let target = match &exchange.query {
        Some(query) => format!("{}?{}", exchange.path, query),
        None => exchange.path.clone(),
    };
    let _ = writeln!(
        out,
        "{} {} {} {} from {} · {} → {} in {:.1} ms",
        palette.paint(&format!("#{}", exchange.id), Color::Cyan.bold()),
        exchange
            .received_at
            .with_timezone(&chrono::Local)
            .format("%H:%M:%S%.3f"),
        palette.paint(&escape_line(exchange.method.as_str()), Style::new().bold()),
        escape_line(&target),
        origin_text(exchange),
        body_size_text(exchange),
        status,
        exchange.reply.took.as_secs_f64() * 1000.0,
    );
}

/// What the checks found: the verdict, the signature, then each problem and warning.
fn checks(out: &mut String, exchange: &Exchange, palette: &Palette) {
    match &exchange.verdict {
        Some(verdict) if verdict.is_valid() => {
            let label = match exchange.schema.as_deref() {
                Some(schema) => format!("✔ valid against {}", escape_line(schema)),
                None => "✔ valid Panther alert".to_owned(),
            };
            let _ = writeln!(
                out,
                "  {}",
                palette.paint(&label, Color::Green.foreground())
            );
        }
        Some(verdict) => {
            let count = verdict.problems.len() as u64 + verdict.omitted;
            let what = match exchange.schema.as_deref() {
                Some(schema) => format!("not valid against {}", escape_line(schema)),
                None => "not a valid Panther alert".to_owned(),
            };
            let label = format!(
                "✘ {what} ({count} problem{})",
                if count == 1 { "" } else { "s" }
            );
            let _ = writeln!(out, "  {}", palette.paint(&label, Color::Red.bold()));
        }
        None => {}
    }
    if let Some(signature) = &exchange.signature {
        let (mark, style) = if signature.is_valid() {
            ("✔", Color::Green.foreground())
        } else {
            ("✘", Color::Red.bold())
        };
        let text = format!("{mark} {}", escape_line(&signature.describe()));
        let _ = writeln!(out, "  {}", palette.paint(&text, style));
    }
    if let Some(verdict) = &exchange.verdict {
        let marked = [
            ("✘", Color::Red, &verdict.problems),
            ("⚠", Color::Yellow, &verdict.warnings),
        ];
        for (mark, color, problems) in marked {
            for problem in problems {
                let mark = palette.paint(mark, color.foreground());
                let _ = writeln!(out, "    {mark} {}", escape_line(&problem.to_string()));
            }
        }
        if verdict.omitted > 0 {
            let more = format!("… and {} more, not kept", verdict.omitted);
            let _ = writeln!(out, "    {}", palette.paint(&more, Style::new().dim()));
        }
    }
}

/// One line per exchange, for long sessions (`--format line`): time, id, method,
/// path, answer, verdict, attempt, alert key, size, time taken.
pub fn compact_line(exchange: &Exchange, color: bool) -> String {
    let palette = Palette { color };
    let answer = exchange.reply.outcome.label();
    let style = match exchange.reply.outcome {
        Outcome::Answered(200..=299) => Color::Green.bold(),
        Outcome::Answered(400..=499) => Color::Yellow.bold(),
        _ => Color::Red.bold(),
    };
    let target = match &exchange.query {
        Some(query) => format!("{}?{}", exchange.path, query),
        None => exchange.path.clone(),
    };
    let mut line = format!(
        "{} {} {} {} → {} {}",
        exchange
            .received_at
            .with_timezone(&chrono::Local)
            .format("%H:%M:%S%.3f"),
        palette.paint(&format!("#{}", exchange.id), Color::Cyan.bold()),
        escape_line(exchange.method.as_str()),
        escape_line(&target),
        palette.paint(&answer, style),
        exchange.verdict_label(),
    );
    if let Some(attempt) = exchange.attempt.as_ref().filter(|a| a.key.is_alert()) {
        let _ = write!(
            line,
            " attempt {} {}",
            attempt.number,
            short_key(&attempt.key.value)
        );
    }
    if let Some(leg) = &exchange.upstream {
        let _ = write!(
            line,
            " → {} {}",
            escape_line(&leg.url),
            upstream_answer(leg)
        );
        if exchange
            .attempt
            .as_ref()
            .is_some_and(|a| a.duplicate_upstream)
        {
            line.push_str(" DUPLICATE");
        }
    }
    let _ = write!(
        line,
        " {} {:.1} ms",
        body_size_text(exchange),
        exchange.reply.took.as_secs_f64() * 1000.0
    );
    line
}

/// The peer, and where the request claims to come from when a tunnel or proxy
/// said so (`X-Forwarded-For`, `Forwarded`): marked as a claim, since anyone can send it.
fn origin_text(exchange: &Exchange) -> String {
    match exchange.claimed_origin() {
        Some(origin) => format!(
            "{} (forwarded for {}, claimed)",
            exchange.peer,
            escape_line(origin)
        ),
        None => exchange.peer.to_string(),
    }
}

/// What the upstream answered, in a line: "404 Not Found", "timeout", "error".
fn upstream_answer(leg: &UpstreamLeg) -> String {
    match (leg.status, &leg.error) {
        (Some(status), None) => {
            let reason = http::StatusCode::from_u16(status)
                .ok()
                .and_then(|status| status.canonical_reason());
            match reason {
                Some(reason) => format!("{status} {reason}"),
                None => status.to_string(),
            }
        }
        _ => leg.label(),
    }
}

/// Most characters of an upstream's refusal shown beside its status.
const UPSTREAM_BODY_CHARS: usize = 120;

/// The forwarded leg in one line, and whether it went wrong: where it went and
/// what the app said ("→ http://127.0.0.1:3000/webhooks/panther 404 Not Found in
/// 3.1 ms: {"detail":"Not Found"}"), what the sender was told instead, a
/// duplicate, or why it failed.
fn upstream_text(exchange: &Exchange) -> Option<(String, Style)> {
    let leg = exchange.upstream.as_ref()?;
    let url = escape_line(&leg.url);
    let mut text = match (leg.status, &leg.error) {
        (Some(status), None) => {
            let mut text = format!(
                "→ {url} {} in {:.1} ms",
                upstream_answer(leg),
                leg.took.as_secs_f64() * 1000.0
            );
            // A refusal's reason is in its body (a framework's 404 or 422 says why).
            let said = String::from_utf8_lossy(&leg.body);
            let said = said.trim();
            if !(200..300).contains(&status) && !said.is_empty() {
                let cut: String = said.chars().take(UPSTREAM_BODY_CHARS).collect();
                let more = if cut.len() < said.len() { "…" } else { "" };
                text.push_str(&format!(": {}{more}", escape_line(&cut)));
            }
            text
        }
        (status, Some(error)) => {
            let status = status.map(|s| format!(" {s}")).unwrap_or_default();
            format!("→ {url}{status} failed: {}", escape_line(error))
        }
        (None, None) => format!("→ {url}: no answer"),
    };
    if leg.truncated {
        text.push_str(&format!(
            " (body longer than {}, passed on whole, kept in part)",
            bytesize::ByteSize::b(leg.body.len() as u64).display().iec()
        ));
    }
    let told = exchange.reply.outcome;
    let passed_on = leg.error.is_none() && leg.status == told.status();
    let lost_acknowledgement = !passed_on && leg.error.is_none() && leg.acknowledged();
    if !passed_on && leg.error.is_none() {
        let acknowledged = if lost_acknowledgement {
            ": a lost acknowledgement"
        } else {
            ""
        };
        text.push_str(&format!(
            ", the sender was told {}{acknowledged}",
            told.label()
        ));
    }
    let duplicate = exchange
        .attempt
        .as_ref()
        .is_some_and(|attempt| attempt.duplicate_upstream);
    if duplicate {
        text.push_str(" · DUPLICATE: the upstream had already acknowledged this alert");
    }
    // Bright colours: the terminal's dark blue is hard to read on black.
    let style = if leg.error.is_some() || duplicate {
        Color::Red.bold()
    } else if lost_acknowledgement {
        Color::Yellow.bold()
    } else {
        Color::Cyan.foreground()
    };
    Some((text, style))
}

/// The body as rendered, cut to [`MAX_BODY_LINES`] lines of [`MAX_LINE_CHARS`]
/// characters, saying what was left out and where to see it.
fn fold_body(out: &mut String, body: &str, id: u64, inspector: Option<&str>, color: bool) {
    let total = body.lines().count();
    for line in body.lines().take(MAX_BODY_LINES) {
        match line.char_indices().nth(MAX_LINE_CHARS) {
            Some((cut, _)) => {
                let more = line[cut..].chars().count();
                // A cut can land inside a colour: end it before saying what was cut.
                let reset = if color { "\x1b[0m" } else { "" };
                let _ = writeln!(out, "{}{reset} … ({more} more characters)", &line[..cut]);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if total > MAX_BODY_LINES {
        let more = total - MAX_BODY_LINES;
        let whole = match inspector {
            Some(inspector) => format!("see #{id} in the inspector at {inspector}/#{id}"),
            None => "see --format json or --record".to_owned(),
        };
        let _ = writeln!(out, "… {more} more lines: {whole}");
    }
}

/// An alert key cut to [`MAX_KEY_CHARS`] characters as shown, never inside an escape.
fn short_key(key: &str) -> String {
    let mut shown = String::new();
    let mut count = 0;
    let mut buffer = [0; 4];
    for c in key.chars() {
        let escaped = escape_line(c.encode_utf8(&mut buffer));
        let width = escaped.chars().count();
        if count + width > MAX_KEY_CHARS {
            shown.push('…');
            return shown;
        }
        count += width;
        shown.push_str(&escaped);
    }
    shown
}

/// "attempt 4 of alert b90c19e6…, 2.1 s after attempt 3".
fn attempt_text(attempt: &Attempt) -> String {
    let what = if attempt.key.is_alert() {
        "alert"
    } else {
        "body"
    };
    let mut text = format!(
        "attempt {} of {what} {}",
        attempt.number,
        short_key(&attempt.key.value)
    );
    if let Some(gap) = attempt.gap {
        let _ = write!(
            text,
            ", {:.1} s after attempt {}",
            gap.as_secs_f64(),
            attempt.number - 1
        );
    }
    if attempt.key.resent {
        text.push_str(" (re-sent from Panther)");
    }
    text
}

fn body_size_text(exchange: &Exchange) -> String {
    let size = bytesize::ByteSize::b(exchange.body_size())
        .display()
        .iec()
        .to_string();
    match exchange.body_state {
        BodyState::Complete => size,
        BodyState::TooLarge { .. } => format!("{size} (over the limit, not read)"),
        BodyState::Interrupted => format!("{size} (interrupted)"),
        BodyState::Malformed => format!("{size} (malformed chunked body)"),
        BodyState::OverBudget => format!("{size} (not read: --max-inflight-bytes was full)"),
        BodyState::Stalled => format!("{size} (not read: the body stopped arriving)"),
    }
}

fn write_body(out: &mut String, exchange: &Exchange, color: bool) {
    if exchange.body.is_empty() {
        return;
    }
    if let Some(pretty) = pretty_json(&exchange.body, color) {
        out.push_str(&pretty);
        out.push('\n');
        return;
    }
    match std::str::from_utf8(&exchange.body) {
        Ok(text) => {
            out.push_str(&escape_block(text));
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
        Err(_) => {
            let _ = writeln!(out, "({} bytes of binary data)", exchange.body.len());
            hex_preview(out, &exchange.body);
        }
    }
}

/// The first [`BINARY_PREVIEW`] bytes as hex and ASCII, 16 to a line.
fn hex_preview(out: &mut String, body: &[u8]) {
    for (row, chunk) in body.chunks(16).take(BINARY_PREVIEW / 16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|byte| format!("{byte:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&byte| {
                if byte.is_ascii_graphic() || byte == b' ' {
                    byte as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(out, "  {:04x}  {:<47}  |{ascii}|", row * 16, hex.join(" "));
    }
    if body.len() > BINARY_PREVIEW {
        let _ = writeln!(out, "  … {} more bytes", body.len() - BINARY_PREVIEW);
    }
}

/// Pretty-prints JSON text straight from the bytes (no tree is built).
fn pretty_json(body: &[u8], color: bool) -> Option<String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut out = Vec::with_capacity(body.len() * 2);
    let formatter = SafeFormatter(PrettyFormatter::new());
    let transcoded = if color {
        let mut serializer = serde_json::Serializer::with_formatter(
            &mut out,
            ColoredFormatter::with_styler(formatter, Styler::default()),
        );
        serde_transcode::transcode(&mut deserializer, &mut serializer)
    } else {
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde_transcode::transcode(&mut deserializer, &mut serializer)
    };
    transcoded.ok()?;
    deserializer.end().ok()?;
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKey, KeySource};
    use crate::capture::Reply;
    use bytes::Bytes;

    fn exchange(body: &[u8]) -> Exchange {
        let mut exchange = Exchange::posted(7, "/alerts", 200, body);
        exchange.reply = Reply {
            outcome: Outcome::Answered(503),
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
            took: std::time::Duration::from_micros(1500),
        };
        exchange
    }

    #[test]
    fn long_bodies_are_folded_with_a_link_to_the_whole() {
        let body: String = (0..250).map(|n| format!("line {n}\n")).collect();
        let block = pretty_block(
            &exchange(body.as_bytes()),
            false,
            Some("http://127.0.0.1:9081"),
        );
        assert!(block.contains("line 199\n") && !block.contains("line 200\n"));
        assert!(
            block.contains("… 50 more lines: see #7 in the inspector at http://127.0.0.1:9081/#7")
        );
        assert!(
            block.trim_end().ends_with("↗ http://127.0.0.1:9081/#7"),
            "{block}"
        );
        let long = "x".repeat(MAX_LINE_CHARS + 10);
        let block = pretty_block(&exchange(long.as_bytes()), false, None);
        assert!(block.contains("… (10 more characters)"), "{block}");
        assert!(!block.contains('↗'));
    }

    #[test]
    fn binary_bodies_get_a_hex_preview() {
        let body: Vec<u8> = (0u8..80).map(|n| n.wrapping_mul(37)).collect();
        let block = pretty_block(&exchange(&body), false, None);
        assert!(block.contains("(80 bytes of binary data)"), "{block}");
        assert!(block.contains("  0000  00 25 4a 6f"), "{block}");
        assert!(block.contains("… 16 more bytes"), "{block}");
        assert!(!block.chars().any(|c| c.is_control() && c != '\n'));
    }

    #[test]
    fn keys_are_cut_to_32_characters_never_inside_an_escape() {
        assert_eq!(short_key("Test.Alert"), "Test.Alert");
        let long = "b90c19e66e160e194a5b3b94ec27fb7c-and-more";
        assert_eq!(short_key(long), "b90c19e66e160e194a5b3b94ec27fb7c…");
        let tricky = format!("{}\u{202e}tail", "a".repeat(28));
        let shown = short_key(&tricky);
        assert_eq!(
            shown,
            format!("{}…", "a".repeat(28)),
            "the escape does not fit whole"
        );
    }

    #[test]
    fn the_compact_line_says_it_all_on_one_line() {
        let mut exchange = exchange(b"{}");
        exchange.attempt = Some(Attempt {
            key: AlertKey {
                value: "alert-1".into(),
                source: KeySource::AlertId,
                resent: false,
            },
            number: 2,
            gap: None,
            acknowledged: false,
            duplicate_upstream: false,
            route: None,
        });
        let line = compact_line(&exchange, false);
        assert!(!line.contains('\n'));
        for part in [
            "#7",
            "POST",
            "/alerts",
            "→ 503",
            "attempt 2 alert-1",
            "1.5 ms",
        ] {
            assert!(line.contains(part), "{part} missing in {line}");
        }
    }
}
