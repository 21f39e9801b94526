//! Directory listings, a page at a time.
//!
//! Entries come in (stored name, inode) order, `.` and `..` first on the first page. A page
//! holds whole same-name groups, because a group's visible names (the name-conflict rule)
//! depend on the whole group. It holds at most `max` entries, except that it always makes
//! progress: the dots, or one group, go in even when they exceed `max`. The cookie encodes
//! the last stored entry returned (or "just after the dots"), so it stays valid whatever
//! else is added to or removed from the directory, and the next page starts right after it.
//! Entries whose inode is gone or lives on another shard are left out.

use crdt::model::{Entry, FileKind, Ino, Name, Visible};
use proto::fs::{Cred, DirEntry, access};
use proto::{Errno, FsReply};

use crate::error::StoreError;
use crate::fs::command::ShardCtx;
use crate::fs::entries::Entries;
use crate::fs::node::{self, Node};
use crate::fs::ops::lookup::parent_of;
use crate::fs::outcome::OpResult;
use crate::fs::perm;
use crate::fs::state::FsState;

/// The first byte of every cookie: its format.
const COOKIE_V1: u8 = 1;

/// A page of directory `dir` after `cookie` (read permission needed: `EACCES`; `EINVAL` for
/// `max` 0 or a cookie this server did not make).
pub fn readdir<S: FsState>(
    state: &S,
    ctx: ShardCtx<'_>,
    cred: &Cred,
    dir: u64,
    cookie: Option<&[u8]>,
    max: u32,
    plus: bool,
) -> OpResult<FsReply> {
    let dir = node::load_dir(state, ctx, dir)?;
    perm::check(cred, &dir, access::R)?;
    if max == 0 {
        return Err(Errno::EINVAL.into());
    }
    let max = max as usize;
    let mut out = Vec::new();
    let mut after = match cookie {
        Some(cookie) => decode(cookie)?,
        None => {
            let parent = parent_of(&dir);
            let up = if parent == dir.ino {
                Some(dir.clone())
            } else {
                local(state, ctx, parent)?
            };
            out.push(dot(b".", dir.ino, Some(&dir), plus));
            out.push(dot(b"..", parent, up.as_ref(), plus));
            None
        }
    };
    let entries = Entries::new(state, dir.ino);
    loop {
        let room = max.saturating_sub(out.len());
        let (groups, more) = entries.groups_after(after.as_ref(), room + 1)?;
        for group in &groups {
            let visible = entries.visible(group)?;
            if !out.is_empty() && out.len() + visible.len() > max {
                return Ok(FsReply::Dir {
                    entries: out,
                    cookie: Some(encode(after.as_ref())),
                });
            }
            for v in visible {
                out.extend(listed(state, ctx, v, plus)?);
            }
            after = group.last().map(|(e, _)| e.clone());
        }
        if !more {
            return Ok(FsReply::Dir {
                entries: out,
                cookie: None,
            });
        }
    }
}

/// `.` or `..`, naming directory `ino` (with attributes if `plus` and it is here).
fn dot(name: &[u8], ino: Ino, node: Option<&Node>, plus: bool) -> DirEntry {
    DirEntry {
        name: name.to_vec(),
        ino: ino.0,
        kind: FileKind::Dir,
        attr: node.filter(|_| plus).map(Node::attr),
    }
}

/// Live inode `ino` if this shard owns it.
fn local<S: FsState>(state: &S, ctx: ShardCtx<'_>, ino: Ino) -> Result<Option<Node>, StoreError> {
    if !node::owned(ctx, ino.0) {
        return Ok(None);
    }
    node::live(state, ino)
}

/// The listing entry for `v`, if its inode is here and live.
fn listed<S: FsState>(
    state: &S,
    ctx: ShardCtx<'_>,
    v: Visible,
    plus: bool,
) -> Result<Option<DirEntry>, StoreError> {
    Ok(local(state, ctx, v.entry.ino)?.map(|node| DirEntry {
        name: v.name.into(),
        ino: node.ino.0,
        kind: node.kind,
        attr: plus.then(|| node.attr()),
    }))
}

/// The cookie resuming after stored entry `after` (after the dots if `None`).
fn encode(after: Option<&Entry>) -> Vec<u8> {
    let mut out = vec![COOKIE_V1];
    if let Some(e) = after {
        out.extend_from_slice(&e.ino.0.to_be_bytes());
        out.extend_from_slice(e.name.as_bytes());
    }
    out
}

fn decode(cookie: &[u8]) -> Result<Option<Entry>, Errno> {
    let Some((&COOKIE_V1, rest)) = cookie.split_first() else {
        return Err(Errno::EINVAL);
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let (ino, name) = rest.split_first_chunk::<8>().ok_or(Errno::EINVAL)?;
    let name = Name::new(name).map_err(|_| Errno::EINVAL)?;
    Ok(Some(Entry {
        name,
        ino: Ino(u64::from_be_bytes(*ino)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_round_trip_and_foreign_ones_are_refused() {
        let e = Entry {
            name: Name::new("x").unwrap(),
            ino: Ino(0x1234),
        };
        assert_eq!(decode(&encode(Some(&e))), Ok(Some(e)));
        assert_eq!(decode(&encode(None)), Ok(None));
        for bad in [
            &[][..],
            &[2][..],
            &[1, 0, 0][..],
            &[1, 0, 0, 0, 0, 0, 0, 0, 1][..],
            &[1, 0, 0, 0, 0, 0, 0, 0, 1, b'/'][..],
        ] {
            assert_eq!(decode(bad), Err(Errno::EINVAL), "{bad:?}");
        }
    }
}
