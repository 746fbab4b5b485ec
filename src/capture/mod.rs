//! What was captured and what is kept of it: one [`Exchange`] per request, attempt
//! numbering per alert, the history with its one set of counts ([`Stats`]), the
//! JSON line of an exchange, and the `--record` file it is appended to.
//! It depends on `alert` and `escape` only.

mod backend;
mod batches;
mod compare;
mod database;
mod deliveries;
mod exchange;
mod filter;
mod har;
mod line;
mod record;
mod segments;
mod store;
mod team;

pub use backend::{Database, StoreLocation};
pub use compare::{Change, compare};
pub use database::{
    Embedded, ImportError, Importer, Retention, StateChange, StoreError, StoreSummary, Stored,
    ToStore,
};
pub use deliveries::{Attempt, Deliveries, DeliveryCounts};
pub use exchange::{BodyState, Exchange, Outcome, Reply, UNREADABLE_METHOD, UpstreamLeg};
pub use filter::Filter;
pub use har::{HAR_END, HAR_START, har, har_entry};
pub(crate) use line::record_line_and_sameness;
pub use line::{
    HeaderLines, JsonLine, RecordLine, RecordLineError, RecordedAttempt, RecordedUpstream,
    json_line, record_line, with_id,
};
pub(crate) use record::write_lines;
pub use record::{RecordError, RecordFile, Recorder};
pub use store::{DEFAULT_KEEP, DEFAULT_KEEP_BYTES, Stats, Store, UpstreamCounts, WaitTimeout};
pub use team::{PeerLine, SharedAttempt, Team, TeamUrl};

/// Adds one to a count, allocating its key only the first time it is seen.
fn bump(counts: &mut std::collections::BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}
