//! Property tests of the merge laws for every CRDT type, of delta delivery, and of the clock.
//!
//! Tier: property (proptest, 256 cases per property).

mod common;

use std::fmt::Debug;
use std::time::Duration;

use common::{Sim, steps};
use crdt::model::{Delta, Namespace};
use crdt::{
    CausalContext, Crdt, Dot, GCounter, Hlc, Lww, LwwMap, NodeId, OrSet, OrSetDelta, PnCounter, Timestamp,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config() -> Config {
    Config {
        cases: 256,
        ..Config::default()
    }
}

/// Checks commutativity, associativity and idempotence of `join` on three states.
fn assert_laws<T: Crdt + Clone + PartialEq + Debug>(a: &T, b: &T, c: &T) -> Result<(), TestCaseError> {
    let join = |x: &T, y: &T| {
        let mut z = x.clone();
        z.join(y);
        z
    };
    prop_assert_eq!(join(a, b), join(b, a), "commutative");
    prop_assert_eq!(join(&join(a, b), c), join(a, &join(b, c)), "associative");
    prop_assert_eq!(join(a, a), a.clone(), "idempotent");
    prop_assert_eq!(join(&join(a, b), b), join(a, b), "idempotent after a join");
    Ok(())
}

fn ts() -> impl Strategy<Value = Timestamp> {
    (0u64..4, 0u16..2, 0u64..3).prop_map(|(ms, l, n)| Timestamp::new(ms, l, NodeId(n)))
}

fn lww() -> impl Strategy<Value = Lww<u8>> {
    (ts(), 0u8..4).prop_map(|(t, v)| Lww::new(t, v))
}

fn lww_map() -> impl Strategy<Value = LwwMap<u8, u8>> {
    proptest::collection::vec((0u8..4, proptest::option::of(0u8..3), ts()), 0..8).prop_map(|writes| {
        let mut m = LwwMap::new();
        for (k, v, t) in writes {
            m.put(k, v, t);
        }
        m
    })
}

/// Counter operations: (node, amount); negative amounts decrement the PN-counter.
fn counter_ops() -> impl Strategy<Value = Vec<(u64, i8)>> {
    proptest::collection::vec((0u64..3, any::<i8>()), 0..10)
}

fn gcounter() -> impl Strategy<Value = GCounter> {
    counter_ops().prop_map(|ops| {
        let mut c = GCounter::new();
        for (n, v) in ops {
            c.add(NodeId(n), u64::from(v.unsigned_abs()));
        }
        c
    })
}

fn pncounter() -> impl Strategy<Value = PnCounter> {
    counter_ops().prop_map(|ops| {
        let mut c = PnCounter::new();
        for (n, v) in ops {
            c.add(NodeId(n), i64::from(v));
        }
        c
    })
}

fn context() -> impl Strategy<Value = CausalContext> {
    proptest::collection::vec((0u64..3, 1u64..6), 0..10).prop_map(|dots| {
        CausalContext::from_dots(dots.into_iter().map(|(n, c)| Dot {
            node: NodeId(n),
            counter: c,
        }))
    })
}

/// OR-Set operations at three replicas, with occasional state syncs; every replica's deltas.
#[derive(Debug, Clone)]
enum SetOp {
    Add(usize, u8),
    Remove(usize, u8),
    Sync(usize, usize),
}

fn set_ops() -> impl Strategy<Value = Vec<SetOp>> {
    let op = prop_oneof![
        3 => (0usize..3, 0u8..5).prop_map(|(r, e)| SetOp::Add(r, e)),
        2 => (0usize..3, 0u8..5).prop_map(|(r, e)| SetOp::Remove(r, e)),
        1 => (0usize..3, 0usize..3).prop_map(|(a, b)| SetOp::Sync(a, b)),
    ];
    proptest::collection::vec(op, 0..40)
}

fn run_set_ops(ops: &[SetOp]) -> (Vec<OrSet<u8>>, Vec<OrSetDelta<u8>>) {
    let mut replicas = vec![OrSet::new(); 3];
    let mut deltas = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match *op {
            SetOp::Add(r, e) => {
                let at = Timestamp::new(i as u64, 0, NodeId(r as u64));
                deltas.push(replicas[r].add(e, NodeId(r as u64), at));
            }
            SetOp::Remove(r, e) => deltas.push(replicas[r].remove(&e)),
            SetOp::Sync(a, b) => {
                let from = replicas[b].clone();
                replicas[a].join(&from);
            }
        }
    }
    (replicas, deltas)
}

/// Applies `deltas` to `state` in the order given by `order` (indices, with repeats), then
/// once more each in reverse, so every delta arrives at least once.
fn deliver_shuffled<S, D>(state: &mut S, deltas: &[D], order: &[usize], apply: impl Fn(&mut S, &D)) {
    if deltas.is_empty() {
        return;
    }
    for &i in order {
        apply(state, &deltas[i % deltas.len()]);
    }
    for d in deltas.iter().rev() {
        apply(state, d);
    }
}

