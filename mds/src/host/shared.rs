//! What the host publishes for the rest of the server: per-shard applied index (waitable),
//! raft status, and the peers it knows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use proto::RpcError;
use proto::admin::{NodeInfo, ShardStatus};
use tokio::sync::watch;

/// Shared between the host thread and the async server.
#[derive(Debug)]
pub struct Shared {
    shards: RwLock<HashMap<u32, ShardShared>>,
    nodes: RwLock<HashMap<u64, NodeInfo>>,
    changes: std::sync::Mutex<ChangeLog>,
    changed: watch::Sender<u64>,
    host: std::sync::Mutex<Option<std::sync::mpsc::Sender<super::HostMsg>>>,
    nudged: AtomicBool,
    wal_short: AtomicBool,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            shards: RwLock::default(),
            nodes: RwLock::default(),
            changes: std::sync::Mutex::new(ChangeLog::default()),
            changed: watch::channel(1).0,
            host: std::sync::Mutex::new(None),
            nudged: AtomicBool::new(false),
            wal_short: AtomicBool::new(false),
        }
    }
}

/// What one applied command changed, for cache invalidation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The client whose command it was.
    pub client: u64,
    /// Inodes whose records changed.
    pub inodes: Vec<u64>,
    /// Entries (directory, name) that changed.
    pub entries: Vec<(u64, Vec<u8>)>,
}

/// The recent changes, numbered from 1 (0 asks for the current position).
#[derive(Debug)]
struct ChangeLog {
    first: u64,
    notes: std::collections::VecDeque<Note>,
}

impl Default for ChangeLog {
    fn default() -> Self {
        ChangeLog {
            first: 1,
            notes: Default::default(),
        }
    }
}

/// How many changes are kept for watchers that fall behind.
const CHANGE_LOG: usize = 1 << 16;

#[derive(Debug)]
struct ShardShared {
    applied: watch::Sender<u64>,
    status: ShardStatus,
}

