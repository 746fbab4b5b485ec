//! The command line: clap definitions, and their conversion into library values.
//! No I/O happens here; every malformed flag is refused by clap at start-up (exit 2).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand, ValueEnum};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::app::{ListenOptions, ValidateFormat};
use crate::output::{ColorChoice, FormatChoice};
use crate::respond::{
    parse_fail_rate, parse_header, parse_status, Behaviour, Route, Script, ScriptScope,
};
use crate::send::RecordFilter;
use crate::server::{Limits, MIN_HEADER_SIZE};

/// Receive webhooks (Panther alerts first) on your machine and see exactly what arrived.
#[derive(Debug, Parser)]
#[command(
    name = "hookscope",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; without one, hookscope listens.
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub listen: ListenArgs,
}

/// hookscope's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive webhooks, check them against the Panther alert schema, print them and answer.
    Listen(Box<ListenArgs>),
    /// Check alert files against the schema, offline (exit 0 all valid, 1 some invalid, 2 unreadable).
    Validate(ValidateArgs),
    /// Print the JSON Schema (2020-12) of the Panther alert payload.
    Schema,
    /// Re-send requests recorded with --record to another receiver and print what each got back.
    Replay(ReplayArgs),
    /// Deliver an alert the way Panther does (retries, delivery status); exit 0 delivered, 1 failed.
    Send(SendArgs),
    /// Write a self-signed certificate and key for localhost, for --tls-cert/--tls-key.
    Cert(CertArgs),
}

/// Flags of `hookscope send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// The receiver's URL (http or https).
    #[arg(long, value_name = "URL")]
    pub to: reqwest::Url,

    /// The alert to send; `-` or nothing reads standard input.
    #[arg(value_name = "FILE", conflicts_with = "test")]
    pub file: Option<PathBuf>,

    /// Send Panther's "Send Test Alert" payload instead of a file.
    #[arg(long)]
    pub test: bool,

    /// Extra header on every attempt, as 'Name: value' (repeatable), e.g. a shared secret.
    #[arg(long = "header", value_parser = parse_header, value_name = "'NAME: VALUE'")]
    pub headers: Vec<(HeaderName, HeaderValue)>,

    /// Retries after the first attempt (Panther retries up to 10 times).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub retries: u32,

    /// Wait before the first retry, doubled for each next one (capped at 60s, ±20% jitter); 0 for none.
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
}

