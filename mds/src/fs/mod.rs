//! The file-system state machine of one shard.
//!
//! Every replica runs [`execute`] on every committed command, so it must be a pure function of
//! the shard's state and the command: no clock (the leader put the time in the command), no
//! randomness, no I/O beyond the [`FsState`] reads. Checks (existence, permissions, emptiness)
//! happen here, at apply time, so concurrent commands are judged in log order.
//!
//! | module | what it holds |
//! |---|---|
//! | [`state`] | [`FsState`] (what the state machine reads), [`ShardMeta`], [`HandleInfo`] |
//! | [`command`] | [`Command`] and its [`Effects`] |
//! | [`exec`] | executing mutations |
//! | [`read`](mod@read) | read-only operations |
//! | [`perm`] | POSIX permission checks |

pub mod command;
pub mod entries;
pub mod exec;
pub mod names;
pub mod node;
pub mod ops;
pub mod outcome;
pub mod perm;
pub mod read;
pub mod state;
pub mod tx;

#[cfg(test)]
mod mem;
#[cfg(test)]
mod tests;

pub use command::{Command, Effects, HandleChange, ShardCtx};
pub use exec::{bootstrap_root, execute};
pub use read::read;
pub use state::{FsState, HandleInfo, HeldLock, HeldLocks, ShardMeta, StoredLimit};
