//! Changes to the set of copies not yet reported to the metadata tier.

use std::collections::BTreeMap;

use proto::chunk::HeldChunk;

/// Copies that appeared or changed version (held) and copies that went away (lost), since
/// the last report. A later change of a chunk replaces an earlier one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Chunk → its version now, or `None` if the copy is gone.
    by_chunk: BTreeMap<u64, Option<u32>>,
}

impl Changes {
    /// `chunk` is held at `version`.
    pub fn held(&mut self, chunk: u64, version: u32) {
        self.by_chunk.insert(chunk, Some(version));
    }

    /// `chunk`'s copy is gone (deleted, corrupt, or on a failed dir).
    pub fn lost(&mut self, chunk: u64) {
        self.by_chunk.insert(chunk, None);
    }

    /// Adds `older` changes, keeping the changes here where both name a chunk.
    pub fn merge_older(&mut self, older: Changes) {
        for (chunk, version) in older.by_chunk {
            self.by_chunk.entry(chunk).or_insert(version);
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.by_chunk.is_empty()
    }

    /// Takes the first `n` changes in chunk order, leaving the rest here.
    pub fn take_first(&mut self, n: usize) -> Changes {
        let rest = match self.by_chunk.keys().nth(n).copied() {
            Some(at) => self.by_chunk.split_off(&at),
            None => BTreeMap::new(),
        };
        Changes {
            by_chunk: std::mem::replace(&mut self.by_chunk, rest),
        }
    }

    /// The held and lost lists of a chunk report, in chunk order.
    pub fn report(&self) -> (Vec<HeldChunk>, Vec<u64>) {
        let mut held = Vec::new();
        let mut lost = Vec::new();
        for (&chunk, &version) in &self.by_chunk {
            match version {
                Some(version) => held.push(HeldChunk { chunk, version }),
                None => lost.push(chunk),
            }
        }
        (held, lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_change_of_a_chunk_wins() {
        let mut c = Changes::default();
        assert!(c.is_empty());
        c.held(1, 1);
        c.held(1, 2);
        c.held(2, 1);
        c.lost(2);
        c.lost(3);
        c.held(3, 5);
        let (held, lost) = c.report();
        assert_eq!(
            held,
            vec![
                HeldChunk { chunk: 1, version: 2 },
                HeldChunk { chunk: 3, version: 5 }
            ]
        );
        assert_eq!(lost, vec![2]);
    }

    #[test]
    fn batches_split_in_chunk_order() {
        let mut c = Changes::default();
        for chunk in [5, 1, 4, 2, 3] {
            c.held(chunk, 1);
        }
        let first = c.take_first(2);
        let chunks = |c: &Changes| c.report().0.iter().map(|h| h.chunk).collect::<Vec<_>>();
        assert_eq!(chunks(&first), vec![1, 2]);
        assert_eq!(chunks(&c), vec![3, 4, 5]);
        let rest = c.take_first(10);
        assert_eq!(chunks(&rest), vec![3, 4, 5]);
        assert!(c.is_empty());
    }

    #[test]
    fn requeued_changes_yield_to_newer_ones() {
        let mut older = Changes::default();
        older.lost(1);
        older.held(2, 3);
        let mut now = Changes::default();
        now.held(1, 4);
        now.merge_older(older);
        let (held, lost) = now.report();
        assert_eq!(
            held,
            vec![
                HeldChunk { chunk: 1, version: 4 },
                HeldChunk { chunk: 2, version: 3 }
            ]
        );
        assert!(lost.is_empty());
    }
}
