//! What was captured: one [`Exchange`] per request, attempt numbering per alert,
//! and the running [`Summary`].

mod deliveries;
mod exchange;
mod store;
mod summary;

pub use deliveries::{Attempt, Deliveries, DeliveryCounts};
pub use exchange::{BodyState, Exchange, Outcome, Reply, UNREADABLE_METHOD};
pub use store::{Stats, Store, WaitTimeout, DEFAULT_KEEP, DEFAULT_KEEP_BYTES};
pub use summary::Summary;

/// Adds one to a count, allocating its key only the first time it is seen.
fn bump(counts: &mut std::collections::BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}
