//! Nemeses: what faults a run injects, planned from a seeded RNG without I/O ([`plan`]), and
//! applied through an abstract backend ([`Faults`]) so the compose lab can join later with a
//! backend of its own. The network-namespace backend is [`netns::NetnsFaults`].

pub mod netns;

use rand::Rng;
use rand::seq::SliceRandom;
use serde::Serialize;

/// A fault family chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Network partitions: random halves, an isolated leader, a bridge, one-way.
    Partition,
    /// kill -9 of a server (often the leader), restarted when the fault ends.
    Kill,
    /// SIGSTOP of a server (often the leader), SIGCONT when the fault ends.
    Pause,
    /// Wall clocks of servers set up to ±`skew` seconds off (libfaketime).
    Skew,
    /// Random loss of a share of the packets between servers.
    Loss,
    /// WAN latency: every server's outgoing packets held 20–100 ms (an NFQUEUE delayer).
    Delay,
    /// Leadership moved to another server (`mooseng admin leader transfer`).
    Transfer,
    /// A follower removed from the shard and its data wiped, then added back as a fresh
    /// learner and promoted (`mooseng admin node remove|add`).
    Membership,
    /// kill -9 of a chunkserver (the `files` workload), restarted when the fault ends.
    ChunkserverKill,
}

/// A shape of network partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionMode {
    /// Two random halves.
    Halves,
    /// The leader (or a random server) alone against the rest.
    IsolateLeader,
    /// Two halves that cannot see each other and one server that sees both.
    Bridge,
    /// The leader's packets to every other server are dropped; it still hears them.
    OneWay,
}

impl PartitionMode {
    /// Every mode.
    pub const ALL: [PartitionMode; 4] = [
        PartitionMode::Halves,
        PartitionMode::IsolateLeader,
        PartitionMode::Bridge,
        PartitionMode::OneWay,
    ];

    /// Its name in the history.
    pub fn name(self) -> &'static str {
        match self {
            PartitionMode::Halves => "halves",
            PartitionMode::IsolateLeader => "isolate-leader",
            PartitionMode::Bridge => "bridge",
            PartitionMode::OneWay => "one-way",
        }
    }
}

/// What the backend must be able to do.
pub trait Faults {
    /// Drops every packet from server `src` to server `dst` for each pair (1-based).
    fn partition(&mut self, drops: &[(usize, usize)]) -> anyhow::Result<()>;
    /// Drops `percent` % of the packets between servers.
    fn loss(&mut self, percent: u32) -> anyhow::Result<()>;
    /// Removes every network fault.
    fn heal(&mut self) -> anyhow::Result<()>;
    /// Kills server `node` with SIGKILL.
    fn kill(&mut self, node: usize) -> anyhow::Result<()>;
    /// Starts server `node` again (nothing if it runs).
    fn restart(&mut self, node: usize) -> anyhow::Result<()>;
    /// Stops server `node` with SIGSTOP.
    fn pause(&mut self, node: usize) -> anyhow::Result<()>;
    /// Continues server `node` with SIGCONT.
    fn resume(&mut self, node: usize) -> anyhow::Result<()>;
    /// Sets server `node`'s wall clock `secs` off.
    fn skew(&mut self, node: usize, secs: i64) -> anyhow::Result<()>;
    /// Holds every server's outgoing packets `ms` milliseconds (removed by [`Faults::heal`]).
    fn delay(&mut self, ms: u32) -> anyhow::Result<()>;
    /// Asks the shard's leader to hand leadership to server `to`.
    fn transfer_leader(&mut self, to: usize) -> anyhow::Result<()>;
    /// Removes server `node` from the shard, stops it and wipes its data.
    fn remove_node(&mut self, node: usize) -> anyhow::Result<()>;
    /// Starts server `node` afresh and adds it to the shard (learner, then voter).
    fn add_node(&mut self, node: usize) -> anyhow::Result<()>;
    /// Kills chunkserver `cs` with SIGKILL.
    fn kill_chunkserver(&mut self, cs: usize) -> anyhow::Result<()>;
    /// Starts chunkserver `cs` again (nothing if it runs).
    fn restart_chunkserver(&mut self, cs: usize) -> anyhow::Result<()>;
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// Directed packet drops between servers.
    Partition {
        /// Which shape.
        mode: &'static str,
        /// (from, to) pairs dropped.
        drops: Vec<(usize, usize)>,
    },
    /// Packet loss between all servers.
    Loss {
        /// Share dropped.
        percent: u32,
    },
    /// These servers are killed.
    Kill {
        /// Servers.
        nodes: Vec<usize>,
    },
    /// These servers are paused.
    Pause {
        /// Servers.
        nodes: Vec<usize>,
    },
    /// Clock offsets.
    Skew {
        /// (server, seconds).
        offsets: Vec<(usize, i64)>,
    },
    /// Outgoing packets of every server held this long.
    Delay {
        /// Milliseconds.
        ms: u32,
    },
    /// Leadership moved to this server.
    Transfer {
        /// The new leader.
        to: usize,
    },
    /// This server leaves the shard and comes back empty.
    Membership {
        /// The server.
        node: usize,
    },
    /// This chunkserver is killed.
    ChunkserverKill {
        /// The chunkserver.
        cs: usize,
    },
}

