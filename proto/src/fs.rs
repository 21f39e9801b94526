//! File-system operations and their replies.
//!
//! Inode numbers are plain `u64` on the wire (the FUSE inode numbers); names are raw bytes.

use crdt::model::{FileKind, FileTime};
use serde::{Deserialize, Serialize};

/// Bytes of file data per chunk.
pub const CHUNK_SIZE: u64 = 64 << 20;

/// The largest extended attribute value, in bytes (Linux `XATTR_SIZE_MAX`).
pub const XATTR_VALUE_MAX: usize = 64 << 10;

/// Who is asking: the caller's uid, primary gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cred {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub groups: Vec<u32>,
}

impl Cred {
    /// The superuser.
    pub fn root() -> Self {
        Cred::default()
    }

    /// Whether the caller is in group `gid`.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// The attributes of an inode as a client sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    /// Inode number.
    pub ino: u64,
    /// File type.
    pub kind: FileKind,
    /// Permission, set-id and sticky bits (`0o7777`).
    pub perm: u32,
    /// Link count.
    pub nlink: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number.
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Last access.
    pub atime: FileTime,
    /// Last modification.
    pub mtime: FileTime,
    /// Last status change.
    pub ctime: FileTime,
}

/// relatime: a read also updates atime when it is at least this many seconds old (a day, as
/// on Linux).
pub const RELATIME_AGE_SECS: i64 = 24 * 60 * 60;

impl Attr {
    /// Linux's relatime rule (`relatime_need_update`): a read at `now` updates atime when
    /// atime is not after mtime, not after ctime, or at least [`RELATIME_AGE_SECS`] old.
    pub fn relatime_due(&self, now: FileTime) -> bool {
        self.atime <= self.mtime
            || self.atime <= self.ctime
            || now.secs().saturating_sub(self.atime.secs()) >= RELATIME_AGE_SECS
    }
}

/// A time to set: the server's current time (`UTIME_NOW`) or a given one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeSet {
    /// The time the server applies the change.
    Now,
    /// This time.
    At(FileTime),
}

/// What a `setattr` changes; `None` leaves a field alone (`UTIME_OMIT` for times).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SetAttr {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate or extend).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<TimeSet>,
    /// New modification time.
    pub mtime: Option<TimeSet>,
    /// The open handle the change is made through (`ftruncate`), which grants write access
    /// that was checked at open.
    pub handle: Option<u64>,
}

/// `rename` flags (Linux values).
pub mod rename_flags {
    /// Fail with `EEXIST` if the target exists.
    pub const NOREPLACE: u32 = 1;
    /// Atomically exchange source and target; both must exist.
    pub const EXCHANGE: u32 = 2;
}

/// `setxattr` flags (Linux values).
pub mod xattr_flags {
    /// Fail with `EEXIST` if the attribute exists.
    pub const CREATE: u32 = 1;
    /// Fail with `ENODATA` if the attribute does not exist.
    pub const REPLACE: u32 = 2;
}

/// `access` mask bits.
pub mod access {
    /// Read.
    pub const R: u32 = 4;
    /// Write.
    pub const W: u32 = 2;
    /// Execute / search.
    pub const X: u32 = 1;
}

