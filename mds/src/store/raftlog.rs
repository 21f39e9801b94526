//! The raft records LMDB keeps for every shard: conf state, snapshot metadata and the applied
//! index. The log and hard state live in the write-ahead log ([`crate::wal`]); the `log` table
//! and the hard-state records held them before it, and are read once to move them there.
//!
//! The applied index is written in the same transaction as the effects of the entries it
//! covers, so after a crash a shard resumes exactly where its persisted state ends.

use std::ops::Bound;

use heed::{RoTxn, RwTxn};
use raft::eraftpb::{ConfState, Entry, HardState, SnapshotMetadata};

use crate::error::StoreError;
use crate::store::{Store, keys};
use crate::wal::memlog::MemLog;

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
    /// The conf state as of the applied index (default if none).
    pub fn conf_state(&self, r: &RoTxn, shard: u32) -> Result<ConfState, StoreError> {
        self.raft_record(r, shard, CONF_STATE, "conf state")
    }

    /// Index and term of the last entry dropped from the log LMDB held before the write-ahead
    /// log (0, 0 if none).
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

    /// Records `voters` as the shard's initial configuration, unless it has one.
    pub fn bootstrap_group(&self, w: &mut RwTxn, shard: u32, voters: &[u64]) -> Result<bool, StoreError> {
        if self.has_group(w, shard)? {
            return Ok(false);
        }
        let cs = ConfState::from((voters.to_vec(), vec![]));
        self.set_conf_state(w, shard, &cs)?;
        Ok(true)
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

    /// Resets the shard's raft records to a snapshot: the snapshot's configuration, applied up
    /// to its index. The caller replaces the state records and resets the shard's log.
    pub fn install_snapshot_meta(
        &self,
        w: &mut RwTxn,
        shard: u32,
        meta: &SnapshotMetadata,
    ) -> Result<(), StoreError> {
        self.set_conf_state(w, shard, meta.get_conf_state())?;
        self.set_applied(w, shard, meta.index, meta.term)
    }

    /// The log and hard state of `shard` as LMDB held them before the write-ahead log
    /// (`None` if it holds neither).
    pub fn legacy_log(&self, r: &RoTxn, shard: u32) -> Result<Option<MemLog>, StoreError> {
        let hs: Option<HardState> = match self.raft.get(r, &keys::shard_tag(shard, HARD_STATE))? {
            Some(b) => Some(unpb("hard state", b)?),
            None => None,
        };
        let lo = keys::shard_u64(shard, 0);
        let hi = keys::shard_u64(shard, u64::MAX);
        let mut entries = Vec::new();
        for kv in self
            .log
            .range(r, &(Bound::Included(&lo[..]), Bound::Included(&hi[..])))?
        {
            entries.push(unpb::<Entry>("log entry", kv?.1)?);
        }
        if hs.is_none() && entries.is_empty() {
            return Ok(None);
        }
        let snap = self.snapshot_meta(r, shard)?;
        let mut log = MemLog::default();
        log.reset(snap.index, snap.term);
        log.append(shard, entries).map_err(|e| StoreError::Corrupt {
            what: "log entry",
            reason: e.to_string(),
        })?;
        log.set_hard_state(hs.unwrap_or_default());
        Ok(Some(log))
    }

    /// Drops the log and hard states LMDB held before the write-ahead log.
    pub fn drop_legacy_logs(&self, w: &mut RwTxn) -> Result<(), StoreError> {
        self.log.clear(w)?;
        for shard in self.hosted_shards(w)? {
            self.raft.delete(w, &keys::shard_tag(shard, HARD_STATE))?;
            self.raft.delete(w, &keys::shard_tag(shard, SNAPSHOT))?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_lmdb_held_before_the_write_ahead_log_reads_back_and_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 64 << 20, 0).unwrap();
        let mut w = store.write().unwrap();
        store.bootstrap_group(&mut w, 2, &[1, 2, 3]).unwrap();
        let snap = SnapshotMetadata {
            index: 4,
            term: 1,
            ..Default::default()
        };
        store
            .raft
            .put(&mut w, &keys::shard_tag(2, SNAPSHOT), &pb(&snap))
            .unwrap();
        for index in 5..=7 {
            let e = Entry {
                index,
                term: 2,
                ..Default::default()
            };
            store
                .log
                .put(&mut w, &keys::shard_u64(2, index), &pb(&e))
                .unwrap();
        }
        let hs = HardState {
            term: 2,
            vote: 3,
            commit: 6,
            ..Default::default()
        };
        store
            .raft
            .put(&mut w, &keys::shard_tag(2, HARD_STATE), &pb(&hs))
            .unwrap();
        w.commit().unwrap();

        let r = store.read().unwrap();
        let log = store.legacy_log(&r, 2).unwrap().expect("a legacy log");
        assert_eq!((log.first_index(), log.last_index()), (5, 7));
        assert_eq!(log.term(4), Some(1));
        assert_eq!(log.hard_state(), &hs);
        assert!(store.legacy_log(&r, 9).unwrap().is_none());
        drop(r);

        let mut w = store.write().unwrap();
        store.drop_legacy_logs(&mut w).unwrap();
        w.commit().unwrap();
        let r = store.read().unwrap();
        assert!(store.legacy_log(&r, 2).unwrap().is_none());
        assert!(store.has_group(&r, 2).unwrap(), "the conf state stays");
    }
}
