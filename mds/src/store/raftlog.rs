//! The raft side of the store: log entries, hard state, conf state, snapshot metadata and the
//! applied index of every shard, and [`GroupStorage`], raft-rs's read view of them.
//!
//! The applied index is written in the same transaction as the effects of the entries it
//! covers, so after a crash a shard resumes exactly where its persisted state ends.

use std::ops::Bound;

use heed::{RoTxn, RwTxn};
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

use crate::error::StoreError;
use crate::store::{Store, keys};

const HARD_STATE: u8 = 1;
const CONF_STATE: u8 = 2;
const SNAPSHOT: u8 = 3;
const APPLIED: u8 = 4;

fn pb<M: protobuf::Message>(m: &M) -> Vec<u8> {
    m.write_to_bytes().expect("raft protobuf messages always encode")
}

fn unpb<M: protobuf::Message>(what: &'static str, b: &[u8]) -> Result<M, StoreError> {
    M::parse_from_bytes(b).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

/// Reads and writes of one shard's raft records.
impl Store {
    /// The hard state (default if none).
    pub fn hard_state(&self, r: &RoTxn, shard: u32) -> Result<HardState, StoreError> {
        self.raft_record(r, shard, HARD_STATE, "hard state")
    }

    /// The conf state as of the applied index (default if none).
    pub fn conf_state(&self, r: &RoTxn, shard: u32) -> Result<ConfState, StoreError> {
        self.raft_record(r, shard, CONF_STATE, "conf state")
    }

    /// Index and term of the last entry dropped from the log (0, 0 if none).
    pub fn snapshot_meta(&self, r: &RoTxn, shard: u32) -> Result<SnapshotMetadata, StoreError> {
        self.raft_record(r, shard, SNAPSHOT, "snapshot metadata")
    }

    /// Applied index and its term.
    pub fn applied(&self, r: &RoTxn, shard: u32) -> Result<(u64, u64), StoreError> {
        match self.raft.get(r, &keys::shard_tag(shard, APPLIED))? {
            None => Ok((0, 0)),
            Some(b) if b.len() == 16 => Ok((
                u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
                u64::from_be_bytes(b[8..].try_into().expect("8 bytes")),
            )),
            Some(_) => Err(StoreError::Corrupt {
                what: "applied index",
                reason: "not 16 bytes".into(),
            }),
        }
    }

    /// Whether the shard has any raft state on this node.
    pub fn has_group(&self, r: &RoTxn, shard: u32) -> Result<bool, StoreError> {
        Ok(self.raft.get(r, &keys::shard_tag(shard, CONF_STATE))?.is_some())
    }

    /// Every shard with raft state on this node.
    pub fn hosted_shards(&self, r: &RoTxn) -> Result<Vec<u32>, StoreError> {
        let mut out = Vec::new();
        for kv in self.raft.iter(r)? {
            let (k, _) = kv?;
            if k.len() == 5 && k[4] == CONF_STATE {
                out.push(u32::from_be_bytes(k[..4].try_into().expect("4 bytes")));
            }
        }
        Ok(out)
    }

    /// The last log index (the snapshot index if the log is empty).
    pub fn last_index(&self, r: &RoTxn, shard: u32) -> Result<u64, StoreError> {
        let lo = keys::shard_u64(shard, 0);
        let hi = keys::shard_u64(shard, u64::MAX);
        match self
            .log
            .rev_range(r, &(Bound::Included(&lo[..]), Bound::Included(&hi[..])))?
            .next()
        {
            Some(kv) => {
                let (k, _) = kv?;
                Ok(u64::from_be_bytes(
                    k[4..12].try_into().expect("log keys are 12 bytes"),
                ))
            }
            None => Ok(self.snapshot_meta(r, shard)?.index),
        }
    }

    /// Log entries `[low, high)`.
    pub fn entries(&self, r: &RoTxn, shard: u32, low: u64, high: u64) -> Result<Vec<Entry>, StoreError> {
        let lo = keys::shard_u64(shard, low);
        let hi = keys::shard_u64(shard, high);
        let mut out = Vec::new();
        for kv in self
            .log
            .range(r, &(Bound::Included(&lo[..]), Bound::Excluded(&hi[..])))?
        {
            out.push(unpb("log entry", kv?.1)?);
        }
        Ok(out)
    }

    /// Records `voters` as the shard's initial configuration, unless it has one.
    pub fn bootstrap_group(&self, w: &mut RwTxn, shard: u32, voters: &[u64]) -> Result<bool, StoreError> {
        if self.has_group(w, shard)? {
            return Ok(false);
        }
        let cs = ConfState::from((voters.to_vec(), vec![]));
        self.set_conf_state(w, shard, &cs)?;
        Ok(true)
    }

    /// Appends entries, first discarding every stored entry at or after the first new index.
    pub fn append(&self, w: &mut RwTxn, shard: u32, entries: &[Entry]) -> Result<(), StoreError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let lo = keys::shard_u64(shard, first.index);
        let hi = keys::shard_u64(shard, u64::MAX);
        self.log
            .delete_range(w, &(Bound::Included(&lo[..]), Bound::Included(&hi[..])))?;
        for e in entries {
            self.log.put(w, &keys::shard_u64(shard, e.index), &pb(e))?;
        }
        Ok(())
    }

    /// Stores the hard state.
    pub fn set_hard_state(&self, w: &mut RwTxn, shard: u32, hs: &HardState) -> Result<(), StoreError> {
        Ok(self.raft.put(w, &keys::shard_tag(shard, HARD_STATE), &pb(hs))?)
    }

    /// Raises the stored commit index.
    pub fn set_commit(&self, w: &mut RwTxn, shard: u32, commit: u64) -> Result<(), StoreError> {
        let mut hs = self.hard_state(w, shard)?;
        if commit > hs.commit {
            hs.commit = commit;
            self.set_hard_state(w, shard, &hs)?;
        }
        Ok(())
    }

    /// Stores the conf state.
    pub fn set_conf_state(&self, w: &mut RwTxn, shard: u32, cs: &ConfState) -> Result<(), StoreError> {
        Ok(self.raft.put(w, &keys::shard_tag(shard, CONF_STATE), &pb(cs))?)
    }

    /// Stores the applied index and its term.
    pub fn set_applied(&self, w: &mut RwTxn, shard: u32, index: u64, term: u64) -> Result<(), StoreError> {
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&index.to_be_bytes());
        v[8..].copy_from_slice(&term.to_be_bytes());
        Ok(self.raft.put(w, &keys::shard_tag(shard, APPLIED), &v)?)
    }

    /// Drops log entries up to and including `index` (which must be applied).
    pub fn compact(&self, w: &mut RwTxn, shard: u32, index: u64, term: u64) -> Result<(), StoreError> {
        let lo = keys::shard_u64(shard, 0);
        let hi = keys::shard_u64(shard, index);
        self.log
            .delete_range(w, &(Bound::Included(&lo[..]), Bound::Included(&hi[..])))?;
        let mut meta = self.snapshot_meta(w, shard)?;
        meta.index = index;
        meta.term = term;
        Ok(self.raft.put(w, &keys::shard_tag(shard, SNAPSHOT), &pb(&meta))?)
    }

    /// Resets the shard's raft records to a snapshot: empty log, the snapshot's configuration,
    /// applied and committed up to its index. The caller replaces the state records.
    pub fn install_snapshot_meta(
        &self,
        w: &mut RwTxn,
        shard: u32,
        meta: &SnapshotMetadata,
    ) -> Result<(), StoreError> {
        let lo = keys::shard_u64(shard, 0);
        let hi = keys::shard_u64(shard, u64::MAX);
        self.log
            .delete_range(w, &(Bound::Included(&lo[..]), Bound::Included(&hi[..])))?;
        self.raft.put(w, &keys::shard_tag(shard, SNAPSHOT), &pb(meta))?;
        self.set_conf_state(w, shard, meta.get_conf_state())?;
        self.set_applied(w, shard, meta.index, meta.term)?;
        self.set_commit(w, shard, meta.index)
    }

    fn raft_record<M: protobuf::Message>(
        &self,
        r: &RoTxn,
        shard: u32,
        tag: u8,
        what: &'static str,
    ) -> Result<M, StoreError> {
        match self.raft.get(r, &keys::shard_tag(shard, tag))? {
            Some(b) => unpb(what, b),
            None => Ok(M::new()),
        }
    }
}

