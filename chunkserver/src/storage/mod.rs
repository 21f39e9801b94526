//! Chunk storage: several data dirs, one file per chunk copy, no networking.
//!
//! Every method blocks on file I/O; the async shell runs them on tokio's blocking pool.
//!
//! - **Placement.** A new copy goes to the `ok` dir with the most available space (asked of
//!   the file system at that moment). A copy stays in its dir for life: a write that needs
//!   more space on a dir that has none fails with [`DataError::NoSpace`] and marks the dir
//!   `full` (creating a new copy tries the next dir instead). A `full` dir takes new copies
//!   again once [`Store::refresh`] sees room for a whole chunk on it.
//! - **Versions.** A write or truncate moves a copy from `prev_version` to `version`. A copy
//!   between the two (left by an earlier write that failed elsewhere in its chain, or by this
//!   write session) moves too; `prev_version` 0 creates the chunk if there is no copy. Any
//!   other version answers [`DataError::WrongVersion`].
//! - **Checks.** Every read verifies the CRC of every block it touches (see `chunk_file`).
//!   A copy that fails is moved to the dir's `quarantine/`, never served again, and reported
//!   lost.
//! - **Failures.** A dir whose chunk tree disappears or that returns an I/O error other than
//!   "no space" is marked `failed` until restart, and all its copies are reported lost.
//! - **Reports.** Copies that appear, change version or go away are collected as
//!   [`Changes`] for the next incremental chunk report.
//!
//! Locking: each chunk has a slot (a mutex over its copy's metadata) held for the whole of an
//! operation on it; the index of slots is locked only briefly, and never while waiting for a
//! slot.
//!
//! | module | what it owns |
//! |---|---|
//! | `format` | the chunk file format, version 1 (pure) |
//! | `chunk_file` | checked I/O on one chunk file |
//! | `data_dir` | one data dir: layout, lock, state, scan at start |
//! | `health` | measuring dirs, marking them full or failed, classifying I/O errors |
//! | `import` | copies assembled by replication |
//! | `changes` | changes not yet reported |

mod changes;
mod chunk_file;
mod data_dir;
mod format;
mod health;
mod import;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use proto::chunk::HeldChunk;
use proto::data::{DataError, MAX_IO};

pub use changes::Changes;
use chunk_file::{ChunkFile, FileError};
use data_dir::DataDir;
pub use data_dir::{DirState, Space};
use format::{DATA_OFFSET, Header, MAX_LEN};
pub use import::Import;

/// Available bytes at which a `full` dir takes new copies again: one whole chunk file.
const FULL_RELEASE: u64 = MAX_LEN as u64 + DATA_OFFSET;

/// Measures the file system holding a path.
pub type SpaceProbe = Arc<dyn Fn(&Path) -> io::Result<Space> + Send + Sync>;

/// Why the store could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No data dir was given.
    #[error("no data directory configured")]
    NoDirs,
    /// Every data dir failed to open.
    #[error("no usable data directory: {0}")]
    NoUsableDir(String),
}

/// A data dir as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirStatus {
    /// Its path.
    pub path: PathBuf,
    /// Its state.
    pub state: DirState,
    /// Its file system's space, as last measured.
    pub space: Space,
    /// Copies it holds.
    pub chunks: u64,
}

/// Totals over the dirs that have not failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Total bytes.
    pub capacity: u64,
    /// Bytes not available (used by chunks or anything else on those file systems).
    pub used: u64,
    /// Copies held.
    pub chunks: u64,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    dir: usize,
    header: Header,
}

/// A chunk's copy (or `None`), locked for the length of an operation on it.
type Slot = Arc<Mutex<Option<Meta>>>;

/// Why an operation on a copy failed, before dir-level consequences are drawn.
enum Fault {
    /// An answer for the caller.
    Data(DataError),
    /// An I/O error in a dir; handled by [`Store::settle`] once the copy's lock is released.
    Io { dir: usize, chunk: u64, err: io::Error },
}

