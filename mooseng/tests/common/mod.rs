//! The integration-test view of `testkit`: clusters run this package's `mooseng` binary.

#![allow(dead_code, unused_imports)] // each test binary uses a different part of the harness

use std::path::PathBuf;

pub use testkit::{Cluster, list, lookup, mkdir, root};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mooseng"))
}

/// Starts a cluster of `n` servers running this package's `mooseng`.
pub fn start(n: u64, replicas: usize, flags: &[&str]) -> Cluster {
    Cluster::start(bin(), None, n, replicas, flags)
}