/// Flags of `hookscope replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// A file written by `listen --record`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Where to send: a base URL (the recorded path is appended) or a full URL.
    #[arg(long, value_name = "URL")]
    pub to: reqwest::Url,

    /// Only requests that match, as FIELD=VALUE: id, path (prefix), method, verdict, status (repeatable: all must match).
    #[arg(long = "filter", value_name = "FIELD=VALUE")]
    pub filters: Vec<RecordFilter>,

    /// Give up on one request after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Set this header on every request sent, replacing the recorded one (repeatable): the
    /// record masks --require-header secrets, so give the secret again here.
    #[arg(long = "header", value_parser = parse_header, value_name = "'NAME: VALUE'")]
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Flags of `hookscope listen`.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Port to listen on (0 picks a free one). 8081 is the port of Panther's example.
    #[arg(short, long, default_value_t = 8081, value_name = "PORT")]
    pub port: u16,

    /// Address to listen on. A tunnel agent (ngrok) connects from localhost.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub bind: IpAddr,

    /// Status code of every answer (100-599).
    #[arg(long, default_value = "200", value_parser = parse_status, value_name = "CODE")]
    pub status: StatusCode,

    /// Body of every answer; Panther keeps it in the alert's delivery status.
    #[arg(long, default_value = "success", value_name = "TEXT")]
    pub body: String,

    /// Header added to every answer, as 'Name: value' (repeatable).
    #[arg(long = "header", value_parser = parse_header, value_name = "'NAME: VALUE'")]
    pub headers: Vec<(HeaderName, HeaderValue)>,

    /// How long each answer waits before it is sent, e.g. 250ms, 2s, 1m.
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub delay: Duration,

    /// Sequence of answers, e.g. '503*3,200' or '500,drop,reset,hang,200@2s'; the last repeats.
    #[arg(long, value_name = "SPEC")]
    pub script: Option<Script>,

    /// Whose position in the script a request advances: each alert's own, or one shared.
    #[arg(long, value_enum, default_value_t = ScopeArg::PerAlert, value_name = "SCOPE")]
    pub script_scope: ScopeArg,

    /// A path prefix with its own script, e.g. '/flaky=500*2,200' (repeatable; longest prefix wins).
    #[arg(long = "route", value_name = "PATH=SPEC")]
    pub routes: Vec<Route>,

    /// Fraction of requests (0 to 1) answered --fail-status at random.
    #[arg(long, default_value = "0", value_parser = parse_fail_rate, value_name = "RATE")]
    pub fail_rate: f64,

    /// Status of the random failures.
    #[arg(long, default_value = "500", value_parser = parse_status, value_name = "CODE")]
    pub fail_status: StatusCode,

    /// Seed for --fail-rate, so a run can be repeated exactly.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Answer 400 with the problems (JSON) to a POST that is not a valid alert.
    #[arg(long)]
    pub strict: bool,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Refuse with 401 any request without this header and value, as 'Name: value' (repeatable).
    /// The value is compared in constant time and never printed.
    #[arg(long = "require-header", value_parser = parse_header, value_name = "'NAME: VALUE'")]
    pub required_headers: Vec<(HeaderName, HeaderValue)>,

    /// How many recent exchanges the history (admin API, inspector) keeps.
    #[arg(long, default_value_t = crate::capture::DEFAULT_KEEP, value_name = "N")]
    pub keep: usize,

    /// Most memory the history may hold (bodies, headers, answers); the oldest exchanges go first.
    #[arg(long, default_value = "64MiB", value_parser = parse_size, value_name = "SIZE")]
    pub keep_bytes: u64,

    /// Append every exchange to FILE as a JSON line; a 2XX is sent only once its line is written.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Address of the admin API and web inspector (never the webhook port, so never behind the tunnel).
    #[arg(long, default_value = "127.0.0.1:9081", value_name = "ADDR")]
    pub admin: SocketAddr,

    /// Do not start the admin API and inspector.
    #[arg(long, conflicts_with = "admin")]
    pub no_admin: bool,

    /// Allow --admin on a non-loopback address (the API can change answers and send requests).
    #[arg(long)]
    pub admin_public: bool,

    /// Largest request body read; larger ones get 413. E.g. 64KiB, 10MB.
    #[arg(long, default_value = "1MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_body: u64,

    /// Time a client has to send a request's headers; slower ones are disconnected (slowloris).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub header_read_timeout: Duration,

    /// Largest request head (request line and headers); larger ones get 431. At least 8KiB.
    #[arg(long, default_value = "64KiB", value_parser = parse_header_size, value_name = "SIZE")]
    pub max_header_size: usize,

    /// A connection with no request in flight and no bytes moving for this long is closed.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,

    /// Connections served at once; further ones wait until one closes.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub max_connections: u32,

    /// HTTP/2 streams a client may have open at once on one connection.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub h2_max_streams: u32,

    /// HTTP/2 streams a client may reset before they are answered, before the
    /// connection is closed (rapid reset, CVE-2023-44487).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub h2_max_resets: usize,

    /// On Ctrl-C or SIGTERM, how long requests in flight may take to finish.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_timeout: Duration,

    /// How each exchange is printed on stdout: auto is pretty on a terminal, json otherwise.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto, value_name = "FORMAT")]
    pub format: FormatArg,

    /// When to colour the output; auto honours NO_COLOR.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto, value_name = "WHEN")]
    pub color: ColorArg,
}

