//! Locks: POSIX byte-range locks (`fcntl`) and whole-file `flock` locks, kept per inode in the
//! replicated state so they hold across mounts and survive failover. The two kinds do not
//! interact, as on Linux. Requests never wait here: a conflicting request fails with `EAGAIN`
//! and blocking callers (`F_SETLKW`, `LOCK_EX` without `LOCK_NB`) retry.

use proto::fs::{Lock, LockKind};
use proto::{Errno, FsReply};

use crate::fs::command::{Effects, ShardCtx};
use crate::fs::node;
use crate::fs::outcome::OpResult;
use crate::fs::state::{FsState, HeldLock};
use crate::fs::tx::Tx;

/// Whether `a` and `b` are held by the same owner (for `flock`: the same open handle).
fn same_owner(a: &HeldLock, client: u64, handle: u64, lock: &Lock, flock: bool) -> bool {
    a.flock == flock
        && a.client == client
        && if flock {
            a.handle == handle
        } else {
            a.lock.owner == lock.owner
        }
}

fn overlaps(a: &Lock, b: &Lock) -> bool {
    a.start <= b.end && b.start <= a.end
}

/// The first lock of another owner that `lock` conflicts with.
pub fn conflict(held: &[HeldLock], client: u64, handle: u64, lock: &Lock, flock: bool) -> Option<HeldLock> {
    held.iter()
        .filter(|h| h.flock == flock && !same_owner(h, client, handle, lock, flock))
        .find(|h| overlaps(&h.lock, lock) && (lock.kind == LockKind::Write || h.lock.kind == LockKind::Write))
        .copied()
}

/// The lock list after the owner of `lock` sets it: its own locks lose the range (split where
/// needed), then a read or write lock is added and merged with touching locks of the same kind.
pub fn set_range(held: &[HeldLock], client: u64, handle: u64, lock: Lock, flock: bool) -> Vec<HeldLock> {
    let mut out = Vec::with_capacity(held.len() + 2);
    for h in held {
        if !same_owner(h, client, handle, &lock, flock) || !overlaps(&h.lock, &lock) {
            out.push(*h);
            continue;
        }
        if h.lock.start < lock.start {
            out.push(HeldLock {
                lock: Lock {
                    end: lock.start - 1,
                    ..h.lock
                },
                ..*h
            });
        }
        if h.lock.end > lock.end {
            out.push(HeldLock {
                lock: Lock {
                    start: lock.end + 1,
                    ..h.lock
                },
                ..*h
            });
        }
    }
    if lock.kind != LockKind::Unlock {
        let mut merged = HeldLock {
            client,
            handle,
            flock,
            lock,
        };
        out.retain(|h| {
            let touches = same_owner(h, client, handle, &lock, flock)
                && h.lock.kind == lock.kind
                && h.lock.start <= merged.lock.end.saturating_add(1)
                && merged.lock.start <= h.lock.end.saturating_add(1);
            if touches {
                merged.lock.start = merged.lock.start.min(h.lock.start);
                merged.lock.end = merged.lock.end.max(h.lock.end);
            }
            !touches
        });
        out.push(merged);
    }
    out.sort_by_key(|h| (h.flock, h.client, h.lock.owner, h.lock.start));
    out
}

fn check_range(lock: &Lock) -> OpResult<()> {
    if lock.start > lock.end {
        return Err(Errno::EINVAL.into());
    }
    Ok(())
}

