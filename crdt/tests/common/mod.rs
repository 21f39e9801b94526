//! A small multi-replica simulation of the metadata model, shared by the property tests.
//!
//! Replicas make edits on their own state, deltas are delivered in arbitrary order (with
//! duplicates), clocks are skewed and garbage collection runs with the stability frontier
//! computed from global knowledge of what every replica has applied.

#![allow(dead_code)] // each test binary uses a different part of the simulation

use std::collections::HashSet;
use std::time::Duration;

use crdt::model::{Attr, ChunkRef, Delta, DirectoryView, FileKind, FileTime, Ino, Name, Namespace, NewInode};
use crdt::{Hlc, NodeId, Timestamp};
use proptest::prelude::*;
use uuid::Uuid;

/// Names used by the simulation: few, so that conflicts are common, plus one that collides
/// with a derived conflict name.
pub const NAMES: &[&str] = &["a", "b", "c", "a~0000000100000002"];

/// One step of a simulation run. Picks are reduced modulo whatever is available.
#[derive(Debug, Clone)]
pub enum Step {
    /// Replica creates a file (or directory) named `name` in a directory it sees.
    Create {
        replica: u8,
        dir: u8,
        name: u8,
        is_dir: bool,
    },
    /// Replica adds a hard link to a file it sees.
    Link {
        replica: u8,
        dir: u8,
        name: u8,
        target: u8,
    },
    /// Replica removes a visible entry; the inode is deleted with its last link.
    Unlink { replica: u8, pick: u8 },
    /// Replica writes an attribute of a live inode.
    SetAttr { replica: u8, pick: u8, value: u32 },
    /// Replica sets or removes an xattr.
    Xattr {
        replica: u8,
        pick: u8,
        key: u8,
        value: Option<u8>,
    },
    /// Replica points a chunk slot.
    Chunk {
        replica: u8,
        pick: u8,
        index: u8,
        version: Option<u8>,
    },
    /// Replica charges quota usage to the root.
    Quota { replica: u8, bytes: i16 },
    /// A produced delta is delivered to a replica (possibly again).
    Deliver { to: u8, pick: u16 },
    /// A replica collects garbage at the current stability frontier.
    Gc { replica: u8 },
    /// A replica's wall clock jumps.
    Skew { replica: u8, ms: i16 },
}

pub fn step(gc: bool) -> impl Strategy<Value = Step> {
    let r = 0u8..3;
    let mut choices = vec![
        (
            3,
            (r.clone(), any::<u8>(), any::<u8>(), any::<bool>())
                .prop_map(|(replica, dir, name, is_dir)| Step::Create {
                    replica,
                    dir,
                    name,
                    is_dir,
                })
                .boxed(),
        ),
        (
            1,
            (r.clone(), any::<u8>(), any::<u8>(), any::<u8>())
                .prop_map(|(replica, dir, name, target)| Step::Link {
                    replica,
                    dir,
                    name,
                    target,
                })
                .boxed(),
        ),
        (
            2,
            (r.clone(), any::<u8>())
                .prop_map(|(replica, pick)| Step::Unlink { replica, pick })
                .boxed(),
        ),
        (
            1,
            (r.clone(), any::<u8>(), any::<u32>())
                .prop_map(|(replica, pick, value)| Step::SetAttr { replica, pick, value })
                .boxed(),
        ),
        (
            1,
            (r.clone(), any::<u8>(), 0u8..3, proptest::option::of(any::<u8>()))
                .prop_map(|(replica, pick, key, value)| Step::Xattr {
                    replica,
                    pick,
                    key,
                    value,
                })
                .boxed(),
        ),
        (
            1,
            (r.clone(), any::<u8>(), 0u8..3, proptest::option::of(any::<u8>()))
                .prop_map(|(replica, pick, index, version)| Step::Chunk {
                    replica,
                    pick,
                    index,
                    version,
                })
                .boxed(),
        ),
        (
            1,
            (r.clone(), any::<i16>())
                .prop_map(|(replica, bytes)| Step::Quota { replica, bytes })
                .boxed(),
        ),
        (
            4,
            (r.clone(), any::<u16>())
                .prop_map(|(to, pick)| Step::Deliver { to, pick })
                .boxed(),
        ),
        (
            1,
            (r.clone(), any::<i16>())
                .prop_map(|(replica, ms)| Step::Skew { replica, ms })
                .boxed(),
        ),
    ];
    if gc {
        choices.push((1, r.prop_map(|replica| Step::Gc { replica }).boxed()));
    }
    proptest::strategy::Union::new_weighted(choices)
}

