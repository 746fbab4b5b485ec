//! The command line: clap definitions only. `listen`'s flags are the library's
//! [`Config`] itself; every malformed flag is refused by clap at start-up (exit 2).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hookscope::Config;
use hookscope::output::{ColorChoice, FormatChoice, StdoutFull};
use hookscope::panther::{DEFAULT_APP_URL, Example};
use hookscope::values::{parse_duration, parse_header, parse_http_url, parse_size_usize};
use http::{HeaderName, HeaderValue};

/// A few common sessions, at the end of `hookscope listen --help`.
const LISTEN_EXAMPLES: &str = "\
Examples:
  hookscope listen                         # on :8081, inspector on :9081
  hookscope listen --script '503*2,200'    # fail each alert twice, then ack
  hookscope listen --route /down=drop      # /down drops the connection
  hookscope listen --format json --record a.jsonl
  hookscope listen --forward http://127.0.0.1:3000/hook   # in front of your app
  hookscope listen --port 0 --admin 127.0.0.1:0   # free ports (a second one)";

/// Common sessions, for `hookscope examples` and `hookscope help examples`.
pub const COOKBOOK: &str = "\
Receive Panther alerts behind a tunnel, with a shared secret:
  hookscope --require-header \"X-Panther-Token: $PANTHER_TOKEN\"
  ngrok http 8081

Watch a sender's retries: fail each alert twice, then acknowledge:
  hookscope --script '503*2,200'
  hookscope --script '500,drop,reset,200@2s'    # every kind of failure, then a slow ack

Different answers per path, and invalid alerts refused:
  hookscope --route /down=503 --route /flaky=500*2,200 --strict

Long sessions: one line per exchange, everything in a file:
  hookscope --format line --record alerts.jsonl

Send them again, to your own receiver:
  hookscope replay alerts.jsonl --to http://127.0.0.1:3000/webhook --filter verdict=valid

In front of your own receiver, and the lost acknowledgement (your app gets it twice):
  hookscope --forward http://127.0.0.1:3000/webhook
  hookscope --forward http://127.0.0.1:3000/webhook --script 'forward>503,forward'

Check another sender's signatures and payloads:
  hookscope --verify github:env:GITHUB_WEBHOOK_SECRET --schema-route /github=push.schema.json
  hookscope send --to http://127.0.0.1:3000/webhook --test --sign stripe:env:STRIPE_SECRET

Take traffic away for DevTools:
  hookscope export alerts.jsonl --har > alerts.har

Be Panther: deliver the test alert with Panther's retries (compressed 100 times):
  hookscope send --to http://127.0.0.1:3000/webhook --test --schedule panther --time-scale 0.01
  hookscope send --to http://127.0.0.1:3000/webhook --example policy

Is your receiver ready for Panther? A scorecard (duplicates need --state):
  hookscope probe http://127.0.0.1:3000/webhook --state http://127.0.0.1:3000/tickets

HTTPS on your machine:
  hookscope cert --out ./dev-certs
  hookscope --tls-cert dev-certs/cert.pem --tls-key dev-certs/key.pem

Check alert files offline, and get the schema:
  hookscope validate alert.json
  hookscope schema > panther-alert.schema.json

A second hookscope beside the first: free ports for both listeners:
  hookscope --port 0 --admin 127.0.0.1:0";

/// Receive webhooks (Panther alerts first) on your machine and see exactly what arrived.
#[derive(Debug, Parser)]
#[command(
    name = "hookscope",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = LISTEN_EXAMPLES
)]
pub struct Cli {
    /// What to do; without one, hookscope listens.
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub listen: ListenArgs,
}

