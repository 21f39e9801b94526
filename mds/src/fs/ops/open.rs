//! Open handles: open (with `O_TRUNC`) and release. A handle keeps its inode alive after its
//! last name is gone; releasing the last handle of such an inode deletes it.

use std::collections::{BTreeMap, BTreeSet};

use crdt::model::{FileKind, Ino};
use proto::fs::{SetAttr, access};
use proto::{Errno, FsReply};

use crate::fs::command::Effects;
use crate::fs::node::{self, Node};
use crate::fs::ops::{quota, setattr};
use crate::fs::outcome::OpResult;
use crate::fs::perm;
use crate::fs::state::FsState;
use crate::fs::tx::Tx;

/// Opens `ino`.
pub fn open<S: FsState>(
    tx: Tx<'_, S>,
    ino: u64,
    read: bool,
    write: bool,
    truncate: bool,
) -> OpResult<(Effects, FsReply)> {
    let node = tx.node(ino)?;
    open_node(tx, &node, read, write, truncate)
}

/// Opens `node`: a directory cannot be opened to write or truncate (`EISDIR`), a symlink not
/// at all (`ELOOP`, as with `O_NOFOLLOW`: the client resolves links); reading needs read
/// permission and writing or truncating write permission (`EACCES`). Truncating a regular
/// file empties it as `ftruncate(0)` would.
pub fn open_node<S: FsState>(
    mut tx: Tx<'_, S>,
    node: &Node,
    read: bool,
    write: bool,
    truncate: bool,
) -> OpResult<(Effects, FsReply)> {
    match node.kind {
        FileKind::Dir if write || truncate => return Err(Errno::EISDIR.into()),
        FileKind::Symlink => return Err(Errno::ELOOP.into()),
        _ => {}
    }
    let mask = if read { access::R } else { 0 } | if write || truncate { access::W } else { 0 };
    perm::check(tx.cred, node, mask)?;
    let handle = tx.open_handle(node.ino, read, write)?;
    if truncate && node.kind == FileKind::File {
        let empty = SetAttr {
            size: Some(0),
            ..SetAttr::default()
        };
        let attrs = setattr::plan(tx.cred, node, &empty, tx.now);
        tx.free_chunks(node, 0);
        quota::resize(&mut tx, node, 0)?;
        let (effects, attr) = tx.commit_attr(node.ino, |edit| {
            setattr::drop_chunks(edit, node, 0);
            edit.set_attrs(node.ino, attrs);
        })?;
        return Ok((effects, FsReply::Opened { attr, handle }));
    }
    Ok((
        tx.finish(),
        FsReply::Opened {
            attr: node.attr(),
            handle,
        },
    ))
}

/// Releases the asking client's `handle` on `ino` (`EBADF` if it has no such handle). The
/// last handle of an inode without names deletes it.
pub fn release<S: FsState>(tx: Tx<'_, S>, ino: u64, handle: u64) -> OpResult<(Effects, FsReply)> {
    if !node::owned(tx.ctx, ino) {
        return Err(Errno::EXDEV.into());
    }
    if !is_open(&tx, ino, handle)? {
        return Err(Errno::EBADF.into());
    }
    close(tx, BTreeSet::from([(Ino(ino), handle)]))
}

/// Releases the asking client's `handles` (inode, handle) together, as [`release`] does each;
/// a pair that is not one of its open handles in this shard (closed meanwhile, for example
/// by the end of its session) is skipped.
pub fn release_all<S: FsState>(tx: Tx<'_, S>, handles: &[(u64, u64)]) -> OpResult<(Effects, FsReply)> {
    let mut open = BTreeSet::new();
    for &(ino, handle) in handles {
        if node::owned(tx.ctx, ino) && is_open(&tx, ino, handle)? {
            open.insert((Ino(ino), handle));
        }
    }
    close(tx, open)
}

/// Whether `handle` is the asking client's, open on `ino`.
fn is_open<S: FsState>(tx: &Tx<'_, S>, ino: u64, handle: u64) -> OpResult<bool> {
    Ok(tx.state.handle(tx.client, handle)?.is_some_and(|h| h.ino == ino))
}

/// Closes the asking client's open `handles`, drops the `flock` locks taken through them,
/// and deletes the inodes without names they were the last handles of.
fn close<S: FsState>(mut tx: Tx<'_, S>, handles: BTreeSet<(Ino, u64)>) -> OpResult<(Effects, FsReply)> {
    let mut closing: BTreeMap<Ino, u64> = BTreeMap::new();
    for &(ino, handle) in &handles {
        tx.close_handle(handle, ino);
        *closing.entry(ino).or_default() += 1;
    }
    for &ino in closing.keys() {
        let held = tx.state.locks(ino)?;
        let kept: Vec<_> = held
            .iter()
            .filter(|h| !(h.flock && h.client == tx.client && handles.contains(&(ino, h.handle))))
            .copied()
            .collect();
        if kept.len() != held.len() {
            tx.set_locks(ino, kept);
        }
    }
    delete_orphans(tx, closing)
}

/// Deletes the inodes without names whose every open handle is being closed (`closing`:
/// inode → handles closed), and finishes `tx`.
pub fn delete_orphans<S: FsState>(
    mut tx: Tx<'_, S>,
    closing: BTreeMap<Ino, u64>,
) -> OpResult<(Effects, FsReply)> {
    let mut orphans = Vec::new();
    for (ino, closed) in closing {
        if let Some(orphan) = node::live(tx.state, ino)?.filter(|n| n.rec.nlink() == 0)
            && tx.state.open_handles(ino)? <= closed
        {
            tx.count_deleted();
            tx.free_chunks(&orphan, 0);
            orphans.push(ino);
        }
    }
    if orphans.is_empty() {
        return Ok((tx.finish(), FsReply::Done));
    }
    let (effects, ()) = tx.commit(|edit| {
        for ino in orphans {
            edit.delete(ino);
        }
    })?;
    Ok((effects, FsReply::Done))
}
