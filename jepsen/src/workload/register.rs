//! Registers, checked for linearizability key by key. Two kinds, as POSIX has no single
//! object with read, write and compare-and-set:
//!
//! - `r<k>`: the xattr `user.jepsen` of file `r<k>` holds an integer: **read** (getxattr) and
//!   **write** (setxattr) of unique values;
//! - `n<k>`: directory `n<k>` holds exactly one entry, whose name is the value (0 at first):
//!   **read** (list it) and **cas** old → new (rename `old` to `new` with `RENAME_NOREPLACE`,
//!   which succeeds only if `old` is there: ENOENT is a definite failure).
//!
//! Reads go through the leader's read index (home server first, see the module above).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use client::MdsClient;
use proto::{FsOp, FsReply};
use rand::Rng;
use serde_json::{Value, json};

use super::{Invocation, Outcome, Route, list_dir, make_dir, make_file, mutate, read};
use crate::check::linear::{self, Register, RegisterOp, Timed};
use crate::check::{Check, Verdict};
use crate::history::{Kind, Op, pairs};

const XATTR: &[u8] = b"user.jepsen";

/// The register workload.
#[derive(Debug)]
pub struct Registers {
    inos: Vec<u64>,
    dirs: Vec<u64>,
    next: AtomicI64,
    /// The last value each `n<k>` was seen to hold, so that CASes often expect the right one.
    seen: Mutex<HashMap<usize, i64>>,
}

