//! Read-only operations: [`read`] dispatches to [`super::ops`]. Nothing here changes state,
//! so any replica that has caught up may answer.

use proto::fs::{Cred, FsOp};
use proto::{Errno, FsReply};

use crate::error::StoreError;
use crate::fs::command::ShardCtx;
use crate::fs::ops::{chunk, goal, lock, lookup, quota, readdir, xattr};
use crate::fs::outcome::{OpResult, split};
use crate::fs::state::FsState;

/// Serves a read-only operation for `client`. Mutations go through the log: `EINVAL`.
pub fn read<S: FsState>(
    state: &S,
    ctx: ShardCtx<'_>,
    client: u64,
    cred: &Cred,
    op: &FsOp,
) -> Result<Result<FsReply, Errno>, StoreError> {
    split(serve(state, ctx, client, cred, op))
}

fn serve<S: FsState>(state: &S, ctx: ShardCtx<'_>, client: u64, cred: &Cred, op: &FsOp) -> OpResult<FsReply> {
    match op {
        FsOp::Lookup { parent, name } => lookup::lookup(state, ctx, cred, *parent, name),
        FsOp::GetAttr { ino } => lookup::getattr(state, ctx, *ino),
        FsOp::ReadLink { ino } => lookup::readlink(state, ctx, *ino),
        FsOp::Access { ino, mask } => lookup::check_access(state, ctx, cred, *ino, *mask),
        FsOp::StatFs => lookup::statfs(state),
        FsOp::ReadDir {
            dir,
            cookie,
            max,
            plus,
        } => readdir::readdir(state, ctx, cred, *dir, cookie.as_deref(), *max, *plus),
        FsOp::GetXattr { ino, name } => xattr::get(state, ctx, cred, *ino, name),
        FsOp::ListXattr { ino } => xattr::list(state, ctx, cred, *ino),
        FsOp::ChunkForRead { ino, index } => chunk::for_read(state, ctx, *ino, *index),
        FsOp::GetGoal { ino } => goal::get(state, ctx, *ino),
        FsOp::GetLk { ino, lock } => lock::get(state, ctx, client, *ino, *lock),
        FsOp::GetQuota { ino } => quota::get(state, ctx, *ino),
        FsOp::SetAttr { .. }
        | FsOp::MkNod { .. }
        | FsOp::MkDir { .. }
        | FsOp::Create { .. }
        | FsOp::Unlink { .. }
        | FsOp::RmDir { .. }
        | FsOp::Symlink { .. }
        | FsOp::Link { .. }
        | FsOp::Rename { .. }
        | FsOp::SetXattr { .. }
        | FsOp::RemoveXattr { .. }
        | FsOp::Open { .. }
        | FsOp::Release { .. }
        | FsOp::Accessed { .. }
        | FsOp::EndSession
        | FsOp::ChunkForWrite { .. }
        | FsOp::WriteDone { .. }
        | FsOp::SetGoal { .. }
        | FsOp::SetLk { .. }
        | FsOp::SetQuota { .. }
        | FsOp::ReleaseAll { .. } => Err(Errno::EINVAL.into()),
    }
}
