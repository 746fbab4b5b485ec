//! The store's lines: each exchange's record line is appended once to a JSON-lines
//! file beside the database (`hookscope.db-lines-000001.jsonl`, ...), and the
//! database keeps only where it is. A line written into SQLite was written several
//! times over (the whole page into the WAL, its checksum, the page again at each
//! checkpoint) and cost a 1 KB alert a third of its requests per second; appended
//! here it is written once, as `--record` writes it, and each file is a record file
//! `hookscope import` and `jq` read as they are.
//!
//! A file holds up to [`SEGMENT_BYTES`]; then the next one begins, so that retention
//! frees disk by deleting whole files. Bytes past the last line the database knows
//! of were never committed, so never acknowledged: the writer cuts them off when it
//! opens the store.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use super::JsonLine;

/// The size at which a lines file is full and the next one begins.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Where one line is: its file's number, its first byte, its length without the newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub segment: u32,
    pub start: u64,
    pub length: u64,
}

/// The file of lines number `segment` of the store at `store`.
pub fn segment_path(store: &Path, segment: u32) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_owned();
    name.push(format!("-lines-{segment:06}.jsonl"));
    store.with_file_name(name)
}

/// The numbers of the lines files of `store` that exist, ascending.
pub fn existing(store: &Path) -> Vec<u32> {
    let Some(name) = store.file_name().and_then(|name| name.to_str()) else {
        return Vec::new();
    };
    let prefix = format!("{name}-lines-");
    let folder = match store.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut numbers: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file = entry.file_name();
            let number = file
                .to_str()?
                .strip_prefix(&prefix)?
                .strip_suffix(".jsonl")?
                .parse()
                .ok()?;
            Some(number)
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

/// The bytes the lines files of `store` take.
pub fn total_bytes(store: &Path) -> u64 {
    existing(store)
        .into_iter()
        .filter_map(|segment| std::fs::metadata(segment_path(store, segment)).ok())
        .map(|metadata| metadata.len())
        .sum()
}

/// The writing end: the current file, appended to.
pub struct Appender {
    store: PathBuf,
    segment: u32,
    file: File,
    length: u64,
    /// The oldest file that may still exist (retention deletes from here up).
    oldest: u32,
}

impl Appender {
    /// Opens the store's current lines file, number `segment` (or the newest that
    /// exists, if later), cut to `committed` bytes when it is `segment` itself (what
    /// lies beyond was never acknowledged); later ones were never committed at all.
    pub fn open(store: &Path, segment: u32, committed: u64) -> std::io::Result<Appender> {
        let found = existing(store);
        let newest = found.last().copied().unwrap_or(segment).max(segment);
        let keep = if newest == segment { committed } else { 0 };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(store, newest))?;
        if file.metadata()?.len() > keep {
            file.set_len(keep)?;
        }
        Ok(Appender {
            store: store.to_owned(),
            segment: newest,
            file,
            length: keep,
            oldest: found.first().copied().unwrap_or(newest),
        })
    }

    /// Appends `lines` (each followed by a newline) and says where each one went.
    pub fn append(&mut self, lines: &[JsonLine]) -> std::io::Result<Vec<Place>> {
        if self.length >= SEGMENT_BYTES {
            self.next_segment()?;
        }
        let mut places = Vec::with_capacity(lines.len());
        let mut start = self.length;
        for line in lines {
            let length = line.len() as u64;
            places.push(Place {
                segment: self.segment,
                start,
                length,
            });
            start += length + 1;
        }
        let written = super::write_lines(&mut self.file, lines);
        if written.is_err() {
            // A partial write leaves bytes no line points to; the next open cuts them off.
            self.length = self
                .file
                .metadata()
                .map_or(start, |metadata| metadata.len());
        } else {
            self.length = start;
        }
        written.map(|()| places)
    }

    fn next_segment(&mut self) -> std::io::Result<()> {
        let segment = self.segment + 1;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.store, segment))?;
        self.segment = segment;
        self.length = 0;
        Ok(())
    }

    /// Whether the current file is still the one at its path (not deleted or replaced).
    pub fn still_at_its_path(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        let (Ok(open), Ok(named)) = (
            self.file.metadata(),
            std::fs::metadata(segment_path(&self.store, self.segment)),
        ) else {
            return false;
        };
        open.dev() == named.dev() && open.ino() == named.ino()
    }

    /// Deletes the files before `segment` (retention: no line in them is kept any
    /// more); never the current one.
    pub fn delete_before(&mut self, segment: u32) {
        let segment = segment.min(self.segment);
        while self.oldest < segment {
            let path = segment_path(&self.store, self.oldest);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!("cannot delete {}: {error}", path.display());
                    return;
                }
            }
            self.oldest += 1;
        }
    }

    /// The current file's number.
    pub fn segment(&self) -> u32 {
        self.segment
    }
}

