//! `--store postgres://...`: several hookscopes on one PostgreSQL, sharing what they
//! saw and what they decided. The embedded store (`database.rs`) keeps one
//! process's history and state in a file; here the database is the state:
//! - exchange ids come from one sequence, handed out in groups (one round trip for
//!   every request waiting at that moment), so ids follow arrival across instances;
//! - an alert's attempt number and a global script's step are decided by one
//!   atomic upsert ([`Team::arrive`]), whichever instance the attempt reaches;
//! - each exchange's record line is written as the embedded store writes it (group
//!   commit, an acknowledging answer waits for it), with a `NOTIFY` of its id
//!   inside the same transaction, so that the other instances' live feeds get it
//!   once it is committed (notifications carry ids, never bodies: 8,000 bytes at most).
//!
//! Lines are kept in a table, not in lines files: instances on several machines
//! cannot share a file. Every wait on the database is bounded (`--store-timeout`);
//! past it, or while the database is unreachable, answers are 503 with a
//! Retry-After, and the pool reconnects by itself once it is back.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use super::database::{Arrival, StoreError, StoreSummary, StoredDelivery, ToStore};
use super::record::Room;
use super::{JsonLine, Retention};
use tokio::sync::OwnedSemaphorePermit;

/// Where a team's store is: a PostgreSQL URL, shown without its password.
#[derive(Clone)]
pub struct TeamUrl {
    config: tokio_postgres::Config,
    shown: String,
}

impl TeamUrl {
    /// Whether `text` names a PostgreSQL database rather than a file.
    pub fn is_url(text: &str) -> bool {
        text.starts_with("postgres://") || text.starts_with("postgresql://")
    }

    /// Reads a `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?...]` URL; the error never
    /// repeats the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<TeamUrl, String> {
        let config: tokio_postgres::Config = text.parse().map_err(|error| {
            // tokio-postgres names the part it could not read, not the text around it.
            format!("not a PostgreSQL URL ({error}): expected postgres://USER@HOST:PORT/DATABASE")
        })?;
        if config.get_hosts().is_empty() {
            return Err(
                "the PostgreSQL URL names no host: postgres://USER@HOST:PORT/DATABASE".into(),
            );
        }
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(
                "sslmode=require is not supported: hookscope talks to PostgreSQL without TLS (use it on a trusted network, or through a tunnel)".into(),
            );
        }
        Ok(TeamUrl {
            shown: without_password(text),
            config,
        })
    }
}

impl std::fmt::Display for TeamUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.shown)
    }
}

impl std::fmt::Debug for TeamUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "TeamUrl({})", self.shown)
    }
}

impl PartialEq for TeamUrl {
    fn eq(&self, other: &TeamUrl) -> bool {
        self.shown == other.shown
    }
}

/// The URL with its password (and any `password=` parameter) replaced by `***`.
fn without_password(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(name, value)| {
                    let value = if name == "password" {
                        "***".into()
                    } else {
                        value.into_owned()
                    };
                    (name.into_owned(), value)
                })
                .collect();
            if !pairs.is_empty() {
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            url.to_string()
        }
        Err(_) => "(a PostgreSQL URL)".into(),
    }
}

/// The schema version this build writes, kept in `hookscope.meta`.
pub const TEAM_SCHEMA_VERSION: i32 = 1;

