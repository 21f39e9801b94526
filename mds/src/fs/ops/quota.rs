//! Directory quotas. A quota root's tree (the root's own inode not counted) may hold at most
//! so many bytes (the sizes of its regular files) and inodes. Each root's usage is a
//! PN-counter (`crdt::model::QuotaUsage`) charged by the command that changes it: a create
//! (+1 inode), the removal of an inode's last link (−1 inode, −its size), a size change of a
//! linked regular file. An increase past a limit fails with `EDQUOT`, whoever asks; decreases
//! never fail. Roots nest: a change counts in every root above it.
//!
//! The roots an inode counts in are found up its parent chain: a directory's parent, and for
//! other kinds the directory it was created in or last moved into (its *home*). All names of
//! an inode stay under the same roots: a link or a rename that would change them fails with
//! `EXDEV`, as with XFS project quotas (`mv` then copies). When the name in an inode's home goes
//! and other names remain, its home becomes the nearest root above that directory, or the root
//! directory ([`anchor`]), which keeps its roots and cannot be removed while it has names below.

use std::collections::BTreeMap;

use crdt::model::{Attr as RecAttr, FileKind, Ino};
use proto::fs::{Quota, QuotaLimit};
use proto::{Errno, FsReply};

use crate::fs::command::{Effects, ShardCtx};
use crate::fs::node::{self, Node};
use crate::fs::outcome::OpResult;
use crate::fs::perm;
use crate::fs::state::FsState;
use crate::fs::tx::Tx;

/// Quota roots with their limits, nearest first.
pub type Roots = Vec<(Ino, QuotaLimit)>;

/// Entries read per page when walking a tree.
const PAGE: usize = 1024;

/// The roots a new entry of `dir` counts in: `dir` and the directories above it that are
/// quota roots.
pub fn roots_below<S: FsState>(state: &S, ctx: ShardCtx<'_>, dir: &Node) -> OpResult<Roots> {
    let mut roots = Roots::new();
    if !state.has_quotas()? {
        return Ok(roots);
    }
    node::walk_up(state, dir.ino, |at| {
        if let Some(limit) = state.quota_limit(at)? {
            roots.push((at, limit));
        }
        // The tree stays on one shard: nothing above a foreign directory counts here.
        Ok(node::owned(ctx, at.0))
    })?;
    Ok(roots)
}

/// The roots `node` counts in: those of its home (its parent; the root directory for an
/// inode whose home was never recorded).
pub fn roots_of<S: FsState>(state: &S, ctx: ShardCtx<'_>, node: &Node) -> OpResult<Roots> {
    if !state.has_quotas()? {
        return Ok(Roots::new());
    }
    match home(state, ctx, node)? {
        Some(dir) => roots_below(state, ctx, &dir),
        None => Ok(Roots::new()),
    }
}

/// The directory whose roots `node` counts in.
fn home<S: FsState>(state: &S, ctx: ShardCtx<'_>, node: &Node) -> OpResult<Option<Node>> {
    for ino in [node.rec.parent(), Ino::ROOT] {
        if ino != Ino(0)
            && node::owned(ctx, ino.0)
            && let Some(dir) = node::live(state, ino)?.filter(Node::is_dir)
        {
            return Ok(Some(dir));
        }
    }
    Ok(None)
}

/// The home for an inode whose name in `dir` goes while others remain: the nearest root at
/// or above `dir`, or the root directory. Its roots are those of `dir`.
pub fn anchor<S: FsState>(state: &S, ctx: ShardCtx<'_>, dir: &Node) -> OpResult<Ino> {
    Ok(roots_below(state, ctx, dir)?.first().map_or(Ino::ROOT, |r| r.0))
}

/// Whether two sets of roots are the same (each root determines the ones above it).
pub fn same(a: &Roots, b: &Roots) -> bool {
    a.first().map(|r| r.0) == b.first().map(|r| r.0)
}

/// Checks that `node` may get a name in `dir` without changing its roots (`EXDEV`).
pub fn check_move<S: FsState>(state: &S, ctx: ShardCtx<'_>, node: &Node, dir: &Node) -> OpResult<()> {
    if !state.has_quotas()? || same(&roots_of(state, ctx, node)?, &roots_below(state, ctx, dir)?) {
        return Ok(());
    }
    Err(Errno::EXDEV.into())
}

/// The bytes `node` counts for: the size of a regular file.
pub fn bytes_of(node: &Node) -> i64 {
    match node.kind {
        FileKind::File => i64::try_from(node.rec.size()).unwrap_or(i64::MAX),
        _ => 0,
    }
}

/// Whether adding `add` to `used` passes `limit` (only increases can).
pub fn exceeds(limit: Option<u64>, used: i64, add: i64) -> bool {
    add > 0 && limit.is_some_and(|l| i128::from(used) + i128::from(add) > i128::from(l))
}

/// Charges a size change of regular file `node` from its size to `size` to its roots, if it
/// still has a name (an unlinked file no longer counts).
pub fn resize<S: FsState>(tx: &mut Tx<'_, S>, node: &Node, size: u64) -> OpResult<()> {
    if node.rec.nlink() == 0 {
        return Ok(());
    }
    let roots = roots_of(tx.state, tx.ctx, node)?;
    let delta = i128::from(size) - i128::from(node.rec.size());
    let delta = delta.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    tx.charge(&roots, delta, 0)
}

