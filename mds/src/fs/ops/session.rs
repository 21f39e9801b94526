//! Ending a client's session: when a client has been silent for longer than the session
//! timeout (it crashed, or lost the metadata tier), the shard's leader proposes
//! [`proto::FsOp::EndSession`] on its behalf. Every handle the client holds in the shard is
//! closed — a file whose last name is gone and whose only handles were the client's is
//! deleted, as the client's releases would have — and every lock it holds is dropped, so
//! others waiting for those locks get them.

use std::collections::BTreeMap;

use crdt::model::Ino;
use proto::FsReply;

use crate::fs::command::Effects;
use crate::fs::ops::open;
use crate::fs::outcome::OpResult;
use crate::fs::state::FsState;
use crate::fs::tx::Tx;

/// Ends the session of the command's client in this shard.
pub fn end<S: FsState>(mut tx: Tx<'_, S>) -> OpResult<(Effects, FsReply)> {
    let (state, client) = (tx.state, tx.client);
    let mut closing: BTreeMap<Ino, u64> = BTreeMap::new();
    for (handle, info) in state.client_handles(client)? {
        tx.close_handle(handle, Ino(info.ino));
        *closing.entry(Ino(info.ino)).or_default() += 1;
    }
    for (ino, held) in state.all_locks()? {
        let kept: Vec<_> = held.iter().filter(|h| h.client != client).copied().collect();
        if kept.len() != held.len() {
            tx.set_locks(ino, kept);
        }
    }
    open::delete_orphans(tx, closing)
}
