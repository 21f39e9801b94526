//! Metadata deltas: the unit that replication ships and every replica applies.
//!
//! A delta carries a UUID (for de-duplication in transit), the HLC timestamp of the edit that
//! made it (whose node is the delta's origin) and a list of operations. Operations carry no
//! stamps of their own: every register an operation writes is stamped with the delta's HLC, and
//! every dot it adds belongs to the origin node. That keeps a create delta small.
//!
//! Each operation is the compact form of a state delta of one CRDT (see [`Op`]), so applying
//! deltas in any order, any number of times, gives the same state as joining the replicas that
//! produced them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::dot::{Dot, NodeId};
use crate::hlc::Timestamp;
use crate::model::inode::{Attr, ChunkRef, FileKind, FileTime, Ino};
use crate::model::name::Name;

/// A batch of metadata operations made by one edit on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// Unique id, used to de-duplicate deltas in transit.
    pub id: Uuid,
    /// When the edit happened; its node is the origin.
    pub hlc: Timestamp,
    /// What the edit did.
    pub ops: Vec<Op>,
}

impl Delta {
    /// The node that made the edit.
    pub fn origin(&self) -> NodeId {
        self.hlc.node()
    }
}

/// One operation. Register writes are stamped with the delta's HLC; dots are the origin's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Creates an inode: its identity, and every attribute register initialised (times all
    /// set to `time`). `nlink` is the origin's initial link-count component.
    CreateInode {
        /// The new inode.
        ino: Ino,
        /// File type.
        kind: FileKind,
        /// Permission bits.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Device number (devices only).
        rdev: u64,
        /// atime, mtime and ctime.
        time: FileTime,
        /// Initial link count.
        nlink: u64,
        /// Symlink target.
        symlink: Option<Box<[u8]>>,
    },
    /// Writes attribute registers.
    SetAttrs {
        /// Target inode.
        ino: Ino,
        /// One write per register.
        attrs: Vec<Attr>,
    },
    /// Sets mtime and ctime to `time`: the change every content or entry update makes.
    Touch {
        /// Target inode.
        ino: Ino,
        /// The new mtime and ctime.
        time: FileTime,
    },
    /// The origin's link-count component is now `inc` increments and `dec` decrements.
    Nlink {
        /// Target inode.
        ino: Ino,
        /// Origin's increment total.
        inc: u64,
        /// Origin's decrement total.
        dec: u64,
    },
    /// Adds entry `name → ino` to directory `dir` with dot (origin, `counter`), superseding
    /// the earlier adds of the same entry listed in `supersedes`.
    Link {
        /// The directory.
        dir: Ino,
        /// Entry name.
        name: Name,
        /// Entry target.
        ino: Ino,
        /// The origin's dot counter for this add.
        counter: u64,
        /// Earlier adds of the same entry that this add replaces.
        supersedes: Vec<Dot>,
    },
    /// Removes the adds `dots` of entry `name → ino` from directory `dir`.
    Unlink {
        /// The directory.
        dir: Ino,
        /// Entry name.
        name: Name,
        /// Entry target.
        ino: Ino,
        /// The adds observed and removed.
        dots: Vec<Dot>,
    },
    /// Sets (or with `None` removes) an extended attribute.
    SetXattr {
        /// Target inode.
        ino: Ino,
        /// Attribute name, e.g. `user.comment`.
        name: Box<[u8]>,
        /// Value, or `None` to remove.
        value: Option<Box<[u8]>>,
    },
    /// Points slot `index` of the file's chunk table at `chunk` (or clears it).
    SetChunk {
        /// Target inode.
        ino: Ino,
        /// Chunk index within the file.
        index: u64,
        /// The chunk, or `None` to clear.
        chunk: Option<ChunkRef>,
    },
    /// Deletes the inode (absorbing: later writes to it are ignored).
    DeleteInode {
        /// Target inode.
        ino: Ino,
    },
    /// The origin's quota-usage components under `root` are now these totals.
    Quota {
        /// Quota root directory.
        root: Ino,
        /// (increments, decrements) of bytes.
        bytes: (u64, u64),
        /// (increments, decrements) of inodes.
        inodes: (u64, u64),
    },
}

impl Op {
    /// The inode whose record the operation touches (the directory, for entry operations;
    /// the quota root, for quota operations).
    pub fn target(&self) -> Ino {
        match self {
            Op::CreateInode { ino, .. }
            | Op::SetAttrs { ino, .. }
            | Op::Touch { ino, .. }
            | Op::Nlink { ino, .. }
            | Op::SetXattr { ino, .. }
            | Op::SetChunk { ino, .. }
            | Op::DeleteInode { ino } => *ino,
            Op::Link { dir, .. } | Op::Unlink { dir, .. } => *dir,
            Op::Quota { root, .. } => *root,
        }
    }
}