fn join_all<T: Crdt + Clone>(states: &[T]) -> T {
    let mut out = states[0].clone();
    for s in &states[1..] {
        out.join(s);
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lww_register_join_laws(a in lww(), b in lww(), c in lww()) {
        assert_laws(&a, &b, &c)?;
    }

    #[test]
    fn lww_map_join_laws(a in lww_map(), b in lww_map(), c in lww_map()) {
        assert_laws(&a, &b, &c)?;
    }

    #[test]
    fn gcounter_join_laws(a in gcounter(), b in gcounter(), c in gcounter()) {
        assert_laws(&a, &b, &c)?;
    }

    #[test]
    fn pncounter_join_laws(a in pncounter(), b in pncounter(), c in pncounter()) {
        assert_laws(&a, &b, &c)?;
    }

    #[test]
    fn causal_context_join_laws(a in context(), b in context(), c in context()) {
        assert_laws(&a, &b, &c)?;
    }

    #[test]
    fn orset_join_laws(ops in set_ops()) {
        let (r, _) = run_set_ops(&ops);
        assert_laws(&r[0], &r[1], &r[2])?;
    }

    #[test]
    fn orset_delta_group_join_laws(ops in set_ops()) {
        let (_, deltas) = run_set_ops(&ops);
        let n = deltas.len();
        let group = |range: std::ops::Range<usize>| {
            let mut g = OrSetDelta::new();
            for d in &deltas[range] { g.join(d); }
            g
        };
        assert_laws(&group(0..n / 3), &group(n / 3..2 * n / 3), &group(2 * n / 3..n))?;
    }

    #[test]
    fn inode_join_laws(s in steps(false)) {
        let sim = Sim::run(&s);
        for ino in sim.live_inodes(0) {
            let rec = |r: usize| sim.replicas[r].ns.record(ino).cloned().unwrap_or_default();
            assert_laws(&rec(0), &rec(1), &rec(2))?;
        }
    }

    #[test]
    fn namespace_join_laws(s in steps(true)) {
        let sim = Sim::run(&s);
        let ns: Vec<&Namespace> = sim.replicas.iter().map(|r| &r.ns).collect();
        assert_laws(ns[0], ns[1], ns[2])?;
    }

    #[test]
    fn orset_deltas_in_any_order_with_duplicates_equal_state_join(
        ops in set_ops(), order in proptest::collection::vec(any::<usize>(), 0..60)
    ) {
        let (replicas, deltas) = run_set_ops(&ops);
        let mut via_deltas = OrSet::new();
        deliver_shuffled(&mut via_deltas, &deltas, &order, |s, d| s.apply(d));
        prop_assert_eq!(via_deltas, join_all(&replicas));
    }

    #[test]
    fn lww_map_deltas_in_any_order_with_duplicates_equal_state_join(
        writes in proptest::collection::vec((0usize..3, 0u8..4, proptest::option::of(0u8..3), ts()), 0..20),
        order in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut replicas = vec![LwwMap::new(); 3];
        let deltas: Vec<LwwMap<u8, u8>> = writes.iter().map(|&(r, k, v, t)| replicas[r].put(k, v, t)).collect();
        let mut via_deltas = LwwMap::new();
        deliver_shuffled(&mut via_deltas, &deltas, &order, |s, d| s.join(d));
        prop_assert_eq!(via_deltas, join_all(&replicas));
    }

    #[test]
    fn counter_deltas_in_any_order_with_duplicates_equal_state_join(
        ops in proptest::collection::vec((0usize..3, any::<i8>()), 0..20),
        order in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut replicas = vec![PnCounter::new(); 3];
        let deltas: Vec<PnCounter> = ops.iter().map(|&(r, v)| replicas[r].add(NodeId(r as u64), i64::from(v))).collect();
        let mut via_deltas = PnCounter::new();
        deliver_shuffled(&mut via_deltas, &deltas, &order, |s, d| s.join(d));
        prop_assert_eq!(via_deltas.value(), ops.iter().map(|&(_, v)| i64::from(v)).sum::<i64>());
        prop_assert_eq!(via_deltas, join_all(&replicas));
    }

    #[test]
    fn namespace_deltas_in_any_order_with_duplicates_equal_state_join(
        s in steps(false), order in proptest::collection::vec(any::<usize>(), 0..120)
    ) {
        let sim = Sim::run(&s);
        let mut via_deltas = Namespace::new();
        deliver_shuffled(&mut via_deltas, &sim.produced, &order, |ns, d: &Delta| { ns.apply(d); });
        let states: Vec<Namespace> = sim.replicas.iter().map(|r| r.ns.clone()).collect();
        prop_assert_eq!(via_deltas, join_all(&states));
    }

    #[test]
    fn replicas_converge_once_every_delta_is_delivered(s in steps(true)) {
        let mut sim = Sim::run(&s);
        sim.deliver_all();
        let inos = sim.live_inodes(0);
        let views: Vec<Vec<String>> = (0..3).map(|r| common::observable(&sim.replicas[r].ns, &inos)).collect();
        prop_assert_eq!(&views[0], &views[1]);
        prop_assert_eq!(&views[1], &views[2]);
    }

    #[test]
    fn hlc_is_monotonic_under_arbitrary_clock_readings(
        events in proptest::collection::vec(
            (any::<bool>(), any::<u64>(), 0u64..(1 << 40), any::<u16>(), 0u64..4), 1..200)
    ) {
        let mut clock = Hlc::new(NodeId(7), Duration::from_millis(250));
        let mut last = clock.last();
        for (receive, wall, remote_ms, remote_logical, remote_node) in events {
            let wall = wall % (1 << 40);
            if receive {
                let remote = Timestamp::new(remote_ms, remote_logical, NodeId(remote_node));
                match clock.observe(remote, wall) {
                    Ok(t) => {
                        prop_assert!(t > remote && t > last);
                        last = t;
                    }
                    Err(_) => {
                        prop_assert!(remote.physical_ms() > wall + 250);
                        prop_assert_eq!(clock.last(), last, "a refused timestamp is not adopted");
                    }
                }
            } else {
                let t = clock.now(wall);
                prop_assert!(t > last);
                prop_assert!(t.physical_ms() >= wall.min(last.physical_ms()));
                last = t;
            }
            prop_assert_eq!(last.node(), NodeId(7));
        }
    }
}
