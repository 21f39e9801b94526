//! Rename: plain (replacing the target), `NOREPLACE` and `EXCHANGE`, with Linux's checks in
//! Linux's order (`do_renameat2`, then `vfs_rename`):
//!
//! 1. flags (`EINVAL`), both parents (`ENOENT`, `ENOTDIR`, search: `EACCES`), both names
//!    (`.`/`..`: `EINVAL` for Linux's `EBUSY`, or `EEXIST` as a `NOREPLACE` target);
//! 2. the source entry (`ENOENT`); the target against the flags (`EEXIST`, `ENOENT`);
//! 3. the same inode under both names: success, no change;
//! 4. a directory into its own subtree (`EINVAL`), or over one of its ancestors
//!    (`ENOTEMPTY`; `EINVAL` for an exchange);
//! 5. removing the source and adding or replacing the target: write and search on the
//!    parents (`EACCES`), sticky bits (`EPERM`), type mismatches (`ENOTDIR`, `EISDIR`);
//! 6. a directory changing parent needs write permission on itself (its `..` changes);
//! 7. `EMLINK` when a new parent would get too many subdirectories; `EXDEV` when a moved
//!    inode would change quota roots (see [`quota`]); `ENOTEMPTY` when a
//!    directory would replace a non-empty one.

use crdt::model::{Attr as RecAttr, Entry, FileTime, Name};
use proto::fs::{access, rename_flags};
use proto::{Errno, FsReply};

use crate::fs::command::Effects;
use crate::fs::entries::Entries;
use crate::fs::names::{self, ON_CREATE, ON_RENAME};
use crate::fs::node::{self, Node};
use crate::fs::ops::{LINK_MAX, quota};
use crate::fs::outcome::OpResult;
use crate::fs::perm;
use crate::fs::state::FsState;
use crate::fs::tx::{Ed, Fate, Tx};

/// Renames `name` in `parent` to `new_name` in `new_parent` (see the module doc).
pub fn rename<S: FsState>(
    mut tx: Tx<'_, S>,
    parent: u64,
    name: &[u8],
    new_parent: u64,
    new_name: &[u8],
    flags: u32,
) -> OpResult<(Effects, FsReply)> {
    let both = rename_flags::NOREPLACE | rename_flags::EXCHANGE;
    if flags & !both != 0 || flags == both {
        return Err(Errno::EINVAL.into());
    }
    let (noreplace, exchange) = (flags == rename_flags::NOREPLACE, flags == rename_flags::EXCHANGE);
    let cred = tx.cred;
    let from = tx.dir(parent)?;
    let to = tx.dir(new_parent)?;
    perm::check(cred, &from, access::X)?;
    perm::check(cred, &to, access::X)?;
    let name = names::entry_name(name, ON_RENAME)?;
    let new_name = names::entry_name(new_name, if noreplace { ON_CREATE } else { ON_RENAME })?;
    let src_entry = Entries::new(tx.state, from.ino)
        .resolve(&name)?
        .ok_or(Errno::ENOENT)?;
    let src = tx.node(src_entry.ino.0)?;
    let target = match Entries::new(tx.state, to.ino).resolve(&new_name)? {
        Some(entry) => Some((tx.node(entry.ino.0)?, entry)),
        None => None,
    };
    let dst = target.as_ref().map(|(node, _)| node);
    match dst {
        Some(_) if noreplace => return Err(Errno::EEXIST.into()),
        None if exchange => return Err(Errno::ENOENT.into()),
        Some(d) if d.ino == src.ino => return Ok((tx.finish(), FsReply::Done)),
        _ => {}
    }
    let dst_dir = dst.filter(|d| d.is_dir());
    if src.is_dir() && node::is_ancestor(tx.state, src.ino, to.ino)? {
        return Err(Errno::EINVAL.into());
    }
    if let Some(d) = dst_dir
        && node::is_ancestor(tx.state, d.ino, from.ino)?
    {
        return Err(if exchange { Errno::EINVAL } else { Errno::ENOTEMPTY }.into());
    }
    perm::may_delete(cred, &from, &src)?;
    match dst {
        None => perm::may_create(cred, &to)?,
        Some(d) => {
            perm::may_delete(cred, &to, d)?;
            match (exchange, src.is_dir(), d.is_dir()) {
                (false, true, false) => return Err(Errno::ENOTDIR.into()),
                (false, false, true) => return Err(Errno::EISDIR.into()),
                _ => {}
            }
        }
    }
    if from.ino != to.ino {
        if src.is_dir() {
            perm::check(cred, &src, access::W)?;
        }
        if let Some(d) = dst_dir.filter(|_| exchange) {
            perm::check(cred, d, access::W)?;
        }
        let crowded = |dir: &Node| dir.rec.nlink() >= LINK_MAX;
        let to_gains = src.is_dir() && dst_dir.is_none();
        let from_gains = exchange && dst_dir.is_some() && !src.is_dir();
        if (to_gains && crowded(&to)) || (from_gains && crowded(&from)) {
            return Err(Errno::EMLINK.into());
        }
        quota::check_move(tx.state, tx.ctx, &src, &to)?;
        if let Some(d) = dst.filter(|_| exchange) {
            quota::check_move(tx.state, tx.ctx, d, &from)?;
        }
    }
    let m = Move {
        from,
        to,
        src_entry,
        src,
        new_name,
    };
    let Some((dst, dst_entry)) = target else {
        return replace(tx, m, None);
    };
    if exchange {
        return swap(tx, m, dst_entry, dst);
    }
    if dst.is_dir() && !Entries::new(tx.state, dst.ino).is_empty()? {
        return Err(Errno::ENOTEMPTY.into());
    }
    let fate = tx.drop_links(&dst, if dst.is_dir() { 2 } else { 1 }, &m.to)?;
    replace(tx, m, Some((dst_entry, dst.is_dir(), fate)))
}

