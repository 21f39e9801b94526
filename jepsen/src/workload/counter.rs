//! Counter: quota usage. Each counter `c<k>` is a directory made a quota root; its usage in
//! inodes (a PN-counter in the metadata model) is incremented by creating a file with a
//! unique name in it and read through `getquota`. Every read must lie within the bounds of
//! the increments around it.

use std::sync::atomic::{AtomicI64, Ordering};

use client::{MdsClient, ReadFrom};
use proto::fs::{Cred, QuotaLimit};
use proto::{FsOp, FsReply};
use rand::Rng;
use serde_json::{Value, json};

use super::{Invocation, Outcome, Route, make_dir, mutate, read};
use crate::check::counter::{self, Increment, Read};
use crate::check::{Check, Verdict};
use crate::history::{Kind, Op, pairs};

/// The counter workload.
#[derive(Debug)]
pub struct Counters {
    dirs: Vec<u64>,
    next: AtomicI64,
}

impl Counters {
    /// Creates (or finds) the `keys` counter directories and makes each a quota root with no
    /// limits.
    pub async fn setup(client: &MdsClient, keys: usize) -> anyhow::Result<Counters> {
        let root = crdt::model::Ino::ROOT.0;
        let mut dirs = Vec::with_capacity(keys);
        for k in 0..keys {
            let dir = make_dir(client, root, &format!("c{k}")).await?;
            let op = FsOp::SetQuota {
                ino: dir,
                limit: Some(QuotaLimit::default()),
            };
            match client.fs(&Cred::root(), op, ReadFrom::Leader).await {
                Ok(FsReply::Quota(Some(_))) => {}
                other => anyhow::bail!("make c{k} a quota root: {other:?}"),
            }
            dirs.push(dir);
        }
        Ok(Counters {
            dirs,
            next: AtomicI64::new(1),
        })
    }

    /// The next operation: an increment (a new file) or a read, on a random counter.
    pub fn generate(&self, rng: &mut impl Rng) -> Invocation {
        let key = format!("c{}", rng.gen_range(0..self.dirs.len()));
        if rng.gen_bool(0.5) {
            Invocation::read(key)
        } else {
            Invocation {
                f: "add",
                key: Some(key),
                value: json!(self.next.fetch_add(1, Ordering::Relaxed)),
            }
        }
    }

    /// A read of every counter, for the final phase.
    pub fn final_reads(&self) -> Vec<Invocation> {
        Invocation::reads_of_all("c", self.dirs.len())
    }

    /// Whether `inv` changes state.
    pub fn is_mutation(inv: &Invocation) -> bool {
        inv.f == "add"
    }

    /// Performs `inv`; reads go along `route`.
    pub async fn invoke(&self, client: &MdsClient, inv: &Invocation, route: Route) -> Outcome {
        let dir = self.dirs[inv.key_index()];
        if inv.f == "add" {
            let op = FsOp::MkNod {
                parent: dir,
                name: format!("f{}", inv.value).into_bytes(),
                kind: crdt::model::FileKind::File,
                mode: 0o644,
                rdev: 0,
            };
            return mutate(client, op, &inv.value).await;
        }
        match read(client, route, FsOp::GetQuota { ino: dir }).await {
            Ok(FsReply::Quota(Some(q))) => Outcome::ok(json!(q.inodes)),
            Ok(other) => Outcome::not_ok(Kind::Fail, Value::Null, format!("unexpected reply {other:?}")),
            Err((kind, e)) => Outcome::not_ok(kind, Value::Null, e),
        }
    }
}

/// Checks every counter's reads against its increments.
pub fn check(history: &[Op]) -> Check {
    let mut keys: std::collections::BTreeMap<String, (Vec<Increment>, Vec<Read>)> = Default::default();
    for p in pairs(history) {
        let Some(key) = p.invoke.key.clone() else { continue };
        let entry = keys.entry(key).or_default();
        match (p.invoke.f.as_str(), p.outcome(), p.complete) {
            ("add", Kind::Fail, _) => {}
            ("add", outcome, c) => entry.0.push(Increment {
                by: 1,
                call: p.invoke.time,
                acked: (outcome == Kind::Ok).then(|| c.map(|c| c.time)).flatten(),
                unknown: outcome != Kind::Ok,
            }),
            ("read", Kind::Ok, Some(c)) => {
                if let Some(value) = c.value.as_i64() {
                    entry.1.push(Read {
                        call: p.invoke.time,
                        ret: c.time,
                        value,
                    });
                }
            }
            _ => {}
        }
    }
    let mut details = serde_json::Map::new();
    let mut verdicts = Vec::new();
    for (key, (incs, reads)) in &keys {
        let v = counter::check(incs, reads);
        details.insert(
            key.clone(),
            json!({"increments": incs.len(), "reads": reads.len(), "valid": v.word()}),
        );
        verdicts.push(v.about(&format!("counter {key}")));
    }
    Check {
        name: "counter bounds".into(),
        verdict: Verdict::all(verdicts),
        details: Value::Object(details),
    }
}
