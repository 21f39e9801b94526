//! Property tests of tombstone collection: collecting at a causally stable frontier never
//! changes what readers observe, and never brings back a removed entry or a deleted inode,
//! even when old deltas are delivered again afterwards.
//!
//! Tier: property (proptest, 256 cases per property).

mod common;

use std::collections::HashSet;

use common::{Sim, Step, observable, steps};
use crdt::model::{DirectoryView, Ino, Namespace, Op};
use proptest::prelude::*;
use proptest::test_runner::Config;

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    #[test]
    fn tombstone_collection_never_resurrects_a_removed_entry(s in steps(true)) {
        let mut sim = Sim::new();
        // Inodes each replica has seen deleted; none may ever be live there again.
        let mut gone: Vec<HashSet<Ino>> = vec![HashSet::new(); 3];
        let mut deleted: HashSet<Ino> = HashSet::new();
        for step in &s {
            sim.step(step);
            for (r, rep) in sim.replicas.iter().enumerate() {
                for d in sim.produced.iter().filter(|d| rep.applied.contains(&d.id)) {
                    for op in &d.ops {
                        if let Op::DeleteInode { ino } = op {
                            gone[r].insert(*ino);
                            deleted.insert(*ino);
                        }
                    }
                }
                for ino in &gone[r] {
                    prop_assert!(rep.ns.inode(*ino).is_none(), "replica {} resurrected deleted {:?}", r, ino);
                }
            }
        }

        // A reference replica that never collects garbage, given every delta in the order made.
        let mut reference = Namespace::new();
        for d in &sim.produced {
            reference.apply(d);
        }
        // Deliver everything again everywhere (all old deltas are duplicates now), collect at
        // the final frontier, deliver everything once more.
        sim.deliver_all();
        for r in 0..3u8 {
            sim.step(&Step::Gc { replica: r });
        }
        for r in 0..3 {
            for i in 0..sim.produced.len() {
                sim.deliver(r, i);
                for ino in &deleted {
                    prop_assert!(sim.replicas[r].ns.inode(*ino).is_none(), "re-delivery revived {:?}", ino);
                }
            }
        }
        let inos: Vec<Ino> = sim.live_inodes(0).into_iter().chain(deleted.iter().copied()).collect();
        let expected = observable(&reference, &inos);
        for rep in &sim.replicas {
            prop_assert_eq!(&observable(&rep.ns, &inos), &expected);
            for ino in &deleted {
                prop_assert!(rep.ns.inode(*ino).is_none(), "deleted {:?} is live again", ino);
            }
        }
        // Removed entries stay removed: every listed entry is listed by the reference too.
        for rep in &sim.replicas {
            for dir in sim.live_inodes(0) {
                let got = rep.ns.dir(dir).map(|d| d.visible()).unwrap_or_default();
                let want = reference.dir(dir).map(|d| d.visible()).unwrap_or_default();
                prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn collection_shrinks_state_once_everything_is_stable(s in steps(false)) {
        let mut sim = Sim::run(&s);
        sim.deliver_all();
        let frontier = sim.stable_frontier();
        let deleted: HashSet<Ino> = sim.produced.iter()
            .flat_map(|d| &d.ops)
            .filter_map(|op| match op { Op::DeleteInode { ino } => Some(*ino), _ => None })
            .collect();
        let ns = &mut sim.replicas[0].ns;
        let before = ns.records();
        ns.collect_garbage(frontier);
        prop_assert_eq!(ns.records(), before - deleted.len(), "every deleted inode is collected");
        for ino in &deleted {
            prop_assert!(ns.record(*ino).is_none());
        }
    }
}
