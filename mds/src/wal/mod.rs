//! The write-ahead log of every raft group a metadata server hosts (RFC 005): the raft log and
//! hard state, appended once per host round with one `fdatasync`. LMDB holds the state
//! machine behind it; after a crash the entries above LMDB's applied index are replayed from
//! here.
//!
//! | module | what it holds |
//! |---|---|
//! | [`record`] | the segment and frame format, without I/O |
//! | [`memlog`] | one group's log and hard state in memory, rebuilt from the WAL at start |
//! | [`segment`] | segment files: zero-filled spares, reading one back |
//!
//! Segments are files under `<data-dir>/wal/`, named by sequence number, zero-filled before
//! use so that an append overwrites allocated blocks (its `fdatasync` then writes data only)
//! and a zero length marks the end. Each segment starts with a base: the whole log of every
//! group. So replay reads one segment, the newest with an intact base, and a segment is
//! deleted as soon as the next one's base is durable. The first segment of a new log is small
//! (1 MiB), so a new server starts at once; the next ones are `segment_size` bytes (at least
//! twice their base), prepared by a helper thread once the current one is half full.
//!
//! When the next segment cannot be prepared (a full disk), the log says it is *short* once the
//! current segment is three quarters full ([`Wal::is_short`]): the server then refuses new
//! mutations with `ENOSPC` and keeps the last quarter for raft's own traffic, and the
//! preparation is tried again every second, so freeing space ends the refusals.

pub mod memlog;
pub mod record;
pub mod segment;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::StoreError;
use memlog::MemLog;
use record::{HEADER_LEN, Record};

/// The write side of the WAL: the current segment and the spare being prepared.
pub struct Wal {
    dir: PathBuf,
    segment_size: u64,
    seq: u64,
    file: File,
    capacity: u64,
    offset: u64,
    spare: Option<JoinHandle<std::io::Result<(File, u64)>>>,
    /// The next segment, prepared.
    ready: Option<(File, u64)>,
    /// When preparing the next segment last failed, if it did since the last success.
    failed: Option<Instant>,
}

/// The size of a new log's first segment.
const FIRST_SEGMENT: u64 = 1 << 20;

/// How long after a failed preparation of the next segment it is tried again.
const SPARE_RETRY: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("seq", &self.seq)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

