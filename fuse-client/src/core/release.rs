//! Server-handle releases, sent in batches.
//!
//! The kernel sends `release` after the last `close` of an open file and does not wait for
//! it. Sent at once, each release is a raft proposal of its own, and the next `create` or
//! `open` of the same process queues behind its round. So [`Fs::release`] lands the file's
//! buffered writes and drops its locks at once (those are visible to others), but only
//! queues the release of the server handle; [`Fs::send_releases`] sends the queued releases
//! every [`RELEASE_INTERVAL`] from the mount and before it unmounts, one `ReleaseAll` command
//! per inode bucket (a bucket lives on one shard), so a burst of closes costs one raft entry
//! per shard instead of one each. Until then the server keeps the handle open: an unlinked
//! file lives that much longer. A release that fails is logged; the server drops the handle
//! with the session.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use client::join_all;

use proto::FsOp;
use proto::fs::Cred;

use crate::core::{Data, Fs, Meta};

/// How often the mount sends the queued releases.
pub const RELEASE_INTERVAL: Duration = Duration::from_millis(50);

/// A server handle to release.
#[derive(Debug)]
struct Queued {
    cred: Cred,
    ino: u64,
    handle: u64,
}

/// The releases not sent yet.
#[derive(Debug, Default)]
pub(crate) struct Releases(Mutex<Vec<Queued>>);

impl Releases {
    pub(crate) fn queue(&self, cred: &Cred, ino: u64, handle: u64) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.push(Queued {
            cred: cred.clone(),
            ino,
            handle,
        });
    }

    fn take(&self) -> Vec<Queued> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<M: Meta, D: Data> Fs<M, D> {
    /// Sends every queued release, one command per inode bucket; returns how many were sent.
    pub async fn send_releases(&self) -> usize {
        let queued = self.releases.take();
        let mut batches: BTreeMap<u16, Vec<(u64, u64)>> = BTreeMap::new();
        for q in &queued {
            batches
                .entry(shardmap::bucket_of(q.ino).0)
                .or_default()
                .push((q.ino, q.handle));
        }
        // A handle belongs to the client, whoever opened it: any queued credentials do.
        let Some(cred) = queued.first().map(|q| &q.cred) else {
            return 0;
        };
        let sent = join_all(batches.values().map(|handles| {
            let op = FsOp::ReleaseAll {
                handles: handles.clone(),
            };
            self.ask_done(cred, op, "release")
        }))
        .await;
        for (handles, result) in batches.values().zip(sent) {
            if let Err(e) = result {
                tracing::warn!(handles = handles.len(), error = %e, "release failed; the server drops the handles with this mount's session");
            }
        }
        queued.len()
    }
}