pub fn steps(gc: bool) -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(gc), 0..80)
}

pub struct Replica {
    pub ns: Namespace,
    pub hlc: Hlc,
    pub applied: HashSet<Uuid>,
    skew_ms: i64,
    next_ino: u64,
}

pub struct Sim {
    pub replicas: Vec<Replica>,
    /// Every delta made so far, in the order made.
    pub produced: Vec<Delta>,
    wall_ms: u64,
    next_id: u128,
}

pub fn time(s: i64) -> FileTime {
    FileTime::new(s, 0).unwrap()
}

fn new_inode(kind: FileKind, t: i64) -> NewInode {
    let nlink = if kind == FileKind::Dir { 2 } else { 1 };
    NewInode {
        kind,
        mode: 0o755,
        uid: 0,
        gid: 0,
        rdev: 0,
        time: time(t),
        nlink,
        symlink: None,
    }
}

impl Sim {
    /// Three replicas sharing a root directory made by replica 0.
    pub fn new() -> Sim {
        let replicas = (0..3)
            .map(|i| Replica {
                ns: Namespace::new(),
                hlc: Hlc::new(NodeId(i + 1), Duration::from_secs(3600)),
                applied: HashSet::new(),
                skew_ms: 0,
                next_ino: 1,
            })
            .collect();
        let mut sim = Sim {
            replicas,
            produced: Vec::new(),
            wall_ms: 1_000_000,
            next_id: 1,
        };
        sim.edit(0, |e| e.create(Ino::ROOT, new_inode(FileKind::Dir, 0)));
        for to in 1..3 {
            sim.deliver(to, 0);
        }
        sim
    }

    /// Runs `steps`.
    pub fn run(steps: &[Step]) -> Sim {
        let mut sim = Sim::new();
        for s in steps {
            sim.step(s);
        }
        sim
    }

    /// Delivers every delta to every replica, in the order made.
    pub fn deliver_all(&mut self) {
        for to in 0..self.replicas.len() {
            for i in 0..self.produced.len() {
                self.deliver(to, i);
            }
        }
    }

