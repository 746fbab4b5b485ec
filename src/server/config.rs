//! [`Config`]: every setting of a receiver, in one struct. The same struct is the
//! flags of `hookscope listen` (clap fills it directly; each field's doc is its
//! `--help` line) and what [`ServerBuilder`](super::ServerBuilder) fills for a test,
//! so a new setting is one field here and its use.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser};
use thiserror::Error;

use super::limits::MIN_HEADER_SIZE;
use crate::capture::DEFAULT_KEEP;
use crate::respond::{Behaviour, ScriptError};
use crate::values::{ValueError, parse_duration, parse_size, parse_size_usize};

/// Every setting of a receiver.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Port to listen on (0 picks a free one). 8081 is the port of Panther's example.
    #[arg(
        help_heading = "Listening",
        short,
        long,
        default_value_t = 8081,
        value_name = "PORT"
    )]
    pub port: u16,

    /// Address to listen on. A tunnel agent (ngrok) connects from localhost.
    #[arg(
        help_heading = "Listening",
        long,
        default_value = "127.0.0.1",
        value_name = "IP"
    )]
    pub bind: IpAddr,

    #[allow(missing_docs)]
    #[command(flatten, next_help_heading = "Answers and faults")]
    pub behaviour: Behaviour,

    /// What request bodies are checked against: panther (Panther's alert rules), none, or a JSON
    /// Schema file (draft 2020-12 or draft-07); problems are shown the same way.
    #[arg(
        help_heading = "Validation",
        long,
        default_value = "panther",
        value_name = "SCHEMA"
    )]
    pub schema: crate::schemas::Schema,

    /// A path prefix with its own schema, e.g. '/github=github-push.json' (repeatable; the longest
    /// prefix wins; --schema is the fallback).
    #[arg(
        help_heading = "Validation",
        long = "schema-route",
        value_name = "PATH=SCHEMA"
    )]
    pub schema_routes: Vec<crate::schemas::SchemaRoute>,

    #[allow(missing_docs)]
    #[command(flatten, next_help_heading = "Forwarding")]
    pub upstream: crate::forward::UpstreamOptions,

    /// Seed for --fail-rate, so a run can be repeated exactly.
    #[arg(help_heading = "Answers and faults", long, value_name = "N")]
    pub seed: Option<u64>,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(
        help_heading = "TLS and auth",
        long,
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(
        help_heading = "TLS and auth",
        long,
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// How many recent exchanges the history (admin API, inspector) keeps.
    #[arg(help_heading = "History and record", long, default_value_t = DEFAULT_KEEP, value_name = "N")]
    pub keep: usize,

    /// Most memory the history may hold (bodies, headers, answers); the oldest exchanges go first.
    #[arg(help_heading = "History and record", long, default_value = "64MiB", value_parser = parse_size, value_name = "SIZE")]
    pub keep_bytes: u64,

    /// Append every exchange to FILE as a JSON line; a 2XX is sent only once its line is written.
    #[arg(help_heading = "History and record", long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Keep every exchange and each alert's delivery state in an SQLite database at FILE
    /// (created if new): a restart with the same file continues attempt numbers, script
    /// positions and ids. Or in PostgreSQL (postgres://USER:PASSWORD@HOST:PORT/DB), shared
    /// by every hookscope given the same URL: attempts are numbered and scripts walked
    /// across them. Every answer is sent only once the store has it.
    #[arg(help_heading = "History and record", long, value_name = "FILE|URL", value_parser = StoreArgument)]
    pub store: Option<crate::capture::StoreLocation>,

    /// With --store: the longest an answer waits for the store (a decision, an id, a
    /// commit); past it the answer is 503 with Retry-After, and the sender retries.
    #[arg(help_heading = "History and record", long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub store_timeout: Duration,

    /// With --store: exchanges (and alerts' delivery states) older than this are deleted, in
    /// the background, e.g. 7d.
    #[arg(help_heading = "History and record", long, requires = "store", value_parser = parse_duration, value_name = "DURATION")]
    pub store_max_age: Option<Duration>,

    /// With --store: beyond this many exchanges the oldest are deleted, in the background.
    #[arg(
        help_heading = "History and record",
        long,
        requires = "store",
        value_name = "N"
    )]
    pub store_max_rows: Option<u64>,

    /// Address of the admin API and web inspector (never the webhook port, so never behind the tunnel).
    #[arg(
        help_heading = "Inspector and admin API",
        long,
        default_value = "127.0.0.1:9081",
        value_name = "ADDR"
    )]
    pub admin: SocketAddr,

    /// Do not start the admin API and inspector.
    #[arg(
        help_heading = "Inspector and admin API",
        long,
        conflicts_with = "admin"
    )]
    pub no_admin: bool,

    /// Allow --admin on a non-loopback address (the API can change answers and send requests).
    #[arg(help_heading = "Inspector and admin API", long)]
    pub admin_public: bool,

    #[allow(missing_docs)]
    #[command(flatten, next_help_heading = "Limits")]
    pub limits: Limits,

    /// On Ctrl-C or SIGTERM, how long requests in flight may take to finish.
    #[arg(help_heading = "Limits", long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_timeout: Duration,
}

