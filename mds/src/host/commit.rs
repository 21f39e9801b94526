//! The open LMDB write transaction. Applied entries accumulate in it across rounds, so a
//! stream of writes costs one LMDB commit per commit interval instead of one per round,
//! and the host thread does not stall on LMDB's fsync while requests wait; nothing waits for
//! those commits to be durable, because the entries are in the write-ahead log. It commits
//! when a reader waits for an index it holds, when the host has had nothing to do for
//! `idle_commit` (default 1 ms), once it has been open for `commit_interval` (default 50 ms),
//! before a snapshot is installed, and at shutdown. Applied indexes and change notes are published from the
//! commit, so readers never see less than they are told; a read that needs what is applied but
//! not committed is served from the open transaction (`Host::read_applied`).

use std::time::Instant;

use heed::RwTxn;

use crate::error::StoreError;
use crate::host::Host;
use crate::store::Store;

/// The transaction applied entries go into, and when it was opened.
pub struct OpenTxn {
    txn: RwTxn<'static>,
    since: Instant,
}

impl std::fmt::Debug for OpenTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenTxn")
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

/// The open transaction in `open`, opened on `store` if there is none.
pub fn open_txn<'a>(
    open: &'a mut Option<OpenTxn>,
    store: &'static Store,
) -> Result<&'a mut RwTxn<'static>, StoreError> {
    if open.is_none() {
        *open = Some(OpenTxn {
            txn: store.write()?,
            since: Instant::now(),
        });
    }
    Ok(&mut open.as_mut().expect("opened above").txn)
}

impl Host {
    /// When the open transaction must commit, if one is open: once it is a commit interval
    /// old, or sooner if the host stays idle.
    pub(crate) fn commit_deadline(&self) -> Option<Instant> {
        let s = &self.settings;
        self.open
            .as_ref()
            .map(|o| (o.since + s.commit_interval).min(self.busy_at + s.idle_commit))
    }

    /// Commits the open transaction if a reader waits, it was asked to, or it is old enough.
    pub(crate) fn commit_if_due(&mut self, now: Instant) {
        let Some(deadline) = self.commit_deadline() else {
            self.commit_wanted = false;
            return;
        };
        let due = self.commit_wanted || now >= deadline || self.shared.readers_waiting();
        if due && let Err(e) = self.commit() {
            tracing::error!("LMDB commit failed, stopping every shard: {e}");
            for g in self.groups.values_mut() {
                g.fail(&e);
            }
        }
    }

    /// Serves read `req` of `shard` from the open transaction if this node applied `wanted`
    /// there; `None` otherwise (the reader then waits for a commit).
    pub(crate) fn read_applied(
        &mut self,
        shard: u32,
        wanted: u64,
        req: &proto::ClientRequest,
    ) -> Option<crate::server::ReadAnswer> {
        if self.groups.get(&shard)?.applied.0 < wanted {
            return None;
        }
        let open = self.open.as_ref()?;
        match crate::server::read_in(self.lmdb, &open.txn, &self.table, shard, req) {
            Ok(answer) => Some(answer),
            Err(e) => {
                tracing::error!(shard, "read from the open transaction: {e}");
                None
            }
        }
    }

    /// Commits the open transaction (if any), then publishes what it made visible.
    pub(crate) fn commit(&mut self) -> Result<(), StoreError> {
        self.commit_wanted = false;
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let started = Instant::now();
        open.txn.commit()?;
        self.metrics
            .lmdb_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        let mut notes = Vec::new();
        let mut nodes_changed = false;
        for g in self.groups.values_mut() {
            g.on_lmdb_commit();
            notes.append(&mut g.notes);
            nodes_changed |= std::mem::take(&mut g.conf_changed);
            if !g.removed {
                self.shared.publish(g.status());
            }
        }
        if !notes.is_empty() {
            self.shared.record_changes(notes);
        }
        if nodes_changed {
            self.publish_nodes();
        }
        Ok(())
    }
}
