use proto::fs::{FsOp, Lock, LockKind};
use proto::{Errno, FsReply};

use super::*;
use crate::fs::state::FsState;

fn lock(owner: u64, kind: LockKind, start: u64, end: u64) -> Lock {
    Lock {
        owner,
        pid: 40 + owner as u32,
        kind,
        start,
        end,
    }
}

fn set(fs: &mut Fs, ino: u64, handle: u64, lock: Lock, flock: bool) -> Result<FsReply, Errno> {
    fs.exec(
        &root(),
        FsOp::SetLk {
            ino,
            handle,
            lock,
            flock,
        },
    )
}

fn get(fs: &Fs, ino: u64, lock: Lock) -> Option<(u64, Lock)> {
    match fs.read(&root(), FsOp::GetLk { ino, lock }).unwrap() {
        FsReply::Lock(l) => l,
        other => panic!("expected a lock, got {other:?}"),
    }
}

#[test]
fn record_locks_of_two_clients_conflict_and_getlk_names_the_holder() {
    let mut fs = Fs::new();
    let (f, _) = fs.create(&root(), ROOT, "f", 0o666).unwrap();
    let h7 = fs.open(&root(), f.ino, true, true).unwrap();
    fs.client = 8;
    let h8 = fs.open(&root(), f.ino, true, true).unwrap();
    fs.client = 7;
    set(&mut fs, f.ino, h7, lock(1, LockKind::Write, 0, 99), false).unwrap();
    fs.client = 8;
    assert_eq!(
        set(&mut fs, f.ino, h8, lock(1, LockKind::Read, 50, 50), false),
        Err(Errno::EAGAIN)
    );
    set(&mut fs, f.ino, h8, lock(1, LockKind::Write, 100, 199), false).unwrap();
    assert_eq!(
        get(&fs, f.ino, lock(1, LockKind::Read, 10, 10)),
        Some((7, lock(1, LockKind::Write, 0, 99)))
    );
    assert_eq!(
        get(&fs, f.ino, lock(1, LockKind::Read, 100, 100)),
        None,
        "own lock"
    );
    fs.client = 7;
    set(&mut fs, f.ino, h7, lock(1, LockKind::Unlock, 0, u64::MAX), false).unwrap();
    fs.client = 8;
    set(&mut fs, f.ino, h8, lock(1, LockKind::Read, 50, 50), false).unwrap();
}

#[test]
fn a_record_lock_needs_a_handle_open_in_the_matching_mode() {
    let mut fs = Fs::new();
    let (f, _) = fs.create(&root(), ROOT, "f", 0o666).unwrap();
    let ro = fs.open(&root(), f.ino, true, false).unwrap();
    assert_eq!(
        set(&mut fs, f.ino, ro, lock(1, LockKind::Write, 0, 9), false),
        Err(Errno::EBADF)
    );
    assert_eq!(
        set(&mut fs, f.ino, ro + 100, lock(1, LockKind::Read, 0, 9), false),
        Err(Errno::EBADF)
    );
    assert_eq!(
        set(&mut fs, f.ino, ro, lock(1, LockKind::Read, 9, 0), false),
        Err(Errno::EINVAL)
    );
    set(&mut fs, f.ino, ro, lock(1, LockKind::Read, 0, 9), false).unwrap();
}

#[test]
fn flock_locks_belong_to_the_handle_and_go_with_its_release() {
    let mut fs = Fs::new();
    let (f, _) = fs.create(&root(), ROOT, "f", 0o666).unwrap();
    let a = fs.open(&root(), f.ino, true, false).unwrap();
    let b = fs.open(&root(), f.ino, true, false).unwrap();
    set(&mut fs, f.ino, a, lock(1, LockKind::Write, 0, 0), true).unwrap();
    assert_eq!(
        set(&mut fs, f.ino, b, lock(1, LockKind::Write, 0, 0), true),
        Err(Errno::EAGAIN),
        "two open files of one process still conflict under flock"
    );
    set(&mut fs, f.ino, b, lock(1, LockKind::Read, 0, 0), false).unwrap();
    fs.release(f.ino, a).unwrap();
    assert!(fs.state.locks(Ino(f.ino)).unwrap().iter().all(|h| !h.flock));
    set(&mut fs, f.ino, b, lock(1, LockKind::Write, 0, 0), true).unwrap();
}
