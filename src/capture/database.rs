//! `--store FILE`: what hookscope saw and decided, in an embedded SQLite database,
//! so that a restart in the middle of Panther's 30 minutes of retries goes on where
//! it stopped: the next attempt of an alert is numbered after the last one stored,
//! a global script resumes at its position, ids keep increasing.
//!
//! One writer task owns the connection. It takes every job queued at once, appends
//! their lines to the lines file (`segments.rs`) and to the `--record` file when
//! there is one, and writes the rest in one transaction (group commit, as the
//! record writer does), then releases every request of that batch: an
//! acknowledging answer waits for its commit, so an alert that got a 2XX is in the
//! store even if hookscope is killed right after. WAL mode with `synchronous =
//! NORMAL`: a commit survives a crash of hookscope, not a power cut, the same
//! promise as `--record`. The file is locked (`flock`): a second hookscope on the
//! same store is refused at start-up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags, params};
use thiserror::Error;
use tokio::sync::oneshot;

use super::JsonLine;
use super::batches::{self, Entry, Merge, Order};
use super::record::{RecordFile, RecordStatus, Room};
use super::segments::{self, Appender, Place};
use tokio::sync::OwnedSemaphorePermit;

/// `PRAGMA application_id` of a hookscope store ("hksc"): a SQLite file made by
/// something else is refused rather than written into.
const APPLICATION_ID: i64 = 0x686b_7363;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// How often retention is enforced.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What a store keeps (`--store-max-age`, `--store-max-rows`); nothing is deleted
/// without a limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Exchanges (and deliveries) older than this go.
    pub max_age: Option<std::time::Duration>,
    /// Beyond this many exchanges, the oldest go.
    pub max_rows: Option<u64>,
}

/// How often deliveries untouched for the age limit are deleted.
const TRIM_DELIVERIES_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Most index rows (written batches) or deliveries retention deletes in one step
/// (about half a millisecond of the runtime's thread, which the writer shares with
/// the requests).
const TRIM_STEP: usize = 500;

/// Most jobs written in one transaction.
const MAX_BATCH: usize = 512;

/// Most jobs waiting for the writer: beyond it, an answer waits for room.
const MAX_QUEUED: usize = 4096;

/// The schema, version by version: migration N brings a store from N-1 to N.
const MIGRATIONS: [&str; 2] = [
    "
    CREATE TABLE exchanges (
        id INTEGER PRIMARY KEY,
        received_at TEXT NOT NULL,
        line TEXT NOT NULL
    );
    CREATE TABLE deliveries (
        route TEXT NOT NULL,
        resent INTEGER NOT NULL,
        key TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_at_us INTEGER NOT NULL,
        acked INTEGER NOT NULL,
        upstream_acked INTEGER NOT NULL,
        PRIMARY KEY (route, resent, key)
    );
    CREATE TABLE script_positions (
        route INTEGER NOT NULL PRIMARY KEY,
        position INTEGER NOT NULL
    );
",
    "
    -- Version 2: each line is in a lines file beside the database (segments.rs), and
    -- indexed by one row per written batch (batches.rs). Version 1's lines, inside
    -- `exchanges`, are moved there when the store is opened (move_inline_lines).
    CREATE TABLE batches (
        segment INTEGER NOT NULL,
        start INTEGER NOT NULL,
        length INTEGER NOT NULL,
        count INTEGER NOT NULL,
        min_id INTEGER NOT NULL,
        max_id INTEGER NOT NULL,
        oldest_at TEXT NOT NULL,
        newest_at TEXT NOT NULL,
        entries BLOB NOT NULL
    );
    CREATE INDEX batches_by_max_id ON batches (max_id);
",
];

/// Why the store cannot be used.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum StoreError {
    /// The file cannot be opened or created.
    #[error("cannot open the --store {path}: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file is not a hookscope store (another SQLite database, or not SQLite).
    #[error(
        "--store {path} is not a hookscope store ({reason}): give a new file name, or the store hookscope made"
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The store was made by a newer hookscope.
    #[error(
        "--store {path} has schema version {found}, newer than this hookscope's ({supported}): use the hookscope that made it"
    )]
    Newer {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// This build's.
        supported: i64,
    },
    /// A store of an earlier version, opened read-only (which cannot bring it up to date).
    #[error(
        "--store {path} has schema version {found}, made by an earlier hookscope: open it once with `hookscope listen --store` (or import into it) to bring it up to date"
    )]
    Older {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// Another process has the store open.
    #[error(
        "--store {path} is in use by another process (another hookscope?): one hookscope per store file"
    )]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// The PostgreSQL server cannot be reached, or refuses the connection (shown
    /// without the URL's password).
    #[error("cannot use the --store {url}: {reason}")]
    Unreachable {
        /// The URL, without its password.
        url: String,
        /// What the connection or the server said.
        reason: String,
    },
    /// An answer waited longer than `--store-timeout` for the store.
    #[error("the --store did not answer within {waited} (--store-timeout)")]
    Slow {
        /// How long it waited.
        waited: String,
    },
    /// The writer is so far behind that no room came in its queue in time.
    #[error("the --store {path} is not keeping up: its writer is 32 MiB behind")]
    Behind {
        /// The file.
        path: PathBuf,
    },
    /// The record file this store's writer feeds cannot be written.
    #[error("{0}")]
    Record(String),
    /// Writing failed (disk full, file deleted or read-only...): answers get 503.
    #[error("the --store {path} cannot be written: {reason}")]
    Failed {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },
}

