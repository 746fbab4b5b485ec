//! The `hookscope` binary: parse the command line, run the command, map the outcome
//! to an exit code (0 ok, 1 failure, 2 usage or unreadable input).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use hookscope::app::{self, ValidateOutcome};
use hookscope::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Listen(cli.listen)) {
        Command::Listen(args) => listen(args.options()),
        Command::Validate(args) => {
            return match app::validate_inputs(&args.inputs, args.report_format()) {
                ValidateOutcome::AllValid => ExitCode::SUCCESS,
                ValidateOutcome::SomeInvalid => ExitCode::from(1),
                ValidateOutcome::Unreadable => ExitCode::from(2),
            };
        }
        Command::Schema => {
            println!("{}", hookscope::alert::JSON_SCHEMA);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookscope: error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn listen(options: app::ListenOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(app::listen(options))?;
    Ok(())
}