fn storage_err(e: StoreError) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

/// raft-rs's view of one shard's log. Every call reads a fresh LMDB read transaction, so it
/// sees exactly what the host has committed.
#[derive(Debug, Clone)]
pub struct GroupStorage {
    store: Store,
    shard: u32,
}

impl GroupStorage {
    /// The view of `shard`.
    pub fn new(store: Store, shard: u32) -> Self {
        GroupStorage { store, shard }
    }

    fn term_of(&self, r: &RoTxn, idx: u64) -> Result<raft::Result<u64>, StoreError> {
        let snap = self.store.snapshot_meta(r, self.shard)?;
        if idx == snap.index {
            return Ok(Ok(snap.term));
        }
        if idx < snap.index {
            return Ok(Err(raft::Error::Store(StorageError::Compacted)));
        }
        Ok(match self.store.log.get(r, &keys::shard_u64(self.shard, idx))? {
            Some(b) => Ok(unpb::<Entry>("log entry", b)?.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        })
    }
}

impl raft::Storage for GroupStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let r = self.store.read().map_err(storage_err)?;
        let hs = self.store.hard_state(&r, self.shard).map_err(storage_err)?;
        let cs = self.store.conf_state(&r, self.shard).map_err(storage_err)?;
        Ok(RaftState::new(hs, cs))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _ctx: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let r = self.store.read().map_err(storage_err)?;
        if low
            <= self
                .store
                .snapshot_meta(&r, self.shard)
                .map_err(storage_err)?
                .index
        {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let mut out = self
            .store
            .entries(&r, self.shard, low, high)
            .map_err(storage_err)?;
        if out.len() as u64 != high - low {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let r = self.store.read().map_err(storage_err)?;
        self.term_of(&r, idx).map_err(storage_err)?
    }

    fn first_index(&self) -> raft::Result<u64> {
        let r = self.store.read().map_err(storage_err)?;
        Ok(self
            .store
            .snapshot_meta(&r, self.shard)
            .map_err(storage_err)?
            .index
            + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        let r = self.store.read().map_err(storage_err)?;
        self.store.last_index(&r, self.shard).map_err(storage_err)
    }

    /// A snapshot at the applied index. Its data is empty: the records travel on a stream of
    /// their own, read from a transaction whose applied index the sender puts in the metadata.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let r = self.store.read().map_err(storage_err)?;
        let (applied, term) = self.store.applied(&r, self.shard).map_err(storage_err)?;
        if applied < request_index {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        let mut snap = Snapshot::default();
        let meta = snap.mut_metadata();
        meta.index = applied;
        meta.term = term;
        meta.set_conf_state(self.store.conf_state(&r, self.shard).map_err(storage_err)?);
        Ok(snap)
    }
}