impl Fault {
    /// The name of the nemesis operation that starts it (`start-partition`, …); the stop is
    /// the same with `stop-`.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Loss { .. } => "loss",
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::Skew { .. } => "skew",
            Fault::Delay { .. } => "delay",
            Fault::Transfer { .. } => "transfer",
            Fault::Membership { .. } => "membership",
            Fault::ChunkserverKill { .. } => "chunkserver-kill",
        }
    }

    /// Starts it.
    pub fn start(&self, f: &mut dyn Faults) -> anyhow::Result<()> {
        match self {
            Fault::Partition { drops, .. } => f.partition(drops),
            Fault::Loss { percent } => f.loss(*percent),
            Fault::Kill { nodes } => nodes.iter().try_for_each(|n| f.kill(*n)),
            Fault::Pause { nodes } => nodes.iter().try_for_each(|n| f.pause(*n)),
            Fault::Skew { offsets } => offsets.iter().try_for_each(|(n, s)| f.skew(*n, *s)),
            Fault::Delay { ms } => f.delay(*ms),
            Fault::Transfer { to } => f.transfer_leader(*to),
            Fault::Membership { node } => f.remove_node(*node),
            Fault::ChunkserverKill { cs } => f.kill_chunkserver(*cs),
        }
    }

    /// Ends it.
    pub fn stop(&self, f: &mut dyn Faults) -> anyhow::Result<()> {
        match self {
            Fault::Partition { .. } | Fault::Loss { .. } | Fault::Delay { .. } => f.heal(),
            // A transfer is a moment, not a state: there is nothing to undo.
            Fault::Transfer { .. } => Ok(()),
            Fault::Membership { node } => f.add_node(*node),
            Fault::ChunkserverKill { cs } => f.restart_chunkserver(*cs),
            Fault::Kill { nodes } => nodes.iter().try_for_each(|n| f.restart(*n)),
            Fault::Pause { nodes } => nodes.iter().try_for_each(|n| f.resume(*n)),
            Fault::Skew { offsets } => offsets.iter().try_for_each(|(n, _)| f.skew(*n, 0)),
        }
    }
}

/// Plans a fault of `family` over metadata servers `1..=n` and chunkservers `1..=cs`, aimed
/// at `leader` when one is known (half the time, for the families that target one server).
/// `skew` bounds clock offsets (seconds); partitions take one of `modes` (every mode if
/// empty).
pub fn plan(
    family: Family,
    rng: &mut impl Rng,
    (n, cs): (usize, usize),
    leader: Option<usize>,
    skew: i64,
    modes: &[PartitionMode],
) -> Fault {
    let all: Vec<usize> = (1..=n).collect();
    let target = |rng: &mut _| match leader {
        Some(l) if Rng::gen_bool(rng, 0.5) => l,
        _ => *all.choose(rng).expect("at least one server"),
    };
    match family {
        Family::Partition => partition(rng, n, leader, modes),
        Family::Loss => Fault::Loss {
            percent: rng.gen_range(10..=40),
        },
        Family::Kill => Fault::Kill {
            nodes: vec![target(rng)],
        },
        Family::Pause => Fault::Pause {
            nodes: vec![target(rng)],
        },
        Family::Skew => Fault::Skew {
            offsets: all.iter().map(|&i| (i, rng.gen_range(-skew..=skew))).collect(),
        },
        Family::Delay => Fault::Delay {
            ms: rng.gen_range(20..=100),
        },
        Family::Transfer => Fault::Transfer {
            to: not_leader(rng, &all, leader),
        },
        Family::Membership => Fault::Membership {
            node: not_leader(rng, &all, leader),
        },
        Family::ChunkserverKill => Fault::ChunkserverKill {
            cs: rng.gen_range(1..=cs.max(1)),
        },
    }
}

/// A random server other than `leader`.
fn not_leader(rng: &mut impl Rng, all: &[usize], leader: Option<usize>) -> usize {
    let others: Vec<usize> = all.iter().copied().filter(|&i| Some(i) != leader).collect();
    *others.choose(rng).unwrap_or(&1)
}

fn both_ways(a: &[usize], b: &[usize]) -> Vec<(usize, usize)> {
    let mut drops = Vec::new();
    for &x in a {
        for &y in b {
            drops.push((x, y));
            drops.push((y, x));
        }
    }
    drops.sort_unstable();
    drops
}

