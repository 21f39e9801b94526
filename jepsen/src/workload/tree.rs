//! Rename-tree: directories `d0…d<keys-1>` (each with a marker file `m`) under a root `tree`
//! are moved into each other, or back under the root, at random. The server refuses a move
//! into the directory's own subtree (EINVAL). After the heal a walk from the root must find a
//! tree: every directory exactly once, every marker still there.
//!
//! A walk is many reads, not a snapshot, so only the final walk (nothing moves any more) is
//! checked; the moves themselves are recorded with their outcomes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use client::{MdsClient, ReadFrom};
use proto::FsOp;
use rand::Rng;
use serde_json::{Value, json};

use super::{Invocation, Outcome, Route, call, list_dir, make_dir, make_file};
use crate::check::tree::{self, Walk};
use crate::check::{Check, Verdict};
use crate::history::{Kind, Op, pairs};

const MARKER: &str = "m";

/// The rename-tree workload.
#[derive(Debug)]
pub struct Tree {
    root: u64,
    inos: Vec<u64>,
    /// Where each directory was last seen or moved to (parent inode); a belief, refreshed by a
    /// walk when a move finds the directory gone from there.
    parents: Mutex<Vec<u64>>,
}

impl Tree {
    /// Creates (or finds) the root and the `keys` directories with their markers.
    pub async fn setup(client: &MdsClient, keys: usize) -> anyhow::Result<Tree> {
        let root = make_dir(client, crdt::model::Ino::ROOT.0, "tree").await?;
        let mut inos = Vec::with_capacity(keys);
        for k in 0..keys {
            let d = make_dir(client, root, &format!("d{k}")).await?;
            make_file(client, d, MARKER).await?;
            inos.push(d);
        }
        Ok(Tree {
            root,
            parents: Mutex::new(vec![root; keys]),
            inos,
        })
    }

    /// The next operation: a move of a random directory under another (or the root).
    pub fn generate(&self, rng: &mut impl Rng) -> Invocation {
        let n = self.inos.len();
        let dir = rng.gen_range(0..n);
        let to = if n < 2 || rng.gen_bool(0.25) {
            Value::Null
        } else {
            let mut t = rng.gen_range(0..n - 1);
            if t >= dir {
                t += 1;
            }
            json!(t)
        };
        Invocation {
            f: "move",
            key: Some(format!("d{dir}")),
            value: json!({ "to": to }),
        }
    }

    /// The walk of the final phase.
    pub fn final_reads(&self) -> Vec<Invocation> {
        vec![Invocation {
            f: "walk",
            key: None,
            value: Value::Null,
        }]
    }

    /// Whether `inv` changes state.
    pub fn is_mutation(inv: &Invocation) -> bool {
        inv.f == "move"
    }

    /// Performs `inv`.
    pub async fn invoke(&self, client: &MdsClient, inv: &Invocation, route: Route) -> Outcome {
        if inv.f == "walk" {
            return match self.walk(client, route).await {
                Ok(w) => Outcome::ok(walk_json(&w)),
                Err(e) => Outcome::not_ok(Kind::Fail, Value::Null, e),
            };
        }
        let dir = inv.key_index();
        let target = match inv.value["to"].as_u64() {
            Some(t) => self.inos[t as usize],
            None => self.root,
        };
        let from = self.parents.lock().expect("parents lock")[dir];
        let name = format!("d{dir}").into_bytes();
        let op = FsOp::Rename {
            parent: from,
            name: name.clone(),
            new_parent: target,
            new_name: name,
            flags: proto::fs::rename_flags::NOREPLACE,
        };
        match call(client, op, ReadFrom::Leader).await {
            Ok(_) => {
                self.parents.lock().expect("parents lock")[dir] = target;
                Outcome::ok(inv.value.clone())
            }
            Err((kind, e)) => {
                if e == "ENOENT" {
                    // Our belief of where it is was wrong (a move of unknown outcome, or
                    // another process moved it): learn the tree again.
                    if let Ok(w) = self.walk(client, route).await {
                        self.learn(&w);
                    }
                }
                Outcome::not_ok(kind, inv.value.clone(), e)
            }
        }
    }

