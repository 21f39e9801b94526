//! A shard's chunk tables: the recorded copies of each chunk (`chunks`: shard, chunk,
//! chunkserver → version, full-report session), the file slot each live chunk belongs to (`owners`: shard, chunk →
//! inode, index), and the chunks whose file is gone but whose copies still exist (`garbage`).

use std::ops::Bound;

use heed::{RoTxn, RwTxn};
use proto::chunk::{FullReport, HeldChunk};

use crate::error::StoreError;
use crate::store::{Store, keys};

/// A copy record: version (u32), full-report session (u64).
const COPY_LEN: usize = 12;

fn u64_at(k: &[u8], at: usize, what: &'static str) -> Result<u64, StoreError> {
    k.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            what,
            reason: format!("{k:?}"),
        })
}

impl Store {
    /// The recorded copies of `chunk`: (chunkserver, version).
    pub fn chunk_copies(&self, r: &RoTxn, shard: u32, chunk: u64) -> Result<Vec<(u64, u32)>, StoreError> {
        let prefix = keys::shard_u64(shard, chunk);
        let mut copies = Vec::new();
        for kv in self.chunks.prefix_iter(r, &prefix)? {
            let (k, v) = kv?;
            let bad = |what: &'static str| StoreError::Corrupt {
                what,
                reason: format!("{k:?} = {v:?}"),
            };
            let server = u64::from_be_bytes(
                k.get(12..20)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("chunk copy key"))?,
            );
            let version = v
                .get(..4)
                .filter(|_| v.len() == COPY_LEN)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| bad("chunk copy"))?;
            copies.push((server, version));
        }
        Ok(copies)
    }

    /// The file slot a live chunk belongs to: (inode, index).
    pub fn chunk_owner(&self, r: &RoTxn, shard: u32, chunk: u64) -> Result<Option<(u64, u64)>, StoreError> {
        let Some(v) = self.owners.get(r, &keys::shard_u64(shard, chunk))? else {
            return Ok(None);
        };
        let bad = || StoreError::Corrupt {
            what: "chunk owner",
            reason: format!("{v:?}"),
        };
        let ino = u64::from_be_bytes(v.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(bad)?);
        let index = u64::from_be_bytes(v.get(8..16).and_then(|b| b.try_into().ok()).ok_or_else(bad)?);
        Ok(Some((ino, index)))
    }

    /// Records that `server` holds `chunk` at `version`, as seen by full-report `session` (0:
    /// outside a full report).
    pub fn put_chunk_copy(
        &self,
        w: &mut RwTxn,
        shard: u32,
        chunk: u64,
        server: u64,
        version: u32,
        session: u64,
    ) -> Result<(), StoreError> {
        let mut v = [0u8; COPY_LEN];
        v[..4].copy_from_slice(&version.to_be_bytes());
        v[4..].copy_from_slice(&session.to_be_bytes());
        Ok(self
            .chunks
            .put(w, &keys::shard_u64_u64(shard, chunk, server), &v)?)
    }

    /// Records that `server` no longer holds `chunk`.
    pub fn drop_chunk_copy(
        &self,
        w: &mut RwTxn,
        shard: u32,
        chunk: u64,
        server: u64,
    ) -> Result<(), StoreError> {
        self.chunks
            .delete(w, &keys::shard_u64_u64(shard, chunk, server))?;
        Ok(())
    }

    /// Up to `limit` live chunks of `shard` after chunk `after`, with their inode.
    pub fn owned_after(
        &self,
        r: &RoTxn,
        shard: u32,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        let from = keys::shard_u64(shard, after);
        let mut out = Vec::new();
        for kv in self
            .owners
            .range(r, &(Bound::Excluded(&from[..]), Bound::Unbounded))?
        {
            let (k, v) = kv?;
            if !k.starts_with(&keys::shard(shard)) || out.len() >= limit {
                break;
            }
            out.push((u64_at(k, 4, "chunk owner key")?, u64_at(v, 0, "chunk owner")?));
        }
        Ok(out)
    }

    /// Up to `limit` garbage chunks of `shard` after chunk `after`.
    pub fn garbage_after(
        &self,
        r: &RoTxn,
        shard: u32,
        after: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let from = keys::shard_u64(shard, after);
        let mut out = Vec::new();
        for kv in self
            .garbage
            .range(r, &(Bound::Excluded(&from[..]), Bound::Unbounded))?
        {
            let (k, _) = kv?;
            if !k.starts_with(&keys::shard(shard)) || out.len() >= limit {
                break;
            }
            out.push(u64_at(k, 4, "garbage key")?);
        }
        Ok(out)
    }

    /// Whether `chunk` is garbage.
    pub fn is_garbage(&self, r: &RoTxn, shard: u32, chunk: u64) -> Result<bool, StoreError> {
        Ok(self.garbage.get(r, &keys::shard_u64(shard, chunk))?.is_some())
    }

    /// `chunk` left its file: it is garbage while copies of it exist.
    pub fn free_chunk(&self, w: &mut RwTxn, shard: u32, chunk: u64) -> Result<(), StoreError> {
        self.owners.delete(w, &keys::shard_u64(shard, chunk))?;
        if !self.chunk_copies(w, shard, chunk)?.is_empty() {
            self.garbage.put(w, &keys::shard_u64(shard, chunk), &[])?;
        }
        Ok(())
    }

    /// Applies a chunkserver's report about the chunks of `shard` it holds and lost. A held
    /// chunk that belongs to no file becomes garbage (to be deleted); a garbage chunk whose
    /// last copy is gone is forgotten. The last part of a full report also drops every copy
    /// recorded on `server` that no part of its session listed.
    pub fn record_report(
        &self,
        w: &mut RwTxn,
        shard: u32,
        server: u64,
        held: &[HeldChunk],
        lost: &[u64],
        full: Option<FullReport>,
    ) -> Result<(), StoreError> {
        let session = full.map_or(0, |f| f.session);
        for h in held {
            if self.chunk_owner(w, shard, h.chunk)?.is_none() {
                self.garbage.put(w, &keys::shard_u64(shard, h.chunk), &[])?;
            }
            self.put_chunk_copy(w, shard, h.chunk, server, h.version, session)?;
        }
        let mut gone: Vec<u64> = lost.to_vec();
        if let Some(FullReport { session, last: true }) = full {
            for kv in self.chunks.prefix_iter(w, &keys::shard(shard))? {
                let (k, v) = kv?;
                let seen = u64_at(v, 4, "chunk copy")?;
                if u64_at(k, 12, "chunk copy key")? == server && seen != session {
                    gone.push(u64_at(k, 4, "chunk copy key")?);
                }
            }
        }
        for chunk in gone {
            self.drop_chunk_copy(w, shard, chunk, server)?;
            if self.chunk_copies(w, shard, chunk)?.is_empty() {
                self.garbage.delete(w, &keys::shard_u64(shard, chunk))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(chunk: u64, version: u32) -> HeldChunk {
        HeldChunk { chunk, version }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 64 << 20, 0).unwrap();
        (dir, store)
    }

    fn own(store: &Store, w: &mut RwTxn, chunk: u64) {
        store
            .owners
            .put(w, &keys::shard_u64(0, chunk), &[0u8; 16])
            .unwrap();
    }

    #[test]
    fn reports_record_copies_and_unknown_chunks_become_garbage() {
        let (_d, store) = store();
        let mut w = store.env.write_txn().unwrap();
        own(&store, &mut w, 10);
        store
            .record_report(&mut w, 0, 1, &[held(10, 2), held(11, 1)], &[], None)
            .unwrap();
        assert_eq!(store.chunk_copies(&w, 0, 10).unwrap(), vec![(1, 2)]);
        assert_eq!(
            store.garbage_after(&w, 0, 0, 10).unwrap(),
            vec![11],
            "no file owns chunk 11"
        );
        store.record_report(&mut w, 0, 1, &[], &[11], None).unwrap();
        assert_eq!(
            store.garbage_after(&w, 0, 0, 10).unwrap(),
            Vec::<u64>::new(),
            "its last copy is gone"
        );
    }

    #[test]
    fn a_full_report_drops_copies_it_does_not_list() {
        let (_d, store) = store();
        let mut w = store.env.write_txn().unwrap();
        for c in [10, 11, 12] {
            own(&store, &mut w, c);
        }
        store
            .record_report(&mut w, 0, 1, &[held(10, 1), held(11, 1), held(12, 1)], &[], None)
            .unwrap();
        store
            .record_report(&mut w, 0, 2, &[held(11, 1), held(12, 1)], &[], None)
            .unwrap();
        let part = |last| Some(FullReport { session: 77, last });
        store
            .record_report(&mut w, 0, 1, &[held(11, 1)], &[], part(false))
            .unwrap();
        assert_eq!(
            store.chunk_copies(&w, 0, 10).unwrap(),
            vec![(1, 1)],
            "dropped only at the last part"
        );
        store
            .record_report(&mut w, 0, 1, &[held(12, 2)], &[], part(true))
            .unwrap();
        assert_eq!(store.chunk_copies(&w, 0, 10).unwrap(), vec![]);
        assert_eq!(store.chunk_copies(&w, 0, 11).unwrap(), vec![(1, 1), (2, 1)]);
        assert_eq!(
            store.chunk_copies(&w, 0, 12).unwrap(),
            vec![(1, 2), (2, 1)],
            "other servers' copies stay"
        );
        assert_eq!(store.owned_after(&w, 0, 10, 10).unwrap(), vec![(11, 0), (12, 0)]);
    }

    #[test]
    fn a_freed_chunk_is_garbage_only_while_copies_exist() {
        let (_d, store) = store();
        let mut w = store.env.write_txn().unwrap();
        own(&store, &mut w, 10);
        own(&store, &mut w, 11);
        store
            .record_report(&mut w, 0, 1, &[held(10, 1)], &[], None)
            .unwrap();
        store.free_chunk(&mut w, 0, 10).unwrap();
        store.free_chunk(&mut w, 0, 11).unwrap();
        assert_eq!(store.garbage_after(&w, 0, 0, 10).unwrap(), vec![10]);
        assert_eq!(store.owned_after(&w, 0, 0, 10).unwrap(), vec![]);
    }
}