/// The schema, version by version. The embedded store's tables, in PostgreSQL's
/// types; lines inline (the embedded store's version 1 shape), since a lines file
/// cannot be shared between machines.
const TEAM_MIGRATIONS: [&str; 1] = ["
    CREATE TABLE hookscope.exchanges (
        id BIGINT PRIMARY KEY,
        received_at TIMESTAMPTZ NOT NULL,
        line TEXT NOT NULL
    );
    CREATE TABLE hookscope.deliveries (
        route TEXT NOT NULL,
        resent BOOLEAN NOT NULL,
        key TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_at_us BIGINT NOT NULL,
        previous_at_us BIGINT,
        acked BOOLEAN NOT NULL,
        upstream_acked BOOLEAN NOT NULL,
        PRIMARY KEY (route, resent, key)
    );
    CREATE TABLE hookscope.script_positions (
        route INTEGER PRIMARY KEY,
        position BIGINT NOT NULL
    );
    CREATE SEQUENCE hookscope.exchange_ids;

    -- The shared decision of a group of arrivals (one per request, in the order
    -- they came): each delivery's next attempt (one acknowledged before starts
    -- again at 1), the time of the one before, whether the upstream acknowledged an
    -- earlier attempt, and the global script's next position where asked. Rows are
    -- locked in key order, then script routes in route order, whatever the order of
    -- the group: two instances' groups never wait on each other in a cycle.
    CREATE FUNCTION hookscope.arrive(
        routes TEXT[], resents BOOLEAN[], keys TEXT[], nows BIGINT[], script_routes INTEGER[]
    ) RETURNS TABLE (attempt INTEGER, previous_at BIGINT, upstream_acked_before BOOLEAN, position_taken BIGINT)
    LANGUAGE plpgsql AS $$
    DECLARE
        count INTEGER := coalesce(array_length(keys, 1), 0);
        attempts_out INTEGER[] := array_fill(NULL::INTEGER, ARRAY[count]);
        previous_out BIGINT[] := array_fill(NULL::BIGINT, ARRAY[count]);
        upstream_out BOOLEAN[] := array_fill(NULL::BOOLEAN, ARRAY[count]);
        positions_out BIGINT[] := array_fill(NULL::BIGINT, ARRAY[count]);
        one RECORD;
        taken_attempts INTEGER;
        taken_previous BIGINT;
        taken_upstream BOOLEAN;
        taken_position BIGINT;
    BEGIN
        FOR one IN
            SELECT * FROM unnest(routes, resents, keys, nows) WITH ORDINALITY
                AS u(route, resent, key, now_us, n)
            ORDER BY u.route, u.resent, u.key, u.n
        LOOP
            INSERT INTO hookscope.deliveries AS d
                (route, resent, key, attempts, last_at_us, previous_at_us, acked, upstream_acked)
            VALUES (one.route, one.resent, one.key, 1, one.now_us, NULL, false, false)
            ON CONFLICT (route, resent, key) DO UPDATE SET
                attempts = CASE WHEN d.acked THEN 1 ELSE d.attempts + 1 END,
                previous_at_us = CASE WHEN d.acked THEN NULL ELSE d.last_at_us END,
                upstream_acked = d.upstream_acked AND NOT d.acked,
                acked = false,
                last_at_us = EXCLUDED.last_at_us
            RETURNING d.attempts, d.previous_at_us, d.upstream_acked
                INTO taken_attempts, taken_previous, taken_upstream;
            attempts_out[one.n] := taken_attempts;
            previous_out[one.n] := taken_previous;
            upstream_out[one.n] := taken_upstream;
        END LOOP;
        FOR one IN
            SELECT * FROM unnest(script_routes) WITH ORDINALITY AS u(route, n)
            WHERE u.route IS NOT NULL ORDER BY u.route, u.n
        LOOP
            INSERT INTO hookscope.script_positions AS s (route, position) VALUES (one.route, 1)
            ON CONFLICT (route) DO UPDATE SET position = s.position + 1
            RETURNING s.position INTO taken_position;
            positions_out[one.n] := taken_position;
        END LOOP;
        RETURN QUERY SELECT u.a, u.p, u.up, u.pos
            FROM unnest(attempts_out, previous_out, upstream_out, positions_out) WITH ORDINALITY
                AS u(a, p, up, pos, n)
            ORDER BY u.n;
    END $$;
"];

/// The channel each committed batch's ids are announced on.
const CHANNEL: &str = "hookscope_exchanges";

/// A notification's payload must stay under PostgreSQL's 8,000 bytes.
const MAX_PAYLOAD: usize = 7_900;

/// Connections in the pool: the writer, id groups, decisions and reads share them
/// (tokio-postgres pipelines the queries of concurrent requests on one connection).
const POOL_SIZE: usize = 8;

/// Most exchanges written in one transaction, and most ids asked for at once.
const MAX_BATCH: usize = 512;

/// Most writes and id requests queued: beyond it, an answer waits for room (bounded
/// by the store timeout).
const MAX_QUEUED: usize = 4096;

/// Rows a search or an export reads in one query.
const READ_CHUNK: i64 = 256;

/// Peers' exchanges a live reader may lag behind before it is told it missed some.
const PEER_BACKLOG: usize = 1024;

/// How often retention runs (each instance runs it; deleting twice is harmless).
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Most rows retention deletes in one statement.
const TRIM_STEP: i64 = 2_000;

/// An exchange another instance stored: its id and record line, for live readers.
pub type PeerLine = (u64, Arc<str>);

/// Where a request stands among its alert's deliveries, as the database decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedAttempt {
    /// 1 for the first delivery, 2 for the first retry, ...
    pub number: u32,
    /// Time since the previous attempt of the same delivery (on any instance).
    pub gap: Option<Duration>,
    /// An earlier attempt of this delivery was acknowledged by the upstream (`--forward`).
    pub upstream_acked: bool,
    /// The global script's step this request takes, when it asked for one: the
    /// script's route (as [`global_script_route`](crate::respond::global_script_route)
    /// keys it) and the position.
    pub script_step: Option<(i64, u64)>,
}

/// A store shared by several instances, on PostgreSQL.
pub struct Team {
    url: TeamUrl,
    pool: deadpool_postgres::Pool,
    timeout: Duration,
    runtime: tokio::runtime::Handle,
    writes: Option<mpsc::Sender<Queued>>,
    ids: Option<Asked<(), u64>>,
    decisions: Option<Asked<Arriving, SharedAttempt>>,
    peers: broadcast::Sender<PeerLine>,
    /// Bytes of lines queued for the writer (32 MiB, as the embedded store's): a
    /// database that stops taking writes must not turn a flood into memory.
    room: Room,
    /// Dropped with the store: its background tasks (listener, retention) end.
    running: watch::Sender<()>,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Team({})", self.url)
    }
}

/// The queue of a task that answers what is asked in groups ([`answer_in_groups`]).
type Asked<Q, A> = mpsc::Sender<(Q, oneshot::Sender<Result<A, String>>)>;

/// One request's arrival, for the shared decision.
struct Arriving {
    route: String,
    resent: bool,
    key: String,
    now_us: i64,
    script_route: Option<i32>,
}

