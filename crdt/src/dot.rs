//! Node identities, dots and the compact causal context (a version vector plus a dot cloud).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Crdt;

/// A stable replica identity. It must never be reused by a replica that lost its state.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One event: the `counter`-th event of `node` within one causal context.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// The replica that generated the event.
    pub node: NodeId,
    /// Its sequence number at that replica, starting at 1.
    pub counter: u64,
}

impl fmt::Debug for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:?},{})", self.node, self.counter)
    }
}

/// A map from node to a counter, with zero entries omitted: a version vector, and the state of
/// a grow-only counter. Stored as a short sorted vector (clusters have few nodes), so the
/// common single-node case costs one small allocation.
#[derive(Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "Vec<(NodeId, u64)>", into = "Vec<(NodeId, u64)>")]
pub struct VersionVector(Vec<(NodeId, u64)>);

impl From<Vec<(NodeId, u64)>> for VersionVector {
    /// Normalises decoded input: sorted by node, one entry per node (the largest), no zeros.
    fn from(mut entries: Vec<(NodeId, u64)>) -> Self {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        entries.dedup_by_key(|e| e.0);
        entries.retain(|e| e.1 > 0);
        VersionVector(entries)
    }
}

impl From<VersionVector> for Vec<(NodeId, u64)> {
    fn from(v: VersionVector) -> Self {
        v.0
    }
}

impl fmt::Debug for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(n, c)| (n, c))).finish()
    }
}

impl VersionVector {
    /// An empty vector.
    pub const fn new() -> Self {
        VersionVector(Vec::new())
    }

    /// `node`'s counter (0 if absent).
    pub fn get(&self, node: NodeId) -> u64 {
        self.0
            .binary_search_by_key(&node, |e| e.0)
            .map_or(0, |i| self.0[i].1)
    }

    /// Sets `node`'s counter to `value`.
    pub fn set(&mut self, node: NodeId, value: u64) {
        match self.0.binary_search_by_key(&node, |e| e.0) {
            Ok(i) if value == 0 => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value,
            Err(_) if value == 0 => {}
            Err(i) => self.0.insert(i, (node, value)),
        }
    }

    /// Raises `node`'s counter to at least `value`.
    pub fn raise(&mut self, node: NodeId, value: u64) {
        if value > self.get(node) {
            self.set(node, value);
        }
    }

    /// Entries in node order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.0.iter().copied()
    }
}

impl Crdt for VersionVector {
    /// Pointwise maximum.
    fn join(&mut self, other: &Self) {
        for (node, v) in other.iter() {
            self.raise(node, v);
        }
    }
}

/// The set of dots a replica has seen, kept compact: a version vector holds every node's
/// contiguous prefix `1..=n`, and the dot cloud holds the dots seen out of order.
///
/// The representation is canonical (the vector always holds the longest contiguous prefix), so
/// two contexts holding the same dots compare equal and encode to the same bytes.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "RawContext")]
pub struct CausalContext {
    vv: VersionVector,
    cloud: BTreeSet<Dot>,
}

/// Wire form of a context; decoding normalises it so that any input yields a canonical context.
#[derive(Deserialize)]
struct RawContext {
    vv: VersionVector,
    cloud: BTreeSet<Dot>,
}

impl From<RawContext> for CausalContext {
    fn from(raw: RawContext) -> Self {
        let mut ctx = CausalContext {
            vv: raw.vv,
            cloud: raw.cloud,
        };
        ctx.cloud.retain(|d| d.counter > 0);
        ctx.compact();
        ctx
    }
}

impl fmt::Debug for CausalContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("vv", &self.vv)
            .field("cloud", &self.cloud)
            .finish()
    }
}

impl CausalContext {
    /// An empty context.
    pub const fn new() -> Self {
        CausalContext {
            vv: VersionVector::new(),
            cloud: BTreeSet::new(),
        }
    }

    /// A context holding exactly `dots`.
    pub fn from_dots(dots: impl IntoIterator<Item = Dot>) -> Self {
        let mut ctx = Self::new();
        for d in dots {
            ctx.insert_unchecked(d);
        }
        ctx.compact();
        ctx
    }

