//! Running counts of what was received, for the shutdown line.

use std::collections::BTreeMap;
use std::fmt;

use super::Exchange;

/// Counts over every exchange so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Requests of any kind.
    pub requests: u64,
    /// POSTs whose body is a valid alert.
    pub valid: u64,
    /// POSTs whose body is not a valid alert.
    pub invalid: u64,
    /// Answers by status code (`None`: no answer sent).
    pub by_status: BTreeMap<Option<u16>, u64>,
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
        *self.by_status.entry(exchange.reply.status).or_default() += 1;
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
                match status {
                    Some(code) => write!(f, " {code}×{count}")?,
                    None => write!(f, " none×{count}")?,
                }
            }
        }
        Ok(())
    }
}