/// What the writer takes, in order.
// A flush is rare, a write is every request: boxing the write would cost each an allocation.
#[allow(clippy::large_enum_variant)]
enum Queued {
    /// An exchange to store.
    Write(Write),
    /// Only waits for everything queued before it.
    Flush(oneshot::Sender<()>),
}

/// One exchange to write, and who waits for its commit.
struct Write {
    id: u64,
    received_at: Arrival,
    line: JsonLine,
    delivery: Option<StoredDelivery>,
    done: Option<oneshot::Sender<Result<(), StoreError>>>,
    /// Its line's room in the queue, given back once written.
    _room: OwnedSemaphorePermit,
}

impl Write {
    fn of(
        exchange: ToStore,
        done: Option<oneshot::Sender<Result<(), StoreError>>>,
        room: OwnedSemaphorePermit,
    ) -> Write {
        Write {
            id: exchange.id,
            received_at: exchange.received_at,
            line: exchange.line,
            delivery: exchange.change.delivery,
            done,
            _room: room,
        }
    }
}

impl Team {
    /// Connects, brings the schema up to date (one instance at a time), and starts
    /// the writer, the id dispenser, the listener for the others' exchanges and retention.
    /// Unreachable, refused or of a newer version: an error that names the URL
    /// without its password.
    pub async fn connect(
        url: &TeamUrl,
        retention: Retention,
        timeout: Duration,
    ) -> Result<(Team, StoreSummary), StoreError> {
        let (mut team, summary) = Team::open(url, timeout, true).await?;
        let origin = fastrand::u64(..);
        let (writes, queued) = mpsc::channel(MAX_QUEUED);
        let (ids, asked_ids) = mpsc::channel(MAX_QUEUED);
        let (decisions, asked_decisions) = mpsc::channel(MAX_QUEUED);
        tokio::spawn(write_batches(
            team.pool.clone(),
            queued,
            (origin, url.to_string()),
            timeout,
        ));
        tokio::spawn(answer_in_groups(
            team.pool.clone(),
            asked_ids,
            timeout,
            take_ids,
        ));
        tokio::spawn(answer_in_groups(
            team.pool.clone(),
            asked_decisions,
            timeout,
            decide,
        ));
        tokio::spawn(retain(
            team.pool.clone(),
            retention,
            team.running.subscribe(),
        ));
        team.start_listening(url, Some(origin)).await;
        team.writes = Some(writes);
        team.ids = Some(ids);
        team.decisions = Some(decisions);
        Ok((team, summary))
    }

    /// Connects to read only (`hookscope inspect postgres://...`): nothing is
    /// written; every exchange stored by the instances reaches live readers.
    pub async fn connect_read_only(
        url: &TeamUrl,
        timeout: Duration,
    ) -> Result<(Team, StoreSummary), StoreError> {
        let (team, summary) = Team::open(url, timeout, false).await?;
        team.start_listening(url, None).await;
        Ok((team, summary))
    }

    /// Starts the listener for the exchanges the others commit, and waits (up to
    /// the store timeout) until it listens: an instance that says it is ready misses
    /// none of what comes after.
    async fn start_listening(&self, url: &TeamUrl, origin: Option<u64>) {
        let (ready, listening) = oneshot::channel();
        tokio::spawn(listen(
            url.config.clone(),
            self.pool.clone(),
            origin,
            (self.peers.clone(), self.running.subscribe(), ready),
        ));
        let _ = tokio::time::timeout(self.timeout, listening).await;
    }

