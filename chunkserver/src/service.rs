//! The data port's handler: one [`DataRequest`] in, one [`DataReply`] out.
//!
//! Writes, truncations and syncs carry the rest of their replication chain: the local change
//! and the forwarding to `chain[0]` (with `chain[1..]`) run together, and the answer is
//! `Done` only when both are. A failure further down answers [`DataError::Chain`] naming the
//! server that failed; the local change stays (the client retries under a new version).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use client::data::{DataCallError, DataClient};
use proto::data::{DataError, DataReply, DataRequest, Server};
use tokio::sync::Semaphore;

use crate::metrics::{Metrics, error_kind};
use crate::replicate;
use crate::storage::Store;

/// Everything a data request needs.
#[derive(Debug, Clone)]
pub struct DataService {
    /// This chunkserver.
    pub id: u64,
    /// Local copies.
    pub store: Arc<Store>,
    /// Other chunkservers.
    pub peers: Arc<DataClient>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Time a forwarded request has, per server left in the chain.
    pub forward_timeout: Duration,
    /// Bounds the replications running at once.
    pub replications: Arc<Semaphore>,
}

/// The next server of a chain and what to send it.
struct Hop {
    to: Server,
    req: DataRequest,
    timeout: Duration,
}

impl DataService {
    /// Handles one request.
    pub async fn handle(self, req: DataRequest) -> DataReply {
        let operation = operation(&req);
        self.metrics.operation(operation);
        match self.dispatch(req).await {
            Ok(reply) => reply,
            Err(e) => {
                self.metrics.error(error_kind(&e));
                tracing::debug!(operation, error = %e, "data request failed");
                DataReply::Error(e)
            }
        }
    }

    async fn dispatch(&self, req: DataRequest) -> Result<DataReply, DataError> {
        let store = self.store.clone();
        match req {
            DataRequest::Read {
                chunk,
                version,
                offset,
                len,
            } => {
                let data = blocking(move || store.read(chunk, version, offset, len)).await?;
                self.metrics.read_bytes.inc_by(data.len() as u64);
                Ok(DataReply::Data(data))
            }
            DataRequest::Write {
                chunk,
                version,
                prev_version,
                offset,
                data,
                chain,
            } => {
                let hop = self.next_hop(chain, |rest| DataRequest::Write {
                    chunk,
                    version,
                    prev_version,
                    offset,
                    data: data.clone(),
                    chain: rest,
                })?;
                let len = data.len() as u64;
                let local = async {
                    blocking(move || store.write(chunk, prev_version, version, offset, &data)).await?;
                    self.metrics.written_bytes.inc_by(len);
                    Ok(())
                };
                self.along(hop, local).await
            }
            DataRequest::Truncate {
                chunk,
                version,
                prev_version,
                len,
                chain,
            } => {
                let hop = self.next_hop(chain, |rest| DataRequest::Truncate {
                    chunk,
                    version,
                    prev_version,
                    len,
                    chain: rest,
                })?;
                let local = blocking(move || store.truncate(chunk, prev_version, version, len));
                self.along(hop, local).await
            }
            DataRequest::Sync {
                chunk,
                version,
                chain,
            } => {
                let hop = self.next_hop(chain, |rest| DataRequest::Sync {
                    chunk,
                    version,
                    chain: rest,
                })?;
                self.along(hop, blocking(move || store.sync(chunk, version)))
                    .await
            }
            DataRequest::Replicate { chunk, version, from } => {
                let _permit = self
                    .replications
                    .acquire()
                    .await
                    .map_err(|_| DataError::Io("shutting down".into()))?;
                replicate::pull(self, chunk, version, &from).await?;
                Ok(DataReply::Done)
            }
            DataRequest::Delete { chunk, version } => {
                blocking(move || store.delete(chunk, version)).await?;
                Ok(DataReply::Done)
            }
            DataRequest::Stat { chunk } => {
                let (version, len) = blocking(move || store.stat(chunk)).await?;
                Ok(DataReply::Info { version, len })
            }
        }
    }

    /// The request for the next server of `chain`, if any.
    fn next_hop(
        &self,
        mut chain: Vec<Server>,
        request: impl FnOnce(Vec<Server>) -> DataRequest,
    ) -> Result<Option<Hop>, DataError> {
        if chain.iter().any(|s| s.id == self.id) {
            return Err(DataError::BadRequest(format!(
                "the chain lists chunkserver {} again",
                self.id
            )));
        }
        if chain.is_empty() {
            return Ok(None);
        }
        let to = chain.remove(0);
        // Each server waits longer than the one after it, so the failure is blamed right.
        let timeout = self.forward_timeout * (chain.len() as u32 + 1);
        Ok(Some(Hop {
            to,
            req: request(chain),
            timeout,
        }))
    }

    /// Runs the local change and the forwarding together; `Done` when both succeed.
    async fn along(
        &self,
        hop: Option<Hop>,
        local: impl Future<Output = Result<(), DataError>>,
    ) -> Result<DataReply, DataError> {
        match hop {
            None => local.await?,
            Some(hop) => {
                let (here, further) = tokio::join!(local, self.forward(hop));
                here?;
                further?;
            }
        }
        Ok(DataReply::Done)
    }

    async fn forward(&self, hop: Hop) -> Result<(), DataError> {
        let failed = |reason: String| DataError::Chain {
            server: hop.to.id,
            reason,
        };
        match self.peers.call_within(&hop.to, &hop.req, hop.timeout).await {
            Ok(DataReply::Done) => Ok(()),
            Err(DataCallError::Refused {
                error: e @ DataError::Chain { .. },
                ..
            }) => Err(e),
            Err(DataCallError::Refused { error, .. }) => Err(failed(error.to_string())),
            Ok(other) => Err(failed(format!("unexpected answer: {}", reply_kind(&other)))),
            Err(e) => Err(failed(e.to_string())),
        }
    }
}

/// Runs a storage call on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DataError> + Send + 'static,
) -> Result<T, DataError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(DataError::Io(format!("storage task failed: {e}"))))
}

/// The `operation` label of a request.
fn operation(req: &DataRequest) -> &'static str {
    match req {
        DataRequest::Read { .. } => "read",
        DataRequest::Write { .. } => "write",
        DataRequest::Truncate { .. } => "truncate",
        DataRequest::Sync { .. } => "sync",
        DataRequest::Replicate { .. } => "replicate",
        DataRequest::Delete { .. } => "delete",
        DataRequest::Stat { .. } => "stat",
    }
}

/// A short description of a reply (never its data).
pub fn reply_kind(reply: &DataReply) -> String {
    match reply {
        DataReply::Data(d) => format!("{} bytes of data", d.len()),
        DataReply::Done => "done".into(),
        DataReply::Info { version, len } => format!("version {version}, {len} bytes"),
        DataReply::Error(e) => e.to_string(),
    }
}