/// hookscope's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive webhooks, check them against the Panther alert schema, print them and answer.
    #[command(after_help = LISTEN_EXAMPLES)]
    Listen(Box<ListenArgs>),
    /// Check alert files against the schema, offline (exit 0 all valid, 1 some invalid, 2 unreadable).
    Validate(ValidateArgs),
    /// Print the JSON Schema (2020-12) of the Panther alert payload.
    Schema,
    /// Re-send requests recorded with --record to another receiver and print what each got back.
    Replay(ReplayArgs),
    /// Deliver an alert the way Panther does (retries, delivery status); exit 0 delivered, 1 failed.
    Send(Box<SendArgs>),
    /// Probe your own receiver as Panther (or a Standard Webhooks sender) would use it, and
    /// score what will go wrong: exit 0 nothing failed, 1 a check failed.
    #[command(after_help = PROBE_EXAMPLES)]
    Probe(Box<ProbeArgs>),
    /// Write a self-signed certificate and key for localhost, for --tls-cert/--tls-key.
    Cert(CertArgs),
    /// Write the exchanges of a --record file as a HAR 1.2 file (for browsers' DevTools) on stdout.
    Export(ExportArgs),
    /// Open the inspector over a --store file, read-only, with no webhook listener.
    Inspect(InspectArgs),
    /// Add the exchanges of a --record file to a --store file (renumbered after its last).
    Import(ImportArgs),
    /// Print a cookbook of common sessions (also `hookscope help examples`).
    #[command(after_help = COOKBOOK)]
    Examples,
}

/// Flags of `hookscope send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// The receiver's URL (http or https).
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub to: hookscope::outgoing::Url,

    /// The alert to send; `-` or nothing reads standard input. It is re-encoded as Panther
    /// writes alerts (key order, HTML escaping) unless --raw is given.
    #[arg(value_name = "FILE", conflicts_with_all = ["test", "example"])]
    pub file: Option<PathBuf>,

    /// Send Panther's "Send Test Alert" payload instead of a file.
    #[arg(long, conflicts_with = "example")]
    pub test: bool,

    /// Send an example alert of this type, built as Panther builds it.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub example: Option<Example>,

    /// The createdAt of --test or --example (RFC 3339), e.g. to send an old alert; default now.
    #[arg(long, value_parser = parse_created_at, value_name = "TIME", conflicts_with = "file")]
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,

    /// Send it as Panther's manual re-send does: the title starts with `[Re-sent]: `.
    #[arg(long)]
    pub resend: bool,

    /// Panther's app URL, which the links of --test and --example point into.
    #[arg(long, default_value = DEFAULT_APP_URL, value_parser = parse_http_url, value_name = "URL")]
    pub panther_url: hookscope::outgoing::Url,

    /// Send the file's bytes exactly as they are, not re-encoded as Panther writes alerts.
    #[arg(long, conflicts_with_all = ["test", "example", "resend"])]
    pub raw: bool,

    /// The User-Agent header; Panther's sender is Go's HTTP client.
    #[arg(long, default_value = "Go-http-client/1.1", value_parser = parse_header_value, value_name = "TEXT")]
    pub user_agent: HeaderValue,

    /// When retries come: Panther's real schedule (a random 30-300 s wait, for at most 30
    /// minutes; see --time-scale), or exponential (--backoff, doubled each time) for quick runs.
    #[arg(long, value_enum, default_value_t = ScheduleChoice::Exponential, value_name = "SCHEDULE")]
    pub schedule: ScheduleChoice,

    /// Multiplies every wait of --schedule panther and its 30-minute limit, e.g. 0.01 for 0.3-3 s.
    #[arg(long, default_value = "1", value_parser = parse_time_scale, value_name = "FACTOR")]
    pub time_scale: f64,

    /// Seed for the random waits, so that a run can be repeated exactly.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Extra header on every attempt, as 'Name: value' (repeatable), e.g. a shared secret.
    #[arg(long = "header", value_parser = parse_header, value_name = "'NAME: VALUE'")]
    pub headers: Vec<(HeaderName, HeaderValue)>,

    /// Sign every attempt as SCHEME does, with SECRET (the secret, env:NAME or file:PATH), so
    /// that a receiver's signature check can be tested (repeatable): standard-webhooks, github,
    /// stripe, slack, shopify, hmac-sha256/HEADER[/hex|base64[/PREFIX]]. A standard-webhooks
    /// whsk_ secret key makes ed25519 (v1a) signatures; whsec_ makes HMAC (v1) ones.
    #[arg(long = "sign", value_parser = hookscope::signature::KeyParser::for_signing(), value_name = "SCHEME:SECRET")]
    pub sign: Vec<hookscope::signature::Key>,

    /// The time the signatures of --sign claim (unix seconds or RFC 3339), e.g. an hour ago to
    /// test that a receiver refuses an expired signature; default: each attempt's own time.
    #[arg(long, value_parser = parse_sign_timestamp, value_name = "TIME", requires = "sign")]
    pub sign_timestamp: Option<i64>,

    /// Retries after the first attempt (Panther retries up to 10 times).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub retries: u32,

    /// Retry every failure, as Panther does: by default an untrusted certificate or a host
    /// name that does not resolve stops at once, since no retry will change it.
    #[arg(long)]
    pub retry_all_errors: bool,

    /// With --schedule exponential: wait before the first retry, doubled for each next one
    /// (capped at 60s, ±20% jitter); 0 for none.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub backoff: Duration,

    /// Give up on one attempt after this long.
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Send even if the file is not a valid Panther alert.
    #[arg(long)]
    pub no_validate: bool,

    /// Trust only this CA certificate (PEM) for https:// targets, as curl --cacert does.
    #[arg(long, value_name = "PEM", conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,

    /// Do not verify https:// certificates at all (prints a warning).
    #[arg(long)]
    pub insecure: bool,

    /// Print the delivery status as JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Colour the attempts and the outcome: auto is on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Most of a response body read; the rest is not read, and the status says it was cut.
    #[arg(long, default_value = hookscope::outgoing::DEFAULT_MAX_RESPONSE_BODY_TEXT, value_parser = parse_size_usize, value_name = "SIZE")]
    pub max_response_body: usize,
}