/// The state of an alert's delivery, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    /// The route prefix (empty outside every route).
    pub route: String,
    /// A manual re-send (its own sequence).
    pub resent: bool,
    /// The alert key.
    pub key: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The last attempt's time, in unix microseconds.
    pub last_at_us: i64,
    /// Acknowledged.
    pub acked: bool,
    /// The upstream acknowledged an attempt.
    pub upstream_acked: bool,
}

/// What a store held when it was opened, as start-up says it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSummary {
    /// Exchanges stored.
    pub exchanges: u64,
    /// When the first of them arrived (RFC 3339), if any.
    pub since: Option<String>,
    /// The file's size in bytes.
    pub bytes: u64,
}

impl std::fmt::Display for StoreSummary {
    /// `12345 exchanges since 2026-12-01T10:00:00+00:00, 48 MiB`.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} exchanges", self.exchanges)?;
        if let Some(since) = &self.since {
            write!(formatter, " since {since}")?;
        }
        let size = bytesize::ByteSize::b(self.bytes);
        write!(formatter, ", {}", size.display().iec())
    }
}

/// What a store holds at start-up.
#[derive(Debug, Default)]
pub struct Stored {
    /// The next exchange id (one past the highest stored).
    pub next_id: u64,
    /// What start-up says of it.
    pub summary: StoreSummary,
    /// Every delivery's state.
    pub deliveries: Vec<StoredDelivery>,
    /// Global script positions, by route index (`-1` outside every route).
    pub script_positions: HashMap<i64, u64>,
}

/// When an exchange arrived: kept as a time until its batch's row is written (the
/// row says the oldest and newest, as RFC 3339 text), so that a request does not
/// pay for formatting it.
pub type Arrival = chrono::DateTime<chrono::Utc>;

/// One write: an exchange's line, and the decision state it changed; or an order
/// for the writer, carried in the same queue so that it comes after everything
/// queued before it.
struct Job {
    kind: JobKind,
    id: u64,
    received_at: Arrival,
    line: JsonLine,
    delivery: Option<StoredDelivery>,
    script_positions: Vec<(i64, u64)>,
    /// Its line's room in the queue, given back once written.
    _room: Option<OwnedSemaphorePermit>,
    done: Option<oneshot::Sender<bool>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    /// An exchange to store.
    Exchange,
    /// Only waits for everything before it, writes nothing.
    Flush,
    /// Opens the record file again (SIGHUP, after it was rotated).
    ReopenRecord,
}

impl Job {
    fn exchange(
        exchange: ToStore,
        room: Option<OwnedSemaphorePermit>,
        done: Option<oneshot::Sender<bool>>,
    ) -> Job {
        Job {
            kind: JobKind::Exchange,
            id: exchange.id,
            received_at: exchange.received_at,
            line: exchange.line,
            delivery: exchange.change.delivery,
            script_positions: exchange.change.script_positions,
            _room: room,
            done,
        }
    }

    fn order(kind: JobKind, done: oneshot::Sender<bool>) -> Job {
        Job {
            kind,
            id: 0,
            received_at: Arrival::UNIX_EPOCH,
            line: JsonLine::default(),
            delivery: None,
            script_positions: Vec::new(),
            _room: None,
            done: Some(done),
        }
    }
}

/// The embedded store's writer, as the request path sees it, and a reader for searches.
pub struct Embedded {
    path: PathBuf,
    /// The file, locked (`flock`) while this process writes the store (none when
    /// it only reads it: `hookscope inspect` beside a running hookscope).
    _lock: Option<std::fs::File>,
    /// For searches (WAL: readers do not wait for the writer).
    reader: Mutex<Connection>,
    queue: tokio::sync::mpsc::Sender<Job>,
    /// Bytes of lines queued: a store that stops taking writes must not turn a
    /// flood of large alerts into memory (the queue's 4,096 jobs could be 4,096 lines
    /// of `--max-body`).
    room: Room,
    /// `--record` beside `--store`: the same writer appends each line there too.
    record: Option<RecordStatus>,
    failed: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Embedded({})", self.path.display())
    }
}

/// One exchange to store: its id, when it arrived, its record line, and what it
/// changed in the decision state.
#[derive(Debug)]
pub struct ToStore {
    /// The exchange's id.
    pub id: u64,
    /// When it arrived.
    pub received_at: Arrival,
    /// Its record line.
    pub line: JsonLine,
    /// What it changed.
    pub change: StateChange,
}

/// What one exchange changed, to be stored with it.
#[derive(Debug, Default)]
pub struct StateChange {
    /// The delivery the exchange was an attempt of.
    pub delivery: Option<StoredDelivery>,
    /// Global script positions after it.
    pub script_positions: Vec<(i64, u64)>,
}

