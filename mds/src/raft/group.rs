//! One shard's raft group: the `RawNode`, and the proposals and read-index requests waiting on
//! it. No threads, no network, no clock reads: the host passes `now` in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proto::admin::{Role, ShardStatus};
use proto::{Errno, FsReply, RpcError};
use raft::eraftpb::{ConfChangeV2, Entry, Message};
use raft::{RawNode, ReadOnlyOption, StateRole};
use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::raft::storage::GroupStorage;
use crate::store::Store;
use crate::wal::memlog::MemLog;

/// Raft timing and sizing for every group of a node.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    /// Length of one tick.
    pub tick: Duration,
    /// Ticks without a heartbeat before a follower campaigns (randomised up to twice this).
    pub election_ticks: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// How long a proposal or read-index request may wait before failing as retryable.
    pub request_timeout: Duration,
    /// Applied entries kept in the log for slow followers before compaction.
    pub log_keep: u64,
    /// How long applied entries may wait in the open LMDB transaction while the host is busy.
    pub commit_interval: Duration,
    /// How long the host may be idle before it commits the open LMDB transaction.
    pub idle_commit: Duration,
}

/// The answer a file-system proposal waits for: the reply and the index it was applied at.
pub type FsOutcome = (Result<FsReply, Errno>, u64);

/// Who waits for a proposal.
#[derive(Debug)]
pub enum Waiter {
    /// A file-system command.
    Fs(oneshot::Sender<Result<FsOutcome, RpcError>>),
    /// A replicated non-file-system entry (chunkserver report, root bootstrap); answered
    /// with the applied index.
    Index(oneshot::Sender<Result<u64, RpcError>>),
    /// A membership change.
    Conf(oneshot::Sender<Result<proto::admin::AdminReply, RpcError>>),
}

impl Waiter {
    /// Answers with an error.
    pub fn fail(self, e: RpcError) {
        match self {
            Waiter::Fs(tx) => drop(tx.send(Err(e))),
            Waiter::Index(tx) => drop(tx.send(Err(e))),
            Waiter::Conf(tx) => drop(tx.send(Err(e))),
        }
    }
}

#[derive(Debug)]
struct Pending {
    waiter: Waiter,
    deadline: Instant,
}

#[derive(Debug)]
struct PendingRead {
    reply: oneshot::Sender<Result<u64, RpcError>>,
    deadline: Instant,
    index: Option<u64>,
}

/// A shard's raft group on this node.
pub struct Group {
    /// The shard.
    pub shard: u32,
    /// The raft state machine.
    pub raw: RawNode<GroupStorage>,
    /// Committed entries handed back by `advance`, applied in the next round.
    pub pending_apply: Vec<Entry>,
    /// Set when a storage error stopped the group; it never advances again in this process.
    pub failed: Option<String>,
    /// Set when this node was removed from the group.
    pub removed: bool,
    /// Set when a conf change was applied (the host then republishes the known nodes).
    pub conf_changed: bool,
    /// What the commands applied this round changed, published once the round commits.
    pub notes: Vec<crate::host::shared::Note>,
    /// Applied index and its term.
    pub applied: (u64, u64),
    /// The applied index of the last LMDB commit (what readers see), and of the one before:
    /// LMDB syncs its meta page with the next commit, so only the latter is surely on disk.
    lmdb_commits: (u64, u64),
    next_id: u64,
    proposals: HashMap<u64, Pending>,
    reads: HashMap<u64, PendingRead>,
    seen: (StateRole, u64),
    timeout: Duration,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("shard", &self.shard)
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

impl Group {
    /// Opens the group of `shard` on node `node` from its log (as the write-ahead log holds
    /// it) and its state in LMDB. Entries above LMDB's applied index are applied again.
    pub fn open(
        node: u64,
        shard: u32,
        store: &Store,
        settings: &RaftSettings,
        log: MemLog,
    ) -> Result<Group, StoreError> {
        let r = store.read()?;
        let applied = store.applied(&r, shard)?;
        drop(r);
        let log = reconcile(shard, log, applied)?;
        let cfg = raft::Config {
            id: node,
            election_tick: settings.election_ticks,
            heartbeat_tick: settings.heartbeat_ticks,
            applied: applied.0,
            pre_vote: true,
            check_quorum: true,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            max_uncommitted_size: 64 << 20,
            read_only_option: ReadOnlyOption::Safe,
            ..Default::default()
        };
        let raw = cfg
            .validate()
            .and_then(|()| {
                RawNode::new(
                    &cfg,
                    GroupStorage::new(store.clone(), shard, log),
                    &super::logger::logger(),
                )
            })
            .map_err(|e| StoreError::Open {
                path: store.path().to_path_buf(),
                reason: format!("shard {shard}: {e}"),
            })?;
        Ok(Group {
            shard,
            raw,
            pending_apply: Vec::new(),
            failed: None,
            removed: false,
            conf_changed: false,
            notes: Vec::new(),
            applied,
            lmdb_commits: (applied.0, applied.0),
            next_id: 1,
            proposals: HashMap::new(),
            reads: HashMap::new(),
            seen: (StateRole::Follower, 0),
            timeout: settings.request_timeout,
        })
    }