    pub fn step(&mut self, step: &Step) {
        self.wall_ms += 1;
        match *step {
            Step::Create {
                replica,
                dir,
                name,
                is_dir,
            } => {
                let r = usize::from(replica);
                let Some(dir) = self.pick_dir(r, dir) else { return };
                let ino = self.alloc_ino(r);
                let name = pick_name(name);
                let kind = if is_dir { FileKind::Dir } else { FileKind::File };
                let t = self.wall_ms as i64;
                self.edit(r, |e| {
                    e.create(ino, new_inode(kind, t));
                    e.link(dir, name, ino);
                    e.touch(dir, time(t));
                    if is_dir {
                        e.add_links(dir, 1);
                    }
                });
            }
            Step::Link {
                replica,
                dir,
                name,
                target,
            } => {
                let r = usize::from(replica);
                let (Some(dir), Some(target)) = (self.pick_dir(r, dir), self.pick_file(r, target)) else {
                    return;
                };
                let name = pick_name(name);
                self.edit(r, |e| {
                    e.link(dir, name, target);
                    e.add_links(target, 1);
                });
            }
            Step::Unlink { replica, pick } => {
                let r = usize::from(replica);
                let entries = self.visible_entries(r);
                if entries.is_empty() {
                    return;
                }
                let (dir, name, ino) = entries[usize::from(pick) % entries.len()].clone();
                let ns = &self.replicas[r].ns;
                let is_dir = ns.inode(ino).and_then(|i| i.kind()) == Some(FileKind::Dir);
                if is_dir && ns.dir(ino).is_some_and(|d| !d.is_empty()) {
                    return;
                }
                let last = is_dir || ns.inode(ino).is_some_and(|i| i.nlink() <= 1);
                self.edit(r, |e| {
                    e.unlink(dir, name, ino);
                    if last {
                        e.delete(ino);
                    } else {
                        e.add_links(ino, -1);
                    }
                });
            }
            Step::SetAttr { replica, pick, value } => {
                let r = usize::from(replica);
                let Some(ino) = self.pick_live(r, pick) else {
                    return;
                };
                let attr = match value % 4 {
                    0 => Attr::Mode(value & 0o7777),
                    1 => Attr::Uid(value),
                    2 => Attr::Size(u64::from(value)),
                    _ => Attr::Atime(time(i64::from(value))),
                };
                self.edit(r, |e| e.set_attrs(ino, vec![attr]));
            }
            Step::Xattr {
                replica,
                pick,
                key,
                value,
            } => {
                let r = usize::from(replica);
                let Some(ino) = self.pick_live(r, pick) else {
                    return;
                };
                let key: Box<[u8]> = format!("user.k{key}").into_bytes().into();
                self.edit(r, |e| e.set_xattr(ino, key, value.map(|v| vec![v].into())));
            }
            Step::Chunk {
                replica,
                pick,
                index,
                version,
            } => {
                let r = usize::from(replica);
                let Some(ino) = self.pick_live(r, pick) else {
                    return;
                };
                let chunk = version.map(|v| ChunkRef {
                    id: u64::from(index) + 1000,
                    version: u32::from(v),
                });
                self.edit(r, |e| e.set_chunk(ino, u64::from(index), chunk));
            }
            Step::Quota { replica, bytes } => {
                self.edit(usize::from(replica), |e| {
                    e.charge_quota(Ino::ROOT, i64::from(bytes), 1)
                });
            }
            Step::Deliver { to, pick } => {
                let i = usize::from(pick) % self.produced.len();
                self.deliver(usize::from(to), i);
            }
            Step::Gc { replica } => {
                let stable = self.stable_frontier();
                self.replicas[usize::from(replica)].ns.collect_garbage(stable);
            }
            Step::Skew { replica, ms } => self.replicas[usize::from(replica)].skew_ms = i64::from(ms),
        }
    }

    /// Applies produced delta `i` at replica `to`, advancing its clock first.
    pub fn deliver(&mut self, to: usize, i: usize) {
        let wall = self.wall(to);
        let delta = &self.produced[i];
        let rep = &mut self.replicas[to];
        rep.hlc
            .observe(delta.hlc, wall)
            .expect("max offset is generous in the simulation");
        rep.ns.apply(delta);
        rep.applied.insert(delta.id);
    }

    /// The newest stamp `T` such that every replica has applied every delta stamped at or
    /// before `T`.
    pub fn stable_frontier(&self) -> Timestamp {
        let mut by_time: Vec<&Delta> = self.produced.iter().collect();
        by_time.sort_by_key(|d| d.hlc);
        self.replicas
            .iter()
            .map(|r| {
                by_time
                    .iter()
                    .take_while(|d| r.applied.contains(&d.id))
                    .last()
                    .map_or(Timestamp::ZERO, |d| d.hlc)
            })
            .min()
            .unwrap_or(Timestamp::ZERO)
    }

    /// Every (directory, name, inode) entry replica `r` shows, by stored name.
    pub fn visible_entries(&self, r: usize) -> Vec<(Ino, Name, Ino)> {
        let ns = &self.replicas[r].ns;
        let mut out = Vec::new();
        for dir in self.live_inodes(r) {
            if let Some(d) = ns.dir(dir) {
                out.extend(d.iter().map(|(e, _)| (dir, e.name.clone(), e.ino)));
            }
        }
        out
    }

