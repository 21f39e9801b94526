//! The file-system core: every operation of the mount as an async method of [`Fs`], over a
//! metadata service ([`Meta`]) and chunkservers ([`Data`]). It never mentions fuser: inode
//! numbers are `u64`, names are bytes, attributes are [`proto::Attr`], failures are
//! [`FsError`].
//!
//! | module | what it owns |
//! |---|---|
//! | [`meta`] / [`data`] | the two service traits and their real implementations over `MdsClient` and `DataClient` |
//! | [`error`] | [`FsError`] |
//! | [`caller`] | credentials of the calling process (supplementary groups from `/proc`), pending signals |
//! | `namespace` | lookup, getattr, setattr, mknod, mkdir, unlink, rmdir, symlink, readlink, link, rename, access, statfs, forget |
//! | `xattr` | extended attributes, with the size-query and `ERANGE` rules |
//! | `dir` | directory streams: stable FUSE offsets over the server's opaque cookies, bounded memory |
//! | `handle` | open files: the handle tables, open, create, flush, fsync, release |
//! | [`release`] | server-handle releases, queued and sent in batches |
//! | `write` | write-back buffering and chained chunk writes with version retries |
//! | `read` | reads with read-ahead, fall-over between copies, holes, relatime |
//! | `size` | truncation (cutting the tail chunk) and fallocate |
//! | `seek` | `SEEK_DATA` / `SEEK_HOLE` at chunk granularity |
//! | `lock` | POSIX record locks (and `flock`, emulated with them), blocking ones retried with backoff |
//! | [`watch`] | the metadata watcher: other clients' changes become [`watch::Invalidation`]s |
//!
//! Choices where POSIX and Linux leave room:
//! - Writes are buffered per open file (up to [`FsConfig::write_buffer`]) and land on
//!   chunkservers at a full buffer, a non-sequential write, `flush` (every `close`), `fsync`,
//!   release, or before this mount answers getattr/setattr/lookup/read for the inode. A failed
//!   background landing is reported by the file's next write, `flush` or `fsync` (as `close`
//!   reports NFS write-back errors).
//! - The server handle of a closed file is released in a batch shortly after the last
//!   `close` (see [`release`]), not by the `release` call itself.
//! - `fsync` and `fdatasync` both make the written chunks durable on every copy (`Sync` down
//!   the chain); metadata is durable when acknowledged (strict mode).
//! - atime follows relatime: after a read that finds it due, the mount tells the metadata
//!   server (`Accessed`), which sets atime alone (never ctime) on the strength of the read
//!   handle.
//! - `flock` is emulated with whole-file POSIX locks owned by the open file, as on NFS: it
//!   holds across mounts, but conflicts with `fcntl` locks on the same file, and an exclusive
//!   `flock` needs a descriptor open for writing.
//! - `fallocate` reserves no space: mode 0 extends the size (holes read as zeros),
//!   `FALLOC_FL_KEEP_SIZE` alone succeeds without effect, every other mode is `EOPNOTSUPP`.
//! - `SEEK_DATA`/`SEEK_HOLE` see data and holes at chunk granularity (64 MiB).

pub mod caller;
pub mod data;
mod dir;
pub mod error;
mod handle;
mod lock;
pub mod meta;
mod namespace;
mod read;
pub mod release;
mod seek;
mod size;
pub mod watch;
mod write;
mod xattr;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use client::ReadFrom;
use proto::data::MAX_IO;
use proto::fs::Cred;
use proto::{Attr, FsOp, FsReply};

pub use self::caller::Callers;
pub use self::data::Data;
pub use self::dir::DirSink;
pub use self::error::FsError;
pub use self::handle::OpenMode;
pub use self::meta::Meta;
pub use self::seek::Whence;
pub use self::watch::Invalidation;
pub use self::xattr::Xattr;