const PROBE_EXAMPLES: &str = "\
Examples:
  hookscope probe http://127.0.0.1:3000/webhooks/panther
  hookscope probe http://127.0.0.1:3000/hook --state http://127.0.0.1:3000/tickets/count
  hookscope probe https://hooks.example.com/panther --format junit > probe.xml
  hookscope probe http://127.0.0.1:3000/svix --profile standard-webhooks --sign standard-webhooks:env:WEBHOOK_SECRET
  hookscope probe http://127.0.0.1:3000/hook --only idempotency --only storm --storm 50";

/// Flags of `hookscope probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// Your receiver's URL (http or https).
    #[arg(value_name = "URL", value_parser = parse_http_url)]
    pub url: hookscope::outgoing::Url,

    /// The sender to play: panther (its alert types, wire format, 50 s limit, retries) or
    /// standard-webhooks (signed events, webhook-id as the idempotency key, a 15 s limit).
    #[arg(long, value_enum, default_value = "panther", value_name = "PROFILE")]
    pub profile: hookscope::probe::ProfileName,

    /// A GET on your receiver whose JSON changes with each effect (e.g. {"tickets": 3}): read
    /// before and after each copy, it tells whether a duplicate acted twice.
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub state: Option<hookscope::outgoing::Url>,

    /// Wait this long after an answer before reading --state (a receiver that acts after it answers).
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION", requires = "state")]
    pub state_settle: Duration,

    /// Run only this check (repeatable): alert-types (or event-types), signature, content-type,
    /// latency, idempotency, storm, hard-bodies, slow-body, certificate, keep-alive.
    #[arg(long = "only", value_name = "CHECK")]
    pub only: Vec<String>,

    /// How to print the scorecard: text, json, or junit (JUnit XML for CI systems).
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub format: ProbeFormat,

    /// Give up on one answer after this long (Panther: about 50 s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,

    /// Warn when answers take longer than this (p99).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub warn_latency: Duration,

    /// How many deliveries the storm check sends at once.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000), value_name = "N")]
    pub storm: u16,

    /// How long the slow-body check takes to send its body.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub trickle: Duration,

    /// Retry a failed delivery up to N times, on --schedule, so that a receiver that
    /// recovers (after a restart) is seen recovering: the check then warns.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,

    /// When retries come: panther (30 s to 5 min, scaled by --time-scale) or exponential (--backoff).
    #[arg(long, value_enum, default_value_t = ScheduleChoice::Panther, value_name = "SCHEDULE")]
    pub schedule: ScheduleChoice,

    /// Multiplies --schedule panther's waits: 0.01 makes them 0.3 to 3 s.
    #[arg(long, default_value = "1", value_parser = parse_time_scale, value_name = "FACTOR")]
    pub time_scale: f64,

    /// With --schedule exponential: the wait before the first retry, doubled each time.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub backoff: Duration,

    /// Sign every delivery as SCHEME does (see send --sign); needed by the signature check.
    #[arg(long = "sign", value_parser = hookscope::signature::KeyParser::for_signing(), value_name = "SCHEME:SECRET")]
    pub sign: Vec<hookscope::signature::Key>,

    /// Makes the keys and waits repeatable.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Trust only this CA certificate (PEM) for https:// receivers.
    #[arg(long, value_name = "PEM", conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,

    /// Do not verify https:// certificates (the certificate check is skipped).
    #[arg(long)]
    pub insecure: bool,

    /// Colour the scorecard: auto is on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// How `probe` prints its scorecard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeFormat {
    /// For people, coloured on a terminal.
    Text,
    /// One JSON document.
    Json,
    /// JUnit XML.
    Junit,
}