impl Embedded {
    /// Opens (creating) the store, checks it is hookscope's and of a version this
    /// build reads, brings an older one up to date, and reads what it holds.
    /// With `record`, each line is appended to that record file too, before its commit.
    pub fn open(
        path: &Path,
        retention: Retention,
        record: Option<RecordFile>,
    ) -> Result<(Embedded, Stored), StoreError> {
        let lock = lock(path)?;
        let identity = file_identity(path);
        let mut connection = connect(path)?;
        move_inline_lines(&mut connection, path)?;
        let stored = read_stored(&connection, path)?;
        let appender = open_lines(&connection, path)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| StoreError::Open {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        let (queue, jobs) = tokio::sync::mpsc::channel(MAX_QUEUED);
        let failed = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let record_status = record.as_ref().map(RecordFile::status);
        let writer = Writer {
            connection,
            appender,
            record,
            deliveries_cursor: None,
            deliveries_trimmed: std::time::Instant::now()
                .checked_sub(TRIM_DELIVERIES_EVERY)
                .unwrap_or_else(std::time::Instant::now),
            retention,
            identity,
            path: path.to_owned(),
            failed: Arc::clone(&failed),
            failure: Arc::clone(&failure),
        };
        tokio::spawn(writer.run(jobs));
        Ok((
            Embedded {
                path: path.to_owned(),
                _lock: Some(lock),
                reader: Mutex::new(reader),
                queue,
                room: Room::new(),
                record: record_status,
                failed,
                failure,
            },
            stored,
        ))
    }

    /// Queues an exchange's record line as it is (an import), waiting for room in the
    /// queue but not for the commit: [`Database::flush`] waits for that.
    pub async fn import(
        &self,
        id: u64,
        received_at: Arrival,
        line: String,
    ) -> Result<(), StoreError> {
        self.check()?;
        let line = JsonLine::of_text(line);
        let room = self.room_for(&line).await?;
        let exchange = ToStore {
            id,
            received_at,
            line,
            change: StateChange::default(),
        };
        let job = Job::exchange(exchange, Some(room), None);
        self.queue.send(job).await.map_err(|_| self.failed_error())
    }

    /// The store, as messages name it.
    pub(super) fn describe(&self) -> String {
        self.path.display().to_string()
    }

    /// Waits until everything queued so far is committed (or writing failed).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, committed) = oneshot::channel();
        let job = Job::order(JobKind::Flush, done);
        if self.queue.send(job).await.is_err() || !committed.await.unwrap_or(false) {
            return Err(self.failed_error());
        }
        Ok(())
    }

    /// Opens a store to read only (`hookscope inspect`): nothing is written, and a
    /// hookscope may be writing it at the same time.
    pub fn open_read_only(path: &Path) -> Result<(Embedded, StoreSummary), StoreError> {
        let open_error = |reason: String| StoreError::Open {
            path: path.to_owned(),
            reason,
        };
        if !path.is_file() {
            return Err(open_error("there is no such file".into()));
        }
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| open_error(error.to_string()))?;
        let not_a_store = |reason: String| StoreError::NotAStore {
            path: path.to_owned(),
            reason,
        };
        let (application_id, version): (i64, i64) = reader
            .query_row(
                "SELECT (SELECT application_id FROM pragma_application_id), (SELECT user_version FROM pragma_user_version)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(|error| not_a_store(error.to_string()))?;
        if application_id != APPLICATION_ID {
            return Err(not_a_store(format!("application id {application_id:#x}")));
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path: path.to_owned(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            return Err(StoreError::Older {
                path: path.to_owned(),
                found: version,
            });
        }
        let stored = read_stored(&reader, path)?;
        // No writer: a queue nobody reads, and a store that says why it refuses writes.
        let (queue, _) = tokio::sync::mpsc::channel(1);
        Ok((
            Embedded {
                path: path.to_owned(),
                _lock: None,
                reader: Mutex::new(reader),
                queue,
                room: Room::new(),
                record: None,
                failed: Arc::new(AtomicBool::new(true)),
                failure: Arc::new(Mutex::new(Some(
                    "opened read-only (hookscope inspect)".into(),
                ))),
            },
            stored.summary,
        ))
    }

    /// Stores one exchange and what it changed, and waits for the commit.
    pub async fn write(&self, exchange: ToStore) -> Result<(), StoreError> {
        self.check()?;
        // The queue is bounded: a writer that is behind makes answers wait.
        let room = self.room_for(&exchange.line).await?;
        let (done, committed) = oneshot::channel();
        let job = Job::exchange(exchange, Some(room), Some(done));
        let sent = self.queue.send(job).await.is_ok();
        if !sent || !committed.await.unwrap_or(false) {
            self.check()?;
            return Err(self.failed_error());
        }
        Ok(())
    }

    /// Room in the queue for `line`, waiting for it up to a bound.
    async fn room_for(&self, line: &JsonLine) -> Result<OwnedSemaphorePermit, StoreError> {
        self.room.wait_for(line).await.ok_or(StoreError::Behind {
            path: self.path.clone(),
        })
    }

    /// Opens the record file fed by this store's writer again at its path, after
    /// everything queued before (SIGHUP); without one it does nothing.
    pub async fn reopen_record(&self) -> Result<(), super::RecordError> {
        let Some(record) = &self.record else {
            return Ok(());
        };
        let (done, reopened) = oneshot::channel();
        let job = Job::order(JobKind::ReopenRecord, done);
        if self.queue.send(job).await.is_err() || !reopened.await.unwrap_or(false) {
            record.check()?;
            return Err(super::RecordError::Failed {
                path: record.path().to_owned(),
                reason: "the store's writer stopped".into(),
            });
        }
        Ok(())
    }

    /// The record file this store's writer feeds, if any.
    pub(crate) fn record(&self) -> Option<&RecordStatus> {
        self.record.as_ref()
    }

    /// Stores one exchange without waiting (one that acknowledged nothing); `false`
    /// when it is left out because the writer is behind.
    pub fn write_detached(&self, exchange: ToStore) -> bool {
        if self.check().is_err() {
            return true;
        }
        self.room.try_take(&exchange.line).is_some_and(|room| {
            let job = Job::exchange(exchange, Some(room), None);
            self.queue.try_send(job).is_ok()
        })
    }

    /// The stored record lines that pass `filter`, newest first, below `below` (an
    /// exclusive id: the in-memory window's oldest, or a page's cursor), at most
    /// `limit`, within `budget`; `true` when the budget ran out first. Runs on the
    /// caller's thread (a blocking one: it reads the file).
    pub fn search(
        &self,
        filter: &super::Filter,
        below: u64,
        limit: usize,
        budget: std::time::Duration,
    ) -> Result<(Vec<(u64, String)>, bool), StoreError> {
        let started = std::time::Instant::now();
        let reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let mut found = Vec::new();
        let mut looked = 0usize;
        let mut partial = false;
        each_line(&reader, &self.path, Order::Descending, below, |id, line| {
            looked += 1;
            if looked % 64 == 0 && started.elapsed() > budget {
                partial = true;
                return false;
            }
            if filter.read_if_passes(line).is_some() {
                found.push((id, line.to_owned()));
            }
            found.len() < limit
        })
        .map_err(|error| self.read_failed(error))?;
        Ok((found, partial))
    }

    /// Hands `visit` each stored record line below `below` that passes `filter`,
    /// oldest first, until it says stop; on a connection of its own, so a long export
    /// does not hold up searches. Runs on the caller's (blocking) thread.
    pub fn each_ascending(
        &self,
        filter: &super::Filter,
        below: u64,
        mut visit: impl FnMut(&super::RecordLine<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let failed = |error| self.read_failed(error);
        let reader = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(failed)?;
        each_line(&reader, &self.path, Order::Ascending, below, |_, line| {
            filter
                .read_if_passes(line)
                .is_none_or(|parsed| visit(&parsed))
        })
        .map_err(failed)
    }

    /// A read of the store that failed, naming the file.
    fn read_failed(&self, error: rusqlite::Error) -> StoreError {
        StoreError::Failed {
            path: self.path.clone(),
            reason: error.to_string(),
        }
    }

    /// The stored record line of exchange `id`, if there is one.
    pub fn get(&self, id: u64) -> Result<Option<String>, StoreError> {
        let reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let failed = |error| self.read_failed(error);
        // The batch that holds it has the least highest id at or above it, or one
        // soon after (a batch may hold a slow request among later ones).
        let mut statement = reader
            .prepare_cached(
                "SELECT segment, start, entries FROM batches
                 WHERE max_id >= ?1 AND min_id <= ?1 ORDER BY max_id",
            )
            .map_err(failed)?;
        let mut rows = statement.query([to_sql_id(id)]).map_err(failed)?;
        while let Some(row) = rows.next().map_err(failed)? {
            let entries: Vec<u8> = row.get(2).map_err(failed)?;
            let Some(entry) = batches::unpack(&entries)
                .into_iter()
                .find(|entry| entry.id == id)
            else {
                continue;
            };
            let start: u64 = row.get(1).map_err(failed)?;
            let place = Place {
                segment: row.get(0).map_err(failed)?,
                start: start + entry.offset,
                length: entry.length,
            };
            let line = segments::Reader::new(&self.path).read(place).ok();
            return Ok(line.and_then(|bytes| String::from_utf8(bytes).ok()));
        }
        Ok(None)
    }

    /// The failure, once writing the store (or the record file it feeds) has failed.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(self.failed_error());
        }
        match self.record.as_ref().map(RecordStatus::check) {
            Some(Err(error)) => Err(StoreError::Record(error.to_string())),
            _ => Ok(()),
        }
    }

