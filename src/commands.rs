//! What each command does once its flags are values: the glue between the
//! library and the process. Everything the binary prints is here (the exchanges
//! themselves by the library's printer, started here), and every exit code.

use std::io::{BufRead as _, IsTerminal as _, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use hookscope::escape::escape_line;
use hookscope::outgoing::{Trust, TrustError, Url};
use hookscope::output::{ColorChoice, StdoutFull, Tone, painted};
use hookscope::send::{self, RecordedRequest};
use hookscope::{RecordLine, ServerBuilder, Verdict, output, panther, validate};
use tokio::signal::unix::{Signal as UnixSignal, SignalKind, signal};

use http::HeaderMap;

use crate::cli::{
    CertArgs, Cli, Command, ExportArgs, ImportArgs, InspectArgs, ListenArgs, ProbeArgs,
    ProbeFormat, ReplayArgs, SendArgs, ValidateFormat,
};

/// How a command ended, which is its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked (exit 0).
    Success,
    /// It ran, and the answer is no: an invalid alert, a delivery that failed (exit 1).
    Negative,
    /// What it was given cannot be used: a flag, a file (exit 2).
    Usage,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Negative => ExitCode::from(1),
            Outcome::Usage => ExitCode::from(2),
        }
    }
}

/// An error in what the user gave (exit 2), as opposed to one of the machine (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// Makes a command that only prints end as Unix tools do when its reader goes away
/// (`hookscope examples | head`): killed by SIGPIPE, silently, instead of a panic in
/// `println!`. Not for the commands that talk to the network, where a peer that
/// goes away must be an error on that socket, not the end of the process.
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: restores the default action of one signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Runs the chosen command.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let command = cli
        .command
        .unwrap_or_else(|| Command::Listen(Box::new(cli.listen)));
    if matches!(
        command,
        Command::Examples
            | Command::Schema
            | Command::Validate(_)
            | Command::Export(_)
            | Command::Probe(_)
    ) {
        end_quietly_on_a_closed_pipe();
    }
    match command {
        Command::Listen(args) => runtime()?.block_on(listen(*args)),
        Command::Replay(args) => Ok(runtime()?.block_on(replay_file(&args))),
        Command::Validate(args) => Ok(validate_inputs(&args.inputs, args.format, &args.schema)),
        Command::Send(args) => Ok(runtime()?.block_on(send(&args))),
        Command::Probe(args) => Ok(runtime()?.block_on(probe(&args))),
        Command::Cert(args) => write_cert(&args),
        Command::Export(args) => Ok(export(&args)),
        Command::Inspect(args) => runtime()?.block_on(inspect(&args)),
        Command::Import(args) => Ok(runtime()?.block_on(import(&args))),
        Command::Examples => {
            println!("{}", crate::cli::COOKBOOK);
            Ok(Outcome::Success)
        }
        Command::Schema => {
            println!("{}", hookscope::alert::JSON_SCHEMA);
            Ok(Outcome::Success)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs the receiver until Ctrl-C or SIGTERM, then drains and prints the summary.
async fn listen(args: ListenArgs) -> anyhow::Result<Outcome> {
    let ListenArgs {
        config,
        format,
        color,
        stdout_full,
    } = args;
    let terminal = output::stdout_is_terminal();
    let format = format.resolve(terminal);
    let color = color.resolve(terminal, std::env::var("NO_COLOR").ok().as_deref());
    let admin_public = config.admin_public;
    let store = config.store.clone();
    let mut signals = Signals::install();
    let handle = match ServerBuilder::from_config(config).spawn().await {
        Ok(handle) => handle,
        // Whatever stops hookscope from starting is for the user to change (a flag, a
        // file, a port in use): exit 2. The library's messages already carry their
        // cause: print each once.
        Err(error) => return Err(UsageError(error.to_string()).into()),
    };
    // Quiet prints nothing, so it subscribes to nothing (and nothing waits for it).
    let printer = (format != output::Format::Quiet).then(|| {
        let exchanges = match stdout_full {
            StdoutFull::Wait => handle.subscribe_lossless(output::PRINTER_BACKLOG),
            StdoutFull::Drop => handle.subscribe(output::PRINTER_BACKLOG),
        };
        output::spawn_printer(format, color, handle.admin_url(), exchanges)
    });
    eprintln!("hookscope: listening on {}", handle.url());
    match (handle.store_summary(), &store) {
        (Some(stored), Some(hookscope::StoreLocation::Team(url))) => {
            eprintln!("hookscope: store {url} (shared by every hookscope given it): {stored}")
        }
        (Some(stored), _) => eprintln!("hookscope: store: {stored}"),
        (None, _) => {}
    }
    if let Some(url) = handle.admin_url() {
        eprintln!("hookscope: inspector on {url}");
        if admin_public {
            eprintln!(
                "hookscope: WARNING: the admin API is exposed beyond this machine (--admin-public): \
                 anyone who reaches it can read every request and change the answers"
            );
        }
    }

    // SIGHUP opens the record file again (after a rotation), as log tools do.
    while let Signal::Hangup = signals.next().await {
        match handle.reopen_record().await {
            Ok(()) => eprintln!("hookscope: SIGHUP: record file reopened"),
            Err(error) => eprintln!("hookscope: error: SIGHUP: {error}"),
        }
    }
    let stats = handle.shutdown().await;
    if let Some(printer) = printer.flatten() {
        // The server (and with it the printer's subscription) is gone: the printer drains and ends.
        tokio::task::spawn_blocking(move || printer.finish())
            .await
            .ok();
    }
    eprintln!("hookscope: summary: {}", output::summary_line(&stats));
    Ok(Outcome::Success)
}

/// Adds a record file's exchanges to a store: exit 0 when every line was imported,
/// 1 when some were skipped (each named), 2 when the file or the store cannot be used.
async fn import(args: &ImportArgs) -> Outcome {
    if hookscope::TeamUrl::is_url(&args.store.to_string_lossy()) {
        // Not a file name to create: say so rather than make a file called `postgres:`.
        eprintln!(
            "hookscope: error: import adds to a --store file only, not to a PostgreSQL store; \
             import into a file and inspect it, or send the requests to a team instance with replay"
        );
        return Outcome::Usage;
    }
    let file = args.file.display();
    let mut reader = match std::fs::File::open(&args.file) {
        Ok(opened) => std::io::BufReader::new(opened),
        Err(error) => {
            eprintln!("hookscope: error: cannot read {file}: {error}");
            return Outcome::Usage;
        }
    };
    let har = is_har(&mut reader);
    let mut importer = match hookscope::Importer::open(&args.store) {
        Ok(importer) => importer,
        Err(error) => {
            eprintln!("hookscope: error: {error}");
            return Outcome::Usage;
        }
    };
    if har {
        return import_har(args, reader, importer).await;
    }
    let (mut skipped, mut ids) = (0u64, None::<(u64, u64)>);
    let mut bytes = Vec::new();
    for number in 1.. {
        let line = match read_line_capped(&mut reader, &mut bytes, args.max_line) {
            Ok(Some(Line::Whole)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Some(Line::TooLong)) => {
                tracing::warn!("{file}:{number}: longer than --max-line, skipped");
                skipped += 1;
                continue;
            }
            Ok(None) => break,
            Err(error) => {
                eprintln!("hookscope: error: cannot read {file}: {error}");
                return Outcome::Usage;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match importer.add(&line).await {
            Ok(id) => ids = Some((ids.map_or(id, |(first, _)| first), id)),
            Err(hookscope::ImportError::Store(error)) => {
                eprintln!("hookscope: error: {error}");
                return Outcome::Usage;
            }
            Err(error) => {
                tracing::warn!("{file}:{number}: {error}, skipped");
                skipped += 1;
            }
        }
    }
    let imported = match importer.finish().await {
        Ok(imported) => imported,
        Err(error) => {
            eprintln!("hookscope: error: {error}");
            return Outcome::Usage;
        }
    };
    let ids = ids.map_or(String::new(), |(first, last)| {
        format!(" as ids {first}–{last}")
    });
    let skipped_text = match skipped {
        0 => String::new(),
        count => format!("; {count} line(s) skipped (named above)"),
    };
    eprintln!(
        "hookscope: imported {imported} exchange(s) from {file} into {}{ids}{skipped_text}",
        args.store.display()
    );
    if skipped > 0 {
        Outcome::Negative
    } else {
        Outcome::Success
    }
}

/// Imports the entries of a HAR file: all of them, or none when one cannot be read
/// (a HAR file is one document: a broken one is refused whole, exit 2).
async fn import_har(
    args: &ImportArgs,
    reader: std::io::BufReader<std::fs::File>,
    mut importer: hookscope::Importer,
) -> Outcome {
    let file = args.file.display();
    let Some(text) = read_har(reader, &args.file) else {
        return Outcome::Usage;
    };
    let Some(entries) = har_entries(&text, &args.file) else {
        return Outcome::Usage;
    };
    let mut exchanges = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        match RecordedRequest::har_exchange(index + 1, entry) {
            Ok(exchange) => exchanges.push(exchange),
            Err(error) => {
                eprintln!("hookscope: error: {file}: {error}; nothing imported");
                return Outcome::Usage;
            }
        }
    }
    let mut ids = None::<(u64, u64)>;
    for exchange in exchanges {
        match importer.add_exchange(exchange).await {
            Ok(id) => ids = Some((ids.map_or(id, |(first, _)| first), id)),
            Err(error) => {
                eprintln!("hookscope: error: {error}");
                return Outcome::Usage;
            }
        }
    }
    match importer.finish().await {
        Ok(imported) => {
            let ids = ids.map_or(String::new(), |(first, last)| {
                format!(" as ids {first}–{last}")
            });
            eprintln!(
                "hookscope: imported {imported} exchange(s) from {file} into {}{ids}",
                args.store.display()
            );
            Outcome::Success
        }
        Err(error) => {
            eprintln!("hookscope: error: {error}");
            Outcome::Usage
        }
    }
}

/// Serves the inspector over a store until Ctrl-C or SIGTERM.
async fn inspect(args: &InspectArgs) -> anyhow::Result<Outcome> {
    let mut signals = Signals::install();
    let inspector = match hookscope::Inspector::start(&args.file, args.admin).await {
        Ok(inspector) => inspector,
        Err(error) => return Err(UsageError(error.to_string()).into()),
    };
    eprintln!(
        "hookscope: store {}: {} (read-only)",
        args.file,
        inspector.summary()
    );
    eprintln!("hookscope: inspector on {}", inspector.url());
    while let Signal::Hangup = signals.next().await {}
    inspector.stop().await;
    Ok(Outcome::Success)
}

/// Ctrl-C and SIGTERM (stop), and SIGHUP (reopen the record), listened for from
/// before the server announces itself: a signal that arrives right after the
/// `listening on` line must be handled like any other, not kill the process with
/// the default action.
struct Signals {
    terminate: Option<UnixSignal>,
    interrupt: Option<UnixSignal>,
    hangup: Option<UnixSignal>,
}

/// What [`Signals::next`] heard.
enum Signal {
    /// Ctrl-C or SIGTERM: drain and stop.
    Stop,
    /// SIGHUP: reopen the record file.
    Hangup,
}

impl Signals {
    fn install() -> Signals {
        Signals {
            terminate: signal(SignalKind::terminate()).ok(),
            interrupt: signal(SignalKind::interrupt()).ok(),
            hangup: signal(SignalKind::hangup()).ok(),
        }
    }

    async fn next(&mut self) -> Signal {
        let (Some(terminate), Some(interrupt)) = (&mut self.terminate, &mut self.interrupt) else {
            let _ = tokio::signal::ctrl_c().await;
            return Signal::Stop;
        };
        let hangup = async {
            match &mut self.hangup {
                Some(hangup) => hangup.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = terminate.recv() => Signal::Stop,
            _ = interrupt.recv() => Signal::Stop,
            _ = hangup => Signal::Hangup,
        }
    }
}

/// The sender for `replay`, or `None` when its CA file cannot be used (said).
fn sender(trust: &Trust, timeout: Duration) -> Option<send::Sender> {
    said_on_error(send::Sender::new(trust, timeout))
}

fn said_on_error(sender: Result<send::Sender, TrustError>) -> Option<send::Sender> {
    sender
        .map_err(|error| eprintln!("hookscope: error: {error}"))
        .ok()
}

/// Re-sends the recorded requests that pass every filter, one after another,
/// printing what each got back. Unfinished lines are skipped with a warning.
/// Exit 0 when every one got an HTTP answer, 1 when some did not, 2 when the file
/// cannot be read.
async fn replay_file(args: &ReplayArgs) -> Outcome {
    let file = &args.file;
    let mut reader = match std::fs::File::open(file) {
        Ok(opened) => std::io::BufReader::new(opened),
        Err(error) => {
            eprintln!("hookscope: error: cannot read {}: {error}", file.display());
            return Outcome::Usage;
        }
    };
    let Some(filter) = filter_of(&args.filters) else {
        return Outcome::Usage;
    };
    let Some(client) = sender(&Trust::SystemRoots, args.timeout) else {
        return Outcome::Usage;
    };
    if is_har(&mut reader) {
        return replay_har(args, reader, &client).await;
    }
    let mut outcome = Outcome::Success;
    let (mut sent, mut unreadable, mut nowhere) = (0, 0, 0);
    let mut bytes = Vec::new();
    for number in 0.. {
        // One line at a time, never more than --max-line of it in memory.
        let line = match read_line_capped(&mut reader, &mut bytes, args.max_line) {
            Ok(Some(Line::Whole)) => String::from_utf8_lossy(&bytes),
            Ok(Some(Line::TooLong)) => {
                tracing::warn!(
                    "{}:{}: longer than --max-line ({}), skipped",
                    file.display(),
                    number + 1,
                    args.max_line
                );
                unreadable += 1;
                outcome = Outcome::Negative;
                continue;
            }
            Ok(None) => break,
            Err(error) => {
                eprintln!("hookscope: error: cannot read {}: {error}", file.display());
                outcome = Outcome::Negative;
                break;
            }
        };
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let skipped = |why: &dyn std::fmt::Display| {
            tracing::warn!("{}:{}: {why}, skipped", file.display(), number + 1);
        };
        let parsed = match RecordLine::parse(line) {
            Ok(parsed) => parsed,
            Err(error) => {
                // A line that cannot be read back is something not replayed: the
                // exit code says so, not only the warning.
                skipped(&error);
                unreadable += 1;
                outcome = Outcome::Negative;
                continue;
            }
        };
        if !filter.matches_line(&parsed) {
            continue;
        }
        let request = match RecordedRequest::try_from(&parsed) {
            Ok(request) => request.with_headers(&args.headers),
            Err(error) => {
                // A head the HTTP parser refused: there is nothing to send.
                skipped(&error);
                continue;
            }
        };
        let forwarded_to = parsed.upstream.as_ref().map(|leg| leg.url.as_str());
        let to = match (&args.to, forwarded_to.map(Url::parse)) {
            (Some(to), _) => to.clone(),
            (None, Some(Ok(url))) => url,
            (None, _) => {
                skipped(&"no --to, and it was not forwarded (recorded without --forward)");
                nowhere += 1;
                outcome = Outcome::Negative;
                continue;
            }
        };
        sent += 1;
        let result = send::replay(&client, &request, &to, args.max_response_body).await;
        if result.is_err() {
            outcome = Outcome::Negative;
        }
        print_replay(&request, &result);
    }
    let mut unread = match unreadable {
        0 => String::new(),
        count => format!("; {count} line(s) could not be read"),
    };
    if nowhere > 0 {
        unread.push_str(&format!("; {nowhere} had nowhere to go (no --to)"));
    }
    let to = match &args.to {
        Some(to) => to.to_string(),
        None => "where they were forwarded".into(),
    };
    eprintln!("hookscope: replayed {sent} request(s) to {to}{unread}");
    outcome
}

/// How a line of a record file was read.
enum Line {
    /// All of it, in the buffer.
    Whole,
    /// It was longer than the cap; it was read past and is not in the buffer.
    TooLong,
}

/// Reads the next line into `bytes` (cleared first), holding at most `max` bytes
/// of it; `None` at the end of the file.
fn read_line_capped(
    reader: &mut impl std::io::BufRead,
    bytes: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<Line>> {
    bytes.clear();
    let read = reader
        .by_ref()
        .take(max as u64 + 1)
        .read_until(b'\n', bytes)?;
    if read == 0 {
        return Ok(None);
    }
    if bytes.len() <= max || bytes.ends_with(b"\n") {
        return Ok(Some(Line::Whole));
    }
    // Past the cap: read on to the end of the line without keeping it.
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        match memchr::memchr(b'\n', available) {
            Some(end) => {
                reader.consume(end + 1);
                break;
            }
            None => {
                let all = available.len();
                reader.consume(all);
            }
        }
    }
    bytes.clear();
    Ok(Some(Line::TooLong))
}

/// Prints one replay's result on stdout.
fn print_replay(request: &RecordedRequest, result: &Result<send::Replayed, send::ReplayError>) {
    let what = format!("#{} {} {}", request.id, request.method, request.path);
    match result {
        Ok(replayed) => println!(
            "{} → {} {} ({:.1} ms) {}{}",
            escape_line(&what),
            replayed.status,
            escape_line(&replayed.url),
            replayed.took_ms,
            escape_line(replayed.body.strip_suffix('\n').unwrap_or(&replayed.body)),
            if replayed.truncated {
                " … (cut at --max-response-body)"
            } else {
                ""
            }
        ),
        Err(error) if !error.sent => println!(
            "{} → not sent: {}",
            escape_line(&what),
            escape_line(&error.reason)
        ),
        Err(error) => println!(
            "{} → no answer: {}",
            escape_line(&what),
            escape_line(&error.to_string())
        ),
    }
}

/// Prints a delivery status the way Panther's Alert Details page keeps it.
fn print_delivery(status: &send::DeliveryStatus, as_json: bool, looks: SendLooks) {
    if as_json {
        println!(
            "{}",
            escape_line(&serde_json::to_string(status).unwrap_or_default())
        );
        return;
    }
    let count = status.attempts.len();
    let plural = if count == 1 { "" } else { "s" };
    let outcome = if status.delivered {
        painted(
            &format!("delivered after {count} attempt{plural}"),
            Tone::Good,
            looks.stdout_color,
        )
    } else {
        painted(
            &format!("FAILED after {count} attempt{plural}"),
            Tone::Bad,
            looks.stdout_color,
        )
    };
    if looks.attempts_shown {
        // They are on the screen already, one line each, as they ended.
        println!(
            "delivery to {}: {outcome} (above)",
            escape_line(&status.url)
        );
    } else {
        println!("delivery to {}: {outcome}", escape_line(&status.url));
        for attempt in &status.attempts {
            println!("  {}", attempt_line(attempt, looks.stdout_color));
        }
    }
    if status.gave_up {
        println!("retrying stopped at the schedule's time limit (Panther retries for 30 minutes)");
    }
    // What Panther's delivery status shows (its `message`), with the body's final newline as an end.
    let message = &status.message;
    println!(
        "message: {}",
        escape_line(message.strip_suffix('\n').unwrap_or(message))
    );
    match &status.response_body {
        // A body's final newline ends the line; it is not shown as `\n`.
        Some(body) => println!(
            "response body{}: {}",
            if status.response_body_truncated {
                " (cut at --max-response-body)"
            } else {
                ""
            },
            escape_line(body.strip_suffix('\n').unwrap_or(body))
        ),
        None => println!("response body: (none: no response was received)"),
    }
}

/// The bytes `send` delivers: Panther's test alert or an example, built as Panther
/// builds them, or the file's alert re-encoded as Panther writes it (as it is with
/// --raw); a file that is not a valid alert is refused unless --no-validate.
fn alert_to_send(args: &SendArgs) -> Result<Vec<u8>, Outcome> {
    let now = args.created_at.unwrap_or_else(chrono::Utc::now);
    let built = match (args.test, args.example) {
        (true, _) => Some(panther::Source::test(now)),
        (false, Some(example)) => Some(panther::Source::example(example, now)),
        (false, None) => None,
    };
    if let Some(source) = built {
        let source = if args.resend { source.resent() } else { source };
        let app_url = args.panther_url.as_str();
        return Ok(panther::encode(&source.notification(app_url)));
    }
    if args.file.is_none() && std::io::stdin().is_terminal() {
        // Nothing piped in: waiting for typing would look like a hang.
        eprintln!(
            "hookscope: error: no alert to send: give a FILE, --test or --example TYPE, \
             pipe one in, or give - to type it here"
        );
        return Err(Outcome::Usage);
    }
    let input = args.file.clone().unwrap_or_else(|| PathBuf::from("-"));
    let bytes = read_input(&input).map_err(|error| {
        eprintln!("hookscope: error: cannot read {}: {error}", input.display());
        Outcome::Usage
    })?;
    let verdict = validate(&bytes);
    if !verdict.is_valid() && !args.no_validate {
        eprintln!(
            "hookscope: error: {} is not a valid Panther alert (send it anyway with --no-validate):",
            input.display()
        );
        for problem in &verdict.problems {
            eprintln!("  ✘ {}", escape_line(&problem.to_string()));
        }
        return Err(Outcome::Usage);
    }
    if args.raw {
        return Ok(bytes);
    }
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes) {
        Ok(mut alert) => {
            if args.resend {
                if let Some(serde_json::Value::String(title)) = alert.get_mut("title") {
                    *title = format!("[Re-sent]: {title}");
                }
            }
            Ok(panther::encode_map(&alert))
        }
        // Not a JSON object (sent with --no-validate): there is nothing to re-encode.
        Err(_) => Ok(bytes),
    }
}

/// Probes a receiver and prints the scorecard: exit 0 nothing failed, 1 a check
/// failed, 2 bad usage (an unknown check, a CA file that cannot be used).
async fn probe(args: &ProbeArgs) -> Outcome {
    use hookscope::probe::report;
    let probe = args.probe();
    let names: Vec<&str> = probe.profile.checks().map(|check| check.name).collect();
    if let Some(unknown) = args
        .only
        .iter()
        .find(|name| !names.contains(&name.as_str()))
    {
        eprintln!(
            "hookscope: error: --only {}: no such check in the {} profile (one of {})",
            escape_line(unknown),
            probe.profile.name,
            names.join(", ")
        );
        return Outcome::Usage;
    }
    if probe.trust == Trust::Insecure {
        tracing::warn!("--insecure: the receiver's certificate is not verified");
    }
    let color = args.color.resolve(
        std::io::stdout().is_terminal(),
        std::env::var("NO_COLOR").ok().as_deref(),
    );
    // Text goes out a check at a time: a slow receiver's probe takes minutes.
    let text = args.format == ProbeFormat::Text;
    let running = names
        .iter()
        .copied()
        .filter(|name| args.only.is_empty() || args.only.iter().any(|only| only == name));
    let width = report::name_width(running);
    if text {
        print!(
            "{}",
            report::text_start(probe.url.as_str(), probe.profile.name)
        );
    }
    let mut each = |check: &hookscope::probe::CheckReport| {
        if text {
            print!("{}", report::text_check(check, width, color));
        }
    };
    let scorecard = match hookscope::probe::run(&probe, &mut each).await {
        Ok(scorecard) => scorecard,
        Err(error) => {
            eprintln!("hookscope: error: {error}");
            return Outcome::Usage;
        }
    };
    match args.format {
        ProbeFormat::Text => print!("{}", report::text_end(&scorecard)),
        ProbeFormat::Json => print!("{}", report::json(&scorecard)),
        ProbeFormat::Junit => print!("{}", report::junit(&scorecard)),
    }
    if scorecard.failed() {
        Outcome::Negative
    } else {
        Outcome::Success
    }
}

/// Delivers one alert with retries and prints its delivery status: exit 0
/// delivered, 1 every attempt failed, 2 bad input.
async fn send(args: &SendArgs) -> Outcome {
    let body = match alert_to_send(args) {
        Ok(body) => body,
        Err(outcome) => return outcome,
    };
    let trust = args.trust();
    if trust == Trust::Insecure {
        tracing::warn!("--insecure: the server's certificate is not verified");
    }
    let Some(sender) = said_on_error(send::Sender::as_panther(&trust, args.timeout)) else {
        return Outcome::Usage;
    };
    let mut rng = match args.seed {
        Some(seed) => fastrand::Rng::with_seed(seed),
        None => fastrand::Rng::new(),
    };
    let policy = args.retry_policy();
    let delivery = send::Delivery {
        url: args.to.clone(),
        user_agent: args.user_agent.clone(),
        body: body.into(),
        headers: HeaderMap::from_iter(args.headers.iter().cloned()),
        max_response_body: args.max_response_body,
        signers: args.sign.clone(),
        sign_timestamp: args.sign_timestamp,
        message_id: None,
    };
    let stderr_is_terminal = std::io::stderr().is_terminal();
    let looks = SendLooks::new(args.color);
    // The countdown on the terminal, stopped and cleared before the attempt's line (its
    // own last wake-up would race the attempt).
    let mut counting: Option<tokio::task::JoinHandle<()>> = None;
    let mut report = |progress: send::Progress<'_>| match progress {
        send::Progress::Attempted(attempt) => {
            if let Some(countdown) = counting.take() {
                countdown.abort();
                eprint!("\r\x1b[K");
            }
            eprintln!("hookscope: {}", attempt_line(attempt, looks.stderr_color));
        }
        send::Progress::Waiting { next, of, delay } if stderr_is_terminal => {
            counting = Some(tokio::spawn(countdown(next, of, delay)));
        }
        send::Progress::Waiting { next, of, delay } => eprintln!(
            "hookscope: attempt {next} of {of} in {}",
            humantime::format_duration(Duration::from_millis(delay.as_millis() as u64))
        ),
    };
    let status = send::deliver(&sender, &delivery, policy, &mut rng, &mut report).await;
    if let Some(unfixable) = status.stopped {
        let fix = match unfixable {
            send::Unfixable::UntrustedCertificate => {
                "give its CA with --cacert (for a `hookscope cert` pair, --cacert DIR/cert.pem), or skip the check with --insecure"
            }
            send::Unfixable::UnknownHost => "check the host name in --to",
        };
        eprintln!(
            "hookscope: hint: {unfixable}, and retrying will not change that, so no retry was made: {fix}. \
             (Panther would retry it all the same; --retry-all-errors does too.)"
        );
    }
    print_delivery(&status, args.json, looks);
    if status.delivered {
        Outcome::Success
    } else {
        Outcome::Negative
    }
}

/// Counts down to the next attempt on the terminal, on one line it rewrites, and
/// clears it when the attempt starts.
async fn countdown(next: u32, of: u32, delay: Duration) {
    let until = tokio::time::Instant::now() + delay;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        eprint!(
            "\rhookscope: attempt {next} of {of} in {}s \x1b[K",
            left.as_secs_f64().ceil()
        );
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
    eprint!("\r\x1b[K");
}

/// Whether a file is a HAR document rather than a record: record lines always start
/// with `{"id":` or `{"raw_body":`; a HAR file is one JSON object with `log`.
fn is_har(reader: &mut std::io::BufReader<std::fs::File>) -> bool {
    let Ok(start) = std::io::BufRead::fill_buf(reader) else {
        return false;
    };
    let text = String::from_utf8_lossy(start);
    let text = text.trim_start();
    text.starts_with('{') && !text.starts_with("{\"id\":") && !text.starts_with("{\"raw_body\":")
}

/// Largest HAR file replayed (it is read whole).
const MAX_HAR: u64 = 256 * 1024 * 1024;

/// Replays the requests of a HAR file, in order (`--to` is needed: a HAR file says
/// where requests went, not where to send them now).
/// A HAR file's text, read whole (at most [`MAX_HAR`]), or `None` once said why not.
fn read_har(reader: std::io::BufReader<std::fs::File>, path: &Path) -> Option<String> {
    let file = path.display();
    // Sized from the file at once: a Vec that doubles while reading peaks at three
    // times the file.
    let size = reader
        .get_ref()
        .metadata()
        .map_or(0, |metadata| metadata.len().min(MAX_HAR + 1));
    let mut text = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    if let Err(error) = reader.take(MAX_HAR + 1).read_to_end(&mut text) {
        eprintln!("hookscope: error: cannot read {file}: {error}");
        return None;
    }
    if text.len() as u64 > MAX_HAR {
        eprintln!("hookscope: error: {file} is larger than {MAX_HAR} bytes; use a record instead");
        return None;
    }
    let text = String::from_utf8(text).ok();
    if text.is_none() {
        eprintln!("hookscope: error: {file}: not a HAR file: it is not UTF-8 text");
    }
    text
}

/// The entries of a HAR document, or `None` once why not is said.
fn har_entries<'a>(text: &'a str, path: &Path) -> Option<Vec<&'a serde_json::value::RawValue>> {
    RecordedRequest::har_entries(text)
        .map_err(|error| eprintln!("hookscope: error: {}: {error}", path.display()))
        .ok()
}