impl ProbeArgs {
    /// The probe the flags ask for.
    pub fn probe(&self) -> hookscope::probe::Probe {
        let profile = self.profile.profile();
        hookscope::probe::Probe {
            url: self.url.clone(),
            profile,
            state: self.state.clone(),
            state_settle: self.state_settle,
            only: self.only.clone(),
            trust: trust_of(self.cacert.as_ref(), self.insecure),
            timeout: self
                .timeout
                .unwrap_or(profile.answer_limit + Duration::from_secs(5)),
            warn_latency: self.warn_latency,
            storm: usize::from(self.storm),
            policy: hookscope::send::RetryPolicy {
                retries: self.retries,
                schedule: schedule_of(self.schedule, self.time_scale, self.backoff),
                retry_all_errors: true,
            },
            signers: self.sign.clone(),
            trickle: self.trickle,
            seed: self.seed,
        }
    }
}

/// Flags of `hookscope export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// A file written by `listen --record`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Write HAR 1.2: the one format, and the default (scripts may say it, for the day there are more).
    #[arg(long)]
    pub har: bool,

    /// Only requests that match, as FIELD=VALUE, in the inspector's and the API's filter
    /// language: id, since, status (503, 5xx, dropped), verdict, method, path (a prefix by
    /// segments), alert, severity, problems=true, q (text). Repeatable: all must match.
    #[arg(long = "filter", value_name = "FIELD=VALUE", value_parser = filter_pair)]
    pub filters: Vec<String>,
}

/// Flags of `hookscope import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// A file written by `listen --record`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The store to add them to (created if new); not one a running hookscope has open.
    #[arg(long, value_name = "DB")]
    pub store: PathBuf,

    /// Longest record line read; longer ones are skipped (exit 1).
    #[arg(long, default_value = "8MiB", value_parser = parse_size_usize, value_name = "SIZE")]
    pub max_line: usize,
}

/// Flags of `hookscope inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// A store written by `listen --store` (it may be in use by a running hookscope), or a
    /// team's PostgreSQL URL (the inspector then shows what every instance receives, live).
    #[arg(value_name = "FILE|URL", value_parser = hookscope::StoreArgument)]
    pub file: hookscope::StoreLocation,

    /// Where the inspector listens (loopback only).
    #[arg(long, default_value = "127.0.0.1:9081", value_name = "ADDR")]
    pub admin: std::net::SocketAddr,
}

/// Flags of `hookscope cert`.
#[derive(Debug, Clone, Args)]
pub struct CertArgs {
    /// Folder to write cert.pem and key.pem into.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out: PathBuf,

    /// Extra host name or IP the certificate is valid for, besides localhost, 127.0.0.1 and ::1 (repeatable).
    #[arg(long = "name", value_name = "HOST")]
    pub names: Vec<String>,

    /// Replace cert.pem and key.pem if they exist (a new key: clients that trusted the old certificate will not trust this one).
    #[arg(long)]
    pub force: bool,
}

