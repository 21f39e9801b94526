//! Tree invariants of a quiescent directory walk: every directory the workload made is found
//! exactly once (none lost in a cycle cut off from the root, none in two places), nothing
//! appears that nobody made, and every directory still holds its marker file.

use std::collections::{BTreeMap, BTreeSet};

use super::Verdict;

/// What a walk from the tree's root found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// (parent, child) for every directory found; the root is `""`.
    pub edges: Vec<(String, String)>,
    /// Directories holding their marker file.
    pub marked: BTreeSet<String>,
    /// Names found that are neither a directory of the workload nor a marker.
    pub strangers: Vec<String>,
}

/// Checks `walk` against the directories `expected`.
pub fn check(expected: &BTreeSet<String>, walk: &Walk) -> Verdict {
    let mut seen: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (parent, child) in &walk.edges {
        seen.entry(child.as_str()).or_default().push(parent.as_str());
    }
    let mut problems = Vec::new();
    let lost: Vec<&String> = expected
        .iter()
        .filter(|d| !seen.contains_key(d.as_str()))
        .collect();
    if !lost.is_empty() {
        problems.push(format!(
            "{} directories lost (unreachable from the root): {lost:?}",
            lost.len()
        ));
    }
    let twice: Vec<String> = seen
        .iter()
        .filter(|(_, parents)| parents.len() > 1)
        .map(|(d, parents)| format!("{d} under {parents:?}"))
        .collect();
    if !twice.is_empty() {
        problems.push(format!("directories in more than one place: {twice:?}"));
    }
    let unknown: Vec<&&str> = seen.keys().filter(|d| !expected.contains(**d)).collect();
    if !unknown.is_empty() || !walk.strangers.is_empty() {
        problems.push(format!("entries nobody made: {unknown:?} {:?}", walk.strangers));
    }
    let unmarked: Vec<&String> = expected
        .iter()
        .filter(|d| seen.contains_key(d.as_str()) && !walk.marked.contains(*d))
        .collect();
    if !unmarked.is_empty() {
        problems.push(format!("marker files lost in {unmarked:?}"));
    }
    if problems.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Invalid(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn walk(edges: &[(&str, &str)], marked: &[&str]) -> Walk {
        Walk {
            edges: edges
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            marked: names(marked),
            strangers: Vec::new(),
        }
    }

    #[test]
    fn a_proper_tree_is_valid() {
        let w = walk(&[("", "d0"), ("d0", "d1"), ("d1", "d2")], &["d0", "d1", "d2"]);
        assert_eq!(check(&names(&["d0", "d1", "d2"]), &w), Verdict::Valid);
    }

    #[test]
    fn a_cycle_cut_off_from_the_root_is_lost() {
        // d1 and d2 moved into each other: the walk from the root never reaches them.
        let w = walk(&[("", "d0")], &["d0"]);
        let v = check(&names(&["d0", "d1", "d2"]), &w);
        assert!(
            matches!(&v, Verdict::Invalid(s) if s.contains("lost") && s.contains("d1")),
            "{v:?}"
        );
    }

    #[test]
    fn a_directory_in_two_places_is_flagged() {
        let w = walk(&[("", "d0"), ("", "d1"), ("d0", "d1")], &["d0", "d1"]);
        let v = check(&names(&["d0", "d1"]), &w);
        assert!(
            matches!(&v, Verdict::Invalid(s) if s.contains("more than one place")),
            "{v:?}"
        );
    }

    #[test]
    fn strangers_and_lost_markers_are_flagged() {
        let mut w = walk(&[("", "d0"), ("", "zz")], &[]);
        w.strangers.push("junk".into());
        let v = check(&names(&["d0"]), &w);
        let Verdict::Invalid(s) = v else { panic!("{v:?}") };
        assert!(
            s.contains("nobody made") && s.contains("zz") && s.contains("junk"),
            "{s}"
        );
        assert!(s.contains("marker files lost"), "{s}");
    }
}
