//! Raft groups: one raft-rs `RawNode` per shard, without threads or network.
//!
//! | module | what it holds |
//! |---|---|
//! | [`group`] | [`Group`]: a shard's `RawNode`, its pending proposals and read-index requests |
//! | [`entry`] | [`LogEntry`], what a normal raft entry carries, and conf-change contexts |
//! | [`storage`] | [`GroupStorage`](storage::GroupStorage): raft-rs's view of a shard's log and records |
//! | [`logger`] | the bridge from raft-rs's `slog` logging to `tracing` |

pub mod entry;
pub mod group;
pub mod logger;
pub mod storage;

pub use entry::{ConfContext, LogEntry};
pub use group::{Group, RaftSettings};