    fn learn(&self, w: &Walk) {
        let by_name: HashMap<String, u64> = (0..self.inos.len())
            .map(|k| (format!("d{k}"), self.inos[k]))
            .collect();
        let mut parents = self.parents.lock().expect("parents lock");
        for (parent, child) in &w.edges {
            let p = if parent.is_empty() {
                Some(self.root)
            } else {
                by_name.get(parent).copied()
            };
            if let (Some(p), Some(k)) = (p, child.strip_prefix('d').and_then(|k| k.parse::<usize>().ok()))
                && k < parents.len()
            {
                parents[k] = p;
            }
        }
    }

    /// Walks the tree from its root, each directory listed with a linearizable read.
    async fn walk(&self, client: &MdsClient, route: Route) -> Result<Walk, String> {
        let mut w = Walk::default();
        let mut queue = vec![(String::new(), self.root)];
        let mut visited = 0;
        while let Some((name, ino)) = queue.pop() {
            visited += 1;
            if visited > 10 * self.inos.len() + 10 {
                return Err("the walk does not end: a cycle reachable from the root".into());
            }
            for e in list_dir(client, ino, route).await? {
                let child = String::from_utf8_lossy(&e.name).into_owned();
                if child == MARKER && !name.is_empty() {
                    w.marked.insert(name.clone());
                } else if e.kind == crdt::model::FileKind::Dir {
                    w.edges.push((name.clone(), child.clone()));
                    queue.push((child, e.ino));
                } else {
                    w.strangers.push(format!("{name}/{child}"));
                }
            }
        }
        Ok(w)
    }
}

fn walk_json(w: &Walk) -> Value {
    json!({ "edges": w.edges, "marked": w.marked, "strangers": w.strangers })
}

fn walk_from(v: &Value) -> Option<Walk> {
    let pairs = v["edges"].as_array()?;
    Some(Walk {
        edges: pairs
            .iter()
            .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
            .collect(),
        marked: v["marked"]
            .as_array()?
            .iter()
            .filter_map(|m| m.as_str().map(String::from))
            .collect(),
        strangers: v["strangers"]
            .as_array()?
            .iter()
            .filter_map(|m| m.as_str().map(String::from))
            .collect(),
    })
}

/// Checks the final walk; `keys` directories were made.
pub fn check(history: &[Op], keys: usize) -> Check {
    let expected: BTreeSet<String> = (0..keys).map(|k| format!("d{k}")).collect();
    let (mut ok, mut info, mut fail) = (0, 0, 0);
    // Every final walk (through the leader, then on each server) must find the tree.
    let mut finals: Vec<(Option<usize>, Walk)> = Vec::new();
    for p in pairs(history) {
        match (p.invoke.f.as_str(), p.outcome()) {
            ("move", Kind::Ok) => ok += 1,
            ("move", Kind::Info) => info += 1,
            ("move", _) => fail += 1,
            ("walk", Kind::Ok) if p.invoke.last => {
                finals.extend(
                    p.complete
                        .and_then(|c| walk_from(&c.value))
                        .map(|w| (p.invoke.node, w)),
                );
            }
            _ => {}
        }
    }
    let verdict = if finals.is_empty() {
        Verdict::Unknown("no final walk completed".into())
    } else {
        Verdict::all(finals.iter().map(|(node, w)| {
            let at = node.map_or("the leader".to_string(), |n| format!("server {n}"));
            tree::check(&expected, w).about(&format!("walk at {at}"))
        }))
    };
    Check {
        name: "rename-tree invariants".into(),
        verdict,
        details: json!({"moves_ok": ok, "moves_info": info, "moves_fail": fail,
            "final_walks": finals.len(),
            "final_edges": finals.first().map(|(_, w)| w.edges.len())}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;

    fn rec(index: u64, kind: Kind, f: &str, value: Value) -> Op {
        Op {
            index,
            time: index,
            process: Process::Client(1),
            kind,
            f: f.into(),
            key: None,
            value,
            error: None,
            last: f == "walk",
            node: None,
        }
    }

    #[test]
    fn a_final_walk_missing_a_directory_is_flagged_from_the_history() {
        let w = Walk {
            edges: vec![(String::new(), "d0".into())],
            marked: ["d0".to_string()].into_iter().collect(),
            strangers: Vec::new(),
        };
        let h = vec![
            rec(0, Kind::Invoke, "walk", Value::Null),
            rec(1, Kind::Ok, "walk", walk_json(&w)),
        ];
        let c = check(&h, 2);
        assert!(
            matches!(&c.verdict, Verdict::Invalid(s) if s.contains("d1")),
            "{c:?}"
        );
        assert_eq!(check(&h, 1).verdict, Verdict::Valid);
    }
}
