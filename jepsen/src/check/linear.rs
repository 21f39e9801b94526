//! Linearizability of one key's history: Wing & Gong's search with Lowe's memoization of
//! (linearized set, model state), as in Knossos's `wgl` and Porcupine. Histories are split by
//! key first (P-compositionality: a history is linearizable iff every key's sub-history is),
//! which keeps each search small.
//!
//! Calls and returns are events on one timeline. The search repeatedly takes the earliest
//! call that the model accepts with its observed result and that leads to a (set, state)
//! pair not seen before, lifts it out of the timeline, and backtracks when it meets a return
//! whose call could not be placed. An operation whose completion is unknown (`info`) returns
//! at +∞: it may take effect at any point after its call, or never. Failed operations did not
//! happen and are left out, as are reads that did not complete (they change nothing).
//!
//! The search is exponential in the worst case; it runs against a deadline and answers
//! [`Verdict::Unknown`] when it runs out, never "valid".

use std::collections::HashSet;
use std::hash::Hash;
use std::time::Instant;

use super::Verdict;

/// A sequential specification.
pub trait Model: Clone + Eq + Hash {
    /// An operation with its observed result.
    type Op: std::fmt::Debug;
    /// The state after `op`, if `op` with its result is legal in this state.
    fn step(&self, op: &Self::Op) -> Option<Self>;
}

/// One operation to place: its call and return times (`None`: unknown, returns at +∞).
#[derive(Debug, Clone)]
pub struct Timed<O> {
    /// The operation with its result.
    pub op: O,
    /// When it was invoked.
    pub call: u64,
    /// When it completed, if it did.
    pub ret: Option<u64>,
}

/// A register of integers read and written whole: the model of the `register` workload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Register(pub Option<i64>);

/// An operation on a [`Register`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOp {
    /// A read that returned this value (`None`: never written).
    Read(Option<i64>),
    /// A write of this value.
    Write(i64),
    /// A compare-and-set from the first value to the second that succeeded.
    Cas(i64, i64),
}

impl Model for Register {
    type Op = RegisterOp;

    fn step(&self, op: &RegisterOp) -> Option<Register> {
        match op {
            RegisterOp::Read(v) => (*v == self.0).then(|| self.clone()),
            RegisterOp::Write(v) => Some(Register(Some(*v))),
            RegisterOp::Cas(old, new) => (self.0 == Some(*old)).then_some(Register(Some(*new))),
        }
    }
}

const NIL: usize = usize::MAX;

#[derive(Debug, Clone)]
struct Event {
    op: usize,
    call: bool,
    partner: usize,
    prev: usize,
    next: usize,
}

/// The timeline as a doubly linked list over a vector; entry 0 is the head.
struct Timeline {
    ev: Vec<Event>,
}

impl Timeline {
    fn new<O>(ops: &[Timed<O>]) -> Timeline {
        // (time, returns after calls at equal times, op, is_call)
        let mut points: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            points.push((o.call, 0, i, true));
            points.push((o.ret.unwrap_or(u64::MAX), 1, i, false));
        }
        points.sort_unstable();
        let mut ev = vec![Event {
            op: NIL,
            call: false,
            partner: NIL,
            prev: NIL,
            next: NIL,
        }];
        let mut call_at = vec![NIL; ops.len()];
        for (k, &(_, _, op, call)) in points.iter().enumerate() {
            let at = k + 1;
            ev.push(Event {
                op,
                call,
                partner: NIL,
                prev: at - 1,
                next: if k + 1 < points.len() { at + 1 } else { NIL },
            });
            if call {
                call_at[op] = at;
            } else {
                let c = call_at[op];
                ev[c].partner = at;
                ev[at].partner = c;
            }
        }
        ev[0].next = if points.is_empty() { NIL } else { 1 };
        Timeline { ev }
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.ev[e].prev, self.ev[e].next);
        self.ev[p].next = n;
        if n != NIL {
            self.ev[n].prev = p;
        }
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.ev[e].prev, self.ev[e].next);
        self.ev[p].next = e;
        if n != NIL {
            self.ev[n].prev = e;
        }
    }

    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.ev[call].partner);
    }

    fn unlift(&mut self, call: usize) {
        self.relink(self.ev[call].partner);
        self.relink(call);
    }
}

