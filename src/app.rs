//! What each command does once its flags are values: the glue between the
//! server, the printer and the process (signals, files, exit codes).

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::alert::{validate, Verdict};
use crate::capture::Summary;
use crate::output::{self, ColorChoice, FormatChoice};
use crate::respond::Behaviour;
use crate::server::{Limits, Server, ServerError};

/// Everything `hookscope listen` needs, as library values.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Where to listen.
    pub bind: SocketAddr,
    /// How to answer.
    pub behaviour: Behaviour,
    /// Seed for random failures.
    pub seed: Option<u64>,
    /// Certificate and key files, to serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Exchanges kept in the history.
    pub keep: usize,
    /// Bytes the history may hold.
    pub keep_bytes: u64,
    /// Record file.
    pub record: Option<PathBuf>,
    /// Admin listener address, if any.
    pub admin: Option<SocketAddr>,
    /// The admin address was allowed off loopback.
    pub admin_public: bool,
    /// Largest body read.
    pub max_body: u64,
    /// Timeouts and caps against slow and abusive clients.
    pub limits: Limits,
    /// How long requests in flight may take to finish at shutdown.
    pub shutdown_timeout: std::time::Duration,
    /// How to print exchanges.
    pub format: FormatChoice,
    /// Whether to colour them.
    pub color: ColorChoice,
}

/// Why `listen` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The certificate or key cannot be used (a usage error: exit 2).
    #[error(transparent)]
    Tls(#[from] crate::server::tls::TlsError),
    /// The server could not start.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// Runs the receiver until Ctrl-C or SIGTERM, then drains and reports the summary.
pub async fn listen(options: ListenOptions) -> Result<Summary, ListenError> {
    let tls = match &options.tls {
        Some((cert, key)) => Some(crate::server::tls::server_config(cert, key)?),
        None => None,
    };
    let terminal = output::stdout_is_terminal();
    let format = options.format.resolve(terminal);
    let color = options
        .color
        .resolve(terminal, std::env::var("NO_COLOR").ok().as_deref());
    let shutdown = ShutdownSignal::install();
    let printer = output::spawn_printer(format, color);

    let mut builder = Server::builder()
        .bind(options.bind)
        .behaviour(options.behaviour)
        .max_body(options.max_body)
        .limits(options.limits)
        .shutdown_timeout(options.shutdown_timeout)
        .keep(options.keep)
        .keep_bytes(options.keep_bytes);
    if let Some(path) = &options.record {
        builder = builder.record(path);
    }
    if let Some(admin) = options.admin {
        builder = builder.admin(admin);
    }
    if let Some(tls) = tls {
        builder = builder.tls(tls);
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

    shutdown.received().await;
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

/// Ctrl-C and SIGTERM, listened for from before the server announces itself: a
/// signal that arrives right after the `listening on` line must drain and report
/// like any other, not kill the process with the default action.
struct ShutdownSignal {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    fn install() -> ShutdownSignal {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            ShutdownSignal {
                terminate: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        ShutdownSignal {}
    }

    async fn received(self) {
        #[cfg(unix)]
        {
            let (Some(mut terminate), Some(mut interrupt)) = (self.terminate, self.interrupt)
            else {
                let _ = tokio::signal::ctrl_c().await;
                return;
            };
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
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
    headers: &[(http::HeaderName, http::HeaderValue)],
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
            Ok(request) => request.with_headers(headers),
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

/// Outcome of `hookscope send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// An attempt got a 2XX (exit 0).
    Delivered,
    /// Every attempt failed (exit 1).
    Failed,
    /// Bad usage or unreadable/invalid input (exit 2).
    BadInput,
}

/// What `hookscope send` sends and how.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Target.
    pub to: reqwest::Url,
    /// The alert file (`-` for stdin); `None` with `test` sends the test alert.
    pub file: Option<PathBuf>,
    /// Send Panther's test alert.
    pub test: bool,
    /// Extra headers.
    pub headers: http::HeaderMap,
    /// Retries and backoff.
    pub policy: crate::send::RetryPolicy,
    /// Per-attempt timeout.
    pub timeout: std::time::Duration,
    /// Skip the schema check of the file.
    pub no_validate: bool,
    /// How HTTPS is verified.
    pub verify: crate::send::Verify,
    /// Print the status as JSON.
    pub json: bool,
}

/// Delivers one alert with retries and prints its delivery status.
pub async fn send(options: SendOptions) -> SendOutcome {
    let body = if options.test {
        let alert = crate::alert::Alert::test_alert(chrono::Utc::now());
        match serde_json::to_vec(&alert) {
            Ok(bytes) => bytes,
            Err(error) => {
                eprintln!("hookscope: cannot build the test alert: {error}");
                return SendOutcome::BadInput;
            }
        }
    } else {
        let input = options.file.clone().unwrap_or_else(|| PathBuf::from("-"));
        match read_input(&input) {
            Ok(bytes) => {
                let verdict = validate(&bytes);
                if !verdict.is_valid() && !options.no_validate {
                    eprintln!("hookscope: {} is not a valid Panther alert (send it anyway with --no-validate):", input.display());
                    for problem in &verdict.problems {
                        eprintln!("  ✘ {}", output::escape::escape_line(&problem.to_string()));
                    }
                    return SendOutcome::BadInput;
                }
                bytes
            }
            Err(error) => {
                eprintln!("hookscope: cannot read {}: {error}", input.display());
                return SendOutcome::BadInput;
            }
        }
    };
    if options.verify == crate::send::Verify::Insecure {
        output::log_warning(format_args!(
            "--insecure: the server's certificate is not verified"
        ));
    }
    let client = match crate::send::sender_client(options.timeout, &options.verify) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("hookscope: {error}");
            return SendOutcome::BadInput;
        }
    };
    let mut rng = fastrand::Rng::new();
    let status = crate::send::deliver(
        &client,
        &options.to,
        body.into(),
        &options.headers,
        options.policy,
        &mut rng,
    )
    .await;
    output::print_delivery(&status, options.json);
    if status.delivered {
        SendOutcome::Delivered
    } else {
        SendOutcome::Failed
    }
}

/// Writes `cert.pem` and `key.pem` into `out` and says how to use them.
pub fn write_cert(out: &Path, names: &[String]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let generated = crate::server::tls::generate_cert(names)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let cert = out.join("cert.pem");
    let key = out.join("key.pem");
    std::fs::write(&cert, &generated.cert_pem)
        .with_context(|| format!("cannot write {}", cert.display()))?;
    write_private(&key, generated.key_pem.as_bytes())
        .with_context(|| format!("cannot write {}", key.display()))?;
    println!("certificate: {}", cert.display());
    println!("key:         {}", key.display());
    println!("valid for:   {}", generated.names.join(", "));
    println!();
    println!(
        "serve HTTPS: hookscope listen --tls-cert {} --tls-key {}",
        cert.display(),
        key.display()
    );
    println!(
        "trust it:    curl --cacert {} https://localhost:8081/",
        cert.display()
    );
    println!(
        "             hookscope send --cacert {} --to https://localhost:8081/ --test",
        cert.display()
    );
    println!("self-signed, for local testing only: never use it for anything else");
    Ok(())
}

/// Writes a file only its owner can read (a private key).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
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
