//! Executing mutations: [`execute`] dispatches a committed command to its operation in
//! [`super::ops`], and [`bootstrap_root`] creates the root directory.
//!
//! Every operation checks first and changes after, so a POSIX failure returns
//! [`Effects::default`]: nothing changes, not even the shard's counters. A store error from
//! any read is returned as is: it stops the shard.

use crdt::Timestamp;
use crdt::model::{Attr as RecAttr, FileKind, FileTime, Ino, NewInode};
use proto::fs::{Cred, FsOp};
use proto::{Errno, FsReply};
use uuid::Uuid;

use crate::error::StoreError;
use crate::fs::command::{Command, Effects, ShardCtx};
use crate::fs::node;
use crate::fs::ops::{
    atime, chunk, create, goal, lock, open, quota, remove, rename, session, setattr, xattr,
};
use crate::fs::outcome::{OpResult, split};
use crate::fs::state::FsState;
use crate::fs::tx::Tx;

/// Executes a mutation. Read-only operations do not go through the log: `EINVAL`.
pub fn execute<S: FsState>(
    state: &S,
    ctx: ShardCtx<'_>,
    cmd: &Command,
) -> Result<(Effects, Result<FsReply, Errno>), StoreError> {
    let tx = Tx::new(state, ctx, cmd)?;
    Ok(match split(dispatch(tx, &cmd.op))? {
        Ok((effects, reply)) => (effects, Ok(reply)),
        Err(errno) => (Effects::default(), Err(errno)),
    })
}

fn dispatch<S: FsState>(tx: Tx<'_, S>, op: &FsOp) -> OpResult<(Effects, FsReply)> {
    match op {
        FsOp::MkNod {
            parent,
            name,
            kind,
            mode,
            rdev,
        } => create::mknod(tx, *parent, name, *kind, *mode, *rdev),
        FsOp::MkDir { parent, name, mode } => create::mkdir(tx, *parent, name, *mode),
        FsOp::Create {
            parent,
            name,
            mode,
            exclusive,
            read,
            write,
        } => create::create(tx, *parent, name, *mode, *exclusive, *read, *write),
        FsOp::Symlink { parent, name, target } => create::symlink(tx, *parent, name, target),
        FsOp::Link { ino, parent, name } => create::link(tx, *ino, *parent, name),
        FsOp::Unlink { parent, name } => remove::unlink(tx, *parent, name),
        FsOp::RmDir { parent, name } => remove::rmdir(tx, *parent, name),
        FsOp::Rename {
            parent,
            name,
            new_parent,
            new_name,
            flags,
        } => rename::rename(tx, *parent, name, *new_parent, new_name, *flags),
        FsOp::SetAttr { ino, set } => setattr::setattr(tx, *ino, set),
        FsOp::SetXattr {
            ino,
            name,
            value,
            flags,
        } => xattr::set(tx, *ino, name, value, *flags),
        FsOp::RemoveXattr { ino, name } => xattr::remove(tx, *ino, name),
        FsOp::Open {
            ino,
            read,
            write,
            truncate,
        } => open::open(tx, *ino, *read, *write, *truncate),
        FsOp::Release { ino, handle } => open::release(tx, *ino, *handle),
        FsOp::ReleaseAll { handles } => open::release_all(tx, handles),
        FsOp::EndSession => session::end(tx),
        FsOp::Accessed { ino, handle } => atime::accessed(tx, *ino, *handle),
        FsOp::ChunkForWrite { ino, index, handle } => chunk::for_write(tx, *ino, *index, *handle),
        FsOp::WriteDone {
            ino,
            handle,
            end,
            written,
        } => chunk::write_done(tx, *ino, *handle, *end, written),
        FsOp::SetGoal { ino, goal } => goal::set(tx, *ino, *goal),
        FsOp::SetQuota { ino, limit } => quota::set(tx, *ino, *limit),
        FsOp::SetLk {
            ino,
            handle,
            lock,
            flock,
        } => lock::set(tx, *ino, *handle, *lock, *flock),
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
        | FsOp::GetQuota { .. } => Err(Errno::EINVAL.into()),
    }
}

/// Creates the root directory (mode 0755, owned by root, its own parent) if this shard owns
/// it and it does not exist yet; otherwise changes nothing.
pub fn bootstrap_root<S: FsState>(
    state: &S,
    ctx: ShardCtx<'_>,
    stamp: Timestamp,
    now: FileTime,
    delta_id: Uuid,
) -> Result<Effects, StoreError> {
    if !node::owned(ctx, Ino::ROOT.0) || node::live(state, Ino::ROOT)?.is_some() {
        return Ok(Effects::default());
    }
    let root = Cred::root();
    let mut tx = Tx::start(state, ctx, &root, 0, now, stamp, delta_id)?;
    tx.count_created();
    let (effects, ()) = tx.commit(|edit| {
        let dir = NewInode {
            kind: FileKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            rdev: 0,
            time: now,
            nlink: 2,
            symlink: None,
        };
        edit.create(Ino::ROOT, dir);
        edit.set_attrs(Ino::ROOT, vec![RecAttr::Parent(Ino::ROOT)]);
    })?;
    Ok(effects)
}