/// Tunables of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsConfig {
    /// Largest write-back buffer per open file, in bytes (default 4 MiB, at most the data
    /// protocol's 8 MiB). Sequential writes are coalesced up to it, never across a chunk
    /// boundary.
    pub write_buffer: usize,
    /// Bytes fetched at once by sequential reads, in bytes (default 4 MiB; 0: no read-ahead).
    pub readahead: usize,
    /// Entries asked per directory page (default 1024, at most 65535: the index within a page
    /// is the low 16 bits of a FUSE directory offset).
    pub readdir_page: u32,
    /// Attempts of a chunk write or cut, each under a new chunk version, before `EIO`
    /// (default 4).
    pub write_attempts: u32,
    /// Update atime on reads, following relatime (default true; off for `ro` and `noatime`).
    pub relatime: bool,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            write_buffer: 4 << 20,
            readahead: 4 << 20,
            readdir_page: 1024,
            write_attempts: 4,
            relatime: true,
        }
    }
}

/// The file system of one mount.
#[derive(Debug)]
pub struct Fs<M, D> {
    meta: M,
    data: D,
    cfg: FsConfig,
    callers: Callers,
    files: handle::Files,
    dirs: dir::Streams,
    locks: lock::Held,
    known: Mutex<HashMap<u64, Known>>,
    next_handle: AtomicU64,
    releases: release::Releases,
}

/// An inode the kernel holds a reference to (through lookups), and the entry it last came by.
#[derive(Debug, Clone)]
struct Known {
    lookups: u64,
    parent: u64,
    name: Vec<u8>,
}

impl<M: Meta, D: Data> Fs<M, D> {
    /// A file system over `meta` and `data`.
    pub fn new(meta: M, data: D, cfg: FsConfig) -> Self {
        let cfg = FsConfig {
            write_buffer: cfg.write_buffer.clamp(1, MAX_IO as usize),
            readdir_page: cfg.readdir_page.clamp(1, u32::from(u16::MAX)),
            write_attempts: cfg.write_attempts.max(1),
            ..cfg
        };
        Fs {
            meta,
            data,
            cfg,
            callers: Callers::default(),
            files: handle::Files::default(),
            dirs: dir::Streams::default(),
            locks: lock::Held::default(),
            known: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            releases: release::Releases::default(),
        }
    }

    /// The metadata service.
    pub fn meta(&self) -> &M {
        &self.meta
    }

    /// The chunkservers.
    pub fn data(&self) -> &D {
        &self.data
    }

    /// The credentials of process `pid` running as `uid`/`gid`.
    pub fn cred(&self, uid: u32, gid: u32, pid: u32) -> Cred {
        self.callers.cred(uid, gid, pid)
    }

    /// A fresh handle number (files and directories share the space).
    fn new_handle(&self) -> u64 {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `op`, reading from any replica that has this session's writes.
    async fn ask(&self, cred: &Cred, op: FsOp) -> Result<FsReply, FsError> {
        Ok(self.meta.fs(cred, op, ReadFrom::AnyReplica).await?)
    }

    /// Runs `op`, reading at the leader: after a replica's answer turned out stale.
    async fn ask_leader(&self, cred: &Cred, op: FsOp) -> Result<FsReply, FsError> {
        Ok(self.meta.fs(cred, op, ReadFrom::Leader).await?)
    }

    /// Runs `op`, which answers with attributes.
    async fn ask_attr(&self, cred: &Cred, op: FsOp, name: &'static str) -> Result<Attr, FsError> {
        match self.ask(cred, op).await? {
            FsReply::Attr(a) => Ok(a),
            other => Err(FsError::protocol(name, other)),
        }
    }

    /// Runs `op`, which answers `Done`.
    async fn ask_done(&self, cred: &Cred, op: FsOp, name: &'static str) -> Result<(), FsError> {
        match self.ask(cred, op).await? {
            FsReply::Done => Ok(()),
            other => Err(FsError::protocol(name, other)),
        }
    }

    /// Records that the kernel now holds one more reference to `attr.ino`, found as `name`
    /// in `parent`.
    fn hand_out(&self, ino: u64, parent: u64, name: &[u8]) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let k = known.entry(ino).or_insert_with(|| Known {
            lookups: 0,
            parent,
            name: Vec::new(),
        });
        k.lookups += 1;
        k.parent = parent;
        name.clone_into(&mut k.name);
    }

    /// The kernel dropped `n` references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = known.get_mut(&ino) {
            k.lookups = k.lookups.saturating_sub(n);
            if k.lookups == 0 {
                known.remove(&ino);
            }
        }
    }

    /// Lands every buffered write (at unmount).
    pub async fn flush_all(&self) {
        for ino in self.files.inodes() {
            self.flush_inode(ino).await;
        }
    }
}
