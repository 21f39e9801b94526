//! One host round: every group's ready state persisted in one write-ahead log append (group
//! commit: one `fdatasync` for all), committed entries applied to the open LMDB transaction
//! ([`super::commit`]), messages sent and waiters answered.
//!
//! Order within a round, per raft-rs's contract:
//! 1. take each ready group's `Ready`; send its leader messages at once (appends may go out
//!    before the leader's own write);
//! 2. install snapshots in LMDB, then commit and sync it (the log restarts after a snapshot
//!    only once the snapshot is durable);
//! 3. append the round's entries and hard states to the write-ahead log; `fdatasync` it unless
//!    only commit indexes changed (those are recomputed after a crash); update the in-memory
//!    logs;
//! 4. only then send the persisted messages (votes, append responses) and advance raft;
//! 5. apply the committed entries (each group in a nested transaction, so a group that hits a
//!    storage error is undone and stopped alone) and answer their waiters: those entries are
//!    durable on a majority, so the answer cannot change. Readers see the effects once the
//!    transaction commits; applied indexes are published from the commit.

use std::time::Instant;

use raft::Ready;
use raft::eraftpb::{Message, MessageType};

use crate::error::StoreError;
use crate::host::apply::apply_entries;
use crate::host::commit::open_txn;
use crate::host::{Host, Outgoing};
use crate::raft::Group;
use crate::wal::memlog::encode;
use crate::wal::record::{GroupDelta, Record};

impl Host {
    /// Runs one round over every group with work.
    pub(crate) fn round(&mut self) {
        let now = Instant::now();
        let mut work: Vec<(u32, Option<Ready>)> = Vec::new();
        for (shard, g) in &mut self.groups {
            if g.failed.is_some() || g.removed {
                continue;
            }
            let ready = g.raw.has_ready().then(|| g.raw.ready());
            if ready.is_some() || !g.pending_apply.is_empty() || self.compact.contains_key(shard) {
                work.push((*shard, ready));
            }
        }
        if work.is_empty() {
            self.settle(now);
            return;
        }
        self.busy_at = now;
        for (shard, rd) in &mut work {
            if let Some(rd) = rd {
                send(&self.out, *shard, rd.take_messages());
            }
        }

        let started = Instant::now();
        let persisted = self.persist(&mut work);
        self.metrics
            .round_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = persisted {
            tracing::error!("round persistence failed, stopping the shards of this round: {e}");
            for (shard, _) in &work {
                if let Some(g) = self.groups.get_mut(shard) {
                    g.fail(&e);
                }
            }
            return;
        }

        for (shard, rd) in work {
            let Some(g) = self.groups.get_mut(&shard) else {
                continue;
            };
            if g.failed.is_some() {
                continue;
            }
            if let Some(mut rd) = rd {
                send(&self.out, shard, rd.take_persisted_messages());
                g.on_read_states(rd.take_read_states());
                g.pending_apply.extend(rd.take_committed_entries());
                let mut light = g.raw.advance_append(rd);
                send(&self.out, shard, light.take_messages());
                g.pending_apply.extend(light.take_committed_entries());
                #[cfg(feature = "deliberate-bugs")]
                if crate::bugs::active(crate::bugs::Bug::AckBeforeFsync) {
                    fake_follower_acks(&mut g.raw);
                }
            }
        }
        self.apply_committed();
        for g in self.groups.values_mut() {
            g.raw.advance_apply_to(g.applied.0);
        }
        self.settle(now);
    }

    /// Steps 2 and 3: snapshots into LMDB, entries and hard states into the write-ahead log.
    fn persist(&mut self, work: &mut [(u32, Option<Ready>)]) -> Result<(), StoreError> {
        if self.install_snapshots(work)? {
            self.commit()?;
            self.store.sync()?;
        }
        let (record, sync) = wal_record(&self.groups, work);
        if !record.groups.is_empty() {
            let groups = &self.groups;
            self.wal.append(&record, sync, || {
                Record::base(groups.iter().map(|(s, g)| g.log().base(*s)).collect())
            })?;
            self.shared.set_wal_short(self.wal.is_short());
        }
        for (shard, rd) in work.iter() {
            let Some(g) = self.groups.get_mut(shard).filter(|g| g.failed.is_none()) else {
                continue;
            };
            let log = g.raw.mut_store().log_mut();
            if let Some(rd) = rd {
                let meta = rd.snapshot().get_metadata();
                let reset = (!rd.snapshot().is_empty()).then_some((meta.index, meta.term));
                log.persisted(*shard, reset, rd.entries().clone(), rd.hs().cloned())
                    .map_err(|e| StoreError::Corrupt {
                        what: "raft log",
                        reason: e.to_string(),
                    })?;
            }
            if let Some((index, _)) = self.compact.remove(shard) {
                log.compact(index);
            }
        }
        Ok(())
    }

    /// Installs every ready snapshot in the open transaction. Returns whether there was one.
    fn install_snapshots(&mut self, work: &[(u32, Option<Ready>)]) -> Result<bool, StoreError> {
        let mut installed = false;
        for (shard, rd) in work {
            let Some(rd) = rd.as_ref().filter(|rd| !rd.snapshot().is_empty()) else {
                continue;
            };
            let meta = rd.snapshot().get_metadata().clone();
            let file = self.snapshots.remove(shard);
            let store = self.lmdb;
            let txn = open_txn(&mut self.open, store)?;
            let result = match file.as_deref() {
                None => Err(StoreError::Corrupt {
                    what: "snapshot",
                    reason: format!("no records received for snapshot at index {}", meta.index),
                }),
                Some(path) => store.nested(txn).and_then(|mut nested| {
                    store.install_snapshot(&mut nested, *shard, &meta, path)?;
                    Ok(nested.commit()?)
                }),
            };
            if let Some(path) = file {
                let _ = std::fs::remove_file(path);
            }
            let Some(g) = self.groups.get_mut(shard) else {
                continue;
            };
            match result {
                Ok(()) => {
                    g.applied = (meta.index, meta.term);
                    g.pending_apply.clear();
                    installed = true;
                }
                Err(e) => g.fail(&e),
            }
        }
        Ok(installed)
    }

