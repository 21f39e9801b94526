//! [`GroupStorage`]: raft-rs's view of one shard's persisted log (the group's [`MemLog`],
//! which the write-ahead log holds) and of its state machine's records in LMDB.

use raft::eraftpb::{Entry, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

use crate::error::StoreError;
use crate::store::Store;
use crate::wal::memlog::MemLog;

fn storage_err(e: StoreError) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

/// One shard's log and LMDB records, as raft-rs reads them. The host changes the log only
/// after the write-ahead log made the change durable.
#[derive(Debug)]
pub struct GroupStorage {
    store: Store,
    shard: u32,
    log: MemLog,
}

impl GroupStorage {
    /// The view of `shard` with its persisted `log`.
    pub fn new(store: Store, shard: u32, log: MemLog) -> Self {
        GroupStorage { store, shard, log }
    }

    /// The persisted log.
    pub fn log(&self) -> &MemLog {
        &self.log
    }

    /// The persisted log, to change once a change is durable.
    pub fn log_mut(&mut self) -> &mut MemLog {
        &mut self.log
    }
}

impl raft::Storage for GroupStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let r = self.store.read().map_err(storage_err)?;
        let cs = self.store.conf_state(&r, self.shard).map_err(storage_err)?;
        Ok(RaftState::new(self.log.hard_state().clone(), cs))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _ctx: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.log.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let mut out = self
            .log
            .entries(low, high)
            .ok_or(raft::Error::Store(StorageError::Unavailable))?;
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx < self.log.snap().0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.log
            .term(idx)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.log.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.log.last_index())
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
