//! An in-memory [`FsState`] for unit tests. It keeps one record per inode, per directory
//! entry and per directory context, as the store does, plus the shard's counters, open
//! handles, chunk locations and capacity; [`MemState::apply`] writes [`Effects`] the way the
//! store writes them.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ops::Bound;

use crdt::model::directory::EntrySource;
use crdt::model::{Changes, Entry, Ino, Inode, Name, QuotaUsage, RecordsView};
use crdt::{CausalContext, Tag, Timestamp};
use proto::fs::QuotaLimit;

use crate::error::StoreError;
use crate::fs::command::{Effects, HandleChange};
use crate::fs::state::{FsState, HandleInfo, HeldLock, ShardMeta};

/// A shard's state in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemState {
    inodes: BTreeMap<Ino, Inode>,
    entries: BTreeMap<Ino, BTreeMap<Entry, Vec<Tag>>>,
    contexts: BTreeMap<Ino, CausalContext>,
    quotas: BTreeMap<Ino, QuotaUsage>,
    meta: ShardMeta,
    handles: BTreeMap<(u64, u64), HandleInfo>,
    locks: BTreeMap<u64, Vec<HeldLock>>,
    limits: BTreeMap<Ino, QuotaLimit>,
    /// Recorded copies of each chunk: (chunkserver, version).
    pub copies: BTreeMap<u64, Vec<(u64, u32)>>,
    /// Registered chunkservers' data addresses.
    pub addrs: BTreeMap<u64, String>,
    /// Total and used bytes.
    pub capacity: (u64, u64),
    /// The most entries a single `entries_after` call has returned.
    pub widest_read: Cell<usize>,
}

impl MemState {
    /// Writes what a command changed.
    pub fn apply(&mut self, effects: Effects) {
        self.write(effects.records);
        if let Some(meta) = effects.meta {
            self.meta = meta;
        }
        for (chunk, server, version) in effects.copies {
            let copies = self.copies.entry(chunk).or_default();
            copies.retain(|c| c.0 != server);
            copies.push((server, version));
        }
        for (ino, limit) in effects.limits {
            match limit {
                Some(l) => self.limits.insert(Ino(ino), l),
                None => self.limits.remove(&Ino(ino)),
            };
        }
        for (ino, held) in effects.locks {
            if held.is_empty() {
                self.locks.remove(&ino);
            } else {
                self.locks.insert(ino, held);
            }
        }
        for change in effects.handles {
            match change {
                HandleChange::Open { handle, info } => {
                    self.handles.insert((info.client, handle), info);
                }
                HandleChange::Close { client, handle, .. } => {
                    self.handles.remove(&(client, handle));
                }
            }
        }
    }

    /// Writes namespace record changes: dropped directories first, then the rest.
    pub fn write(&mut self, changes: Changes) {
        for dir in changes.dropped_dirs {
            self.entries.remove(&dir);
            self.contexts.remove(&dir);
        }
        self.inodes.extend(changes.inodes);
        for (dir, entry, tags) in changes.entries {
            let entries = self.entries.entry(dir).or_default();
            if tags.is_empty() {
                entries.remove(&entry);
            } else {
                entries.insert(entry, tags);
            }
        }
        self.contexts.extend(changes.contexts);
        for (root, usage) in changes.quotas {
            match usage {
                Some(u) => self.quotas.insert(root, u),
                None => self.quotas.remove(&root),
            };
        }
    }

    /// The raw record of `ino`, tombstones included.
    pub fn record(&self, ino: Ino) -> Option<&Inode> {
        self.inodes.get(&ino)
    }