/// The limits a server enforces against slow, huge and abusive clients; the
/// defaults suit a receiver behind a public tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct Limits {
    /// Largest request body read; larger ones get 413. E.g. 64KiB, 10MB.
    #[arg(long, default_value = "1MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_body: u64,

    /// Most request-body bytes held at once over all requests (at least --max-body), charged
    /// as they arrive and held until the request is answered. When it is full, the slowest
    /// body gives way and a body that finds no room within 0.5 s gets 503 with Retry-After.
    #[arg(long, default_value = "16MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_inflight_bytes: u64,

    /// Time a client has to send a request's headers; slower ones are disconnected (slowloris).
    /// On HTTP/1 it also applies between requests on a kept-alive connection, and it is
    /// the longest a request body may stop arriving before the sender gets 408.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub header_read_timeout: Duration,

    /// Time a client has to send a whole request body. A body that stops arriving for
    /// --header-read-timeout ends sooner; either way the sender gets 408.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub body_timeout: Duration,

    /// Largest request head (request line and headers); larger ones get 431. At least 8KiB.
    #[arg(long, default_value = "64KiB", value_parser = parse_header_size, value_name = "SIZE")]
    pub max_header_size: usize,

    /// A connection with no request in flight and no bytes moving for this long is closed.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,

    /// Connections served at once; further ones wait until one closes.
    #[arg(long, default_value_t = 1024, value_parser = RangedU64ValueParser::<usize>::new().range(1..), value_name = "N")]
    pub max_connections: usize,

    /// HTTP/2 streams a client may have open at once on one connection.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub h2_max_streams: u32,

    /// HTTP/2 streams a client may reset before they are answered, before the
    /// connection is closed (rapid reset, CVE-2023-44487).
    #[arg(long = "h2-max-resets", default_value_t = 20, value_name = "N")]
    pub h2_max_pending_resets: usize,
}

/// A setting that cannot be used; reported by [`ServerBuilder::spawn`](super::ServerBuilder::spawn)
/// and, for the command line, at start-up with exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A status, header, rate, duration or size that cannot be used.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A script or route that does not parse.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// A head size limit below what hyper can read.
    #[error("the header size limit must be at least {MIN_HEADER_SIZE} bytes, got {0}")]
    HeaderSize(usize),
    /// The admin API asked for off loopback without saying so.
    #[error(
        "--admin {0} is not a loopback address: the admin API can change answers and send requests, \
         so it listens only on 127.0.0.1 or ::1 unless --admin-public is given"
    )]
    AdminNotLoopback(SocketAddr),
    /// A certificate without its key, or a key without its certificate.
    #[error("--tls-cert and --tls-key go together: give both or neither")]
    TlsPair,
    /// A behaviour that cannot answer: a framing header, a `forward` step without a
    /// forward URL, a template that does not parse.
    #[error(transparent)]
    Behaviour(#[from] crate::respond::BehaviourError),
    /// Forwarding cannot start (`--forward-cacert`, a loop back to this listener).
    #[error(transparent)]
    Forward(#[from] crate::forward::ForwardError),
}

#[derive(Parser)]
struct Defaults {
    #[command(flatten)]
    config: Config,
}

impl Default for Config {
    /// The defaults of `hookscope listen`: 127.0.0.1:8081, admin on 127.0.0.1:9081.
    fn default() -> Self {
        Defaults::parse_from(["hookscope"]).config
    }
}

impl Default for Limits {
    fn default() -> Self {
        Config::default().limits
    }
}

impl Limits {
    /// The in-flight body budget in force: never below one whole body.
    pub fn inflight_budget(&self) -> u64 {
        self.max_inflight_bytes.max(self.max_body)
    }
}

impl Config {
    /// The address to listen on.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The admin listener's address, unless it is turned off.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        (!self.no_admin).then_some(self.admin)
    }

    /// Refuses settings that are each fine but not together (the behaviour's own are
    /// [`Behaviour::prepare`](crate::Behaviour::prepare)'s).
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(admin) = self.admin_addr() {
            if !self.admin_public && !admin.ip().is_loopback() {
                return Err(ConfigError::AdminNotLoopback(admin));
            }
        }
        if self.limits.max_header_size < MIN_HEADER_SIZE {
            return Err(ConfigError::HeaderSize(self.limits.max_header_size));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::TlsPair);
        }
        Ok(())
    }
}

