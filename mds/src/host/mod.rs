//! The raft host: one OS thread that owns every shard group of this node and the LMDB write
//! path. It ticks all groups from one timer, steps peer messages, and processes every group's
//! ready state in rounds: one write transaction (one fsync) per round for all groups.
//!
//! | module | what it holds |
//! |---|---|
//! | [`shared`] | what the host publishes: applied indexes (waitable), status, peers |
//! | [`round`] | one round: persist, apply, commit, send, answer |
//! | [`apply`] | applying committed entries to the state machine |
//! | [`commit`] | the open LMDB transaction applied entries go into, and when it commits |
//! | [`snapshot`] | building and installing shard snapshots |
//! | [`admin`] | membership changes and leader transfer |

pub mod admin;
pub mod apply;
pub mod commit;
pub mod round;
pub mod shared;
pub mod snapshot;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crdt::model::FileTime;
use crdt::{Hlc, NodeId, SystemClock, WallClock};
use proto::RpcError;
use proto::admin::{AdminReply, AdminRequest, NodeInfo};
use proto::chunk::CsRequest;
use raft::eraftpb::Message;
use shardmap::ShardTable;
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::fs::Command;
use crate::metrics::Metrics;
use crate::raft::group::Waiter;
use crate::raft::{Group, LogEntry, RaftSettings};
use crate::store::Store;
use crate::wal::Wal;
use crate::wal::memlog::MemLog;
use crate::wal::record::Record;

pub use shared::Shared;

/// A request to the host thread.
#[derive(Debug)]
pub enum HostMsg {
    /// Propose a file-system command (the host stamps it with its clock).
    Propose {
        /// Target shard.
        shard: u32,
        /// The command; `stamp` and `now` are filled in by the host.
        cmd: Box<Command>,
        /// Answered once applied.
        waiter: Waiter,
    },
    /// Propose a chunkserver registration (shard 0) or chunk report (the chunks' shard).
    Chunkserver {
        /// The shard to propose on.
        shard: u32,
        /// The registration or report.
        req: CsRequest,
        /// Answered once applied.
        waiter: Waiter,
    },
    /// Start a linearizable read of `shard`.
    ReadIndex {
        /// Target shard.
        shard: u32,
        /// Answered with the index to read at.
        reply: oneshot::Sender<Result<u64, RpcError>>,
    },
    /// Raft messages from a peer.
    Raft {
        /// The sending node.
        from: u64,
        /// `(shard, message)` pairs.
        msgs: Vec<(u32, Message)>,
    },
    /// A snapshot's records arrived in `file`; step `msg` (the `MsgSnapshot`).
    SnapshotReady {
        /// The shard.
        shard: u32,
        /// The raft message.
        msg: Message,
        /// The received records.
        file: PathBuf,
    },
    /// A snapshot we sent finished (or failed).
    SnapshotSent {
        /// The shard.
        shard: u32,
        /// The receiving node.
        to: u64,
        /// Whether every record arrived.
        ok: bool,
    },
    /// An administrative request.
    Admin {
        /// The request.
        req: AdminRequest,
        /// The answer.
        reply: oneshot::Sender<Result<AdminReply, RpcError>>,
    },
    /// A reader waits for an applied index: commit the open transaction.
    Commit,
    /// Serve a read that needs entries applied here but not yet committed to LMDB, from the
    /// open transaction; `None` if `wanted` is not applied here yet.
    Read {
        /// The shard.
        shard: u32,
        /// The applied index the read needs.
        wanted: u64,
        /// The read.
        req: Box<proto::ClientRequest>,
        /// The answer.
        reply: oneshot::Sender<Result<Option<crate::server::ReadAnswer>, RpcError>>,
    },
    /// Hand leadership over and stop.
    Shutdown,
}

/// A message for the peer transport.
#[derive(Debug)]
pub enum Outgoing {
    /// A raft message.
    Raft {
        /// Destination node.
        to: u64,
        /// Shard.
        shard: u32,
        /// The message.
        msg: Message,
    },
    /// A `MsgSnapshot`: stream the shard's records, then deliver it.
    Snapshot {
        /// Destination node.
        to: u64,
        /// Shard.
        shard: u32,
        /// The message.
        msg: Message,
    },
}