impl From<DataError> for Fault {
    fn from(e: DataError) -> Self {
        Fault::Data(e)
    }
}

/// The chunk copies of one chunkserver.
pub struct Store {
    dirs: Vec<DataDir>,
    index: Mutex<HashMap<u64, Slot>>,
    changes: Mutex<Changes>,
    probe: SpaceProbe,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dirs", &self.dirs)
            .field("chunks", &lock(&self.index).len())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the data dirs, measuring space with `statvfs`.
    pub fn open(dirs: &[PathBuf]) -> Result<Store, OpenError> {
        Store::open_with(dirs, Arc::new(disk_space))
    }

    /// Opens the data dirs, measuring space with `probe`. Dirs that cannot be opened are
    /// kept as `failed`; at least one must open.
    pub fn open_with(dirs: &[PathBuf], probe: SpaceProbe) -> Result<Store, OpenError> {
        if dirs.is_empty() {
            return Err(OpenError::NoDirs);
        }
        let mut opened = Vec::new();
        let mut index: HashMap<u64, Meta> = HashMap::new();
        for (i, root) in dirs.iter().enumerate() {
            let scan = DataDir::open(root);
            if let DirState::Failed(reason) = scan.dir.state() {
                tracing::error!(dir = %root.display(), reason, "data dir unusable");
            }
            for header in scan.headers {
                let keep = match index.get(&header.chunk) {
                    Some(other) if other.header.version >= header.version => {
                        let path = scan.dir.chunk_path(header.chunk);
                        scan.dir.quarantine(
                            &path,
                            header.chunk,
                            "an older duplicate of a copy in another dir",
                        );
                        false
                    }
                    Some(other) => {
                        let older: &DataDir = &opened[other.dir];
                        older.quarantine(
                            &older.chunk_path(header.chunk),
                            header.chunk,
                            "an older duplicate of a copy in another dir",
                        );
                        older.remove_chunk();
                        true
                    }
                    None => true,
                };
                if keep {
                    scan.dir.add_chunk();
                    index.insert(header.chunk, Meta { dir: i, header });
                }
            }
            opened.push(scan.dir);
        }
        if opened.iter().all(|d| matches!(d.state(), DirState::Failed(_))) {
            let reasons: Vec<String> = opened
                .iter()
                .map(|d| match d.state() {
                    DirState::Failed(r) => format!("{}: {r}", d.root.display()),
                    _ => String::new(),
                })
                .collect();
            return Err(OpenError::NoUsableDir(reasons.join("; ")));
        }
        let store = Store {
            dirs: opened,
            index: Mutex::new(
                index
                    .into_iter()
                    .map(|(chunk, meta)| (chunk, Arc::new(Mutex::new(Some(meta)))))
                    .collect(),
            ),
            changes: Mutex::new(Changes::default()),
            probe,
        };
        store.refresh();
        Ok(store)
    }

    /// Reads `len` bytes at `offset` of `chunk` at `version`; bytes past the end are zeros.
    pub fn read(&self, chunk: u64, version: u32, offset: u32, len: u32) -> Result<Vec<u8>, DataError> {
        check_range(offset, len)?;
        self.existing(chunk, |meta| {
            expect_version(chunk, meta, version)?;
            self.on_copy(chunk, meta, |file| file.read(offset, len))
        })
    }

    /// Writes `data` at `offset` of `chunk`, moving it from `prev_version` to `version`.
    pub fn write(
        &self,
        chunk: u64,
        prev_version: u32,
        version: u32,
        offset: u32,
        data: &[u8],
    ) -> Result<(), DataError> {
        let len = u32::try_from(data.len()).map_err(|_| bad("write larger than 4 GiB"))?;
        check_range(offset, len)?;
        self.modify(chunk, prev_version, version, |file| {
            file.write(version, offset, data)
        })
    }