async fn replay_har(
    args: &ReplayArgs,
    reader: std::io::BufReader<std::fs::File>,
    client: &send::Sender,
) -> Outcome {
    let file = args.file.display();
    let Some(to) = &args.to else {
        eprintln!("hookscope: error: {file} is a HAR file: give --to, where to send its requests");
        return Outcome::Usage;
    };
    let Some(text) = read_har(reader, &args.file) else {
        return Outcome::Usage;
    };
    let Some(entries) = har_entries(&text, &args.file) else {
        return Outcome::Usage;
    };
    // Checked whole before anything is sent, then read again one at a time to send:
    // a bad entry stops the replay before it starts, and only one body is held.
    for (index, entry) in entries.iter().enumerate() {
        if let Err(error) = RecordedRequest::from_har_entry(index + 1, entry) {
            eprintln!("hookscope: error: {file}: {error}");
            return Outcome::Usage;
        }
    }
    let mut outcome = Outcome::Success;
    let count = entries.len();
    for (index, entry) in entries.iter().enumerate() {
        let Ok(request) = RecordedRequest::from_har_entry(index + 1, entry) else {
            continue;
        };
        let request = request.with_headers(&args.headers);
        let result = send::replay(client, &request, to, args.max_response_body).await;
        if result.is_err() {
            outcome = Outcome::Negative;
        }
        print_replay(&request, &result);
    }
    eprintln!("hookscope: replayed {count} request(s) from {file} to {to}");
    outcome
}

