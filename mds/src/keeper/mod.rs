//! The chunk keeper: which chunkservers are alive, where new chunks go, and the repair loop
//! that keeps every chunk at its replication goal.
//!
//! | module | what it holds |
//! |---|---|
//! | [`liveness`] | heartbeats heard here; placement order |
//! | [`plan`] | what one chunk needs (pure) |
//! | [`book`] | orders waiting for their chunkserver's heartbeat |
//! | [`scan`] | the loop that walks the chunk tables of the shards led here |
//!
//! Chunkservers heartbeat every metadata server; heartbeats stay local (they are not
//! replicated), so every server knows liveness on its own. The leader of each shard scans that
//! shard's chunks and queues orders (replicate, delete) for the chunkservers, which collect
//! them with their next heartbeat here. Copies they make or drop come back through chunk
//! reports, which are replicated.

pub mod book;
pub mod liveness;
pub mod plan;
pub mod scan;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proto::chunk::Order;
use proto::{FsOp, FsReply};
use serde::Serialize;

use self::book::Book;
use self::liveness::Liveness;

/// Timing of the keeper.
#[derive(Debug, Clone, Copy)]
pub struct KeeperSettings {
    /// A chunkserver silent this long is dead.
    pub dead_after: Duration,
    /// How long orders stay out before the chunk is planned again.
    pub order_timeout: Duration,
    /// Pause between scan passes.
    pub scan_interval: Duration,
}

impl Default for KeeperSettings {
    fn default() -> Self {
        KeeperSettings {
            dead_after: Duration::from_secs(5),
            order_timeout: Duration::from_secs(30),
            scan_interval: Duration::from_secs(1),
        }
    }
}

/// Chunk health of one shard, from its last complete scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ShardHealth {
    /// Live chunks.
    pub chunks: u64,
    /// Chunks with fewer valid copies than their goal.
    pub under_goal: u64,
    /// Chunks with no valid copy on a live chunkserver.
    pub missing: u64,
    /// Garbage chunks still to delete.
    pub garbage: u64,
}

/// A chunkserver as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChunkserverStatus {
    /// Its id.
    pub id: u64,
    /// Its data address.
    pub addr: String,
    /// Heard within the dead-after interval.
    pub alive: bool,
    /// Milliseconds since its last heartbeat.
    pub silent_ms: u64,
    /// Total bytes.
    pub capacity: u64,
    /// Used bytes.
    pub used: u64,
    /// Chunks held.
    pub chunks: u64,
}

