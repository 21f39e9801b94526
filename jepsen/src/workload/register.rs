//! Registers: the xattr `user.jepsen` of file `r<k>` holds an integer. Clients write unique
//! values and read them back through the leader's read index; every key's history must be
//! linearizable.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use client::MdsClient;
use proto::{FsOp, FsReply};
use rand::Rng;
use serde_json::{Value, json};

use super::{Invocation, Outcome, make_file, mutate, read};
use crate::check::linear::{self, Register, RegisterOp, Timed};
use crate::check::{Check, Verdict};
use crate::history::{Kind, Op, pairs};

const XATTR: &[u8] = b"user.jepsen";

/// The register workload.
#[derive(Debug)]
pub struct Registers {
    inos: Vec<u64>,
    next: AtomicI64,
}

impl Registers {
    /// Creates (or finds) the `keys` register files.
    pub async fn setup(client: &MdsClient, keys: usize) -> anyhow::Result<Registers> {
        let mut inos = Vec::with_capacity(keys);
        for k in 0..keys {
            inos.push(make_file(client, crdt::model::Ino::ROOT.0, &format!("r{k}")).await?);
        }
        Ok(Registers {
            inos,
            next: AtomicI64::new(1),
        })
    }

    /// The next operation: a read or a write of a fresh value, on a random key.
    pub fn generate(&self, rng: &mut impl Rng) -> Invocation {
        let key = format!("r{}", rng.gen_range(0..self.inos.len()));
        if rng.gen_bool(0.5) {
            Invocation::read(key)
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
        Invocation::reads_of_all("r", self.inos.len())
    }

    /// Whether `inv` changes state.
    pub fn is_mutation(inv: &Invocation) -> bool {
        inv.f == "write"
    }

    /// Performs `inv`; reads go to `home` first.
    pub async fn invoke(&self, client: &MdsClient, inv: &Invocation, home: Option<SocketAddr>) -> Outcome {
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
        match read(client, home, op).await {
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
            ("read", _) => RegisterOp::Read(p.complete.and_then(|c| c.value.as_i64())),
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
        let v = linear::check(Register::default(), ops, deadline);
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
    use crate::history::Process;

    fn rec(index: u64, p: u64, kind: Kind, f: &str, value: Value) -> Op {
        Op {
            index,
            time: index * 100,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: Some("r0".into()),
            value,
            error: None,
            last: false,
        }
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
