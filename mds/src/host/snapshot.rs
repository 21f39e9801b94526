//! Shard snapshots: every state record of a shard, streamed to a lagging or new replica and
//! installed there in one transaction together with the snapshot's raft metadata.
//!
//! The sender reads from one read transaction, so the records and the applied index in the
//! snapshot metadata describe the same state. The receiver spools the records to a file and
//! only then steps the `MsgSnapshot`; the install happens in the host round that persists it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::ops::Bound;
use std::path::Path;

use heed::{RoTxn, RwTxn};
use raft::eraftpb::SnapshotMetadata;

use crate::error::StoreError;
use crate::store::{Store, Table, keys};

/// One record of a snapshot: (table number, key, value).
pub type Record = (u8, Vec<u8>, Vec<u8>);

impl Store {
    /// The shard-scoped state tables, numbered as they travel in snapshots.
    fn state_tables(&self) -> [Table; 13] {
        [
            self.inodes,
            self.entries,
            self.contexts,
            self.quotas,
            self.meta,
            self.sessions,
            self.handles,
            self.opens,
            self.chunks,
            self.locks,
            self.owners,
            self.garbage,
            self.quota_limits,
        ]
    }

    /// Every state record of `shard`, as read by `r`, in batches of about `batch_bytes`.
    pub fn snapshot_records(
        &self,
        r: &RoTxn,
        shard: u32,
        batch_bytes: usize,
        mut emit: impl FnMut(Vec<Record>) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let prefix = keys::shard(shard);
        let mut batch = Vec::new();
        let mut size = 0;
        let mut total = 0;
        for (i, table) in self.state_tables().iter().enumerate() {
            for kv in table.prefix_iter(r, &prefix)? {
                let (k, v) = kv?;
                size += k.len() + v.len();
                total += 1;
                batch.push((i as u8, k.to_vec(), v.to_vec()));
                if size >= batch_bytes {
                    emit(std::mem::take(&mut batch))?;
                    size = 0;
                }
            }
        }
        if !batch.is_empty() {
            emit(batch)?;
        }
        Ok(total)
    }

    /// Replaces `shard`'s state with the records spooled in `file` and resets its raft
    /// records to `meta`.
    pub fn install_snapshot(
        &self,
        w: &mut RwTxn,
        shard: u32,
        meta: &SnapshotMetadata,
        file: &Path,
    ) -> Result<(), StoreError> {
        let lo = keys::shard(shard);
        let hi = (shard + 1).to_be_bytes();
        let tables = self.state_tables();
        for table in &tables {
            if shard == u32::MAX {
                table.delete_range(w, &(Bound::Included(&lo[..]), Bound::Unbounded))?;
            } else {
                table.delete_range(w, &(Bound::Included(&lo[..]), Bound::Excluded(&hi[..])))?;
            }
        }
        let mut count = 0u64;
        read_spool(file, |records| {
            for (t, k, v) in records {
                let table = tables.get(usize::from(t)).ok_or_else(|| StoreError::Corrupt {
                    what: "snapshot",
                    reason: format!("unknown table {t}"),
                })?;
                if !k.starts_with(&lo) {
                    return Err(StoreError::Corrupt {
                        what: "snapshot",
                        reason: "record of another shard".into(),
                    });
                }
                table.put(w, &k, &v)?;
                count += 1;
            }
            Ok(())
        })?;
        self.install_snapshot_meta(w, shard, meta)?;
        tracing::info!(shard, index = meta.index, records = count, "installed snapshot");
        Ok(())
    }
}

fn spool_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: "snapshot spool",
        reason: e.to_string(),
    }
}

/// Appends a batch of records to a spool file.
pub fn write_spool(out: &mut BufWriter<File>, records: &[Record]) -> Result<(), StoreError> {
    let bytes = postcard::to_allocvec(records).map_err(spool_err)?;
    out.write_all(&(bytes.len() as u64).to_be_bytes())
        .map_err(spool_err)?;
    out.write_all(&bytes).map_err(spool_err)
}

/// Reads every batch of a spool file.
pub fn read_spool(
    file: &Path,
    mut f: impl FnMut(Vec<Record>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut input = BufReader::new(File::open(file).map_err(spool_err)?);
    let mut len = [0u8; 8];
    loop {
        match input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(spool_err(e)),
        }
        let n = usize::try_from(u64::from_be_bytes(len)).map_err(spool_err)?;
        if n > 1 << 30 {
            return Err(spool_err(format!("batch of {n} bytes")));
        }
        let mut buf = vec![0u8; n];
        input.read_exact(&mut buf).map_err(spool_err)?;
        f(postcard::from_bytes(&buf).map_err(spool_err)?)?;
    }
}