/// A file-system operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FsOp {
    /// Resolve `name` in `parent`.
    Lookup { parent: u64, name: Vec<u8> },
    /// Attributes of `ino`.
    GetAttr { ino: u64 },
    /// Change attributes of `ino`.
    SetAttr { ino: u64, set: SetAttr },
    /// Create a regular file, fifo, socket or device node.
    MkNod {
        parent: u64,
        name: Vec<u8>,
        kind: FileKind,
        mode: u32,
        rdev: u64,
    },
    /// Create a directory.
    MkDir { parent: u64, name: Vec<u8>, mode: u32 },
    /// Create and open a regular file (`O_CREAT`; `exclusive` for `O_EXCL`), for reading
    /// and/or writing.
    Create {
        parent: u64,
        name: Vec<u8>,
        mode: u32,
        exclusive: bool,
        read: bool,
        write: bool,
    },
    /// Remove a non-directory entry.
    Unlink { parent: u64, name: Vec<u8> },
    /// Remove an empty directory.
    RmDir { parent: u64, name: Vec<u8> },
    /// Create a symbolic link to `target`.
    Symlink {
        parent: u64,
        name: Vec<u8>,
        target: Vec<u8>,
    },
    /// Target of a symbolic link.
    ReadLink { ino: u64 },
    /// Add a hard link to `ino` as `name` in `parent`.
    Link { ino: u64, parent: u64, name: Vec<u8> },
    /// Rename (see [`rename_flags`]).
    Rename {
        parent: u64,
        name: Vec<u8>,
        new_parent: u64,
        new_name: Vec<u8>,
        flags: u32,
    },
    /// A page of a directory listing: up to `max` entries after `cookie` (from the start if
    /// `None`), with attributes if `plus`.
    ReadDir {
        dir: u64,
        cookie: Option<Vec<u8>>,
        max: u32,
        plus: bool,
    },
    /// File-system totals.
    StatFs,
    /// Set an extended attribute (see [`xattr_flags`]).
    SetXattr {
        ino: u64,
        name: Vec<u8>,
        value: Vec<u8>,
        flags: u32,
    },
    /// Value of an extended attribute.
    GetXattr { ino: u64, name: Vec<u8> },
    /// Names of the extended attributes.
    ListXattr { ino: u64 },
    /// Remove an extended attribute.
    RemoveXattr { ino: u64, name: Vec<u8> },
    /// Open `ino` for reading and/or writing; the returned handle keeps an unlinked file alive
    /// until released.
    Open {
        ino: u64,
        read: bool,
        write: bool,
        truncate: bool,
    },
    /// Release an open handle.
    Release { ino: u64, handle: u64 },
    /// Check access (see [`access`]) for the caller.
    Access { ino: u64, mask: u32 },
    /// The chunk holding chunk index `index` of `ino`, for reading.
    ChunkForRead { ino: u64, index: u64 },
    /// A chunk to write chunk index `index` of `ino` into: allocated if the slot is empty,
    /// otherwise the slot's chunk with its version bumped.
    ChunkForWrite { ino: u64, index: u64, handle: u64 },
    /// A write through `handle` ended at byte `end`: the size grows to `end` if smaller,
    /// mtime/ctime are set, and the chunk copies that acknowledged are recorded.
    WriteDone {
        ino: u64,
        handle: u64,
        end: u64,
        written: Vec<Written>,
    },
    /// Set the replication goal (copies of each chunk) of `ino`; new entries of a directory
    /// inherit its goal.
    SetGoal { ino: u64, goal: u8 },
    /// The replication goal of `ino`.
    GetGoal { ino: u64 },
    /// The first lock that conflicts with `lock` (POSIX `F_GETLK`), or none.
    GetLk { ino: u64, lock: Lock },
    /// Take or release a lock without waiting (`F_SETLK`, or `flock` when `flock` is set);
    /// `EAGAIN` if a conflicting lock is held. Blocking requests (`F_SETLKW`) are retried by
    /// the client.
    SetLk {
        ino: u64,
        handle: u64,
        lock: Lock,
        flock: bool,
    },
    /// The file was read through `handle` (open for reading by this client): atime becomes
    /// the command's time when relatime says it is due (atime not after mtime or ctime, or a
    /// day old); ctime does not change.
    Accessed { ino: u64, handle: u64 },
    /// The command's client stopped talking to the metadata tier for longer than the session
    /// timeout: close every handle it holds in the shard (deleting files that only its handles
    /// kept) and drop every lock it holds. Proposed by the shard's leader, never accepted from
    /// a client.
    EndSession,
    /// Make directory `ino` a quota root with `limit` (root only), or with `None` stop
    /// accounting for it. Making a directory a root counts what its tree holds already.
    SetQuota { ino: u64, limit: Option<QuotaLimit> },
    /// The quota of directory `ino` and what its tree uses, if it is a quota root.
    GetQuota { ino: u64 },
    /// Release several handles (inode, handle) of one shard in one command, as `Release`
    /// does each; a pair that is not one of the caller's open handles (any more) is skipped.
    ReleaseAll { handles: Vec<(u64, u64)> },
}

/// The most a quota root's tree may hold (its own inode not counted); `None`: no limit.
/// Increases past a limit fail with `EDQUOT`; decreases always succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QuotaLimit {
    /// Bytes: the sum of the sizes of the regular files.
    pub bytes: Option<u64>,
    /// Inodes of every kind.
    pub inodes: Option<u64>,
}