    /// Stops the group after a storage error: it never advances again in this process.
    pub fn fail(&mut self, e: &StoreError) {
        self.failed = Some(e.to_string());
        self.fail_all(|shard| RpcError::Unavailable {
            shard,
            reason: format!("storage: {e}"),
        });
    }

    /// Records that LMDB committed everything applied so far.
    pub fn on_lmdb_commit(&mut self) {
        self.lmdb_commits = (self.applied.0, self.lmdb_commits.0);
    }

    /// The applied index LMDB surely holds on disk: the log may be compacted up to it.
    pub fn synced_applied(&self) -> u64 {
        self.lmdb_commits.1
    }

    /// The persisted log.
    pub fn log(&self) -> &MemLog {
        self.raw.store().log()
    }

    /// Whether this replica leads the group.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The leader this replica knows of (0 if none).
    pub fn leader(&self) -> u64 {
        self.raw.raft.leader_id
    }

    /// Whether the group can take requests at all.
    pub fn usable(&self) -> Result<(), RpcError> {
        match (&self.failed, self.removed) {
            (Some(e), _) => Err(RpcError::Unavailable {
                shard: self.shard,
                reason: format!("stopped: {e}"),
            }),
            (None, true) => Err(RpcError::UnknownShard(self.shard)),
            (None, false) => Ok(()),
        }
    }

    fn must_lead(&self) -> Result<(), RpcError> {
        self.usable()?;
        if self.is_leader() {
            Ok(())
        } else {
            Err(RpcError::NotLeader {
                shard: self.shard,
                leader: None,
            })
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Proposes a normal entry; `waiter` is answered when it is applied, or fails.
    pub fn propose(&mut self, data: Vec<u8>, waiter: Waiter, now: Instant) {
        if let Err(e) = self.must_lead() {
            return waiter.fail(e);
        }
        let id = self.next_id();
        match self.raw.propose(id.to_be_bytes().to_vec(), data) {
            Ok(()) => {
                self.proposals.insert(
                    id,
                    Pending {
                        waiter,
                        deadline: now + self.timeout,
                    },
                );
            }
            Err(e) => waiter.fail(self.dropped(e)),
        }
    }

    /// Proposes a conf change whose context carries proposal id `id` (see
    /// [`Group::take_conf_proposal`]).
    pub fn propose_conf(
        &mut self,
        cc: ConfChangeV2,
        context: impl FnOnce(u64) -> Vec<u8>,
        waiter: Waiter,
        now: Instant,
    ) {
        if let Err(e) = self.must_lead() {
            return waiter.fail(e);
        }
        let id = self.next_id();
        match self.raw.propose_conf_change(context(id), cc) {
            Ok(()) => {
                self.proposals.insert(
                    id,
                    Pending {
                        waiter,
                        deadline: now + self.timeout,
                    },
                );
            }
            Err(e) => waiter.fail(self.dropped(e)),
        }
    }

    fn dropped(&self, e: raft::Error) -> RpcError {
        RpcError::Unavailable {
            shard: self.shard,
            reason: format!("proposal dropped by raft: {e}"),
        }
    }

    /// Starts a linearizable read; `reply` gets the index to read at once it is applied here.
    pub fn read_index(&mut self, reply: oneshot::Sender<Result<u64, RpcError>>, now: Instant) {
        if let Err(e) = self.must_lead() {
            return drop(reply.send(Err(e)));
        }
        let id = self.next_id();
        self.raw.read_index(id.to_be_bytes().to_vec());
        self.reads.insert(
            id,
            PendingRead {
                reply,
                deadline: now + self.timeout,
                index: None,
            },
        );
    }

    /// The proposal an entry context names, if this replica proposed it.
    pub fn take_proposal(&mut self, context: &[u8]) -> Option<Waiter> {
        let id = u64::from_be_bytes(context.try_into().ok()?);
        self.proposals.remove(&id).map(|p| p.waiter)
    }

    /// The waiter of conf-change proposal `id`.
    pub fn take_conf_proposal(&mut self, id: u64) -> Option<Waiter> {
        self.proposals.remove(&id).map(|p| p.waiter)
    }

    /// Records read indexes raft has confirmed.
    pub fn on_read_states(&mut self, states: Vec<raft::ReadState>) {
        for rs in states {
            let id = rs.request_ctx.as_slice().try_into().map(u64::from_be_bytes);
            if let Some(read) = id.ok().and_then(|id| self.reads.get_mut(&id)) {
                read.index = Some(rs.index);
            }
        }
    }

    /// Marks the group removed once its configuration leaves this node out, everything
    /// known to be committed is applied, and no leader has spoken for a whole election
    /// timeout. Not at the entry that removed it: a node added back under its old id replays
    /// its own earlier removal while the leader is still sending it the entries that added it
    /// again.
    pub fn mark_if_removed(&mut self) {
        let raft = &self.raw.raft;
        if self.removed || self.applied.0 < raft.raft_log.committed || !raft.pass_election_timeout() {
            return;
        }
        let cs = raft.prs().conf().to_conf_state();
        let me = raft.id;
        if !cs.get_voters().contains(&me)
            && !cs.get_learners().contains(&me)
            && !cs.get_voters_outgoing().contains(&me)
        {
            self.removed = true;
            tracing::info!(shard = self.shard, "this node was removed from the shard");
        }
    }

    /// Answers reads whose index is applied, and fails requests past their deadline. Call
    /// after every round.
    pub fn settle(&mut self, now: Instant) {
        let applied = self.applied.0;
        let ready: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            if let Some(r) = self.reads.remove(&id) {
                let _ = r.reply.send(Ok(r.index.unwrap_or(applied)));
            }
        }
        let timed_out = |shard| RpcError::Unavailable {
            shard,
            reason: "timed out waiting for raft".into(),
        };
        let expired: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(r) = self.reads.remove(&id) {
                let _ = r.reply.send(Err(timed_out(self.shard)));
            }
        }
        let expired: Vec<u64> = self
            .proposals
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(p) = self.proposals.remove(&id) {
                p.waiter.fail(timed_out(self.shard));
            }
        }
        let now_seen = (self.raw.raft.state, self.raw.raft.term);
        if now_seen != self.seen {
            if self.seen.0 == StateRole::Leader {
                self.fail_all(|shard| RpcError::Unavailable {
                    shard,
                    reason: "leadership changed".into(),
                });
            }
            self.seen = now_seen;
        }
    }

