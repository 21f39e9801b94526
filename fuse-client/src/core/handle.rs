//! Open files: the tables from the mount's handle numbers to open files and from inodes to
//! their open files, and the lifecycle operations (open, create, flush, fsync, release).
//!
//! Each open file has one server handle (its permission to read and write) and one I/O state
//! (write-back buffer, read-ahead cache, a landing error not yet reported) behind an async
//! mutex, so operations on one open file run one at a time while different files proceed in
//! parallel. State shared by the open files of an inode (its data generation, attributes,
//! chunks written since the last fsync) lives in [`Inode`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use proto::data::Server;
use proto::fs::{Cred, SetAttr, Written};
use proto::{Attr, CHUNK_SIZE, Errno, FsOp, FsReply};

use crate::core::read::Ahead;
use crate::core::write::Buffer;
use crate::core::{Data, Fs, FsError, Meta};

/// How a file is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenMode {
    /// For reading.
    pub read: bool,
    /// For writing.
    pub write: bool,
    /// Emptied first (`O_TRUNC`).
    pub truncate: bool,
    /// Created only if it does not exist (`O_EXCL`; create only).
    pub exclusive: bool,
}

/// What the open files of one inode share.
#[derive(Debug)]
pub(crate) struct Inode {
    /// Bumped whenever the file's data may have changed (a landing, a truncation, another
    /// client's change): cached reads and chunk locations of an older generation are stale.
    generation: AtomicU64,
    /// Open files of the inode with bytes in their write-back buffer.
    dirty: AtomicUsize,
    /// The last attributes seen (relatime decides from them).
    attr: Mutex<Attr>,
    /// Chunks written since the last fsync, by chunk index: the version and chain to sync.
    unsynced: Mutex<BTreeMap<u64, (Written, Vec<Server>)>>,
    /// Handles open on the inode.
    handles: Mutex<Vec<u64>>,
}

impl Inode {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn attr(&self) -> Attr {
        self.attr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_attr(&self, attr: Attr) {
        *self.attr.lock().unwrap_or_else(|e| e.into_inner()) = attr;
    }

    pub(crate) fn became_dirty(&self) {
        self.dirty.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn became_clean(&self) {
        self.dirty.fetch_sub(1, Ordering::AcqRel);
    }

    /// Remembers that `written` landed on `chain` and is not yet synced.
    pub(crate) fn unsynced(&self, written: Written, chain: Vec<Server>) {
        self.unsynced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(written.index, (written, chain));
    }

    /// The file was cut to `size`: the chunks wholly past it are gone, with nothing to sync.
    fn truncated(&self, size: u64) {
        self.unsynced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|index, _| index.saturating_mul(CHUNK_SIZE) < size);
    }

    fn take_unsynced(&self) -> Vec<(Written, Vec<Server>)> {
        std::mem::take(&mut *self.unsynced.lock().unwrap_or_else(|e| e.into_inner()))
            .into_values()
            .collect()
    }
}

/// One open file.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub(crate) ino: u64,
    /// The metadata server's handle.
    pub(crate) handle: u64,
    pub(crate) write: bool,
    pub(crate) inode: Arc<Inode>,
    pub(crate) io: tokio::sync::Mutex<FileIo>,
}

/// The I/O state of an open file.
#[derive(Debug, Default)]
pub(crate) struct FileIo {
    pub(crate) buffer: Buffer,
    pub(crate) ahead: Ahead,
    /// A landing that failed outside this file's own write, flush or fsync, reported by the
    /// next of those.
    pub(crate) failed: Option<FsError>,
}

/// The open-file tables.
#[derive(Debug, Default)]
pub(crate) struct Files {
    by_fh: Mutex<HashMap<u64, Arc<OpenFile>>>,
    by_ino: Mutex<HashMap<u64, Arc<Inode>>>,
}

