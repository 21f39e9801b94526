//! The inode record: identity fixed at creation, attributes as LWW registers, the link count
//! as a PN-counter, extended attributes and the chunk table as LWW maps.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Crdt;
use crate::counter::PnCounter;
use crate::dot::NodeId;
use crate::hlc::Timestamp;
use crate::lww::{Lww, LwwMap};

/// An inode number. Ids are allocated without coordination (they carry their allocator), so an
/// id is never created twice.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Ino(pub u64);

impl Ino {
    /// The root directory.
    pub const ROOT: Ino = Ino(1);
}

impl fmt::Debug for Ino {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ino:{:#x}", self.0)
    }
}

/// The type of a file, fixed when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A character device.
    CharDev,
    /// A block device.
    BlockDev,
}

/// A point in time with nanosecond precision, as POSIX `struct timespec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "(i64, u32)", into = "(i64, u32)")]
pub struct FileTime {
    secs: i64,
    nanos: u32,
}

/// A [`FileTime`] whose nanoseconds are out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("nanoseconds {0} out of range (must be below 1e9)")]
pub struct BadNanos(pub u32);

impl FileTime {
    /// A time `secs` seconds and `nanos` nanoseconds after the Unix epoch.
    pub fn new(secs: i64, nanos: u32) -> Result<Self, BadNanos> {
        if nanos >= 1_000_000_000 {
            return Err(BadNanos(nanos));
        }
        Ok(FileTime { secs, nanos })
    }

    /// Seconds since the epoch (negative before 1970).
    pub fn secs(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    pub fn nanos(&self) -> u32 {
        self.nanos
    }
}

impl TryFrom<(i64, u32)> for FileTime {
    type Error = BadNanos;
    fn try_from((s, n): (i64, u32)) -> Result<Self, BadNanos> {
        FileTime::new(s, n)
    }
}

impl From<FileTime> for (i64, u32) {
    fn from(t: FileTime) -> (i64, u32) {
        (t.secs, t.nanos)
    }
}

/// Where a chunk of a file lives: the chunk id and the version the data servers must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChunkRef {
    /// Cluster-unique chunk id.
    pub id: u64,
    /// Bumped on every write or truncate that changes the chunk.
    pub version: u32,
}

/// What is fixed when an inode is created. Two creates of one id cannot happen (ids are
/// unique); if a bug made them, the larger identity wins so replicas still agree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identity {
    /// The HLC stamp of the create.
    pub born: Timestamp,
    /// File type.
    pub kind: FileKind,
    /// Device number for character and block devices.
    pub rdev: u64,
    /// Target of a symbolic link.
    pub symlink: Option<Box<[u8]>>,
}

/// One attribute write. Each attribute is its own register, so a `chmod` and a concurrent
/// `chown` both take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attr {
    /// Permission bits and the set-id and sticky bits (the file type is not stored here).
    Mode(u32),
    /// Owner.
    Uid(u32),
    /// Group.
    Gid(u32),
    /// Size in bytes.
    Size(u64),
    /// Last access.
    Atime(FileTime),
    /// Last content change.
    Mtime(FileTime),
    /// Last status change.
    Ctime(FileTime),
    /// The directory containing a directory (directories have exactly one parent).
    Parent(Ino),
    /// The replication goal: copies of each chunk of a file; a directory hands it to new
    /// entries (0: not set, the cluster default applies).
    Goal(u8),
}

/// The replicated state of one inode.
///
/// A record can exist before its create arrives (an attribute write delivered first); such a
/// record has no [`Identity`] and is not visible. Deletion is absorbing: once deleted, every
/// field is cleared and later writes are ignored until the tombstone is collected.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Inode {
    identity: Option<Identity>,
    mode: Lww<u32>,
    uid: Lww<u32>,
    gid: Lww<u32>,
    size: Lww<u64>,
    atime: Lww<FileTime>,
    mtime: Lww<FileTime>,
    ctime: Lww<FileTime>,
    parent: Lww<Ino>,
    goal: Lww<u8>,
    nlink: PnCounter,
    xattrs: LwwMap<Box<[u8]>, Box<[u8]>>,
    chunks: LwwMap<u64, ChunkRef>,
    deleted: Option<Timestamp>,
    seen: Timestamp,
}

impl Inode {
    /// The identity, once the create has been applied.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// File type, once created.
    pub fn kind(&self) -> Option<FileKind> {
        self.identity.as_ref().map(|i| i.kind)
    }

    /// Permission bits.
    pub fn mode(&self) -> u32 {
        *self.mode.get()
    }

    /// Owner.
    pub fn uid(&self) -> u32 {
        *self.uid.get()
    }

    /// Group.
    pub fn gid(&self) -> u32 {
        *self.gid.get()
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        *self.size.get()
    }

    /// Last access time.
    pub fn atime(&self) -> FileTime {
        *self.atime.get()
    }

    /// Last modification time.
    pub fn mtime(&self) -> FileTime {
        *self.mtime.get()
    }

    /// Last status change time.
    pub fn ctime(&self) -> FileTime {
        *self.ctime.get()
    }