    /// Whether `dot` has been seen.
    pub fn contains(&self, dot: &Dot) -> bool {
        dot.counter <= self.vv.get(dot.node) || self.cloud.contains(dot)
    }

    /// The next dot `node` should generate: one past every dot of `node` seen so far.
    /// Saturates at `u64::MAX`, which only corrupted input can reach.
    pub fn next_dot(&self, node: NodeId) -> Dot {
        let base = self.vv.get(node);
        let cloud_max = self
            .cloud
            .range(
                Dot { node, counter: 0 }..=Dot {
                    node,
                    counter: u64::MAX,
                },
            )
            .next_back()
            .map_or(0, |d| d.counter);
        Dot {
            node,
            counter: base.max(cloud_max).saturating_add(1),
        }
    }

    /// Records `dot` as seen.
    pub fn insert(&mut self, dot: Dot) {
        if dot.counter == 0 || self.contains(&dot) {
            return;
        }
        if dot.counter.checked_sub(self.vv.get(dot.node)) == Some(1) {
            self.vv.set(dot.node, dot.counter);
            if !self.cloud.is_empty() {
                self.compact();
            }
        } else {
            self.cloud.insert(dot);
        }
    }

    /// Number of dots held out of order; a measure of how far from compact the context is.
    pub fn cloud_len(&self) -> usize {
        self.cloud.len()
    }

    /// Every dot in the context, in order. Meant for tests and diagnostics: the contiguous
    /// prefixes can be long.
    pub fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        let prefix = self
            .vv
            .iter()
            .flat_map(|(node, n)| (1..=n).map(move |counter| Dot { node, counter }));
        prefix.chain(self.cloud.iter().copied())
    }

    fn insert_unchecked(&mut self, dot: Dot) {
        if dot.counter > self.vv.get(dot.node) {
            self.cloud.insert(dot);
        }
    }

    /// Moves cloud dots that extend a node's contiguous prefix into the version vector.
    fn compact(&mut self) {
        let vv = &mut self.vv;
        self.cloud
            .retain(|d| match d.counter.checked_sub(vv.get(d.node)) {
                Some(1) => {
                    vv.set(d.node, d.counter);
                    false
                }
                Some(0) | None => false,
                Some(_) => true,
            });
    }
}

impl Crdt for CausalContext {
    /// Adds every dot of `other`.
    fn join(&mut self, other: &CausalContext) {
        self.vv.join(&other.vv);
        for d in &other.cloud {
            self.insert_unchecked(*d);
        }
        self.compact();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(node: u64, counter: u64) -> Dot {
        Dot {
            node: NodeId(node),
            counter,
        }
    }

    #[test]
    fn contiguous_dots_fold_into_the_vector() {
        let mut c = CausalContext::new();
        c.insert(dot(1, 2));
        assert_eq!(c.cloud_len(), 1);
        c.insert(dot(1, 1));
        assert_eq!(c.cloud_len(), 0);
        assert!(c.contains(&dot(1, 2)) && !c.contains(&dot(1, 3)));
        assert_eq!(c.next_dot(NodeId(1)), dot(1, 3));
    }

    #[test]
    fn next_dot_skips_cloud() {
        let c = CausalContext::from_dots([dot(4, 5)]);
        assert_eq!(c.next_dot(NodeId(4)), dot(4, 6));
        assert_eq!(c.next_dot(NodeId(5)), dot(5, 1));
    }

    #[test]
    fn extreme_counters_do_not_overflow() {
        let mut c = CausalContext::from_dots([dot(1, u64::MAX), dot(1, u64::MAX - 1)]);
        c.insert(dot(1, 1));
        c.join(&CausalContext::from_dots([dot(1, u64::MAX)]));
        assert!(c.contains(&dot(1, u64::MAX)) && !c.contains(&dot(1, 2)));
        assert_eq!(c.next_dot(NodeId(1)).counter, u64::MAX);
    }

    #[test]
    fn equal_dot_sets_are_equal_contexts() {
        let a = CausalContext::from_dots([dot(1, 1), dot(1, 2), dot(2, 3)]);
        let mut b = CausalContext::from_dots([dot(2, 3)]);
        b.join(&CausalContext::from_dots([dot(1, 2), dot(1, 1)]));
        assert_eq!(a, b);
    }
}