impl Files {
    fn insert(&self, fh: u64, attr: Attr, handle: u64, write: bool) {
        let ino = attr.ino;
        let inode = self
            .by_ino
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ino)
            .or_insert_with(|| {
                Arc::new(Inode {
                    generation: AtomicU64::new(0),
                    dirty: AtomicUsize::new(0),
                    attr: Mutex::new(attr.clone()),
                    unsynced: Mutex::new(BTreeMap::new()),
                    handles: Mutex::new(Vec::new()),
                })
            })
            .clone();
        inode.set_attr(attr);
        inode.handles.lock().unwrap_or_else(|e| e.into_inner()).push(fh);
        let file = OpenFile {
            ino,
            handle,
            write,
            inode,
            io: tokio::sync::Mutex::new(FileIo::default()),
        };
        self.by_fh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, Arc::new(file));
    }

    /// The open file of handle `fh` (`EBADF` if none).
    pub(crate) fn get(&self, fh: u64) -> Result<Arc<OpenFile>, FsError> {
        self.by_fh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fh)
            .cloned()
            .ok_or(FsError::Posix(Errno::EBADF))
    }

    fn remove(&self, fh: u64) -> Option<Arc<OpenFile>> {
        let file = self.by_fh.lock().unwrap_or_else(|e| e.into_inner()).remove(&fh)?;
        let mut handles = file.inode.handles.lock().unwrap_or_else(|e| e.into_inner());
        handles.retain(|h| *h != fh);
        if handles.is_empty() {
            self.by_ino
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&file.ino);
        }
        drop(handles);
        Some(file)
    }

    /// The state of `ino`, if it is open.
    pub(crate) fn inode(&self, ino: u64) -> Option<Arc<Inode>> {
        self.by_ino
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ino)
            .cloned()
    }

    /// The open files of `ino`.
    fn of_inode(&self, ino: u64) -> Vec<Arc<OpenFile>> {
        let Some(inode) = self.inode(ino) else {
            return Vec::new();
        };
        let handles = inode.handles.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let by_fh = self.by_fh.lock().unwrap_or_else(|e| e.into_inner());
        handles.iter().filter_map(|fh| by_fh.get(fh).cloned()).collect()
    }

    /// Every open inode.
    pub(crate) fn inodes(&self) -> Vec<u64> {
        self.by_ino
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Whether this mount holds buffered writes for `ino`.
    pub(crate) fn is_dirty(&self, ino: u64) -> bool {
        self.inode(ino)
            .is_some_and(|i| i.dirty.load(Ordering::Acquire) > 0)
    }

    /// Records fresh attributes of an inode, if it is open.
    pub(crate) fn observe(&self, attr: &Attr) {
        if let Some(i) = self.inode(attr.ino) {
            i.set_attr(attr.clone());
        }
    }

    /// Marks the data of `ino` (if open) as changed by a truncation to `size` through this
    /// mount.
    pub(crate) fn truncated(&self, ino: u64, size: u64) {
        if let Some(i) = self.inode(ino) {
            i.bump();
            i.truncated(size);
        }
    }

    /// Marks the data of `ino` (if open) as possibly changed.
    pub(crate) fn bump(&self, ino: u64) {
        if let Some(i) = self.inode(ino) {
            i.bump();
        }
    }
}

impl<M: Meta, D: Data> Fs<M, D> {
    /// Opens `ino`; returns the mount's handle.
    pub async fn open(&self, cred: &Cred, ino: u64, mode: OpenMode) -> Result<u64, FsError> {
        if mode.truncate {
            // Writes buffered before the truncation must not land after it.
            self.flush_inode(ino).await;
        }
        let op = FsOp::Open {
            ino,
            read: mode.read,
            write: mode.write,
            truncate: mode.truncate,
        };
        let (attr, handle) = match self.ask(cred, op).await? {
            FsReply::Opened { attr, handle } => (attr, handle),
            other => return Err(FsError::protocol("open", other)),
        };
        if mode.truncate {
            self.files.truncated(ino, 0);
        }
        let fh = self.new_handle();
        self.files.insert(fh, attr, handle, mode.write);
        Ok(fh)
    }