/// A quota root's limit and usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// The limit.
    pub limit: QuotaLimit,
    /// Bytes used.
    pub bytes: u64,
    /// Inodes used.
    pub inodes: u64,
}

/// The type of a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LockKind {
    /// Shared (read) lock.
    Read,
    /// Exclusive (write) lock.
    Write,
    /// Release.
    Unlock,
}

/// A byte-range lock (POSIX) or a whole-file lock (`flock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lock {
    /// The owner as the kernel names it (FUSE `lock_owner`), unique within a client.
    pub owner: u64,
    /// The process holding it (reported by `F_GETLK`).
    pub pid: u32,
    /// Shared, exclusive or release.
    pub kind: LockKind,
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive (`u64::MAX`: to the end of the file).
    pub end: u64,
}

impl FsOp {
    /// The operation's name: its metric label and its name in logs.
    pub fn name(&self) -> &'static str {
        match self {
            FsOp::Lookup { .. } => "lookup",
            FsOp::GetAttr { .. } => "getattr",
            FsOp::SetAttr { .. } => "setattr",
            FsOp::MkNod { .. } => "mknod",
            FsOp::MkDir { .. } => "mkdir",
            FsOp::Create { .. } => "create",
            FsOp::Unlink { .. } => "unlink",
            FsOp::RmDir { .. } => "rmdir",
            FsOp::Symlink { .. } => "symlink",
            FsOp::ReadLink { .. } => "readlink",
            FsOp::Link { .. } => "link",
            FsOp::Rename { .. } => "rename",
            FsOp::ReadDir { .. } => "readdir",
            FsOp::StatFs => "statfs",
            FsOp::SetXattr { .. } => "setxattr",
            FsOp::GetXattr { .. } => "getxattr",
            FsOp::ListXattr { .. } => "listxattr",
            FsOp::RemoveXattr { .. } => "removexattr",
            FsOp::Open { .. } => "open",
            FsOp::Release { .. } => "release",
            FsOp::Accessed { .. } => "accessed",
            FsOp::EndSession => "end_session",
            FsOp::Access { .. } => "access",
            FsOp::ChunkForRead { .. } => "chunk_for_read",
            FsOp::ChunkForWrite { .. } => "chunk_for_write",
            FsOp::WriteDone { .. } => "write_done",
            FsOp::SetGoal { .. } => "setgoal",
            FsOp::GetGoal { .. } => "getgoal",
            FsOp::GetLk { .. } => "getlk",
            FsOp::SetLk { .. } => "setlk",
            FsOp::SetQuota { .. } => "setquota",
            FsOp::GetQuota { .. } => "getquota",
            FsOp::ReleaseAll { .. } => "release_all",
        }
    }

    /// Whether the operation changes state (and so goes through raft with an idempotency key).
    pub fn is_mutation(&self) -> bool {
        !matches!(
            self,
            FsOp::Lookup { .. }
                | FsOp::GetAttr { .. }
                | FsOp::ReadLink { .. }
                | FsOp::ReadDir { .. }
                | FsOp::StatFs
                | FsOp::GetXattr { .. }
                | FsOp::ListXattr { .. }
                | FsOp::Access { .. }
                | FsOp::ChunkForRead { .. }
                | FsOp::GetGoal { .. }
                | FsOp::GetLk { .. }
                | FsOp::GetQuota { .. }
        )
    }

    /// The inode whose shard serves the operation.
    pub fn routing_ino(&self) -> u64 {
        match self {
            FsOp::Lookup { parent, .. }
            | FsOp::MkNod { parent, .. }
            | FsOp::MkDir { parent, .. }
            | FsOp::Create { parent, .. }
            | FsOp::Unlink { parent, .. }
            | FsOp::RmDir { parent, .. }
            | FsOp::Symlink { parent, .. }
            | FsOp::Link { parent, .. }
            | FsOp::Rename { parent, .. } => *parent,
            FsOp::GetAttr { ino }
            | FsOp::SetAttr { ino, .. }
            | FsOp::ReadLink { ino }
            | FsOp::SetXattr { ino, .. }
            | FsOp::GetXattr { ino, .. }
            | FsOp::ListXattr { ino }
            | FsOp::RemoveXattr { ino, .. }
            | FsOp::Open { ino, .. }
            | FsOp::Release { ino, .. }
            | FsOp::Accessed { ino, .. }
            | FsOp::Access { ino, .. }
            | FsOp::ChunkForRead { ino, .. }
            | FsOp::ChunkForWrite { ino, .. }
            | FsOp::WriteDone { ino, .. }
            | FsOp::SetGoal { ino, .. }
            | FsOp::GetGoal { ino }
            | FsOp::GetLk { ino, .. }
            | FsOp::SetLk { ino, .. }
            | FsOp::SetQuota { ino, .. }
            | FsOp::GetQuota { ino } => *ino,
            FsOp::ReadDir { dir, .. } => *dir,
            FsOp::ReleaseAll { handles } => handles.first().map_or(crdt::model::Ino::ROOT.0, |h| h.0),
            FsOp::StatFs | FsOp::EndSession => crdt::model::Ino::ROOT.0,
        }
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// The visible name (a derived name for the losers of a name conflict).
    pub name: Vec<u8>,
    /// Inode number.
    pub ino: u64,
    /// File type.
    pub kind: FileKind,
    /// Attributes, for `readdirplus`.
    pub attr: Option<Attr>,
}

