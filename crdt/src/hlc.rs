//! Hybrid logical clock: physical milliseconds, a logical counter and a node id.
//!
//! A [`Timestamp`] packs the physical part (milliseconds since the Unix epoch, 48 bits) and the
//! logical counter (16 bits) into one `u64`, followed by the [`NodeId`] that breaks ties. Because
//! the logical counter sits in the low bits, "the next timestamp" is simply `packed + 1`: when the
//! counter overflows it carries into the milliseconds, so the clock stays monotonic even under a
//! burst of more than 65,536 events in one millisecond.
//!
//! The clock never reads time itself. Callers pass the wall-clock reading in, which keeps the
//! crate I/O-free and lets tests drive the clock with arbitrary (including backwards) readings.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dot::NodeId;

/// Bits of the packed value that hold the logical counter.
const LOGICAL_BITS: u32 = 16;
/// The largest physical time a [`Timestamp`] can hold, in milliseconds (year 10889).
pub const MAX_PHYSICAL_MS: u64 = (1 << (64 - LOGICAL_BITS)) - 1;

/// A hybrid-logical-clock reading. Totally ordered by (physical, logical, node).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Timestamp {
    packed: u64,
    node: NodeId,
}

impl Timestamp {
    /// The smallest timestamp; the stamp of a register that was never written.
    pub const ZERO: Timestamp = Timestamp {
        packed: 0,
        node: NodeId(0),
    };

    /// Builds a timestamp from its parts. `physical_ms` is clamped to [`MAX_PHYSICAL_MS`].
    pub fn new(physical_ms: u64, logical: u16, node: NodeId) -> Self {
        Timestamp {
            packed: (physical_ms.min(MAX_PHYSICAL_MS) << LOGICAL_BITS) | u64::from(logical),
            node,
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn physical_ms(&self) -> u64 {
        self.packed >> LOGICAL_BITS
    }

    /// The logical counter within the millisecond.
    pub fn logical(&self) -> u16 {
        (self.packed & ((1 << LOGICAL_BITS) - 1)) as u16
    }

    /// The node that issued this timestamp.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// This stamp if it is above `floor`, otherwise the smallest stamp of the same node above
    /// it. A replicated log uses it to make stamps grow in log order whatever the proposers'
    /// clocks said.
    pub fn raised_above(self, floor: Timestamp) -> Timestamp {
        if self > floor {
            self
        } else {
            Timestamp {
                packed: floor.packed.saturating_add(1),
                node: self.node,
            }
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}@{}", self.physical_ms(), self.logical(), self.node.0)
    }
}

/// A remote timestamp the clock refused to adopt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The remote clock is further ahead of ours than the configured maximum offset. Adopting
    /// it would drag every later local timestamp into the future, so it is refused; the sender's
    /// clock (or ours) needs fixing.
    #[error(
        "remote timestamp {remote:?} is {ahead_ms} ms ahead of local wall clock {local_ms} ms \
         (maximum offset {max_offset_ms} ms)"
    )]
    TooFarAhead {
        remote: Timestamp,
        local_ms: u64,
        ahead_ms: u64,
        max_offset_ms: u64,
    },
}

/// The hybrid logical clock of one node.
#[derive(Debug, Clone)]
pub struct Hlc {
    node: NodeId,
    last: u64,
    max_offset_ms: u64,
}

impl Hlc {
    /// A clock for `node` that refuses remote timestamps more than `max_offset` ahead.
    pub fn new(node: NodeId, max_offset: Duration) -> Self {
        let max_offset_ms = u64::try_from(max_offset.as_millis()).unwrap_or(u64::MAX);
        Hlc {
            node,
            last: 0,
            max_offset_ms,
        }
    }

    /// Restores a clock that must stay above `floor` (for example the newest stamp found in
    /// persisted state after a restart).
    pub fn with_floor(mut self, floor: Timestamp) -> Self {
        self.last = self.last.max(floor.packed);
        self
    }

    /// The node this clock stamps for.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The most recent timestamp issued or observed.
    pub fn last(&self) -> Timestamp {
        Timestamp {
            packed: self.last,
            node: self.node,
        }
    }

