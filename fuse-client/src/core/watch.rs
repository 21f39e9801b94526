//! The metadata watcher: one per mount. It long-polls the metadata servers for changes and
//! turns other clients' changes into [`Invalidation`]s for the kernel's caches, and bumps the
//! data generation of open inodes so the mount's own read-ahead and location caches are
//! dropped. Changes this client made are skipped (the kernel already knows them). When changes
//! may have been lost (the server's log overflowed, or a poll failed), everything the kernel
//! was handed is invalidated.
//!
//! Change sequence numbers are per server, and a server reports the changes of every shard it
//! hosts; so the watcher polls one server per distinct server the shards' leaders are on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::Changes;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;

use crate::core::{Data, Fs, FsError, Meta};

/// Pause before the watcher starts over after a failure.
const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// A kernel cache entry to drop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Invalidation {
    /// The attributes and cached data of an inode.
    Inode(u64),
    /// The directory entry `name` in `parent`.
    Entry {
        /// The directory.
        parent: u64,
        /// The name.
        name: Vec<u8>,
    },
}

impl<M: Meta, D: Data> Fs<M, D> {
    /// What the kernel must forget after `changes`.
    pub fn invalidations(&self, changes: &Changes) -> Vec<Invalidation> {
        if changes.overflow {
            return self.everything();
        }
        let me = self.meta.client_id();
        let mut out = Vec::new();
        for (ino, _) in changes.inodes.iter().filter(|(_, client)| *client != me) {
            self.files.bump(*ino);
            out.push(Invalidation::Inode(*ino));
        }
        for (parent, name, _) in changes.entries.iter().filter(|(_, _, client)| *client != me) {
            out.push(Invalidation::Entry {
                parent: *parent,
                name: name.clone(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|i| seen.insert(i.clone()));
        out
    }

    /// Every inode and entry handed to the kernel (and every open inode's data).
    pub fn everything(&self) -> Vec<Invalidation> {
        for ino in self.files.inodes() {
            self.files.bump(ino);
        }
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(known.len() * 2);
        for (ino, k) in known.iter() {
            out.push(Invalidation::Inode(*ino));
            out.push(Invalidation::Entry {
                parent: k.parent,
                name: k.name.clone(),
            });
        }
        out
    }
}

/// How a poll loop ended.
enum Stop {
    /// The receiver of invalidations is gone: the mount is ending.
    Closed,
    /// A poll failed; changes may have been missed.
    Failed(FsError),
}

/// Watches for changes and sends the invalidations to `out` until `out`'s receiver is dropped.
pub async fn run<M: Meta, D: Data>(fs: Arc<Fs<M, D>>, out: UnboundedSender<Vec<Invalidation>>) {
    loop {
        match targets(&*fs).await {
            Ok(targets) => {
                let mut polls = JoinSet::new();
                for (shard, at, since) in targets {
                    polls.spawn(poll(fs.clone(), shard, at, since, out.clone()));
                }
                match polls.join_next().await {
                    Some(Ok(Stop::Closed)) => return,
                    Some(Ok(Stop::Failed(e))) => {
                        tracing::warn!(error = %e, "metadata watch failed; starting over")
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "metadata watch task ended; starting over"),
                    None => {}
                }
                polls.abort_all();
                if out.send(fs.everything()).is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "metadata watch cannot start"),
        }
        if out.is_closed() {
            return;
        }
        tokio::time::sleep(RESTART_PAUSE).await;
    }
}

/// One (shard, server, position) per distinct server the shards' leaders are on.
async fn targets<M: Meta, D: Data>(fs: &Fs<M, D>) -> Result<Vec<(u32, SocketAddr, u64)>, FsError> {
    let mut out: Vec<(u32, SocketAddr, u64)> = Vec::new();
    for shard in fs.meta.shards().await? {
        let (at, changes) = fs.meta.watch(shard, None, 0).await?;
        if !out.iter().any(|t| t.1 == at) {
            out.push((shard, at, changes.next));
        }
    }
    Ok(out)
}

/// Polls server `at` from position `since` until a poll fails or `out` closes.
async fn poll<M: Meta, D: Data>(
    fs: Arc<Fs<M, D>>,
    shard: u32,
    at: SocketAddr,
    mut since: u64,
    out: UnboundedSender<Vec<Invalidation>>,
) -> Stop {
    loop {
        let changes = match fs.meta.watch(shard, Some(at), since).await {
            Ok((_, c)) => c,
            Err(e) => return Stop::Failed(e.into()),
        };
        since = changes.next;
        let invalidations = fs.invalidations(&changes);
        if !invalidations.is_empty() && out.send(invalidations).is_err() {
            return Stop::Closed;
        }
        if out.is_closed() {
            return Stop::Closed;
        }
    }
}
