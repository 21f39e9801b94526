//! Making deltas: an [`Edit`] applies each mutation to the records at once (so later
//! mutations of the same edit see it) and accumulates the operations into one [`Delta`].

use uuid::Uuid;

use crate::dot::Dot;
use crate::hlc::Timestamp;
use crate::model::apply::apply_op;
use crate::model::delta::{Delta, Op};
use crate::model::directory::Entry;
use crate::model::inode::{Attr, ChunkRef, FileKind, FileTime, Ino};
use crate::model::name::Name;
use crate::model::records::Records;

/// An edit stamped at or below the garbage-collection floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("edit stamp {hlc:?} is not above the garbage-collection floor {floor:?}; the clock is behind")]
pub struct StaleStamp {
    /// The refused stamp.
    pub hlc: Timestamp,
    /// The floor.
    pub floor: Timestamp,
}

/// The attributes of a new inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInode {
    /// File type.
    pub kind: FileKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number (devices only).
    pub rdev: u64,
    /// Initial atime, mtime and ctime.
    pub time: FileTime,
    /// Initial link count (1 for files, 2 for directories).
    pub nlink: u64,
    /// Symlink target.
    pub symlink: Option<Box<[u8]>>,
}

/// An edit in progress over some [`Records`].
///
/// Within one edit each register should be written at most once: all writes of an edit share
/// one stamp, so two writes to one register would be ordered by value, not by call.
#[derive(Debug)]
pub struct Edit<'a, R: Records + ?Sized> {
    records: &'a mut R,
    delta: Delta,
}

impl<'a, R: Records + ?Sized> Edit<'a, R> {
    /// Starts an edit stamped `hlc` (a fresh timestamp from the origin's clock) whose delta
    /// will carry `id`. A stamp at or below the garbage-collection floor is refused: replicas
    /// would drop such a delta as a duplicate.
    pub fn new(records: &'a mut R, hlc: Timestamp, id: Uuid) -> Result<Self, StaleStamp> {
        let floor = records.floor();
        if hlc <= floor {
            return Err(StaleStamp { hlc, floor });
        }
        Ok(Edit {
            records,
            delta: Delta {
                id,
                hlc,
                ops: Vec::new(),
            },
        })
    }

    /// The stamp of this edit.
    pub fn hlc(&self) -> Timestamp {
        self.delta.hlc
    }

    /// The records as changed so far.
    pub fn records(&mut self) -> &mut R {
        self.records
    }

    /// Creates inode `ino`.
    pub fn create(&mut self, ino: Ino, new: NewInode) {
        let NewInode {
            kind,
            mode,
            uid,
            gid,
            rdev,
            time,
            nlink,
            symlink,
        } = new;
        self.push(Op::CreateInode {
            ino,
            kind,
            mode,
            uid,
            gid,
            rdev,
            time,
            nlink,
            symlink,
        });
    }

    /// Writes attributes of `ino`.
    pub fn set_attrs(&mut self, ino: Ino, attrs: Vec<Attr>) {
        self.push(Op::SetAttrs { ino, attrs });
    }

    /// Sets mtime and ctime of `ino` to `time`.
    pub fn touch(&mut self, ino: Ino, time: FileTime) {
        self.push(Op::Touch { ino, time });
    }

    /// Adds `delta` (possibly negative) to the link count of `ino`.
    pub fn add_links(&mut self, ino: Ino, delta: i64) {
        let origin = self.delta.origin();
        let mut counter = self
            .records
            .inode(ino)
            .map(|r| r.nlink_counter().clone())
            .unwrap_or_default();
        counter.add(origin, delta);
        let (inc, dec) = counter.of(origin);
        self.push(Op::Nlink { ino, inc, dec });
    }

    /// Adds the entry `name → ino` to directory `dir`.
    pub fn link(&mut self, dir: Ino, name: Name, ino: Ino) {
        let entry = Entry { name, ino };
        let counter = self
            .records
            .dir_context(dir)
            .next_dot(self.delta.origin())
            .counter;
        let supersedes = dots(&self.records.entry_tags(dir, &entry));
        let Entry { name, ino } = entry;
        self.push(Op::Link {
            dir,
            name,
            ino,
            counter,
            supersedes,
        });
    }

    /// Removes the entry `name → ino` from directory `dir`; no-op if it is absent.
    pub fn unlink(&mut self, dir: Ino, name: Name, ino: Ino) {
        let entry = Entry { name, ino };
        let observed = dots(&self.records.entry_tags(dir, &entry));
        if !observed.is_empty() {
            let Entry { name, ino } = entry;
            self.push(Op::Unlink {
                dir,
                name,
                ino,
                dots: observed,
            });
        }
    }

    /// Sets (or with `None` removes) extended attribute `name` of `ino`.
    pub fn set_xattr(&mut self, ino: Ino, name: Box<[u8]>, value: Option<Box<[u8]>>) {
        self.push(Op::SetXattr { ino, name, value });
    }

    /// Points chunk slot `index` of `ino` at `chunk` (or clears it).
    pub fn set_chunk(&mut self, ino: Ino, index: u64, chunk: Option<ChunkRef>) {
        self.push(Op::SetChunk { ino, index, chunk });
    }

    /// Deletes `ino`.
    pub fn delete(&mut self, ino: Ino) {
        self.push(Op::DeleteInode { ino });
    }

    /// Charges `bytes` and `inodes` (possibly negative) to quota root `root`.
    pub fn charge_quota(&mut self, root: Ino, bytes: i64, inodes: i64) {
        let origin = self.delta.origin();
        let mut usage = self.records.quota(root).cloned().unwrap_or_default();
        usage.bytes.add(origin, bytes);
        usage.inodes.add(origin, inodes);
        self.push(Op::Quota {
            root,
            bytes: usage.bytes.of(origin),
            inodes: usage.inodes.of(origin),
        });
    }

    /// Whether no operation was recorded.
    pub fn is_empty(&self) -> bool {
        self.delta.ops.is_empty()
    }

    /// Ends the edit and returns its delta.
    pub fn finish(self) -> Delta {
        self.delta
    }

    fn push(&mut self, op: Op) {
        apply_op(self.records, &op, self.delta.hlc);
        self.delta.ops.push(op);
    }
}

fn dots(tags: &[crate::orset::Tag]) -> Vec<Dot> {
    tags.iter().map(|t| t.dot).collect()
}