    /// The parent of a directory (the root is its own); for other kinds, the directory the
    /// inode was created in or last moved into, which the metadata server uses to place it
    /// in quota trees ([`Ino`] 0 if never recorded).
    pub fn parent(&self) -> Ino {
        *self.parent.get()
    }

    /// The replication goal (0: not set).
    pub fn goal(&self) -> u8 {
        *self.goal.get()
    }

    /// Number of directory entries referring to the inode (a directory counts `.` and its
    /// subdirectories' `..` as POSIX does). Never negative.
    pub fn nlink(&self) -> u64 {
        self.nlink.value().max(0).unsigned_abs()
    }

    /// The link-count counter itself.
    pub fn nlink_counter(&self) -> &PnCounter {
        &self.nlink
    }

    /// Extended attributes.
    pub fn xattrs(&self) -> &LwwMap<Box<[u8]>, Box<[u8]>> {
        &self.xattrs
    }

    /// The chunk table: chunk index within the file to chunk.
    pub fn chunks(&self) -> &LwwMap<u64, ChunkRef> {
        &self.chunks
    }

    /// When the inode was deleted, if it was.
    pub fn deleted(&self) -> Option<Timestamp> {
        self.deleted
    }

    /// Whether the inode exists: created and not deleted.
    pub fn is_live(&self) -> bool {
        self.identity.is_some() && self.deleted.is_none()
    }

    /// The newest stamp of any operation applied to the inode or, for a directory, to its
    /// entries. Garbage collection uses it to retire records whose create was collected.
    pub fn seen(&self) -> Timestamp {
        self.seen
    }

    pub(crate) fn observe(&mut self, ts: Timestamp) {
        self.seen = self.seen.max(ts);
    }

    pub(crate) fn set_identity(&mut self, identity: Identity) {
        if !self.absorbed() && self.identity.as_ref().is_none_or(|mine| identity > *mine) {
            self.identity = Some(identity);
        }
    }

    pub(crate) fn set_attr(&mut self, attr: Attr, ts: Timestamp) {
        if self.absorbed() {
            return;
        }
        match attr {
            Attr::Mode(v) => self.mode.join(&Lww::new(ts, v)),
            Attr::Uid(v) => self.uid.join(&Lww::new(ts, v)),
            Attr::Gid(v) => self.gid.join(&Lww::new(ts, v)),
            Attr::Size(v) => self.size.join(&Lww::new(ts, v)),
            Attr::Atime(v) => self.atime.join(&Lww::new(ts, v)),
            Attr::Mtime(v) => self.mtime.join(&Lww::new(ts, v)),
            Attr::Ctime(v) => self.ctime.join(&Lww::new(ts, v)),
            Attr::Parent(v) => self.parent.join(&Lww::new(ts, v)),
            Attr::Goal(v) => self.goal.join(&Lww::new(ts, v)),
        }
    }

    pub(crate) fn raise_nlink(&mut self, node: NodeId, inc: u64, dec: u64) {
        if !self.absorbed() {
            self.nlink.raise(node, inc, dec);
        }
    }

    pub(crate) fn put_xattr(&mut self, name: Box<[u8]>, value: Option<Box<[u8]>>, ts: Timestamp) {
        if !self.absorbed() {
            self.xattrs.join_register(name, &Lww::new(ts, value));
        }
    }

    pub(crate) fn put_chunk(&mut self, index: u64, chunk: Option<ChunkRef>, ts: Timestamp) {
        if !self.absorbed() {
            self.chunks.join_register(index, &Lww::new(ts, chunk));
        }
    }

    pub(crate) fn delete(&mut self, ts: Timestamp) {
        self.deleted = self.deleted.max(Some(ts));
        self.clear_if_deleted();
    }

    pub(crate) fn collect_garbage(&mut self, stable: Timestamp) {
        self.xattrs.collect_garbage(stable);
        self.chunks.collect_garbage(stable);
    }

    /// Restores the invariant that a deleted inode holds only its tombstone.
    pub(crate) fn normalize(&mut self) {
        self.clear_if_deleted();
    }

    fn absorbed(&self) -> bool {
        self.deleted.is_some()
    }

    fn clear_if_deleted(&mut self) {
        if let Some(ts) = self.deleted {
            *self = Inode {
                deleted: Some(ts),
                seen: self.seen,
                ..Inode::default()
            };
        }
    }
}

impl Crdt for Inode {
    fn join(&mut self, other: &Self) {
        self.seen = self.seen.max(other.seen);
        self.deleted = self.deleted.max(other.deleted);
        if self.absorbed() {
            self.clear_if_deleted();
            return;
        }
        if let Some(id) = &other.identity {
            self.set_identity(id.clone());
        }
        self.mode.join(&other.mode);
        self.uid.join(&other.uid);
        self.gid.join(&other.gid);
        self.size.join(&other.size);
        self.atime.join(&other.atime);
        self.mtime.join(&other.mtime);
        self.ctime.join(&other.ctime);
        self.parent.join(&other.parent);
        self.goal.join(&other.goal);
        self.nlink.join(&other.nlink);
        self.xattrs.join(&other.xattrs);
        self.chunks.join(&other.chunks);
    }
}
