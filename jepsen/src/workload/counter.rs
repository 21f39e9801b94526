//! Counter: the link count of files `c<k>` (a PN-counter in the metadata model) incremented
//! by hard links with unique names and read through `getattr`. Every read must lie within
//! the bounds of the increments around it. (Quota usage, the counter the brief names, joins
//! when quotas reach the metadata API.)

use std::sync::atomic::{AtomicI64, Ordering};

use client::MdsClient;
use proto::{FsOp, FsReply};
use rand::Rng;
use serde_json::{Value, json};

use super::{Invocation, Outcome, Route, make_dir, make_file, mutate, read};
use crate::check::counter::{self, Increment, Read};
use crate::check::{Check, Verdict};
use crate::history::{Kind, Op, pairs};

/// The counter workload.
#[derive(Debug)]
pub struct Counters {
    files: Vec<u64>,
    links: u64,
    next: AtomicI64,
}

impl Counters {
    /// Creates (or finds) the `keys` counter files and the directory of their links.
    pub async fn setup(client: &MdsClient, keys: usize) -> anyhow::Result<Counters> {
        let root = crdt::model::Ino::ROOT.0;
        let links = make_dir(client, root, "links").await?;
        let mut files = Vec::with_capacity(keys);
        for k in 0..keys {
            files.push(make_file(client, root, &format!("c{k}")).await?);
        }
        Ok(Counters {
            files,
            links,
            next: AtomicI64::new(1),
        })
    }

    /// The next operation: an increment (a new hard link) or a read, on a random counter.
    pub fn generate(&self, rng: &mut impl Rng) -> Invocation {
        let key = format!("c{}", rng.gen_range(0..self.files.len()));
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
        Invocation::reads_of_all("c", self.files.len())
    }

    /// Whether `inv` changes state.
    pub fn is_mutation(inv: &Invocation) -> bool {
        inv.f == "add"
    }

    /// Performs `inv`; reads go along `route`.
    pub async fn invoke(&self, client: &MdsClient, inv: &Invocation, route: Route) -> Outcome {
        let k = inv.key_index();
        let ino = self.files[k];
        if inv.f == "add" {
            let op = FsOp::Link {
                ino,
                parent: self.links,
                name: format!("c{k}-{}", inv.value).into_bytes(),
            };
            return mutate(client, op, &inv.value).await;
        }
        match read(client, route, FsOp::GetAttr { ino }).await {
            // The file's own name is one of its links.
            Ok(FsReply::Attr(a)) => Outcome::ok(json!(a.nlink as i64 - 1)),
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
