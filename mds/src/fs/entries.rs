//! One directory's entries: emptiness, whole same-name groups a page at a time (for
//! listings), visible names, and names resolved under the name-conflict rule
//! (`crdt::model::directory`).
//!
//! [`Entries::resolve`] follows `directory::lookup_in` but returns the stored entry, because
//! removing or renaming an entry needs its stored name, not only its inode; and a derived name
//! shorter than the limit was not cut, so its base is read as one group rather than scanned
//! as a prefix.

use crdt::Tag;
use crdt::model::directory::{EntrySource, parse_derived, resolve_group};
use crdt::model::{Entry, Ino, NAME_MAX, Name, Visible};

use crate::error::StoreError;
use crate::fs::state::FsState;

/// Entries sharing one stored name, in inode order, with their tags.
pub type Group = Vec<(Entry, Vec<Tag>)>;

/// The entries of directory `dir`.
#[derive(Debug)]
pub struct Entries<'s, S> {
    state: &'s S,
    dir: Ino,
}

impl<'s, S: FsState> Entries<'s, S> {
    /// The entries of `dir`.
    pub fn new(state: &'s S, dir: Ino) -> Self {
        Entries { state, dir }
    }

    /// Whether the directory has no entry.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.state.entries_after(self.dir, None, 1)?.is_empty())
    }

    /// The entries stored under exactly `name`.
    pub fn group(&self, name: &Name) -> Result<Group, StoreError> {
        self.state.dir(self.dir).group(name)
    }

    /// Whole groups from the entries after `after`: about `limit` entries, never splitting a
    /// group. `more` is false when the directory ends within them.
    pub fn groups_after(
        &self,
        after: Option<&Entry>,
        limit: usize,
    ) -> Result<(Vec<Group>, bool), StoreError> {
        let limit = limit.max(1);
        let page = self.state.entries_after(self.dir, after, limit)?;
        let more = page.len() == limit;
        let mut groups: Vec<Group> = page
            .chunk_by(|a, b| a.0.name == b.0.name)
            .map(<[_]>::to_vec)
            .collect();
        if more
            && let Some(last) = groups.last_mut()
            && let Some(name) = last.first().map(|(e, _)| e.name.clone())
        {
            // The page may have cut the last group short: read it whole.
            *last = self.group(&name)?;
        }
        Ok((groups, more))
    }

    /// The visible names of `group`.
    pub fn visible(&self, group: &[(Entry, Vec<Tag>)]) -> Result<Vec<Visible>, StoreError> {
        let mut failed = None;
        let visible = resolve_group(group, |n| match self.group(n) {
            Ok(g) => !g.is_empty(),
            Err(e) => {
                // Ends the search for a free name; the result is discarded.
                failed.get_or_insert(e);
                false
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(visible),
        }
    }

    /// The stored entry that visible name `name` stands for.
    pub fn resolve(&self, name: &Name) -> Result<Option<Entry>, StoreError> {
        let group = self.group(name)?;
        if !group.is_empty() {
            // The winner keeps the name; `is_stored` only shapes the losers' names.
            return Ok(resolve_group(&group, |_| false)
                .into_iter()
                .next()
                .map(|v| v.entry));
        }
        let Some((base, ino)) = parse_derived(name) else {
            return Ok(None);
        };
        let Ok(stored) = Name::new(base) else {
            return Ok(None);
        };
        let candidates = if name.as_bytes().len() < NAME_MAX {
            self.group(&stored)?
        } else {
            self.state.dir(self.dir).with_prefix(base)?
        };
        for group in candidates.chunk_by(|a, b| a.0.name == b.0.name) {
            if !group.iter().any(|(e, _)| e.ino == ino) {
                continue;
            }
            if let Some(v) = self.visible(group)?.into_iter().find(|v| v.name == *name) {
                return Ok(Some(v.entry));
            }
        }
        Ok(None)
    }
}