/// Checks one key's operations against `init`, giving up at `deadline`.
pub fn check<M: Model>(init: M, ops: &[Timed<M::Op>], deadline: Instant) -> Verdict {
    let mut t = Timeline::new(ops);
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, M)> = HashSet::new();
    let mut stack: Vec<(usize, M)> = Vec::new();
    let mut state = init;
    let mut entry = t.ev[0].next;
    // The deepest point the search reached, for the report.
    let mut best = (0usize, NIL);
    let mut steps = 0u64;
    while entry != NIL {
        steps += 1;
        if steps.is_multiple_of(4096) && Instant::now() >= deadline {
            return Verdict::Unknown(format!(
                "search gave up after {steps} steps with {} of {} operations placed",
                best.0,
                ops.len()
            ));
        }
        let e = &t.ev[entry];
        if e.call {
            let op = e.op;
            if let Some(next) = state.step(&ops[op].op) {
                let mut bits = linearized.clone();
                bits[op / 64] |= 1 << (op % 64);
                if seen.insert((bits.clone(), next.clone())) {
                    stack.push((entry, std::mem::replace(&mut state, next)));
                    linearized = bits;
                    t.lift(entry);
                    entry = t.ev[0].next;
                    continue;
                }
            }
            entry = t.ev[entry].next;
        } else if ops[e.op].ret.is_none() {
            // Every operation that completed is placed; the rest are unknown and may never
            // have happened.
            return Verdict::Valid;
        } else {
            if stack.len() >= best.0 {
                best = (stack.len(), e.op);
            }
            let Some((call, prev)) = stack.pop() else {
                let o = &ops[best.1];
                return Verdict::Invalid(format!(
                    "no linearization: at most {} of {} operations could be placed; \
                     stuck before {:?} (called at {} ns, returned at {} ns)",
                    best.0,
                    ops.len(),
                    o.op,
                    o.call,
                    o.ret.unwrap_or(u64::MAX)
                ));
            };
            state = prev;
            let op = t.ev[call].op;
            linearized[op / 64] &= !(1 << (op % 64));
            t.unlift(call);
            entry = t.ev[call].next;
        }
    }
    Verdict::Valid
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegisterOp::{Read, Write};
    use std::time::Duration;

    fn t(op: RegisterOp, call: u64, ret: Option<u64>) -> Timed<RegisterOp> {
        Timed { op, call, ret }
    }

    fn run(ops: &[Timed<RegisterOp>]) -> Verdict {
        check(Register::default(), ops, Instant::now() + Duration::from_secs(5))
    }

    #[test]
    fn sequential_write_then_read_is_valid() {
        assert_eq!(
            run(&[t(Write(1), 0, Some(10)), t(Read(Some(1)), 20, Some(30))]),
            Verdict::Valid
        );
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_flagged() {
        let v = run(&[
            t(Write(1), 0, Some(10)),
            t(Write(2), 20, Some(30)),
            t(Read(Some(1)), 40, Some(50)),
        ]);
        assert!(matches!(v, Verdict::Invalid(_)), "{v:?}");
    }

    #[test]
    fn a_read_of_a_value_never_written_is_flagged() {
        let v = run(&[t(Write(1), 0, Some(10)), t(Read(Some(3)), 20, Some(30))]);
        assert!(matches!(v, Verdict::Invalid(_)), "{v:?}");
    }

    #[test]
    fn a_lost_write_is_flagged() {
        // The write was acknowledged, then a read long after sees the initial value.
        let v = run(&[t(Write(5), 0, Some(10)), t(Read(None), 20, Some(30))]);
        assert!(matches!(v, Verdict::Invalid(_)), "{v:?}");
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // The read overlaps both writes, so it may see either.
        let ops = [
            t(Write(1), 0, Some(100)),
            t(Write(2), 10, Some(90)),
            t(Read(Some(1)), 20, Some(80)),
            t(Read(Some(2)), 95, Some(120)),
        ];
        // Read 1 then (write 2 after it) read 2: valid.
        assert_eq!(run(&ops), Verdict::Valid);
    }

    #[test]
    fn a_timed_out_write_may_appear_late_or_never() {
        let seen = [t(Write(7), 0, None), t(Read(Some(7)), 1_000, Some(1_010))];
        assert_eq!(run(&seen), Verdict::Valid);
        let never = [t(Write(7), 0, None), t(Read(None), 1_000, Some(1_010))];
        assert_eq!(run(&never), Verdict::Valid);
    }

    #[test]
    fn a_read_cannot_flip_back_to_an_older_value() {
        // Once a read saw 2 (written after 1 completed), a later read may not see 1 again.
        let v = run(&[
            t(Write(1), 0, Some(10)),
            t(Write(2), 20, None),
            t(Read(Some(2)), 30, Some(40)),
            t(Read(Some(1)), 50, Some(60)),
        ]);
        assert!(matches!(v, Verdict::Invalid(_)), "{v:?}");
    }

    #[test]
    fn a_cas_must_find_its_expected_value() {
        let start = |v| Register(Some(v));
        let ok = [
            t(RegisterOp::Cas(0, 5), 0, Some(10)),
            t(Read(Some(5)), 20, Some(30)),
        ];
        assert_eq!(
            check(start(0), &ok, Instant::now() + Duration::from_secs(5)),
            Verdict::Valid
        );
        // Two CASes from the same value cannot both succeed.
        let twice = [
            t(RegisterOp::Cas(0, 5), 0, Some(10)),
            t(RegisterOp::Cas(0, 6), 20, Some(30)),
        ];
        let v = check(start(0), &twice, Instant::now() + Duration::from_secs(5));
        assert!(matches!(v, Verdict::Invalid(_)), "{v:?}");
    }

    #[test]
    fn over_budget_is_unknown_never_valid() {
        // Many concurrent writes and a final impossible read force a large search.
        let mut ops: Vec<_> = (0..60).map(|i| t(Write(i), 0, Some(1_000))).collect();
        ops.push(t(Read(Some(999)), 2_000, Some(2_001)));
        let v = check(Register::default(), &ops, Instant::now());
        assert!(matches!(v, Verdict::Unknown(_)), "{v:?}");
    }
}
