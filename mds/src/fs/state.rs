//! What the state machine reads: the namespace records (through the `crdt` traits) plus the
//! tables only the metadata server keeps.

use crdt::Timestamp;
use crdt::model::directory::EntrySource;
use crdt::model::{Entry, Ino, RecordsView};
use crdt::orset::Tag;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Per-shard counters and clocks, replicated like every other record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMeta {
    /// Next inode id counter (ids are composed with `shardmap::IdParts`, allocator 0).
    pub next_ino: u64,
    /// Next chunk id counter.
    pub next_chunk: u64,
    /// Next open-handle number.
    pub next_handle: u64,
    /// Stamp of the last applied command: stamps only grow in log order.
    pub last_stamp: Timestamp,
    /// Live inodes in the shard.
    pub live_inodes: u64,
}

impl Default for ShardMeta {
    fn default() -> Self {
        ShardMeta {
            next_ino: 1,
            next_chunk: 1,
            next_handle: 1,
            last_stamp: Timestamp::ZERO,
            live_inodes: 0,
        }
    }
}

impl crdt::codec::Versioned for ShardMeta {
    const KIND: u8 = b'M';
    const VERSION: u8 = 1;
}

/// An open file handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleInfo {
    /// The open inode.
    pub ino: u64,
    /// The client that opened it.
    pub client: u64,
    /// Opened for reading.
    pub read: bool,
    /// Opened for writing.
    pub write: bool,
}

impl crdt::codec::Versioned for HandleInfo {
    const KIND: u8 = b'H';
    const VERSION: u8 = 1;
}

/// A lock held on an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLock {
    /// The client holding it.
    pub client: u64,
    /// The handle it was taken through (a `flock` lock belongs to it).
    pub handle: u64,
    /// A whole-file `flock` lock (independent of POSIX byte-range locks, as on Linux).
    pub flock: bool,
    /// Owner, pid, kind (never `Unlock`) and range.
    pub lock: proto::fs::Lock,
}

/// The locks held on one inode, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeldLocks(pub Vec<HeldLock>);

impl crdt::codec::Versioned for HeldLocks {
    const KIND: u8 = b'l';
    const VERSION: u8 = 1;
}

/// A quota root's limit, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLimit(pub proto::fs::QuotaLimit);

impl crdt::codec::Versioned for StoredLimit {
    const KIND: u8 = b'q';
    const VERSION: u8 = 1;
}

/// Everything the state machine reads about one shard. Implemented by the LMDB store over a
/// transaction (reads see earlier writes of the same transaction), and by an in-memory state in
/// unit tests.
pub trait FsState: RecordsView<Error = StoreError> {
    /// Name lookups in directory `dir`: pass it to `crdt::model::directory::lookup_in`, and use
    /// its `group` as the `is_stored` test of `resolve_group`.
    fn dir(&self, dir: Ino) -> impl EntrySource<Error = StoreError> + '_;
    /// The shard's counters.
    fn meta(&self) -> Result<ShardMeta, StoreError>;
    /// An open handle of `client`.
    fn handle(&self, client: u64, handle: u64) -> Result<Option<HandleInfo>, StoreError>;
    /// How many handles keep `ino` open.
    fn open_handles(&self, ino: Ino) -> Result<u64, StoreError>;
    /// Every open handle of `client`.
    fn client_handles(&self, client: u64) -> Result<Vec<(u64, HandleInfo)>, StoreError>;
    /// Up to `limit` entries of `dir` strictly after `after` in (name, inode) order, with tags.
    fn entries_after(
        &self,
        dir: Ino,
        after: Option<&Entry>,
        limit: usize,
    ) -> Result<Vec<(Entry, Vec<Tag>)>, StoreError>;
    /// The locks held on `ino`.
    fn locks(&self, ino: Ino) -> Result<Vec<HeldLock>, StoreError>;
    /// Every locked inode and its locks.
    fn all_locks(&self) -> Result<Vec<(Ino, Vec<HeldLock>)>, StoreError>;
    /// The recorded copies of `chunk`: (chunkserver, version).
    fn chunk_copies(&self, chunk: u64) -> Result<Vec<(u64, u32)>, StoreError>;
    /// The data address of chunkserver `id`, if registered.
    fn chunkserver_addr(&self, id: u64) -> Result<Option<String>, StoreError>;
    /// Total and used bytes over all chunkservers.
    fn capacity(&self) -> Result<(u64, u64), StoreError>;
    /// The limit of quota root `dir`; `None` if `dir` is not a quota root.
    fn quota_limit(&self, dir: Ino) -> Result<Option<proto::fs::QuotaLimit>, StoreError>;
    /// Whether the shard has any quota root (operations skip quota accounting otherwise).
    fn has_quotas(&self) -> Result<bool, StoreError>;
}
