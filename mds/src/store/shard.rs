//! One shard's state-machine records: the state machine's reads ([`ShardView`], implementing
//! `FsState`) and writing what a command changed ([`Store::write_effects`]).

use std::collections::BTreeSet;
use std::ops::Bound;

use crdt::codec::{self, Versioned};
use crdt::model::directory::EntrySource;
use crdt::model::{Entry, Ino, Inode, Name, QuotaUsage, RecordsView};
use crdt::orset::Tag;
use crdt::{CausalContext, Timestamp};
use heed::{RoTxn, RwTxn};
use proto::fs::QuotaLimit;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::fs::{Effects, FsState, HandleChange, HandleInfo, HeldLock, HeldLocks, ShardMeta, StoredLimit};
use crate::store::{Store, keys};

/// Stored form of an entry's tags.
#[derive(Serialize, Deserialize)]
struct StoredTags(Vec<Tag>);

impl Versioned for StoredTags {
    const KIND: u8 = b't';
    const VERSION: u8 = 1;
}

/// Stored form of a directory's causal context.
#[derive(Serialize, Deserialize)]
struct StoredContext(CausalContext);

impl Versioned for StoredContext {
    const KIND: u8 = b'x';
    const VERSION: u8 = 1;
}

fn decode<T: Versioned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    codec::decode(bytes).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

/// A shard's records as seen by one transaction. Over a write transaction it sees the
/// transaction's own earlier writes.
pub struct ShardView<'a, 'e> {
    store: &'a Store,
    txn: &'a RoTxn<'e>,
    shard: u32,
}

impl<'a, 'e> ShardView<'a, 'e> {
    /// The view of `shard` through `txn`.
    pub fn new(store: &'a Store, txn: &'a RoTxn<'e>, shard: u32) -> Self {
        ShardView { store, txn, shard }
    }

    fn entries_in(
        &self,
        from: Bound<&[u8]>,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Entry, Vec<Tag>)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.store.entries.range(self.txn, &(from, Bound::Unbounded))? {
            let (k, v) = kv?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            let (_, entry) = keys::parse_entry(k).ok_or_else(|| StoreError::Corrupt {
                what: "entry key",
                reason: format!("{k:?}"),
            })?;
            out.push((entry, decode::<StoredTags>("entry", v)?.0));
        }
        Ok(out)
    }
}

impl RecordsView for ShardView<'_, '_> {
    type Error = StoreError;

    fn inode(&self, ino: Ino) -> Result<Option<Inode>, StoreError> {
        let v = self
            .store
            .inodes
            .get(self.txn, &keys::shard_u64(self.shard, ino.0))?;
        v.map(|b| decode("inode", b)).transpose()
    }

    fn dir_context(&self, dir: Ino) -> Result<CausalContext, StoreError> {
        let v = self
            .store
            .contexts
            .get(self.txn, &keys::shard_u64(self.shard, dir.0))?;
        Ok(v.map(|b| decode::<StoredContext>("directory context", b))
            .transpose()?
            .map(|c| c.0)
            .unwrap_or_default())
    }

    fn entry_tags(&self, dir: Ino, entry: &Entry) -> Result<Vec<Tag>, StoreError> {
        let v = self
            .store
            .entries
            .get(self.txn, &keys::entry(self.shard, dir, entry))?;
        Ok(v.map(|b| decode::<StoredTags>("entry", b))
            .transpose()?
            .map(|t| t.0)
            .unwrap_or_default())
    }

    fn quota(&self, root: Ino) -> Result<Option<QuotaUsage>, StoreError> {
        let v = self
            .store
            .quotas
            .get(self.txn, &keys::shard_u64(self.shard, root.0))?;
        v.map(|b| decode("quota", b)).transpose()
    }

    fn floor(&self) -> Result<Timestamp, StoreError> {
        Ok(Timestamp::ZERO)
    }
}

impl std::fmt::Debug for ShardView<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardView")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

/// Lookups by name within the directory `dir` of a shard.
#[derive(Debug)]
pub struct DirSource<'v, 'a, 'e> {
    view: &'v ShardView<'a, 'e>,
    dir: Ino,
}

impl EntrySource for DirSource<'_, '_, '_> {
    type Error = StoreError;

    fn group(&self, name: &Name) -> Result<Vec<(Entry, Vec<Tag>)>, StoreError> {
        let prefix = keys::name_prefix(self.view.shard, self.dir, name.as_bytes());
        self.view
            .entries_in(Bound::Included(&prefix), &prefix, usize::MAX)
    }

    fn with_prefix(&self, prefix: &[u8]) -> Result<Vec<(Entry, Vec<Tag>)>, StoreError> {
        let mut start = keys::dir_prefix(self.view.shard, self.dir).to_vec();
        start.extend_from_slice(prefix);
        self.view.entries_in(Bound::Included(&start), &start, usize::MAX)
    }
}