/// File-system totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatFs {
    /// Block size the totals are counted in.
    pub block_size: u32,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Total inodes the metadata tier can hold.
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
    /// Longest name.
    pub name_max: u32,
}

/// A chunk of a file and where its copies live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkLocation {
    /// Chunk index within the file.
    pub index: u64,
    /// Chunk id and version, or `None` for a hole. For reading: the version the listed copies
    /// hold. For writing: the new version to write.
    pub chunk: Option<crdt::model::ChunkRef>,
    /// Chunkservers holding an up-to-date copy (for writing: the chain, in order):
    /// (chunkserver id, data address).
    pub servers: Vec<(u64, String)>,
    /// For writing: the version the listed copies hold now (0 for a new chunk); a copy moves
    /// from it (or from a later version a failed write left) to the new one.
    pub prev_version: u32,
    /// The file size, so readers know where the data ends.
    pub file_size: u64,
}

/// A chunk a write landed on: the copies that acknowledged it, at its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// Chunk index within the file.
    pub index: u64,
    /// The chunk and the version written.
    pub chunk: crdt::model::ChunkRef,
    /// Chunkservers that hold it now.
    pub servers: Vec<u64>,
}

/// The reply to an [`FsOp`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FsReply {
    /// Attributes (lookup, getattr, setattr, mknod, mkdir, symlink, link).
    Attr(Attr),
    /// A created or opened file and its handle.
    Opened { attr: Attr, handle: u64 },
    /// Success without data.
    Done,
    /// A symlink target.
    Target(Vec<u8>),
    /// A page of a directory listing; `cookie` resumes after its last entry, `None` at the end.
    Dir {
        entries: Vec<DirEntry>,
        cookie: Option<Vec<u8>>,
    },
    /// File-system totals.
    StatFs(StatFs),
    /// An extended attribute value.
    Xattr(Vec<u8>),
    /// Extended attribute names.
    XattrNames(Vec<Vec<u8>>),
    /// A chunk and its locations.
    Chunk(ChunkLocation),
    /// A replication goal.
    Goal(u8),
    /// The conflicting lock, if any, with the client holding it.
    Lock(Option<(u64, Lock)>),
    /// A directory's quota and usage (`None`: not a quota root).
    Quota(Option<Quota>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(atime: i64, mtime: i64, ctime: i64) -> Attr {
        let t = |s| FileTime::new(s, 0).unwrap();
        Attr {
            ino: 2,
            kind: FileKind::File,
            perm: 0o644,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            size: 0,
            atime: t(atime),
            mtime: t(mtime),
            ctime: t(ctime),
        }
    }

    #[test]
    fn relatime_is_due_after_a_change_or_once_a_day() {
        let now = FileTime::new(1_000_000, 0).unwrap();
        assert!(times(500, 500, 100).relatime_due(now), "atime == mtime");
        assert!(times(500, 100, 500).relatime_due(now), "atime == ctime");
        assert!(times(400, 100, 500).relatime_due(now), "atime before ctime");
        assert!(!times(999_000, 100, 500).relatime_due(now), "fresh");
        assert!(
            !times(1_000_001 - RELATIME_AGE_SECS, 100, 500).relatime_due(now),
            "a second short of a day"
        );
        assert!(
            times(1_000_000 - RELATIME_AGE_SECS, 100, 500).relatime_due(now),
            "a day old"
        );
    }
}
