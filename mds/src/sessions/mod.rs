//! Client sessions. A client holding open files or locks must keep telling the metadata
//! servers it is alive (`KeepAlive` to every server, and any request counts). Each server
//! keeps its own view of when it last heard each client; the leader of a shard ends the
//! session of a client that holds something in the shard and has been silent longer than the
//! session timeout ([`reaper`]): its handles close and its locks drop
//! (`proto::FsOp::EndSession`), so a crashed mount cannot keep a lock or an unlinked file
//! forever.
//!
//! | module | what it holds |
//! |---|---|
//! | [`Sessions`] | when this server last heard each client |
//! | [`expired`] | which holders to expire (pure) |
//! | [`reaper`] | the loop at shard leaders |

pub mod reaper;

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When this server last heard each client.
#[derive(Debug, Default)]
pub struct Sessions {
    heard: Mutex<HashMap<u64, Instant>>,
}

impl Sessions {
    /// Records that `client` was heard at `now`.
    pub fn heard(&self, client: u64, now: Instant) {
        if client != 0 {
            self.heard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(client, now);
        }
    }

    /// When `client` was last heard.
    pub fn last_heard(&self, client: u64) -> Option<Instant> {
        self.heard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&client)
            .copied()
    }

    /// Forgets clients not heard since `before`.
    pub fn forget_before(&self, before: Instant) {
        self.heard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, t| *t >= before);
    }
}

/// The clients among `holders` whose sessions have expired at `now`: silent for `timeout`,
/// counting from when this server started leading the shard at the latest (a new leader gives
/// every client a full timeout to reach it).
pub fn expired(
    holders: &BTreeSet<u64>,
    last_heard: impl Fn(u64) -> Option<Instant>,
    leading_since: Instant,
    now: Instant,
    timeout: Duration,
) -> Vec<u64> {
    holders
        .iter()
        .copied()
        .filter(|c| {
            let last = last_heard(*c).map_or(leading_since, |t| t.max(leading_since));
            now.saturating_duration_since(last) >= timeout
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_holders_silent_for_the_whole_timeout_expire() {
        let t0 = Instant::now();
        let s = Sessions::default();
        s.heard(7, t0);
        s.heard(8, t0 + Duration::from_secs(20));
        let holders: BTreeSet<u64> = [7, 8, 9].into();
        let timeout = Duration::from_secs(30);
        let at = |secs| {
            expired(
                &holders,
                |c| s.last_heard(c),
                t0,
                t0 + Duration::from_secs(secs),
                timeout,
            )
        };
        assert_eq!(at(29), Vec::<u64>::new());
        assert_eq!(
            at(30),
            vec![7, 9],
            "9 was never heard: it counts from the start of leadership"
        );
        assert_eq!(at(50), vec![7, 8, 9]);
    }

    #[test]
    fn a_new_leader_gives_every_client_a_full_timeout() {
        let t0 = Instant::now();
        let s = Sessions::default();
        s.heard(7, t0);
        let holders: BTreeSet<u64> = [7].into();
        let timeout = Duration::from_secs(30);
        let leading_since = t0 + Duration::from_secs(100);
        let at = |secs| {
            expired(
                &holders,
                |c| s.last_heard(c),
                leading_since,
                t0 + Duration::from_secs(secs),
                timeout,
            )
        };
        assert!(at(129).is_empty());
        assert_eq!(at(130), vec![7]);
    }

    #[test]
    fn forgetting_drops_only_old_clients_and_client_zero_is_never_recorded() {
        let t0 = Instant::now();
        let s = Sessions::default();
        s.heard(0, t0);
        s.heard(7, t0);
        s.heard(8, t0 + Duration::from_secs(5));
        s.forget_before(t0 + Duration::from_secs(1));
        assert_eq!((s.last_heard(0), s.last_heard(7)), (None, None));
        assert!(s.last_heard(8).is_some());
    }
}