/// Everything the keeper knows; shared by the client port, the scanner and `/status`.
#[derive(Debug)]
pub struct Keeper {
    settings: KeeperSettings,
    live: Mutex<Liveness>,
    book: Mutex<Book>,
    health: Mutex<HashMap<u32, ShardHealth>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Keeper {
    /// A keeper that starts hearing chunkservers at `now`.
    pub fn new(settings: KeeperSettings, now: Instant) -> Keeper {
        Keeper {
            settings,
            live: Mutex::new(Liveness::new(settings.dead_after, now)),
            book: Mutex::new(Book::new(settings.order_timeout)),
            health: Mutex::new(HashMap::new()),
        }
    }

    /// The keeper's timing.
    pub fn settings(&self) -> KeeperSettings {
        self.settings
    }

    /// A heartbeat from chunkserver `id` at data address `addr`; returns the orders waiting
    /// for it.
    pub fn heard(
        &self,
        id: u64,
        addr: &str,
        capacity: u64,
        used: u64,
        chunks: u64,
        now: Instant,
    ) -> Vec<Order> {
        lock(&self.live).heard(id, addr, capacity, used, chunks, now);
        lock(&self.book).take(id, now)
    }

    /// Whether chunkserver `id` is alive.
    pub fn alive(&self, id: u64, now: Instant) -> bool {
        lock(&self.live).alive(id, now)
    }

    /// Live chunkservers with room for a chunk and their data addresses, best first: the
    /// placement list a command that may create a chunk carries.
    pub fn placement(&self, now: Instant) -> Vec<(u64, String)> {
        lock(&self.live).placement(now)
    }

    /// The live chunkservers' total and used bytes.
    pub fn space(&self, now: Instant) -> (u64, u64) {
        lock(&self.live).space(now)
    }

    /// Every chunkserver heard of.
    pub fn chunkservers(&self, now: Instant) -> Vec<ChunkserverStatus> {
        let live = lock(&self.live);
        live.all()
            .map(|(id, s)| ChunkserverStatus {
                id,
                addr: s.addr.clone(),
                alive: live.alive(id, now),
                silent_ms: now.saturating_duration_since(s.at).as_millis() as u64,
                capacity: s.capacity,
                used: s.used,
                chunks: s.chunks,
            })
            .collect()
    }

    /// Chunk health by shard (shards led here).
    pub fn health(&self) -> HashMap<u32, ShardHealth> {
        lock(&self.health).clone()
    }

    /// Orders waiting for delivery.
    pub fn queued_orders(&self) -> usize {
        lock(&self.book).queued()
    }
}

impl Keeper {
    /// Adjusts a reply computed from replicated state to what this server knows of liveness:
    /// readers get live copies first; writers get only live copies (unless none is alive, and
    /// the write will fail at the chunkserver); free space counts live chunkservers.
    pub fn adjust(&self, op: &FsOp, reply: FsReply, now: Instant) -> FsReply {
        match reply {
            FsReply::Chunk(mut loc) => {
                let live = lock(&self.live);
                match op {
                    FsOp::ChunkForWrite { .. } => {
                        if loc.servers.iter().any(|s| live.alive(s.0, now)) {
                            loc.servers.retain(|s| live.alive(s.0, now));
                        }
                    }
                    _ => loc.servers.sort_by_key(|s| !live.alive(s.0, now)),
                }
                FsReply::Chunk(loc)
            }
            FsReply::StatFs(mut s) => {
                let (total, used) = self.space(now);
                if total > 0 {
                    let blocks = |bytes: u64| bytes / u64::from(s.block_size.max(1));
                    s.blocks = blocks(total);
                    s.blocks_free = blocks(total.saturating_sub(used));
                }
                FsReply::StatFs(s)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use proto::fs::{ChunkLocation, StatFs};

    use super::*;

    fn at(servers: &[u64]) -> FsReply {
        FsReply::Chunk(ChunkLocation {
            index: 0,
            chunk: Some(crdt::model::ChunkRef { id: 9, version: 2 }),
            servers: servers.iter().map(|s| (*s, format!("cs{s}"))).collect(),
            prev_version: 1,
            file_size: 0,
        })
    }

    #[test]
    fn replies_follow_liveness() {
        let t0 = Instant::now();
        let k = Keeper::new(KeeperSettings::default(), t0);
        k.heard(2, "cs2", 1 << 40, 1 << 39, 0, t0);
        k.heard(3, "cs3", 1 << 40, 0, 0, t0);
        let read = FsOp::ChunkForRead { ino: 1, index: 0 };
        let write = FsOp::ChunkForWrite {
            ino: 1,
            index: 0,
            handle: 1,
        };
        assert_eq!(
            k.adjust(&read, at(&[1, 2, 3]), t0),
            at(&[2, 3, 1]),
            "live copies first"
        );
        assert_eq!(
            k.adjust(&write, at(&[1, 2]), t0),
            at(&[2]),
            "writes skip dead copies"
        );
        assert_eq!(
            k.adjust(&write, at(&[1, 4]), t0),
            at(&[1, 4]),
            "no live copy: left to fail"
        );
        let statfs = FsReply::StatFs(StatFs {
            block_size: 4096,
            blocks: 1,
            blocks_free: 1,
            files: 5,
            files_free: 4,
            name_max: 255,
        });
        let FsReply::StatFs(s) = k.adjust(&FsOp::StatFs, statfs, t0) else {
            panic!()
        };
        assert_eq!(
            (s.blocks, s.blocks_free, s.files),
            (2 << 28, (1 << 28) + (1 << 27), 5)
        );
        assert_eq!(
            k.placement(t0),
            vec![(3, "cs3".to_string()), (2, "cs2".to_string())]
        );
    }
}