impl FsState for ShardView<'_, '_> {
    fn dir(&self, dir: Ino) -> impl EntrySource<Error = StoreError> + '_ {
        DirSource { view: self, dir }
    }

    fn meta(&self) -> Result<ShardMeta, StoreError> {
        let v = self.store.meta.get(self.txn, &keys::shard(self.shard))?;
        Ok(v.map(|b| decode("shard meta", b))
            .transpose()?
            .unwrap_or_default())
    }

    fn handle(&self, client: u64, handle: u64) -> Result<Option<HandleInfo>, StoreError> {
        let v = self
            .store
            .handles
            .get(self.txn, &keys::shard_u64_u64(self.shard, client, handle))?;
        v.map(|b| decode("handle", b)).transpose()
    }

    fn client_handles(&self, client: u64) -> Result<Vec<(u64, HandleInfo)>, StoreError> {
        let prefix = keys::shard_u64(self.shard, client);
        let mut out = Vec::new();
        for kv in self.store.handles.prefix_iter(self.txn, &prefix)? {
            let (k, v) = kv?;
            let handle = k
                .get(12..20)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt {
                    what: "handle key",
                    reason: format!("{k:?}"),
                })?;
            out.push((handle, decode("handle", v)?));
        }
        Ok(out)
    }

    fn open_handles(&self, ino: Ino) -> Result<u64, StoreError> {
        let prefix = keys::shard_u64(self.shard, ino.0);
        Ok(self.store.opens.prefix_iter(self.txn, &prefix)?.count() as u64)
    }

    fn entries_after(
        &self,
        dir: Ino,
        after: Option<&Entry>,
        limit: usize,
    ) -> Result<Vec<(Entry, Vec<Tag>)>, StoreError> {
        let prefix = keys::dir_prefix(self.shard, dir);
        match after {
            Some(e) => {
                let from = keys::entry(self.shard, dir, e);
                self.entries_in(Bound::Excluded(&from), &prefix, limit)
            }
            None => self.entries_in(Bound::Included(&prefix), &prefix, limit),
        }
    }

    fn locks(&self, ino: Ino) -> Result<Vec<HeldLock>, StoreError> {
        let v = self
            .store
            .locks
            .get(self.txn, &keys::shard_u64(self.shard, ino.0))?;
        Ok(v.map(|b| decode::<HeldLocks>("locks", b))
            .transpose()?
            .map(|l| l.0)
            .unwrap_or_default())
    }

    fn all_locks(&self) -> Result<Vec<(Ino, Vec<HeldLock>)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.store.locks.prefix_iter(self.txn, &keys::shard(self.shard))? {
            let (k, v) = kv?;
            let ino = k
                .get(4..12)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt {
                    what: "lock key",
                    reason: format!("{k:?}"),
                })?;
            out.push((Ino(ino), decode::<HeldLocks>("locks", v)?.0));
        }
        Ok(out)
    }

    fn chunk_copies(&self, chunk: u64) -> Result<Vec<(u64, u32)>, StoreError> {
        self.store.chunk_copies(self.txn, self.shard, chunk)
    }

    fn chunkserver_addr(&self, id: u64) -> Result<Option<String>, StoreError> {
        Ok(self.store.chunkserver(self.txn, id)?.map(|cs| cs.addr))
    }

    fn quota_limit(&self, dir: Ino) -> Result<Option<QuotaLimit>, StoreError> {
        let v = self
            .store
            .quota_limits
            .get(self.txn, &keys::shard_u64(self.shard, dir.0))?;
        Ok(v.map(|b| decode::<StoredLimit>("quota limit", b))
            .transpose()?
            .map(|l| l.0))
    }

    fn has_quotas(&self) -> Result<bool, StoreError> {
        let prefix = keys::shard(self.shard);
        Ok(self
            .store
            .quota_limits
            .prefix_iter(self.txn, &prefix)?
            .next()
            .is_some())
    }

    fn capacity(&self) -> Result<(u64, u64), StoreError> {
        let servers = self.store.chunkservers(self.txn)?;
        Ok(servers
            .iter()
            .fold((0, 0), |(t, u), cs| (t + cs.capacity, u + cs.used)))
    }
}

