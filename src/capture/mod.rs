//! What was captured: one [`Exchange`] per request, and the running [`Summary`].

mod exchange;
mod summary;

pub use exchange::{BodyState, Exchange, Reply};
pub use summary::Summary;
