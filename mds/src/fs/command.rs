//! A replicated file-system command and what executing it changes.

use crdt::Timestamp;
use crdt::model::{Changes, Delta, FileTime};
use proto::fs::{Cred, FsOp};
use serde::{Deserialize, Serialize};
use shardmap::{ShardId, ShardTable};
use uuid::Uuid;

use crate::fs::state::{HandleInfo, HeldLock, ShardMeta};

/// A mutation as it travels through the raft log. Everything non-deterministic was fixed by
/// the leader that proposed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Client id (idempotency key, with `seq`).
    pub client: u64,
    /// Client sequence number.
    pub seq: u64,
    /// Every lower sequence number of this client has been answered.
    pub acked_below: u64,
    /// Who asks.
    pub cred: Cred,
    /// The operation.
    pub op: FsOp,
    /// HLC stamp for the records written. The apply layer raises it above the shard's last
    /// stamp before execution, so stamps grow in log order.
    pub stamp: Timestamp,
    /// Wall-clock time for POSIX timestamps (ctime, mtime, atime, `UTIME_NOW`).
    pub now: FileTime,
    /// Id of the CRDT delta the command produces (the apply layer derives it from the shard and
    /// raft index, so every replica uses the same id).
    pub delta_id: Uuid,
    /// The chunkservers the proposing leader saw alive, best placement first (most free
    /// space): new chunks are placed on the first ones, in this order on every replica.
    pub placement: Vec<(u64, String)>,
}

impl crdt::codec::Versioned for Command {
    const KIND: u8 = b'c';
    const VERSION: u8 = 1;
}

/// Where a command runs.
#[derive(Debug, Clone, Copy)]
pub struct ShardCtx<'a> {
    /// The shard executing the command.
    pub shard: ShardId,
    /// The shard table (placement of new inodes, ownership checks).
    pub table: &'a ShardTable,
}

/// A change to the open-handle table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleChange {
    /// A handle was opened.
    Open {
        /// Handle number.
        handle: u64,
        /// What it opens.
        info: HandleInfo,
    },
    /// A handle was released.
    Close {
        /// Owner of the handle.
        client: u64,
        /// Handle number.
        handle: u64,
        /// The inode it kept open.
        ino: u64,
    },
}

/// What executing a command changes. Written by the apply layer in the same LMDB transaction
/// as the applied index.
#[derive(Debug, Default)]
pub struct Effects {
    /// Namespace record changes (from a `crdt::model::Overlay`).
    pub records: Changes,
    /// The shard's counters after the command, if they changed.
    pub meta: Option<ShardMeta>,
    /// Open-handle table changes.
    pub handles: Vec<HandleChange>,
    /// Inodes whose lock list is replaced (an empty list: no locks left).
    pub locks: Vec<(u64, Vec<HeldLock>)>,
    /// Chunk copies the command expects to exist: (chunk, chunkserver, version). Chunkserver
    /// reports confirm or correct them.
    pub copies: Vec<(u64, u64, u32)>,
    /// New chunks and the file slot they belong to: (chunk, inode, index).
    pub owners: Vec<(u64, u64, u64)>,
    /// Chunks no file refers to any more: their copies are to be deleted.
    pub freed: Vec<u64>,
    /// Quota roots whose limit is set (or, with `None`, which stop being roots).
    pub limits: Vec<(u64, Option<proto::fs::QuotaLimit>)>,
    /// The CRDT delta the command produced (for the delta ring), if it changed the namespace.
    pub delta: Option<Delta>,
}
