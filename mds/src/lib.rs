//! The MooseNG metadata server: it hosts shards of the namespace, each a raft-rs group whose
//! state machine is the CRDT metadata model; raft logs persisted in a write-ahead log, state
//! in LMDB.
//!
//! | module | what it holds |
//! |---|---|
//! | [`run`](mod@run) | [`run`](run::run)`(config, shutdown)`: the whole server |
//! | [`config`] | [`MdsConfig`] and its validation |
//! | [`cluster`] | the cluster file written by `mooseng admin init` |
//! | [`host`] | the raft host thread: ticks, rounds with group commit, apply, snapshots, admin |
//! | [`raft`] | one shard's raft group, the log entry format, the logger bridge |
//! | [`fs`] | the file-system state machine: POSIX operations over the CRDT model |
//! | [`wal`] | the write-ahead log of every group's raft log and hard state (RFC 005) |
//! | [`store`] | LMDB: shard records, applied indexes, idempotency table, node records |
//! | [`transport`] | node-to-node QUIC: raft batches and snapshot streams |
//! | [`keeper`] | chunkserver liveness, placement, and the repair loop (replicate, delete) |
//! | [`sessions`] | client sessions: who was heard when; ending silent clients' sessions |
//! | [`server`] | the client port: mutations through raft, reads by read index or session |
//! | [`http`] | `/health`, `/status`, `/metrics` |
//! | [`metrics`] | Prometheus metrics |
//! | [`error`] | storage errors |
//! | `bugs` | deliberate bugs for the Jepsen harness's tests (feature `deliberate-bugs` only) |
//!
//! Threads: the host thread owns every raft group, the write-ahead log and the LMDB write
//! path; a tokio runtime runs the ports; reads run on tokio's blocking pool in LMDB read
//! transactions; a helper thread zero-fills the next write-ahead log segment.

#[cfg(feature = "deliberate-bugs")]
pub mod bugs;
pub mod cluster;
pub mod config;
pub mod error;
pub mod fs;
pub mod host;
pub mod http;
pub mod keeper;
pub mod metrics;
pub mod raft;
pub mod run;
pub mod server;
pub mod sessions;
pub mod store;
pub mod transport;
pub mod wal;

pub use config::MdsConfig;
pub use run::{MdsError, run};
