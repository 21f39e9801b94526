//! Adding names: mknod, mkdir, create (which also opens), symlink and link.
//!
//! Checks run in the order Linux makes them: the parent (`ENOENT`, `ENOTDIR`), search
//! permission on it (`EACCES`), the name (`EINVAL`, `ENAMETOOLONG`, `EEXIST`), write
//! permission on the parent (`EACCES`), then what is particular to the operation.

use crdt::model::{Attr as RecAttr, FileKind, Name, NewInode};
use proto::fs::access;
use proto::{Errno, FsReply};
use shardmap::{dir_bucket, file_bucket};

use crate::fs::command::Effects;
use crate::fs::entries::Entries;
use crate::fs::names::{self, ON_CREATE};
use crate::fs::node::Node;
use crate::fs::ops::{LINK_MAX, SYMLINK_MAX, open, quota};
use crate::fs::outcome::OpResult;
use crate::fs::perm::{self, S_ISGID, S_ISUID};
use crate::fs::state::FsState;
use crate::fs::tx::Tx;

/// What a new inode is.
struct Spec {
    kind: FileKind,
    mode: u32,
    rdev: u64,
    symlink: Option<Box<[u8]>>,
}

/// Creates a regular file, fifo, socket or device node. Directories and symlinks have their
/// own operations (`EINVAL`); device nodes need root (`EPERM`).
pub fn mknod<S: FsState>(
    tx: Tx<'_, S>,
    parent: u64,
    name: &[u8],
    kind: FileKind,
    mode: u32,
    rdev: u64,
) -> OpResult<(Effects, FsReply)> {
    let device = matches!(kind, FileKind::CharDev | FileKind::BlockDev);
    if matches!(kind, FileKind::Dir | FileKind::Symlink) {
        return Err(Errno::EINVAL.into());
    }
    let (dir, name) = free_slot(&tx, parent, name)?;
    if device && !perm::is_root(tx.cred) {
        return Err(Errno::EPERM.into());
    }
    let rdev = if device { rdev } else { 0 };
    make(
        tx,
        &dir,
        name,
        Spec {
            kind,
            mode,
            rdev,
            symlink: None,
        },
        None,
    )
}

/// Creates a directory. As on Linux, the requested set-id bits are ignored; set-group-id
/// comes from a set-group-id parent only.
pub fn mkdir<S: FsState>(tx: Tx<'_, S>, parent: u64, name: &[u8], mode: u32) -> OpResult<(Effects, FsReply)> {
    let (dir, name) = free_slot(&tx, parent, name)?;
    let mode = mode & !(S_ISUID | S_ISGID);
    make(
        tx,
        &dir,
        name,
        Spec {
            kind: FileKind::Dir,
            mode,
            rdev: 0,
            symlink: None,
        },
        None,
    )
}

/// Creates a symbolic link to `target` (1 to [`SYMLINK_MAX`] bytes: `ENOENT` if empty,
/// `ENAMETOOLONG` if longer, as Linux checks the path argument).
pub fn symlink<S: FsState>(
    tx: Tx<'_, S>,
    parent: u64,
    name: &[u8],
    target: &[u8],
) -> OpResult<(Effects, FsReply)> {
    if target.is_empty() {
        return Err(Errno::ENOENT.into());
    }
    if target.len() > SYMLINK_MAX {
        return Err(Errno::ENAMETOOLONG.into());
    }
    let (dir, name) = free_slot(&tx, parent, name)?;
    let spec = Spec {
        kind: FileKind::Symlink,
        mode: 0o777,
        rdev: 0,
        symlink: Some(target.into()),
    };
    make(tx, &dir, name, spec, None)
}

/// Creates and opens a regular file (`O_CREAT`). An existing name fails with `EEXIST` if
/// `exclusive`, with `EISDIR` if it is a directory, and is otherwise opened with the usual
/// permission checks. A handle that neither reads nor writes is opened for reading.
pub fn create<S: FsState>(
    tx: Tx<'_, S>,
    parent: u64,
    name: &[u8],
    mode: u32,
    exclusive: bool,
    read: bool,
    write: bool,
) -> OpResult<(Effects, FsReply)> {
    let read = read || !write;
    let (dir, name) = slot(&tx, parent, name)?;
    if let Some(entry) = Entries::new(tx.state, dir.ino).resolve(&name)? {
        if exclusive {
            return Err(Errno::EEXIST.into());
        }
        let node = tx.node(entry.ino.0)?;
        if node.is_dir() {
            return Err(Errno::EISDIR.into());
        }
        return open::open_node(tx, &node, read, write, false);
    }
    perm::may_create(tx.cred, &dir)?;
    make(
        tx,
        &dir,
        name,
        Spec {
            kind: FileKind::File,
            mode,
            rdev: 0,
            symlink: None,
        },
        Some((read, write)),
    )
}