/// The `--filter` pairs as one filter (each was checked when the flags were read;
/// together they can still disagree), or `None` after saying why.
fn filter_of(pairs: &[String]) -> Option<hookscope::Filter> {
    hookscope::Filter::from_pairs(pairs)
        .map_err(|error| eprintln!("hookscope: error: --filter: {error}"))
        .ok()
}

/// Writes a record as a HAR 1.2 file on stdout (the requests that pass the filters),
/// one line read and one entry written at a time: memory does not grow with the file.
fn export(args: &ExportArgs) -> Outcome {
    use std::io::{BufRead, Write};
    let Some(filter) = filter_of(&args.filters) else {
        return Outcome::Usage;
    };
    let file = match std::fs::File::open(&args.file) {
        Ok(file) => std::io::BufReader::new(file),
        Err(error) => {
            eprintln!(
                "hookscope: error: cannot read {}: {error}",
                args.file.display()
            );
            return Outcome::Usage;
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut written = out.write_all(hookscope::HAR_START.as_bytes());
    let mut skipped = 0;
    let mut first = true;
    for line in file.split(b'\n') {
        let Ok(line) = line else {
            skipped += 1;
            break;
        };
        let Ok(line) = std::str::from_utf8(&line) else {
            skipped += 1;
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let parsed = match RecordLine::parse(line) {
            Ok(parsed) => parsed,
            Err(_) => {
                skipped += 1;
                continue;
            }
        };
        if !filter.matches_line(&parsed) {
            continue;
        }
        let Some(entry) = hookscope::har_entry(&parsed) else {
            continue;
        };
        if !first {
            written = written.and_then(|()| out.write_all(b","));
        }
        first = false;
        written = written
            .and_then(|()| serde_json::to_writer(&mut out, &entry).map_err(std::io::Error::other));
    }
    written = written
        .and_then(|()| out.write_all(hookscope::HAR_END.as_bytes()))
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(error) = written {
        eprintln!("hookscope: error: cannot write the HAR: {error}");
        return Outcome::Negative;
    }
    if skipped > 0 {
        tracing::warn!(
            "{skipped} line(s) of {} could not be read and are not in the HAR",
            args.file.display()
        );
        return Outcome::Negative;
    }
    Outcome::Success
}

/// One attempt of a delivery, on one line: number, time, status or error, duration.
/// How `send` prints: the colour of each stream, and whether the attempts, printed
/// live on stderr, are on the same terminal as the final status.
#[derive(Debug, Clone, Copy)]
struct SendLooks {
    stderr_color: bool,
    stdout_color: bool,
    attempts_shown: bool,
}

impl SendLooks {
    fn new(color: ColorChoice) -> SendLooks {
        let no_color = std::env::var("NO_COLOR").ok();
        let stderr_terminal = std::io::stderr().is_terminal();
        let stdout_terminal = std::io::stdout().is_terminal();
        SendLooks {
            stderr_color: color.resolve(stderr_terminal, no_color.as_deref()),
            stdout_color: color.resolve(stdout_terminal, no_color.as_deref()),
            attempts_shown: stderr_terminal && stdout_terminal,
        }
    }
}

fn attempt_line(attempt: &send::AttemptReport, color: bool) -> String {
    let result = match (&attempt.status, &attempt.error) {
        (Some(code), None) if !(200..300).contains(code) => {
            format!("{code}  {}", attempt.message.trim_end())
        }
        (Some(code), None) => code.to_string(),
        (Some(code), Some(error)) => format!("{code} (body unreadable: {error})"),
        (None, Some(error)) => format!("error: {error}"),
        (None, None) => "no answer".into(),
    };
    let delivered = attempt
        .status
        .is_some_and(|code| (200..300).contains(&code));
    let tone = if delivered { Tone::Good } else { Tone::Bad };
    format!(
        "attempt {:>2}  {}  {}  ({:.1} ms)",
        attempt.number,
        attempt
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        painted(&escape_line(&result), tone, color),
        attempt.took_ms
    )
}

/// Writes `cert.pem` and `key.pem` into `out` and says how to use them.
fn write_cert(args: &CertArgs) -> anyhow::Result<Outcome> {
    let out = &args.out;
    let cert = out.join("cert.pem");
    let key = out.join("key.pem");
    let existing: Vec<String> = [&cert, &key]
        .into_iter()
        .filter(|path| path.exists())
        .map(|path| path.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(UsageError(format!(
            "{} already exist{}: keep them, or replace them with --force",
            existing.join(" and "),
            if existing.len() == 1 { "s" } else { "" }
        ))
        .into());
    }
    let generated = hookscope::generate_cert(&args.names)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
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
    Ok(Outcome::Success)
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

/// Checks each input (a path, or `-`/nothing for stdin) and prints one verdict per input.
/// Exit 0 when every input is a valid alert, 1 when one is not, 2 when one cannot be read.
fn validate_inputs(
    inputs: &[PathBuf],
    format: ValidateFormat,
    schema: &hookscope::schemas::Schema,
) -> Outcome {
    let stdin = [PathBuf::from("-")];
    let inputs = if inputs.is_empty() {
        &stdin[..]
    } else {
        inputs
    };
    let mut outcome = Outcome::Success;
    for input in inputs {
        match read_input(input) {
            Ok(bytes) => {
                // `--schema none` checks nothing: every input passes.
                let verdict = schema.check(&bytes).unwrap_or_default();
                if !verdict.is_valid() && outcome == Outcome::Success {
                    outcome = Outcome::Negative;
                }
                print_verdict(input, &verdict, format);
            }
            Err(error) => {
                let message = format!("cannot read {}: {error}", input.display());
                match format {
                    // One object per input, readable or not.
                    ValidateFormat::Json => println!(
                        "{}",
                        escape_line(
                            &serde_json::json!({"input": input.display().to_string(), "error": message})
                                .to_string()
                        )
                    ),
                    ValidateFormat::Text => eprintln!("hookscope: error: {message}"),
                }
                outcome = Outcome::Usage;
            }
        }
    }
    outcome
}

fn read_input(input: &Path) -> std::io::Result<Vec<u8>> {
    if input == Path::new("-") {
        if std::io::stdin().is_terminal() {
            eprintln!("hookscope: reading the alert from standard input: paste it, then Ctrl-D");
        }
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
            println!("{}", escape_line(&line.to_string()));
        }
        ValidateFormat::Text => {
            let name = escape_line(&name);
            let state = if verdict.is_valid() {
                "valid"
            } else {
                "invalid"
            };
            println!("{name}: {state}");
            for problem in &verdict.problems {
                println!("  ✘ {}", escape_line(&problem.to_string()));
            }
            for warning in &verdict.warnings {
                println!("  ⚠ {}", escape_line(&warning.to_string()));
            }
        }
    }
}
