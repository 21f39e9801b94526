//! Replication: pulling a whole chunk from another chunkserver with `Stat` and `Read`
//! requests into a local import, which is verified, made durable and installed only once
//! complete. A copy already here at the wanted version is left as it is.
//!
//! A failure of the source answers [`DataError::Chain`] naming it; local failures answer as
//! usual.

use client::data::DataCallError;
use proto::data::{DataError, DataReply, DataRequest, MAX_IO, Server};

use crate::service::{DataService, blocking, reply_kind};

/// Copies `chunk` at `version` from `from`.
pub async fn pull(svc: &DataService, chunk: u64, version: u32, from: &Server) -> Result<(), DataError> {
    let store = svc.store.clone();
    if blocking(move || store.stat(chunk))
        .await
        .is_ok_and(|(have, _)| have == version)
    {
        return Ok(());
    }
    if from.id == svc.id {
        return Err(DataError::BadRequest(format!(
            "chunkserver {} cannot replicate from itself",
            svc.id
        )));
    }
    let source_failed = |reason: String| DataError::Chain {
        server: from.id,
        reason,
    };
    let len = match ask(svc, from, DataRequest::Stat { chunk }).await? {
        DataReply::Info { version: v, len } if v == version => len,
        other => {
            return Err(source_failed(format!(
                "has no copy at version {version}: {}",
                reply_kind(&other)
            )));
        }
    };
    let store = svc.store.clone();
    let mut import = blocking(move || store.begin_import(chunk, version)).await?;
    let mut offset = 0;
    while offset < len {
        let n = MAX_IO.min(len - offset);
        let read = DataRequest::Read {
            chunk,
            version,
            offset,
            len: n,
        };
        let data = match ask(svc, from, read).await? {
            DataReply::Data(data) if data.len() == n as usize => data,
            other => return Err(source_failed(format!("read answered {}", reply_kind(&other)))),
        };
        let store = svc.store.clone();
        import = blocking(move || store.import_write(&mut import, offset, &data).map(|()| import)).await?;
        svc.metrics.written_bytes.inc_by(u64::from(n));
        offset += n;
    }
    let store = svc.store.clone();
    blocking(move || store.finish_import(import)).await?;
    tracing::info!(chunk, version, from = from.id, bytes = len, "replicated");
    Ok(())
}

/// One request to the source; a transport failure or an error answer blames it.
async fn ask(svc: &DataService, from: &Server, req: DataRequest) -> Result<DataReply, DataError> {
    let reason = match svc.peers.call_within(from, &req, svc.forward_timeout).await {
        Ok(reply) => return Ok(reply),
        Err(DataCallError::Refused { error, .. }) => error.to_string(),
        Err(e) => e.to_string(),
    };
    Err(DataError::Chain {
        server: from.id,
        reason,
    })
}
