//! A live inode as the operations see it, how it is loaded (with the shard-ownership guard),
//! and its attributes as clients see them.

use crdt::model::{FileKind, Ino, Inode, Records};
use proto::Errno;
use proto::fs::Attr;

use crate::error::StoreError;
use crate::fs::command::ShardCtx;
use crate::fs::outcome::OpResult;
use crate::fs::perm::MODE_BITS;
use crate::fs::state::FsState;

/// A live inode: created and not deleted.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its number.
    pub ino: Ino,
    /// Its type.
    pub kind: FileKind,
    /// Its record.
    pub rec: Inode,
}

impl Node {
    /// The record as a node, if it is live.
    pub fn of(ino: Ino, rec: Inode) -> Option<Node> {
        let kind = rec.kind().filter(|_| rec.is_live())?;
        Some(Node { ino, kind, rec })
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }

    /// Permission, set-id and sticky bits.
    pub fn mode(&self) -> u32 {
        self.rec.mode() & MODE_BITS
    }

    /// Its attributes.
    pub fn attr(&self) -> Attr {
        let identity = self.rec.identity();
        let rdev = identity.map_or(0, |i| i.rdev);
        // A symlink's size is the length of its target, as stat(2) reports it.
        let size = match identity.and_then(|i| i.symlink.as_deref()) {
            Some(target) => target.len() as u64,
            None => self.rec.size(),
        };
        Attr {
            ino: self.ino.0,
            kind: self.kind,
            perm: self.mode(),
            nlink: self.rec.nlink(),
            uid: self.rec.uid(),
            gid: self.rec.gid(),
            rdev,
            size,
            atime: self.rec.atime(),
            mtime: self.rec.mtime(),
            ctime: self.rec.ctime(),
        }
    }
}

/// Whether this shard owns `ino`.
pub fn owned(ctx: ShardCtx<'_>, ino: u64) -> bool {
    ctx.table.shard_of_id(ino).id == ctx.shard
}

/// The live inode `ino`, whoever owns it (callers check ownership).
pub fn live<S: FsState>(state: &S, ino: Ino) -> Result<Option<Node>, StoreError> {
    Ok(state.inode(ino)?.and_then(|rec| Node::of(ino, rec)))
}

/// Loads live inode `ino`: `EXDEV` if another shard owns it (cross-shard operations come with
/// transactions), `ENOENT` if it does not exist.
pub fn load<S: FsState>(state: &S, ctx: ShardCtx<'_>, ino: u64) -> OpResult<Node> {
    if !owned(ctx, ino) {
        return Err(Errno::EXDEV.into());
    }
    Ok(live(state, Ino(ino))?.ok_or(Errno::ENOENT)?)
}

/// Loads directory `ino`: as [`load`], and `ENOTDIR` if it is not a directory.
pub fn load_dir<S: FsState>(state: &S, ctx: ShardCtx<'_>, ino: u64) -> OpResult<Node> {
    let node = load(state, ctx, ino)?;
    if !node.is_dir() {
        return Err(Errno::ENOTDIR.into());
    }
    Ok(node)
}

/// The deepest tree a walk up the parent chain follows before calling it a loop.
const MAX_DEPTH: usize = 1 << 16;

/// Calls `visit` on `dir` and then on each directory above it (each one's parent, up to the
/// root or the first that is not live here) while it returns `true`; `ELOOP` if the walk does
/// not end.
pub fn walk_up<S: FsState>(
    state: &S,
    dir: Ino,
    mut visit: impl FnMut(Ino) -> OpResult<bool>,
) -> OpResult<()> {
    let mut at = dir;
    for _ in 0..MAX_DEPTH {
        if !visit(at)? {
            return Ok(());
        }
        let up = live(state, at)?.map_or(Ino(0), |n| n.rec.parent());
        if at == Ino::ROOT || up == Ino(0) || up == at {
            return Ok(());
        }
        at = up;
    }
    Err(Errno::ELOOP.into())
}

/// Whether `ancestor` is `dir` or one of its ancestors.
pub fn is_ancestor<S: FsState>(state: &S, ancestor: Ino, dir: Ino) -> OpResult<bool> {
    let mut found = false;
    walk_up(state, dir, |at| {
        found = at == ancestor;
        Ok(!found)
    })?;
    Ok(found)
}

/// The attributes of `ino` as `records` hold them (after an edit), if it is live.
pub fn attr_in<R: Records>(records: &mut R, ino: Ino) -> Option<Attr> {
    let rec = records.inode(ino)?.clone();
    Node::of(ino, rec).map(|n| n.attr())
}

#[cfg(test)]
pub(crate) mod tests {
    use crdt::model::{FileTime, Namespace, NewInode};
    use crdt::{NodeId, Timestamp};
    use uuid::Uuid;

    use super::*;

    /// A node of `kind` with `mode`, owned by `uid`:`gid`.
    pub(crate) fn node(kind: FileKind, mode: u32, uid: u32, gid: u32) -> Node {
        let mut ns = Namespace::new();
        let mut edit = ns.edit(Timestamp::new(1, 0, NodeId(1)), Uuid::nil()).unwrap();
        let time = FileTime::new(1, 0).unwrap();
        edit.create(
            Ino(7),
            NewInode {
                kind,
                mode,
                uid,
                gid,
                rdev: 0,
                time,
                nlink: 1,
                symlink: None,
            },
        );
        Node::of(Ino(7), ns.inode(Ino(7)).unwrap().clone()).unwrap()
    }
}