/// Flags of `hookscope validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Files holding one alert each; `-` or nothing reads standard input.
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Report as readable text or as one JSON object per input.
    #[arg(long, value_enum, default_value_t = ValidateFormatArg::Text)]
    pub format: ValidateFormatArg,
}

/// `--format` of listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum FormatArg {
    Auto,
    Pretty,
    Json,
    Quiet,
}

/// `--script-scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum ScopeArg {
    PerAlert,
    Global,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

/// `--format` of validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum ValidateFormatArg {
    Text,
    Json,
}

impl ListenArgs {
    /// The library's view of these flags, or a usage error (exit 2) for flags
    /// that are each fine but refused together.
    pub fn options(&self) -> Result<ListenOptions, clap::Error> {
        if !self.no_admin && !self.admin_public && !self.admin.ip().is_loopback() {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "--admin {} is not a loopback address: the admin API can change answers and send requests, \
                     so it listens only on 127.0.0.1 or ::1 unless --admin-public is given\n",
                    self.admin
                ),
            ));
        }
        Ok(self.options_unchecked())
    }

    fn options_unchecked(&self) -> ListenOptions {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        ListenOptions {
            bind: SocketAddr::new(self.bind, self.port),
            behaviour: Behaviour {
                status: self.status,
                body: Bytes::from(self.body.clone()),
                headers,
                delay: self.delay,
                script: self.script.clone(),
                routes: self.routes.clone(),
                scope: match self.script_scope {
                    ScopeArg::PerAlert => ScriptScope::PerAlert,
                    ScopeArg::Global => ScriptScope::Global,
                },
                fail_rate: self.fail_rate,
                fail_status: self.fail_status,
                strict: self.strict,
                required_headers: self.required_headers.clone(),
            },
            tls: self.tls_cert.clone().zip(self.tls_key.clone()),
            seed: self.seed,
            keep: self.keep,
            keep_bytes: self.keep_bytes,
            record: self.record.clone(),
            admin: (!self.no_admin).then_some(self.admin),
            admin_public: self.admin_public,
            max_body: self.max_body,
            limits: Limits {
                header_read_timeout: self.header_read_timeout,
                max_header_size: self.max_header_size,
                idle_timeout: self.idle_timeout,
                max_connections: self.max_connections as usize,
                h2_max_streams: self.h2_max_streams,
                h2_max_pending_resets: self.h2_max_resets,
            },
            shutdown_timeout: self.shutdown_timeout,
            format: match self.format {
                FormatArg::Auto => FormatChoice::Auto,
                FormatArg::Pretty => FormatChoice::Pretty,
                FormatArg::Json => FormatChoice::Json,
                FormatArg::Quiet => FormatChoice::Quiet,
            },
            color: match self.color {
                ColorArg::Auto => ColorChoice::Auto,
                ColorArg::Always => ColorChoice::Always,
                ColorArg::Never => ColorChoice::Never,
            },
        }
    }
}

impl SendArgs {
    /// The library's view of these flags.
    pub fn options(&self) -> crate::app::SendOptions {
        crate::app::SendOptions {
            to: self.to.clone(),
            file: self.file.clone(),
            test: self.test,
            headers: self.header_map(),
            policy: crate::send::RetryPolicy {
                retries: self.retries,
                backoff: self.backoff,
                ..Default::default()
            },
            timeout: self.timeout,
            no_validate: self.no_validate,
            verify: self.verify(),
            json: self.json,
        }
    }

    /// How HTTPS targets are verified.
    pub fn verify(&self) -> crate::send::Verify {
        match (&self.cacert, self.insecure) {
            (Some(path), _) => crate::send::Verify::CaCert(path.clone()),
            (None, true) => crate::send::Verify::Insecure,
            (None, false) => crate::send::Verify::SystemRoots,
        }
    }

    /// The extra headers as a map.
    pub fn header_map(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        headers
    }
}