    async fn open(
        url: &TeamUrl,
        timeout: Duration,
        migrate: bool,
    ) -> Result<(Team, StoreSummary), StoreError> {
        // A decision (an attempt number, an id) need not wait for its own flush to
        // disk: the answer it leads to waits for its exchange's commit, which is
        // synchronous (write_batch) and so flushes everything logged before it.
        // Without this, each decision was a disk flush of its own: 3,100 req/s.
        let mut config = url.config.clone();
        config.options("-c synchronous_commit=off");
        let manager = deadpool_postgres::Manager::from_config(
            config,
            NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|error| StoreError::Unreachable {
                url: url.to_string(),
                reason: error.to_string(),
            })?;
        let mut client = pool.get().await.map_err(|error| StoreError::Unreachable {
            url: url.to_string(),
            reason: pool_reason(&error),
        })?;
        let failed = |error: tokio_postgres::Error| StoreError::Failed {
            path: url.to_string().into(),
            reason: database_reason(&error),
        };
        let version = if migrate {
            bring_up_to_date(&mut client, url).await?
        } else {
            schema_version(&client).await.map_err(failed)?
        };
        if version == 0 {
            return Err(StoreError::NotAStore {
                path: url.to_string().into(),
                reason: "this database has no hookscope tables: start `hookscope listen --store URL` on it first".into(),
            });
        }
        if version > TEAM_SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path: url.to_string().into(),
                found: version.into(),
                supported: TEAM_SCHEMA_VERSION.into(),
            });
        }
        let summary = summary(&client).await.map_err(failed)?;
        drop(client);
        Ok((
            Team {
                url: url.clone(),
                pool,
                timeout,
                runtime: tokio::runtime::Handle::current(),
                writes: None,
                ids: None,
                decisions: None,
                peers: broadcast::channel(PEER_BACKLOG).0,
                room: Room::new(),
                running: watch::channel(()).0,
            },
            summary,
        ))
    }

    /// The store, as messages name it (without the password).
    pub(super) fn describe(&self) -> String {
        self.url.to_string()
    }

    /// A failure of this store, as answers and the API say it.
    fn failed(&self, reason: String) -> StoreError {
        StoreError::Failed {
            path: self.url.to_string().into(),
            reason,
        }
    }

    fn too_slow(&self) -> StoreError {
        self.failed(format!(
            "PostgreSQL did not answer within {} (--store-timeout)",
            humantime::format_duration(self.timeout)
        ))
    }

    /// Asks a grouping task, and waits for its answer within the store timeout.
    async fn ask<Q, A>(&self, queue: Option<&Asked<Q, A>>, question: Q) -> Result<A, StoreError> {
        let Some(queue) = queue else {
            return Err(self.failed("opened read-only".into()));
        };
        let (answer, answered) = oneshot::channel();
        let asked = async {
            queue.send((question, answer)).await.ok()?;
            answered.await.ok()
        };
        match tokio::time::timeout(self.timeout, asked).await {
            Ok(Some(Ok(answer))) => Ok(answer),
            Ok(Some(Err(reason))) => Err(self.failed(reason)),
            Ok(None) => Err(self.failed("its task stopped".into())),
            Err(_) => Err(self.too_slow()),
        }
    }

    /// The next exchange id, from the shared sequence (the requests waiting at the
    /// same moment share one round trip).
    pub async fn next_id(&self) -> Result<u64, StoreError> {
        self.ask(self.ids.as_ref(), ()).await
    }

    /// Decides, atomically in the database, which attempt of its delivery a request
    /// for `key` is (a delivery acknowledged before starts again at 1), and takes
    /// the global script's next position on `script_route` when asked. The
    /// requests waiting at the same moment are decided in one transaction.
    pub async fn arrive(
        &self,
        (route, resent, key): (&str, bool, &str),
        script_route: Option<i32>,
        now_us: i64,
    ) -> Result<SharedAttempt, StoreError> {
        let arrival = Arriving {
            route: route.to_owned(),
            resent,
            key: key.to_owned(),
            now_us,
            script_route,
        };
        self.ask(self.decisions.as_ref(), arrival).await
    }

    /// Stores an exchange and what it changed, and waits for the commit (as long
    /// as [`Database::write`](super::Database::write) lets it: `--store-timeout`).
    pub async fn write(&self, exchange: ToStore) -> Result<(), StoreError> {
        let stopped = || self.failed("the writer stopped".into());
        let Some(writes) = &self.writes else {
            return Err(self.failed("opened read-only".into()));
        };
        let Some(room) = self.room.wait_for(&exchange.line).await else {
            return Err(self.failed("the writer is 32 MiB behind".into()));
        };
        let (done, committed) = oneshot::channel();
        let write = Write::of(exchange, Some(done), room);
        if writes.send(Queued::Write(write)).await.is_err() {
            return Err(stopped());
        }
        committed.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Stores an exchange that acknowledged nothing, without waiting; `false` when
    /// it is left out because the writer is behind.
    pub fn write_detached(&self, exchange: ToStore) -> bool {
        match (&self.writes, self.room.try_take(&exchange.line)) {
            (Some(writes), Some(room)) => writes
                .try_send(Queued::Write(Write::of(exchange, None, room)))
                .is_ok(),
            _ => false,
        }
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let Some(writes) = &self.writes else {
            return Ok(());
        };
        let (done, flushed) = oneshot::channel();
        let drained = async {
            if writes.send(Queued::Flush(done)).await.is_ok() {
                let _ = flushed.await;
            }
        };
        tokio::time::timeout(self.timeout, drained)
            .await
            .map_err(|_| self.too_slow())
    }

    /// The exchanges the other instances store, as they are committed.
    pub fn peers(&self) -> broadcast::Receiver<PeerLine> {
        self.peers.subscribe()
    }

    /// The stored record lines that pass `filter`, newest first, below `below`, at
    /// most `limit`, within `budget`; `true` when the budget ran out first. On the
    /// caller's thread, a blocking one.
    pub fn search(
        &self,
        filter: &super::Filter,
        below: u64,
        limit: usize,
        budget: Duration,
    ) -> Result<(Vec<(u64, String)>, bool), StoreError> {
        let started = std::time::Instant::now();
        let mut found = Vec::new();
        let mut cursor = below;
        loop {
            let rows = self.read_chunk(READ_NEWEST_BELOW, cursor)?;
            let Some(&(last, _)) = rows.last() else {
                return Ok((found, false));
            };
            for (id, line) in rows {
                if filter.read_if_passes(&line).is_some() {
                    found.push((id, line));
                    if found.len() >= limit {
                        return Ok((found, false));
                    }
                }
            }
            if started.elapsed() > budget {
                return Ok((found, true));
            }
            cursor = last;
        }
    }

    /// Hands `visit` each stored record line below `below` that passes `filter`,
    /// oldest first, until it says stop. On the caller's thread, a blocking one.
    pub fn each_ascending(
        &self,
        filter: &super::Filter,
        below: u64,
        mut visit: impl FnMut(&super::RecordLine<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let mut after = 0;
        loop {
            let rows = self.read_chunk(READ_OLDEST_ABOVE, after)?;
            let Some(&(last, _)) = rows.last() else {
                return Ok(());
            };
            for (id, line) in &rows {
                if *id >= below {
                    return Ok(());
                }
                if filter
                    .read_if_passes(line)
                    .is_some_and(|parsed| !visit(&parsed))
                {
                    return Ok(());
                }
            }
            after = last;
        }
    }

    /// The stored record line of exchange `id`, if there is one.
    pub fn get(&self, id: u64) -> Result<Option<String>, StoreError> {
        let rows = self.read_chunk(READ_ONE, id)?;
        Ok(rows.into_iter().next().map(|(_, line)| line))
    }

    /// One read query with an id parameter, run to its end from a blocking thread.
    fn read_chunk(&self, query: &'static str, id: u64) -> Result<Vec<(u64, String)>, StoreError> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        let read = async {
            let client = self.pool.get().await.map_err(|error| pool_reason(&error))?;
            let statement = client
                .prepare_cached(query)
                .await
                .map_err(|error| database_reason(&error))?;
            let rows = client
                .query(&statement, &[&id, &READ_CHUNK])
                .await
                .map_err(|error| database_reason(&error))?;
            Ok::<_, String>(
                rows.iter()
                    .map(|row| (u64::try_from(row.get::<_, i64>(0)).unwrap_or(0), row.get(1)))
                    .collect(),
            )
        };
        match self
            .runtime
            .block_on(async { tokio::time::timeout(self.timeout, read).await })
        {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(reason)) => Err(self.failed(reason)),
            Err(_) => Err(self.too_slow()),
        }
    }
}

