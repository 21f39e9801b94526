//! One group's persisted raft log and hard state, in memory: what the WAL holds for the group,
//! rebuilt from it at start. No I/O; raft-rs reads it through
//! [`GroupStorage`](crate::raft::storage::GroupStorage).

use std::collections::VecDeque;

use protobuf::Message as _;
use raft::eraftpb::{Entry, HardState};

use crate::wal::record::GroupDelta;

/// A log that does not fit what is applied to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shard {shard}: {reason}")]
pub struct LogError {
    /// The shard.
    pub shard: u32,
    /// What does not fit.
    pub reason: String,
}

/// One group's log: the entries after `snap`, and the hard state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemLog {
    snap: (u64, u64),
    entries: VecDeque<Entry>,
    hard_state: HardState,
}

impl MemLog {
    /// Index and term of the last entry dropped from the log.
    pub fn snap(&self) -> (u64, u64) {
        self.snap
    }

    /// The first index held (one past `snap` when empty).
    pub fn first_index(&self) -> u64 {
        self.snap.0 + 1
    }

    /// The last index held (`snap`'s when empty).
    pub fn last_index(&self) -> u64 {
        self.snap.0 + self.entries.len() as u64
    }

    /// The hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The term of entry `index`: `None` if it is not held (compacted or beyond the end).
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.snap.0 {
            return Some(self.snap.1);
        }
        self.get(index).map(|e| e.term)
    }

    fn get(&self, index: u64) -> Option<&Entry> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Entries `[low, high)`, if every one of them is held.
    pub fn entries(&self, low: u64, high: u64) -> Option<Vec<Entry>> {
        if low < self.first_index() || high > self.last_index() + 1 || low > high {
            return None;
        }
        let from = (low - self.first_index()) as usize;
        Some(
            self.entries
                .range(from..from + (high - low) as usize)
                .cloned()
                .collect(),
        )
    }

    /// Every entry held.
    pub fn all(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Appends `entries`, first dropping every held entry at or after the first new index.
    pub fn append(&mut self, shard: u32, entries: Vec<Entry>) -> Result<(), LogError> {
        let Some(first) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        if first <= self.snap.0 || first > self.last_index() + 1 {
            return Err(LogError {
                shard,
                reason: format!(
                    "append at {first} does not fit a log of [{}, {}]",
                    self.first_index(),
                    self.last_index()
                ),
            });
        }
        self.entries.truncate((first - self.first_index()) as usize);
        for (i, e) in entries.into_iter().enumerate() {
            if e.index != first + i as u64 {
                return Err(LogError {
                    shard,
                    reason: format!("entry {} out of order after {}", e.index, first + i as u64 - 1),
                });
            }
            self.entries.push_back(e);
        }
        Ok(())
    }

    /// Drops every entry: the log restarts after `(index, term)`.
    pub fn reset(&mut self, index: u64, term: u64) {
        self.entries.clear();
        self.snap = (index, term);
    }

    /// Drops the entries up to and including `index`, if held.
    pub fn compact(&mut self, index: u64) {
        let Some(term) = self.term(index) else {
            return;
        };
        let n = (index - self.snap.0) as usize;
        self.entries.drain(..n);
        self.snap = (index, term);
    }

    /// Stores the hard state.
    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// Applies what one WAL record persisted for this group.
    pub fn apply(&mut self, delta: &GroupDelta) -> Result<(), LogError> {
        let bad = |what: &str, e: protobuf::ProtobufError| LogError {
            shard: delta.shard,
            reason: format!("{what} does not decode: {e}"),
        };
        let entries = delta
            .entries
            .iter()
            .map(|b| Entry::parse_from_bytes(b).map_err(|e| bad("entry", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let hard_state = match &delta.hard_state {
            Some(hs) => Some(HardState::parse_from_bytes(hs).map_err(|e| bad("hard state", e))?),
            None => None,
        };
        self.persisted(delta.shard, delta.reset, entries, hard_state)
    }

    /// Takes what one WAL record persisted for this group, decoded: a reset, then entries,
    /// then the hard state.
    pub fn persisted(
        &mut self,
        shard: u32,
        reset: Option<(u64, u64)>,
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
    ) -> Result<(), LogError> {
        if let Some((index, term)) = reset {
            self.reset(index, term);
        }
        self.append(shard, entries)?;
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
        Ok(())
    }

    /// The whole log as one delta (a segment's base).
    pub fn base(&self, shard: u32) -> GroupDelta {
        GroupDelta {
            shard,
            reset: Some(self.snap),
            entries: self.entries.iter().map(encode).collect(),
            hard_state: Some(encode(&self.hard_state)),
        }
    }
}

/// A raft protobuf message's bytes.
pub fn encode<M: protobuf::Message>(m: &M) -> Vec<u8> {
    m.write_to_bytes().expect("raft protobuf messages always encode")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8].into(),
            ..Default::default()
        }
    }

    fn log(indexes: std::ops::RangeInclusive<u64>, term: u64) -> MemLog {
        let mut l = MemLog::default();
        l.append(1, indexes.map(|i| entry(i, term)).collect()).unwrap();
        l
    }

    #[test]
    fn an_append_replaces_the_conflicting_tail() {
        let mut l = log(1..=5, 1);
        l.append(1, vec![entry(4, 2), entry(5, 2), entry(6, 2)]).unwrap();
        assert_eq!((l.first_index(), l.last_index()), (1, 6));
        assert_eq!(l.term(3), Some(1));
        assert_eq!(l.term(4), Some(2));
        assert_eq!(l.entries(2, 5).unwrap().len(), 3);
        assert_eq!(l.entries(2, 8), None);
    }

    #[test]
    fn an_append_that_leaves_a_gap_or_rewrites_compacted_entries_is_refused() {
        let mut l = log(1..=5, 1);
        assert!(l.append(1, vec![entry(7, 1)]).is_err());
        l.compact(3);
        assert!(l.append(1, vec![entry(3, 2)]).is_err());
        assert!(l.append(1, vec![entry(6, 1), entry(8, 1)]).is_err());
    }

    #[test]
    fn compaction_keeps_the_term_of_the_last_dropped_entry() {
        let mut l = log(1..=5, 3);
        l.compact(3);
        assert_eq!(l.snap(), (3, 3));
        assert_eq!(l.term(3), Some(3));
        assert_eq!(l.term(2), None);
        assert_eq!(l.entries(3, 5), None);
        assert_eq!(l.entries(4, 6).unwrap().len(), 2);
        l.compact(9);
        assert_eq!(l.first_index(), 4, "compacting past the end does nothing");
    }

    #[test]
    fn a_base_rebuilds_the_same_log() {
        let mut l = log(1..=5, 2);
        l.compact(2);
        l.set_hard_state(HardState {
            term: 2,
            vote: 1,
            commit: 4,
            ..Default::default()
        });
        let mut back = log(1..=9, 1);
        back.apply(&l.base(1)).unwrap();
        assert_eq!(back, l);
    }
}