    /// Creates (or, unless `exclusive`, opens) `name` in `parent`; the kernel holds a reference
    /// to the result. An existing file opened with `truncate` is emptied.
    pub async fn create(
        &self,
        cred: &Cred,
        parent: u64,
        name: &[u8],
        perm: u32,
        mode: OpenMode,
    ) -> Result<(Attr, u64), FsError> {
        let op = FsOp::Create {
            parent,
            name: name.to_vec(),
            mode: perm,
            exclusive: mode.exclusive,
            read: mode.read,
            write: mode.write,
        };
        let (attr, handle) = match self.ask(cred, op).await? {
            FsReply::Opened { attr, handle } => (attr, handle),
            other => return Err(FsError::protocol("create", other)),
        };
        let fh = self.new_handle();
        self.files.insert(fh, attr.clone(), handle, mode.write);
        self.hand_out(attr.ino, parent, name);
        if mode.truncate && attr.size > 0 {
            let attr = self
                .setattr(
                    cred,
                    attr.ino,
                    SetAttr {
                        size: Some(0),
                        ..SetAttr::default()
                    },
                    Some(fh),
                )
                .await?;
            return Ok((attr, fh));
        }
        Ok((attr, fh))
    }

    /// `close` of a descriptor of `fh`: lands its buffered writes (reporting any landing
    /// error) and releases the POSIX locks `owner` holds on the file.
    pub async fn flush(&self, cred: &Cred, fh: u64, owner: Option<u64>) -> Result<(), FsError> {
        let file = self.files.get(fh)?;
        let landed = self.land_file(&file).await;
        if let Some(owner) = owner {
            self.unlock_owner(cred, &file, owner).await?;
        }
        landed
    }

    /// Makes everything written to the file durable: lands the buffered writes of every open
    /// file of the inode, then syncs each chunk written since the last fsync down its chain.
    pub async fn fsync(&self, _cred: &Cred, fh: u64) -> Result<(), FsError> {
        let file = self.files.get(fh)?;
        self.flush_inode(file.ino).await;
        self.land_file(&file).await?;
        let mut failed = None;
        for (written, chain) in file.inode.take_unsynced() {
            if let Err(e) = self.sync_chunk(&written, &chain).await {
                file.inode.unsynced(written, chain);
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// The last `close` of `fh`: lands its buffered writes, releases the locks of
    /// `flock_owner` (the open file's own owner, under which the kernel sent its `flock`
    /// locks) and queues the release of the server handle (see [`crate::core::release`]).
    pub async fn release(&self, cred: &Cred, fh: u64, flock_owner: Option<u64>) -> Result<(), FsError> {
        let file = self.files.get(fh)?;
        let landed = self.land_file(&file).await;
        let unlocked = match flock_owner {
            Some(owner) => self.unlock_owner(cred, &file, owner).await,
            None => Ok(()),
        };
        self.files.remove(fh);
        self.releases.queue(cred, file.ino, file.handle);
        landed.and(unlocked)
    }

    /// Lands `file`'s buffer, reporting an earlier landing failure first.
    async fn land_file(&self, file: &OpenFile) -> Result<(), FsError> {
        let mut io = file.io.lock().await;
        if let Some(e) = io.failed.take() {
            return Err(e);
        }
        self.land(file, &mut io).await
    }

    /// Lands the buffered writes of every open file of `ino`; a failure is kept by the file
    /// it belongs to and reported by its next write, flush or fsync.
    pub(crate) async fn flush_inode(&self, ino: u64) {
        if !self.files.is_dirty(ino) {
            return;
        }
        for file in self.files.of_inode(ino) {
            let mut io = file.io.lock().await;
            if let Err(e) = self.land(&file, &mut io).await {
                tracing::warn!(ino, error = %e, "buffered write failed to land");
                io.failed.get_or_insert(e);
            }
        }
    }
}
