//! Access times: the update a read makes, following Linux's relatime rule
//! ([`proto::fs::Attr::relatime_due`]). Only atime changes; ctime does not (an access is not a
//! status change), and no permission beyond the read handle is needed (the reader need not
//! own or be able to write the file).

use crdt::model::Attr as RecAttr;
use proto::{Errno, FsReply};

use crate::fs::command::Effects;
use crate::fs::outcome::OpResult;
use crate::fs::state::FsState;
use crate::fs::tx::Tx;

/// `ino` was read through `handle`, which must be the asking client's and open on `ino` for
/// reading (`EBADF`): atime becomes the command's time if relatime says it is due. Returns
/// the attributes after.
pub fn accessed<S: FsState>(tx: Tx<'_, S>, ino: u64, handle: u64) -> OpResult<(Effects, FsReply)> {
    let node = tx.node(ino)?;
    let info = tx.state.handle(tx.client, handle)?;
    if info.is_none_or(|h| h.ino != ino || !h.read) {
        return Err(Errno::EBADF.into());
    }
    let attr = node.attr();
    if !attr.relatime_due(tx.now) {
        return Ok((tx.finish(), FsReply::Attr(attr)));
    }
    let now = tx.now;
    let (effects, attr) = tx.commit_attr(node.ino, |edit| {
        edit.set_attrs(node.ino, vec![RecAttr::Atime(now)])
    })?;
    Ok((effects, FsReply::Attr(attr)))
}