/// The host thread's state.
pub struct Host {
    node: u64,
    store: Store,
    /// The same store, for the write transaction that stays open across rounds.
    lmdb: &'static Store,
    open: Option<commit::OpenTxn>,
    commit_wanted: bool,
    busy_at: Instant,
    wal: Wal,
    settings: RaftSettings,
    groups: BTreeMap<u32, Group>,
    table: ShardTable,
    hlc: Hlc,
    inbox: Receiver<HostMsg>,
    out: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    snapshots: HashMap<u32, PathBuf>,
    compact: HashMap<u32, (u64, u64)>,
    root_proposed: Option<Instant>,
    root_exists: bool,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("node", &self.node)
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

/// Everything the host needs to start.
#[derive(Debug)]
pub struct HostParts {
    /// This node.
    pub node: u64,
    /// The store.
    pub store: Store,
    /// Where the write-ahead log lives.
    pub wal_dir: PathBuf,
    /// Size of one write-ahead log segment.
    pub wal_segment_size: u64,
    /// Raft timing.
    pub settings: RaftSettings,
    /// The shard table.
    pub table: ShardTable,
    /// Every metadata server known at start.
    pub nodes: Vec<NodeInfo>,
    /// Requests.
    pub inbox: Receiver<HostMsg>,
    /// Messages for peers.
    pub out: mpsc::UnboundedSender<Outgoing>,
    /// Publication for the server.
    pub shared: Arc<Shared>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Largest clock offset accepted from peers' stamps.
    pub max_clock_offset: Duration,
}

/// The wall-clock time as a file time.
pub fn file_time_now() -> FileTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    FileTime::new(i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()).unwrap_or_default()
}

impl Host {
    /// Opens every group this node hosts: the shards the table places here (bootstrapped with
    /// the table's replicas on first start) and any shard it joined later.
    pub fn open(parts: HostParts) -> Result<Host, StoreError> {
        let HostParts {
            node,
            store,
            wal_dir,
            wal_segment_size,
            settings,
            table,
            nodes,
            inbox,
            out,
            shared,
            metrics,
            max_clock_offset,
        } = parts;
        let (mut wal, mut logs) = Wal::open(&wal_dir, wal_segment_size)?;
        let mut w = store.write()?;
        if store.shard_table(&w)?.is_none() {
            store.set_shard_table(&mut w, &table)?;
        }
        for n in &nodes {
            store.put_node(&mut w, n)?;
        }
        for s in table.shards.iter().filter(|s| s.replicas.contains(&node)) {
            store.bootstrap_group(&mut w, s.id.0, &s.replicas)?;
        }
        w.commit()?;
        let r = store.read()?;
        for n in store.nodes(&r)? {
            shared.set_node(n);
        }
        let shards = store.hosted_shards(&r)?;
        drop(r);
        move_legacy_logs(&store, &mut wal, &mut logs, &shards)?;
        // Everything LMDB committed before this start becomes durable: the log may be
        // compacted up to the applied indexes from here on.
        store.sync()?;
        let mut groups = BTreeMap::new();
        for shard in shards {
            let log = logs.remove(&shard).unwrap_or_default();
            let g = Group::open(node, shard, &store, &settings, log)?;
            shared.publish(g.status());
            groups.insert(shard, g);
        }
        let replayed: u64 = groups
            .values()
            .map(|g| g.raw.raft.raft_log.committed.saturating_sub(g.applied.0))
            .sum();
        metrics
            .wal_replayed
            .set(i64::try_from(replayed).unwrap_or(i64::MAX));
        let floor = groups.values().map(|g| g.applied.1).max().unwrap_or(0);
        let hlc = Hlc::new(NodeId(node), max_clock_offset);
        tracing::info!(
            node,
            shards = groups.len(),
            applied_term = floor,
            replayed,
            "raft host opened; replaying committed entries above LMDB's applied index"
        );
        // One leaked handle per process: the open transaction borrows the environment for as
        // long as the host runs.
        let lmdb: &'static Store = Box::leak(Box::new(store.clone()));
        Ok(Host {
            node,
            store,
            lmdb,
            open: None,
            commit_wanted: false,
            busy_at: Instant::now(),
            wal,
            settings,
            groups,
            table,
            hlc,
            inbox,
            out,
            shared,
            metrics,
            snapshots: HashMap::new(),
            compact: HashMap::new(),
            root_proposed: None,
            root_exists: false,
        })
    }

