//! What the POSIX semantics suite (`tests/posix_*.rs`) shares: a file system with mounts,
//! errno extraction, file times, bounded waits, raw system calls ([`sys`]) and running calls as
//! another user ([`user`]).
//!
//! Each suite file starts one cluster (a cluster costs seconds) and runs its checks in order
//! in one test, each check in its own directory.

#![allow(dead_code)] // each suite file uses a different part of the helpers
#![allow(unsafe_code)] // raw system calls (libc) and a pre-exec hook, for exact errnos

pub mod sys;
pub mod user;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

pub use testkit::{Cluster, Mount};

/// A whole file system (3 metadata servers, 3 chunkservers) with one mount per entry of
/// `options` (`-o` strings, empty for the defaults).
pub fn start(options: &[&str]) -> (Cluster, Vec<Mount>) {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_mooseng"));
    let cluster = Cluster::start_fs(bin, 3, 3, 2);
    let mounts = options.iter().map(|o| cluster.mount(o)).collect();
    (cluster, mounts)
}

/// `path` as a C string.
pub fn c(path: impl AsRef<Path>) -> CString {
    CString::new(path.as_ref().as_os_str().as_bytes()).expect("no NUL in test paths")
}

/// The errno of a failed call; 0 if it succeeded (so comparing with an errno fails).
pub fn errno<T>(r: io::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

/// A file time in nanoseconds since the epoch.
pub type Nanos = i128;

/// The three times of a file, as stat(2) reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub atime: Nanos,
    pub mtime: Nanos,
    pub ctime: Nanos,
}

/// The times of `path` (not following a final symlink).
pub fn times(path: impl AsRef<Path>) -> Times {
    let m = std::fs::symlink_metadata(path.as_ref())
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.as_ref().display()));
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    Times {
        atime: ns(m.atime(), m.atime_nsec()),
        mtime: ns(m.mtime(), m.mtime_nsec()),
        ctime: ns(m.ctime(), m.ctime_nsec()),
    }
}

/// How long another mount may take to see a change: the kernel caches attributes and names
/// for up to 1 s by default, unless the change feed invalidates them sooner.
pub const SEEN_WITHIN: Duration = Duration::from_secs(5);

/// Waits until `check` holds, for at most [`SEEN_WITHIN`].
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < SEEN_WITHIN,
            "{what}: not seen within {SEEN_WITHIN:?}"
        );
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// Waits until `get` returns `want`, for at most [`SEEN_WITHIN`].
pub fn eventually_eq<T: PartialEq + std::fmt::Debug>(what: &str, want: &T, mut get: impl FnMut() -> T) {
    let started = Instant::now();
    loop {
        let got = get();
        if got == *want {
            return;
        }
        assert!(
            started.elapsed() < SEEN_WITHIN,
            "{what}: still {got:?} after {SEEN_WITHIN:?}, want {want:?}"
        );
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// Waits until the coarse clock (which stamps local file times) moves on, so that an operation
/// started after it gets times later than any taken before, locally and on the metadata
/// servers (whose clock is at most one coarse tick ahead of the coarse clock).
pub fn tick() {
    let (start, at) = (sys::coarse_now(), Instant::now());
    while sys::coarse_now() == start {
        assert!(
            at.elapsed() < Duration::from_secs(1),
            "the coarse clock does not move"
        );
        std::thread::park_timeout(Duration::from_millis(1));
    }
}