    /// Cuts or extends `chunk` to `len` bytes, moving it from `prev_version` to `version`.
    pub fn truncate(&self, chunk: u64, prev_version: u32, version: u32, len: u32) -> Result<(), DataError> {
        if len > MAX_LEN {
            return Err(bad(format!("length {len} exceeds the chunk size {MAX_LEN}")));
        }
        self.modify(chunk, prev_version, version, |file| file.truncate(version, len))
    }

    /// Makes `chunk` at `version` durable: fdatasync of its file, fsync of its directory.
    pub fn sync(&self, chunk: u64, version: u32) -> Result<(), DataError> {
        self.existing(chunk, |meta| {
            let m = expect_version(chunk, meta, version)?;
            self.on_copy(chunk, meta, |file| Ok(file.sync_data()?))?;
            sync_parent(&self.dirs[m.dir].chunk_path(chunk)).map_err(|err| Fault::Io {
                dir: m.dir,
                chunk,
                err,
            })
        })
    }

    /// The version and length of `chunk`'s copy.
    pub fn stat(&self, chunk: u64) -> Result<(u32, u32), DataError> {
        self.existing(chunk, |meta| {
            meta.map(|m| (m.header.version, m.header.len))
                .ok_or(Fault::Data(DataError::NoChunk(chunk)))
        })
    }