    /// Inodes live at replica `r`, in order.
    pub fn live_inodes(&self, r: usize) -> Vec<Ino> {
        let ns = &self.replicas[r].ns;
        (0..self.replicas.len() as u64)
            .flat_map(|rep| (0..=self.replicas[rep as usize].next_ino).map(move |c| ino_of(rep, c)))
            .chain([Ino::ROOT])
            .filter(|i| ns.inode(*i).is_some())
            .collect()
    }

    fn wall(&self, r: usize) -> u64 {
        self.wall_ms.saturating_add_signed(self.replicas[r].skew_ms)
    }

    fn alloc_ino(&mut self, r: usize) -> Ino {
        let rep = &mut self.replicas[r];
        rep.next_ino += 1;
        ino_of(r as u64, rep.next_ino)
    }

    fn pick_live(&self, r: usize, pick: u8) -> Option<Ino> {
        let live = self.live_inodes(r);
        (!live.is_empty()).then(|| live[usize::from(pick) % live.len()])
    }

    fn pick_dir(&self, r: usize, pick: u8) -> Option<Ino> {
        let ns = &self.replicas[r].ns;
        let dirs: Vec<Ino> = self
            .live_inodes(r)
            .into_iter()
            .filter(|i| ns.inode(*i).and_then(|n| n.kind()) == Some(FileKind::Dir))
            .collect();
        (!dirs.is_empty()).then(|| dirs[usize::from(pick) % dirs.len()])
    }

    fn pick_file(&self, r: usize, pick: u8) -> Option<Ino> {
        let ns = &self.replicas[r].ns;
        let files: Vec<Ino> = self
            .live_inodes(r)
            .into_iter()
            .filter(|i| ns.inode(*i).and_then(|n| n.kind()) == Some(FileKind::File))
            .collect();
        (!files.is_empty()).then(|| files[usize::from(pick) % files.len()])
    }

    fn edit(&mut self, r: usize, f: impl FnOnce(&mut crdt::model::Edit<'_, Namespace>)) {
        let wall = self.wall(r);
        let id = Uuid::from_u128(self.next_id);
        self.next_id += 1;
        let rep = &mut self.replicas[r];
        let ts = rep.hlc.now(wall);
        let mut edit = rep.ns.edit(ts, id).expect("a fresh stamp is above the floor");
        f(&mut edit);
        let delta = edit.finish();
        rep.applied.insert(delta.id);
        self.produced.push(delta);
    }
}

/// Inode `counter` of replica `rep`: high bits name the allocator, as in the real id scheme.
pub fn ino_of(rep: u64, counter: u64) -> Ino {
    Ino(((rep + 1) << 32) | counter)
}

fn pick_name(i: u8) -> Name {
    Name::try_from(NAMES[usize::from(i) % NAMES.len()]).unwrap()
}

/// What a reader can observe of a namespace: live inodes with their attributes and every
/// directory's visible listing. Garbage collection must never change it.
pub fn observable(ns: &Namespace, inos: &[Ino]) -> Vec<String> {
    let mut out = Vec::new();
    for &ino in inos {
        if let Some(i) = ns.inode(ino) {
            out.push(format!(
                "{ino:?} {:?} mode={:o} uid={} size={} nlink={} mtime={:?} xattrs={:?} chunks={:?}",
                i.kind(),
                i.mode(),
                i.uid(),
                i.size(),
                i.nlink(),
                i.mtime(),
                i.xattrs().iter().collect::<Vec<_>>(),
                i.chunks().iter().collect::<Vec<_>>()
            ));
            if let Some(d) = ns.dir(ino) {
                for v in d.visible() {
                    out.push(format!("  {:?} -> {:?}", v.name, v.entry.ino));
                }
            }
        }
    }
    out
}
