//! One host round: every group's ready state persisted and applied in one LMDB write
//! transaction (group commit), then messages sent and waiters answered.
//!
//! Order within a round, per raft-rs's contract:
//! 1. take each ready group's `Ready`; send its leader messages at once (appends may go out
//!    before the leader's own write);
//! 2. in one transaction: install snapshots, append entries, store hard states, apply
//!    committed entries (each group in a nested transaction, so a group that hits a storage
//!    error is undone and stopped alone), compact logs;
//! 3. commit (the fsync);
//! 4. only then send the persisted messages (votes, append responses), advance raft and
//!    publish applied indexes. Waiters of applied entries are answered just before the commit:
//!    those entries are committed on a majority already, so the answer cannot change.

use std::time::Instant;

use raft::Ready;
use raft::eraftpb::{Message, MessageType};

use crate::error::StoreError;
use crate::host::apply::{Applied, apply_entries};
use crate::host::{Host, Outgoing};

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
        for (shard, rd) in &mut work {
            if let Some(rd) = rd {
                send(&self.out, *shard, rd.take_messages());
            }
        }

        let started = Instant::now();
        let committed = self.persist(&mut work);
        self.metrics
            .round_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = committed {
            tracing::error!("round commit failed, stopping the shards of this round: {e}");
            for (shard, _) in &work {
                if let Some(g) = self.groups.get_mut(shard) {
                    g.failed = Some(e.to_string());
                    g.fail_all(|shard| proto::RpcError::Unavailable {
                        shard,
                        reason: format!("storage: {e}"),
                    });
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
                let mut light = g.raw.advance_append(rd);
                send(&self.out, shard, light.take_messages());
                g.pending_apply.extend(light.take_committed_entries());
                #[cfg(feature = "deliberate-bugs")]
                if crate::bugs::active(crate::bugs::Bug::AckBeforeFsync) {
                    fake_follower_acks(&mut g.raw);
                }
            }
            g.raw.advance_apply_to(g.applied.0);
        }
        let notes: Vec<_> = self
            .groups
            .values_mut()
            .flat_map(|g| std::mem::take(&mut g.notes))
            .collect();
        if !notes.is_empty() {
            self.shared.record_changes(notes);
        }
        if self
            .groups
            .values_mut()
            .any(|g| std::mem::take(&mut g.conf_changed))
        {
            self.publish_nodes();
        }
        self.settle(now);
    }

    /// Step 2 and 3: one transaction for every group's persistence and application.
    fn persist(&mut self, work: &mut [(u32, Option<Ready>)]) -> Result<(), StoreError> {
        let mut applied: Vec<Applied> = Vec::new();
        let store = self.store.clone();
        let mut w = store.write()?;
        for (shard, rd) in work.iter_mut() {
            let shard = *shard;
            let Some(g) = self.groups.get_mut(&shard) else {
                continue;
            };
            let snapshot_file = self.snapshots.remove(&shard);
            let compact = self.compact.remove(&shard);
            let mut nested = store.nested(&mut w)?;
            let result = (|| {
                if let Some(rd) = rd.as_mut() {
                    if !rd.snapshot().is_empty() {
                        let meta = rd.snapshot().get_metadata().clone();
                        let file = snapshot_file.as_deref().ok_or_else(|| StoreError::Corrupt {
                            what: "snapshot",
                            reason: format!("no records received for snapshot at index {}", meta.index),
                        })?;
                        store.install_snapshot(&mut nested, shard, &meta, file)?;
                        g.applied = (meta.index, meta.term);
                        g.pending_apply.clear();
                    }
                    store.append(&mut nested, shard, rd.entries())?;
                    if let Some(hs) = rd.hs() {
                        store.set_hard_state(&mut nested, shard, hs)?;
                    }
                }
                let mut entries = std::mem::take(&mut g.pending_apply);
                if let Some(rd) = rd.as_mut() {
                    entries.extend(rd.take_committed_entries());
                }
                entries.retain(|e| e.index > g.applied.0);
                let results = apply_entries(&store, &mut nested, g, &self.table, entries)?;
                if let Some((index, term)) = compact.filter(|(i, _)| *i <= g.applied.0) {
                    store.compact(&mut nested, shard, index, term)?;
                }
                Ok::<_, StoreError>(results)
            })();
            if let Some(file) = snapshot_file {
                let _ = std::fs::remove_file(file);
            }
            match result {
                Ok(results) => {
                    nested.commit()?;
                    applied.extend(results);
                }
                Err(e) => {
                    nested.abort();
                    tracing::error!(shard, "storage error, stopping the shard on this node: {e}");
                    g.failed = Some(e.to_string());
                    g.fail_all(|shard| proto::RpcError::Unavailable {
                        shard,
                        reason: format!("storage: {e}"),
                    });
                }
            }
        }
        // The applied entries are committed on a majority already, so their answers are final:
        // send them before this transaction's fsync rather than after it. Readers still see
        // the effects only once it commits (applied indexes are published after the round).
        for a in applied {
            a.answer();
        }
        w.commit()?;
        Ok(())
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
                    let index = g.applied.0 - self.settings.log_keep / 2;
                    if let Ok(term) = g.raw.raft.raft_log.term(index) {
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