const READ_NEWEST_BELOW: &str =
    "SELECT id, line FROM hookscope.exchanges WHERE id < $1 ORDER BY id DESC LIMIT $2";
const READ_OLDEST_ABOVE: &str =
    "SELECT id, line FROM hookscope.exchanges WHERE id > $1 ORDER BY id LIMIT $2";
const READ_ONE: &str = "SELECT id, line FROM hookscope.exchanges WHERE id = $1 LIMIT $2";

/// A batch's exchanges, in one statement.
const INSERT_EXCHANGES: &str = "
    INSERT INTO hookscope.exchanges (id, received_at, line)
    SELECT * FROM UNNEST($1::BIGINT[], $2::TIMESTAMPTZ[], $3::TEXT[])
    ON CONFLICT (id) DO NOTHING";

/// What answers decided of deliveries (acknowledged, by the sender or the upstream),
/// on the attempt they answered: a later attempt that arrived meanwhile is left alone.
/// The rows are locked first, in key order, as `hookscope.arrive` locks them: no
/// cycle of waits between this transaction and any instance's decisions.
const MARK_DELIVERIES: &str = "
    WITH u AS MATERIALIZED (
        SELECT * FROM UNNEST($1::TEXT[], $2::BOOLEAN[], $3::TEXT[], $4::INTEGER[], $5::BOOLEAN[], $6::BOOLEAN[])
            AS u(route, resent, key, attempts, acked, upstream_acked)
    ), locked AS MATERIALIZED (
        SELECT d.route, d.resent, d.key FROM hookscope.deliveries d
        JOIN u ON d.route = u.route AND d.resent = u.resent AND d.key = u.key
        ORDER BY d.route, d.resent, d.key
        FOR UPDATE OF d
    )
    UPDATE hookscope.deliveries AS d
    SET acked = d.acked OR u.acked, upstream_acked = d.upstream_acked OR u.upstream_acked
    FROM u, locked l
    WHERE d.route = u.route AND d.resent = u.resent AND d.key = u.key AND d.attempts = u.attempts
        AND l.route = d.route AND l.resent = d.resent AND l.key = d.key";

/// Brings the schema up to date under an advisory lock (instances started together
/// migrate one after the other), and says its version.
async fn bring_up_to_date(
    client: &mut deadpool_postgres::Client,
    url: &TeamUrl,
) -> Result<i32, StoreError> {
    let failed = |error: tokio_postgres::Error| StoreError::Failed {
        path: url.to_string().into(),
        reason: database_reason(&error),
    };
    let transaction = client.transaction().await.map_err(failed)?;
    transaction
        .batch_execute(
            "SELECT pg_advisory_xact_lock(7239823478);
             CREATE SCHEMA IF NOT EXISTS hookscope;
             CREATE TABLE IF NOT EXISTS hookscope.meta (version INTEGER NOT NULL);",
        )
        .await
        .map_err(failed)?;
    let found: Option<i32> = transaction
        .query_opt("SELECT version FROM hookscope.meta", &[])
        .await
        .map_err(failed)?
        .map(|row| row.get(0));
    let found = found.unwrap_or(0);
    if found > TEAM_SCHEMA_VERSION {
        return Ok(found);
    }
    for migration in &TEAM_MIGRATIONS[usize::try_from(found).unwrap_or(0)..] {
        transaction.batch_execute(migration).await.map_err(failed)?;
    }
    transaction
        .batch_execute(&format!(
            "DELETE FROM hookscope.meta; INSERT INTO hookscope.meta VALUES ({TEAM_SCHEMA_VERSION});"
        ))
        .await
        .map_err(failed)?;
    transaction.commit().await.map_err(failed)?;
    Ok(TEAM_SCHEMA_VERSION)
}

