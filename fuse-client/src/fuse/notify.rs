//! Applies the watcher's invalidations to the kernel's caches through the fuser notifier, on
//! a thread of its own: a notification can wait for kernel locks that a request in progress
//! holds, which must never stall a runtime thread that request's reply may need.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::thread::JoinHandle;

use fuser::{INodeNo, Notifier};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::core::Invalidation;

/// Starts the thread; it ends when every sender of `rx` is gone.
pub(crate) fn spawn(
    notifier: Notifier,
    mut rx: UnboundedReceiver<Vec<Invalidation>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("mooseng-inval".into())
        .spawn(move || {
            while let Some(batch) = rx.blocking_recv() {
                for inv in batch {
                    let sent = match &inv {
                        // Offset 0, length 0: the attributes and every cached page.
                        Invalidation::Inode(ino) => notifier.inval_inode(INodeNo(*ino), 0, 0),
                        Invalidation::Entry { parent, name } => {
                            notifier.inval_entry(INodeNo(*parent), OsStr::from_bytes(name))
                        }
                    };
                    if let Err(e) = sent {
                        tracing::debug!(?inv, error = %e, "kernel refused an invalidation");
                    }
                }
            }
        })
}
