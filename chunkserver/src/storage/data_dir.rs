//! One data directory: its layout, its state, its cached space, and the scan of its chunk
//! files at start.
//!
//! ```text
//! <dir>/.lock                      held (flock) while a chunkserver uses the dir
//! <dir>/chunks/<xx>/<id>.chunk     one file per copy; <xx> = low byte of the id, <id> = 16 hex digits
//! <dir>/quarantine/                copies that failed a check, set aside for an operator
//! <dir>/tmp/                       copies being replicated here; emptied at start
//! ```
//!
//! The directory itself must exist: a missing mount point is reported as a failed dir rather
//! than silently replaced by a directory on the root file system.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::chunk_file::read_header;
use super::format::{FormatError, Header};
use super::lock;

const CHUNKS: &str = "chunks";
const QUARANTINE: &str = "quarantine";
const TMP: &str = "tmp";
const LOCK: &str = ".lock";
const SUFFIX: &str = ".chunk";

/// The state of a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirState {
    /// In use.
    Ok,
    /// Ran out of space: takes no new chunks until space is freed.
    Full,
    /// Unusable until the chunkserver restarts; its copies were reported lost.
    Failed(String),
}

impl DirState {
    /// `ok`, `full` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            DirState::Ok => "ok",
            DirState::Full => "full",
            DirState::Failed(_) => "failed",
        }
    }
}

/// Space of the file system holding a data dir.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Space {
    /// Total bytes.
    pub total: u64,
    /// Bytes available to this process.
    pub available: u64,
}

/// A data directory in use.
#[derive(Debug)]
pub(super) struct DataDir {
    pub root: PathBuf,
    state: Mutex<DirState>,
    space: Mutex<Space>,
    chunks: AtomicU64,
    /// Holds the directory's lock for the life of the process.
    _lock: Option<File>,
}

/// What a scan of a data dir found.
pub(super) struct Scan {
    pub dir: DataDir,
    pub headers: Vec<Header>,
}

impl DataDir {
    /// Opens `root`: locks it, creates its subdirectories, empties `tmp/` and reads every
    /// chunk header. Files with unusable headers are quarantined; a file of an unknown format
    /// version fails the whole dir (this build must not touch it).
    pub fn open(root: &Path) -> Scan {
        match Self::try_open(root) {
            Ok(scan) => scan,
            Err(reason) => Scan {
                dir: DataDir::failed(root, reason),
                headers: Vec::new(),
            },
        }
    }

    fn failed(root: &Path, reason: String) -> DataDir {
        DataDir {
            root: root.to_path_buf(),
            state: Mutex::new(DirState::Failed(reason)),
            space: Mutex::new(Space::default()),
            chunks: AtomicU64::new(0),
            _lock: None,
        }
    }

    fn try_open(root: &Path) -> Result<Scan, String> {
        let meta = fs::metadata(root).map_err(|e| format!("open {}: {e}", root.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", root.display()));
        }
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(LOCK))
            .map_err(|e| format!("open lock file: {e}"))?;
        lock_file.try_lock().map_err(|e| match e {
            fs::TryLockError::WouldBlock => "in use by another process (its .lock is held)".to_string(),
            fs::TryLockError::Error(e) => format!("lock: {e}"),
        })?;
        for sub in [CHUNKS, QUARANTINE, TMP] {
            fs::create_dir_all(root.join(sub)).map_err(|e| format!("create {sub}/: {e}"))?;
        }
        let dir = DataDir {
            root: root.to_path_buf(),
            state: Mutex::new(DirState::Ok),
            space: Mutex::new(Space::default()),
            chunks: AtomicU64::new(0),
            _lock: Some(lock_file),
        };
        dir.empty_tmp().map_err(|e| format!("empty tmp/: {e}"))?;
        let headers = dir.scan().map_err(|e| format!("scan chunks/: {e}"))??;
        Ok(Scan { dir, headers })
    }

    fn empty_tmp(&self) -> io::Result<()> {
        for entry in fs::read_dir(self.root.join(TMP))? {
            let path = entry?.path();
            tracing::info!(path = %path.display(), "removing an unfinished replica");
            fs::remove_file(&path)?;
        }
        Ok(())
    }

