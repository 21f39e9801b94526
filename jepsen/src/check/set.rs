//! Set-full (after Jepsen's `set-full`): elements added to a set, reads of the whole set during
//! the run, and a final read after every fault is healed.
//!
//! For every element it decides:
//! - **lost**: its add was acknowledged but the final read does not hold it;
//! - **stale**: a read that began after its add was acknowledged did not hold it (reads are
//!   linearizable in strict mode, so this is a violation);
//! - **unexpected**: a read holds an element nobody added, or one whose add definitely failed;
//! - **never read**: an add of unknown outcome that no read shows (allowed: it may not have
//!   happened).
//!
//! The history is valid when nothing is lost, stale or unexpected.

use std::collections::{BTreeMap, BTreeSet};

use super::Verdict;

/// How an add ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// Acknowledged at this time.
    Ok(u64),
    /// Definitely not added.
    Fail,
    /// Unknown.
    Info,
}

/// An add of one element.
#[derive(Debug, Clone)]
pub struct Add {
    /// The element.
    pub element: i64,
    /// When it was invoked.
    pub call: u64,
    /// How it ended.
    pub outcome: AddOutcome,
}

/// A successful read of the whole set.
#[derive(Debug, Clone)]
pub struct Read {
    /// When it was invoked.
    pub call: u64,
    /// What it returned.
    pub elements: BTreeSet<i64>,
    /// Whether it is a read of the final phase.
    pub last: bool,
}

/// What the checker found, by element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetReport {
    /// Acknowledged adds the final read does not hold.
    pub lost: Vec<i64>,
    /// Acknowledged adds missing from a read that began after the acknowledgement.
    pub stale: Vec<i64>,
    /// Elements read that were never added, or whose add failed.
    pub unexpected: Vec<i64>,
    /// Adds of unknown outcome that no read shows.
    pub never_read: Vec<i64>,
    /// Acknowledged adds.
    pub acknowledged: usize,
}

impl SetReport {
    /// The verdict for the report. Without a final read nothing can be called lost, but
    /// stale and unexpected elements are violations all the same.
    pub fn verdict(&self, has_final_read: bool) -> Verdict {
        let mut problems = Vec::new();
        for (what, v) in [
            ("lost", &self.lost),
            ("stale", &self.stale),
            ("unexpected", &self.unexpected),
        ] {
            if !v.is_empty() {
                problems.push(format!("{} {what} {:?}", v.len(), head(v)));
            }
        }
        if !problems.is_empty() {
            Verdict::Invalid(problems.join("; "))
        } else if !has_final_read {
            Verdict::Unknown("no final read completed".into())
        } else {
            Verdict::Valid
        }
    }
}

fn head(v: &[i64]) -> &[i64] {
    &v[..v.len().min(10)]
}

/// Checks one set's adds and reads.
pub fn check(adds: &[Add], reads: &[Read]) -> SetReport {
    let mut report = SetReport::default();
    let by_element: BTreeMap<i64, &Add> = adds.iter().map(|a| (a.element, a)).collect();
    let finals: Vec<&Read> = reads.iter().filter(|r| r.last).collect();
    let mut unexpected = BTreeSet::new();
    for r in reads {
        for e in &r.elements {
            match by_element.get(e) {
                None => {
                    unexpected.insert(*e);
                }
                Some(a) if a.outcome == AddOutcome::Fail => {
                    unexpected.insert(*e);
                }
                Some(_) => {}
            }
        }
    }
    report.unexpected = unexpected.into_iter().collect();
    for a in adds {
        match a.outcome {
            AddOutcome::Ok(acked) => {
                report.acknowledged += 1;
                if finals.iter().any(|r| !r.elements.contains(&a.element)) {
                    report.lost.push(a.element);
                } else if reads
                    .iter()
                    .any(|r| !r.last && r.call > acked && !r.elements.contains(&a.element))
                {
                    report.stale.push(a.element);
                }
            }
            AddOutcome::Info => {
                if !reads.iter().any(|r| r.elements.contains(&a.element)) {
                    report.never_read.push(a.element);
                }
            }
            AddOutcome::Fail => {}
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(element: i64, call: u64, outcome: AddOutcome) -> Add {
        Add {
            element,
            call,
            outcome,
        }
    }

    fn read(call: u64, elements: &[i64], last: bool) -> Read {
        Read {
            call,
            elements: elements.iter().copied().collect(),
            last,
        }
    }

    #[test]
    fn every_acknowledged_element_in_the_final_read_is_valid() {
        let adds = [add(1, 0, AddOutcome::Ok(10)), add(2, 5, AddOutcome::Info)];
        let r = check(&adds, &[read(20, &[1], false), read(100, &[1], true)]);
        assert_eq!(r.verdict(true), Verdict::Valid);
        assert_eq!(r.never_read, vec![2]);
        assert_eq!(r.acknowledged, 1);
    }

    #[test]
    fn a_lost_acknowledged_add_is_flagged() {
        let adds = [add(1, 0, AddOutcome::Ok(10)), add(2, 0, AddOutcome::Ok(12))];
        let r = check(&adds, &[read(100, &[1], true)]);
        assert_eq!(r.lost, vec![2]);
        assert!(matches!(r.verdict(true), Verdict::Invalid(s) if s.contains("lost")));
    }

    #[test]
    fn a_stale_read_is_flagged() {
        let adds = [add(1, 0, AddOutcome::Ok(10))];
        let r = check(&adds, &[read(20, &[], false), read(100, &[1], true)]);
        assert_eq!(r.stale, vec![1]);
        assert!(matches!(r.verdict(true), Verdict::Invalid(s) if s.contains("stale")));
    }

    #[test]
    fn a_read_concurrent_with_the_add_may_miss_it() {
        let adds = [add(1, 0, AddOutcome::Ok(10))];
        let r = check(&adds, &[read(5, &[], false), read(100, &[1], true)]);
        assert_eq!(r.verdict(true), Verdict::Valid);
    }

    #[test]
    fn failed_or_unknown_elements_appearing_are_told_apart() {
        let adds = [add(1, 0, AddOutcome::Fail), add(2, 0, AddOutcome::Info)];
        let r = check(&adds, &[read(100, &[1, 2, 3], true)]);
        assert_eq!(r.unexpected, vec![1, 3]);
        assert!(r.never_read.is_empty());
        assert!(matches!(r.verdict(true), Verdict::Invalid(s) if s.contains("unexpected")));
    }

    #[test]
    fn without_a_final_read_the_answer_is_unknown_unless_a_read_was_stale() {
        let r = check(&[add(1, 0, AddOutcome::Ok(1))], &[]);
        assert!(matches!(r.verdict(false), Verdict::Unknown(_)));
        let r = check(&[add(1, 0, AddOutcome::Ok(1))], &[read(5, &[], false)]);
        assert!(matches!(r.verdict(false), Verdict::Invalid(s) if s.contains("stale")));
    }
}
