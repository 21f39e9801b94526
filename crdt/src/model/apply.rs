//! Applying operations to records: the single code path for local edits and received deltas.

use crate::hlc::Timestamp;
use crate::model::delta::{Delta, Op};
use crate::model::directory::Entry;
use crate::model::inode::{Attr, Identity};
use crate::model::records::Records;
use crate::orset::Tag;
use crate::{Crdt, Dot};

/// What [`apply_delta`] did with a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The delta was joined into the state (possibly changing nothing, if already seen).
    Joined,
    /// The delta is at or below the garbage-collection floor: a duplicate, ignored.
    BelowFloor,
}

/// Joins a delta into `records`, unless it is at or below the garbage-collection floor.
pub fn apply_delta<R: Records + ?Sized>(records: &mut R, delta: &Delta) -> Applied {
    if delta.hlc <= records.floor() {
        return Applied::BelowFloor;
    }
    for op in &delta.ops {
        apply_op(records, op, delta.hlc);
    }
    Applied::Joined
}

/// Joins one operation, stamped `hlc`, into `records`.
pub fn apply_op<R: Records + ?Sized>(records: &mut R, op: &Op, hlc: Timestamp) {
    let target = op.target();
    let rec = records.inode_mut(target);
    rec.observe(hlc);
    let live_dir = rec.deleted().is_none();
    match op {
        Op::CreateInode {
            kind,
            mode,
            uid,
            gid,
            rdev,
            time,
            nlink,
            symlink,
            ..
        } => {
            rec.set_identity(Identity {
                born: hlc,
                kind: *kind,
                rdev: *rdev,
                symlink: symlink.clone(),
            });
            for attr in [
                Attr::Mode(*mode),
                Attr::Uid(*uid),
                Attr::Gid(*gid),
                Attr::Size(0),
                Attr::Atime(*time),
                Attr::Mtime(*time),
                Attr::Ctime(*time),
            ] {
                rec.set_attr(attr, hlc);
            }
            rec.raise_nlink(hlc.node(), *nlink, 0);
        }
        Op::SetAttrs { attrs, .. } => attrs.iter().for_each(|a| rec.set_attr(*a, hlc)),
        Op::Touch { time, .. } => {
            rec.set_attr(Attr::Mtime(*time), hlc);
            rec.set_attr(Attr::Ctime(*time), hlc);
        }
        Op::Nlink { inc, dec, .. } => rec.raise_nlink(hlc.node(), *inc, *dec),
        Op::SetXattr { name, value, .. } => rec.put_xattr(name.clone(), value.clone(), hlc),
        Op::SetChunk { index, chunk, .. } => rec.put_chunk(*index, *chunk, hlc),
        Op::DeleteInode { .. } => {
            rec.delete(hlc);
            records.drop_dir(target);
            records.drop_quota(target);
        }
        Op::Link {
            name,
            ino,
            counter,
            supersedes,
            ..
        } => {
            if live_dir {
                let tag = Tag {
                    dot: Dot {
                        node: hlc.node(),
                        counter: *counter,
                    },
                    at: hlc,
                };
                records.add_entry(
                    target,
                    &Entry {
                        name: name.clone(),
                        ino: *ino,
                    },
                    tag,
                    supersedes,
                );
            }
        }
        Op::Unlink { name, ino, dots, .. } => {
            if live_dir {
                records.remove_entry(
                    target,
                    &Entry {
                        name: name.clone(),
                        ino: *ino,
                    },
                    dots,
                );
            }
        }
        Op::Quota { bytes, inodes, .. } => {
            if live_dir {
                let node = hlc.node();
                let usage = records.quota_mut(target);
                usage
                    .bytes
                    .join(&crate::PnCounter::component(node, bytes.0, bytes.1));
                usage
                    .inodes
                    .join(&crate::PnCounter::component(node, inodes.0, inodes.1));
            }
        }
    }
}
