//! Deliberate bugs, compiled in only with the `deliberate-bugs` feature (the Jepsen harness's
//! own tests turn it on; a release build never has it) and switched on by
//! `MOOSENG_DELIBERATE_BUG`. They exist to prove that the harness catches what it claims to:
//! a run with a bug switched on must fail its checks.
//!
//! - `ack-before-fsync`: a leader counts every follower's append as persisted as soon as the
//!   leader has it, so it acknowledges writes before a quorum has fsynced them. A leader cut
//!   off from its followers keeps acknowledging writes that the rest of the cluster never sees.
//! - `stale-follower-reads`: a follower answers a linearizable read from its own state instead
//!   of redirecting it to the leader, however far behind it is.

use std::sync::OnceLock;

/// The switch's environment variable.
pub const ENV: &str = "MOOSENG_DELIBERATE_BUG";

/// A deliberate bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// See the module docs.
    AckBeforeFsync,
    /// See the module docs.
    StaleFollowerReads,
}

static ACTIVE: OnceLock<Option<Bug>> = OnceLock::new();

/// Reads the switch once, at startup; an unknown name is an error.
pub fn init() -> Result<(), String> {
    let bug = match std::env::var(ENV).ok().as_deref() {
        None | Some("") => None,
        Some("ack-before-fsync") => Some(Bug::AckBeforeFsync),
        Some("stale-follower-reads") => Some(Bug::StaleFollowerReads),
        Some(other) => {
            return Err(format!(
                "{ENV}={other}: known bugs are ack-before-fsync and stale-follower-reads"
            ));
        }
    };
    if let Some(b) = bug {
        tracing::warn!("DELIBERATE BUG SWITCHED ON: {b:?}; this server is unsafe by design");
    }
    let _ = ACTIVE.set(bug);
    Ok(())
}

/// Whether `bug` is switched on.
pub fn active(bug: Bug) -> bool {
    ACTIVE.get().copied().flatten() == Some(bug)
}
