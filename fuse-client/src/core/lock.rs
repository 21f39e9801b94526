//! POSIX record locks (`fcntl`), kept by the metadata servers so they hold across mounts.
//!
//! The servers never wait: a conflicting request fails with `EAGAIN`. A blocking request
//! (`F_SETLKW`) is retried here with backoff until it is granted or the caller has a signal to
//! handle (then `EINTR`, as the kernel would answer an interrupted wait). The mount remembers
//! which lock owners may hold locks on which inodes, so that the unlock every `close` asks for
//! costs nothing when the owner never locked the file.
//!
//! `flock` locks are emulated with POSIX locks, as the Linux NFS client does: the mount asks
//! for `FUSE_FLOCK_LOCKS`, so the kernel sends `flock(2)` as a whole-file lock request whose
//! lock owner is the open file (fuser 0.18 does not pass the `FUSE_LK_FLOCK` flag that would
//! tell it from an `fcntl` lock, so both are the same thing here). The lock goes with the
//! open file: the kernel names its owner again at release, where it is unlocked. As on NFS,
//! `flock` and `fcntl` locks on one file conflict with each other, and an exclusive `flock`
//! needs a descriptor open for writing (`EBADF` otherwise).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use proto::fs::{Cred, Lock, LockKind};
use proto::{FsOp, FsReply};

use crate::core::handle::OpenFile;
use crate::core::{Data, Fs, FsError, Meta};

/// First pause before a blocked lock request is retried; doubled up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(10);
/// Longest pause between retries of a blocked lock request: also how long a signal may wait
/// to interrupt it.
const RETRY_MAX: Duration = Duration::from_millis(250);

/// The (inode, lock owner) pairs that may hold locks taken through this mount.
#[derive(Debug, Default)]
pub(crate) struct Held(Mutex<HashSet<(u64, u64)>>);

impl Held {
    fn contains(&self, ino: u64, owner: u64) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(ino, owner))
    }

    fn insert(&self, ino: u64, owner: u64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((ino, owner));
    }

    fn remove(&self, ino: u64, owner: u64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(ino, owner));
    }
}

impl<M: Meta, D: Data> Fs<M, D> {
    /// `F_GETLK`: the first lock of another owner that `lock` conflicts with. Its pid is that
    /// of the holding process when it runs on this mount's client, 0 otherwise (a pid of
    /// another machine means nothing here).
    pub async fn getlk(&self, cred: &Cred, fh: u64, lock: Lock) -> Result<Option<Lock>, FsError> {
        let file = self.files.get(fh)?;
        match self.ask(cred, FsOp::GetLk { ino: file.ino, lock }).await? {
            FsReply::Lock(held) => Ok(held.map(|(client, l)| Lock {
                pid: if client == self.meta.client_id() { l.pid } else { 0 },
                ..l
            })),
            other => Err(FsError::protocol("getlk", other)),
        }
    }

    /// `F_SETLK` (`F_SETLKW` if `wait`): takes or releases `lock` through `fh`. A blocking
    /// request retries while `interrupted` says no.
    pub async fn setlk(
        &self,
        cred: &Cred,
        fh: u64,
        lock: Lock,
        wait: bool,
        interrupted: impl Fn() -> bool + Send,
    ) -> Result<(), FsError> {
        let file = self.files.get(fh)?;
        if lock.kind == LockKind::Unlock && !self.locks.contains(file.ino, lock.owner) {
            return Ok(());
        }
        let mut pause = RETRY_FIRST;
        loop {
            let op = FsOp::SetLk {
                ino: file.ino,
                handle: file.handle,
                lock,
                flock: false,
            };
            match self.ask_done(cred, op, "setlk").await {
                Ok(()) => {
                    match lock.kind {
                        LockKind::Unlock if lock.start == 0 && lock.end == u64::MAX => {
                            self.locks.remove(file.ino, lock.owner)
                        }
                        LockKind::Unlock => {}
                        LockKind::Read | LockKind::Write => self.locks.insert(file.ino, lock.owner),
                    }
                    return Ok(());
                }
                Err(FsError::Posix(proto::Errno::EAGAIN)) if wait => {
                    if interrupted() {
                        return Err(FsError::Interrupted);
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RETRY_MAX);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Releases every POSIX lock `owner` holds on `file` (the kernel asks at each `close`).
    pub(crate) async fn unlock_owner(&self, cred: &Cred, file: &OpenFile, owner: u64) -> Result<(), FsError> {
        if !self.locks.contains(file.ino, owner) {
            return Ok(());
        }
        let lock = Lock {
            owner,
            pid: 0,
            kind: LockKind::Unlock,
            start: 0,
            end: u64::MAX,
        };
        self.ask_done(
            cred,
            FsOp::SetLk {
                ino: file.ino,
                handle: file.handle,
                lock,
                flock: false,
            },
            "setlk",
        )
        .await?;
        self.locks.remove(file.ino, owner);
        Ok(())
    }
}
