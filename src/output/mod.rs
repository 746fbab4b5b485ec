//! How exchanges look on a terminal: the per-exchange report (pretty or JSON
//! lines) written by a printer the binary starts, and the summary line. The
//! library's server never calls into this module: the binary chooses to print.

mod terminal;

use std::io::IsTerminal;

use clap::ValueEnum;

use crate::capture::Stats;
pub use terminal::{
    BACKLOG as PRINTER_BACKLOG, Printer, compact_line, pretty_block, spawn_printer,
};

/// How exchanges are reported on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A readable block per exchange with the body pretty-printed.
    Pretty,
    /// One JSON object per line per exchange, for `jq` and scripts.
    Json,
    /// One short readable line per exchange, for long sessions.
    Line,
    /// Nothing per exchange.
    Quiet,
}

/// `--format`, before the terminal is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum FormatChoice {
    /// Pretty on a terminal, JSON otherwise.
    #[default]
    Auto,
    /// A readable block per exchange: the request line, the checks, the headers, and the
    /// body pretty-printed in colour (at most 200 lines), with a link to the inspector.
    Pretty,
    /// One JSON object per exchange per line (the record's format), for jq and scripts.
    Json,
    /// One short line per exchange: time, id, method, path, answer, verdict, attempt,
    /// alert, size and time taken.
    Line,
    /// Nothing per exchange; the summary still prints when hookscope stops.
    Quiet,
}

/// `--stdout-full`: what happens when stdout cannot keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum StdoutFull {
    /// Answers wait until the printer has room: nothing is lost, as with the record.
    #[default]
    Wait,
    /// Answers go on; exchanges that do not fit are not printed (they are counted,
    /// and stay in the history and the record).
    Drop,
}

/// `--color`, before the terminal and `NO_COLOR` are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
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
            FormatChoice::Line => Format::Line,
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

/// How a line of `send` reads at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Delivered, a 2XX.
    Good,
    /// Failed.
    Bad,
    /// Works, with something to look at.
    Warning,
}

/// `text` in the colour of `tone` when `color` is on (bright colours, readable on
/// black and on white).
pub fn painted(text: &str, tone: Tone, color: bool) -> String {
    use colored_json::{Color, Paint};
    if !color {
        return text.to_owned();
    }
    let style = match tone {
        Tone::Good => Color::Green.foreground(),
        Tone::Bad => Color::Red.bold(),
        Tone::Warning => Color::Yellow.foreground(),
    };
    text.paint(style).to_string()
}

/// Whether stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// The one line of counts printed at shutdown, from the same [`Stats`] that
/// `/api/stats` serves.
pub fn summary_line(stats: &Stats) -> String {
    let mut line = format!(
        "requests: {}, valid: {}, invalid: {}",
        stats.requests,
        stats.valid(),
        stats.invalid()
    );
    if !stats.by_status.is_empty() {
        line.push_str(", by status:");
        for (status, count) in &stats.by_status {
            line.push_str(&format!(" {status}×{count}"));
        }
    }
    if !stats.by_signature.is_empty() {
        line.push_str(", signatures:");
        for (result, count) in &stats.by_signature {
            line.push_str(&format!(" {result}×{count}"));
        }
    }
    let deliveries = &stats.deliveries;
    line.push_str(&format!(
        "; alerts: {}, delivered after retries: {}, never acked: {}",
        deliveries.alerts, deliveries.delivered_after_retries, deliveries.never_acked
    ));
    if let (Some(shortest), Some(longest)) = (deliveries.shortest_gap_us, deliveries.longest_gap_us)
    {
        let seconds = |us: u64| us as f64 / 1e6;
        line.push_str(&format!(
            ", retry gaps {:.1}–{:.1} s",
            seconds(shortest),
            seconds(longest)
        ));
    }
    let upstream = &stats.upstream;
    if upstream.forwarded > 0 {
        line.push_str(&format!("; forwarded: {}, upstream:", upstream.forwarded));
        for (status, count) in &upstream.by_status {
            line.push_str(&format!(" {status}×{count}"));
        }
        line.push_str(&format!(
            ", duplicates delivered upstream: {}",
            deliveries.duplicates_upstream
        ));
    }
    if stats.not_delivered_to_subscribers > 0 {
        line.push_str(&format!(
            "; not printed (stdout fell behind): {}",
            stats.not_delivered_to_subscribers
        ));
    }
    if stats.tls_handshake_failures > 0 {
        line.push_str(&format!(
            "; TLS handshakes failed: {}",
            stats.tls_handshake_failures
        ));
    }
    if let Some(failure) = &stats.record_failure {
        line.push_str(&format!("; RECORDING FAILED: {failure}"));
    }
    line
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
