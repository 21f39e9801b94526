//! Membership changes (learner, promotion, removal, all as `ConfChangeV2`; voter changes use
//! joint consensus with automatic leave), leader transfer, status, and the root directory's
//! bootstrap.

use std::time::Instant;

use proto::RpcError;
use proto::admin::{AdminReply, AdminRequest, NodeInfo, NodeStatus};
use raft::eraftpb::{ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2};
use tokio::sync::oneshot;

use crate::host::{Host, file_time_now};
use crate::raft::group::Waiter;
use crate::raft::{ConfContext, Group, LogEntry};

/// How far behind the leader's last index a learner may be and still be promoted.
const CAUGHT_UP_SLACK: u64 = 16;

/// The voter (other than the leader) whose log matches the leader's furthest.
pub fn best_successor(g: &Group) -> Option<u64> {
    let me = g.raw.raft.id;
    let voters = g.raw.raft.prs().conf().voters().ids();
    g.raw
        .raft
        .prs()
        .iter()
        .filter(|(id, _)| **id != me && voters.contains(**id))
        .max_by_key(|(id, p)| (p.matched, std::cmp::Reverse(**id)))
        .map(|(id, _)| *id)
}

fn conf_change(kind: ConfChangeType, node: u64, joint: bool) -> ConfChangeV2 {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(kind);
    single.node_id = node;
    let mut cc = ConfChangeV2::default();
    cc.set_changes(vec![single].into());
    if joint {
        cc.set_transition(ConfChangeTransition::Implicit);
    }
    cc
}

impl Host {
    pub(crate) fn admin(
        &mut self,
        req: AdminRequest,
        reply: oneshot::Sender<Result<AdminReply, RpcError>>,
        now: Instant,
    ) {
        let result = match req {
            AdminRequest::Status => Ok(self.status()),
            AdminRequest::Digest { .. } => Err(RpcError::BadRequest(
                "digests are served by the client port".into(),
            )),
            AdminRequest::TransferLeader { shard, to } => self.with_leader(shard, |g| {
                g.raw.transfer_leader(to);
                Ok(AdminReply::Done)
            }),
            AdminRequest::AddLearner { shard, node } => {
                let id = node.id;
                self.shared.set_node(node.clone());
                return self.propose_conf(
                    shard,
                    conf_change(ConfChangeType::AddLearnerNode, id, false),
                    Some(node),
                    reply,
                    now,
                );
            }
            AdminRequest::Promote { shard, node } => {
                let check = self.with_leader(shard, |g| {
                    let last = g.raw.raft.raft_log.last_index();
                    let matched = g.raw.raft.prs().get(node).map(|p| p.matched);
                    match matched {
                        None => Err(RpcError::BadRequest(format!(
                            "node {node} is not a member of shard {shard}"
                        ))),
                        Some(m) if m + CAUGHT_UP_SLACK < last => Err(RpcError::Unavailable {
                            shard,
                            reason: format!(
                                "learner {node} has matched {m} of {last}; retry once it catches up"
                            ),
                        }),
                        Some(_) => Ok(()),
                    }
                });
                if let Err(e) = check {
                    return drop(reply.send(Err(e)));
                }
                return self.propose_conf(
                    shard,
                    conf_change(ConfChangeType::AddNode, node, true),
                    None,
                    reply,
                    now,
                );
            }
            AdminRequest::RemoveNode { shard, node } => {
                if node == self.node && self.groups.get(&shard).is_some_and(Group::is_leader) {
                    let moved = self.with_leader(shard, |g| {
                        let to = best_successor(g).ok_or_else(|| {
                            RpcError::BadRequest(format!("shard {shard} has no other voter to lead it"))
                        })?;
                        g.raw.transfer_leader(to);
                        Ok(to)
                    });
                    let e = match moved {
                        Ok(to) => RpcError::Unavailable {
                            shard,
                            reason: format!(
                                "moving leadership to node {to} before removing this node; retry"
                            ),
                        },
                        Err(e) => e,
                    };
                    return drop(reply.send(Err(e)));
                }
                return self.propose_conf(
                    shard,
                    conf_change(ConfChangeType::RemoveNode, node, true),
                    None,
                    reply,
                    now,
                );
            }
        };
        let _ = reply.send(result);
    }

    fn with_leader<T>(
        &mut self,
        shard: u32,
        f: impl FnOnce(&mut Group) -> Result<T, RpcError>,
    ) -> Result<T, RpcError> {
        let not_leader = self.shared.not_leader(shard);
        let g = self.groups.get_mut(&shard).ok_or(RpcError::UnknownShard(shard))?;
        g.usable()?;
        if !g.is_leader() {
            return Err(not_leader);
        }
        f(g)
    }

    fn propose_conf(
        &mut self,
        shard: u32,
        cc: ConfChangeV2,
        node: Option<NodeInfo>,
        reply: oneshot::Sender<Result<AdminReply, RpcError>>,
        now: Instant,
    ) {
        let not_leader = self.shared.not_leader(shard);
        let Some(g) = self.groups.get_mut(&shard) else {
            return drop(reply.send(Err(RpcError::UnknownShard(shard))));
        };
        if !g.is_leader() {
            return drop(reply.send(Err(not_leader)));
        }
        let context = |proposal| crdt::codec::encode(&ConfContext { proposal, node });
        g.propose_conf(cc, context, Waiter::Conf(reply), now);
    }

    fn status(&self) -> AdminReply {
        let usage = self.store.usage().ok();
        let node = self.shared.node(self.node).unwrap_or(NodeInfo {
            id: self.node,
            client_addr: String::new(),
            raft_addr: String::new(),
            http_addr: String::new(),
        });
        AdminReply::Status(NodeStatus {
            node,
            shards: self.groups.values().map(Group::status).collect(),
            lmdb_used: usage.map_or(0, |u| u.used),
            lmdb_map: usage.map_or(0, |u| u.map),
        })
    }

    /// Proposes the root directory from the leader of the shard that owns it while the store
    /// does not have it (again after a while, in case the proposal was lost).
    pub(crate) fn bootstrap_root_if_needed(&mut self, now: Instant) {
        const RETRY: std::time::Duration = std::time::Duration::from_secs(2);
        if self.root_exists || self.root_proposed.is_some_and(|at| now < at + RETRY) {
            return;
        }
        let root = crdt::model::Ino::ROOT;
        let shard = self.table.shard_of_id(root.0).id.0;
        let Some(g) = self.groups.get_mut(&shard) else {
            return;
        };
        if !g.is_leader() || g.applied.0 < g.raw.raft.raft_log.committed {
            return;
        }
        let r = match self.store.read() {
            Ok(r) => r,
            Err(e) => return tracing::error!(shard, "read root inode: {e}"),
        };
        match crdt::model::RecordsView::inode(&crate::store::ShardView::new(&self.store, &r, shard), root) {
            Ok(Some(_)) => self.root_exists = true,
            Ok(None) => {
                let stamp = self.hlc.now(crdt::SystemClock.wall_ms());
                let entry = LogEntry::BootstrapRoot {
                    stamp,
                    now: file_time_now(),
                };
                let (tx, _rx) = oneshot::channel();
                g.propose(crdt::codec::encode(&entry), Waiter::Index(tx), now);
                self.root_proposed = Some(now);
                tracing::info!(shard, "proposed the root directory");
            }
            Err(e) => tracing::error!(shard, "read root inode: {e}"),
        }
    }
}

use crdt::WallClock as _;