impl ValidateArgs {
    /// The report format chosen.
    pub fn report_format(&self) -> ValidateFormat {
        match self.format {
            ValidateFormatArg::Text => ValidateFormat::Text,
            ValidateFormatArg::Json => ValidateFormat::Json,
        }
    }
}

/// Parses a duration such as `250ms`, `2s` or `1m30s` (`0` alone is allowed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text.trim())
        .map_err(|error| format!("{error} (expected e.g. 250ms, 2s, 1m)"))
}

/// Parses the head size limit: a size of at least [`MIN_HEADER_SIZE`].
pub fn parse_header_size(text: &str) -> Result<usize, String> {
    let size = parse_size(text)?;
    match usize::try_from(size) {
        Ok(size) if size >= MIN_HEADER_SIZE => Ok(size),
        _ => Err(format!(
            "{text} is below the smallest head size hyper can read, {}",
            bytesize::ByteSize::b(MIN_HEADER_SIZE as u64)
                .display()
                .iec()
        )),
    }
}

/// Parses a size such as `64KiB`, `10MB` or `1048576`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|error| format!("{error} (expected e.g. 64KiB, 1MiB, 10MB)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1KiB").is_err());
    }

    #[test]
    fn bare_hookscope_means_listen() {
        let cli = Cli::try_parse_from(["hookscope", "--port", "0", "--status", "503"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.listen.port, 0);
        assert_eq!(cli.listen.status, StatusCode::SERVICE_UNAVAILABLE);
        let cli = Cli::try_parse_from(["hookscope", "listen", "-p", "9000"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Listen(ref args)) if args.port == 9000));
    }

    #[test]
    fn fault_flags() {
        let cli = Cli::try_parse_from([
            "hookscope",
            "--script",
            "503*3,200",
            "--route",
            "/ok=200",
            "--route",
            "/down=503",
            "--fail-rate",
            "0.25",
            "--seed",
            "9",
            "--strict",
            "--script-scope",
            "global",
        ])
        .unwrap();
        let options = cli.listen.options().unwrap();
        assert_eq!(options.behaviour.script.unwrap().as_str(), "503*3,200");
        assert_eq!(options.behaviour.routes.len(), 2);
        assert_eq!(options.behaviour.scope, ScriptScope::Global);
        assert_eq!(options.behaviour.fail_rate, 0.25);
        assert_eq!(options.seed, Some(9));
        assert!(options.behaviour.strict);
        let error = Cli::try_parse_from(["hookscope", "--script", "503*x"]).unwrap_err();
        assert!(error.to_string().contains("at position 5"), "{error}");
        assert!(Cli::try_parse_from(["hookscope", "--fail-rate", "1.5"]).is_err());
    }

    #[test]
    fn defaults_match_panthers_example() {
        let cli = Cli::try_parse_from(["hookscope"]).unwrap();
        let options = cli.listen.options().unwrap();
        assert_eq!(options.bind.to_string(), "127.0.0.1:8081");
        assert_eq!(options.behaviour.status, StatusCode::OK);
        assert_eq!(options.behaviour.body, "success");
        assert_eq!(options.max_body, 1024 * 1024);
        assert_eq!(options.admin.unwrap().to_string(), "127.0.0.1:9081");
    }

    #[test]
    fn a_public_admin_address_needs_admin_public() {
        let cli = Cli::try_parse_from(["hookscope", "--admin", "0.0.0.0:9081"]).unwrap();
        let error = cli.listen.options().unwrap_err();
        assert!(error.to_string().contains("--admin-public"), "{error}");
        let cli = Cli::try_parse_from(["hookscope", "--admin", "0.0.0.0:9081", "--admin-public"])
            .unwrap();
        assert!(cli.listen.options().is_ok());
        let cli = Cli::try_parse_from(["hookscope", "--admin", "[::1]:0"]).unwrap();
        assert!(cli.listen.options().is_ok());
    }
}
