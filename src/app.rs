//! What each command does once its flags are values: the glue between the
//! server, the printer and the process (signals, files, exit codes).

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::alert::{validate, Verdict};
use crate::capture::Summary;
use crate::output::{self, ColorChoice, FormatChoice};
use crate::respond::Behaviour;
use crate::server::{Server, ServerError};

/// Everything `hookscope listen` needs, as library values.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Where to listen.
    pub bind: SocketAddr,
    /// How to answer.
    pub behaviour: Behaviour,
    /// Seed for random failures.
    pub seed: Option<u64>,
    /// Exchanges kept in the history.
    pub keep: usize,
    /// Record file.
    pub record: Option<PathBuf>,
    /// Admin listener address, if any.
    pub admin: Option<SocketAddr>,
    /// The admin address was allowed off loopback.
    pub admin_public: bool,
    /// Largest body read.
    pub max_body: u64,
    /// How to print exchanges.
    pub format: FormatChoice,
    /// Whether to colour them.
    pub color: ColorChoice,
}

/// Runs the receiver until Ctrl-C or SIGTERM, then drains and reports the summary.
pub async fn listen(options: ListenOptions) -> Result<Summary, ServerError> {
    let terminal = output::stdout_is_terminal();
    let format = options.format.resolve(terminal);
    let color = options
        .color
        .resolve(terminal, std::env::var("NO_COLOR").ok().as_deref());
    let printer = output::spawn_printer(format, color);

    let mut builder = Server::builder()
        .bind(options.bind)
        .behaviour(options.behaviour)
        .max_body(options.max_body)
        .keep(options.keep);
    if let Some(path) = &options.record {
        builder = builder.record(path);
    }
    if let Some(admin) = options.admin {
        builder = builder.admin(admin);
    }
    if let Some(seed) = options.seed {
        builder = builder.seed(seed);
    }
    let mut printer_thread = None;
    if let Some((sender, thread)) = printer {
        builder = builder.observe(sender);
        printer_thread = Some(thread);
    }
    let handle = builder.spawn().await?;
    output::announce_listening(&handle.url());
    if let Some(url) = handle.admin_url() {
        output::announce_inspector(&url, options.admin_public);
    }

    shutdown_signal().await;
    let summary = handle.shutdown().await;
    if let Some(thread) = printer_thread {
        // The server (and with it the printer's sender) is gone: the printer drains and ends.
        tokio::task::spawn_blocking(move || thread.finish())
            .await
            .ok();
    }
    output::announce_summary(&summary);
    Ok(summary)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Outcome of `hookscope replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// Every selected request got an HTTP answer (exit 0).
    AllAnswered,
    /// Some got no answer (exit 1).
    SomeFailed,
    /// The file could not be read (exit 2).
    Unreadable,
}

/// Re-sends the recorded requests that pass every filter, one after another,
/// printing what each got back. Unfinished lines are skipped with a warning.
pub async fn replay_file(
    file: &Path,
    to: &reqwest::Url,
    filters: &[crate::send::RecordFilter],
    timeout: std::time::Duration,
) -> ReplayOutcome {
    let text = match std::fs::read(file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => {
            eprintln!("hookscope: cannot read {}: {error}", file.display());
            return ReplayOutcome::Unreadable;
        }
    };
    let client = crate::send::client(timeout);
    let mut outcome = ReplayOutcome::AllAnswered;
    let mut sent = 0;
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: serde_json::Value = match serde_json::from_str(line) {
            Ok(parsed) => parsed,
            Err(_) => {
                output::log_warning(format_args!(
                    "{}:{}: not a complete JSON line (an unfinished write?), skipped",
                    file.display(),
                    number + 1
                ));
                continue;
            }
        };
        if !filters.iter().all(|filter| filter.matches(&parsed)) {
            continue;
        }
        let request = match crate::send::RecordedRequest::from_record_line(line) {
            Ok(request) => request,
            Err(error) => {
                output::log_warning(format_args!(
                    "{}:{}: {error}, skipped",
                    file.display(),
                    number + 1
                ));
                continue;
            }
        };
        sent += 1;
        let result = crate::send::replay(&client, &request, to).await;
        if result.is_err() {
            outcome = ReplayOutcome::SomeFailed;
        }
        output::print_replay(&request, &result);
    }
    eprintln!("hookscope: replayed {sent} request(s) to {to}");
    outcome
}

/// How `hookscope validate` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidateFormat {
    /// Readable lines.
    Text,
    /// One JSON object per input.
    Json,
}

/// Outcome of `hookscope validate`, which decides its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidateOutcome {
    /// Every input is a valid alert (exit 0).
    AllValid,
    /// At least one input is not (exit 1).
    SomeInvalid,
    /// At least one input could not be read (exit 2).
    Unreadable,
}

/// Checks each input (a path, or `-`/nothing for stdin) and prints one verdict per input.
pub fn validate_inputs(inputs: &[PathBuf], format: ValidateFormat) -> ValidateOutcome {
    let stdin = [PathBuf::from("-")];
    let inputs = if inputs.is_empty() {
        &stdin[..]
    } else {
        inputs
    };
    let mut outcome = ValidateOutcome::AllValid;
    for input in inputs {
        match read_input(input) {
            Ok(bytes) => {
                let verdict = validate(&bytes);
                if !verdict.is_valid() && outcome == ValidateOutcome::AllValid {
                    outcome = ValidateOutcome::SomeInvalid;
                }
                print_verdict(input, &verdict, format);
            }
            Err(error) => {
                eprintln!("hookscope: cannot read {}: {error}", input.display());
                outcome = ValidateOutcome::Unreadable;
            }
        }
    }
    outcome
}

fn read_input(input: &Path) -> std::io::Result<Vec<u8>> {
    if input == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        Ok(bytes)
    } else {
        std::fs::read(input)
    }
}

fn print_verdict(input: &Path, verdict: &Verdict, format: ValidateFormat) {
    let name = input.display().to_string();
    match format {
        ValidateFormat::Json => {
            let line = serde_json::json!({
                "input": name,
                "valid": verdict.is_valid(),
                "problems": verdict.problems,
                "warnings": verdict.warnings,
            });
            println!("{}", output::escape::escape_line(&line.to_string()));
        }
        ValidateFormat::Text => {
            let name = output::escape::escape_line(&name);
            let state = if verdict.is_valid() {
                "valid"
            } else {
                "invalid"
            };
            println!("{name}: {state}");
            for problem in &verdict.problems {
                println!("  ✘ {}", output::escape::escape_line(&problem.to_string()));
            }
            for warning in &verdict.warnings {
                println!("  ⚠ {}", output::escape::escape_line(&warning.to_string()));
            }
        }
    }
}
