//! Directory entries: an add-wins OR-Set of (name, inode) pairs, and the rule that gives every
//! surviving entry a distinct visible name.
//!
//! # The name-conflict rule
//!
//! Concurrent adds of one name that point at different inodes all survive in the set. What a
//! reader sees is computed from the set alone, so every replica that holds the same set shows
//! the same names, whatever order the adds arrived in:
//!
//! 1. Entries are grouped by name. A name with one entry is shown as it is.
//! 2. In a group of several, the *winner* is the entry added first: the smallest HLC stamp of
//!    its surviving adds, then the smallest inode number. It keeps the name.
//! 3. Every other entry is shown as `<name>~<inode as 16 hex digits>`, the name being cut (at a
//!    byte boundary) so that the result fits in [`NAME_MAX`] bytes.
//! 4. A derived name never hides a stored one: if it equals a stored name, `~1`, `~2`, … is
//!    appended until it does not.
//!
//! Losers of one group have distinct inodes, so their derived names differ. Two losers of
//! *different* groups could only get the same derived name if both stored names are longer
//! than the cut (about 238 bytes), agree on everything before it, and point at the same inode;
//! a lookup then finds the first in (name, inode) order.
//!
//! Everything here works one group at a time, so a store can stream a listing in pages and
//! resolve a lookup with a point read and, for derived names, one prefix scan.

use std::convert::Infallible;

use serde::{Deserialize, Serialize};

use crate::hlc::Timestamp;
use crate::model::inode::Ino;
use crate::model::name::{NAME_MAX, Name};
use crate::orset::{OrSet, Tag};

/// One stored directory entry. Ordered by name, then inode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The name the entry was added under.
    pub name: Name,
    /// The inode it points at.
    pub ino: Ino,
}

/// A directory's entries.
pub type Directory = OrSet<Entry>;

/// An entry as a reader sees it, after the name-conflict rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visible {
    /// The name shown to readers: the stored name, or a derived one for a conflict loser.
    pub name: Name,
    /// The stored entry behind it.
    pub entry: Entry,
}

/// Where a lookup reads a directory's entries from: an [`OrSet`] in memory, or a store.
pub trait EntrySource {
    /// A storage failure.
    type Error;
    /// The entries stored under exactly `name`, in inode order, with their tags.
    fn group(&self, name: &Name) -> Result<Vec<(Entry, Vec<Tag>)>, Self::Error>;
    /// The entries whose stored name starts with `prefix`, in (name, inode) order.
    fn with_prefix(&self, prefix: &[u8]) -> Result<Vec<(Entry, Vec<Tag>)>, Self::Error>;
}

/// The visible names of one same-name group (its entries in inode order). `is_stored` tells
/// whether a name is stored in the directory.
pub fn resolve_group(group: &[(Entry, Vec<Tag>)], mut is_stored: impl FnMut(&Name) -> bool) -> Vec<Visible> {
    let Some(win) = winner(group) else {
        return Vec::new();
    };
    let mut out = vec![Visible {
        name: win.name.clone(),
        entry: win.clone(),
    }];
    for (loser, _) in group.iter().filter(|(e, _)| e != win) {
        let name = (0..)
            .map(|k| derived_name(&loser.name, loser.ino, k))
            .find(|n| !is_stored(n))
            .expect("an unbounded search over suffixes finds a free name");
        out.push(Visible {
            name,
            entry: loser.clone(),
        });
    }
    out
}

/// Resolves `name` in a directory under the name-conflict rule.
pub fn lookup_in<S: EntrySource>(src: &S, name: &Name) -> Result<Option<Ino>, S::Error> {
    let group = src.group(name)?;
    if let Some(win) = winner(&group) {
        return Ok(Some(win.ino));
    }
    let Some((base, ino)) = parse_derived(name) else {
        return Ok(None);
    };
    let candidates = src.with_prefix(base)?;
    for group in candidates.chunk_by(|a, b| a.0.name == b.0.name) {
        if !group.iter().any(|(e, _)| e.ino == ino) {
            continue;
        }
        let mut stored_err = None;
        let visible = resolve_group(group, |n| match src.group(n) {
            Ok(g) => !g.is_empty(),
            Err(e) => {
                // Answer "free" so the search for a free name ends; the error is returned.
                stored_err.get_or_insert(e);
                false
            }
        });
        if let Some(e) = stored_err {
            return Err(e);
        }
        if let Some(v) = visible.into_iter().find(|v| v.name == *name) {
            return Ok(Some(v.entry.ino));
        }
    }
    Ok(None)
}

