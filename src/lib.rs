//! hookscope receives webhooks on your own machine and shows you exactly what arrived.
//!
//! It is built for Panther's Custom Webhook destination: every POST is checked
//! against the Panther alert schema, printed, and answered the way you configure
//! (status, body, headers, delay). The CLI (`hookscope listen`) and Rust tests
//! drive the same [`Server`].
#![warn(missing_docs)]

pub mod admin;
pub mod alert;
pub mod app;
pub mod capture;
pub mod cli;
pub mod output;
pub mod respond;
pub mod send;
pub mod server;

pub use alert::{validate, Alert, Problem, Verdict};
pub use capture::{Exchange, Summary};
pub use respond::Behaviour;
pub use server::{Handle, Server, ServerBuilder, ServerError};