/// `F_SETLK` / `flock`: takes or releases `lock` through `handle`, or fails with `EAGAIN`.
pub fn set<S: FsState>(
    mut tx: Tx<'_, S>,
    ino: u64,
    handle: u64,
    lock: Lock,
    flock: bool,
) -> OpResult<(Effects, FsReply)> {
    check_range(&lock)?;
    let node = tx.node(ino)?;
    let info = tx
        .state
        .handle(tx.client, handle)?
        .filter(|h| h.ino == node.ino.0)
        .ok_or(Errno::EBADF)?;
    let needs = match lock.kind {
        LockKind::Read => info.read,
        LockKind::Write => info.write,
        LockKind::Unlock => true,
    };
    if !needs && !flock {
        return Err(Errno::EBADF.into());
    }
    let held = tx.state.locks(node.ino)?;
    let lock = if flock {
        Lock {
            start: 0,
            end: u64::MAX,
            ..lock
        }
    } else {
        lock
    };
    if lock.kind != LockKind::Unlock && conflict(&held, tx.client, handle, &lock, flock).is_some() {
        return Err(Errno::EAGAIN.into());
    }
    let after = set_range(&held, tx.client, handle, lock, flock);
    if after != held {
        tx.set_locks(node.ino, after);
    }
    Ok((tx.finish(), FsReply::Done))
}

/// `F_GETLK`: the first lock of another owner that `lock` would conflict with.
pub fn get<S: FsState>(state: &S, ctx: ShardCtx<'_>, client: u64, ino: u64, lock: Lock) -> OpResult<FsReply> {
    check_range(&lock)?;
    let node = node::load(state, ctx, ino)?;
    let held = state.locks(node.ino)?;
    Ok(FsReply::Lock(
        conflict(&held, client, u64::MAX, &lock, false).map(|h| (h.client, h.lock)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(owner: u64, kind: LockKind, start: u64, end: u64) -> Lock {
        Lock {
            owner,
            pid: 1,
            kind,
            start,
            end,
        }
    }

    fn ranges(held: &[HeldLock]) -> Vec<(u64, LockKind, u64, u64)> {
        held.iter()
            .map(|h| (h.lock.owner, h.lock.kind, h.lock.start, h.lock.end))
            .collect()
    }

    #[test]
    fn write_locks_conflict_with_every_other_owner_and_read_locks_share() {
        let held = set_range(&[], 1, 10, lock(7, LockKind::Read, 0, 99), false);
        assert!(conflict(&held, 1, 10, &lock(8, LockKind::Read, 50, 60), false).is_none());
        assert!(conflict(&held, 1, 10, &lock(8, LockKind::Write, 50, 60), false).is_some());
        assert!(
            conflict(&held, 2, 11, &lock(7, LockKind::Write, 50, 60), false).is_some(),
            "other client, same owner number"
        );
        assert!(
            conflict(&held, 1, 10, &lock(7, LockKind::Write, 50, 60), false).is_none(),
            "own lock"
        );
        assert!(
            conflict(&held, 1, 10, &lock(8, LockKind::Write, 100, 200), false).is_none(),
            "no overlap"
        );
        assert!(
            conflict(&held, 2, 12, &lock(8, LockKind::Write, 0, 9), true).is_none(),
            "flock and fcntl are separate"
        );
    }

    #[test]
    fn unlocking_the_middle_splits_and_relocking_merges() {
        let held = set_range(&[], 1, 10, lock(7, LockKind::Write, 0, 99), false);
        let held = set_range(&held, 1, 10, lock(7, LockKind::Unlock, 40, 59), false);
        assert_eq!(
            ranges(&held),
            vec![(7, LockKind::Write, 0, 39), (7, LockKind::Write, 60, 99)]
        );
        let held = set_range(&held, 1, 10, lock(7, LockKind::Write, 40, 59), false);
        assert_eq!(ranges(&held), vec![(7, LockKind::Write, 0, 99)]);
        let held = set_range(&held, 1, 10, lock(7, LockKind::Read, 10, 19), false);
        assert_eq!(
            ranges(&held),
            vec![
                (7, LockKind::Write, 0, 9),
                (7, LockKind::Read, 10, 19),
                (7, LockKind::Write, 20, 99)
            ]
        );
        let held = set_range(&held, 1, 10, lock(7, LockKind::Unlock, 0, u64::MAX), false);
        assert!(held.is_empty());
    }
}
