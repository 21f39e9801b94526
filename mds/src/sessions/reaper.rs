//! The session reaper: every quarter of the session timeout, for each shard this server
//! leads, it reads which clients hold handles or locks there and proposes
//! `FsOp::EndSession` for those whose sessions expired.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crdt::Timestamp;
use crdt::model::FileTime;
use proto::FsOp;
use proto::admin::Role;
use proto::fs::Cred;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::fs::Command;
use crate::host::{HostMsg, Shared};
use crate::raft::group::Waiter;
use crate::sessions::{Sessions, expired};
use crate::store::Store;

/// Runs the reaper until the task is dropped.
pub async fn run(
    sessions: Arc<Sessions>,
    store: Store,
    shared: Arc<Shared>,
    host: Sender<HostMsg>,
    node: u64,
    timeout: Duration,
) {
    let mut leading_since: HashMap<u32, Instant> = HashMap::new();
    let mut tick = tokio::time::interval((timeout / 4).max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let led: Vec<u32> = shared
            .statuses()
            .into_iter()
            .filter(|s| s.role == Role::Leader && s.leader == node)
            .map(|s| s.shard)
            .collect();
        leading_since.retain(|shard, _| led.contains(shard));
        sessions.forget_before(now.checked_sub(timeout * 4).unwrap_or(now));
        for shard in led {
            let since = *leading_since.entry(shard).or_insert(now);
            if now.saturating_duration_since(since) < timeout {
                continue;
            }
            let holders = match store.read().and_then(|t| store.session_holders(&t, shard)) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(shard, "session reaper: {e}");
                    continue;
                }
            };
            for client in expired(&holders, |c| sessions.last_heard(c), since, now, timeout) {
                end_session(&host, shard, client).await;
            }
        }
    }
}

/// Proposes the end of `client`'s session in `shard` and waits for it to apply.
async fn end_session(host: &Sender<HostMsg>, shard: u32, client: u64) {
    let cmd = Command {
        client,
        seq: 0,
        acked_below: 0,
        cred: Cred::root(),
        op: FsOp::EndSession,
        stamp: Timestamp::ZERO,
        now: FileTime::default(),
        delta_id: Uuid::nil(),
        placement: Vec::new(),
    };
    let (tx, rx) = oneshot::channel();
    let msg = HostMsg::Propose {
        shard,
        cmd: Box::new(cmd),
        waiter: Waiter::Fs(tx),
    };
    if host.send(msg).is_err() {
        return;
    }
    match tokio::time::timeout(Duration::from_secs(10), rx).await {
        Ok(Ok(Ok(_))) => tracing::info!(
            shard,
            client,
            "ended the session of a silent client: its handles and locks are released"
        ),
        Ok(Ok(Err(e))) => tracing::warn!(shard, client, "ending a silent client's session failed: {e}"),
        _ => tracing::warn!(shard, client, "ending a silent client's session did not complete"),
    }
}
