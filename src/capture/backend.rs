//! `--store`, whichever it is: an embedded SQLite file for one hookscope
//! (`database.rs`), or a PostgreSQL database shared by a team's (`team.rs`). The
//! request path, the admin API and shutdown see this one type; only the decision
//! step asks whether the store is shared ([`Database::team`]).

use std::path::PathBuf;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use super::database::{Embedded, StoreError, ToStore};
use super::record::RecordStatus;
use super::team::{Team, TeamUrl};
use super::{Filter, RecordLine};

/// What `--store` names: a file, or a PostgreSQL database (`postgres://...`).
#[derive(Debug, Clone, PartialEq)]
pub enum StoreLocation {
    /// An SQLite file, for one hookscope.
    File(PathBuf),
    /// A PostgreSQL database, shared by several (boxed: its settings are large).
    Team(Box<TeamUrl>),
}

impl StoreLocation {
    /// Reads `--store`'s value; a URL that is not PostgreSQL's is refused here, at
    /// start-up, without repeating it (it may hold a password).
    pub fn parse(text: &str) -> Result<StoreLocation, String> {
        if TeamUrl::is_url(text) {
            return TeamUrl::parse(text).map(|url| StoreLocation::Team(Box::new(url)));
        }
        if text.contains("://") {
            return Err(
                "only postgres:// (or postgresql://) URLs are stores; anything else is a file name"
                    .into(),
            );
        }
        Ok(StoreLocation::File(PathBuf::from(text)))
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::File(path) => write!(formatter, "{}", path.display()),
            StoreLocation::Team(url) => write!(formatter, "{url}"),
        }
    }
}

/// Where exchanges and delivery state are kept.
#[derive(Debug)]
pub struct Database {
    kind: Kind,
    /// Exchanges that acknowledged nothing, left out while the writer was behind.
    left_out: AtomicU64,
}

#[derive(Debug)]
enum Kind {
    /// One process's file.
    Embedded(Embedded),
    /// A PostgreSQL database several instances share.
    Team(Team),
}

impl From<Embedded> for Database {
    fn from(embedded: Embedded) -> Database {
        Database::of(Kind::Embedded(embedded))
    }
}

impl From<Team> for Database {
    fn from(team: Team) -> Database {
        Database::of(Kind::Team(team))
    }
}

impl Database {
    fn of(kind: Kind) -> Database {
        Database {
            kind,
            left_out: AtomicU64::new(0),
        }
    }

    /// The shared store, when this one is (decisions are then made in it).
    pub fn team(&self) -> Option<&Team> {
        match &self.kind {
            Kind::Team(team) => Some(team),
            Kind::Embedded(_) => None,
        }
    }

    /// Stores one exchange and what it changed, and waits for the commit, at most
    /// `timeout` (`--store-timeout`).
    pub async fn write(&self, exchange: ToStore, timeout: Duration) -> Result<(), StoreError> {
        let written = async {
            match &self.kind {
                Kind::Embedded(embedded) => embedded.write(exchange).await,
                Kind::Team(team) => team.write(exchange).await,
            }
        };
        tokio::time::timeout(timeout, written)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Slow {
                    waited: humantime::format_duration(timeout).to_string(),
                })
            })
    }

    /// Stores one exchange that acknowledged nothing, without waiting; while the
    /// writer is behind it is left out, counted, and said once.
    pub fn write_detached(&self, exchange: ToStore) {
        let (sent, store) = match &self.kind {
            Kind::Embedded(embedded) => (embedded.write_detached(exchange), embedded.describe()),
            Kind::Team(team) => (team.write_detached(exchange), team.describe()),
        };
        if !sent && self.left_out.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                "the --store {store} is not keeping up: exchanges that acknowledged nothing are left out while it is behind"
            );
        }
    }

    /// Exchanges that acknowledged nothing, left out while the writer was behind.
    pub fn left_out(&self) -> u64 {
        self.left_out.load(Ordering::Relaxed)
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        match &self.kind {
            Kind::Embedded(embedded) => embedded.flush().await,
            Kind::Team(team) => team.flush().await,
        }
    }

    /// Stored lines that pass `filter`, newest first, below `below`; see
    /// [`Embedded::search`]. On a blocking thread.
    pub fn search(
        &self,
        filter: &Filter,
        below: u64,
        limit: usize,
        budget: Duration,
    ) -> Result<(Vec<(u64, String)>, bool), StoreError> {
        match &self.kind {
            Kind::Embedded(embedded) => embedded.search(filter, below, limit, budget),
            Kind::Team(team) => team.search(filter, below, limit, budget),
        }
    }

    /// Each stored line below `below` that passes `filter`, oldest first, until
    /// `visit` says stop. On a blocking thread.
    pub fn each_ascending(
        &self,
        filter: &Filter,
        below: u64,
        visit: impl FnMut(&RecordLine<'_>) -> bool,
    ) -> Result<(), StoreError> {
        match &self.kind {
            Kind::Embedded(embedded) => embedded.each_ascending(filter, below, visit),
            Kind::Team(team) => team.each_ascending(filter, below, visit),
        }
    }

    /// Exchange `id`'s stored line. On a blocking thread.
    pub fn get(&self, id: u64) -> Result<Option<String>, StoreError> {
        match &self.kind {
            Kind::Embedded(embedded) => embedded.get(id),
            Kind::Team(team) => team.get(id),
        }
    }

    /// The record file this store's writer feeds, if any.
    pub(crate) fn record(&self) -> Option<&RecordStatus> {
        match &self.kind {
            Kind::Embedded(embedded) => embedded.record(),
            Kind::Team(_) => None,
        }
    }

    /// Opens the record file this store's writer feeds again (SIGHUP).
    pub async fn reopen_record(&self) -> Result<(), super::RecordError> {
        match &self.kind {
            Kind::Embedded(embedded) => embedded.reopen_record().await,
            Kind::Team(_) => Ok(()),
        }
    }
}
