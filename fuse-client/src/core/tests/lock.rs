//! POSIX locks: blocking requests retried, interrupted waits, unlock at close.

use std::sync::atomic::{AtomicU32, Ordering};

use proto::Errno;
use proto::fs::{Lock, LockKind};

use super::fake_meta::{ME, OTHER};
use super::{fs, new_file, user};
use crate::core::FsError;

fn lock(owner: u64, kind: LockKind) -> Lock {
    Lock {
        owner,
        pid: 4242,
        kind,
        start: 0,
        end: u64::MAX,
    }
}

#[tokio::test(start_paused = true)]
async fn a_blocking_lock_is_retried_until_granted() {
    let fs = fs();
    let (_, fh) = new_file(&fs, "f").await;
    fs.meta().st().refuse_locks = 3;
    let asked = AtomicU32::new(0);
    fs.setlk(&user(), fh, lock(1, LockKind::Write), true, || {
        asked.fetch_add(1, Ordering::Relaxed);
        false
    })
    .await
    .unwrap();
    assert_eq!(fs.meta().count("setlk"), 4);
    assert_eq!(
        asked.load(Ordering::Relaxed),
        3,
        "the caller is checked for signals before each wait"
    );
}

#[tokio::test(start_paused = true)]
async fn a_non_blocking_lock_fails_at_once_and_an_interrupted_wait_ends_with_eintr() {
    let fs = fs();
    let (_, fh) = new_file(&fs, "f").await;
    fs.meta().st().refuse_locks = u32::MAX;
    let e = fs
        .setlk(&user(), fh, lock(1, LockKind::Read), false, || false)
        .await
        .unwrap_err();
    assert!(matches!(e, FsError::Posix(Errno::EAGAIN)));
    assert_eq!(fs.meta().count("setlk"), 1);

    let waits = AtomicU32::new(0);
    let e = fs
        .setlk(&user(), fh, lock(1, LockKind::Read), true, || {
            waits.fetch_add(1, Ordering::Relaxed) == 5
        })
        .await;
    assert_eq!(crate::errno::errno(&e.unwrap_err()), libc::EINTR);
    assert_eq!(fs.meta().count("setlk"), 7);
}

#[tokio::test]
async fn close_releases_the_locks_of_owners_that_took_some_and_costs_nothing_otherwise() {
    let fs = fs();
    let (ino, fh) = new_file(&fs, "f").await;
    fs.flush(&user(), fh, Some(5)).await.unwrap();
    fs.setlk(&user(), fh, lock(5, LockKind::Unlock), false, || false)
        .await
        .unwrap();
    assert_eq!(fs.meta().count("setlk"), 0, "owner 5 never locked");

    fs.setlk(&user(), fh, lock(6, LockKind::Write), false, || false)
        .await
        .unwrap();
    assert_eq!(fs.meta().st().locks.len(), 1);
    fs.flush(&user(), fh, Some(6)).await.unwrap();
    assert!(fs.meta().st().locks.is_empty());
    assert_eq!(fs.meta().count("setlk"), 2);
    let _ = ino;
}

#[tokio::test]
async fn getlk_reports_the_holder_with_a_pid_only_for_this_client() {
    let fs = fs();
    let (_, fh) = new_file(&fs, "f").await;
    assert_eq!(
        fs.getlk(&user(), fh, lock(1, LockKind::Write)).await.unwrap(),
        None
    );
    fs.meta().st().locks.push((
        OTHER,
        Lock {
            owner: 9,
            pid: 31,
            kind: LockKind::Read,
            start: 0,
            end: 99,
        },
    ));
    let held = fs
        .getlk(&user(), fh, lock(1, LockKind::Write))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (held.pid, held.end),
        (0, 99),
        "another machine's pid means nothing here"
    );
    fs.meta().st().locks = vec![(
        ME,
        Lock {
            owner: 2,
            pid: 31,
            kind: LockKind::Write,
            start: 0,
            end: 9,
        },
    )];
    let held = fs
        .getlk(&user(), fh, lock(1, LockKind::Read))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.pid, 31);
}

#[tokio::test]
async fn release_unlocks_the_flock_owner_the_kernel_names_and_nothing_else() {
    let fs = fs();
    let (_, fh) = new_file(&fs, "f").await;
    let (_, other) = new_file(&fs, "g").await;
    let file_owner = 8;
    let process_owner = Lock {
        start: 0,
        end: 99,
        ..lock(9, LockKind::Read)
    };
    fs.setlk(&user(), fh, lock(file_owner, LockKind::Read), false, || false)
        .await
        .unwrap();
    fs.setlk(&user(), fh, process_owner, false, || false)
        .await
        .unwrap();
    fs.release(&user(), other, None).await.unwrap();
    assert_eq!(
        fs.meta().count("setlk"),
        2,
        "no flock owner named: nothing to unlock"
    );
    fs.release(&user(), fh, Some(file_owner)).await.unwrap();
    let held: Vec<Lock> = fs.meta().st().locks.iter().map(|(_, l)| *l).collect();
    assert_eq!(
        held,
        vec![process_owner],
        "the process's POSIX lock stays until its close"
    );
    assert_eq!(
        fs.meta().count("release"),
        0,
        "server releases wait for the batch"
    );
    assert_eq!(fs.send_releases().await, 2);
    assert_eq!(
        (fs.meta().count("release"), fs.meta().count("release_all")),
        (0, 2),
        "one command per inode bucket (the fake's inode numbers 1, 2, … are in buckets of their own)"
    );
}