fn partition(rng: &mut impl Rng, n: usize, leader: Option<usize>, modes: &[PartitionMode]) -> Fault {
    let mut nodes: Vec<usize> = (1..=n).collect();
    nodes.shuffle(rng);
    let allowed: Vec<PartitionMode> = (if modes.is_empty() {
        &PartitionMode::ALL[..]
    } else {
        modes
    })
    .iter()
    .copied()
    .filter(|m| n >= 3 || matches!(m, PartitionMode::Halves | PartitionMode::OneWay))
    .collect();
    let mode = allowed.choose(rng).copied().unwrap_or(PartitionMode::Halves);
    let drops = match mode {
        PartitionMode::IsolateLeader => {
            let l = leader.unwrap_or(nodes[0]);
            let rest: Vec<usize> = (1..=n).filter(|&i| i != l).collect();
            both_ways(&[l], &rest)
        }
        PartitionMode::Bridge => {
            // nodes[0], the bridge, sees both halves.
            let (a, b) = nodes[1..].split_at((n - 1) / 2);
            both_ways(a, b)
        }
        PartitionMode::OneWay => {
            let from = leader.unwrap_or(nodes[0]);
            (1..=n).filter(|&i| i != from).map(|to| (from, to)).collect()
        }
        PartitionMode::Halves => {
            let (a, b) = nodes.split_at(n / 2);
            both_ways(a, b)
        }
    };
    Fault::Partition {
        mode: mode.name(),
        drops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn partitions(n: usize, leader: Option<usize>) -> Vec<(&'static str, Vec<(usize, usize)>)> {
        let mut rng = StdRng::seed_from_u64(7);
        (0..200)
            .map(
                |_| match plan(Family::Partition, &mut rng, (n, 0), leader, 0, &[]) {
                    Fault::Partition { mode, drops } => (mode, drops),
                    other => panic!("{other:?}"),
                },
            )
            .collect()
    }

    #[test]
    fn every_partition_mode_is_planned_and_shaped_as_named() {
        let seen = partitions(5, Some(3));
        for mode in ["halves", "isolate-leader", "bridge", "one-way"] {
            assert!(seen.iter().any(|(m, _)| *m == mode), "{mode} never planned");
        }
        for (mode, drops) in &seen {
            assert!(!drops.is_empty(), "{mode}: no drops");
            assert!(
                drops
                    .iter()
                    .all(|(a, b)| a != b && (1..=5).contains(a) && (1..=5).contains(b))
            );
            match *mode {
                "isolate-leader" => {
                    assert_eq!(drops.len(), 8);
                    assert!(drops.iter().all(|(a, b)| *a == 3 || *b == 3));
                }
                "one-way" => {
                    assert_eq!(drops.len(), 4);
                    assert!(drops.iter().all(|(a, _)| *a == 3), "only the leader's sends");
                }
                "bridge" => {
                    // Halves of 2 and 2: 8 directed drops; the bridge appears in none.
                    assert_eq!(drops.len(), 8);
                    let bridge = (1..=5).find(|i| drops.iter().all(|(a, b)| a != i && b != i));
                    assert!(bridge.is_some());
                }
                _ => assert_eq!(drops.len(), 2 * 2 * 3),
            }
        }
    }

    #[test]
    fn partitions_keep_to_the_modes_asked_for() {
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..50 {
            let f = plan(
                Family::Partition,
                &mut rng,
                (3, 0),
                Some(2),
                0,
                &[PartitionMode::IsolateLeader],
            );
            assert_eq!(
                f,
                Fault::Partition {
                    mode: "isolate-leader",
                    drops: vec![(1, 2), (2, 1), (2, 3), (3, 2)]
                }
            );
        }
    }

    #[test]
    fn plans_follow_the_seed() {
        let a = partitions(3, None);
        let b = partitions(3, None);
        assert_eq!(a, b);
    }

    #[test]
    fn kills_and_pauses_aim_at_the_leader_about_half_the_time() {
        let mut rng = StdRng::seed_from_u64(1);
        let hits = (0..400)
            .filter(|_| {
                plan(Family::Kill, &mut rng, (5, 0), Some(2), 0, &[]) == Fault::Kill { nodes: vec![2] }
            })
            .count();
        // 0.5 + 0.5 / 5 = 0.6 expected.
        assert!((200..=280).contains(&hits), "{hits}");
    }

    #[test]
    fn transfers_and_membership_changes_spare_the_leader() {
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..50 {
            let Fault::Transfer { to } = plan(Family::Transfer, &mut rng, (3, 0), Some(2), 0, &[]) else {
                panic!()
            };
            assert!(to == 1 || to == 3, "{to}");
            let Fault::Membership { node } = plan(Family::Membership, &mut rng, (3, 0), Some(2), 0, &[])
            else {
                panic!()
            };
            assert!(node == 1 || node == 3, "{node}");
        }
    }

    #[test]
    fn skews_stay_within_the_bound() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..50 {
            let Fault::Skew { offsets } = plan(Family::Skew, &mut rng, (3, 0), None, 30, &[]) else {
                panic!()
            };
            assert_eq!(offsets.len(), 3);
            assert!(offsets.iter().all(|(_, s)| (-30..=30).contains(s)));
        }
    }
}