    /// Every stored entry of `dir`.
    pub fn entries_of(&self, dir: Ino) -> Vec<Entry> {
        self.entries
            .get(&dir)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl RecordsView for MemState {
    type Error = StoreError;

    fn inode(&self, ino: Ino) -> Result<Option<Inode>, StoreError> {
        Ok(self.inodes.get(&ino).cloned())
    }

    fn dir_context(&self, dir: Ino) -> Result<CausalContext, StoreError> {
        Ok(self.contexts.get(&dir).cloned().unwrap_or_default())
    }

    fn entry_tags(&self, dir: Ino, entry: &Entry) -> Result<Vec<Tag>, StoreError> {
        Ok(self
            .entries
            .get(&dir)
            .and_then(|m| m.get(entry))
            .cloned()
            .unwrap_or_default())
    }

    fn quota(&self, root: Ino) -> Result<Option<QuotaUsage>, StoreError> {
        Ok(self.quotas.get(&root).cloned())
    }

    fn floor(&self) -> Result<Timestamp, StoreError> {
        Ok(Timestamp::ZERO)
    }
}

/// Name lookups in one directory of a [`MemState`].
#[derive(Debug)]
pub struct MemDir<'s> {
    entries: Option<&'s BTreeMap<Entry, Vec<Tag>>>,
}

impl MemDir<'_> {
    fn scan(&self, from: Entry, mut keep: impl FnMut(&Entry) -> bool) -> Vec<(Entry, Vec<Tag>)> {
        let Some(entries) = self.entries else {
            return Vec::new();
        };
        entries
            .range(from..)
            .take_while(|(e, _)| keep(e))
            .map(|(e, t)| (e.clone(), t.clone()))
            .collect()
    }
}

impl EntrySource for MemDir<'_> {
    type Error = StoreError;

    fn group(&self, name: &Name) -> Result<Vec<(Entry, Vec<Tag>)>, StoreError> {
        Ok(self.scan(
            Entry {
                name: name.clone(),
                ino: Ino(0),
            },
            |e| e.name == *name,
        ))
    }

    fn with_prefix(&self, prefix: &[u8]) -> Result<Vec<(Entry, Vec<Tag>)>, StoreError> {
        let Ok(start) = Name::new(prefix) else {
            return Ok(Vec::new());
        };
        Ok(self.scan(
            Entry {
                name: start,
                ino: Ino(0),
            },
            |e| e.name.as_bytes().starts_with(prefix),
        ))
    }
}

impl FsState for MemState {
    fn dir(&self, dir: Ino) -> impl EntrySource<Error = StoreError> + '_ {
        MemDir {
            entries: self.entries.get(&dir),
        }
    }

    fn meta(&self) -> Result<ShardMeta, StoreError> {
        Ok(self.meta.clone())
    }

    fn handle(&self, client: u64, handle: u64) -> Result<Option<HandleInfo>, StoreError> {
        Ok(self.handles.get(&(client, handle)).cloned())
    }

    fn open_handles(&self, ino: Ino) -> Result<u64, StoreError> {
        Ok(self.handles.values().filter(|h| h.ino == ino.0).count() as u64)
    }

    fn client_handles(&self, client: u64) -> Result<Vec<(u64, HandleInfo)>, StoreError> {
        Ok(self
            .handles
            .range((client, 0)..=(client, u64::MAX))
            .map(|((_, h), info)| (*h, info.clone()))
            .collect())
    }

    fn entries_after(
        &self,
        dir: Ino,
        after: Option<&Entry>,
        limit: usize,
    ) -> Result<Vec<(Entry, Vec<Tag>)>, StoreError> {
        let Some(entries) = self.entries.get(&dir) else {
            return Ok(Vec::new());
        };
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let page: Vec<_> = entries
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(e, t)| (e.clone(), t.clone()))
            .collect();
        self.widest_read.set(self.widest_read.get().max(page.len()));
        Ok(page)
    }

    fn locks(&self, ino: Ino) -> Result<Vec<HeldLock>, StoreError> {
        Ok(self.locks.get(&ino.0).cloned().unwrap_or_default())
    }

    fn all_locks(&self) -> Result<Vec<(Ino, Vec<HeldLock>)>, StoreError> {
        Ok(self.locks.iter().map(|(i, l)| (Ino(*i), l.clone())).collect())
    }

    fn quota_limit(&self, dir: Ino) -> Result<Option<QuotaLimit>, StoreError> {
        Ok(self.limits.get(&dir).copied())
    }

    fn has_quotas(&self) -> Result<bool, StoreError> {
        Ok(!self.limits.is_empty())
    }

    fn chunk_copies(&self, chunk: u64) -> Result<Vec<(u64, u32)>, StoreError> {
        Ok(self.copies.get(&chunk).cloned().unwrap_or_default())
    }

    fn chunkserver_addr(&self, id: u64) -> Result<Option<String>, StoreError> {
        Ok(self.addrs.get(&id).cloned())
    }

    fn capacity(&self) -> Result<(u64, u64), StoreError> {
        Ok(self.capacity)
    }
}