    /// Fails every waiting request.
    pub fn fail_all(&mut self, err: impl Fn(u32) -> RpcError) {
        for (_, p) in self.proposals.drain() {
            p.waiter.fail(err(self.shard));
        }
        for (_, r) in self.reads.drain() {
            let _ = r.reply.send(Err(err(self.shard)));
        }
    }

    /// Steps a message from a peer, ignoring messages for the wrong node or from removed
    /// peers (raft-rs reports those as errors; they are harmless).
    pub fn step(&mut self, msg: Message) {
        if self.failed.is_some() || self.removed {
            return;
        }
        if let Err(e) = self.raw.step(msg) {
            tracing::debug!(shard = self.shard, "raft step: {e}");
        }
    }

    /// This replica's view of the group.
    pub fn status(&self) -> ShardStatus {
        let raft = &self.raw.raft;
        let conf = raft.prs().conf();
        let role = match raft.state {
            StateRole::Leader => Role::Leader,
            StateRole::Candidate => Role::Candidate,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Follower if conf.learners().contains(&raft.id) => Role::Learner,
            StateRole::Follower => Role::Follower,
        };
        let mut voters: Vec<u64> = conf.voters().ids().iter().collect();
        voters.sort_unstable();
        let mut learners: Vec<u64> = conf.learners().iter().copied().collect();
        learners.sort_unstable();
        let matched = if raft.state == StateRole::Leader {
            let mut m: Vec<(u64, u64)> = raft.prs().iter().map(|(id, p)| (*id, p.matched)).collect();
            m.sort_unstable();
            m
        } else {
            Vec::new()
        };
        ShardStatus {
            shard: self.shard,
            role,
            term: raft.term,
            leader: raft.leader_id,
            commit: raft.raft_log.committed,
            applied: self.lmdb_commits.0,
            voters,
            learners,
            matched,
        }
    }
}

/// Fits a group's log to its state machine in LMDB, which is at `applied`:
/// - a log ending below `applied`, or holding another term there, is from before a snapshot
///   that LMDB installed and synced: the log restarts after `applied`;
/// - a log starting above `applied + 1` cannot replay what LMDB lacks: an error;
/// - the commit index is at least `applied` (applied entries are committed).
fn reconcile(shard: u32, mut log: MemLog, applied: (u64, u64)) -> Result<MemLog, StoreError> {
    if applied.0 < log.snap().0 {
        return Err(StoreError::Corrupt {
            what: "write-ahead log",
            reason: format!(
                "shard {shard}: the log starts after {} but the state is applied only to {}",
                log.snap().0,
                applied.0
            ),
        });
    }
    if log.term(applied.0) != Some(applied.1) {
        tracing::info!(
            shard,
            index = applied.0,
            "the log restarts at the installed snapshot"
        );
        log.reset(applied.0, applied.1);
    }
    let mut hs = log.hard_state().clone();
    hs.commit = hs.commit.clamp(applied.0, log.last_index());
    log.set_hard_state(hs);
    Ok(log)
}
