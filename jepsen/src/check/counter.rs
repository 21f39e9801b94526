//! A grow-only counter (after Jepsen's `counter` checker): a read must lie between the sum of
//! the increments acknowledged before it began and the sum of the increments invoked before
//! it ended (those of unknown outcome included).

use super::Verdict;

/// An increment.
#[derive(Debug, Clone, Copy)]
pub struct Increment {
    /// By how much.
    pub by: i64,
    /// When invoked.
    pub call: u64,
    /// When acknowledged; `None` if it failed definitely — then it is left out — or its
    /// outcome is unknown (see `unknown`).
    pub acked: Option<u64>,
    /// Its outcome is unknown: it may count.
    pub unknown: bool,
}

/// A read of the counter.
#[derive(Debug, Clone, Copy)]
pub struct Read {
    /// When invoked.
    pub call: u64,
    /// When it returned.
    pub ret: u64,
    /// The value.
    pub value: i64,
}

/// Checks every read against the bounds.
pub fn check(incs: &[Increment], reads: &[Read]) -> Verdict {
    let mut bad = Vec::new();
    for r in reads {
        let lower: i64 = incs
            .iter()
            .filter(|i| i.acked.is_some_and(|a| a < r.call))
            .map(|i| i.by)
            .sum();
        let upper: i64 = incs
            .iter()
            .filter(|i| (i.acked.is_some() || i.unknown) && i.call < r.ret)
            .map(|i| i.by)
            .sum();
        if r.value < lower || r.value > upper {
            bad.push(format!(
                "read {} at {} ns outside [{lower}, {upper}]",
                r.value, r.call
            ));
        }
    }
    if bad.is_empty() {
        Verdict::Valid
    } else {
        let n = bad.len();
        bad.truncate(5);
        Verdict::Invalid(format!("{n} reads out of bounds: {}", bad.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(call: u64, acked: Option<u64>, unknown: bool) -> Increment {
        Increment {
            by: 1,
            call,
            acked,
            unknown,
        }
    }

    fn read(call: u64, ret: u64, value: i64) -> Read {
        Read { call, ret, value }
    }

    #[test]
    fn reads_within_the_bounds_are_valid() {
        let incs = [inc(0, Some(10), false), inc(20, None, true), inc(30, None, false)];
        // 1 acknowledged before; the unknown one may or may not count; the failed one never.
        assert_eq!(check(&incs, &[read(15, 40, 1), read(25, 40, 2)]), Verdict::Valid);
    }

    #[test]
    fn a_read_missing_an_acknowledged_increment_is_flagged() {
        let incs = [inc(0, Some(10), false), inc(0, Some(12), false)];
        let v = check(&incs, &[read(20, 30, 1)]);
        assert!(
            matches!(&v, Verdict::Invalid(s) if s.contains("outside [2, 2]")),
            "{v:?}"
        );
    }

    #[test]
    fn a_read_counting_a_failed_or_later_increment_is_flagged() {
        let incs = [inc(0, None, false), inc(50, Some(60), false)];
        let v = check(&incs, &[read(10, 20, 1)]);
        assert!(
            matches!(&v, Verdict::Invalid(s) if s.contains("outside [0, 0]")),
            "{v:?}"
        );
    }
}
