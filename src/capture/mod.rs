//! What was captured: one [`Exchange`] per request, attempt numbering per alert,
//! and the running [`Summary`].

mod deliveries;
mod exchange;
mod store;
mod summary;

pub use deliveries::{Attempt, Deliveries, DeliveryCounts};
pub use exchange::{BodyState, Exchange, Outcome, Reply};
pub use store::{Stats, Store, WaitTimeout, DEFAULT_KEEP};
pub use summary::Summary;
