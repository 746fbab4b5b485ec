//! `--record FILE`: every exchange appended as one JSON line, with group commit.
//!
//! The sender stops retrying once it gets a 2XX, so an acknowledged alert that
//! never reached the file would be lost for good. The answer therefore waits
//! until its line has been handed to the operating system (the write returned:
//! it survives `kill -9` of hookscope, if not a power cut). One writer task
//! takes everything queued at once and writes it with a single call (the lines
//! as they are, gathered by the kernel, not copied into one buffer), then
//! releases every request of that batch, so the cost per request stays small.
//! The write is made on the runtime's thread, not handed to a blocking thread:
//! an append to the page cache takes microseconds, a hand-over would add two
//! thread switches per batch, and the answers wait for the write either way. (A
//! disk that stalls therefore stalls the receiver too, as the README says.)

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use super::JsonLine;
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

/// Most lines written in one batch.
const MAX_BATCH: usize = 512;

/// The most bytes of lines waiting for the writer. A record file that stops taking
/// writes (a stuck disk, a pipe nobody reads) must not turn a flood into memory:
/// beyond it, a 2XX waits for room (then is answered 503) and the line of an
/// answer that acknowledged nothing is left out and counted.
pub const MAX_QUEUED_BYTES: usize = 32 * 1024 * 1024;

/// How long an acknowledging answer waits for room in the queue before it gives up.
const WAIT_FOR_QUEUE: std::time::Duration = std::time::Duration::from_secs(10);

/// Most lines per write call: four slices each, within the kernel's IOV_MAX of 1024.
const MAX_LINES_PER_WRITE: usize = 256;

/// Why the record file cannot be used.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The file could not be opened for appending.
    #[error("cannot open the --record file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The writer is so far behind that no room came in its queue in time.
    #[error("the record file {path} is not keeping up: its writer is 32 MiB behind")]
    Behind {
        /// The file.
        path: PathBuf,
    },
    /// An earlier write failed (disk full, file gone...); nothing is recorded any more.
    #[error("recording to {path} failed: {reason}")]
    Failed {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
}

struct Job {
    line: JsonLine,
    /// Its room in the queue, given back once written.
    room: Option<OwnedSemaphorePermit>,
    done: Option<oneshot::Sender<bool>>,
    /// Open the path again before writing (SIGHUP, after the file was rotated).
    reopen: bool,
}

/// The writer of the record file.
pub struct Recorder {
    queue: mpsc::UnboundedSender<Job>,
    room: Room,
    /// Lines of unacknowledged exchanges left out because the queue was full.
    left_out: AtomicU64,
    status: RecordStatus,
}

impl Recorder {
    /// Opens (creating or appending to) the record file and starts its writer task
    /// (so it must be called within a tokio runtime).
    pub fn open(path: &Path) -> Result<Recorder, RecordError> {
        let file = RecordFile::open(path)?;
        let (queue, jobs) = mpsc::unbounded_channel();
        let status = file.status();
        tokio::spawn(Writer { file }.run(jobs));
        Ok(Recorder {
            queue,
            room: Room::new(),
            left_out: AtomicU64::new(0),
            status,
        })
    }

    /// Appends one line and waits until the operating system has it.
    pub async fn write(&self, line: JsonLine) -> Result<(), RecordError> {
        self.check()?;
        let room = self.room.wait_for(&line).await.ok_or(RecordError::Behind {
            path: self.status.path.clone(),
        })?;
        let (done, written) = oneshot::channel();
        let job = Job {
            line,
            room: Some(room),
            done: Some(done),
            reopen: false,
        };
        if self.queue.send(job).is_err() || !written.await.unwrap_or(false) {
            return Err(self.failed_error());
        }
        Ok(())
    }

    /// Waits until everything queued so far has been written (or writing failed).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        let job = Job {
            line: JsonLine::default(),
            room: None,
            done: Some(done),
            reopen: false,
        };
        if self.queue.send(job).is_ok() {
            let _ = written.await;
        }
    }

    /// Appends one line without waiting (for exchanges that were not acknowledged).
    pub fn write_detached(&self, line: JsonLine) {
        if self.check().is_err() {
            return;
        }
        let Some(room) = self.room.try_take(&line) else {
            if self.left_out.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    "the record file {} is not keeping up: lines of requests that were not \
                     acknowledged are left out while it is behind",
                    self.status.path.display()
                );
            }
            return;
        };
        let _ = self.queue.send(Job {
            line,
            room: Some(room),
            done: None,
            reopen: false,
        });
    }

    /// Lines of unacknowledged requests left out because the writer was behind.
    pub fn left_out(&self) -> u64 {
        self.left_out.load(Ordering::Relaxed)
    }

    /// Opens the path again (creating it) and writes there from now on, recording
    /// again if it had failed: what log tools do on SIGHUP after a rotation.
    pub async fn reopen(&self) -> Result<(), RecordError> {
        let (done, reopened) = oneshot::channel();
        let job = Job {
            line: JsonLine::default(),
            room: None,
            done: Some(done),
            reopen: true,
        };
        if self.queue.send(job).is_err() || !reopened.await.unwrap_or(false) {
            return Err(self.failed_error());
        }
        Ok(())
    }

    /// The failure, if writing has failed.
    pub fn check(&self) -> Result<(), RecordError> {
        self.status.check()
    }

    fn failed_error(&self) -> RecordError {
        failed_error(&self.status.path, &self.status.failure)
    }
}

