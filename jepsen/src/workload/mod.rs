//! Workloads: what the clients do, and how their part of the history is checked.
//!
//! | module | workload |
//! |---|---|
//! | [`register`] | an xattr per file as a register: reads and writes on many keys, checked for linearizability per key |
//! | [`set`] | uniquely named files created in directories, listings during the run and at the end, checked with set-full |
//! | [`counter`] | link counts raised by hard links, read by getattr, checked against the bounds of the increments |
//! | [`tree`] | directories moved into each other at random; the final walk must find a tree |
//! | [`files`] | files written and fsync'd through a FUSE mount (data through chunkservers), listed and read back; set-full |
//!
//! Every operation runs through the metadata client RPC in strict mode: mutations at the
//! leader with an idempotency key, reads linearizable (read index). Each logical process is
//! bound to a home server, as Jepsen binds clients to nodes: its reads go there first and
//! follow the usual redirect to the leader when the home server is a follower — so a
//! follower that answers a linearizable read itself is caught.

pub mod counter;
pub mod files;
pub mod register;
pub mod set;
pub mod tree;

use std::net::SocketAddr;
use std::time::Duration;

use client::{ClientError, MdsClient, ReadFrom};
use proto::{Cred, Errno, FsOp, FsReply};
use serde_json::Value;

use crate::history::Kind;

/// The name of the workload on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Name {
    /// Read/write registers.
    Register,
    /// Set-add into directories.
    Set,
    /// Grow-only counters (link counts).
    Counter,
    /// Random directory moves.
    RenameTree,
    /// Files with contents through a FUSE mount (starts 3 chunkservers).
    Files,
}

/// Checks a history of workload `name` (`keys` registers, directories or counters; the
/// linearizability search gets `budget`).
pub fn check(
    name: Name,
    history: &[crate::history::Op],
    keys: usize,
    budget: Duration,
) -> crate::check::Check {
    match name {
        Name::Register => register::check(history, budget),
        Name::Set => set::check(history),
        Name::Counter => counter::check(history),
        Name::RenameTree => tree::check(history, keys),
        Name::Files => set::check(history),
    }
}

/// An operation a client is about to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// `read`, `write`, `add`.
    pub f: &'static str,
    /// The key.
    pub key: Option<String>,
    /// The argument.
    pub value: Value,
}

impl Invocation {
    /// A read of `key`.
    pub fn read(key: String) -> Invocation {
        Invocation {
            f: "read",
            key: Some(key),
            value: Value::Null,
        }
    }

    /// Reads of `<prefix>0` … `<prefix><n-1>`, for the final phase.
    pub fn reads_of_all(prefix: &str, n: usize) -> Vec<Invocation> {
        (0..n).map(|k| Invocation::read(format!("{prefix}{k}"))).collect()
    }

    /// The number after the key's one-letter prefix (0 if there is none).
    pub fn key_index(&self) -> usize {
        self.key
            .as_deref()
            .and_then(|k| k.get(1..))
            .and_then(|k| k.parse().ok())
            .unwrap_or(0)
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// ok, fail or info.
    pub kind: Kind,
    /// The result (a read's value), or the argument again.
    pub value: Value,
    /// What went wrong, if it did not succeed.
    pub error: Option<String>,
}

impl Outcome {
    /// It happened and gave `value`.
    pub fn ok(value: Value) -> Outcome {
        Outcome {
            kind: Kind::Ok,
            value,
            error: None,
        }
    }

    /// It ended with `kind` (fail or info) because of `error`.
    pub fn not_ok(kind: Kind, value: Value, error: String) -> Outcome {
        Outcome {
            kind,
            value,
            error: Some(error),
        }
    }

