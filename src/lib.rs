//! hookscope receives webhooks on your own machine and shows you exactly what arrived.
//!
//! It is built for Panther's Custom Webhook destination: every POST is checked
//! against the Panther alert schema, recorded, and answered the way you configure:
//! a status, a body, a delay, or a script of faults (`500*2,200`, `drop`, `reset`,
//! `hang`). The `hookscope` command line and your Rust tests drive the same [`Server`].
//!
//! # Use from Rust tests
//!
//! Start a sink on a free port, point the code under test at [`Handle::url`], and
//! assert on what arrived:
//!
//! ```
//! use std::time::Duration;
//!
//! use hookscope::Server;
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() {
//!     // A sink on 127.0.0.1, on a free port: fails twice, then acknowledges.
//!     let sink = Server::builder().script("500*2,200").spawn().await.unwrap();
//!
//!     // The code under test: a sender that retries until it gets a 2XX.
//!     let client = reqwest::Client::new();
//!     let alert = hookscope::Alert::test_alert(chrono::Utc::now());
//!     let mut statuses = Vec::new();
//!     while statuses.last() != Some(&200) {
//!         let response = client.post(sink.url()).json(&alert).send().await.unwrap();
//!         statuses.push(response.status().as_u16());
//!     }
//!
//!     // What the sender saw, and what arrived.
//!     assert_eq!(statuses, [500, 500, 200]);
//!     let received = sink.wait_for(3, Duration::from_secs(1)).await.unwrap();
//!     let attempts: Vec<u32> = received.iter().map(|x| x.attempt.as_ref().unwrap().number).collect();
//!     assert_eq!(attempts, [1, 2, 3]);
//!     assert!(received.iter().all(|x| x.verdict.as_ref().unwrap().is_valid()));
//!     assert_eq!(received[0].alert().unwrap().id, "Test.Alert");
//!
//!     // Turn the healthy sink into a failing one mid-test.
//!     sink.update_behaviour(|behaviour| behaviour.script = "503".parse().ok()).unwrap();
//!     let response = client.post(sink.url()).json(&alert).send().await.unwrap();
//!     assert_eq!(response.status(), 503);
//! } // dropping the handle stops the server
//! ```
//!
//! The builder's settings are the [`Config`] that `hookscope listen`'s flags fill
//! (status, body, headers, delay, script, routes, fail rate and seed, strict,
//! required headers, limits, keep, keep bytes, record, admin, TLS), with typed
//! inputs beside the string forms; an invalid one is a [`ConfigError`] from
//! [`spawn`](ServerBuilder::spawn). The [`Handle`] gives [`url`](Handle::url),
//! [`received`](Handle::received), [`wait_for`](Handle::wait_for),
//! [`subscribe`](Handle::subscribe), [`stats`](Handle::stats) and
//! [`set_behaviour`](Handle::set_behaviour). Dropping the handle stops the server.
//!
//! The library prints nothing of its own: diagnostics go through `tracing`, and
//! exchanges to whoever subscribes.
#![warn(missing_docs)]

#[cfg(not(unix))]
compile_error!(
    "hookscope runs on Unix (Linux, macOS): the `reset` fault sets SO_LINGER on the raw socket"
);

mod admin;
pub mod alert;
mod capture;
#[doc(hidden)]
pub mod escape;
mod forward;
pub mod outgoing;
#[doc(hidden)]
pub mod output;
pub mod panther;
pub mod probe;
mod respond;
pub mod schemas;
pub mod send;
mod server;
mod shared;
pub mod signature;
pub mod values;

pub use alert::{Alert, AlertKey, Inspection, KeySource, Problem, Verdict, inspect, validate};
pub use capture::{
    Attempt, BodyState, Change, DEFAULT_KEEP, DEFAULT_KEEP_BYTES, DeliveryCounts, Exchange, Filter,
    HAR_END, HAR_START, HeaderLines, ImportError, Importer, JsonLine, Outcome, RecordError,
    RecordLine, RecordLineError, RecordedAttempt, RecordedUpstream, Reply, Stats, StoreError,
    StoreLocation, StoreSummary, TeamUrl, UNREADABLE_METHOD, UpstreamCounts, UpstreamLeg,
    WaitTimeout, compare, har, har_entry, json_line, record_line,
};
pub use forward::{ForwardError, UpstreamOptions};
pub use respond::{
    Behaviour, BehaviourError, Instead, Item, Route, Script, ScriptError, ScriptScope, Step,
};
pub use server::tls::{GeneratedCert, TlsError, generate_cert};
pub use server::{
    Config, ConfigError, Handle, Inspector, IntoSetting, Limits, Listener, MIN_HEADER_SIZE, Server,
    ServerBuilder, ServerError, StoreArgument, parse_header_size,
};
pub use shared::Subscription;