    /// Runs until [`HostMsg::Shutdown`] (or every sender is gone).
    pub fn run(mut self) {
        for g in self.groups.values_mut() {
            let voter = g.raw.raft.prs().conf().voters().contains(self.node);
            if voter && g.raw.raft.prs().conf().voters().ids().len() == 1 {
                let _ = g.raw.campaign();
            }
        }
        let mut next_tick = Instant::now() + self.settings.tick;
        loop {
            let wait = if self.has_work() {
                Duration::ZERO
            } else {
                let until = self.commit_deadline().map_or(next_tick, |d| d.min(next_tick));
                until.saturating_duration_since(Instant::now())
            };
            match self.inbox.recv_timeout(wait) {
                Ok(msg) => {
                    self.busy_at = Instant::now();
                    if self.handle(msg) {
                        return self.shutdown();
                    }
                    while let Ok(msg) = self.inbox.try_recv() {
                        if self.handle(msg) {
                            return self.shutdown();
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.stop(),
            }
            if Instant::now() >= next_tick {
                for g in self.groups.values_mut() {
                    if g.failed.is_none() && !g.removed {
                        g.raw.tick();
                    }
                }
                next_tick += self.settings.tick;
                if next_tick < Instant::now() {
                    next_tick = Instant::now() + self.settings.tick;
                }
                self.wal.tend();
                self.shared.set_wal_short(self.wal.is_short());
            }
            self.round();
            self.commit_if_due(Instant::now());
        }
    }

    /// Whether a round would do something right now (so the loop must not sleep).
    fn has_work(&self) -> bool {
        self.groups
            .values()
            .any(|g| g.failed.is_none() && !g.removed && (!g.pending_apply.is_empty() || g.raw.has_ready()))
            || !self.compact.is_empty()
    }

    /// Handles one request; true means stop.
    fn handle(&mut self, msg: HostMsg) -> bool {
        let now = Instant::now();
        match msg {
            HostMsg::Propose {
                shard,
                mut cmd,
                waiter,
            } => {
                let Some(g) = self.groups.get_mut(&shard) else {
                    return reject(waiter, RpcError::UnknownShard(shard));
                };
                cmd.stamp = self.hlc.now(SystemClock.wall_ms());
                cmd.now = file_time_now();
                let data = crdt::codec::encode(&LogEntry::Fs(*cmd));
                g.propose(data, waiter, now);
                self.metrics.proposals.inc();
            }
            HostMsg::Chunkserver { shard, req, waiter } => match self.groups.get_mut(&shard) {
                Some(g) => g.propose(crdt::codec::encode(&LogEntry::Chunkserver(req)), waiter, now),
                None => return reject(waiter, RpcError::UnknownShard(shard)),
            },
            HostMsg::ReadIndex { shard, reply } => match self.groups.get_mut(&shard) {
                Some(g) => g.read_index(reply, now),
                None => drop(reply.send(Err(RpcError::UnknownShard(shard)))),
            },
            HostMsg::Raft { from, msgs } => {
                for (shard, msg) in msgs {
                    self.step(from, shard, msg);
                }
            }
            HostMsg::SnapshotReady { shard, msg, file } => {
                if let Some(old) = self.snapshots.insert(shard, file) {
                    let _ = std::fs::remove_file(old);
                }
                self.step(msg.from, shard, msg);
            }
            HostMsg::SnapshotSent { shard, to, ok } => {
                if let Some(g) = self.groups.get_mut(&shard) {
                    let status = if ok {
                        raft::SnapshotStatus::Finish
                    } else {
                        raft::SnapshotStatus::Failure
                    };
                    g.raw.report_snapshot(to, status);
                    if !ok {
                        g.raw.report_unreachable(to);
                    }
                }
            }
            HostMsg::Admin { req, reply } => self.admin(req, reply, now),
            HostMsg::Commit => self.commit_wanted = true,
            HostMsg::Read {
                shard,
                wanted,
                req,
                reply,
            } => {
                let _ = reply.send(Ok(self.read_applied(shard, wanted, &req)));
            }
            HostMsg::Shutdown => return true,
        }
        false
    }

    /// Republishes the metadata servers recorded in the store (after a conf change).
    fn publish_nodes(&self) {
        match self.store.read().and_then(|r| self.store.nodes(&r)) {
            Ok(nodes) => nodes.into_iter().for_each(|n| self.shared.set_node(n)),
            Err(e) => tracing::error!("read nodes: {e}"),
        }
    }

    /// Steps a peer message, opening the group first if this node is joining the shard.
    fn step(&mut self, from: u64, shard: u32, msg: Message) {
        if msg.to != self.node {
            tracing::debug!(shard, from, to = msg.to, "dropping raft message for another node");
            return;
        }
        if !self.groups.contains_key(&shard) {
            match Group::open(self.node, shard, &self.store, &self.settings, MemLog::default()) {
                Ok(g) => {
                    tracing::info!(shard, from, "joining shard on first message from its leader");
                    self.groups.insert(shard, g);
                }
                Err(e) => return tracing::error!(shard, "open shard group: {e}"),
            }
        }
        if let Some(g) = self.groups.get_mut(&shard) {
            g.step(msg);
        }
    }

    fn shutdown(mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for g in self.groups.values_mut().filter(|g| g.is_leader()) {
            if let Some(to) = admin::best_successor(g) {
                tracing::info!(shard = g.shard, to, "transferring leadership before shutdown");
                g.raw.transfer_leader(to);
            }
        }
        while Instant::now() < deadline && self.groups.values().any(Group::is_leader) {
            while let Ok(msg) = self.inbox.try_recv() {
                if let HostMsg::Raft { from, msgs } = msg {
                    for (shard, m) in msgs {
                        self.step(from, shard, m);
                    }
                }
            }
            for g in self.groups.values_mut() {
                g.raw.tick();
            }
            self.round();
            std::thread::park_timeout(self.settings.tick / 5);
        }
        self.stop();
    }

    /// Commits what was applied and fails every waiting request.
    fn stop(mut self) {
        if let Err(e) = self.commit() {
            tracing::error!("final LMDB commit: {e}");
        }
        for g in self.groups.values_mut() {
            g.fail_all(|shard| RpcError::Unavailable {
                shard,
                reason: "node shutting down".into(),
            });
        }
        tracing::info!(node = self.node, "raft host stopped");
    }
}

/// Moves the raft logs and hard states that LMDB held before the write-ahead log into it (once,
/// when the write-ahead log is new), then drops them from LMDB.
fn move_legacy_logs(
    store: &Store,
    wal: &mut Wal,
    logs: &mut BTreeMap<u32, MemLog>,
    shards: &[u32],
) -> Result<(), StoreError> {
    let r = store.read()?;
    let mut moved = Record::default();
    for shard in shards {
        if logs.contains_key(shard) {
            continue;
        }
        if let Some(log) = store.legacy_log(&r, *shard)? {
            moved.groups.push(log.base(*shard));
            logs.insert(*shard, log);
        }
    }
    let legacy = !store.log.is_empty(&r)?;
    drop(r);
    if !moved.groups.is_empty() {
        tracing::info!(
            shards = moved.groups.len(),
            "moving raft logs from LMDB into the write-ahead log"
        );
        let all = Record::base(logs.iter().map(|(s, l)| l.base(*s)).collect());
        wal.append(&moved, true, || all)?;
    }
    if legacy || !moved.groups.is_empty() {
        let mut w = store.write()?;
        store.drop_legacy_logs(&mut w)?;
        w.commit()?;
    }
    Ok(())
}

fn reject(waiter: Waiter, e: RpcError) -> bool {
    waiter.fail(e);
    false
}
