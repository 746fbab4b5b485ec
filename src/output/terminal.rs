//! The stdout printer: one report per exchange, on its own thread, so a slow
//! terminal never slows an answer.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::thread::JoinHandle;

use super::Format;
use crate::capture::{write_lines, Attempt, BodyState, Exchange, Outcome};
use crate::escape::{escape_block, escape_line, SafeFormatter};
use crate::shared::{line_of, Subscription};
use colored_json::{Color, ColoredFormatter, Paint, PrettyFormatter, Style, Styler};

/// Pause after each batch written (see `spawn_printer`).
const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Exchanges the printer may fall behind by before new ones are skipped on stdout
/// (the capacity to [`subscribe`](crate::Handle::subscribe) it with).
pub const BACKLOG: usize = 16 * 1024;

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
pub fn spawn_printer(format: Format, color: bool, mut exchanges: Subscription) -> Option<Printer> {
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
                _ => {
                    let blocks: String = batch
                        .iter()
                        .map(|(exchange, _)| pretty_block(exchange, color))
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

/// Renders one exchange as the readable block `--format pretty` prints.
pub fn pretty_block(exchange: &Exchange, color: bool) -> String {
    let palette = Palette { color };
    let mut out = String::with_capacity(exchange.body.len() * 2 + 512);
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
        exchange.peer,
        body_size_text(exchange),
        status,
        exchange.reply.took.as_secs_f64() * 1000.0,
    );
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
    match &exchange.verdict {
        Some(verdict) if verdict.is_valid() => {
            let _ = writeln!(
                out,
                "  {}",
                palette.paint("✔ valid Panther alert", Color::Green.foreground())
            );
        }
        Some(verdict) => {
            let count = verdict.problems.len();
            let label = format!(
                "✘ not a valid Panther alert ({count} problem{})",
                if count == 1 { "" } else { "s" }
            );
            let _ = writeln!(out, "  {}", palette.paint(&label, Color::Red.bold()));
        }
        None => {}
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
    }
    for (name, value) in exchange.header_pairs() {
        let line = format!("  {}: {}", escape_line(name), escape_line(&value));
        let _ = writeln!(out, "{}", palette.paint(&line, Style::new().dim()));
    }
    write_body(&mut out, exchange, color);
    out.push('\n');
    out
}

/// "attempt 4 of alert b90c19e6…, 2.1 s after attempt 3".
fn attempt_text(attempt: &Attempt) -> String {
    let key = &attempt.key.value;
    let short: String = key.chars().take(8).collect();
    let ellipsis = if key.chars().count() > 8 { "…" } else { "" };
    let what = if attempt.key.is_alert() {
        "alert"
    } else {
        "body"
    };
    let mut text = format!(
        "attempt {} of {what} {}{ellipsis}",
        attempt.number,
        escape_line(&short)
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
            let _ = writeln!(
                out,
                "({} bytes of binary data, not shown)",
                exchange.body.len()
            );
        }
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
