//! Last-writer-wins register and map, stamped with hybrid-logical-clock timestamps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Crdt;
use crate::hlc::Timestamp;

/// A register whose newest write wins. Writes are ordered by their [`Timestamp`], whose node
/// id breaks ties between equal clock readings. Two writes with the same timestamp can only
/// come from a bug (a node reusing a timestamp); they are still merged deterministically by
/// keeping the larger value, so the join stays commutative.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Lww<T> {
    ts: Timestamp,
    value: T,
}

impl<T: Clone + Ord> Lww<T> {
    /// A register holding `value` written at `ts`.
    pub fn new(ts: Timestamp, value: T) -> Self {
        Lww { ts, value }
    }

    /// The current value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The stamp of the current value; [`Timestamp::ZERO`] if never written.
    pub fn ts(&self) -> Timestamp {
        self.ts
    }

    /// Writes `value` at `ts` and returns the delta (the register as written). A write older
    /// than the current value is lost, exactly as if it had been delivered late.
    pub fn set(&mut self, ts: Timestamp, value: T) -> Lww<T> {
        let delta = Lww::new(ts, value);
        self.join(&delta);
        delta
    }
}

impl<T: Clone + Ord> Crdt for Lww<T> {
    fn join(&mut self, other: &Self) {
        if (other.ts, &other.value) > (self.ts, &self.value) {
            self.ts = other.ts;
            self.value = other.value.clone();
        }
    }
}

/// A map of last-writer-wins registers, used for extended attributes and chunk tables.
///
/// Removing a key writes a tombstone (`None`) so that an older, late-arriving write cannot bring
/// the key back. Tombstones are dropped by [`LwwMap::collect_garbage`] once causally stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "K: Serialize, V: Serialize"))]
#[serde(bound(deserialize = "K: Deserialize<'de> + Ord, V: Deserialize<'de>"))]
pub struct LwwMap<K, V> {
    entries: BTreeMap<K, Lww<Option<V>>>,
}

impl<K, V> Default for LwwMap<K, V> {
    fn default() -> Self {
        LwwMap {
            entries: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone, V: Ord + Clone> LwwMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The live value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).and_then(|r| r.get().as_ref())
    }

    /// The register under `key`, tombstones included.
    pub fn register(&self, key: &K) -> Option<&Lww<Option<V>>> {
        self.entries.get(key)
    }

    /// Live entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries
            .iter()
            .filter_map(|(k, r)| r.get().as_ref().map(|v| (k, v)))
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there is no live entry.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Number of tombstones waiting for collection.
    pub fn tombstones(&self) -> usize {
        self.entries.values().filter(|r| r.get().is_none()).count()
    }

    /// Writes `value` (or a tombstone for `None`) under `key` at `ts`; returns the delta.
    pub fn put(&mut self, key: K, value: Option<V>, ts: Timestamp) -> LwwMap<K, V> {
        let reg = Lww::new(ts, value);
        self.join_register(key.clone(), &reg);
        LwwMap {
            entries: BTreeMap::from([(key, reg)]),
        }
    }

    /// Joins a single register into the map.
    pub fn join_register(&mut self, key: K, reg: &Lww<Option<V>>) {
        match self.entries.get_mut(&key) {
            Some(mine) => mine.join(reg),
            None => {
                self.entries.insert(key, reg.clone());
            }
        }
    }

    /// Drops tombstones written at or before `stable`: the caller guarantees every replica has
    /// seen every write stamped at or before it, so no older write can still arrive.
    pub fn collect_garbage(&mut self, stable: Timestamp) {
        self.entries.retain(|_, r| r.get().is_some() || r.ts() > stable);
    }

    /// The newest stamp in the map.
    pub fn max_ts(&self) -> Timestamp {
        self.entries
            .values()
            .map(Lww::ts)
            .max()
            .unwrap_or(Timestamp::ZERO)
    }
}

impl<K: Ord + Clone, V: Ord + Clone> Crdt for LwwMap<K, V> {
    fn join(&mut self, other: &Self) {
        for (k, r) in &other.entries {
            self.join_register(k.clone(), r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::NodeId;

    fn ts(ms: u64, node: u64) -> Timestamp {
        Timestamp::new(ms, 0, NodeId(node))
    }

    #[test]
    fn newer_write_wins_and_node_breaks_ties() {
        let mut r = Lww::new(ts(5, 1), 10u32);
        r.set(ts(4, 9), 20);
        assert_eq!(*r.get(), 10, "an older write is lost");
        r.set(ts(5, 2), 30);
        assert_eq!(*r.get(), 30, "same millisecond: higher node id wins");
    }

    #[test]
    fn tombstone_blocks_older_writes_until_collected() {
        let mut m = LwwMap::new();
        m.put(b"user.a".to_vec(), Some(b"1".to_vec()), ts(1, 1));
        m.put(b"user.a".to_vec(), None, ts(3, 1));
        m.put(b"user.a".to_vec(), Some(b"late".to_vec()), ts(2, 2));
        assert_eq!(m.get(&b"user.a".to_vec()), None);
        assert_eq!(m.tombstones(), 1);
        m.collect_garbage(ts(2, 9));
        assert_eq!(m.tombstones(), 1, "not yet stable");
        m.collect_garbage(ts(3, 1));
        assert_eq!(m.tombstones(), 0);
    }
}
