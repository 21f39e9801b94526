//! Extended attributes, with Linux's namespace rules (`xattr_permission` and the capability
//! hooks):
//!
//! | namespace | read | write |
//! |---|---|---|
//! | `user.` | read permission; regular files and directories only (`ENODATA` on others) | write permission (`EACCES`); regular files and directories only (`EPERM`); in a sticky directory the owner or root (`EPERM`) |
//! | `trusted.` | root (`ENODATA` for others, and hidden from their listings) | root (`EPERM`) |
//! | `security.` | anyone | root (`EPERM`), as without a security module |
//! | `system.`, other | `EOPNOTSUPP` (no ACLs) | `EOPNOTSUPP` |
//!
//! Names are 1 to 255 bytes (`ERANGE`) with something after the prefix (`EINVAL`); values at
//! most [`XATTR_VALUE_MAX`] bytes (`E2BIG`). Setting or removing sets ctime.

use crdt::model::{Attr as RecAttr, FileKind};
use proto::fs::{Cred, XATTR_VALUE_MAX, access, xattr_flags};
use proto::{Errno, FsReply};

use crate::fs::command::{Effects, ShardCtx};
use crate::fs::node::{self, Node};
use crate::fs::outcome::OpResult;
use crate::fs::perm::{self, S_ISVTX};
use crate::fs::state::FsState;
use crate::fs::tx::Tx;

/// The longest attribute name, in bytes (Linux `XATTR_NAME_MAX`).
const NAME_MAX: usize = 255;

/// An attribute namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Space {
    User,
    Trusted,
    Security,
}

const SPACES: [(&[u8], Option<Space>); 4] = [
    (b"user.", Some(Space::User)),
    (b"trusted.", Some(Space::Trusted)),
    (b"security.", Some(Space::Security)),
    (b"system.", None),
];

/// The namespace of attribute `name`.
fn space(name: &[u8]) -> Result<Space, Errno> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(Errno::ERANGE);
    }
    if name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    for (prefix, space) in SPACES {
        if let Some(rest) = name.strip_prefix(prefix) {
            if rest.is_empty() {
                return Err(Errno::EINVAL);
            }
            return space.ok_or(Errno::EOPNOTSUPP);
        }
    }
    Err(Errno::EOPNOTSUPP)
}

/// Checks that `cred` may read (or `write`) attribute `name` of `node`.
fn allowed(cred: &Cred, node: &Node, name: &[u8], write: bool) -> Result<(), Errno> {
    let root = perm::is_root(cred);
    let refused = if write { Errno::EPERM } else { Errno::ENODATA };
    match space(name)? {
        Space::Trusted if !root => Err(refused),
        Space::Security if write && !root => Err(Errno::EPERM),
        Space::Trusted | Space::Security => Ok(()),
        Space::User => {
            if !matches!(node.kind, FileKind::File | FileKind::Dir) {
                return Err(refused);
            }
            if write && node.is_dir() && node.mode() & S_ISVTX != 0 && !perm::is_owner(cred, node) {
                return Err(Errno::EPERM);
            }
            perm::check(cred, node, if write { access::W } else { access::R })
        }
    }
}

/// Sets attribute `name` of `ino` to `value`; `flags` may ask that it not exist yet
/// (`EEXIST`) or that it exist already (`ENODATA`).
pub fn set<S: FsState>(
    tx: Tx<'_, S>,
    ino: u64,
    name: &[u8],
    value: &[u8],
    flags: u32,
) -> OpResult<(Effects, FsReply)> {
    if flags & !(xattr_flags::CREATE | xattr_flags::REPLACE) != 0 {
        return Err(Errno::EINVAL.into());
    }
    space(name)?;
    if value.len() > XATTR_VALUE_MAX {
        return Err(Errno::E2BIG.into());
    }
    let node = tx.node(ino)?;
    allowed(tx.cred, &node, name, true)?;
    let exists = node.rec.xattrs().get(&Box::from(name)).is_some();
    if exists && flags & xattr_flags::CREATE != 0 {
        return Err(Errno::EEXIST.into());
    }
    if !exists && flags & xattr_flags::REPLACE != 0 {
        return Err(Errno::ENODATA.into());
    }
    write(tx, &node, name, Some(value.into()))
}

/// Removes attribute `name` of `ino` (`ENODATA` if absent).
pub fn remove<S: FsState>(tx: Tx<'_, S>, ino: u64, name: &[u8]) -> OpResult<(Effects, FsReply)> {
    space(name)?;
    let node = tx.node(ino)?;
    allowed(tx.cred, &node, name, true)?;
    if node.rec.xattrs().get(&Box::from(name)).is_none() {
        return Err(Errno::ENODATA.into());
    }
    write(tx, &node, name, None)
}

fn write<S: FsState>(
    tx: Tx<'_, S>,
    node: &Node,
    name: &[u8],
    value: Option<Box<[u8]>>,
) -> OpResult<(Effects, FsReply)> {
    let now = tx.now;
    let (effects, ()) = tx.commit(|edit| {
        edit.set_xattr(node.ino, name.into(), value);
        edit.set_attrs(node.ino, vec![RecAttr::Ctime(now)]);
    })?;
    Ok((effects, FsReply::Done))
}

/// The value of attribute `name` of `ino` (`ENODATA` if absent).
pub fn get<S: FsState>(
    state: &S,
    ctx: ShardCtx<'_>,
    cred: &Cred,
    ino: u64,
    name: &[u8],
) -> OpResult<FsReply> {
    space(name)?;
    let node = node::load(state, ctx, ino)?;
    allowed(cred, &node, name, false)?;
    let value = node.rec.xattrs().get(&Box::from(name)).ok_or(Errno::ENODATA)?;
    Ok(FsReply::Xattr(value.to_vec()))
}

/// The attribute names of `ino` that `cred` may see (`trusted.` ones only for root). Listing
/// needs no permission, as on Linux.
pub fn list<S: FsState>(state: &S, ctx: ShardCtx<'_>, cred: &Cred, ino: u64) -> OpResult<FsReply> {
    let node = node::load(state, ctx, ino)?;
    let visible = |name: &[u8]| space(name) != Ok(Space::Trusted) || perm::is_root(cred);
    let names = node
        .rec
        .xattrs()
        .iter()
        .map(|(n, _)| n.to_vec())
        .filter(|n| visible(n))
        .collect();
    Ok(FsReply::XattrNames(names))
}
