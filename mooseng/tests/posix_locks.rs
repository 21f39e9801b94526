//! Locks across mounts: `flock(2)` and `fcntl(2)` record locks taken through one mount hold
//! against another mount of the same file system, go away with the open file (flock) or the
//! process's close (fcntl), and `F_GETLK` names the conflicting range. Pins the deviations of
//! emulating flock with POSIX locks (as Linux NFS does): flock and fcntl locks on one file
//! conflict, and an exclusive flock needs a descriptor open for writing.
//!
//! Tier: fuse (real `mooseng` processes and two real FUSE mounts; needs `/dev/fuse`).

mod posix;

use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::time::Duration;

use libc::{F_RDLCK, F_UNLCK, F_WRLCK, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, O_RDONLY, O_RDWR, O_WRONLY};
use posix::sys::{self, flock, getlk, setlk};
use posix::{Mount, c, errno, eventually};

/// Opens `name` under `m` with `flags`.
fn open(m: &Mount, name: &str, flags: i32) -> OwnedFd {
    sys::open(&c(m.join(name)), flags, 0).unwrap_or_else(|e| panic!("open {name}: {e}"))
}

#[test]
fn locks_hold_across_mounts() {
    if !testkit::fuse_or_skip() {
        return;
    }
    let (_cluster, mut mounts) = posix::start(&["", ""]);
    let (a, b) = (&mounts[0], &mounts[1]);
    flock_excludes_other_open_files_across_mounts(a, b);
    flock_goes_with_the_open_file(a, b);
    blocking_flock_waits_for_the_holder(a, b);
    fcntl_ranges_conflict_across_mounts(a, b);
    fcntl_locks_go_with_any_close_of_the_process(a, b);
    deviations_of_flock_emulated_with_posix_locks(a, b);
    for m in &mut mounts {
        assert!(m.unmount(), "unmounts cleanly");
    }
}

fn flock_excludes_other_open_files_across_mounts(a: &Mount, b: &Mount) {
    std::fs::write(a.join("flock"), b"x").unwrap();
    let fa = open(a, "flock", O_RDWR);
    let fb = open(b, "flock", O_RDWR);
    flock(&fa, LOCK_EX | LOCK_NB).expect("the first exclusive flock");
    assert_eq!(
        errno(flock(&fb, LOCK_EX | LOCK_NB)),
        libc::EWOULDBLOCK,
        "exclusive vs exclusive"
    );
    assert_eq!(
        errno(flock(&fb, LOCK_SH | LOCK_NB)),
        libc::EWOULDBLOCK,
        "exclusive vs shared"
    );
    let fa2 = open(a, "flock", O_RDWR);
    assert_eq!(
        errno(flock(&fa2, LOCK_SH | LOCK_NB)),
        libc::EWOULDBLOCK,
        "another open file of the same mount and process"
    );
    flock(&fa, LOCK_UN).unwrap();
    flock(&fb, LOCK_EX | LOCK_NB).expect("free after LOCK_UN");
    assert_eq!(
        errno(flock(&fa, LOCK_SH | LOCK_NB)),
        libc::EWOULDBLOCK,
        "now mount B holds it"
    );
    flock(&fb, LOCK_SH | LOCK_NB).expect("converting to shared");
    flock(&fa, LOCK_SH | LOCK_NB).expect("shared locks share");
    assert_eq!(
        errno(flock(&fa2, LOCK_EX | LOCK_NB)),
        libc::EWOULDBLOCK,
        "two shared holders"
    );
    flock(&fa, LOCK_UN).unwrap();
    flock(&fb, LOCK_UN).unwrap();
    flock(&fa2, LOCK_EX | LOCK_NB).expect("all unlocked");
}

fn flock_goes_with_the_open_file(a: &Mount, b: &Mount) {
    std::fs::write(a.join("flock-close"), b"x").unwrap();
    let fa = open(a, "flock-close", O_RDWR);
    let fb = open(b, "flock-close", O_RDWR);
    flock(&fa, LOCK_EX | LOCK_NB).unwrap();
    let dup = fa.try_clone().expect("dup");
    drop(dup);
    assert_eq!(
        errno(flock(&fb, LOCK_EX | LOCK_NB)),
        libc::EWOULDBLOCK,
        "closing a duplicate keeps the open file's lock"
    );
    drop(fa);
    // The kernel sends the release (which unlocks) after close(2) returned.
    eventually("the lock released with the open file", || {
        flock(&fb, LOCK_EX | LOCK_NB).is_ok()
    });
}

