//! Property tests of the name-conflict rule: whatever order the deltas arrive in, every
//! replica shows the same, distinct, resolvable names.
//!
//! Tier: property (proptest, 256 cases per property).

mod common;

use std::collections::HashSet;

use common::{Sim, steps};
use crdt::model::{DirectoryView, Ino, Namespace};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// `(directory, visible name, stored name, inode)` for every live directory.
fn listing(ns: &Namespace, dirs: &[Ino]) -> Vec<(Ino, Vec<u8>, Vec<u8>, Ino)> {
    let mut out = Vec::new();
    for &dir in dirs {
        if let Some(d) = ns.dir(dir).filter(|_| ns.inode(dir).is_some()) {
            for v in d.visible() {
                out.push((
                    dir,
                    v.name.as_bytes().to_vec(),
                    v.entry.name.as_bytes().to_vec(),
                    v.entry.ino,
                ));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    #[test]
    fn name_conflict_rule_is_independent_of_delivery_order(
        s in steps(false),
        order_a in proptest::collection::vec(any::<usize>(), 0..120),
        order_b in proptest::collection::vec(any::<usize>(), 0..120),
    ) {
        let sim = Sim::run(&s);
        let deltas = &sim.produced;
        let deliver = |order: &[usize]| {
            let mut ns = Namespace::new();
            for &i in order {
                ns.apply(&deltas[i % deltas.len()]);
            }
            for d in deltas.iter().rev() {
                ns.apply(d);
            }
            ns
        };
        let (a, b) = (deliver(&order_a), deliver(&order_b));
        let dirs = sim.live_inodes(0).into_iter().chain([Ino::ROOT]).collect::<Vec<_>>();
        let (la, lb) = (listing(&a, &dirs), listing(&b, &dirs));
        prop_assert_eq!(&la, &lb);

        for &dir in &dirs {
            let Some(d) = a.dir(dir) else { continue };
            let visible = d.visible();
            let names: HashSet<_> = visible.iter().map(|v| v.name.clone()).collect();
            prop_assert_eq!(names.len(), visible.len(), "visible names are distinct");
            for v in &visible {
                prop_assert_eq!(d.lookup(&v.name), Some(v.entry.ino), "every visible name resolves to its entry");
            }
        }
    }
}
