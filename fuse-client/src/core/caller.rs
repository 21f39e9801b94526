//! Who is calling: the FUSE request gives uid, gid and pid; the supplementary groups come from
//! `/proc/<pid>/status` (cached briefly, none when unreadable), and a blocked lock wait learns
//! from the same file whether the caller has a signal to handle.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proto::fs::Cred;

/// How long a process's groups are reused before `/proc` is read again.
const GROUPS_TTL: Duration = Duration::from_secs(1);
/// Processes remembered at most; the cache is emptied of stale entries when it grows past.
const GROUPS_CACHE: usize = 4096;

/// The supplementary-group cache.
#[derive(Debug, Default)]
pub struct Callers {
    cache: Mutex<HashMap<u32, Cached>>,
}

#[derive(Debug)]
struct Cached {
    at: Instant,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

impl Callers {
    /// The credentials of process `pid` running as `uid`/`gid`.
    pub fn cred(&self, uid: u32, gid: u32, pid: u32) -> Cred {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache
            .get(&pid)
            .filter(|c| c.uid == uid && c.gid == gid && now - c.at < GROUPS_TTL)
        {
            return Cred {
                uid,
                gid,
                groups: c.groups.clone(),
            };
        }
        let groups = read_status(pid).map(|s| groups_of(&s)).unwrap_or_default();
        if cache.len() >= GROUPS_CACHE {
            cache.retain(|_, c| now - c.at < GROUPS_TTL);
            if cache.len() >= GROUPS_CACHE {
                cache.clear();
            }
        }
        cache.insert(
            pid,
            Cached {
                at: now,
                uid,
                gid,
                groups: groups.clone(),
            },
        );
        Cred { uid, gid, groups }
    }
}

/// Whether process `pid` has a signal pending that it neither blocks nor ignores (a fatal one
/// included): a blocking lock request it made should end with `EINTR`. A process that is gone
/// counts as interrupted.
pub fn signal_pending(pid: u32) -> bool {
    match read_status(pid) {
        Some(s) => pending_in(&s),
        None => true,
    }
}

fn read_status(pid: u32) -> Option<String> {
    if pid == 0 {
        return None;
    }
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// The supplementary groups listed on the `Groups:` line.
fn groups_of(status: &str) -> Vec<u32> {
    field(status, "Groups:")
        .map(|v| v.split_whitespace().filter_map(|g| g.parse().ok()).collect())
        .unwrap_or_default()
}

/// Whether the status shows a deliverable pending signal.
fn pending_in(status: &str) -> bool {
    let mask = |name| {
        field(status, name)
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let pending = mask("SigPnd:") | mask("ShdPnd:");
    pending & !mask("SigBlk:") & !mask("SigIgn:") != 0
}

fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tcat\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\n\
        Gid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 27 1000 \nSigQ:\t0/63704\nSigPnd:\t0000000000000000\n\
        ShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\n";

    #[test]
    fn groups_come_from_the_groups_line() {
        assert_eq!(groups_of(STATUS), vec![4, 24, 27, 1000]);
        assert_eq!(groups_of("Groups:\t\n"), Vec::<u32>::new());
        assert_eq!(groups_of("Name:\tx\n"), Vec::<u32>::new());
    }

    #[test]
    fn a_pending_signal_counts_unless_blocked_or_ignored() {
        assert!(!pending_in(STATUS));
        let sigint = STATUS.replace("ShdPnd:\t0000000000000000", "ShdPnd:\t0000000000000002");
        assert!(pending_in(&sigint));
        let blocked = sigint.replace("SigBlk:\t0000000000000000", "SigBlk:\t0000000000000002");
        assert!(!pending_in(&blocked));
        let ignored = STATUS.replace("SigPnd:\t0000000000000000", "SigPnd:\t0000000000001000");
        assert!(!pending_in(&ignored), "SIGPIPE is ignored here");
        let kill = STATUS.replace("SigPnd:\t0000000000000000", "SigPnd:\t0000000000000100");
        assert!(pending_in(&kill));
    }

    #[test]
    fn this_process_is_read_and_a_missing_one_is_interrupted() {
        let me = std::process::id();
        let cred = Callers::default().cred(7, 8, me);
        assert_eq!((cred.uid, cred.gid), (7, 8));
        assert!(!signal_pending(me));
        assert!(signal_pending(0));
        assert_eq!(Callers::default().cred(1, 2, 0).groups, Vec::<u32>::new());
    }
}
