//! Waiting in synchronous test code: bounded polling instead of fixed sleeps.

use std::time::{Duration, Instant};

/// Sleeps the calling thread for `d`.
#[allow(clippy::disallowed_methods)] // synchronous test code: there is no runtime thread to block
pub fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// Polls `check` every 20 ms until it holds; panics naming `what` if it does not within
/// `within`.
pub fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        pause(Duration::from_millis(20));
    }
}
