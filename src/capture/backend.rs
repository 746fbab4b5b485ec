//! `--store`, whichever it is: an embedded SQLite file for one hookscope
//! (`database.rs`), or a PostgreSQL database shared by a team's (`team.rs`). The
//! request path, the admin API and shutdown see this one type; only the decision
//! step asks whether the store is shared ([`Database::team`]).

use std::path::PathBuf;
use std::time::Duration;

use super::database::{Arrival, Embedded, StateChange, StoreError};
use super::record::RecordStatus;
use super::team::{Team, TeamUrl};
use super::{Filter, JsonLine, RecordLine};

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
pub enum Database {
    /// One process's file.
    Embedded(Embedded),
    /// A PostgreSQL database several instances share.
    Team(Team),
}

impl Database {
    /// The shared store, when this one is (decisions are then made in it).
    pub fn team(&self) -> Option<&Team> {
        match self {
            Database::Team(team) => Some(team),
            Database::Embedded(_) => None,
        }
    }

    /// Stores one exchange and what it changed, and waits for the commit, at most
    /// `timeout` (`--store-timeout`).
    pub async fn write(
        &self,
        (id, received_at): (u64, Arrival),
        line: JsonLine,
        change: StateChange,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        let written = async {
            match self {
                Database::Embedded(embedded) => embedded.write(id, received_at, line, change).await,
                Database::Team(team) => team.write(id, received_at, line, change).await,
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

    /// Stores one exchange that acknowledged nothing, without waiting.
    pub fn write_detached(
        &self,
        id: u64,
        received_at: Arrival,
        line: JsonLine,
        change: StateChange,
    ) {
        match self {
            Database::Embedded(embedded) => embedded.write_detached(id, received_at, line, change),
            Database::Team(team) => team.write_detached(id, received_at, line, change),
        }
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        match self {
            Database::Embedded(embedded) => embedded.flush().await,
            Database::Team(team) => team.flush().await,
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
        match self {
            Database::Embedded(embedded) => embedded.search(filter, below, limit, budget),
            Database::Team(team) => team.search(filter, below, limit, budget),
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
        match self {
            Database::Embedded(embedded) => embedded.each_ascending(filter, below, visit),
            Database::Team(team) => team.each_ascending(filter, below, visit),
        }
    }

    /// Exchange `id`'s stored line. On a blocking thread.
    pub fn get(&self, id: u64) -> Result<Option<String>, StoreError> {
        match self {
            Database::Embedded(embedded) => embedded.get(id),
            Database::Team(team) => team.get(id),
        }
    }

    /// Exchanges that acknowledged nothing, left out while the writer was behind.
    pub fn left_out(&self) -> u64 {
        match self {
            Database::Embedded(embedded) => embedded.left_out(),
            Database::Team(team) => team.left_out(),
        }
    }

    /// The record file this store's writer feeds, if any.
    pub(crate) fn record(&self) -> Option<&RecordStatus> {
        match self {
            Database::Embedded(embedded) => embedded.record(),
            Database::Team(_) => None,
        }
    }

    /// Opens the record file this store's writer feeds again (SIGHUP).
    pub async fn reopen_record(&self) -> Result<(), super::RecordError> {
        match self {
            Database::Embedded(embedded) => embedded.reopen_record().await,
            Database::Team(_) => Ok(()),
        }
    }
}
