//! Which chunkservers are alive, as this metadata server hears them. Heartbeats are not
//! replicated: every server keeps its own view, and a chunkserver is alive while its last
//! heartbeat here is younger than the dead-after interval. Time is passed in, never read.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proto::fs::CHUNK_SIZE;

/// The last heartbeat of one chunkserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its data address.
    pub addr: String,
    /// When it was heard.
    pub at: Instant,
    /// Total bytes of its data dirs.
    pub capacity: u64,
    /// Bytes used.
    pub used: u64,
    /// Chunks held.
    pub chunks: u64,
}

impl Seen {
    /// Bytes free.
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }
}

/// Heartbeats heard, by chunkserver id.
#[derive(Debug)]
pub struct Liveness {
    seen: BTreeMap<u64, Seen>,
    dead_after: Duration,
    since: Instant,
}

impl Liveness {
    /// An empty view, started at `now`.
    pub fn new(dead_after: Duration, now: Instant) -> Liveness {
        Liveness {
            seen: BTreeMap::new(),
            dead_after,
            since: now,
        }
    }

    /// Records a heartbeat.
    pub fn heard(&mut self, id: u64, addr: &str, capacity: u64, used: u64, chunks: u64, now: Instant) {
        self.seen.insert(
            id,
            Seen {
                addr: addr.to_string(),
                at: now,
                capacity,
                used,
                chunks,
            },
        );
    }

    /// Whether `id` was heard within the dead-after interval.
    pub fn alive(&self, id: u64, now: Instant) -> bool {
        self.seen
            .get(&id)
            .is_some_and(|s| now.saturating_duration_since(s.at) < self.dead_after)
    }

    /// Whether this view is old enough to call a silent chunkserver dead: for one interval
    /// after this server starts, every chunkserver may simply not have reached it yet.
    pub fn settled(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) >= self.dead_after
    }

    /// Live chunkservers with room for a whole chunk and their addresses, most free space
    /// first (ties: lowest id).
    pub fn placement(&self, now: Instant) -> Vec<(u64, String)> {
        let mut live: Vec<(&u64, &Seen)> = self
            .seen
            .iter()
            .filter(|(id, s)| self.alive(**id, now) && s.free() >= CHUNK_SIZE)
            .collect();
        live.sort_by(|a, b| b.1.free().cmp(&a.1.free()).then(a.0.cmp(b.0)));
        live.into_iter().map(|(id, s)| (*id, s.addr.clone())).collect()
    }

    /// Every chunkserver heard of, with its last heartbeat.
    pub fn all(&self) -> impl Iterator<Item = (u64, &Seen)> + '_ {
        self.seen.iter().map(|(id, s)| (*id, s))
    }

    /// The live chunkservers' total and used bytes.
    pub fn space(&self, now: Instant) -> (u64, u64) {
        self.seen
            .iter()
            .filter(|(id, _)| self.alive(**id, now))
            .fold((0, 0), |(t, u), (_, s)| (t + s.capacity, u + s.used))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn silence_longer_than_the_interval_is_death() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Duration::from_secs(5), t0);
        assert!(!l.settled(t0 + Duration::from_secs(4)));
        l.heard(1, "cs1", 10 * GIB, 0, 0, t0);
        assert!(l.alive(1, t0 + Duration::from_millis(4999)));
        assert!(!l.alive(1, t0 + Duration::from_secs(5)));
        assert!(!l.alive(2, t0), "never heard");
        assert!(l.settled(t0 + Duration::from_secs(5)));
        l.heard(1, "cs1", 10 * GIB, 0, 0, t0 + Duration::from_secs(9));
        assert!(l.alive(1, t0 + Duration::from_secs(10)), "a heartbeat revives");
    }

    #[test]
    fn placement_prefers_free_space_and_skips_full_and_dead_servers() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Duration::from_secs(5), t0);
        l.heard(1, "cs1", 10 * GIB, 9 * GIB, 0, t0);
        l.heard(2, "cs2", 10 * GIB, GIB, 0, t0);
        l.heard(3, "cs3", 10 * GIB, 10 * GIB - CHUNK_SIZE + 1, 0, t0);
        l.heard(4, "cs4", 10 * GIB, 9 * GIB, 0, t0);
        l.heard(5, "cs5", 100 * GIB, 0, 0, t0 - Duration::from_secs(6));
        let ids: Vec<u64> = l.placement(t0).into_iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![2, 1, 4]);
        assert_eq!(l.placement(t0)[0].1, "cs2");
        assert_eq!(
            l.space(t0),
            (40 * GIB, 29 * GIB - CHUNK_SIZE + 1),
            "dead servers do not count"
        );
    }
}