    /// Deletes `chunk`'s copy (only at `version`, if given). Deleting a copy that is not here
    /// succeeds.
    pub fn delete(&self, chunk: u64, version: Option<u32>) -> Result<(), DataError> {
        let r = self.with_slot(chunk, false, |meta| {
            let Some(m) = *meta else { return Ok(()) };
            if let Some(want) = version
                && want != m.header.version
            {
                return Err(DataError::WrongVersion {
                    chunk,
                    have: m.header.version,
                    want,
                }
                .into());
            }
            match fs::remove_file(self.dirs[m.dir].chunk_path(chunk)) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => Err(Fault::Io {
                    dir: m.dir,
                    chunk,
                    err,
                }),
                _ => {
                    self.drop_copy(chunk, meta);
                    Ok(())
                }
            }
        });
        self.settle(r.unwrap_or(Ok(())))
    }

    /// Every copy held, for a full chunk report. Pending changes stay queued: sending them
    /// after the full report repeats what it says, harmlessly.
    pub fn full_report(&self) -> Vec<HeldChunk> {
        let slots: Vec<(u64, Slot)> = lock(&self.index).iter().map(|(c, s)| (*c, s.clone())).collect();
        let mut held: Vec<HeldChunk> = slots
            .into_iter()
            .filter_map(|(chunk, slot)| {
                lock(&slot).map(|m| HeldChunk {
                    chunk,
                    version: m.header.version,
                })
            })
            .collect();
        held.sort_unstable_by_key(|h| h.chunk);
        held
    }

    /// The changes since the last call.
    pub fn take_changes(&self) -> Changes {
        std::mem::take(&mut *lock(&self.changes))
    }

    /// Queues changes again whose report failed, under any newer change of the same chunks.
    pub fn requeue(&self, older: Changes) {
        lock(&self.changes).merge_older(older);
    }

    /// Totals over the dirs that have not failed, as last measured.
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for dir in self
            .dirs
            .iter()
            .filter(|d| !matches!(d.state(), DirState::Failed(_)))
        {
            let space = dir.space();
            u.capacity += space.total;
            u.used += space.total.saturating_sub(space.available);
            u.chunks += dir.chunks();
        }
        u
    }

    /// Every dir, as last measured.
    pub fn dirs(&self) -> Vec<DirStatus> {
        self.dirs
            .iter()
            .map(|d| DirStatus {
                path: d.root.clone(),
                state: d.state(),
                space: d.space(),
                chunks: d.chunks(),
            })
            .collect()
    }

    /// Runs `f` on `chunk`'s slot, locked and current (created empty if `create`); drops the
    /// slot from the index if it ends empty. `None` if there is no slot and `!create`.
    fn with_slot<T>(&self, chunk: u64, create: bool, f: impl FnOnce(&mut Option<Meta>) -> T) -> Option<T> {
        loop {
            let slot = {
                let mut index = lock(&self.index);
                match index.get(&chunk) {
                    Some(s) => s.clone(),
                    None if create => index.entry(chunk).or_default().clone(),
                    None => return None,
                }
            };
            let mut meta = lock(&slot);
            // The slot may have been emptied and dropped while this thread waited for it.
            if !lock(&self.index)
                .get(&chunk)
                .is_some_and(|s| Arc::ptr_eq(s, &slot))
            {
                continue;
            }
            let out = f(&mut meta);
            if meta.is_none() {
                let mut index = lock(&self.index);
                if index.get(&chunk).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                    index.remove(&chunk);
                }
            }
            return Some(out);
        }
    }

    /// Runs `f` on an existing chunk's slot and settles its faults.
    fn existing<T>(
        &self,
        chunk: u64,
        f: impl FnOnce(&mut Option<Meta>) -> Result<T, Fault>,
    ) -> Result<T, DataError> {
        let r = self.with_slot(chunk, false, f);
        self.settle(r.unwrap_or(Err(Fault::Data(DataError::NoChunk(chunk)))))
    }

    /// Moves `chunk` from `prev_version` to `version` with `op`, creating it if
    /// `prev_version` is 0 and there is no copy.
    fn modify(
        &self,
        chunk: u64,
        prev_version: u32,
        version: u32,
        op: impl FnMut(&mut ChunkFile) -> Result<(), FileError>,
    ) -> Result<(), DataError> {
        check_version(version)?;
        if version < prev_version {
            return Err(bad(format!(
                "version {version} is below the previous version {prev_version}"
            )));
        }
        let r = self.with_slot(chunk, prev_version == 0, |meta| match *meta {
            Some(m) if (prev_version..=version).contains(&m.header.version) => self.on_copy(chunk, meta, op),
            Some(m) => Err(DataError::WrongVersion {
                chunk,
                have: m.header.version,
                want: prev_version,
            }
            .into()),
            None if prev_version == 0 => self.create(chunk, version, meta, op),
            None => Err(DataError::NoChunk(chunk).into()),
        });
        self.settle(r.unwrap_or(Err(Fault::Data(DataError::NoChunk(chunk)))))
    }

    /// Runs `op` on the open file of the copy in `meta`. A block that fails its checksum
    /// quarantines the copy; a file that vanished drops it.
    fn on_copy<T>(
        &self,
        chunk: u64,
        meta: &mut Option<Meta>,
        op: impl FnOnce(&mut ChunkFile) -> Result<T, FileError>,
    ) -> Result<T, Fault> {
        let Some(m) = *meta else {
            return Err(DataError::NoChunk(chunk).into());
        };
        let dir = &self.dirs[m.dir];
        let path = dir.chunk_path(chunk);
        let outcome = match ChunkFile::open(&path, m.header) {
            Ok(mut file) => op(&mut file).map(|t| (t, file.header())),
            Err(e) => Err(FileError::Io(e)),
        };
        match outcome {
            Ok((t, header)) => {
                if header.version != m.header.version {
                    lock(&self.changes).held(chunk, header.version);
                }
                *meta = Some(Meta { header, ..m });
                Ok(t)
            }
            Err(FileError::Corrupt { block }) => {
                dir.quarantine(&path, chunk, &format!("block {block} failed its checksum"));
                self.drop_copy(chunk, meta);
                Err(DataError::Corrupt { chunk, block }.into())
            }
            Err(FileError::Io(err)) => {
                if err.kind() == io::ErrorKind::NotFound {
                    self.drop_copy(chunk, meta);
                }
                Err(Fault::Io {
                    dir: m.dir,
                    chunk,
                    err,
                })
            }
        }
    }

    /// Creates `chunk` at `version` with `op` in the best dir; a dir without space is marked
    /// full and the next one tried.
    fn create(
        &self,
        chunk: u64,
        version: u32,
        meta: &mut Option<Meta>,
        mut op: impl FnMut(&mut ChunkFile) -> Result<(), FileError>,
    ) -> Result<(), Fault> {
        for d in self.placement() {
            let dir = &self.dirs[d];
            let path = dir.chunk_path(chunk);
            let attempt = (|| {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                let mut file = ChunkFile::create(
                    &path,
                    Header {
                        chunk,
                        version,
                        len: 0,
                    },
                )?;
                op(&mut file)?;
                Ok::<_, FileError>(file.header())
            })();
            match attempt {
                Ok(header) => {
                    *meta = Some(Meta { dir: d, header });
                    dir.add_chunk();
                    lock(&self.changes).held(chunk, version);
                    return Ok(());
                }
                Err(e) => {
                    // Not in the index: whatever is at `path` is a leftover.
                    let _ = fs::remove_file(&path);
                    match e {
                        FileError::Io(err) if err.kind() == io::ErrorKind::StorageFull => self.mark_full(d),
                        FileError::Io(err) => return Err(Fault::Io { dir: d, chunk, err }),
                        FileError::Corrupt { block } => {
                            return Err(DataError::Corrupt { chunk, block }.into());
                        }
                    }
                }
            }
        }
        Err(DataError::NoSpace.into())
    }

    /// Drops the copy in `meta` and reports it lost.
    fn drop_copy(&self, chunk: u64, meta: &mut Option<Meta>) {
        if let Some(m) = meta.take() {
            self.dirs[m.dir].remove_chunk();
            lock(&self.changes).lost(chunk);
        }
    }

    /// `ok` dirs, most available space first (measured now).
    fn placement(&self) -> Vec<usize> {
        let mut candidates: Vec<(u64, usize)> = self
            .dirs
            .iter()
            .enumerate()
            .filter(|(_, d)| d.state() == DirState::Ok)
            .map(|(i, d)| {
                let available = match (self.probe)(&d.root) {
                    Ok(space) => {
                        d.set_space(space);
                        space.available
                    }
                    Err(e) => {
                        tracing::warn!(dir = %d.root.display(), error = %e, "cannot measure space");
                        0
                    }
                };
                (available, i)
            })
            .collect();
        candidates.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        candidates.into_iter().map(|(_, i)| i).collect()
    }
}