/// Adds the name `name` in `parent` to `ino`. Directories cannot be linked (`EPERM`); an
/// unlinked file kept by its handles cannot get a name back (`ENOENT`); `EMLINK` at
/// [`LINK_MAX`] links.
pub fn link<S: FsState>(tx: Tx<'_, S>, ino: u64, parent: u64, name: &[u8]) -> OpResult<(Effects, FsReply)> {
    let node = tx.node(ino)?;
    let (dir, name) = free_slot(&tx, parent, name)?;
    if node.is_dir() {
        return Err(Errno::EPERM.into());
    }
    match node.rec.nlink() {
        0 => return Err(Errno::ENOENT.into()),
        n if n >= LINK_MAX => return Err(Errno::EMLINK.into()),
        _ => {}
    }
    quota::check_move(tx.state, tx.ctx, &node, &dir)?;
    let now = tx.now;
    let (effects, attr) = tx.commit_attr(node.ino, |edit| {
        edit.link(dir.ino, name, node.ino);
        edit.add_links(node.ino, 1);
        edit.set_attrs(node.ino, vec![RecAttr::Ctime(now)]);
        edit.touch(dir.ino, now);
    })?;
    Ok((effects, FsReply::Attr(attr)))
}

/// The parent directory, searchable, and the name to add in it.
fn slot<S: FsState>(tx: &Tx<'_, S>, parent: u64, name: &[u8]) -> OpResult<(Node, Name)> {
    let dir = tx.dir(parent)?;
    perm::check(tx.cred, &dir, access::X)?;
    Ok((dir, names::entry_name(name, ON_CREATE)?))
}

/// As [`slot`], and the name is free and the caller may add it.
fn free_slot<S: FsState>(tx: &Tx<'_, S>, parent: u64, name: &[u8]) -> OpResult<(Node, Name)> {
    let (dir, name) = slot(tx, parent, name)?;
    if Entries::new(tx.state, dir.ino).resolve(&name)?.is_some() {
        return Err(Errno::EEXIST.into());
    }
    perm::may_create(tx.cred, &dir)?;
    Ok((dir, name))
}

/// Creates the inode `spec` describes as `name` in `dir`, opening it if `open` says how (read,
/// write). New directories count in their parent's links (`EMLINK` at [`LINK_MAX`]); every new
/// inode inherits its parent's replication goal and counts in its quota roots (`EDQUOT`).
fn make<S: FsState>(
    mut tx: Tx<'_, S>,
    dir: &Node,
    name: Name,
    spec: Spec,
    open: Option<(bool, bool)>,
) -> OpResult<(Effects, FsReply)> {
    let is_dir = spec.kind == FileKind::Dir;
    if is_dir && dir.rec.nlink() >= LINK_MAX {
        return Err(Errno::EMLINK.into());
    }
    let roots = quota::roots_below(tx.state, tx.ctx, dir)?;
    tx.charge(&roots, 0, 1)?;
    let bucket = if is_dir {
        dir_bucket(tx.ctx.table, dir.ino.0, name.as_bytes())
    } else {
        file_bucket(dir.ino.0)
    };
    let ino = tx.new_ino(bucket)?;
    let owner = perm::new_owner(tx.cred, dir, spec.kind, spec.mode);
    let handle = open
        .map(|(read, write)| tx.open_handle(ino, read, write))
        .transpose()?;
    let (now, parent, goal) = (tx.now, dir.ino, dir.rec.goal());
    let (effects, attr) = tx.commit_attr(ino, |edit| {
        edit.create(
            ino,
            NewInode {
                kind: spec.kind,
                mode: owner.mode,
                uid: owner.uid,
                gid: owner.gid,
                rdev: spec.rdev,
                time: now,
                nlink: if is_dir { 2 } else { 1 },
                symlink: spec.symlink,
            },
        );
        // Every inode records its home directory, which places it in quota trees.
        let mut attrs = vec![RecAttr::Parent(parent)];
        if is_dir {
            edit.add_links(parent, 1);
        }
        if goal != 0 {
            attrs.push(RecAttr::Goal(goal));
        }
        edit.set_attrs(ino, attrs);
        edit.link(parent, name, ino);
        edit.touch(parent, now);
    })?;
    Ok((
        effects,
        match handle {
            Some(handle) => FsReply::Opened { attr, handle },
            None => FsReply::Attr(attr),
        },
    ))
}