    /// Reads every chunk header; the inner error fails the dir.
    fn scan(&self) -> io::Result<Result<Vec<Header>, String>> {
        let mut headers = Vec::new();
        for sub in fs::read_dir(self.root.join(CHUNKS))? {
            let sub = sub?;
            if !sub.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(sub.path())? {
                let path = entry?.path();
                let Some(chunk) = parse_name(&path) else {
                    tracing::warn!(path = %path.display(), "ignoring a file that is not a chunk");
                    continue;
                };
                match read_header(&path)? {
                    Ok(h) if h.chunk == chunk => headers.push(h),
                    Ok(h) => {
                        let why = format!("header names chunk {:#x}", h.chunk);
                        self.quarantine(&path, chunk, &why);
                    }
                    Err(e @ FormatError::UnsupportedVersion { .. }) => {
                        return Ok(Err(format!("{}: {e}", path.display())));
                    }
                    Err(e) => self.quarantine(&path, chunk, &e.to_string()),
                }
            }
        }
        Ok(Ok(headers))
    }

    /// The file of `chunk`'s copy in this dir.
    pub fn chunk_path(&self, chunk: u64) -> PathBuf {
        self.root
            .join(CHUNKS)
            .join(format!("{:02x}", chunk & 0xff))
            .join(format!("{chunk:016x}{SUFFIX}"))
    }

    /// The file a replica of `chunk` is assembled in.
    pub fn tmp_path(&self, chunk: u64, version: u32) -> PathBuf {
        self.root.join(TMP).join(format!("{chunk:016x}.v{version}.part"))
    }

    /// Moves a chunk file that failed a check aside, so it is never served again.
    pub fn quarantine(&self, path: &Path, chunk: u64, why: &str) {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let to = self
            .root
            .join(QUARANTINE)
            .join(format!("{chunk:016x}.{stamp}{SUFFIX}"));
        match fs::rename(path, &to) {
            Ok(()) => {
                tracing::warn!(chunk, from = %path.display(), to = %to.display(), reason = why, "copy set aside")
            }
            Err(e) => {
                tracing::warn!(chunk, path = %path.display(), reason = why, error = %e, "cannot set a bad copy aside; removing it");
                let _ = fs::remove_file(path);
            }
        }
    }

    /// Whether the dir's chunk tree is still there.
    pub fn present(&self) -> bool {
        fs::metadata(self.root.join(CHUNKS)).is_ok_and(|m| m.is_dir())
    }

    pub fn state(&self) -> DirState {
        lock(&self.state).clone()
    }

    /// Sets the state; returns the previous one.
    pub fn set_state(&self, state: DirState) -> DirState {
        std::mem::replace(&mut *lock(&self.state), state)
    }

    pub fn space(&self) -> Space {
        *lock(&self.space)
    }

    pub fn set_space(&self, space: Space) {
        *lock(&self.space) = space;
    }

    pub fn chunks(&self) -> u64 {
        self.chunks.load(Ordering::Relaxed)
    }

    pub fn add_chunk(&self) {
        self.chunks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn remove_chunk(&self) {
        self.chunks.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The chunk id of a file named `<16 hex digits>.chunk`.
fn parse_name(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let hex = name.strip_suffix(SUFFIX)?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_names_round_trip() {
        let dir = DataDir::failed(Path::new("/d"), String::new());
        let path = dir.chunk_path(0x1234_5678_9abc_def0);
        assert_eq!(path, Path::new("/d/chunks/f0/123456789abcdef0.chunk"));
        assert_eq!(parse_name(&path), Some(0x1234_5678_9abc_def0));
        assert_eq!(parse_name(Path::new("/d/chunks/f0/1234.chunk")), None);
        assert_eq!(parse_name(Path::new("/d/chunks/f0/123456789abcdef0.part")), None);
    }

    #[test]
    fn a_dir_is_used_by_one_process_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DataDir::open(tmp.path());
        assert_eq!(first.dir.state(), DirState::Ok);
        let second = DataDir::open(tmp.path());
        assert!(
            matches!(second.dir.state(), DirState::Failed(ref r) if r.contains("in use")),
            "{:?}",
            second.dir.state()
        );
        drop(first);
        assert_eq!(DataDir::open(tmp.path()).dir.state(), DirState::Ok);
    }

    #[test]
    fn a_missing_dir_is_failed_not_created() {
        let tmp = tempfile::tempdir().unwrap();
        let gone = tmp.path().join("not-mounted");
        assert!(matches!(DataDir::open(&gone).dir.state(), DirState::Failed(_)));
        assert!(!gone.exists());
    }
}