impl Registers {
    /// Creates (or finds) the `keys` register files.
    pub async fn setup(client: &MdsClient, keys: usize) -> anyhow::Result<Registers> {
        let root = crdt::model::Ino::ROOT.0;
        let (mut inos, mut dirs) = (Vec::with_capacity(keys), Vec::with_capacity(keys));
        for k in 0..keys {
            inos.push(make_file(client, root, &format!("r{k}")).await?);
            let dir = make_dir(client, root, &format!("n{k}")).await?;
            if list_dir(client, dir, Route::Leader)
                .await
                .map_err(anyhow::Error::msg)?
                .is_empty()
            {
                make_file(client, dir, "0").await?;
            }
            dirs.push(dir);
        }
        Ok(Registers {
            inos,
            dirs,
            next: AtomicI64::new(1),
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// The next operation on a random key: a read, a write of a fresh value (`r<k>`) or a
    /// compare-and-set to a fresh value (`n<k>`).
    pub fn generate(&self, rng: &mut impl Rng) -> Invocation {
        let k = rng.gen_range(0..self.inos.len());
        let cas = rng.gen_bool(0.5);
        let key = format!("{}{k}", if cas { 'n' } else { 'r' });
        if rng.gen_bool(0.5) {
            Invocation::read(key)
        } else if cas {
            // Mostly the value last seen; sometimes a random earlier one, so that failing
            // CASes are exercised too.
            let seen = self.seen.lock().expect("seen lock").get(&k).copied().unwrap_or(0);
            let old = if rng.gen_bool(0.2) {
                rng.gen_range(0..self.next.load(Ordering::Relaxed).max(1))
            } else {
                seen
            };
            Invocation {
                f: "cas",
                key: Some(key),
                value: json!([old, self.next.fetch_add(1, Ordering::Relaxed)]),
            }
        } else {
            Invocation {
                f: "write",
                key: Some(key),
                value: json!(self.next.fetch_add(1, Ordering::Relaxed)),
            }
        }
    }

    /// A read of every key, for the final phase.
    pub fn final_reads(&self) -> Vec<Invocation> {
        let mut reads = Invocation::reads_of_all("r", self.inos.len());
        reads.extend(Invocation::reads_of_all("n", self.dirs.len()));
        reads
    }

    /// Whether `inv` changes state.
    pub fn is_mutation(inv: &Invocation) -> bool {
        inv.f == "write" || inv.f == "cas"
    }

    /// A CAS or a read of `n<k>`.
    async fn named(&self, client: &MdsClient, inv: &Invocation, route: Route) -> Outcome {
        let k = inv.key_index();
        let dir = self.dirs[k];
        if let (Some(old), Some(new)) = (inv.value[0].as_i64(), inv.value[1].as_i64()) {
            let op = FsOp::Rename {
                parent: dir,
                name: old.to_string().into_bytes(),
                new_parent: dir,
                new_name: new.to_string().into_bytes(),
                flags: proto::fs::rename_flags::NOREPLACE,
            };
            let out = mutate(client, op, &inv.value).await;
            if out.kind == Kind::Ok {
                self.seen.lock().expect("seen lock").insert(k, new);
            }
            return out;
        }
        match list_dir(client, dir, route).await {
            Ok(entries) => {
                let names: Vec<String> = entries
                    .iter()
                    .map(|e| String::from_utf8_lossy(&e.name).into_owned())
                    .collect();
                match names.as_slice() {
                    [one] if one.parse::<i64>().is_ok() => {
                        let v: i64 = one.parse().unwrap_or_default();
                        self.seen.lock().expect("seen lock").insert(k, v);
                        Outcome::ok(json!(v))
                    }
                    // Not exactly one value: an impossible state, recorded as seen.
                    _ => Outcome::ok(json!(names)),
                }
            }
            Err(e) => Outcome::not_ok(Kind::Fail, Value::Null, e),
        }
    }

    /// Performs `inv`; reads go along `route`.
    pub async fn invoke(&self, client: &MdsClient, inv: &Invocation, route: Route) -> Outcome {
        if inv.key.as_deref().is_some_and(|k| k.starts_with('n')) {
            return self.named(client, inv, route).await;
        }
        let ino = self.inos[inv.key_index()];
        if inv.f == "write" {
            let op = FsOp::SetXattr {
                ino,
                name: XATTR.to_vec(),
                value: inv.value.to_string().into_bytes(),
                flags: 0,
            };
            return mutate(client, op, &inv.value).await;
        }
        let op = FsOp::GetXattr {
            ino,
            name: XATTR.to_vec(),
        };
        match read(client, route, op).await {
            Ok(FsReply::Xattr(bytes)) => match std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                Some(v) => Outcome::ok(json!(v)),
                None => Outcome::not_ok(Kind::Fail, Value::Null, format!("unreadable value {bytes:?}")),
            },
            Ok(other) => Outcome::not_ok(Kind::Fail, Value::Null, format!("unexpected reply {other:?}")),
            Err((_, e)) if e == "ENODATA" => Outcome::ok(Value::Null),
            Err((kind, e)) => Outcome::not_ok(kind, Value::Null, e),
        }
    }
}

/// Checks every key's history for linearizability, within `budget` in all.
pub fn check(history: &[Op], budget: Duration) -> Check {
    let mut by_key: std::collections::BTreeMap<String, Vec<Timed<RegisterOp>>> = Default::default();
    let (mut ok, mut info, mut fail) = (0, 0, 0);
    for p in pairs(history) {
        let Some(key) = p.invoke.key.clone() else { continue };
        let outcome = p.outcome();
        match outcome {
            Kind::Ok => ok += 1,
            Kind::Info => info += 1,
            _ => fail += 1,
        }
        let op = match (p.invoke.f.as_str(), outcome) {
            (_, Kind::Fail) | ("read", Kind::Info) => continue,
            ("write", _) => match p.invoke.value.as_i64() {
                Some(v) => RegisterOp::Write(v),
                None => continue,
            },
            ("cas", _) => match (p.invoke.value[0].as_i64(), p.invoke.value[1].as_i64()) {
                (Some(old), Some(new)) => RegisterOp::Cas(old, new),
                _ => continue,
            },
            // A read that saw no single integer (several entries, a strange name) saw a
            // state no operation can produce: a value nobody wrote.
            ("read", _) => RegisterOp::Read(
                p.complete
                    .map(|c| match &c.value {
                        Value::Null => None,
                        v => Some(v.as_i64().unwrap_or(i64::MIN)),
                    })
                    .unwrap_or(None),
            ),
            _ => continue,
        };
        let ret = (outcome == Kind::Ok)
            .then(|| p.complete.map(|c| c.time))
            .flatten();
        by_key.entry(key).or_default().push(Timed {
            op,
            call: p.invoke.time,
            ret,
        });
    }
    let deadline = Instant::now() + budget;
    let mut per_key = serde_json::Map::new();
    let mut verdicts = Vec::new();
    for (key, ops) in &by_key {
        // Named registers start at 0; xattr registers start unset.
        let init = Register(key.starts_with('n').then_some(0));
        let v = linear::check(init, ops, deadline);
        per_key.insert(key.clone(), json!({"ops": ops.len(), "valid": v.word()}));
        verdicts.push(v.about(&format!("key {key}")));
    }
    Check {
        name: "linearizable registers".into(),
        verdict: Verdict::all(verdicts),
        details: json!({"ok": ok, "info": info, "fail": fail, "keys": per_key}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(index: u64, p: u64, kind: Kind, f: &str, value: Value) -> Op {
        Op::client(index, p, kind, f, "r0", value)
    }

    #[test]
    fn a_stale_read_in_a_recorded_history_is_flagged() {
        let h = vec![
            rec(0, 1, Kind::Invoke, "write", json!(1)),
            rec(1, 1, Kind::Ok, "write", json!(1)),
            rec(2, 2, Kind::Invoke, "write", json!(2)),
            rec(3, 2, Kind::Ok, "write", json!(2)),
            rec(4, 1, Kind::Invoke, "read", Value::Null),
            rec(5, 1, Kind::Ok, "read", json!(1)),
        ];
        let c = check(&h, Duration::from_secs(5));
        assert!(
            matches!(&c.verdict, Verdict::Invalid(w) if w.contains("key r0")),
            "{c:?}"
        );
    }

    #[test]
    fn failed_writes_and_unfinished_reads_are_left_out() {
        let h = vec![
            rec(0, 1, Kind::Invoke, "write", json!(1)),
            rec(1, 1, Kind::Fail, "write", json!(1)),
            rec(2, 2, Kind::Invoke, "read", Value::Null),
            rec(3, 3, Kind::Invoke, "read", Value::Null),
            rec(4, 3, Kind::Ok, "read", Value::Null),
        ];
        let c = check(&h, Duration::from_secs(5));
        assert_eq!(c.verdict, Verdict::Valid, "{c:?}");
        assert_eq!(c.details["keys"]["r0"]["ops"], 1);
    }
}