/// Reads a `--store` value (or `inspect`'s): a file, or a PostgreSQL URL. A value
/// clap refuses is repeated in its message; this one's may hold a password, so
/// its refusal says why without it.
#[derive(Debug, Clone, Copy)]
pub struct StoreArgument;

impl clap::builder::TypedValueParser for StoreArgument {
    type Value = crate::capture::StoreLocation;

    fn parse_ref(
        &self,
        command: &clap::Command,
        argument: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let name = argument.map_or_else(|| "--store".to_owned(), ToString::to_string);
        let refuse = |reason: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("invalid value for '{name}': {reason}\n"),
            )
            .with_cmd(command)
        };
        let text = value.to_str().ok_or_else(|| refuse("not UTF-8"))?;
        crate::capture::StoreLocation::parse(text).map_err(|reason| refuse(&reason))
    }
}

/// Parses the head size limit: a size of at least [`MIN_HEADER_SIZE`].
pub fn parse_header_size(text: &str) -> Result<usize, String> {
    match parse_size_usize(text).map_err(|error| error.to_string())? {
        size if size >= MIN_HEADER_SIZE => Ok(size),
        _ => Err(format!(
            "{text} is below the smallest head size hyper can read, {}",
            bytesize::ByteSize::b(MIN_HEADER_SIZE as u64)
                .display()
                .iec()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::DEFAULT_KEEP_BYTES;
    use crate::respond::ScriptScope;
    use http::StatusCode;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let argv = std::iter::once("hookscope").chain(args.iter().copied());
        Defaults::try_parse_from(argv).map(|defaults| defaults.config)
    }

    #[test]
    fn defaults_match_panthers_example() {
        let config = Config::default();
        assert_eq!(config.listen_addr().to_string(), "127.0.0.1:8081");
        assert_eq!(config.behaviour.status, StatusCode::OK);
        assert_eq!(config.behaviour.body, None);
        assert_eq!(config.limits.max_body, 1024 * 1024);
        assert_eq!(config.admin_addr().unwrap().to_string(), "127.0.0.1:9081");
        assert_eq!(config.keep, DEFAULT_KEEP);
        assert_eq!(config.keep_bytes, DEFAULT_KEEP_BYTES);
        assert!(config.check().is_ok());
    }

    #[test]
    fn fault_flags_fill_the_behaviour() {
        let config = parse(&[
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
            "--header",
            "Retry-After: 5",
        ])
        .unwrap();
        let behaviour = &config.behaviour;
        assert_eq!(behaviour.script.as_ref().unwrap().as_str(), "503*3,200");
        assert_eq!(behaviour.routes.len(), 2);
        assert_eq!(behaviour.scope, ScriptScope::Global);
        assert_eq!(behaviour.fail_rate, 0.25);
        assert_eq!(behaviour.header_map()["retry-after"], "5");
        assert_eq!(config.seed, Some(9));
        assert!(behaviour.strict);
        let error = parse(&["--script", "503*x"]).unwrap_err();
        assert!(error.to_string().contains("at position 5"), "{error}");
        assert!(parse(&["--fail-rate", "1.5"]).is_err());
        assert!(parse(&["--max-connections", "0"]).is_err());
        assert!(parse(&["--max-header-size", "1KiB"]).is_err());
    }

    #[test]
    fn a_forward_step_without_forward_points_inside_the_script() {
        let error = parse(&["--script", "503*2,forward"])
            .unwrap()
            .behaviour
            .prepare()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid script \"503*2,forward\" at position 7: 'forward' needs --forward URL: \
             where should the request go?"
        );
        let error = parse(&["--route", "/app=forward>503"])
            .unwrap()
            .behaviour
            .prepare()
            .unwrap_err();
        assert!(error.to_string().contains("at position 6"), "{error}");
        let forwarding = parse(&[
            "--forward",
            "http://127.0.0.1:3000",
            "--script",
            "503,forward",
        ]);
        assert!(forwarding.unwrap().check().is_ok());
        assert!(parse(&["--forward", "ftp://x"]).is_err());
        assert!(parse(&["--forward", "http://127.0.0.1:3000", "--status", "503"]).is_err());
    }

    #[test]
    fn a_public_admin_address_needs_admin_public() {
        let error = parse(&["--admin", "0.0.0.0:9081"])
            .unwrap()
            .check()
            .unwrap_err();
        assert!(error.to_string().contains("--admin-public"), "{error}");
        let public = parse(&["--admin", "0.0.0.0:9081", "--admin-public"]).unwrap();
        assert!(public.check().is_ok());
        assert!(parse(&["--admin", "[::1]:0"]).unwrap().check().is_ok());
        let off = parse(&["--no-admin"]).unwrap();
        assert!(off.admin_addr().is_none());
    }
}