    /// Step 5: every group's committed entries, into the open transaction.
    fn apply_committed(&mut self) {
        if self.groups.values().all(|g| g.pending_apply.is_empty()) {
            return;
        }
        let store = self.lmdb;
        let txn = match open_txn(&mut self.open, store) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("open an LMDB write transaction: {e}");
                for g in self.groups.values_mut() {
                    g.fail(&e);
                }
                return;
            }
        };
        let mut answers = Vec::new();
        for g in self.groups.values_mut() {
            let mut entries = std::mem::take(&mut g.pending_apply);
            entries.retain(|e| e.index > g.applied.0);
            if entries.is_empty() || g.failed.is_some() {
                continue;
            }
            let result = store.nested(txn).and_then(|mut nested| {
                let applied_before = g.applied;
                match apply_entries(store, &mut nested, g, &self.table, entries) {
                    Ok(applied) => {
                        nested.commit()?;
                        Ok(applied)
                    }
                    Err(e) => {
                        nested.abort();
                        g.applied = applied_before;
                        Err(e)
                    }
                }
            });
            match result {
                Ok(applied) => answers.extend(applied),
                Err(e) => {
                    tracing::error!(
                        shard = g.shard,
                        "storage error, stopping the shard on this node: {e}"
                    );
                    g.fail(&e);
                }
            }
        }
        for a in answers {
            a.answer();
        }
    }

    /// After a round: publish status, answer reads, expire requests, plan compactions, and
    /// propose the root directory if this node leads its shard and it does not exist yet.
    fn settle(&mut self, now: Instant) {
        for g in self.groups.values_mut() {
            g.settle(now);
            g.mark_if_removed();
            if g.failed.is_none() && !g.removed {
                let first = g.raw.raft.raft_log.first_index();
                if g.applied.0 >= first + self.settings.log_keep {
                    // Never past what LMDB holds durably: the log must replay the rest.
                    let index = (g.applied.0 - self.settings.log_keep / 2).min(g.synced_applied());
                    if index >= first
                        && let Ok(term) = g.raw.raft.raft_log.term(index)
                    {
                        self.compact.insert(g.shard, (index, term));
                    }
                }
            }
            if g.removed {
                self.shared.forget(g.shard);
            } else {
                self.shared.publish(g.status());
            }
        }
        self.bootstrap_root_if_needed(now);
        self.metrics.observe_groups(self.groups.values());
    }
}

/// The `ack-before-fsync` deliberate bug: a leader steps an append response from every
/// follower for its whole log, as if they had persisted it.
#[cfg(feature = "deliberate-bugs")]
fn fake_follower_acks<S: raft::Storage>(raw: &mut raft::RawNode<S>) {
    if raw.raft.state != raft::StateRole::Leader {
        return;
    }
    let (me, term, last) = (raw.raft.id, raw.raft.term, raw.raft.raft_log.last_index());
    let peers: Vec<u64> = raw
        .raft
        .prs()
        .conf()
        .voters()
        .ids()
        .iter()
        .filter(|p| *p != me)
        .collect();
    for from in peers {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppendResponse);
        m.from = from;
        m.to = me;
        m.term = term;
        m.index = last;
        let _ = raw.step(m);
    }
}

/// Step 3's record: every group's new entries, hard state and snapshot; and whether it must
/// be synced (anything but commit indexes changed).
fn wal_record(
    groups: &std::collections::BTreeMap<u32, Group>,
    work: &[(u32, Option<Ready>)],
) -> (Record, bool) {
    let mut record = Record::default();
    let mut sync = false;
    for (shard, rd) in work {
        let (Some(rd), Some(g)) = (rd, groups.get(shard)) else {
            continue;
        };
        if g.failed.is_some() {
            continue;
        }
        let mut d = GroupDelta {
            shard: *shard,
            ..Default::default()
        };
        if !rd.snapshot().is_empty() {
            let meta = rd.snapshot().get_metadata();
            d.reset = Some((meta.index, meta.term));
        }
        d.entries = rd.entries().iter().map(encode).collect();
        if let Some(hs) = rd.hs() {
            let old = g.log().hard_state();
            sync |= hs.term != old.term || hs.vote != old.vote;
            d.hard_state = Some(encode(hs));
        }
        sync |= d.reset.is_some() || !d.entries.is_empty();
        if d.reset.is_some() || !d.entries.is_empty() || d.hard_state.is_some() {
            record.groups.push(d);
        }
    }
    (record, sync)
}

fn send(out: &tokio::sync::mpsc::UnboundedSender<Outgoing>, shard: u32, msgs: Vec<Message>) {
    for msg in msgs {
        let to = msg.to;
        let outgoing = if msg.get_msg_type() == MessageType::MsgSnapshot {
            Outgoing::Snapshot { to, shard, msg }
        } else {
            Outgoing::Raft { to, shard, msg }
        };
        let _ = out.send(outgoing);
    }
}