    fn failed_error(&self) -> StoreError {
        let reason = self
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| "its writer stopped".into());
        StoreError::Failed {
            path: self.path.clone(),
            reason,
        }
    }
}

/// `hookscope import FILE --store DB`: record lines (from `--record`) added to a
/// store, each renumbered after the store's last id (a record appended over several
/// runs repeats ids), every other byte of the line kept.
pub struct Importer {
    database: Embedded,
    next_id: u64,
    imported: u64,
}

/// Why one line was not imported.
#[derive(Debug, Error)]
pub enum ImportError {
    /// Not a record line.
    #[error("not a record line: {0}")]
    Line(#[from] super::RecordLineError),
    /// The store refused it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Importer {
    /// Opens (creating) the store to import into; one hookscope per store, so a
    /// running `listen --store` on it refuses this.
    pub fn open(store: &Path) -> Result<Importer, StoreError> {
        let (database, stored) = Embedded::open(store, Retention::default(), None)?;
        Ok(Importer {
            database,
            next_id: stored.next_id,
            imported: 0,
        })
    }

    /// Checks one line and queues it under the next id, which it returns.
    pub async fn add(&mut self, line: &str) -> Result<u64, ImportError> {
        #[derive(serde::Deserialize)]
        struct Arrived {
            received_at: Option<String>,
        }
        let line = line.trim_end();
        super::RecordLine::parse(line)?;
        // Written as live exchanges are, so that retention compares like with like.
        let received_at = serde_json::from_str::<Arrived>(line)
            .ok()
            .and_then(|arrived| arrived.received_at)
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
            .map_or_else(chrono::Utc::now, |at| at.to_utc());
        let id = self.next_id;
        let renumbered =
            super::with_id(line, id).ok_or(super::RecordLineError::Malformed("no id".into()))?;
        self.database.import(id, received_at, renumbered).await?;
        self.next_id += 1;
        self.imported += 1;
        Ok(id)
    }

    /// Queues an exchange (one read from a HAR file) under the next id, which it returns.
    pub async fn add_exchange(
        &mut self,
        mut exchange: super::Exchange,
    ) -> Result<u64, ImportError> {
        let id = self.next_id;
        exchange.id = id;
        let line = super::record_line(&exchange).to_vec();
        let line = String::from_utf8(line)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        self.database.import(id, exchange.received_at, line).await?;
        self.next_id += 1;
        self.imported += 1;
        Ok(id)
    }

    /// Waits until every line added is committed; says how many there were.
    pub async fn finish(self) -> Result<u64, StoreError> {
        self.database.flush().await?;
        Ok(self.imported)
    }
}

/// Locks the store file for this process (`flock`, which SQLite's own POSIX locks
/// leave alone): a second hookscope on the same file is refused, not interleaved.
fn lock(path: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::fd::AsRawFd as _;
    if let Some(folder) = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        if !folder.is_dir() {
            return Err(StoreError::Open {
                path: path.to_owned(),
                reason: format!("the folder {} does not exist", folder.display()),
            });
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|error| StoreError::Open {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    // SAFETY: flock on a descriptor this function owns; it only takes an advisory lock.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        return Err(StoreError::InUse {
            path: path.to_owned(),
        });
    }
    Ok(file)
}

