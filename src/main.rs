//! The `hookscope` binary: parse the command line, install the diagnostics
//! writer, run the command, and turn how it ended into the exit code
//! (0 ok, 1 a negative result or a failure, 2 usage: a flag or an input that cannot be used).

mod cli;
mod commands;
mod diagnostics;

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc rather than glibc's allocator: with `--record`, the 1 KB body copy of
/// each request made glibc consolidate its fast bins every time (a tenth of the CPU
/// in `perf`); measured in one run, mimalloc answers 23% more requests per second
/// there and 5% more quiet, for ~10 MiB more resident memory (bench/run.sh, and the
/// ceilings of examples/baseline.rs use it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // clap refuses a malformed flag itself, naming it, with exit code 2.
    let cli = cli::Cli::parse_from(cli::with_help_topics(std::env::args_os()));
    diagnostics::install();
    match commands::run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            eprintln!("hookscope: error: {error:#}");
            let usage = error.is::<commands::UsageError>();
            commands::Outcome::exit_code(if usage {
                commands::Outcome::Usage
            } else {
                commands::Outcome::Negative
            })
        }
    }
}
