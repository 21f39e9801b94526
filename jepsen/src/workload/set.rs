//! Set-add: clients create files with unique numeric names in directories `s<k>` and list the
//! directories through the leader; a final listing after the heal must hold every
//! acknowledged file (set-full).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};

use client::MdsClient;
use proto::FsOp;
use rand::Rng;
use serde_json::{Value, json};

use super::{Invocation, Outcome, Route, list_dir, make_dir, mutate};
use crate::check::set::{self as set_check, Add, AddOutcome, Read};
use crate::check::{Check, Verdict};
use crate::history::{Kind, Op, pairs};

/// The set workload.
#[derive(Debug)]
pub struct Sets {
    dirs: Vec<u64>,
    next: AtomicI64,
}

impl Sets {
    /// Creates (or finds) the `keys` directories.
    pub async fn setup(client: &MdsClient, keys: usize) -> anyhow::Result<Sets> {
        let mut dirs = Vec::with_capacity(keys);
        for k in 0..keys {
            dirs.push(make_dir(client, crdt::model::Ino::ROOT.0, &format!("s{k}")).await?);
        }
        Ok(Sets {
            dirs,
            next: AtomicI64::new(1),
        })
    }

    /// The next operation: mostly adds of fresh elements, sometimes a listing.
    pub fn generate(&self, rng: &mut impl Rng) -> Invocation {
        if rng.gen_bool(0.1) {
            Invocation::read(format!("s{}", rng.gen_range(0..self.dirs.len())))
        } else {
            let e = self.next.fetch_add(1, Ordering::Relaxed);
            Invocation {
                f: "add",
                key: Some(format!("s{}", e as usize % self.dirs.len())),
                value: json!(e),
            }
        }
    }

    /// A listing of every directory, for the final phase.
    pub fn final_reads(&self) -> Vec<Invocation> {
        Invocation::reads_of_all("s", self.dirs.len())
    }

    /// Whether `inv` changes state.
    pub fn is_mutation(inv: &Invocation) -> bool {
        inv.f == "add"
    }

    /// Performs `inv`; listings go along `route`.
    pub async fn invoke(&self, client: &MdsClient, inv: &Invocation, route: Route) -> Outcome {
        let dir = self.dirs[inv.key_index()];
        if inv.f == "add" {
            let op = FsOp::MkNod {
                parent: dir,
                name: inv.value.to_string().into_bytes(),
                kind: crdt::model::FileKind::File,
                mode: 0o644,
                rdev: 0,
            };
            return mutate(client, op, &inv.value).await;
        }
        match list(client, dir, route).await {
            Ok(elements) => Outcome::ok(json!(elements)),
            Err(e) => Outcome::not_ok(Kind::Fail, Value::Null, e),
        }
    }
}

async fn list(client: &MdsClient, dir: u64, route: Route) -> Result<Vec<i64>, String> {
    list_dir(client, dir, route)
        .await?
        .into_iter()
        .map(|e| {
            let name = String::from_utf8_lossy(&e.name);
            name.parse::<i64>()
                .map_err(|_| format!("unexpected entry {name:?}"))
        })
        .collect()
}

/// Checks every directory's adds and listings.
pub fn check(history: &[Op]) -> Check {
    let mut keys: std::collections::BTreeMap<String, (Vec<Add>, Vec<Read>)> = Default::default();
    for p in pairs(history) {
        let Some(key) = p.invoke.key.clone() else { continue };
        let entry = keys.entry(key).or_default();
        match p.invoke.f.as_str() {
            "add" => {
                let Some(element) = p.invoke.value.as_i64() else {
                    continue;
                };
                let outcome = match (p.outcome(), p.complete) {
                    (Kind::Ok, Some(c)) => AddOutcome::Ok(c.time),
                    (Kind::Fail, _) => AddOutcome::Fail,
                    _ => AddOutcome::Info,
                };
                entry.0.push(Add {
                    element,
                    call: p.invoke.time,
                    outcome,
                });
            }
            "read" => {
                if let (Kind::Ok, Some(c)) = (p.outcome(), p.complete) {
                    let elements: BTreeSet<i64> = c
                        .value
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_i64).collect())
                        .unwrap_or_default();
                    entry.1.push(Read {
                        call: p.invoke.time,
                        elements,
                        last: p.invoke.last,
                    });
                }
            }
            _ => {}
        }
    }
    let mut verdicts = Vec::new();
    let mut details = serde_json::Map::new();
    for (key, (adds, reads)) in &keys {
        let r = set_check::check(adds, reads);
        let v = r.verdict(reads.iter().any(|r| r.last));
        details.insert(
            key.clone(),
            json!({
                "acknowledged": r.acknowledged, "lost": r.lost, "stale": r.stale,
                "unexpected": r.unexpected, "never_read": r.never_read.len(), "valid": v.word(),
            }),
        );
        verdicts.push(v.about(&format!("set {key}")));
    }
    Check {
        name: "set-full (no acknowledged create lost)".into(),
        verdict: Verdict::all(verdicts),
        details: Value::Object(details),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(index: u64, p: u64, kind: Kind, f: &str, value: Value, last: bool) -> Op {
        Op {
            last,
            ..Op::client(index, p, kind, f, "s0", value)
        }
    }

    #[test]
    fn a_lost_create_in_a_recorded_history_is_flagged() {
        let h = vec![
            rec(0, 1, Kind::Invoke, "add", json!(1), false),
            rec(1, 1, Kind::Ok, "add", json!(1), false),
            rec(2, 2, Kind::Invoke, "add", json!(2), false),
            rec(3, 2, Kind::Ok, "add", json!(2), false),
            rec(4, 3, Kind::Invoke, "read", Value::Null, true),
            rec(5, 3, Kind::Ok, "read", json!([1]), true),
        ];
        let c = check(&h);
        assert!(
            matches!(&c.verdict, Verdict::Invalid(w) if w.contains("lost")),
            "{c:?}"
        );
        assert_eq!(c.details["s0"]["lost"], json!([2]));
    }

    #[test]
    fn a_complete_final_listing_is_valid() {
        let h = vec![
            rec(0, 1, Kind::Invoke, "add", json!(1), false),
            rec(1, 1, Kind::Ok, "add", json!(1), false),
            rec(2, 3, Kind::Invoke, "read", Value::Null, true),
            rec(3, 3, Kind::Ok, "read", json!([1]), true),
        ];
        assert_eq!(check(&h).verdict, Verdict::Valid);
    }
}
