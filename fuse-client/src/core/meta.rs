//! The metadata service as the core sees it: [`Meta`], implemented by [`client::MdsClient`]
//! (and by an in-memory fake in the unit tests).

use std::future::Future;
use std::net::SocketAddr;

use client::{ClientError, MdsClient, ReadFrom};
use proto::fs::Cred;
use proto::{Changes, FsOp, FsReply};

/// A metadata service session.
pub trait Meta: Send + Sync + 'static {
    /// This session's client id: the metadata servers stamp it on the changes it makes.
    fn client_id(&self) -> u64;

    /// Runs `op` for `cred`; reads are served from `from` (mutations always go to the leader).
    /// `ClientError::Fs` is a final POSIX answer; anything else means retries ran out.
    fn fs(
        &self,
        cred: &Cred,
        op: FsOp,
        from: ReadFrom,
    ) -> impl Future<Output = Result<FsReply, ClientError>> + Send;

    /// Every shard of the namespace.
    fn shards(&self) -> impl Future<Output = Result<Vec<u32>, ClientError>> + Send;

    /// Waits for the changes after `since` on a server of `shard` (on `at` when given, so
    /// that a watcher keeps polling the server whose sequence numbers it holds).
    fn watch(
        &self,
        shard: u32,
        at: Option<SocketAddr>,
        since: u64,
    ) -> impl Future<Output = Result<(SocketAddr, Changes), ClientError>> + Send;
}

impl Meta for MdsClient {
    fn client_id(&self) -> u64 {
        self.id()
    }

    fn fs(
        &self,
        cred: &Cred,
        op: FsOp,
        from: ReadFrom,
    ) -> impl Future<Output = Result<FsReply, ClientError>> + Send {
        MdsClient::fs(self, cred, op, from)
    }

    async fn shards(&self) -> Result<Vec<u32>, ClientError> {
        Ok(self
            .topology()
            .await?
            .table
            .shards
            .iter()
            .map(|s| s.id.0)
            .collect())
    }

    fn watch(
        &self,
        shard: u32,
        at: Option<SocketAddr>,
        since: u64,
    ) -> impl Future<Output = Result<(SocketAddr, Changes), ClientError>> + Send {
        MdsClient::watch(self, shard, at, since)
    }
}