/// Splits a derived name `<base>~<16 hex digits>[~<k>]` into the base (the stored name, or
/// its cut prefix) and the inode.
pub fn parse_derived(name: &Name) -> Option<(&[u8], Ino)> {
    let bytes = name.as_bytes();
    let (rest, last) = split_tilde(bytes)?;
    if let Some(ino) = hex_of(last) {
        return (!rest.is_empty()).then_some((rest, Ino(ino)));
    }
    let is_k = !last.is_empty() && last.iter().all(u8::is_ascii_digit) && last[0] != b'0';
    let (base, hex) = split_tilde(rest).filter(|_| is_k)?;
    let ino = hex_of(hex)?;
    (!base.is_empty()).then_some((base, Ino(ino)))
}

fn split_tilde(b: &[u8]) -> Option<(&[u8], &[u8])> {
    b.iter().rposition(|&c| c == b'~').map(|i| (&b[..i], &b[i + 1..]))
}

fn hex_of(s: &[u8]) -> Option<u64> {
    let lower_hex = s.len() == 16 && s.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    lower_hex
        .then(|| {
            std::str::from_utf8(s)
                .ok()
                .and_then(|h| u64::from_str_radix(h, 16).ok())
        })
        .flatten()
}

/// Lookups and listings under the name-conflict rule, for an in-memory directory.
pub trait DirectoryView {
    /// The inode a reader reaches through `name` (a stored or a derived name).
    fn lookup(&self, name: &Name) -> Option<Ino>;
    /// Every entry with its visible name, in (stored name, inode) order.
    fn visible(&self) -> Vec<Visible>;
}

impl EntrySource for Directory {
    type Error = Infallible;

    fn group(&self, name: &Name) -> Result<Vec<(Entry, Vec<Tag>)>, Infallible> {
        let lo = Entry {
            name: name.clone(),
            ino: Ino(0),
        };
        let hi = Entry {
            name: name.clone(),
            ino: Ino(u64::MAX),
        };
        Ok(self
            .range(lo..=hi)
            .map(|(e, t)| (e.clone(), t.to_vec()))
            .collect())
    }

    fn with_prefix(&self, prefix: &[u8]) -> Result<Vec<(Entry, Vec<Tag>)>, Infallible> {
        let Ok(start) = Name::new(prefix) else {
            return Ok(Vec::new());
        };
        let from = Entry {
            name: start,
            ino: Ino(0),
        };
        Ok(self
            .range(from..)
            .take_while(|(e, _)| e.name.as_bytes().starts_with(prefix))
            .map(|(e, t)| (e.clone(), t.to_vec()))
            .collect())
    }
}

impl DirectoryView for Directory {
    fn lookup(&self, name: &Name) -> Option<Ino> {
        match lookup_in(self, name) {
            Ok(found) => found,
            Err(never) => match never {},
        }
    }

    fn visible(&self) -> Vec<Visible> {
        let all: Vec<(Entry, Vec<Tag>)> = self.iter().map(|(e, t)| (e.clone(), t.to_vec())).collect();
        let mut out = Vec::with_capacity(all.len());
        for group in all.chunk_by(|a, b| a.0.name == b.0.name) {
            out.extend(resolve_group(group, |n| {
                self.group(n).is_ok_and(|g| !g.is_empty())
            }));
        }
        out
    }
}

/// The entry of a same-name group that keeps the name: first added, then lowest inode.
fn winner(group: &[(Entry, Vec<Tag>)]) -> Option<&Entry> {
    group
        .iter()
        .min_by_key(|(e, tags)| (birth(tags), e.ino))
        .map(|(e, _)| e)
}

fn birth(tags: &[Tag]) -> Timestamp {
    tags.iter().map(|t| t.at).min().unwrap_or(Timestamp::ZERO)
}

