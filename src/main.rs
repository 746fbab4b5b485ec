//! The `hookscope` binary: parse the command line, run the command, map the outcome
//! to an exit code (0 ok, 1 failure, 2 usage or unreadable input).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use hookscope::app::{self, ReplayOutcome, ValidateOutcome};
use hookscope::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli
        .command
        .unwrap_or_else(|| Command::Listen(Box::new(cli.listen)))
    {
        Command::Listen(args) => listen(args.options().unwrap_or_else(|error| error.exit())),
        Command::Replay(args) => {
            let outcome = runtime().map(|runtime| {
                runtime.block_on(app::replay_file(
                    &args.file,
                    &args.to,
                    &args.filters,
                    &args.headers,
                    args.timeout,
                ))
            });
            return match outcome {
                Ok(ReplayOutcome::AllAnswered) => ExitCode::SUCCESS,
                Ok(ReplayOutcome::SomeFailed) => ExitCode::from(1),
                Ok(ReplayOutcome::Unreadable) => ExitCode::from(2),
                Err(error) => {
                    eprintln!("hookscope: error: {error:#}");
                    ExitCode::from(1)
                }
            };
        }
        Command::Validate(args) => {
            return match app::validate_inputs(&args.inputs, args.report_format()) {
                ValidateOutcome::AllValid => ExitCode::SUCCESS,
                ValidateOutcome::SomeInvalid => ExitCode::from(1),
                ValidateOutcome::Unreadable => ExitCode::from(2),
            };
        }
        Command::Send(args) => {
            let options = args.options();
            return match runtime().map(|runtime| runtime.block_on(app::send(options))) {
                Ok(app::SendOutcome::Delivered) => ExitCode::SUCCESS,
                Ok(app::SendOutcome::Failed) => ExitCode::from(1),
                Ok(app::SendOutcome::BadInput) => ExitCode::from(2),
                Err(error) => {
                    eprintln!("hookscope: error: {error:#}");
                    ExitCode::from(1)
                }
            };
        }
        Command::Cert(args) => app::write_cert(&args.out, &args.names),
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn listen(options: app::ListenOptions) -> anyhow::Result<()> {
    match runtime()?.block_on(app::listen(options)) {
        Ok(_) => Ok(()),
        // The library's messages already carry their cause: print each once.
        Err(error) => {
            eprintln!("hookscope: error: {error}");
            // An unusable certificate, key or record file is a usage error, like a bad flag.
            let usage = matches!(
                error,
                app::ListenError::Tls(_)
                    | app::ListenError::Server(hookscope::ServerError::Record(_))
            );
            std::process::exit(if usage { 2 } else { 1 });
        }
    }
}