/// Flags of `hookscope replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// A file written by `listen --record`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Where to send: a base URL (the recorded path is appended) or a full URL. Without it,
    /// each request goes where it was forwarded to (a record made with `listen --forward`).
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub to: Option<hookscope::outgoing::Url>,

    /// Only requests that match, as FIELD=VALUE, in the inspector's and the API's filter
    /// language: id, since, status (503, 5xx, dropped), verdict, method, path (a prefix by
    /// segments), alert, severity, problems=true, q (text). Repeatable: all must match.
    #[arg(long = "filter", value_name = "FIELD=VALUE", value_parser = filter_pair)]
    pub filters: Vec<String>,

    /// Give up on one request after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Set this header on every request sent, replacing the recorded one (repeatable): the
    /// record masks --require-header secrets, so give the secret again here.
    #[arg(long = "header", value_parser = parse_header, value_name = "'NAME: VALUE'")]
    pub headers: Vec<(HeaderName, HeaderValue)>,

    /// Most of each response body read; the rest is not read, and the line says it was cut.
    #[arg(long, default_value = hookscope::outgoing::DEFAULT_MAX_RESPONSE_BODY_TEXT, value_parser = parse_size_usize, value_name = "SIZE")]
    pub max_response_body: usize,

    /// Longest record line read; longer ones are skipped (exit 1). A line holds its body up to
    /// three times (raw, JSON, escaped): raise this for records made with --max-body above 2MiB.
    #[arg(long, default_value = "8MiB", value_parser = parse_size_usize, value_name = "SIZE")]
    pub max_line: usize,
}

/// Flags of `hookscope listen`: the receiver's [`Config`], and how to print.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub config: Config,

    /// How each exchange is printed on stdout: auto is pretty on a terminal, json otherwise.
    #[arg(help_heading = "Output", long, value_enum, default_value_t = FormatChoice::Auto, value_name = "FORMAT")]
    pub format: FormatChoice,

    /// When stdout cannot keep up: wait (answers wait, nothing is lost) or drop (answers go on;
    /// what does not fit is not printed, but counted, and kept in the history and the record).
    #[arg(help_heading = "Output", long, value_enum, default_value_t = StdoutFull::Wait, value_name = "POLICY")]
    pub stdout_full: StdoutFull,

    /// When to colour the output; auto honours NO_COLOR.
    #[arg(help_heading = "Output", long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// Flags of `hookscope validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Files holding one alert each; `-` or nothing reads standard input.
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Report as readable text or as one JSON object per input.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,

    /// What to check against: panther (Panther's alert rules) or a JSON Schema file (draft
    /// 2020-12 or draft-07), as `listen --schema`.
    #[arg(long, default_value = "panther", value_name = "SCHEMA")]
    pub schema: hookscope::schemas::Schema,
}

/// `--format` of validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// Readable lines.
    Text,
    /// One JSON object per input.
    Json,
}

/// The retry schedules of `hookscope send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleChoice {
    /// Panther's: uniform 30-300 s between attempts, at most 30 minutes.
    Panther,
    /// --backoff, doubled each time, up to 60 s.
    Exponential,
}

/// A time in RFC 3339, e.g. 2026-11-27T08:12:30Z.
fn parse_created_at(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|at| at.with_timezone(&chrono::Utc))
        .map_err(|error| format!("expected an RFC 3339 time such as 2026-11-27T08:12:30Z: {error}"))
}

/// A signed time: unix seconds, or RFC 3339.
fn parse_sign_timestamp(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<i64>()
        .or_else(|_| parse_created_at(text).map(|at| at.timestamp()))
        .map_err(|_| format!("expected unix seconds or an RFC 3339 time, got {text:?}"))
}

/// A time scale: a positive, finite factor.
fn parse_header_value(text: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(text)
        .map_err(|_| format!("{text:?} has characters a header cannot carry"))
}

fn parse_time_scale(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale > 0.0 => Ok(scale),
        _ => Err(format!(
            "expected a factor above 0, e.g. 0.01 or 1, got {text:?}"
        )),
    }
}

impl SendArgs {
    /// The retry policy the flags ask for.
    pub fn retry_policy(&self) -> hookscope::send::RetryPolicy {
        hookscope::send::RetryPolicy {
            retries: self.retries,
            schedule: schedule_of(self.schedule, self.time_scale, self.backoff),
            retry_all_errors: self.retry_all_errors,
        }
    }

    /// How HTTPS targets are verified.
    pub fn trust(&self) -> hookscope::outgoing::Trust {
        trust_of(self.cacert.as_ref(), self.insecure)
    }
}

/// The retry schedule of `--schedule`, `--time-scale` and `--backoff`.
fn schedule_of(
    choice: ScheduleChoice,
    time_scale: f64,
    backoff: Duration,
) -> hookscope::send::Schedule {
    match choice {
        ScheduleChoice::Panther => hookscope::send::Schedule::Panther { time_scale },
        ScheduleChoice::Exponential => hookscope::send::Schedule::Exponential {
            backoff,
            max_backoff: Duration::from_secs(60),
        },
    }
}