/// The schema's version, 0 when there are no hookscope tables.
async fn schema_version(client: &deadpool_postgres::Client) -> Result<i32, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('hookscope.meta') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_opt("SELECT version FROM hookscope.meta", &[])
        .await?
        .map_or(0, |row| row.get(0)))
}

/// What start-up says of the store.
async fn summary(
    client: &deadpool_postgres::Client,
) -> Result<StoreSummary, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*), min(received_at), pg_total_relation_size('hookscope.exchanges')
             FROM hookscope.exchanges",
            &[],
        )
        .await?;
    let since: Option<chrono::DateTime<chrono::Utc>> = row.get(1);
    Ok(StoreSummary {
        exchanges: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        since: since.map(|at| at.to_rfc3339()),
        bytes: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
    })
}

/// Why the pool gave no connection, without the URL (it may hold a password).
fn pool_reason(error: &deadpool_postgres::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(error) => database_reason(error),
        deadpool_postgres::PoolError::Timeout(_) => "no connection within the store timeout".into(),
        other => other.to_string(),
    }
}

/// PostgreSQL's own message (`password authentication failed for user "x"`), or
/// the connection's (`Connection refused`).
fn database_reason(error: &tokio_postgres::Error) -> String {
    if let Some(database) = error.as_db_error() {
        return database.message().to_owned();
    }
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    reason
}

/// The writer: takes every write queued at once and stores them in one
/// transaction, with a notification of their ids, then tells each waiting answer.
async fn write_batches(
    pool: deadpool_postgres::Pool,
    mut queued: mpsc::Receiver<Queued>,
    (origin, shown): (u64, String),
    timeout: Duration,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queued.recv().await {
        let mut flush = None;
        match first {
            Queued::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Queued::Write(write) => batch.push(write),
        }
        // Let the requests that are ready queue theirs too: one commit per batch.
        tokio::task::yield_now().await;
        while batch.len() < MAX_BATCH && flush.is_none() {
            match queued.try_recv() {
                Ok(Queued::Write(write)) => batch.push(write),
                Ok(Queued::Flush(done)) => flush = Some(done),
                Err(_) => break,
            }
        }
        let written = tokio::time::timeout(timeout, write_batch(&pool, &batch, origin)).await;
        let result = match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(format!(
                "PostgreSQL did not commit within {} (--store-timeout)",
                humantime::format_duration(timeout)
            )),
        };
        if let Err(reason) = &result {
            tracing::warn!(
                "the team store could not write {} exchanges: {reason}",
                batch.len()
            );
        }
        for write in batch.drain(..) {
            if let Some(done) = write.done {
                let _ = done.send(result.clone().map_err(|reason| StoreError::Failed {
                    path: shown.clone().into(),
                    reason,
                }));
            }
        }
        if let Some(done) = flush {
            let _ = done.send(());
        }
    }
}

async fn write_batch(
    pool: &deadpool_postgres::Pool,
    batch: &[Write],
    origin: u64,
) -> Result<(), String> {
    let mut client = pool.get().await.map_err(|error| pool_reason(&error))?;
    let reason = |error: tokio_postgres::Error| database_reason(&error);
    let ids: Vec<i64> = batch
        .iter()
        .map(|write| i64::try_from(write.id).unwrap_or(i64::MAX))
        .collect();
    let times: Vec<Arrival> = batch.iter().map(|write| write.received_at).collect();
    let lines: Vec<String> = batch
        .iter()
        .map(|write| {
            String::from_utf8(write.line.to_vec())
                .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
        })
        .collect();
    let deliveries = super::database::latest_deliveries(
        batch.iter().filter_map(|write| write.delivery.as_ref()),
    );
    let marked: Vec<&StoredDelivery> = deliveries
        .into_iter()
        .filter(|delivery| delivery.acked || delivery.upstream_acked)
        .collect();

    let transaction = client.transaction().await.map_err(reason)?;
    // The commit that acknowledges: on disk before any answer of the batch is sent.
    transaction
        .batch_execute("SET LOCAL synchronous_commit = on")
        .await
        .map_err(reason)?;
    let insert = transaction
        .prepare_cached(INSERT_EXCHANGES)
        .await
        .map_err(reason)?;
    transaction
        .execute(&insert, &[&ids, &times, &lines])
        .await
        .map_err(reason)?;
    if !marked.is_empty() {
        let mark = transaction
            .prepare_cached(MARK_DELIVERIES)
            .await
            .map_err(reason)?;
        let column = |pick: fn(&StoredDelivery) -> String| -> Vec<String> {
            marked.iter().map(|delivery| pick(delivery)).collect()
        };
        let flags = |pick: fn(&StoredDelivery) -> bool| -> Vec<bool> {
            marked.iter().map(|delivery| pick(delivery)).collect()
        };
        let attempts: Vec<i32> = marked
            .iter()
            .map(|delivery| i32::try_from(delivery.attempts).unwrap_or(i32::MAX))
            .collect();
        transaction
            .execute(
                &mark,
                &[
                    &column(|delivery| delivery.route.clone()),
                    &flags(|delivery| delivery.resent),
                    &column(|delivery| delivery.key.clone()),
                    &attempts,
                    &flags(|delivery| delivery.acked),
                    &flags(|delivery| delivery.upstream_acked),
                ],
            )
            .await
            .map_err(reason)?;
    }
    for payload in payloads(origin, &ids) {
        transaction
            .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
            .await
            .map_err(reason)?;
    }
    transaction.commit().await.map_err(reason)
}