/// The device and inode of the file at `path`, if there is one.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

/// Opens the file, checks whose and which version it is, and migrates it.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |reason: String| StoreError::Open {
        path: path.to_owned(),
        reason,
    };
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| open_error(error.to_string()))?;
    let not_a_store = |reason: String| StoreError::NotAStore {
        path: path.to_owned(),
        reason,
    };
    let sqlite_error = |error: rusqlite::Error| match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::NotADatabase =>
        {
            not_a_store("not an SQLite database".into())
        }
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::InUse {
                path: path.to_owned(),
            }
        }
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::ReadOnly =>
        {
            open_error("the file is read-only".into())
        }
        _ => open_error(error.to_string()),
    };
    // Another process holding the lock is an answer, not something to wait for.
    connection
        .busy_timeout(std::time::Duration::ZERO)
        .map_err(|error| open_error(error.to_string()))?;
    // The lines are in their own files; the database holds small rows, and a commit
    // rewrites every page it touched whole: small pages.
    connection
        .execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
        )
        .map_err(sqlite_error)?;
    let application_id: i64 = connection
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(sqlite_error)?;
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sqlite_error)?;
    let tables: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(sqlite_error)?;
    if application_id != APPLICATION_ID && (application_id != 0 || tables > 0) {
        return Err(not_a_store(format!(
            "an SQLite database of something else (application id {application_id:#x})"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Newer {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let transaction = connection.unchecked_transaction().map_err(sqlite_error)?;
    for migration in &MIGRATIONS[usize::try_from(version).unwrap_or(0)..] {
        transaction.execute_batch(migration).map_err(sqlite_error)?;
    }
    transaction
        .execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
        ))
        .map_err(sqlite_error)?;
    transaction.commit().map_err(sqlite_error)?;
    Ok(connection)
}

/// Opens the newest lines file for appending, cut to what the database knows of.
fn open_lines(connection: &Connection, path: &Path) -> Result<Appender, StoreError> {
    let (segment, end): (Option<i64>, Option<i64>) = connection
        .query_row(
            "SELECT segment, max(start + length) FROM batches
             WHERE segment = (SELECT max(segment) FROM batches)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(|error| StoreError::Open {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    let segment = segment.and_then(|segment| u32::try_from(segment).ok());
    let end = end.and_then(|end| u64::try_from(end).ok()).unwrap_or(0);
    Appender::open(path, segment.unwrap_or(1), end).map_err(|error| StoreError::Open {
        path: segments::segment_path(path, segment.unwrap_or(1)),
        reason: error.to_string(),
    })
}

/// What the store holds.
fn read_stored(connection: &Connection, path: &Path) -> Result<Stored, StoreError> {
    let failed = |error: rusqlite::Error| StoreError::Open {
        path: path.to_owned(),
        reason: error.to_string(),
    };
    let (exchanges, highest, since): (i64, Option<i64>, Option<String>) = connection
        .query_row(
            "SELECT coalesce(sum(count), 0), max(max_id), min(oldest_at) FROM batches",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .map_err(failed)?;
    let mut statement = connection
        .prepare(
            "SELECT route, resent, key, attempts, last_at_us, acked, upstream_acked FROM deliveries",
        )
        .map_err(failed)?;
    let deliveries = statement
        .query_map([], |row| {
            Ok(StoredDelivery {
                route: row.get(0)?,
                resent: row.get(1)?,
                key: row.get(2)?,
                attempts: row.get(3)?,
                last_at_us: row.get(4)?,
                acked: row.get(5)?,
                upstream_acked: row.get(6)?,
            })
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(failed)?;
    let mut statement = connection
        .prepare("SELECT route, position FROM script_positions")
        .map_err(failed)?;
    let script_positions = statement
        .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(failed)?
        .into_iter()
        .map(|(route, position)| (route, u64::try_from(position).unwrap_or(0)))
        .collect();
    let bytes =
        std::fs::metadata(path).map_or(0, |metadata| metadata.len()) + segments::total_bytes(path);
    Ok(Stored {
        next_id: u64::try_from(highest.unwrap_or(0)).unwrap_or(0) + 1,
        summary: StoreSummary {
            exchanges: u64::try_from(exchanges).unwrap_or(0),
            since,
            bytes,
        },
        deliveries,
        script_positions,
    })
}

struct Writer {
    connection: Connection,
    appender: Appender,
    record: Option<RecordFile>,
    /// When deliveries were last trimmed.
    deliveries_trimmed: std::time::Instant,
    /// The next rowid of the deliveries' walk, while one is going on.
    deliveries_cursor: Option<i64>,
    retention: Retention,
    /// The file's device and inode when it was opened.
    identity: Option<(u64, u64)>,
    path: PathBuf,
    failed: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Writer {
    /// Writes what is queued, batch by batch, on the runtime's thread as the record
    /// writer does. Measured against a thread of its own (interleaved, 1 KB alerts,
    /// the server on one core): 0.95 against 0.83 of `--record`'s requests/s; the
    /// thread's two switches per batch cost more than the commit. A disk that stalls
    /// therefore stalls the receiver too, as it does with `--record`.
    async fn run(mut self, mut jobs: tokio::sync::mpsc::Receiver<Job>) {
        use tokio::sync::mpsc::error::TryRecvError;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut next_trim = tokio::time::Instant::now() + TRIM_EVERY;
        let mut trimming = false;
        loop {
            // Retention runs a step at a time between batches, and when there are none.
            if tokio::time::Instant::now() >= next_trim {
                trimming = true;
                next_trim += TRIM_EVERY;
            }
            if trimming {
                trimming = self.trim_step();
                tokio::task::yield_now().await;
            }
            let first = if trimming {
                match jobs.try_recv() {
                    Ok(job) => job,
                    Err(TryRecvError::Empty) => continue,
                    Err(TryRecvError::Disconnected) => return,
                }
            } else {
                match tokio::time::timeout_at(next_trim, jobs.recv()).await {
                    Ok(Some(job)) => job,
                    Ok(None) => return,
                    Err(_) => continue,
                }
            };
            let mut reopen = None;
            if first.kind == JobKind::ReopenRecord {
                reopen = Some(first);
            } else {
                batch.push(first);
                // Let the requests that are ready queue theirs too, so that one commit
                // carries a batch rather than a single exchange (as the record's writer does).
                tokio::task::yield_now().await;
            }
            while reopen.is_none() && batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    // What was queued before a reopening goes to the old file, the rest to the new.
                    Ok(job) if job.kind == JobKind::ReopenRecord => reopen = Some(job),
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let written = self.write(&batch);
            for job in batch.drain(..) {
                if let Some(done) = job.done {
                    let _ = done.send(written);
                }
            }
            if let Some(Job {
                done: Some(done), ..
            }) = reopen
            {
                let _ = done.send(self.record.as_mut().is_some_and(RecordFile::reopen));
            }
        }
    }

    /// One step of retention: deletes at most [`TRIM_STEP`] written batches (and
    /// deliveries) older than the age limit or beyond the row limit; once there are
    /// no more, the lines files no kept exchange is in. `true` while there is more
    /// to do. In steps, so that a batch waits behind one step, not behind a million
    /// rows. SQLite reuses the freed pages.
    fn trim_step(&mut self) -> bool {
        if self.failed.load(Ordering::Acquire) {
            return false;
        }
        match self.delete_step() {
            Ok(true) => true,
            Ok(false) => {
                let oldest_kept: rusqlite::Result<Option<u32>> =
                    self.connection
                        .query_row("SELECT min(segment) FROM batches", [], |row| row.get(0));
                if let Ok(oldest_kept) = oldest_kept {
                    self.appender
                        .delete_before(oldest_kept.unwrap_or(self.appender.segment()));
                }
                false
            }
            Err(error) => {
                tracing::warn!(
                    "the --store {} could not be trimmed: {error}",
                    self.path.display()
                );
                false
            }
        }
    }

    /// Deletes at most [`TRIM_STEP`] rows of each kind; `true` when there may be more.
    fn delete_step(&mut self) -> rusqlite::Result<bool> {
        let Retention { max_age, max_rows } = self.retention;
        let mut more = false;
        if let Some(max_age) = max_age {
            let cutoff = chrono::Utc::now()
                - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
            // The oldest by arrival (by id: no index on the time, which would cost
            // every insert): an imported exchange, received long ago, goes once
            // what was stored before it has gone.
            let deleted = self.connection.execute(
                "DELETE FROM batches WHERE rowid IN (SELECT rowid FROM
                 (SELECT rowid, newest_at FROM batches ORDER BY rowid LIMIT ?2) WHERE newest_at < ?1)",
                params![cutoff.to_rfc3339(), TRIM_STEP],
            )?;
            more |= deleted > 0;
            if self.deliveries_cursor.is_none()
                && self.deliveries_trimmed.elapsed() >= TRIM_DELIVERIES_EVERY
            {
                self.deliveries_cursor = Some(0);
                self.deliveries_trimmed = std::time::Instant::now();
            }
            // Deliveries are walked by rowid, a window a step (no index on the time,
            // for the same reason): each step reads a bounded part of the table.
            if let Some(cursor) = self.deliveries_cursor {
                let window = i64::try_from(TRIM_STEP).unwrap_or(i64::MAX);
                self.connection.execute(
                    "DELETE FROM deliveries WHERE rowid >= ?1 AND rowid < ?2 AND last_at_us < ?3",
                    params![cursor, cursor + window, cutoff.timestamp_micros()],
                )?;
                let last: Option<i64> =
                    self.connection
                        .query_row("SELECT max(rowid) FROM deliveries", [], |row| row.get(0))?;
                self.deliveries_cursor = last
                    .filter(|last| *last >= cursor + window)
                    .map(|_| cursor + window);
                more |= self.deliveries_cursor.is_some();
            }
        }
        if let Some(max_rows) = max_rows {
            let deleted = self.connection.execute(
                "DELETE FROM batches WHERE rowid IN
                 (SELECT rowid FROM batches WHERE max_id <= (SELECT max(max_id) FROM batches) - ?1
                  ORDER BY max_id LIMIT ?2)",
                params![i64::try_from(max_rows).unwrap_or(i64::MAX), TRIM_STEP],
            )?;
            more |= deleted >= TRIM_STEP;
        }
        Ok(more)
    }

    /// Writes one batch: its lines to the record file (with `--record`), then to the
    /// store in one transaction. When the store fails, says so once and stops
    /// storing; a record file that fails answers `false` until it is reopened.
    fn write(&mut self, batch: &[Job]) -> bool {
        let exchanges: Vec<&Job> = batch
            .iter()
            .filter(|job| job.kind == JobKind::Exchange)
            .collect();
        let lines: Vec<JsonLine> = exchanges.iter().map(|job| job.line.clone()).collect();
        if let Some(record) = &mut self.record {
            if !record.append(&lines) {
                return false;
            }
        }
        if self.failed.load(Ordering::Acquire) {
            return false;
        }
        match self.try_write(&exchanges, &lines) {
            Ok(()) => true,
            Err(reason) => {
                tracing::error!(
                    "the --store {} cannot be written ({reason}): acknowledging answers get 503 from now on",
                    self.path.display()
                );
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
                self.failed.store(true, Ordering::Release);
                false
            }
        }
    }

    fn try_write(&mut self, exchanges: &[&Job], lines: &[JsonLine]) -> Result<(), String> {
        // SQLite goes on writing to a file that was deleted or replaced, and all of it
        // would be gone at the next start: a store that is no longer at its path fails.
        if file_identity(&self.path) != self.identity {
            return Err("the file was deleted or replaced while hookscope ran".into());
        }
        if !self.appender.still_at_its_path() {
            return Err(format!(
                "its lines file {} was deleted or replaced while hookscope ran",
                segments::segment_path(&self.path, self.appender.segment()).display()
            ));
        }
        self.write_batch(exchanges, lines)
            .map_err(|error| error.to_string())
    }

    fn write_batch(&mut self, exchanges: &[&Job], lines: &[JsonLine]) -> Result<(), WriteError> {
        let written: Vec<(u64, Arrival)> = exchanges
            .iter()
            .map(|job| (job.id, job.received_at))
            .collect();
        let transaction = self.connection.transaction()?;
        add_batch(&transaction, &mut self.appender, &written, lines)?;
        {
            // Two requests of one alert may queue their states out of order: the
            // later attempt's state is kept, whichever commits last.
            let mut delivery = transaction.prepare_cached(
                "INSERT INTO deliveries (route, resent, key, attempts, last_at_us, acked, upstream_acked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (route, resent, key) DO UPDATE SET
                     attempts = excluded.attempts, last_at_us = excluded.last_at_us,
                     acked = excluded.acked, upstream_acked = excluded.upstream_acked
                 WHERE excluded.attempts >= deliveries.attempts",
            )?;
            let mut position = transaction.prepare_cached(
                "INSERT OR REPLACE INTO script_positions (route, position) VALUES (?1, ?2)",
            )?;
            for job in exchanges {
                for (route, at) in &job.script_positions {
                    position.execute(params![route, i64::try_from(*at).unwrap_or(i64::MAX)])?;
                }
            }
            for stored in
                latest_deliveries(exchanges.iter().filter_map(|job| job.delivery.as_ref()))
            {
                delivery.execute(params![
                    stored.route,
                    stored.resent,
                    stored.key,
                    stored.attempts,
                    stored.last_at_us,
                    stored.acked,
                    stored.upstream_acked,
                ])?;
            }
        }
        Ok(transaction.commit()?)
    }
}

/// Each delivery of a batch once, in its latest state (the most attempts): a
/// sender's retries of one alert in one batch are one row written, not one per attempt.
pub(super) fn latest_deliveries<'a>(
    deliveries: impl Iterator<Item = &'a StoredDelivery>,
) -> Vec<&'a StoredDelivery> {
    let mut latest: Vec<&StoredDelivery> = Vec::new();
    let mut seen: HashMap<(&str, bool, &str), usize> = HashMap::new();
    for stored in deliveries {
        let key = (stored.route.as_str(), stored.resent, stored.key.as_str());
        match seen.get(&key) {
            Some(&at) if latest[at].attempts > stored.attempts => {}
            Some(&at) => latest[at] = stored,
            None => {
                seen.insert(key, latest.len());
                latest.push(stored);
            }
        }
    }
    latest
}

/// A batch not written: its lines, or its commit.
#[derive(Debug, Error)]
enum WriteError {
    #[error("{0}")]
    Lines(#[from] std::io::Error),
    #[error("{0}")]
    Database(#[from] rusqlite::Error),
}

/// An id as SQLite keeps it.
fn to_sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// Appends a batch's lines to the lines file and adds its row: `written` holds each
/// line's id and arrival time, in the order of `lines`.
fn add_batch(
    connection: &Connection,
    appender: &mut Appender,
    written: &[(u64, Arrival)],
    lines: &[JsonLine],
) -> Result<(), WriteError> {
    if written.is_empty() {
        return Ok(());
    }
    // The lines first: a row points only to lines that are whole.
    let places = appender.append(lines)?;
    let (Some(first), Some(last)) = (places.first(), places.last()) else {
        return Ok(());
    };
    let entries: Vec<Entry> = written
        .iter()
        .zip(&places)
        .map(|((id, _), place)| Entry {
            id: *id,
            offset: place.start - first.start,
            length: place.length,
        })
        .collect();
    let ids = || written.iter().map(|(id, _)| *id);
    let times = || written.iter().map(|(_, at)| *at);
    connection
        .prepare_cached(
            "INSERT INTO batches (segment, start, length, count, min_id, max_id, oldest_at, newest_at, entries)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            first.segment,
            to_sql_id(first.start),
            to_sql_id(last.start + last.length + 1 - first.start),
            to_sql_id(written.len() as u64),
            to_sql_id(ids().min().unwrap_or(0)),
            to_sql_id(ids().max().unwrap_or(0)),
            times().min().unwrap_or_default().to_rfc3339(),
            times().max().unwrap_or_default().to_rfc3339(),
            batches::pack(&entries),
        ])?;
    Ok(())
}

/// Hands `visit` each stored line (with its id) below `below`, in id order, until
/// it says stop; each batch's lines are read at once. A batch whose lines file is
/// gone (retention deleted it since) is passed over.
fn each_line(
    connection: &Connection,
    store: &Path,
    order: Order,
    below: u64,
    mut visit: impl FnMut(u64, &str) -> bool,
) -> rusqlite::Result<()> {
    let query = match order {
        Order::Descending => {
            "SELECT segment, start, length, entries, max_id FROM batches
             WHERE min_id < ?1 ORDER BY max_id DESC"
        }
        Order::Ascending => {
            "SELECT segment, start, length, entries, min_id FROM batches
             WHERE min_id < ?1 ORDER BY min_id"
        }
    };
    let mut statement = connection.prepare_cached(query)?;
    let mut rows = statement.query([to_sql_id(below)])?;
    let mut files = segments::Reader::new(store);
    let mut merge: Merge<std::rc::Rc<Vec<u8>>> = Merge::new(order);
    let mut hand_over = |released: Vec<(Entry, std::rc::Rc<Vec<u8>>)>| {
        released.into_iter().all(|(entry, bytes)| {
            let line = usize::try_from(entry.offset)
                .ok()
                .zip(usize::try_from(entry.length).ok())
                .and_then(|(offset, length)| bytes.get(offset..offset.checked_add(length)?))
                .and_then(|line| std::str::from_utf8(line).ok());
            line.is_none_or(|line| visit(entry.id, line))
        })
    };
    while let Some(row) = rows.next()? {
        let bound: u64 = row.get(4)?;
        if !hand_over(merge.release_before(bound)) {
            return Ok(());
        }
        let place = Place {
            segment: row.get(0)?,
            start: row.get(1)?,
            length: row.get(2)?,
        };
        let entries: Vec<u8> = row.get(3)?;
        let below_cursor: Vec<Entry> = batches::unpack(&entries)
            .into_iter()
            .filter(|entry| entry.id < below)
            .collect();
        if below_cursor.is_empty() {
            continue;
        }
        let Ok(bytes) = files.read(place) else {
            continue;
        };
        merge.add(below_cursor, &std::rc::Rc::new(bytes));
    }
    hand_over(merge.release_all());
    Ok(())
}

/// Brings the lines of a version 1 store (inside the `exchanges` table) into lines
/// files and batch rows, in one transaction, and drops the table. While that table
/// exists no batch does, so any lines file found then is left from a move that did
/// not finish: it is deleted first.
fn move_inline_lines(connection: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let failed = |error: String| StoreError::Open {
        path: path.to_owned(),
        reason: format!("cannot bring it up to date: {error}"),
    };
    let mut moved = || -> Result<(), WriteError> {
        let old: i64 = connection.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'exchanges'",
            [],
            |row| row.get(0),
        )?;
        if old == 0 {
            return Ok(());
        }
        for segment in segments::existing(path) {
            std::fs::remove_file(segments::segment_path(path, segment))?;
        }
        let mut appender = Appender::open(path, 1, 0)?;
        let transaction = connection.transaction()?;
        {
            let mut statement =
                transaction.prepare("SELECT id, received_at, line FROM exchanges ORDER BY id")?;
            let mut rows = statement.query([])?;
            let mut chunk: Vec<(u64, Arrival, JsonLine)> = Vec::new();
            loop {
                let row = rows.next()?;
                if let Some(row) = row {
                    let (arrived, line): (String, String) = (row.get(1)?, row.get(2)?);
                    // Written by hookscope as RFC 3339: the fallback is only a guard.
                    let arrived = chrono::DateTime::parse_from_rfc3339(&arrived)
                        .map_or(Arrival::UNIX_EPOCH, |at| at.to_utc());
                    chunk.push((row.get(0)?, arrived, JsonLine::of_text(line)));
                }
                if chunk.len() == MAX_BATCH || (row.is_none() && !chunk.is_empty()) {
                    let written: Vec<(u64, Arrival)> =
                        chunk.iter().map(|(id, at, _)| (*id, *at)).collect();
                    let lines: Vec<JsonLine> =
                        chunk.iter().map(|(_, _, line)| line.clone()).collect();
                    add_batch(&transaction, &mut appender, &written, &lines)?;
                    chunk.clear();
                }
                if row.is_none() {
                    break;
                }
            }
        }
        transaction.execute_batch("DROP TABLE exchanges")?;
        transaction.commit()?;
        Ok(())
    };
    moved().map_err(|error| failed(error.to_string()))
}
