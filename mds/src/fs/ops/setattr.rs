//! Changing attributes: chmod, chown, truncate and utimes, with Linux's permission and
//! set-id rules. Every change sets ctime; a request that changes nothing changes nothing.

use crdt::model::{Attr as RecAttr, FileKind, FileTime};
use proto::fs::{CHUNK_SIZE, Cred, SetAttr, TimeSet, access};
use proto::{Errno, FsReply};

use crate::fs::command::Effects;
use crate::fs::node::Node;
use crate::fs::ops::{MAX_FILE_SIZE, quota};
use crate::fs::outcome::OpResult;
use crate::fs::perm::{self, MODE_BITS, S_ISGID, S_ISUID, S_IXGRP};
use crate::fs::state::FsState;
use crate::fs::tx::{Ed, Tx};

/// Applies `set` to `ino` and returns the new attributes.
///
/// - size: regular files only (`EISDIR`, `EINVAL`), at most [`MAX_FILE_SIZE`] (`EFBIG`);
///   needs write permission (`EACCES`) unless made through a handle open for writing
///   (`EBADF` if `set.handle` is not one). Sets mtime, drops the chunks past the new end, and
///   a non-root caller loses the set-id bits.
/// - times: an explicit time needs the owner or root (`EPERM`); `Now` also allows anyone
///   with write permission (`EACCES`).
/// - uid: root only, or the owner "changing" it to itself (`EPERM`). gid: root, or the owner
///   to a group they are in (`EPERM`). Either clears set-user-id on non-directories, and
///   set-group-id when group execute is set (or the caller is not root and not in the
///   file's group), as Linux does even for root.
/// - mode: owner or root (`EPERM`); set-group-id is dropped when a non-root caller is not in
///   the (new) group.
pub fn setattr<S: FsState>(mut tx: Tx<'_, S>, ino: u64, set: &SetAttr) -> OpResult<(Effects, FsReply)> {
    let node = tx.node(ino)?;
    let cred = tx.cred;
    let owner = perm::is_owner(cred, &node);
    let root = perm::is_root(cred);
    if let Some(size) = set.size {
        match node.kind {
            FileKind::File => {}
            FileKind::Dir => return Err(Errno::EISDIR.into()),
            _ => return Err(Errno::EINVAL.into()),
        }
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG.into());
        }
        match set.handle {
            Some(handle) => tx.check_write_handle(handle, node.ino)?,
            None => perm::check(cred, &node, access::W)?,
        }
    }
    let times = [set.atime, set.mtime];
    if times.iter().any(|t| matches!(t, Some(TimeSet::At(_)))) {
        if !owner {
            return Err(Errno::EPERM.into());
        }
    } else if times.iter().any(Option::is_some) && !owner {
        perm::check(cred, &node, access::W)?;
    }
    let uid_ok = set
        .uid
        .is_none_or(|uid| root || (cred.uid == node.rec.uid() && uid == node.rec.uid()));
    let gid_ok = set.gid.is_none_or(|gid| {
        root || (cred.uid == node.rec.uid() && (gid == node.rec.gid() || cred.in_group(gid)))
    });
    if !uid_ok || !gid_ok || (set.mode.is_some() && !owner) {
        return Err(Errno::EPERM.into());
    }
    let attrs = plan(cred, &node, set, tx.now);
    if attrs.is_empty() {
        return Ok((tx.finish(), FsReply::Attr(node.attr())));
    }
    if let Some(size) = set.size {
        quota::resize(&mut tx, &node, size)?;
        tx.free_chunks(&node, size);
    }
    let (effects, attr) = tx.commit_attr(node.ino, |edit| {
        if let Some(size) = set.size {
            drop_chunks(edit, &node, size);
        }
        edit.set_attrs(node.ino, attrs);
    })?;
    Ok((effects, FsReply::Attr(attr)))
}

/// The attribute writes `set` makes on `node` for `cred` at `now`, ctime included; none if it
/// asks for nothing. Permissions are the caller's business.
pub fn plan(cred: &Cred, node: &Node, set: &SetAttr, now: FileTime) -> Vec<RecAttr> {
    let root = perm::is_root(cred);
    let mut mode = node.mode();
    if let Some(requested) = set.mode {
        mode = requested & MODE_BITS;
        if mode & S_ISGID != 0 && !root && !cred.in_group(set.gid.unwrap_or(node.rec.gid())) {
            mode &= !S_ISGID;
        }
    }
    if (set.uid.is_some() || set.gid.is_some()) && !node.is_dir() {
        mode &= !S_ISUID;
        if mode & S_IXGRP != 0 || (!root && !cred.in_group(node.rec.gid())) {
            mode &= !S_ISGID;
        }
    }
    if set.size.is_some() {
        mode = perm::after_write(cred, mode);
    }
    let at = |t: TimeSet| match t {
        TimeSet::Now => now,
        TimeSet::At(t) => t,
    };
    let mut attrs = Vec::new();
    if set.mode.is_some() || mode != node.mode() {
        attrs.push(RecAttr::Mode(mode));
    }
    attrs.extend(set.uid.map(RecAttr::Uid));
    attrs.extend(set.gid.map(RecAttr::Gid));
    attrs.extend(set.size.map(RecAttr::Size));
    attrs.extend(set.atime.map(|t| RecAttr::Atime(at(t))));
    let mtime = set.mtime.map(at).or(set.size.map(|_| now));
    attrs.extend(mtime.map(RecAttr::Mtime));
    if !attrs.is_empty() {
        attrs.push(RecAttr::Ctime(now));
    }
    attrs
}

/// Clears the chunk slots of `node` that lie wholly past `size`.
pub fn drop_chunks<S: FsState>(edit: &mut Ed<'_, '_, S>, node: &Node, size: u64) {
    let keep = size.div_ceil(CHUNK_SIZE);
    let gone: Vec<u64> = node
        .rec
        .chunks()
        .iter()
        .map(|(i, _)| *i)
        .filter(|i| *i >= keep)
        .collect();
    for index in gone {
        edit.set_chunk(node.ino, index, None);
    }
}