/// The reading end: lines read where the database says they are, each file opened
/// once per reader.
pub struct Reader<'a> {
    store: &'a Path,
    open: HashMap<u32, File>,
}

impl<'a> Reader<'a> {
    pub fn new(store: &'a Path) -> Reader<'a> {
        Reader {
            store,
            open: HashMap::new(),
        }
    }

    /// The bytes at `place` (a batch's lines), or why they cannot be read (their
    /// file deleted by retention in the meantime, or by hand).
    pub fn read(&mut self, place: Place) -> std::io::Result<Vec<u8>> {
        let file = match self.open.entry(place.segment) {
            std::collections::hash_map::Entry::Occupied(open) => open.into_mut(),
            std::collections::hash_map::Entry::Vacant(vacant) => {
                vacant.insert(File::open(segment_path(self.store, place.segment))?)
            }
        };
        let length = usize::try_from(place.length)
            .map_err(|_| std::io::Error::other("a batch longer than memory"))?;
        let mut bytes = vec![0; length];
        file.read_exact_at(&mut bytes, place.start)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> PathBuf {
        let folder =
            std::env::temp_dir().join(format!("hookscope-segments-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).expect("temp folder");
        folder
    }

    #[test]
    fn lines_are_read_back_where_the_append_said() {
        let store = folder("read").join("s.db");
        let mut appender = Appender::open(&store, 1, 0).expect("open");
        let lines = [
            JsonLine::of_text("{\"id\":1}"),
            JsonLine::of_text("{\"id\":22}"),
        ];
        let places = appender.append(&lines).expect("append");
        let mut reader = Reader::new(&store);
        assert_eq!(reader.read(places[0]).expect("first"), b"{\"id\":1}");
        assert_eq!(reader.read(places[1]).expect("second"), b"{\"id\":22}");
        let file = std::fs::read_to_string(segment_path(&store, 1)).expect("file");
        assert_eq!(file, "{\"id\":1}\n{\"id\":22}\n", "a record file as it is");
    }

    #[test]
    fn bytes_past_the_committed_end_are_cut_off_and_later_files_emptied() {
        let store = folder("cut").join("s.db");
        std::fs::write(segment_path(&store, 1), "{\"id\":1}\n{\"id\":2").expect("write");
        let appender = Appender::open(&store, 1, 9).expect("open");
        drop(appender);
        assert_eq!(
            std::fs::read_to_string(segment_path(&store, 1)).expect("file"),
            "{\"id\":1}\n"
        );
        std::fs::write(segment_path(&store, 2), "{\"id\":3").expect("write");
        let appender = Appender::open(&store, 1, 9).expect("open");
        assert_eq!(appender.segment(), 2, "the newest file goes on");
        assert_eq!(
            std::fs::metadata(segment_path(&store, 2))
                .expect("file")
                .len(),
            0
        );
    }

    #[test]
    fn retention_deletes_whole_files_but_never_the_current_one() {
        let store = folder("delete").join("s.db");
        for segment in 1..=3 {
            std::fs::write(segment_path(&store, segment), "").expect("write");
        }
        let mut appender = Appender::open(&store, 3, 0).expect("open");
        appender.delete_before(9);
        assert_eq!(existing(&store), vec![3]);
    }
}