/// Makes directory `ino` a quota root with `limit` (counting what its tree holds when it
/// becomes one), changes its limit, or with `None` stops accounting for it. Root only
/// (`EPERM`); `ENOTDIR` for other kinds; `EXDEV` if an inode in the tree has a hard link
/// outside it.
pub fn set<S: FsState>(
    mut tx: Tx<'_, S>,
    ino: u64,
    limit: Option<QuotaLimit>,
) -> OpResult<(Effects, FsReply)> {
    let dir = tx.dir(ino)?;
    if !perm::is_root(tx.cred) {
        return Err(Errno::EPERM.into());
    }
    let was = tx.state.quota_limit(dir.ino)?;
    let (bytes, inodes) = tx.usage(dir.ino)?;
    let itself = vec![(dir.ino, QuotaLimit::default())];
    let mut homes = Vec::new();
    match limit {
        None if was.is_some() => {
            tx.set_limit(dir.ino, None);
            tx.charge(&itself, bytes.saturating_neg(), inodes.saturating_neg())?;
            homes = rehomed(tx.state, tx.ctx, &dir)?;
        }
        None => {}
        Some(limit) => {
            if was.is_none() {
                let count = tally(tx.state, tx.ctx, &dir)?;
                tx.charge(
                    &itself,
                    count.bytes.saturating_sub(bytes),
                    count.inodes.saturating_sub(inodes),
                )?;
                homes = count.homes;
            }
            tx.set_limit(dir.ino, Some(limit));
        }
    }
    let (bytes, inodes) = tx.usage(dir.ino)?;
    let reply = limit.map(|limit| Quota {
        limit,
        bytes: bytes.max(0) as u64,
        inodes: inodes.max(0) as u64,
    });
    let (effects, ()) = tx.commit(|edit| {
        for (ino, home) in homes {
            edit.set_attrs(ino, vec![RecAttr::Parent(home)]);
        }
    })?;
    Ok((effects, FsReply::Quota(reply)))
}

/// The quota of directory `ino` and its usage, if it is a quota root.
pub fn get<S: FsState>(state: &S, ctx: ShardCtx<'_>, ino: u64) -> OpResult<FsReply> {
    let dir = node::load_dir(state, ctx, ino)?;
    let Some(limit) = state.quota_limit(dir.ino)? else {
        return Ok(FsReply::Quota(None));
    };
    let usage = state.quota(dir.ino)?.unwrap_or_default();
    Ok(FsReply::Quota(Some(Quota {
        limit,
        bytes: usage.bytes.value().max(0) as u64,
        inodes: usage.inodes.value().max(0) as u64,
    })))
}

/// What a tree holds, counted by walking it.
struct Tally {
    bytes: i64,
    inodes: i64,
    /// Inodes whose home is outside the tree, and a directory of the tree holding a name
    /// of theirs: their new home.
    homes: Vec<(Ino, Ino)>,
}

/// Every non-directory with a name in the tree of `root`: the inode, a directory of the tree
/// holding a name of it, and how many of its names are in the tree; and how many directories
/// are below `root`.
type Walked = (BTreeMap<Ino, (Node, Ino, u64)>, i64);

fn walk<S: FsState>(state: &S, ctx: ShardCtx<'_>, root: &Node) -> OpResult<Walked> {
    let mut files: BTreeMap<Ino, (Node, Ino, u64)> = BTreeMap::new();
    let mut dirs = 0i64;
    let mut todo = vec![root.ino];
    while let Some(dir) = todo.pop() {
        let mut after = None;
        loop {
            let page = state.entries_after(dir, after.as_ref(), PAGE)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (entry, _) in page {
                if let Some(found) = files.get_mut(&entry.ino) {
                    found.2 += 1;
                    continue;
                }
                if !node::owned(ctx, entry.ino.0) {
                    continue;
                }
                let Some(n) = node::live(state, entry.ino)? else {
                    continue;
                };
                if n.is_dir() {
                    dirs += 1;
                    todo.push(n.ino);
                } else {
                    files.insert(n.ino, (n, dir, 1));
                }
            }
        }
    }
    Ok((files, dirs))
}

/// When `root` stops being a quota root: the inodes whose home is `root` itself without a
/// name in it (the nearest root above a removed name), each with a directory of the tree
/// holding a name of theirs as its new home, so none keeps a home that may go away.
fn rehomed<S: FsState>(state: &S, ctx: ShardCtx<'_>, root: &Node) -> OpResult<Vec<(Ino, Ino)>> {
    let (files, _) = walk(state, ctx, root)?;
    Ok(files
        .into_values()
        .filter(|(n, found, _)| n.rec.parent() == root.ino && *found != root.ino)
        .map(|(n, found, _)| (n.ino, found))
        .collect())
}

/// Walks the tree of `root`: every inode with a name in it, once. Every name of an inode
/// with a name in the tree must be in it (`EXDEV` otherwise: its names would count under
/// different roots); one whose home is outside (never recorded, or the nearest root above
/// after the name in its home went) is given a home in the tree. Reads the whole tree, on the
/// host thread: making a large tree a quota root takes a while.
fn tally<S: FsState>(state: &S, ctx: ShardCtx<'_>, root: &Node) -> OpResult<Tally> {
    let (files, dirs) = walk(state, ctx, root)?;
    let mut count = Tally {
        bytes: 0,
        inodes: dirs,
        homes: Vec::new(),
    };
    for (n, dir, names) in files.into_values() {
        if n.rec.nlink() > names {
            return Err(Errno::EXDEV.into());
        }
        count.inodes += 1;
        count.bytes = count.bytes.saturating_add(bytes_of(&n));
        let home = n.rec.parent();
        if home == Ino(0) || !node::is_ancestor(state, root.ino, home)? {
            count.homes.push((n.ino, dir));
        }
    }
    Ok(count)
}