/// The notifications for a batch's ids: `ORIGIN:ID,ID,...`, each under PostgreSQL's limit.
fn payloads(origin: u64, ids: &[i64]) -> Vec<String> {
    let start = format!("{origin:x}:");
    let mut payloads = Vec::new();
    let mut payload = start.clone();
    for id in ids {
        if payload.len() + 21 > MAX_PAYLOAD {
            payloads.push(std::mem::replace(&mut payload, start.clone()));
        }
        if payload.len() > start.len() {
            payload.push(',');
        }
        payload.push_str(&id.to_string());
    }
    if payload.len() > start.len() {
        payloads.push(payload);
    }
    payloads
}

/// Reads a notification: who sent it and the ids it carries.
fn read_payload(payload: &str) -> Option<(u64, Vec<i64>)> {
    let (origin, ids) = payload.split_once(':')?;
    let origin = u64::from_str_radix(origin, 16).ok()?;
    let ids = ids
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<i64>, _>>()
        .ok()?;
    Some((origin, ids))
}

/// Answers what is asked in groups: everything waiting at that moment is answered
/// by one call of `answer` (one round trip, one transaction), in the order asked.
async fn answer_in_groups<Q, A, F>(
    pool: deadpool_postgres::Pool,
    mut asked: mpsc::Receiver<(Q, oneshot::Sender<Result<A, String>>)>,
    timeout: Duration,
    answer: fn(deadpool_postgres::Pool, Vec<Q>) -> F,
) where
    F: Future<Output = Result<Vec<A>, String>>,
{
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = asked.recv().await {
        waiting.push(first);
        while waiting.len() < MAX_BATCH {
            match asked.try_recv() {
                Ok(question) => waiting.push(question),
                Err(_) => break,
            }
        }
        let (questions, answers): (Vec<Q>, Vec<_>) = waiting.drain(..).unzip();
        let count = questions.len();
        let answered = tokio::time::timeout(timeout, answer(pool.clone(), questions))
            .await
            .unwrap_or_else(|_| Err("PostgreSQL did not answer within the store timeout".into()));
        match answered {
            Ok(given) if given.len() == count => {
                for (give, answer) in answers.into_iter().zip(given) {
                    let _ = give.send(Ok(answer));
                }
            }
            outcome => {
                let reason = outcome
                    .err()
                    .unwrap_or_else(|| "PostgreSQL gave too few answers".into());
                for give in answers {
                    let _ = give.send(Err(reason.clone()));
                }
            }
        }
    }
}

