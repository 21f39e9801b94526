//! Questions about single inodes: lookup, getattr, readlink, access, and the file-system
//! totals.

use crdt::model::Ino;
use proto::fs::{Cred, StatFs, access};
use proto::{Errno, FsReply};
use shardmap::ids::MAX_COUNTER;

use crate::fs::command::ShardCtx;
use crate::fs::entries::Entries;
use crate::fs::names::{self, Component};
use crate::fs::node::{self, Node};
use crate::fs::outcome::OpResult;
use crate::fs::perm;
use crate::fs::state::FsState;

/// Block size the totals are counted in.
const BLOCK_SIZE: u32 = 4096;

/// Resolves `name` in `parent` (search permission needed: `EACCES`). `.` is the directory,
/// `..` its parent (the root's is the root); other names resolve under the name-conflict
/// rule, derived names included.
pub fn lookup<S: FsState>(
    state: &S,
    ctx: ShardCtx<'_>,
    cred: &Cred,
    parent: u64,
    name: &[u8],
) -> OpResult<FsReply> {
    let dir = node::load_dir(state, ctx, parent)?;
    perm::check(cred, &dir, access::X)?;
    let found = match names::component(name)? {
        Component::Dot => return Ok(FsReply::Attr(dir.attr())),
        Component::DotDot => parent_of(&dir),
        Component::Name(name) => {
            Entries::new(state, dir.ino)
                .resolve(&name)?
                .ok_or(Errno::ENOENT)?
                .ino
        }
    };
    Ok(FsReply::Attr(node::load(state, ctx, found.0)?.attr()))
}

/// The parent of directory `dir`: the root is its own.
pub fn parent_of(dir: &Node) -> Ino {
    if dir.ino == Ino::ROOT {
        Ino::ROOT
    } else {
        dir.rec.parent()
    }
}

/// The attributes of `ino`.
pub fn getattr<S: FsState>(state: &S, ctx: ShardCtx<'_>, ino: u64) -> OpResult<FsReply> {
    Ok(FsReply::Attr(node::load(state, ctx, ino)?.attr()))
}

/// The target of symlink `ino` (`EINVAL` for other types).
pub fn readlink<S: FsState>(state: &S, ctx: ShardCtx<'_>, ino: u64) -> OpResult<FsReply> {
    let node = node::load(state, ctx, ino)?;
    let target = node
        .rec
        .identity()
        .and_then(|i| i.symlink.as_deref())
        .ok_or(Errno::EINVAL)?;
    Ok(FsReply::Target(target.to_vec()))
}

/// Whether `cred` has the [`access`] bits of `mask` on `ino` (0 asks only whether it exists;
/// other bits are `EINVAL`).
pub fn check_access<S: FsState>(
    state: &S,
    ctx: ShardCtx<'_>,
    cred: &Cred,
    ino: u64,
    mask: u32,
) -> OpResult<FsReply> {
    if mask & !(access::R | access::W | access::X) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let node = node::load(state, ctx, ino)?;
    perm::check(cred, &node, mask)?;
    Ok(FsReply::Done)
}

/// Space from the chunkservers' capacity; inodes from this shard's live count and the ids
/// it has left.
pub fn statfs<S: FsState>(state: &S) -> OpResult<FsReply> {
    let (total, used) = state.capacity()?;
    let meta = state.meta()?;
    let files_free = (MAX_COUNTER + 1).saturating_sub(meta.next_ino);
    let blocks = |bytes: u64| bytes / u64::from(BLOCK_SIZE);
    Ok(FsReply::StatFs(StatFs {
        block_size: BLOCK_SIZE,
        blocks: blocks(total),
        blocks_free: blocks(total.saturating_sub(used)),
        files: meta.live_inodes.saturating_add(files_free),
        files_free,
        name_max: crdt::model::NAME_MAX as u32,
    }))
}
