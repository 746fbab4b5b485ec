//! Running counts of what was received, for the shutdown line.

use std::collections::BTreeMap;
use std::fmt;

use super::{bump, DeliveryCounts, Exchange};

/// Counts over every exchange so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Requests of any kind.
    pub requests: u64,
    /// POSTs whose body is a valid alert.
    pub valid: u64,
    /// POSTs whose body is not a valid alert.
    pub invalid: u64,
    /// Outcomes by label: the status code, or `dropped`, `reset`, `hung`, `client-gone`.
    pub by_status: BTreeMap<String, u64>,
    /// Alert deliveries, retries and acknowledgements.
    pub deliveries: DeliveryCounts,
    /// Why recording stopped, if it did.
    pub record_failure: Option<String>,
}

impl Summary {
    /// Counts one exchange.
    pub fn add(&mut self, exchange: &Exchange) {
        self.requests += 1;
        match &exchange.verdict {
            Some(verdict) if verdict.is_valid() => self.valid += 1,
            Some(_) => self.invalid += 1,
            None => {}
        }
        exchange
            .reply
            .outcome
            .with_label(|label| bump(&mut self.by_status, label));
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests: {}, valid: {}, invalid: {}",
            self.requests, self.valid, self.invalid
        )?;
        if !self.by_status.is_empty() {
            f.write_str(", by status:")?;
            for (status, count) in &self.by_status {
                write!(f, " {status}×{count}")?;
            }
        }
        write!(
            f,
            "; alerts: {}, delivered after retries: {}, never acked: {}",
            self.deliveries.alerts,
            self.deliveries.delivered_after_retries,
            self.deliveries.never_acked()
        )?;
        if let Some(failure) = &self.record_failure {
            write!(f, "; RECORDING FAILED: {failure}")?;
        }
        Ok(())
    }
}