/// Ids from the shared sequence, one per question.
async fn take_ids(pool: deadpool_postgres::Pool, asked: Vec<()>) -> Result<Vec<u64>, String> {
    let count = i64::try_from(asked.len()).unwrap_or(1);
    let client = pool.get().await.map_err(|error| pool_reason(&error))?;
    let statement = client
        .prepare_cached(
            "SELECT nextval('hookscope.exchange_ids') FROM generate_series(1, $1::BIGINT)",
        )
        .await
        .map_err(|error| database_reason(&error))?;
    let rows = client
        .query(&statement, &[&count])
        .await
        .map_err(|error| database_reason(&error))?;
    Ok(rows
        .iter()
        .map(|row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        .collect())
}

/// The shared decisions of a group of arrivals, in one call of `hookscope.arrive`.
async fn decide(
    pool: deadpool_postgres::Pool,
    arrivals: Vec<Arriving>,
) -> Result<Vec<SharedAttempt>, String> {
    let client = pool.get().await.map_err(|error| pool_reason(&error))?;
    let statement = client
        .prepare_cached("SELECT * FROM hookscope.arrive($1, $2, $3, $4, $5)")
        .await
        .map_err(|error| database_reason(&error))?;
    let routes: Vec<&str> = arrivals.iter().map(|a| a.route.as_str()).collect();
    let resents: Vec<bool> = arrivals.iter().map(|a| a.resent).collect();
    let keys: Vec<&str> = arrivals.iter().map(|a| a.key.as_str()).collect();
    let nows: Vec<i64> = arrivals.iter().map(|a| a.now_us).collect();
    let script_routes: Vec<Option<i32>> = arrivals.iter().map(|a| a.script_route).collect();
    let rows = client
        .query(
            &statement,
            &[&routes, &resents, &keys, &nows, &script_routes],
        )
        .await
        .map_err(|error| database_reason(&error))?;
    Ok(rows
        .iter()
        .zip(&arrivals)
        .map(|(row, arrival)| {
            let previous_at_us: Option<i64> = row.get(1);
            let position: Option<i64> = row.get(3);
            SharedAttempt {
                number: u32::try_from(row.get::<_, i32>(0)).unwrap_or(1),
                gap: previous_at_us.map(|previous| {
                    Duration::from_micros(u64::try_from(arrival.now_us - previous).unwrap_or(0))
                }),
                upstream_acked: row.get(2),
                script_step: arrival.script_route.zip(position).map(|(route, taken)| {
                    (i64::from(route), u64::try_from(taken - 1).unwrap_or(0))
                }),
            }
        })
        .collect())
}

/// Listens for the exchanges other instances commit (`origin` is this instance's
/// own, skipped; none for a reader) and passes their lines to live readers. A lost
/// connection is opened again, a second later.
async fn listen(
    config: tokio_postgres::Config,
    pool: deadpool_postgres::Pool,
    origin: Option<u64>,
    (peers, mut running, ready): (
        broadcast::Sender<PeerLine>,
        watch::Receiver<()>,
        oneshot::Sender<()>,
    ),
) {
    let mut ready = Some(ready);
    loop {
        tokio::select! {
            stopped = listen_once(&config, &pool, origin, (&peers, &mut ready)) => {
                if let Err(reason) = stopped {
                    tracing::debug!("the team store's listener stopped: {reason}");
                }
            }
            _ = running.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = running.changed() => return,
        }
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    pool: &deadpool_postgres::Pool,
    origin: Option<u64>,
    (peers, ready): (
        &broadcast::Sender<PeerLine>,
        &mut Option<oneshot::Sender<()>>,
    ),
) -> Result<(), String> {
    let (client, mut connection) = config
        .connect(NoTls)
        .await
        .map_err(|error| database_reason(&error))?;
    let (notified, mut notifications) = mpsc::channel::<String>(PEER_BACKLOG);
    let mut messages =
        futures_util::stream::poll_fn(move |context| connection.poll_message(context));
    let pump = tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(notification) = message {
                // A full queue drops the notification: live readers are told they lagged.
                let _ = notified.try_send(notification.payload().to_owned());
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|error| database_reason(&error))?;
    if let Some(ready) = ready.take() {
        let _ = ready.send(());
    }
    while let Some(payload) = notifications.recv().await {
        let Some((sender, ids)) = read_payload(&payload) else {
            continue;
        };
        if Some(sender) == origin || peers.receiver_count() == 0 {
            continue;
        }
        let Ok(client) = pool.get().await else {
            continue;
        };
        let Ok(rows) = client
            .query(
                "SELECT id, line FROM hookscope.exchanges WHERE id = ANY($1) ORDER BY id",
                &[&ids],
            )
            .await
        else {
            continue;
        };
        for row in rows {
            let id = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            let line: String = row.get(1);
            let _ = peers.send((id, Arc::from(line)));
        }
    }
    pump.abort();
    Err("the connection closed".into())
}

/// Retention: exchanges older than the age limit or beyond the row limit, and
/// deliveries untouched for the age limit, deleted a step at a time.
async fn retain(
    pool: deadpool_postgres::Pool,
    retention: Retention,
    mut running: watch::Receiver<()>,
) {
    if retention == Retention::default() {
        return;
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(TRIM_EVERY) => {}
            _ = running.changed() => return,
        }
        let Ok(client) = pool.get().await else {
            continue;
        };
        if let Some(age) = retention.max_age {
            let cut = chrono::Utc::now()
                - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
            let cut_us = cut.timestamp_micros();
            let _ = client
                .execute(
                    "DELETE FROM hookscope.exchanges WHERE id IN (
                        SELECT id FROM (SELECT id, received_at FROM hookscope.exchanges ORDER BY id LIMIT $2) oldest
                        WHERE received_at < $1)",
                    &[&cut, &TRIM_STEP],
                )
                .await;
            let _ = client
                .execute(
                    "DELETE FROM hookscope.deliveries WHERE last_at_us < $1",
                    &[&cut_us],
                )
                .await;
        }
        if let Some(rows) = retention.max_rows {
            let keep = i64::try_from(rows).unwrap_or(i64::MAX);
            let _ = client
                .execute(
                    "DELETE FROM hookscope.exchanges WHERE id IN (
                        SELECT id FROM hookscope.exchanges
                        WHERE id < (SELECT id FROM hookscope.exchanges ORDER BY id DESC OFFSET $1 LIMIT 1)
                        ORDER BY id LIMIT $2)",
                    &[&(keep - 1).max(0), &TRIM_STEP],
                )
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let url = TeamUrl::parse("postgres://team:s3cret@db.example:5433/hooks?password=other")
            .expect("a valid URL");
        let shown = url.to_string();
        assert!(
            !shown.contains("s3cret") && !shown.contains("other"),
            "{shown}"
        );
        assert!(
            shown.starts_with("postgres://team:***@db.example:5433/hooks"),
            "{shown}"
        );
    }

    #[test]
    fn a_bad_url_is_refused_without_repeating_it() {
        let error = TeamUrl::parse("postgres://team:s3cret@db:notaport/hooks").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
        assert!(TeamUrl::parse("postgres://u@h/db?sslmode=require").is_err());
    }

    #[test]
    fn payloads_stay_under_the_limit_and_read_back() {
        let ids: Vec<i64> = (1_000_000_000_000..1_000_000_001_000).collect();
        let payloads = payloads(0xabc, &ids);
        assert!(payloads.len() > 1);
        let mut read = Vec::new();
        for payload in &payloads {
            assert!(payload.len() <= MAX_PAYLOAD);
            let (origin, ids) = read_payload(payload).expect("a payload");
            assert_eq!(origin, 0xabc);
            read.extend(ids);
        }
        assert_eq!(read, ids);
    }
}
