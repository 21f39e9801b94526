//! Server-handle releases, sent in batches.
//!
//! The kernel sends `release` after the last `close` of an open file and does not wait for
//! it. Sent at once, each release is a raft proposal of its own, and the next `create` or
//! `open` of the same process queues behind its round. So [`Fs::release`] lands the file's
//! buffered writes and drops its locks at once (those are visible to others), but only
//! queues the release of the server handle; [`Fs::send_releases`] sends every queued release
//! together (they share one round), every [`RELEASE_INTERVAL`] from the mount and before it
//! unmounts. Until then the server keeps the handle open: an unlinked file lives that much
//! longer. A release that fails is logged; the server drops the handle with the session.

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
    /// Sends every queued release, together; returns how many were sent.
    pub async fn send_releases(&self) -> usize {
        let queued = self.releases.take();
        let sent = join_all(queued.iter().map(|q| {
            let op = FsOp::Release {
                ino: q.ino,
                handle: q.handle,
            };
            self.ask_done(&q.cred, op, "release")
        }))
        .await;
        for (q, result) in queued.iter().zip(sent) {
            if let Err(e) = result {
                tracing::warn!(ino = q.ino, handle = q.handle, error = %e, "release failed; the server drops the handle with this mount's session");
            }
        }
        queued.len()
    }
}