/// The `statvfs` space of the file system holding `path`.
fn disk_space(path: &Path) -> io::Result<Space> {
    let s = fs4::statvfs(path)?;
    Ok(Space {
        total: s.total_space(),
        available: s.available_space(),
    })
}

fn expect_version(chunk: u64, meta: &Option<Meta>, want: u32) -> Result<Meta, Fault> {
    match *meta {
        None => Err(DataError::NoChunk(chunk).into()),
        Some(m) if m.header.version != want => Err(DataError::WrongVersion {
            chunk,
            have: m.header.version,
            want,
        }
        .into()),
        Some(m) => Ok(m),
    }
}

fn check_range(offset: u32, len: u32) -> Result<(), DataError> {
    if len > MAX_IO {
        return Err(bad(format!("{len} bytes exceed the largest I/O of {MAX_IO}")));
    }
    if u64::from(offset) + u64::from(len) > u64::from(MAX_LEN) {
        return Err(bad(format!(
            "bytes {offset}+{len} are past the chunk size {MAX_LEN}"
        )));
    }
    Ok(())
}

fn check_version(version: u32) -> Result<(), DataError> {
    if version == 0 {
        return Err(bad("version 0 means 'no copy' and cannot be written"));
    }
    Ok(())
}

fn bad(why: impl Into<String>) -> DataError {
    DataError::BadRequest(why.into())
}

/// fsyncs the directory holding `path`, so a new entry in it survives a crash.
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

/// Locks a mutex, ignoring poisoning: every critical section leaves its data consistent
/// before anything that can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