impl Shared {
    /// A new, empty publication.
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared::default())
    }

    /// Publishes a shard's status (and applied index, waking readers).
    pub fn publish(&self, status: ShardStatus) {
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        match shards.get_mut(&status.shard) {
            Some(s) => {
                s.applied.send_if_modified(|a| {
                    let changed = *a != status.applied;
                    *a = status.applied;
                    changed
                });
                s.status = status;
            }
            None => {
                let (applied, _) = watch::channel(status.applied);
                shards.insert(status.shard, ShardShared { applied, status });
            }
        }
    }

    /// Removes a shard this node no longer hosts.
    pub fn forget(&self, shard: u32) {
        self.shards
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&shard);
    }

    /// Status of every hosted shard, in shard order.
    pub fn statuses(&self) -> Vec<ShardStatus> {
        let shards = self.shards.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<ShardStatus> = shards.values().map(|s| s.status.clone()).collect();
        out.sort_by_key(|s| s.shard);
        out
    }

    /// The applied index readers of `shard` can see (`None` if it is not hosted here).
    pub fn applied(&self, shard: u32) -> Option<u64> {
        self.shards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&shard)
            .map(|s| *s.applied.borrow())
    }

    /// Status of one shard.
    pub fn status(&self, shard: u32) -> Option<ShardStatus> {
        self.shards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&shard)
            .map(|s| s.status.clone())
    }

    /// Records whether the write-ahead log is short of room (see `Wal::is_short`).
    pub fn set_wal_short(&self, short: bool) {
        self.wal_short.store(short, Ordering::Release);
    }

    /// Whether new mutations are to be refused because the write-ahead log is short of room.
    pub fn wal_short(&self) -> bool {
        self.wal_short.load(Ordering::Acquire)
    }

    /// Lets readers that wait ask the host to commit what it applied (see
    /// [`super::commit`]).
    pub fn connect_host(&self, host: std::sync::mpsc::Sender<super::HostMsg>) {
        *self.host.lock().unwrap_or_else(|e| e.into_inner()) = Some(host);
    }

    /// Whether a reader waits for an applied index (the host then commits at once).
    pub fn readers_waiting(&self) -> bool {
        self.nudged.swap(false, Ordering::AcqRel)
            || self
                .shards
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .any(|s| s.applied.receiver_count() > 0)
    }

    fn nudge(&self) {
        if !self.nudged.swap(true, Ordering::AcqRel)
            && let Some(host) = &*self.host.lock().unwrap_or_else(|e| e.into_inner())
        {
            let _ = host.send(super::HostMsg::Commit);
        }
    }

    /// Waits until `shard` has applied `index`, for at most `timeout`.
    pub async fn wait_applied(&self, shard: u32, index: u64, timeout: Duration) -> Result<u64, RpcError> {
        let mut rx = {
            let shards = self.shards.read().unwrap_or_else(|e| e.into_inner());
            shards
                .get(&shard)
                .ok_or(RpcError::UnknownShard(shard))?
                .applied
                .subscribe()
        };
        if *rx.borrow() < index {
            self.nudge();
        }
        let reached = tokio::time::timeout(timeout, rx.wait_for(|a| *a >= index))
            .await
            .map(|r| r.map(|a| *a));
        match reached {
            Ok(Ok(a)) => Ok(a),
            _ => Err(RpcError::NotCaughtUp {
                shard,
                applied: *rx.borrow(),
                needed: index,
            }),
        }
    }

    /// Appends what applied commands changed and wakes the watchers. Call after the
    /// transaction that wrote them committed.
    pub fn record_changes(&self, notes: impl IntoIterator<Item = Note>) {
        let mut log = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        for n in notes {
            log.notes.push_back(n);
            if log.notes.len() > CHANGE_LOG {
                log.notes.pop_front();
                log.first += 1;
            }
        }
        let next = log.first + log.notes.len() as u64;
        drop(log);
        self.changed.send_replace(next);
    }

    /// The changes after `since` (0: none, just the current position), waiting up to `wait`
    /// for some to happen.
    pub async fn changes_since(&self, since: u64, wait: Duration) -> proto::Changes {
        let mut rx = self.changed.subscribe();
        if since != 0 {
            let _ = tokio::time::timeout(wait, rx.wait_for(|next| *next > since)).await;
        }
        let log = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let next = log.first + log.notes.len() as u64;
        let mut out = proto::Changes {
            next,
            overflow: false,
            inodes: Vec::new(),
            entries: Vec::new(),
        };
        if since == 0 {
            return out;
        }
        if since < log.first {
            out.overflow = true;
            return out;
        }
        for n in log.notes.iter().skip((since - log.first) as usize) {
            out.inodes.extend(n.inodes.iter().map(|i| (*i, n.client)));
            out.entries
                .extend(n.entries.iter().map(|(d, name)| (*d, name.clone(), n.client)));
        }
        out
    }

    /// Records a metadata server's addresses.
    pub fn set_node(&self, node: NodeInfo) {
        self.nodes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.id, node);
    }

    /// A metadata server's addresses.
    pub fn node(&self, id: u64) -> Option<NodeInfo> {
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Every known metadata server, by id.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let mut v: Vec<NodeInfo> = self
            .nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|n| n.id);
        v
    }

    /// A not-leader error for `shard` carrying the leader's id and client address, if known.
    pub fn not_leader(&self, shard: u32) -> RpcError {
        let leader = self.status(shard).map(|s| s.leader).filter(|l| *l != 0);
        RpcError::NotLeader {
            shard,
            leader: leader.map(|id| (id, self.node(id).map(|n| n.client_addr).unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(client: u64, ino: u64) -> Note {
        Note {
            client,
            inodes: vec![ino],
            entries: vec![(1, b"x".to_vec())],
        }
    }

    #[tokio::test(start_paused = true)]
    async fn watchers_get_changes_after_their_position_or_an_overflow() {
        let shared = Shared::default();
        let start = shared.changes_since(0, Duration::ZERO).await;
        assert_eq!((start.next, start.overflow, start.inodes.len()), (1, false, 0));
        let quiet = shared.changes_since(start.next, Duration::from_secs(10)).await;
        assert_eq!(
            (quiet.next, quiet.inodes.len()),
            (1, 0),
            "nothing happened within the wait"
        );
        shared.record_changes([note(7, 100), note(8, 101)]);
        let got = shared.changes_since(start.next, Duration::from_secs(10)).await;
        assert_eq!(got.next, 3);
        assert_eq!(got.inodes, vec![(100, 7), (101, 8)]);
        assert_eq!(got.entries, vec![(1, b"x".to_vec(), 7), (1, b"x".to_vec(), 8)]);
        shared.record_changes((0..CHANGE_LOG as u64 + 1).map(|i| note(1, i)));
        assert!(
            shared.changes_since(got.next, Duration::ZERO).await.overflow,
            "fell behind the kept log"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_watcher_wakes_on_a_change() {
        let shared = std::sync::Arc::new(Shared::default());
        let waiter = tokio::spawn({
            let shared = shared.clone();
            async move { shared.changes_since(1, Duration::from_secs(3600)).await }
        });
        tokio::task::yield_now().await;
        shared.record_changes([note(7, 5)]);
        let got = waiter.await.unwrap();
        assert_eq!((got.next, got.inodes), (2, vec![(5, 7)]));
    }
}