    /// A fresh timestamp for a local event, given the wall clock reading `wall_ms`.
    ///
    /// It is strictly greater than every timestamp this clock issued or observed before, even
    /// when `wall_ms` went backwards.
    pub fn now(&mut self, wall_ms: u64) -> Timestamp {
        self.last = self.last.saturating_add(1).max(pack_wall(wall_ms));
        self.last()
    }

    /// Advances the clock past a timestamp received from another node and returns a fresh
    /// local timestamp greater than both.
    ///
    /// A remote timestamp more than the maximum offset ahead of `wall_ms` is refused and the
    /// clock is left unchanged.
    pub fn observe(&mut self, remote: Timestamp, wall_ms: u64) -> Result<Timestamp, ClockError> {
        let ahead_ms = remote.physical_ms().saturating_sub(wall_ms);
        if ahead_ms > self.max_offset_ms {
            return Err(ClockError::TooFarAhead {
                remote,
                local_ms: wall_ms,
                ahead_ms,
                max_offset_ms: self.max_offset_ms,
            });
        }
        self.last = self
            .last
            .saturating_add(1)
            .max(remote.packed.saturating_add(1))
            .max(pack_wall(wall_ms));
        Ok(self.last())
    }
}

fn pack_wall(wall_ms: u64) -> u64 {
    wall_ms.min(MAX_PHYSICAL_MS) << LOGICAL_BITS
}

/// A source of wall-clock time in milliseconds, injectable so tests can control time.
pub trait WallClock {
    /// Milliseconds since the Unix epoch.
    fn wall_ms(&self) -> u64;
}

/// The operating system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn wall_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(MAX_PHYSICAL_MS))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Hlc {
        Hlc::new(NodeId(1), Duration::from_millis(500))
    }

    #[test]
    fn parts_round_trip() {
        let t = Timestamp::new(1_700_000_000_123, 7, NodeId(9));
        assert_eq!(
            (t.physical_ms(), t.logical(), t.node()),
            (1_700_000_000_123, 7, NodeId(9))
        );
    }

    #[test]
    fn stays_monotonic_when_wall_clock_jumps_back() {
        let mut c = clock();
        let a = c.now(10_000);
        let b = c.now(5_000);
        assert!(b > a);
        assert_eq!(b.physical_ms(), 10_000);
        assert_eq!(b.logical(), 1);
    }

    #[test]
    fn logical_overflow_carries_into_milliseconds() {
        let mut c = clock();
        let mut last = c.now(1);
        for _ in 0..70_000 {
            let t = c.now(1);
            assert!(t > last);
            last = t;
        }
        assert_eq!(last.physical_ms(), 2);
    }

    #[test]
    fn observe_advances_past_remote() {
        let mut c = clock();
        let remote = Timestamp::new(1_200, 5, NodeId(2));
        let t = c.observe(remote, 1_000).unwrap();
        assert!(t > remote);
        assert_eq!(t.node(), NodeId(1));
    }

    #[test]
    fn raising_above_a_floor_keeps_the_node() {
        let t = Timestamp::new(5, 0, NodeId(2));
        assert_eq!(t.raised_above(Timestamp::new(4, 9, NodeId(7))), t);
        let r = t.raised_above(Timestamp::new(9, 3, NodeId(7)));
        assert_eq!((r.physical_ms(), r.logical(), r.node()), (9, 4, NodeId(2)));
        assert!(r > Timestamp::new(9, 3, NodeId(7)));
    }

    #[test]
    fn saturates_at_the_largest_timestamp() {
        let mut c = Hlc::new(NodeId(1), Duration::MAX);
        let top = Timestamp::new(MAX_PHYSICAL_MS, u16::MAX, NodeId(2));
        assert_eq!(c.observe(top, 0).unwrap().physical_ms(), MAX_PHYSICAL_MS);
        assert_eq!(c.now(u64::MAX).logical(), u16::MAX);
    }

    #[test]
    fn observe_refuses_remote_beyond_max_offset() {
        let mut c = clock();
        let before = c.now(1_000);
        let remote = Timestamp::new(1_501 + 1_000, 0, NodeId(2));
        let err = c.observe(remote, 1_000).unwrap_err();
        assert!(
            matches!(err, ClockError::TooFarAhead { ahead_ms: 1_501, .. }),
            "{err}"
        );
        assert_eq!(c.last(), before, "a refused timestamp must not be adopted");
    }
}
