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
        .max_body(options.max_body);
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
