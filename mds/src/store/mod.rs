//! The node's LMDB store: one environment holding, for every shard it hosts, the raft log and
//! hard state, the namespace records, and the server's own tables. Every key starts with the
//! shard id, so a shard's records can move without rewriting keys.
//!
//! | module | what it holds |
//! |---|---|
//! | [`keys`] | key layouts |
//! | [`raftlog`] | conf state and applied index of every shard (the log is in [`crate::wal`]) |
//! | [`shard`] | [`ShardView`]: the state machine's reads over a transaction, and writing its effects |
//! | [`sessions`] | the idempotency table: first answers of mutations by (client, seq) |
//! | [`cluster`] | node-wide records: the shard table and the known metadata servers |
//!
//! One write transaction per host round carries every shard's applied effects; the raft log
//! is in the write-ahead log, so LMDB commits without syncing its meta page
//! (`MDB_NOMETASYNC`): a power loss may undo the last commit, which the write-ahead log
//! replays. Reads run in read transactions on any thread.

pub mod chunks;
pub mod cluster;
pub mod keys;
pub mod raftlog;
pub mod sessions;
pub mod shard;

use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};

use crate::error::StoreError;

pub use shard::ShardView;

/// A raw LMDB table.
pub type Table = Database<Bytes, Bytes>;

/// The node's LMDB environment and its tables.
#[derive(Clone)]
pub struct Store {
    env: Env<WithoutTls>,
    path: PathBuf,
    reserve: u64,
    usage_cache: std::sync::Arc<std::sync::Mutex<Option<(std::time::Instant, Usage)>>>,
    /// Raft log entries as LMDB held them before the write-ahead log: `shard, index` →
    /// protobuf `Entry`; emptied at start once moved.
    pub log: Table,
    /// Raft metadata: `shard, tag` → hard state, conf state, snapshot metadata, applied.
    pub raft: Table,
    /// Inode records: `shard, ino` → `crdt::model::Inode`.
    pub inodes: Table,
    /// Directory entries: `shard, dir, name, 0, ino` → tags.
    pub entries: Table,
    /// Directory causal contexts: `shard, dir` → `CausalContext`.
    pub contexts: Table,
    /// Quota usage: `shard, root` → `QuotaUsage`.
    pub quotas: Table,
    /// Quota roots: `shard, root` → `StoredLimit`.
    pub quota_limits: Table,
    /// Shard counters: `shard` → `ShardMeta`.
    pub meta: Table,
    /// Idempotency table: `shard, client, seq` → encoded response.
    pub sessions: Table,
    /// Open handles: `shard, client, handle` → `HandleInfo`.
    pub handles: Table,
    /// Open handles by inode: `shard, ino, client, handle` → ().
    pub opens: Table,
    /// Chunk copies: `shard, chunk, chunkserver` → version.
    pub chunks: Table,
    /// Locks: `shard, ino` → the locks held on it.
    pub locks: Table,
    /// Live chunks: `shard, chunk` → (inode, index) of the file slot holding it.
    pub owners: Table,
    /// Chunks no file refers to: `shard, chunk` → (); their copies are being deleted.
    pub garbage: Table,
    /// Node-wide records (shard table, nodes).
    pub cluster: Table,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// How full the map is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in use (non-free pages).
    pub used: u64,
    /// Size of the map.
    pub map: u64,
    /// Bytes available on the file system holding the store.
    pub disk_free: u64,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` with a map of `map_size` bytes. Writes are
    /// refused with ENOSPC once fewer than `reserve` bytes of the map are free, which leaves
    /// room for the raft log and the refusals themselves.
    pub fn open(dir: &Path, map_size: u64, reserve: u64) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: dir.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(format!("create directory: {e}")))?;
        let map =
            usize::try_from(map_size).map_err(|_| open_err(format!("map size {map_size} too large")))?;
        let mut opts = EnvOpenOptions::new().read_txn_without_tls();
        opts.map_size(map).max_dbs(16).max_readers(512);
        // SAFETY: NO_META_SYNC keeps LMDB consistent (a power loss may undo the last commit);
        // the write-ahead log holds every entry the undone commit applied.
        #[allow(unsafe_code)]
        unsafe {
            opts.flags(heed::EnvFlags::NO_META_SYNC);
        }
        // SAFETY: the environment is opened once per process and path (the data directory is
        // locked by the node), and no file of it is modified outside LMDB's locking protocol.
        #[allow(unsafe_code)]
        let env = unsafe { opts.open(dir) }.map_err(|e| open_err(e.to_string()))?;
        let mut w = env.write_txn()?;
        let mut table = |name: &str| env.create_database::<Bytes, Bytes>(&mut w, Some(name));
        let store = Store {
            log: table("log")?,
            raft: table("raft")?,
            inodes: table("inodes")?,
            entries: table("entries")?,
            contexts: table("contexts")?,
            quotas: table("quotas")?,
            quota_limits: table("quota_limits")?,
            meta: table("meta")?,
            sessions: table("sessions")?,
            handles: table("handles")?,
            opens: table("opens")?,
            chunks: table("chunks")?,
            locks: table("locks")?,
            owners: table("owners")?,
            garbage: table("garbage")?,
            cluster: table("cluster")?,
            env: env.clone(),
            path: dir.to_path_buf(),
            reserve,
            usage_cache: Default::default(),
        };
        w.commit()?;
        Ok(store)
    }

    /// A read transaction (any thread).
    pub fn read(&self) -> Result<RoTxn<'_, WithoutTls>, StoreError> {
        Ok(self.env.read_txn()?)
    }

    /// A write transaction. Commit it on the thread that created it.
    pub fn write(&self) -> Result<RwTxn<'_>, StoreError> {
        Ok(self.env.write_txn()?)
    }

    /// A transaction nested in `parent`: aborting it undoes only its own writes.
    pub fn nested<'p>(&'p self, parent: &'p mut RwTxn) -> Result<RwTxn<'p>, StoreError> {
        Ok(self.env.nested_write_txn(parent)?)
    }

    /// Makes every commit so far durable, the last one's meta page included.
    pub fn sync(&self) -> Result<(), StoreError> {
        Ok(self.env.force_sync()?)
    }

    /// How full the map is.
    pub fn usage(&self) -> Result<Usage, StoreError> {
        Ok(Usage {
            used: self.env.non_free_pages_size()?,
            map: self.env.info().map_size as u64,
            // A file system that cannot say is not taken for a full one.
            disk_free: fs4::available_space(&self.path).unwrap_or(u64::MAX),
        })
    }

    /// Fails with [`StoreError::MapFull`] when less than the reserve is free in the map, and
    /// with [`StoreError::DiskFull`] when less than the reserve is free on the file system
    /// holding the data directory (where the map file and the write-ahead log grow). Both
    /// are measured at most every 50 ms (measuring walks LMDB's free list).
    pub fn check_space(&self) -> Result<(), StoreError> {
        let mut cache = self.usage_cache.lock().unwrap_or_else(|e| e.into_inner());
        let u = match *cache {
            Some((at, u)) if at.elapsed() < std::time::Duration::from_millis(50) => u,
            _ => {
                let u = self.usage()?;
                *cache = Some((std::time::Instant::now(), u));
                u
            }
        };
        if u.used.saturating_add(self.reserve) > u.map {
            return Err(StoreError::MapFull {
                used: u.used,
                map: u.map,
            });
        }
        if u.disk_free < self.reserve {
            return Err(StoreError::DiskFull {
                path: self.path.clone(),
                free: u.disk_free,
                reserve: self.reserve,
            });
        }
        Ok(())
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