fn blocking_flock_waits_for_the_holder(a: &Mount, b: &Mount) {
    std::fs::write(a.join("flock-wait"), b"x").unwrap();
    let fa = open(a, "flock-wait", O_RDWR);
    let fb = open(b, "flock-wait", O_RDWR);
    flock(&fa, LOCK_EX).unwrap();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let r = flock(&fb, LOCK_EX);
        tx.send(r.is_ok()).unwrap();
        fb
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(500)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "the waiter blocks while mount A holds the lock"
    );
    flock(&fa, LOCK_UN).unwrap();
    assert_eq!(
        rx.recv_timeout(posix::SEEN_WITHIN),
        Ok(true),
        "granted after the unlock"
    );
    let fb = waiter.join().unwrap();
    assert_eq!(errno(flock(&fa, LOCK_SH | LOCK_NB)), libc::EWOULDBLOCK);
    drop(fb);
}

fn fcntl_ranges_conflict_across_mounts(a: &Mount, b: &Mount) {
    std::fs::write(a.join("ranges"), vec![0u8; 300]).unwrap();
    let fa = open(a, "ranges", O_RDWR);
    let fb = open(b, "ranges", O_RDWR);
    setlk(&fa, F_WRLCK, 0, 100).expect("write-lock bytes 0..100");
    assert_eq!(
        errno(setlk(&fb, F_WRLCK, 50, 10)),
        libc::EAGAIN,
        "overlapping write lock"
    );
    assert_eq!(
        errno(setlk(&fb, F_RDLCK, 99, 1)),
        libc::EAGAIN,
        "read lock on the last byte"
    );
    setlk(&fb, F_RDLCK, 100, 100).expect("the bytes after do not overlap");
    assert_eq!(
        getlk(&fb, F_WRLCK, 0, 0).unwrap(),
        (F_WRLCK, 0, 100, 0),
        "F_GETLK names mount A's range; a pid of another client is reported as 0"
    );
    assert_eq!(
        getlk(&fa, F_WRLCK, 150, 10).unwrap(),
        (F_RDLCK, 100, 100, 0),
        "B's read lock"
    );
    assert_eq!(
        getlk(&fa, F_RDLCK, 150, 10).unwrap().0,
        F_UNLCK,
        "read locks share"
    );
    assert_eq!(
        getlk(&fa, F_WRLCK, 0, 100).unwrap().0,
        F_UNLCK,
        "own locks are no conflict"
    );
    assert_eq!(getlk(&fb, F_WRLCK, 200, 0).unwrap().0, F_UNLCK, "past both locks");
    setlk(&fa, F_UNLCK, 40, 20).expect("unlock the middle");
    setlk(&fb, F_WRLCK, 45, 10).expect("the hole is free");
    assert_eq!(
        errno(setlk(&fb, F_WRLCK, 30, 15)),
        libc::EAGAIN,
        "bytes 30..40 are still A's"
    );
    assert_eq!(
        getlk(&fb, F_WRLCK, 60, 0).unwrap(),
        (F_WRLCK, 60, 40, 0),
        "A's split-off tail"
    );
}

fn fcntl_locks_go_with_any_close_of_the_process(a: &Mount, b: &Mount) {
    std::fs::write(a.join("closing"), b"x").unwrap();
    let fa = open(a, "closing", O_RDWR);
    let fb = open(b, "closing", O_RDWR);
    setlk(&fa, F_WRLCK, 0, 0).unwrap();
    assert_eq!(errno(setlk(&fb, F_RDLCK, 0, 1)), libc::EAGAIN);
    drop(open(a, "closing", O_RDONLY));
    setlk(&fb, F_RDLCK, 0, 1).expect("closing any descriptor of the file drops the process's locks");
    drop(fa);
}

/// Deviations (as on NFS): flock is a whole-file POSIX lock owned by the open file.
fn deviations_of_flock_emulated_with_posix_locks(a: &Mount, b: &Mount) {
    std::fs::write(a.join("mixed"), b"x").unwrap();
    let fa = open(a, "mixed", O_RDWR);
    let fb = open(b, "mixed", O_RDWR);
    flock(&fa, LOCK_EX | LOCK_NB).unwrap();
    assert_eq!(
        errno(setlk(&fb, F_WRLCK, 0, 1)),
        libc::EAGAIN,
        "deviation: an fcntl lock conflicts with a flock lock (on Linux they are independent)"
    );
    let fa2 = open(a, "mixed", O_RDWR);
    assert_eq!(
        errno(setlk(&fa2, F_RDLCK, 0, 1)),
        libc::EAGAIN,
        "deviation: even within one process"
    );
    flock(&fa, LOCK_UN).unwrap();

    let ro = open(a, "mixed", O_RDONLY);
    assert_eq!(
        errno(flock(&ro, LOCK_EX | LOCK_NB)),
        libc::EBADF,
        "deviation: an exclusive flock needs a descriptor open for writing"
    );
    flock(&ro, LOCK_SH | LOCK_NB).expect("a shared flock on a read-only descriptor");
    flock(&ro, LOCK_UN).unwrap();
    let wo = open(a, "mixed", O_WRONLY);
    assert_eq!(
        errno(flock(&wo, LOCK_SH | LOCK_NB)),
        libc::EBADF,
        "deviation: a shared flock needs a descriptor open for reading"
    );
}
