//! The overlay path (what a server's store uses) applies deltas exactly as the in-memory
//! namespace does, whatever batches the deltas are grouped into.
//!
//! Tier: property (proptest, 256 cases).

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;

use common::{Sim, steps};
use crdt::model::{Changes, Entry, Ino, Inode, Overlay, QuotaUsage, RecordsView, apply_delta};
use crdt::{CausalContext, Tag, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// A store keeping one record per inode, per entry, per directory context and per quota root.
#[derive(Default)]
struct KvStore {
    inodes: BTreeMap<Ino, Inode>,
    entries: BTreeMap<(Ino, Entry), Vec<Tag>>,
    contexts: BTreeMap<Ino, CausalContext>,
    quotas: BTreeMap<Ino, QuotaUsage>,
}

impl RecordsView for KvStore {
    type Error = Infallible;
    fn inode(&self, ino: Ino) -> Result<Option<Inode>, Infallible> {
        Ok(self.inodes.get(&ino).cloned())
    }
    fn dir_context(&self, dir: Ino) -> Result<CausalContext, Infallible> {
        Ok(self.contexts.get(&dir).cloned().unwrap_or_default())
    }
    fn entry_tags(&self, dir: Ino, entry: &Entry) -> Result<Vec<Tag>, Infallible> {
        Ok(self
            .entries
            .get(&(dir, entry.clone()))
            .cloned()
            .unwrap_or_default())
    }
    fn quota(&self, root: Ino) -> Result<Option<QuotaUsage>, Infallible> {
        Ok(self.quotas.get(&root).cloned())
    }
    fn floor(&self) -> Result<Timestamp, Infallible> {
        Ok(Timestamp::ZERO)
    }
}

impl KvStore {
    fn write(&mut self, changes: Changes) {
        for dir in changes.dropped_dirs {
            self.entries.retain(|(d, _), _| *d != dir);
            self.contexts.remove(&dir);
        }
        for (ino, rec) in changes.inodes {
            self.inodes.insert(ino, rec);
        }
        for (dir, entry, tags) in changes.entries {
            if tags.is_empty() {
                self.entries.remove(&(dir, entry));
            } else {
                self.entries.insert((dir, entry), tags);
            }
        }
        for (dir, ctx) in changes.contexts {
            self.contexts.insert(dir, ctx);
        }
        for (root, q) in changes.quotas {
            match q {
                Some(q) => self.quotas.insert(root, q),
                None => self.quotas.remove(&root),
            };
        }
    }
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    #[test]
    fn overlay_batches_apply_like_the_in_memory_namespace(
        s in steps(false),
        cuts in proptest::collection::vec(1usize..6, 1..40),
        order in proptest::collection::vec(any::<usize>(), 0..80),
    ) {
        let sim = Sim::run(&s);
        let mut store = KvStore::default();
        // Every delta exactly once, in a shuffled order, followed by some duplicates.
        let n = sim.produced.len();
        let mut perm: Vec<usize> = (0..n).collect();
        for (i, r) in order.iter().enumerate().take(n) {
            perm.swap(i, i + r % (n - i));
        }
        let shuffled = perm.iter().chain(order.iter().take(10)).map(|i| &sim.produced[i % n]);
        let mut deltas = shuffled;
        let mut cuts = cuts.iter().cycle();
        loop {
            let batch: Vec<_> = deltas.by_ref().take(*cuts.next().unwrap()).collect();
            if batch.is_empty() {
                break;
            }
            let mut overlay = Overlay::new(&store);
            for d in batch {
                apply_delta(&mut overlay, d);
            }
            let changes = overlay.into_changes().unwrap();
            store.write(changes);
        }
        let mut reference = crdt::Namespace::new();
        for d in &sim.produced {
            reference.apply(d);
        }
        for (ino, rec) in &store.inodes {
            prop_assert_eq!(Some(rec), reference.record(*ino));
        }
        prop_assert_eq!(store.inodes.len(), reference.records());
        for dir in store.inodes.keys() {
            let from_store: Vec<(Entry, Vec<Tag>)> =
                store.entries.iter().filter(|((d, _), _)| d == dir).map(|((_, e), t)| (e.clone(), t.clone())).collect();
            let from_ns: Vec<(Entry, Vec<Tag>)> = reference
                .dir(*dir)
                .map(|d| d.iter().map(|(e, t)| (e.clone(), t.to_vec())).collect())
                .unwrap_or_default();
            prop_assert_eq!(from_store, from_ns);
            let ctx = store.contexts.get(dir).cloned().unwrap_or_default();
            let expected = reference.dir(*dir).map(|d| d.context().clone()).unwrap_or_default();
            prop_assert_eq!(ctx, expected);
            prop_assert_eq!(store.quotas.get(dir), reference.quota(*dir));
        }
    }
}