/// Room in a writer's queue, in bytes of lines ([`MAX_QUEUED_BYTES`]): taken when
/// a line is queued, given back once it is written.
#[derive(Clone)]
pub(crate) struct Room(Arc<Semaphore>);

impl Room {
    pub(crate) fn new() -> Room {
        Room(Arc::new(Semaphore::new(MAX_QUEUED_BYTES)))
    }

    /// Room for `line`, waiting up to [`WAIT_FOR_QUEUE`] for it; `None` when the
    /// writer is so far behind that none came in time.
    pub(crate) async fn wait_for(&self, line: &JsonLine) -> Option<OwnedSemaphorePermit> {
        if let Some(room) = self.try_take(line) {
            return Some(room);
        }
        let room = Arc::clone(&self.0).acquire_many_owned(Self::needed(line));
        tokio::time::timeout(WAIT_FOR_QUEUE, room).await.ok()?.ok()
    }

    /// Room for `line` if there is some now.
    pub(crate) fn try_take(&self, line: &JsonLine) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.0)
            .try_acquire_many_owned(Self::needed(line))
            .ok()
    }

    /// The room a line takes (a line longer than the whole queue takes all of it).
    fn needed(line: &JsonLine) -> u32 {
        u32::try_from(line.len().clamp(1, MAX_QUEUED_BYTES)).unwrap_or(u32::MAX)
    }
}

/// Why writing to `path` failed, as the failure was noted.
fn failed_error(path: &Path, failure: &Mutex<Option<String>>) -> RecordError {
    let reason = failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or_else(|| "the writer stopped".into());
    RecordError::Failed {
        path: path.to_owned(),
        reason,
    }
}

/// The record's own writer: a task on the runtime.
struct Writer {
    file: RecordFile,
}

impl Writer {
    async fn run(mut self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut waiting: Vec<oneshot::Sender<bool>> = Vec::new();
        let mut rooms: Vec<OwnedSemaphorePermit> = Vec::new();
        while let Some(first) = jobs.recv().await {
            // Let the requests that are ready to run queue their lines too, so
            // that one write carries a batch rather than a single line.
            tokio::task::yield_now().await;
            batch.clear();
            waiting.clear();
            let mut next = Some(first);
            while let Some(job) = next {
                if job.reopen {
                    // What was queued before goes to the old file, the rest to the new.
                    let written = self.file.append(&batch);
                    for done in waiting.drain(..) {
                        let _ = done.send(written);
                    }
                    batch.clear();
                    let reopened = self.file.reopen();
                    if let Some(done) = job.done {
                        let _ = done.send(reopened);
                    }
                    next = jobs.try_recv().ok();
                    continue;
                }
                if !job.line.is_empty() {
                    batch.push(job.line);
                }
                // Given back once the batch is written, not when taken off the channel.
                rooms.extend(job.room);
                waiting.extend(job.done);
                next = if batch.len() < MAX_BATCH {
                    jobs.try_recv().ok()
                } else {
                    None
                };
            }
            let written = self.file.append(&batch);
            rooms.clear();
            for done in waiting.drain(..) {
                let _ = done.send(written);
            }
        }
    }
}

/// The record file as its writer holds it: the one place lines are appended to
/// it, whichever writer feeds it (the record's own task, or the store's writer
/// when both `--record` and `--store` are given: one batch, one wait).
pub struct RecordFile {
    file: File,
    path: PathBuf,
    failed: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
}

