//! Replication goals: how many copies of each chunk a file keeps. New entries inherit their
//! directory's goal; 0 means "not set": the cluster default ([`DEFAULT_GOAL`]) applies.

use crdt::model::Attr as RecAttr;
use proto::{Errno, FsReply};

use crate::fs::command::{Effects, ShardCtx};
use crate::fs::node;
use crate::fs::outcome::OpResult;
use crate::fs::perm;
use crate::fs::state::FsState;
use crate::fs::tx::Tx;

/// Copies per chunk when no goal is set (storage class `default`).
pub const DEFAULT_GOAL: u8 = 2;
/// The most copies a goal may ask for.
pub const MAX_GOAL: u8 = 9;

/// Sets the goal of `ino` (the owner or root; `EINVAL` outside 1..=[`MAX_GOAL`]).
pub fn set<S: FsState>(tx: Tx<'_, S>, ino: u64, goal: u8) -> OpResult<(Effects, FsReply)> {
    if !(1..=MAX_GOAL).contains(&goal) {
        return Err(Errno::EINVAL.into());
    }
    let node = tx.node(ino)?;
    if !perm::is_root(tx.cred) && tx.cred.uid != node.rec.uid() {
        return Err(Errno::EPERM.into());
    }
    let now = tx.now;
    let (effects, _) = tx.commit_attr(node.ino, |edit| {
        edit.set_attrs(node.ino, vec![RecAttr::Goal(goal), RecAttr::Ctime(now)])
    })?;
    Ok((effects, FsReply::Goal(goal)))
}

/// The goal of `ino` (the default if none is set).
pub fn get<S: FsState>(state: &S, ctx: ShardCtx<'_>, ino: u64) -> OpResult<FsReply> {
    let node = node::load(state, ctx, ino)?;
    Ok(FsReply::Goal(effective(node.rec.goal())))
}

/// The goal that applies to a stored goal value.
pub fn effective(goal: u8) -> u8 {
    if goal == 0 { DEFAULT_GOAL } else { goal }
}