    /// The operation took longer than its timeout: a mutation may still happen (info); a
    /// read changes nothing, so it is a failure.
    pub fn timed_out(inv: &Invocation, timeout: Duration, mutation: bool) -> Outcome {
        let kind = if mutation { Kind::Info } else { Kind::Fail };
        Outcome::not_ok(kind, inv.value.clone(), format!("timed out after {timeout:?}"))
    }
}

/// Runs `op` and classifies a failure: a POSIX error is the server's definite answer
/// (`fail`); anything else (no answer, a transport error) leaves a mutation's effect unknown
/// (`info`) and fails a read.
pub async fn call(client: &MdsClient, op: FsOp, from: ReadFrom) -> Result<FsReply, (Kind, String)> {
    let mutation = op.is_mutation();
    client.fs(&Cred::root(), op, from).await.map_err(|e| match e {
        ClientError::Fs(errno) => (Kind::Fail, format!("{errno:?}")),
        other if mutation => (Kind::Info, other.to_string()),
        other => (Kind::Fail, other.to_string()),
    })
}

/// Runs the mutation `op` at the leader: ok with `value`, or fail/info as [`call`] decides.
pub async fn mutate(client: &MdsClient, op: FsOp, value: &Value) -> Outcome {
    match call(client, op, ReadFrom::Leader).await {
        Ok(_) => Outcome::ok(value.clone()),
        Err((kind, e)) => Outcome::not_ok(kind, value.clone(), e),
    }
}

/// Where a read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Linearizable, through the client's routing to the leader.
    Leader,
    /// Linearizable at this home server first; when it is not the leader (or does not
    /// answer), through the usual routing to the leader.
    Home(SocketAddr),
    /// Served by this server alone once it has applied the session's token: the final reads
    /// on every server.
    At(SocketAddr),
}

/// A read of `op` along `route`.
pub async fn read(client: &MdsClient, route: Route, op: FsOp) -> Result<FsReply, (Kind, String)> {
    let fs_error = |errno: Errno| (Kind::Fail, format!("{errno:?}"));
    match route {
        Route::At(addr) => {
            return client
                .read_at(addr, &Cred::root(), op, ReadFrom::AnyReplica)
                .await
                .map_err(|e| match e {
                    ClientError::Fs(errno) => fs_error(errno),
                    other => (Kind::Fail, format!("{addr}: {other}")),
                });
        }
        Route::Home(addr) => match client
            .read_at(addr, &Cred::root(), op.clone(), ReadFrom::Leader)
            .await
        {
            Ok(reply) => return Ok(reply),
            Err(ClientError::Fs(errno)) => return Err(fs_error(errno)),
            Err(_) => {}
        },
        Route::Leader => {}
    }
    call(client, op, ReadFrom::Leader).await
}

/// Every entry of directory `dir` but `.` and `..`, read in pages with [`read`].
pub async fn list_dir(
    client: &MdsClient,
    dir: u64,
    route: Route,
) -> Result<Vec<proto::fs::DirEntry>, String> {
    client::listing::list_dir(dir, 1000, |op| async move {
        read(client, route, op).await.map_err(|(_, e)| e)
    })
    .await
    .map_err(|e| e.to_string())
}

/// `parent/name` as a regular file, created at the leader, or the existing one's inode.
pub async fn make_file(client: &MdsClient, parent: u64, name: &str) -> anyhow::Result<u64> {
    let op = FsOp::MkNod {
        parent,
        name: name.into(),
        kind: crdt::model::FileKind::File,
        mode: 0o644,
        rdev: 0,
    };
    ensure(client, parent, name, op).await
}

/// `parent/name` as a directory, created at the leader, or the existing one's inode.
pub async fn make_dir(client: &MdsClient, parent: u64, name: &str) -> anyhow::Result<u64> {
    let op = FsOp::MkDir {
        parent,
        name: name.into(),
        mode: 0o755,
    };
    ensure(client, parent, name, op).await
}

async fn ensure(client: &MdsClient, parent: u64, name: &str, op: FsOp) -> anyhow::Result<u64> {
    match client.fs(&Cred::root(), op, ReadFrom::Leader).await {
        Ok(FsReply::Attr(a)) => Ok(a.ino),
        Err(ClientError::Fs(Errno::EEXIST)) => {
            let look = FsOp::Lookup {
                parent,
                name: name.into(),
            };
            match client.fs(&Cred::root(), look, ReadFrom::Leader).await {
                Ok(FsReply::Attr(a)) => Ok(a.ino),
                other => anyhow::bail!("lookup {name}: {other:?}"),
            }
        }
        other => anyhow::bail!("create {name}: {other:?}"),
    }
}
