//! What a chunk needs, decided from its recorded copies, its goal and which chunkservers are
//! alive. Pure: the scanner feeds it state and turns its actions into orders.
//!
//! The rules, in order of safety:
//! - the valid copies are the live ones at the newest recorded version; with none, nothing can
//!   be done (the chunk is missing until a holder comes back);
//! - fewer valid copies than the goal: copy from a valid one to live servers without a valid
//!   copy, most free space first (a stale copy there is replaced by the new one);
//! - stale copies (older versions) on live servers are deleted, and so are valid copies beyond
//!   the goal, but only while at least the goal's worth of valid copies remain;
//! - copies on dead servers are left alone: they count for nothing, and they are not deleted
//!   either (their holder may come back).

/// What one chunk needs done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Copy the chunk at `version` from `from` to `to`.
    Replicate { to: u64, from: u64, version: u32 },
    /// Delete the copy on `on` (only at `version`, or any version).
    Delete { on: u64, version: Option<u32> },
}

/// The state of one chunk's copies, for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    /// Valid copies (live, newest version).
    pub valid: usize,
    /// The goal.
    pub goal: usize,
}

impl Health {
    /// No valid copy is reachable.
    pub fn missing(&self) -> bool {
        self.valid == 0
    }

    /// Fewer valid copies than the goal.
    pub fn under_goal(&self) -> bool {
        self.valid < self.goal
    }
}

/// The actions that move a live chunk's `copies` ((server, version)) toward `goal` valid
/// copies. `alive` says whether a server is alive; `placement` lists live servers with room,
/// best first.
pub fn live_chunk(
    chunk: u64,
    copies: &[(u64, u32)],
    goal: u8,
    alive: impl Fn(u64) -> bool,
    placement: &[u64],
) -> (Health, Vec<Action>) {
    let goal = usize::from(goal.max(1));
    let newest = copies.iter().map(|c| c.1).max().unwrap_or(0);
    let valid: Vec<u64> = copies
        .iter()
        .filter(|c| c.1 == newest && alive(c.0))
        .map(|c| c.0)
        .collect();
    let health = Health {
        valid: valid.len(),
        goal,
    };
    let mut actions = Vec::new();
    if valid.is_empty() {
        return (health, actions);
    }
    if valid.len() < goal {
        let from = valid[(chunk % valid.len() as u64) as usize];
        let targets = placement
            .iter()
            .filter(|s| !valid.contains(s))
            .take(goal - valid.len());
        actions.extend(targets.map(|to| Action::Replicate {
            to: *to,
            from,
            version: newest,
        }));
        return (health, actions);
    }
    for (server, version) in copies {
        if *version != newest && alive(*server) {
            actions.push(Action::Delete {
                on: *server,
                version: Some(*version),
            });
        }
    }
    // Extra valid copies go from the end of the placement order (least free space) first.
    let mut extra: Vec<u64> = valid.clone();
    extra.sort_by_key(|s| std::cmp::Reverse(placement.iter().position(|p| p == s).unwrap_or(usize::MAX)));
    actions.extend(
        extra
            .into_iter()
            .take(valid.len() - goal)
            .map(|on| Action::Delete {
                on,
                version: Some(newest),
            }),
    );
    (health, actions)
}

/// The actions for a chunk whose file is gone: delete every copy on a live server.
pub fn garbage(copies: &[(u64, u32)], alive: impl Fn(u64) -> bool) -> Vec<Action> {
    copies
        .iter()
        .filter(|c| alive(c.0))
        .map(|c| Action::Delete {
            on: c.0,
            version: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(ids: &'static [u64]) -> impl Fn(u64) -> bool {
        move |id| ids.contains(&id)
    }

    #[test]
    fn a_chunk_at_its_goal_needs_nothing() {
        let (h, a) = live_chunk(7, &[(1, 3), (2, 3)], 2, up(&[1, 2, 3]), &[3, 1, 2]);
        assert_eq!((h.valid, h.under_goal(), a), (2, false, vec![]));
    }

    #[test]
    fn a_lost_copy_is_replaced_on_a_server_without_one() {
        let (h, a) = live_chunk(7, &[(1, 3), (2, 3)], 2, up(&[1, 3, 4]), &[4, 1, 3]);
        assert!(h.under_goal() && !h.missing());
        assert_eq!(
            a,
            vec![Action::Replicate {
                to: 4,
                from: 1,
                version: 3
            }]
        );
        let (_, a) = live_chunk(7, &[(1, 3)], 3, up(&[1, 2, 3]), &[1, 2, 3]);
        assert_eq!(
            a,
            vec![
                Action::Replicate {
                    to: 2,
                    from: 1,
                    version: 3
                },
                Action::Replicate {
                    to: 3,
                    from: 1,
                    version: 3
                }
            ]
        );
    }

    #[test]
    fn without_a_valid_live_copy_nothing_is_touched() {
        let (h, a) = live_chunk(7, &[(1, 3), (2, 2)], 2, up(&[2, 3]), &[3, 2]);
        assert!(h.missing());
        assert!(
            a.is_empty(),
            "the stale copy on 2 stays: the newest one is on a dead server"
        );
    }

    #[test]
    fn stale_copies_are_replaced_before_they_are_deleted() {
        let (_, a) = live_chunk(7, &[(1, 3), (2, 2)], 2, up(&[1, 2]), &[2, 1]);
        assert_eq!(
            a,
            vec![Action::Replicate {
                to: 2,
                from: 1,
                version: 3
            }],
            "the stale copy on 2 is overwritten"
        );
        let (_, a) = live_chunk(7, &[(1, 3), (2, 2), (3, 3)], 2, up(&[1, 2, 3]), &[3, 2, 1]);
        assert_eq!(
            a,
            vec![Action::Delete {
                on: 2,
                version: Some(2)
            }]
        );
    }

    #[test]
    fn copies_beyond_the_goal_go_from_the_fullest_servers() {
        let (_, a) = live_chunk(7, &[(1, 3), (2, 3), (3, 3)], 1, up(&[1, 2, 3]), &[2, 3, 1]);
        assert_eq!(
            a,
            vec![
                Action::Delete {
                    on: 1,
                    version: Some(3)
                },
                Action::Delete {
                    on: 3,
                    version: Some(3)
                }
            ]
        );
        let (_, a) = live_chunk(7, &[(1, 3), (2, 3), (9, 3)], 2, up(&[1, 2]), &[1, 2]);
        assert!(
            a.is_empty(),
            "a copy on a dead server is neither counted nor deleted"
        );
    }

    #[test]
    fn garbage_is_deleted_where_its_holder_is_alive() {
        assert_eq!(
            garbage(&[(1, 3), (2, 1)], up(&[2])),
            vec![Action::Delete { on: 2, version: None }]
        );
    }
}