impl Store {
    /// Writes what a command changed, in the caller's transaction.
    pub fn write_effects(&self, w: &mut RwTxn, shard: u32, effects: Effects) -> Result<(), StoreError> {
        let Effects {
            records,
            meta,
            handles,
            locks,
            copies,
            owners,
            freed,
            limits,
            delta: _,
        } = effects;
        for (root, limit) in limits {
            let key = keys::shard_u64(shard, root);
            match limit {
                Some(l) => self.quota_limits.put(w, &key, &codec::encode(&StoredLimit(l)))?,
                None => {
                    self.quota_limits.delete(w, &key)?;
                }
            }
        }
        for (chunk, server, version) in copies {
            self.put_chunk_copy(w, shard, chunk, server, version, 0)?;
        }
        for (chunk, ino, index) in owners {
            let mut slot = [0u8; 16];
            slot[..8].copy_from_slice(&ino.to_be_bytes());
            slot[8..].copy_from_slice(&index.to_be_bytes());
            self.owners.put(w, &keys::shard_u64(shard, chunk), &slot)?;
        }
        for chunk in freed {
            self.free_chunk(w, shard, chunk)?;
        }
        for (ino, held) in locks {
            let key = keys::shard_u64(shard, ino);
            if held.is_empty() {
                self.locks.delete(w, &key)?;
            } else {
                self.locks.put(w, &key, &codec::encode(&HeldLocks(held)))?;
            }
        }
        for dir in records.dropped_dirs {
            let prefix = keys::dir_prefix(shard, dir);
            let mut end = prefix;
            end[4..].copy_from_slice(&(dir.0 + 1).to_be_bytes());
            if dir.0 == u64::MAX {
                self.entries
                    .delete_range(w, &(Bound::Included(&prefix[..]), Bound::Unbounded))?;
            } else {
                self.entries
                    .delete_range(w, &(Bound::Included(&prefix[..]), Bound::Excluded(&end[..])))?;
            }
            self.contexts.delete(w, &prefix)?;
        }
        for (ino, rec) in records.inodes {
            self.inodes
                .put(w, &keys::shard_u64(shard, ino.0), &codec::encode(&rec))?;
        }
        for (dir, entry, tags) in records.entries {
            let key = keys::entry(shard, dir, &entry);
            if tags.is_empty() {
                self.entries.delete(w, &key)?;
            } else {
                self.entries.put(w, &key, &codec::encode(&StoredTags(tags)))?;
            }
        }
        for (dir, ctx) in records.contexts {
            self.contexts.put(
                w,
                &keys::shard_u64(shard, dir.0),
                &codec::encode(&StoredContext(ctx)),
            )?;
        }
        for (root, usage) in records.quotas {
            let key = keys::shard_u64(shard, root.0);
            match usage {
                Some(u) => self.quotas.put(w, &key, &codec::encode(&u))?,
                None => {
                    self.quotas.delete(w, &key)?;
                }
            }
        }
        if let Some(meta) = meta {
            self.meta.put(w, &keys::shard(shard), &codec::encode(&meta))?;
        }
        for change in handles {
            match change {
                HandleChange::Open { handle, info } => {
                    self.opens.put(
                        w,
                        &keys::shard_u64_u64_u64(shard, info.ino, info.client, handle),
                        &[],
                    )?;
                    self.handles.put(
                        w,
                        &keys::shard_u64_u64(shard, info.client, handle),
                        &codec::encode(&info),
                    )?;
                }
                HandleChange::Close { client, handle, ino } => {
                    self.opens
                        .delete(w, &keys::shard_u64_u64_u64(shard, ino, client, handle))?;
                    self.handles
                        .delete(w, &keys::shard_u64_u64(shard, client, handle))?;
                }
            }
        }
        Ok(())
    }

    /// The clients holding open handles or locks in `shard`.
    pub fn session_holders(&self, r: &RoTxn, shard: u32) -> Result<BTreeSet<u64>, StoreError> {
        let mut out = BTreeSet::new();
        let prefix = keys::shard(shard);
        for kv in self.handles.prefix_iter(r, &prefix)? {
            let (k, _) = kv?;
            let client = k
                .get(4..12)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt {
                    what: "handle key",
                    reason: format!("{k:?}"),
                })?;
            out.insert(client);
        }
        for kv in self.locks.prefix_iter(r, &prefix)? {
            out.extend(decode::<HeldLocks>("locks", kv?.1)?.0.iter().map(|h| h.client));
        }
        Ok(out)
    }

    /// Replaces the shard's meta record.
    pub fn set_meta(&self, w: &mut RwTxn, shard: u32, meta: &ShardMeta) -> Result<(), StoreError> {
        Ok(self.meta.put(w, &keys::shard(shard), &codec::encode(meta))?)
    }
}