/// `<name>~<ino hex>` (with `~k` appended for k > 0), cut to fit [`NAME_MAX`].
pub fn derived_name(name: &Name, ino: Ino, k: u32) -> Name {
    let suffix = if k == 0 {
        format!("~{:016x}", ino.0)
    } else {
        format!("~{:016x}~{k}", ino.0)
    };
    let keep = name.as_bytes().len().min(NAME_MAX - suffix.len());
    let mut bytes = name.as_bytes()[..keep].to_vec();
    bytes.extend_from_slice(suffix.as_bytes());
    Name::new(bytes).expect("a valid prefix plus an ASCII suffix is a valid name")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::NodeId;

    fn n(s: &str) -> Name {
        Name::try_from(s).unwrap()
    }

    fn at(ms: u64, node: u64) -> Timestamp {
        Timestamp::new(ms, 0, NodeId(node))
    }

    #[test]
    fn first_add_keeps_the_name_and_others_are_derived() {
        let mut d = Directory::new();
        d.add(
            Entry {
                name: n("a"),
                ino: Ino(7),
            },
            NodeId(2),
            at(20, 2),
        );
        d.add(
            Entry {
                name: n("a"),
                ino: Ino(9),
            },
            NodeId(1),
            at(10, 1),
        );
        assert_eq!(d.lookup(&n("a")), Some(Ino(9)));
        let names: Vec<_> = d.visible().into_iter().map(|v| (v.name, v.entry.ino)).collect();
        assert_eq!(names, vec![(n("a"), Ino(9)), (n("a~0000000000000007"), Ino(7))]);
        assert_eq!(d.lookup(&n("a~0000000000000007")), Some(Ino(7)));
    }

    #[test]
    fn derived_names_never_hide_stored_names() {
        let mut d = Directory::new();
        d.add(
            Entry {
                name: n("a"),
                ino: Ino(1),
            },
            NodeId(1),
            at(1, 1),
        );
        d.add(
            Entry {
                name: n("a"),
                ino: Ino(2),
            },
            NodeId(2),
            at(2, 2),
        );
        d.add(
            Entry {
                name: n("a~0000000000000002"),
                ino: Ino(3),
            },
            NodeId(1),
            at(3, 1),
        );
        assert_eq!(d.lookup(&n("a~0000000000000002")), Some(Ino(3)));
        assert_eq!(d.lookup(&n("a~0000000000000002~1")), Some(Ino(2)));
    }

    #[test]
    fn derived_names_parse_back() {
        let d = derived_name(&n("a~b"), Ino(0xab), 0);
        assert_eq!(parse_derived(&d), Some((&b"a~b"[..], Ino(0xab))));
        let d = derived_name(&n("x"), Ino(7), 3);
        assert_eq!(parse_derived(&d), Some((&b"x"[..], Ino(7))));
        assert_eq!(parse_derived(&n("plain")), None);
        assert_eq!(
            parse_derived(&n("a~00000000000000AB")),
            None,
            "uppercase is never derived"
        );
        assert_eq!(
            parse_derived(&n("a~0000000000000007~01")),
            None,
            "k has no leading zero"
        );
        assert_eq!(
            parse_derived(&n("~0000000000000007")),
            None,
            "derived names have a base"
        );
    }

    #[test]
    fn long_derived_names_resolve_through_the_cut_prefix() {
        let mut d = Directory::new();
        let long = Name::new(vec![b'y'; NAME_MAX]).unwrap();
        d.add(
            Entry {
                name: long.clone(),
                ino: Ino(1),
            },
            NodeId(1),
            at(1, 1),
        );
        d.add(
            Entry {
                name: long.clone(),
                ino: Ino(2),
            },
            NodeId(2),
            at(2, 2),
        );
        let derived = derived_name(&long, Ino(2), 0);
        assert_eq!(d.lookup(&derived), Some(Ino(2)));
        assert_eq!(d.visible()[1].name, derived);
    }

    #[test]
    fn derived_names_fit_name_max() {
        let long = Name::new(vec![b'x'; NAME_MAX]).unwrap();
        let d = derived_name(&long, Ino(u64::MAX), 12);
        assert_eq!(d.as_bytes().len(), NAME_MAX);
        assert!(d.as_bytes().ends_with(b"~ffffffffffffffff~12"));
    }
}