fn wal_err(path: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Wal {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl Wal {
    /// Opens the WAL in `dir` (creating it with an empty base if it holds no segment) and
    /// replays it: every group's log as of the last durable append. A torn last frame (a
    /// crash during an append) is dropped; any other damage is an error naming the segment.
    pub fn open(dir: &Path, segment_size: u64) -> Result<(Wal, BTreeMap<u32, MemLog>), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| wal_err(dir, format!("create directory: {e}")))?;
        let found = segment::list(dir).map_err(|e| wal_err(dir, e))?;
        let mut newest = None;
        for (seq, path) in found.iter().rev() {
            match segment::replay(path, *seq).map_err(|e| wal_err(path, e))? {
                segment::Replay::Torn => {
                    tracing::warn!(segment = %path.display(), "removing a segment whose base was never completed");
                    std::fs::remove_file(path).map_err(|e| wal_err(path, e))?;
                }
                segment::Replay::Log { logs, end } => {
                    newest = Some((*seq, path.clone(), logs, end));
                    break;
                }
            }
        }
        let (wal, logs) = match newest {
            Some((seq, path, logs, end)) => {
                for (old, p) in found.iter().filter(|(s, _)| *s < seq) {
                    tracing::debug!(segment = old, "removing a segment below the newest base");
                    std::fs::remove_file(p).map_err(|e| wal_err(p, e))?;
                }
                let file = File::options()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(|e| wal_err(&path, e))?;
                let capacity = file.metadata().map_err(|e| wal_err(&path, e))?.len();
                let wal = Wal {
                    dir: dir.to_path_buf(),
                    segment_size,
                    seq,
                    file,
                    capacity,
                    offset: end,
                    spare: None,
                    ready: None,
                    failed: None,
                };
                (wal, logs)
            }
            None => {
                let path = dir.join(segment::name(1));
                let capacity = FIRST_SEGMENT.min(segment_size);
                let file = segment::create(&path, 1, capacity).map_err(|e| wal_err(&path, e))?;
                let bytes = record::frame(1, &Record::base(Vec::new()));
                let offset = start(dir, 1, &file, &bytes)?;
                let wal = Wal {
                    dir: dir.to_path_buf(),
                    segment_size,
                    seq: 1,
                    file,
                    capacity,
                    offset,
                    spare: None,
                    ready: None,
                    failed: None,
                };
                (wal, BTreeMap::new())
            }
        };
        Ok((wal, logs))
    }

    /// Whether the next segment could not be prepared and the current one is three quarters
    /// full: new mutations are to be refused until space is freed.
    pub fn is_short(&self) -> bool {
        self.failed.is_some() && self.ready.is_none() && self.offset > self.capacity / 4 * 3
    }

    /// Collects the preparation of the next segment and retries a failed one when due: called
    /// on every tick, so a log short of room recovers without waiting for an append.
    pub fn tend(&mut self) {
        self.prepare_spare();
    }

    /// Collects the preparation of the next segment if it has ended.
    fn poll_spare(&mut self) {
        if !self.spare.as_ref().is_some_and(JoinHandle::is_finished) {
            return;
        }
        let path = self.dir.join(segment::name(self.seq + 1));
        match self.spare.take().map(JoinHandle::join) {
            Some(Ok(Ok(prepared))) => {
                self.ready = Some(prepared);
                self.failed = None;
            }
            Some(Ok(Err(e))) => {
                tracing::warn!(
                    "preparing WAL segment {}: {e}; mutations are refused with ENOSPC once the \
                     current segment is three quarters full",
                    path.display()
                );
                self.failed = Some(Instant::now());
            }
            Some(Err(_)) => self.failed = Some(Instant::now()),
            None => {}
        }
    }

    /// Starts preparing the next segment once the current one is half full (again a while
    /// after a failure).
    fn prepare_spare(&mut self) {
        self.poll_spare();
        let due = self.failed.is_none_or(|at| at.elapsed() >= SPARE_RETRY);
        if self.spare.is_none() && self.ready.is_none() && due && self.offset > self.capacity / 2 {
            let path = self.dir.join(segment::name(self.seq + 1));
            let (size, seq) = (self.segment_size, self.seq + 1);
            self.spare = Some(std::thread::spawn(move || {
                segment::create(&path, seq, size).map(|f| (f, size))
            }));
        }
    }

    /// Writes `record`, and `fdatasync`s it if `sync`. When it does not fit the current
    /// segment, the next segment starts with `base()` (every group's log before `record`).
    pub fn append(
        &mut self,
        record: &Record,
        sync: bool,
        base: impl FnOnce() -> Record,
    ) -> Result<(), StoreError> {
        let frame = record::frame(self.seq, record);
        if self.offset + frame.len() as u64 > self.capacity {
            return self.rotate(base(), record);
        }
        let path = self.path();
        self.file
            .write_all_at(&frame, self.offset)
            .map_err(|e| wal_err(&path, e))?;
        self.offset += frame.len() as u64;
        if sync {
            self.file.sync_data().map_err(|e| wal_err(&path, e))?;
        }
        self.prepare_spare();
        Ok(())
    }

    /// Durably writes `base` then `record` at the start of the next segment, then removes
    /// the current one.
    fn rotate(&mut self, base: Record, record: &Record) -> Result<(), StoreError> {
        let seq = self.seq + 1;
        let path = self.dir.join(segment::name(seq));
        let mut bytes = record::frame(seq, &Record::base(base.groups));
        bytes.extend(record::frame(seq, record));
        // Room for the appends that follow the base, however large the logs grew.
        let need = (HEADER_LEN + 2 * bytes.len()) as u64;
        if let Some(preparing) = self.spare.take() {
            self.ready = preparing.join().ok().and_then(Result::ok);
        }
        let spare = self.ready.take().filter(|(_, size)| *size >= need);
        let (file, capacity) = match spare {
            Some(s) => s,
            None => {
                let size = self.segment_size.max(need);
                let file = segment::create(&path, seq, size).map_err(|e| wal_err(&path, e))?;
                (file, size)
            }
        };
        let offset = start(&self.dir, seq, &file, &bytes)?;
        let old = self.path();
        self.file = file;
        self.seq = seq;
        self.capacity = capacity;
        self.offset = offset;
        std::fs::remove_file(&old).map_err(|e| wal_err(&old, e))?;
        self.failed = None;
        self.prepare_spare();
        Ok(())
    }

    fn path(&self) -> PathBuf {
        self.dir.join(segment::name(self.seq))
    }
}

/// Durably writes `bytes` (frames, a base first) at the start of segment `seq`, and the
/// segment's name in `dir`: where the next frame goes.
fn start(dir: &Path, seq: u64, file: &File, bytes: &[u8]) -> Result<u64, StoreError> {
    let path = dir.join(segment::name(seq));
    file.write_all_at(bytes, HEADER_LEN as u64)
        .and_then(|()| file.sync_data())
        .map_err(|e| wal_err(&path, e))?;
    segment::sync_dir(dir).map_err(|e| wal_err(dir, e))?;
    Ok((HEADER_LEN + bytes.len()) as u64)
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Some(spare) = self.spare.take() {
            let _ = spare.join();
        }
    }
}

#[cfg(test)]
mod tests;