impl RecordFile {
    /// Opens (creating or appending to) the record file.
    pub fn open(path: &Path) -> Result<RecordFile, RecordError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| RecordError::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(RecordFile {
            file,
            path: path.to_owned(),
            failed: Arc::new(AtomicBool::new(false)),
            failure: Arc::new(Mutex::new(None)),
        })
    }

    /// What the holders of a [`RecordStatus`] see of this file.
    pub fn status(&self) -> RecordStatus {
        RecordStatus {
            path: self.path.clone(),
            failed: Arc::clone(&self.failed),
            failure: Arc::clone(&self.failure),
        }
    }

    /// Appends `lines`, each followed by a newline; `false` once writing has failed
    /// (until [`RecordFile::reopen`]).
    pub fn append(&mut self, lines: &[JsonLine]) -> bool {
        if self.failed.load(Ordering::Acquire) {
            return false;
        }
        if lines.is_empty() {
            return true;
        }
        if let Err(reason) = self.still_at_its_path() {
            return self.fail(reason);
        }
        match write_lines(&mut self.file, lines) {
            Ok(()) => true,
            Err(error) => self.fail(error.to_string()),
        }
    }

    /// A record file deleted or renamed away still takes writes, into an inode
    /// nobody will read: that would acknowledge alerts that are kept nowhere. One
    /// stat per batch finds out.
    fn still_at_its_path(&self) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt as _;
        let open = self.file.metadata().map_err(|error| error.to_string())?;
        match std::fs::metadata(&self.path) {
            Ok(named) if named.dev() == open.dev() && named.ino() == open.ino() => Ok(()),
            Ok(_) => Err(
                "the file at this path was replaced (send SIGHUP to write to the new one)".into(),
            ),
            Err(_) => {
                Err("the file was deleted or moved away (send SIGHUP to create it again)".into())
            }
        }
    }

    fn fail(&mut self, reason: String) -> bool {
        tracing::warn!(
            "cannot write the record file {}: {reason}; from now on requests are answered 503 so that senders retry",
            self.path.display()
        );
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
        self.failed.store(true, Ordering::Release);
        false
    }

    /// Opens the path again (creating it) and writes there from now on.
    pub fn reopen(&mut self) -> bool {
        match OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(file) => {
                self.file = file;
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
                self.failed.store(false, Ordering::Release);
                true
            }
            Err(error) => self.fail(format!("cannot open it again: {error}")),
        }
    }
}

/// Whether a record file fed by another writer has failed, and why.
#[derive(Debug, Clone)]
pub struct RecordStatus {
    path: PathBuf,
    failed: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
}

impl RecordStatus {
    /// The record file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The failure, if writing has failed.
    pub fn check(&self) -> Result<(), RecordError> {
        if self.failed.load(Ordering::Acquire) {
            Err(failed_error(&self.path, &self.failure))
        } else {
            Ok(())
        }
    }
}

/// Bytes handed to the kernel per call: measured on ext4, one call of a few dozen
/// 64 KB lines costs less than a call per line, but a call of tens of megabytes
/// costs more per byte again (the dirty-page throttling runs inside it).
const MAX_WRITE: usize = 1024 * 1024;

static NEWLINE: Bytes = Bytes::from_static(b"\n");

/// Writes each line followed by a newline, in few calls.
pub(crate) fn write_lines(out: &mut impl Write, lines: &[JsonLine]) -> std::io::Result<()> {
    let mut start = 0;
    while start < lines.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < lines.len()
            && (end == start
                || (bytes + lines[end].len() <= MAX_WRITE && end - start < MAX_LINES_PER_WRITE))
        {
            bytes += lines[end].len() + 1;
            end += 1;
        }
        write_all_vectored(out, &lines[start..end])?;
        start = end;
    }
    Ok(())
}

fn write_all_vectored(out: &mut impl Write, lines: &[JsonLine]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = lines
        .iter()
        .flat_map(|line| line.parts().iter().chain([&NEWLINE]))
        .map(|part| IoSlice::new(part))
        .collect();
    let mut unwritten = &mut slices[..];
    while !unwritten.is_empty() {
        match out.write_vectored(unwritten) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut unwritten, written),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_in_the_file_when_write_returns() {
        let dir = std::env::temp_dir().join(format!("hookscope-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("record.jsonl");
        let _ = std::fs::remove_file(&path);
        let recorder = Arc::new(Recorder::open(&path).unwrap());
        let writers: Vec<_> = (0..200)
            .map(|n| {
                let recorder = Arc::clone(&recorder);
                tokio::spawn(async move {
                    recorder
                        .write(JsonLine::of_text(format!("{{\"n\":{n}}}")))
                        .await
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 200);
        assert!(
            text.lines()
                .all(|line| serde_json::from_str::<serde_json::Value>(line).is_ok())
        );
    }

    /// Takes at most a few bytes per call, like a pipe that is nearly full.
    struct Trickle(Vec<u8>);

    impl Write for Trickle {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let taken = bytes.len().min(3);
            self.0.extend_from_slice(&bytes[..taken]);
            Ok(taken)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_survive_short_writes() {
        let lines = [JsonLine::of_text("{\"a\":1}"), JsonLine::of_text("{}")];
        let mut out = Trickle(Vec::new());
        write_lines(&mut out, &lines).unwrap();
        assert_eq!(out.0, b"{\"a\":1}\n{}\n");
    }

    #[tokio::test]
    async fn a_full_disk_is_reported_and_sticks() {
        let Ok(recorder) = Recorder::open(Path::new("/dev/full")) else {
            return; // not on Linux
        };
        let error = recorder.write(JsonLine::of_text("{}")).await.unwrap_err();
        assert!(error.to_string().contains("/dev/full"), "{error}");
        assert!(recorder.check().is_err());
    }

    #[tokio::test]
    async fn an_unopenable_file_names_the_path() {
        let error = Recorder::open(Path::new("/no/such/dir/record.jsonl"))
            .err()
            .unwrap();
        assert!(
            error
                .to_string()
                .starts_with("cannot open the --record file /no/such/dir/record.jsonl:")
        );
    }
}