/// Whom https trusts, from `--cacert` and `--insecure`.
fn trust_of(cacert: Option<&PathBuf>, insecure: bool) -> hookscope::outgoing::Trust {
    match (cacert, insecure) {
        (Some(path), _) => hookscope::outgoing::Trust::CaCert(path.clone()),
        (None, true) => hookscope::outgoing::Trust::Insecure,
        (None, false) => hookscope::outgoing::Trust::SystemRoots,
    }
}

/// The command line with `help examples` read as `examples`: clap's `help SUBCOMMAND`
/// would print the subcommand's usage, and the cookbook is what someone asking for
/// help with examples wants.
pub fn with_help_topics(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.len() == 3 && args[1] == "help" && args[2] == "examples" {
        args.remove(1);
    }
    args
}

/// One `--filter FIELD=VALUE`, checked at start-up as the whole filter will be.
fn filter_pair(text: &str) -> Result<String, String> {
    hookscope::Filter::from_pairs(&[text.to_owned()]).map(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn bare_hookscope_means_listen() {
        let cli = Cli::try_parse_from(["hookscope", "--port", "0", "--status", "503"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.listen.config.port, 0);
        assert_eq!(
            cli.listen.config.behaviour.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let cli = Cli::try_parse_from(["hookscope", "listen", "-p", "9000"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Listen(ref args)) if args.config.port == 9000));
    }

    #[test]
    fn output_flags_are_the_library_enums() {
        let cli =
            Cli::try_parse_from(["hookscope", "--format", "json", "--color", "never"]).unwrap();
        assert_eq!(cli.listen.format, FormatChoice::Json);
        assert_eq!(cli.listen.color, ColorChoice::Never);
        assert!(Cli::try_parse_from(["hookscope", "--format", "yaml"]).is_err());
    }

    #[test]
    fn every_help_example_parses() {
        let examples: Vec<&str> = LISTEN_EXAMPLES
            .lines()
            .filter_map(|line| line.trim().strip_prefix("hookscope "))
            .collect();
        assert_eq!(examples.len(), 6);
        for example in examples {
            let command = example.split('#').next().unwrap();
            let argv = std::iter::once("hookscope").chain(
                command
                    .split_whitespace()
                    .map(|word| word.trim_matches('\'')),
            );
            let parsed = Cli::try_parse_from(argv);
            assert!(parsed.is_ok(), "{example}: {:?}", parsed.err());
        }
    }

    #[test]
    fn every_cookbook_line_parses() {
        let mut count = 0;
        for line in COOKBOOK.lines() {
            let Some(command) = line.trim().strip_prefix("hookscope ") else {
                continue;
            };
            let command = command
                .split("  #")
                .next()
                .unwrap()
                .split(" > ")
                .next()
                .unwrap();
            // The shell's quoting, as far as these lines use it.
            let words: Vec<String> = command
                .split_whitespace()
                .map(|word| {
                    // Secrets and files the reader has, stood in for.
                    word.trim_matches(|c| c == '\'' || c == '"')
                        .replace("$PANTHER_TOKEN", "t")
                        .replace("env:GITHUB_WEBHOOK_SECRET", "s3cret")
                        .replace("env:STRIPE_SECRET", "s3cret")
                        .replace("push.schema.json", "none")
                })
                .collect();
            let words = if words[0] == "--require-header" {
                vec![
                    "--require-header".to_owned(),
                    format!("{} {}", words[1], words[2]),
                ]
            } else {
                words
            };
            let argv = std::iter::once("hookscope".to_owned()).chain(words);
            let parsed = Cli::try_parse_from(argv);
            assert!(parsed.is_ok(), "{line}: {:?}", parsed.err());
            count += 1;
        }
        assert!(count >= 12, "{count}");
    }

    #[test]
    fn listen_help_groups_its_flags() {
        use clap::CommandFactory as _;
        let mut command = Cli::command();
        let help = command
            .find_subcommand_mut("listen")
            .unwrap()
            .render_help()
            .to_string();
        for heading in [
            "Listening:",
            "Answers and faults:",
            "TLS and auth:",
            "History and record:",
            "Inspector and admin API:",
            "Limits:",
            "Output:",
            "Examples:",
        ] {
            assert!(help.contains(heading), "{heading} missing from {help}");
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
