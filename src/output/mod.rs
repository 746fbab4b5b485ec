//! Everything hookscope writes to the terminal: the per-exchange report on stdout,
//! and the few lines (listening, warnings, summary) on stderr.

pub mod escape;
mod json_line;
mod record;
mod terminal;

use std::fmt;
use std::io::IsTerminal;

pub use json_line::{json_line, record_line, JsonLine};
pub use record::{RecordError, Recorder};
pub use terminal::spawn_printer;

/// How exchanges are reported on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A readable block per exchange with the body pretty-printed.
    Pretty,
    /// One JSON object per line per exchange, for `jq` and scripts.
    Json,
    /// Nothing per exchange.
    Quiet,
}

/// `--format`, before the terminal is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatChoice {
    /// Pretty on a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Always [`Format::Pretty`].
    Pretty,
    /// Always [`Format::Json`].
    Json,
    /// Always [`Format::Quiet`].
    Quiet,
}

/// `--color`, before the terminal and `NO_COLOR` are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colour on a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl FormatChoice {
    /// Decides the format once, from whether stdout is a terminal.
    pub fn resolve(self, stdout_is_terminal: bool) -> Format {
        match self {
            FormatChoice::Auto if stdout_is_terminal => Format::Pretty,
            FormatChoice::Auto => Format::Json,
            FormatChoice::Pretty => Format::Pretty,
            FormatChoice::Json => Format::Json,
            FormatChoice::Quiet => Format::Quiet,
        }
    }
}

impl ColorChoice {
    /// Decides colour once; `no_color` is the value of the `NO_COLOR` variable.
    pub fn resolve(self, stdout_is_terminal: bool, no_color: Option<&str>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stdout_is_terminal && no_color.is_none_or(str::is_empty),
        }
    }
}

/// Whether stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Writes the one readiness line that scripts and tests wait for.
pub fn announce_listening(url: &str) {
    eprintln!("hookscope: listening on {url}");
}

/// Says where the inspector is, loudly when it is reachable from other machines.
pub fn announce_inspector(url: &str, public: bool) {
    eprintln!("hookscope: inspector on {url}");
    if public {
        eprintln!(
            "hookscope: WARNING: the admin API is exposed beyond this machine (--admin-public): \
             anyone who reaches it can read every request and change the answers"
        );
    }
}

/// Prints one replay's result on stdout.
pub fn print_replay(
    request: &crate::send::RecordedRequest,
    result: &Result<crate::send::Replayed, crate::send::ReplayError>,
) {
    let what = format!("#{} {} {}", request.id, request.method, request.path);
    match result {
        Ok(replayed) => println!(
            "{} → {} {} ({:.1} ms) {}",
            escape::escape_line(&what),
            replayed.status,
            escape::escape_line(&replayed.url),
            replayed.took_ms,
            escape::escape_line(&replayed.body)
        ),
        Err(error) => println!(
            "{} → no answer: {}",
            escape::escape_line(&what),
            escape::escape_line(&error.to_string())
        ),
    }
}

/// Prints a delivery status the way Panther's Alert Details page keeps it.
pub fn print_delivery(status: &crate::send::DeliveryStatus, as_json: bool) {
    if as_json {
        println!(
            "{}",
            escape::escape_line(&serde_json::to_string(status).unwrap_or_default())
        );
        return;
    }
    let count = status.attempts.len();
    let outcome = if status.delivered {
        format!(
            "delivered after {count} attempt{}",
            if count == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "FAILED after {count} attempt{}",
            if count == 1 { "" } else { "s" }
        )
    };
    println!(
        "delivery to {}: {outcome}",
        escape::escape_line(&status.url)
    );
    for attempt in &status.attempts {
        let result = match (&attempt.status, &attempt.error) {
            (Some(code), None) => code.to_string(),
            (Some(code), Some(error)) => format!("{code} (body unreadable: {error})"),
            (None, Some(error)) => format!("error: {error}"),
            (None, None) => "no answer".into(),
        };
        println!(
            "  attempt {:>2}  {}  {}  ({:.1} ms)",
            attempt.number,
            attempt
                .at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            escape::escape_line(&result),
            attempt.took_ms
        );
    }
    match &status.response_body {
        Some(body) => println!("response body: {}", escape::escape_line(body)),
        None => println!("response body: (none: no response was received)"),
    }
}

/// Writes the final counts.
pub fn announce_summary(summary: &crate::capture::Summary) {
    eprintln!("hookscope: summary: {summary}");
}

/// Writes a warning to stderr.
pub fn log_warning(message: fmt::Arguments<'_>) {
    eprintln!("hookscope: warning: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_format_follows_the_terminal() {
        assert_eq!(FormatChoice::Auto.resolve(true), Format::Pretty);
        assert_eq!(FormatChoice::Auto.resolve(false), Format::Json);
        assert_eq!(FormatChoice::Quiet.resolve(true), Format::Quiet);
    }

    #[test]
    fn no_color_is_honoured_in_auto_only() {
        assert!(ColorChoice::Auto.resolve(true, None));
        assert!(ColorChoice::Auto.resolve(true, Some("")));
        assert!(!ColorChoice::Auto.resolve(true, Some("1")));
        assert!(!ColorChoice::Auto.resolve(false, None));
        assert!(ColorChoice::Always.resolve(false, Some("1")));
        assert!(!ColorChoice::Never.resolve(true, None));
    }
}
