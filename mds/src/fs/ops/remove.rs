//! Removing names: unlink and rmdir.
//!
//! Checks run in Linux's order: the parent (`ENOENT`, `ENOTDIR`), search permission on it
//! (`EACCES`), the name (`.` and `..`, `EINVAL`, `ENAMETOOLONG`), the entry (`ENOENT`), write
//! permission on the parent (`EACCES`), the sticky bit (`EPERM`), the victim's type
//! (`EISDIR`, `ENOTDIR`), and for rmdir emptiness (`ENOTEMPTY`). The root is never an entry
//! of any directory, so it cannot be removed by name (Linux's `EBUSY` never arises).

use proto::fs::access;
use proto::{Errno, FsReply};

use crate::fs::command::Effects;
use crate::fs::entries::Entries;
use crate::fs::names::{self, ON_RMDIR, ON_UNLINK};
use crate::fs::outcome::OpResult;
use crate::fs::perm;
use crate::fs::state::FsState;
use crate::fs::tx::Tx;

/// Removes the non-directory `name` from `parent`.
pub fn unlink<S: FsState>(tx: Tx<'_, S>, parent: u64, name: &[u8]) -> OpResult<(Effects, FsReply)> {
    remove(tx, parent, name, false)
}

/// Removes the empty directory `name` from `parent`.
pub fn rmdir<S: FsState>(tx: Tx<'_, S>, parent: u64, name: &[u8]) -> OpResult<(Effects, FsReply)> {
    remove(tx, parent, name, true)
}

fn remove<S: FsState>(
    mut tx: Tx<'_, S>,
    parent: u64,
    name: &[u8],
    dir: bool,
) -> OpResult<(Effects, FsReply)> {
    let parent = tx.dir(parent)?;
    perm::check(tx.cred, &parent, access::X)?;
    let name = names::entry_name(name, if dir { ON_RMDIR } else { ON_UNLINK })?;
    let entry = Entries::new(tx.state, parent.ino)
        .resolve(&name)?
        .ok_or(Errno::ENOENT)?;
    let victim = tx.node(entry.ino.0)?;
    perm::may_delete(tx.cred, &parent, &victim)?;
    match (dir, victim.is_dir()) {
        (true, false) => return Err(Errno::ENOTDIR.into()),
        (false, true) => return Err(Errno::EISDIR.into()),
        _ => {}
    }
    if dir && !Entries::new(tx.state, victim.ino).is_empty()? {
        return Err(Errno::ENOTEMPTY.into());
    }
    // A directory's name stands for two links: its entry and its own `.`.
    let fate = tx.drop_links(&victim, if dir { 2 } else { 1 }, &parent)?;
    let now = tx.now;
    let (effects, ()) = tx.commit(|edit| {
        edit.unlink(parent.ino, entry.name, entry.ino);
        if dir {
            edit.add_links(parent.ino, -1);
        }
        edit.touch(parent.ino, now);
        fate.apply(edit, now);
    })?;
    Ok((effects, FsReply::Done))
}