/// A checked rename of `src_entry` (inode `src`) in `from` to `new_name` in `to`.
struct Move {
    from: Node,
    to: Node,
    src_entry: Entry,
    src: Node,
    new_name: Name,
}

impl Move {
    fn moves(&self) -> bool {
        self.from.ino != self.to.ino
    }
}

/// Moves the source, replacing the target entry `victim` (its entry, whether it is a
/// directory, and what happens to its inode) if there is one.
fn replace<S: FsState>(
    tx: Tx<'_, S>,
    m: Move,
    victim: Option<(Entry, bool, Fate)>,
) -> OpResult<(Effects, FsReply)> {
    let now = tx.now;
    let moved_dir = m.src.is_dir() && m.moves();
    let (effects, ()) = tx.commit(|edit| {
        edit.unlink(m.from.ino, m.src_entry.name.clone(), m.src.ino);
        let mut to_links = 0;
        if let Some((entry, is_dir, fate)) = victim {
            edit.unlink(m.to.ino, entry.name, entry.ino);
            to_links -= i64::from(is_dir);
            fate.apply(edit, now);
        }
        edit.link(m.to.ino, m.new_name.clone(), m.src.ino);
        let mut attrs = vec![RecAttr::Ctime(now)];
        if m.moves() {
            attrs.push(RecAttr::Parent(m.to.ino));
        }
        if moved_dir {
            edit.add_links(m.from.ino, -1);
            to_links += 1;
        }
        edit.set_attrs(m.src.ino, attrs);
        if to_links != 0 {
            edit.add_links(m.to.ino, to_links);
        }
        touch_parents(edit, &m, now);
    })?;
    Ok((effects, FsReply::Done))
}

/// Exchanges the source and the target `dst_entry` (inode `dst`).
fn swap<S: FsState>(tx: Tx<'_, S>, m: Move, dst_entry: Entry, dst: Node) -> OpResult<(Effects, FsReply)> {
    let now = tx.now;
    // Subdirectories moving between the parents carry a link each (their `..`).
    let to_gain = if m.moves() {
        i64::from(m.src.is_dir()) - i64::from(dst.is_dir())
    } else {
        0
    };
    let (effects, ()) = tx.commit(|edit| {
        edit.unlink(m.from.ino, m.src_entry.name.clone(), m.src.ino);
        edit.unlink(m.to.ino, dst_entry.name.clone(), dst.ino);
        edit.link(m.from.ino, m.src_entry.name.clone(), dst.ino);
        edit.link(m.to.ino, dst_entry.name, m.src.ino);
        for (node, new_parent) in [(&m.src, m.to.ino), (&dst, m.from.ino)] {
            let mut attrs = vec![RecAttr::Ctime(now)];
            if m.moves() {
                attrs.push(RecAttr::Parent(new_parent));
            }
            edit.set_attrs(node.ino, attrs);
        }
        if to_gain != 0 {
            edit.add_links(m.to.ino, to_gain);
            edit.add_links(m.from.ino, -to_gain);
        }
        touch_parents(edit, &m, now);
    })?;
    Ok((effects, FsReply::Done))
}

/// Sets mtime and ctime of the parents (once if they are one directory).
fn touch_parents<S: FsState>(edit: &mut Ed<'_, '_, S>, m: &Move, now: FileTime) {
    edit.touch(m.from.ino, now);
    if m.moves() {
        edit.touch(m.to.ino, now);
    }
}
