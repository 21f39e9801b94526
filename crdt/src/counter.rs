//! Grow-only and positive-negative counters.
//!
//! Each node owns one component and only ever raises it; a delta carries the node's new
//! component total, never an increment, so applying a delta twice is harmless.

use serde::{Deserialize, Serialize};

use crate::Crdt;
use crate::dot::{NodeId, VersionVector};

/// A counter that only grows: one monotonic component per node, joined by maximum.
/// Zero components are never stored, so equal counters have equal encodings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GCounter(VersionVector);

impl GCounter {
    /// A zero counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` to `node`'s component and returns the delta (that component alone).
    pub fn add(&mut self, node: NodeId, n: u64) -> GCounter {
        let total = self.0.get(node).saturating_add(n);
        self.0.set(node, total);
        GCounter::component(node, total)
    }

    /// A counter with one component, `node` = `total`; this is the delta shape.
    pub fn component(node: NodeId, total: u64) -> GCounter {
        let mut v = VersionVector::new();
        v.set(node, total);
        GCounter(v)
    }

    /// The total over every node (saturating).
    pub fn value(&self) -> u64 {
        self.0.iter().fold(0u64, |a, (_, b)| a.saturating_add(b))
    }

    /// `node`'s own component.
    pub fn of(&self, node: NodeId) -> u64 {
        self.0.get(node)
    }
}

impl Crdt for GCounter {
    fn join(&mut self, other: &Self) {
        self.0.join(&other.0);
    }
}

/// A counter that goes up and down: two grow-only counters, increments minus decrements.
/// Used for link counts and quota usage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PnCounter {
    inc: GCounter,
    dec: GCounter,
}

impl PnCounter {
    /// A zero counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `delta` (which may be negative) on behalf of `node` and returns the counter delta.
    pub fn add(&mut self, node: NodeId, delta: i64) -> PnCounter {
        let mut out = PnCounter::default();
        if delta >= 0 {
            out.inc = self.inc.add(node, delta.unsigned_abs());
        } else {
            out.dec = self.dec.add(node, delta.unsigned_abs());
        }
        out
    }

    /// A counter with `node`'s components only; the shape deltas travel in.
    pub fn component(node: NodeId, inc: u64, dec: u64) -> PnCounter {
        PnCounter {
            inc: GCounter::component(node, inc),
            dec: GCounter::component(node, dec),
        }
    }

    /// Joins `node`'s component totals (the shape deltas travel in) without building a delta.
    pub fn raise(&mut self, node: NodeId, inc: u64, dec: u64) {
        self.inc.0.raise(node, inc);
        self.dec.0.raise(node, dec);
    }

    /// `node`'s (increments, decrements) totals.
    pub fn of(&self, node: NodeId) -> (u64, u64) {
        (self.inc.of(node), self.dec.of(node))
    }

    /// Increments minus decrements. Saturates at the bounds of `i64`.
    pub fn value(&self) -> i64 {
        let v = i128::from(self.inc.value()) - i128::from(self.dec.value());
        v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

impl Crdt for PnCounter {
    fn join(&mut self, other: &Self) {
        self.inc.join(&other.inc);
        self.dec.join(&other.dec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_are_totals_so_duplicates_are_harmless() {
        let mut a = PnCounter::new();
        let d1 = a.add(NodeId(1), 3);
        let d2 = a.add(NodeId(1), -1);
        let mut b = PnCounter::new();
        for d in [&d2, &d1, &d2, &d1] {
            b.join(d);
        }
        assert_eq!(b, a);
        assert_eq!(b.value(), 2);
    }
}
