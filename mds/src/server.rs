//! The client port: file-system operations, topology, administration and chunkserver reports.
//! Mutations go through the shard's raft leader; reads are served here, linearizably through
//! the read index or from any replica that has applied the client's session token.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crdt::Timestamp;
use crdt::model::FileTime;
use proto::admin::{AdminReply, AdminRequest};
use proto::chunk::{CsReply, CsRequest};
use proto::{
    ClientRequest, ClientResponse, Errno, FsOp, FsReply, ReadMode, Request, Response, RpcError, SessionToken,
    Topology,
};
use shardmap::{ShardId, ShardTable};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::error::StoreError;
use crate::fs::{self, Command, ShardCtx};
use crate::host::{HostMsg, Shared};
use crate::keeper::Keeper;
use crate::metrics::{Metrics, Outcome};
use crate::raft::group::Waiter;
use crate::sessions::Sessions;
use crate::store::{ShardView, Store};

/// How long a session read waits for this replica to catch up before answering
/// `NotCaughtUp`.
const CATCH_UP_WAIT: Duration = Duration::from_millis(500);

/// How long a watch request waits for changes before answering with none.
const WATCH_WAIT: Duration = Duration::from_secs(10);

/// The client-port request handler.
#[derive(Clone)]
pub struct Server {
    /// The store.
    pub store: Store,
    /// Host publication.
    pub shared: Arc<Shared>,
    /// The host thread's inbox.
    pub host: Sender<HostMsg>,
    /// The shard table.
    pub table: Arc<ShardTable>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// How long a request may wait for raft.
    pub timeout: Duration,
    /// Chunkserver liveness and orders.
    pub keeper: Arc<Keeper>,
    /// When each client was last heard.
    pub sessions: Arc<Sessions>,
    /// The session timeout clients are told.
    pub session_timeout: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

fn internal(e: StoreError) -> RpcError {
    match e {
        StoreError::MapFull { .. } | StoreError::DiskFull { .. } => RpcError::Fs(Errno::ENOSPC),
        e => RpcError::Internal(e.to_string()),
    }
}

impl Server {
    /// Answers one request.
    pub async fn handle(self, req: Request) -> Response {
        match req {
            Request::Fs(r) => Response::Fs(self.fs(r).await),
            Request::Topology => Response::Topology(self.topology()),
            Request::Admin(a) => Response::Admin(self.admin(a).await),
            Request::Chunkserver(c) => Response::Chunkserver(self.chunkserver(c).await),
            Request::Watch { since } => Response::Watch(self.shared.changes_since(since, WATCH_WAIT).await),
            Request::KeepAlive { client } => {
                self.sessions.heard(client, Instant::now());
                Response::KeptAlive {
                    timeout_ms: self.session_timeout.as_millis() as u64,
                }
            }
        }
    }

    fn topology(&self) -> Topology {
        let leaders = self
            .shared
            .statuses()
            .iter()
            .map(|s| (s.shard, s.leader))
            .collect();
        Topology {
            table: (*self.table).clone(),
            nodes: self.shared.nodes(),
            leaders,
        }
    }

    async fn ask<T>(
        &self,
        msg: HostMsg,
        rx: oneshot::Receiver<Result<T, RpcError>>,
        shard: u32,
    ) -> Result<T, RpcError> {
        if self.host.send(msg).is_err() {
            return Err(RpcError::Unavailable {
                shard,
                reason: "node shutting down".into(),
            });
        }
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), rx).await {
            Ok(Ok(r)) => r,
            _ => Err(RpcError::Unavailable {
                shard,
                reason: "timed out waiting for raft".into(),
            }),
        }
    }

    async fn admin(&self, req: AdminRequest) -> Result<AdminReply, RpcError> {
        if let AdminRequest::Digest { shard } = req {
            let store = self.store.clone();
            return tokio::task::spawn_blocking(move || digest(&store, shard))
                .await
                .map_err(|e| RpcError::Internal(e.to_string()))?
                .map_err(internal);
        }
        let (reply, rx) = oneshot::channel();
        self.ask(HostMsg::Admin { req, reply }, rx, 0).await
    }

    /// Heartbeats stay on this server (liveness is not replicated) and collect the orders
    /// queued here; registrations go through shard 0's raft group, chunk reports through their
    /// shard's.
    async fn chunkserver(&self, req: CsRequest) -> Result<CsReply, RpcError> {
        let shard = match req {
            CsRequest::Heartbeat {
                id,
                ref addr,
                capacity,
                used,
                chunks,
            } => {
                let orders = self
                    .keeper
                    .heard(id, addr, capacity, used, chunks, Instant::now());
                return Ok(if orders.is_empty() {
                    CsReply::Ok
                } else {
                    CsReply::Orders(orders)
                });
            }
            CsRequest::ChunkReport { shard, .. } => shard,
            CsRequest::Register { .. } => 0,
        };
        let (tx, rx) = oneshot::channel();
        let msg = HostMsg::Chunkserver {
            shard,
            req,
            waiter: Waiter::Index(tx),
        };
        self.ask(msg, rx, shard).await.map(|_| CsReply::Ok)
    }

    /// The chunkservers a new chunk may go to, for a command that may create one.
    fn placement(&self, op: &FsOp) -> Vec<(u64, String)> {
        if !matches!(op, FsOp::ChunkForWrite { .. }) {
            return Vec::new();
        }
        self.keeper.placement(Instant::now())
    }

    async fn fs(&self, r: ClientRequest) -> ClientResponse {
        let started = Instant::now();
        let op = r.op.name();
        let shard = r.shard;
        self.sessions.heard(r.client, started);
        if r.op == FsOp::EndSession {
            // Sessions end at the leader's reaper, never at a client's request.
            return ClientResponse {
                result: Err(RpcError::Fs(Errno::EPERM)),
                token: self.applied(shard),
            };
        }
        let live_view = matches!(
            r.op,
            FsOp::ChunkForRead { .. } | FsOp::ChunkForWrite { .. } | FsOp::StatFs
        )
        .then(|| r.op.clone());
        let mut response = if r.op.is_mutation() {
            self.mutate(r).await
        } else {
            self.read(r).await
        };
        if let (Some(op), Ok(reply)) = (live_view, &mut response.result) {
            let computed = std::mem::replace(reply, FsReply::Done);
            *reply = self.keeper.adjust(&op, computed, Instant::now());
        }
        let outcome = match &response.result {
            Ok(_) | Err(RpcError::Fs(_)) => Outcome::Ok,
            Err(e) if e.is_retryable() => Outcome::Retry,
            Err(_) => Outcome::Error,
        };
        self.metrics
            .observe_op(op, outcome, started.elapsed().as_secs_f64());
        if let Err(e) = &response.result
            && !matches!(e, RpcError::Fs(_) | RpcError::NotLeader { .. })
        {
            tracing::debug!(shard, op, "request failed: {e}");
        }
        response
    }

    fn applied(&self, shard: u32) -> SessionToken {
        SessionToken {
            index: self.shared.applied(shard).unwrap_or(0),
        }
    }

    async fn mutate(&self, r: ClientRequest) -> ClientResponse {
        let shard = r.shard;
        if r.seq != 0 {
            let first = self
                .store
                .read()
                .and_then(|t| self.store.reply(&t, shard, r.client, r.seq));
            match first {
                Ok(Some(first)) => {
                    return ClientResponse {
                        result: first.0.map_err(RpcError::Fs),
                        token: self.applied(shard),
                    };
                }
                Ok(None) => {}
                Err(e) => {
                    return ClientResponse {
                        result: Err(internal(e)),
                        token: SessionToken::default(),
                    };
                }
            }
        }
        if let Err(e) = self.store.check_space() {
            return ClientResponse {
                result: Err(internal(e)),
                token: self.applied(shard),
            };
        }
        if self.shared.wal_short() {
            // The disk holding the write-ahead log has no room for its next segment.
            return ClientResponse {
                result: Err(RpcError::Fs(Errno::ENOSPC)),
                token: self.applied(shard),
            };
        }
        let placement = self.placement(&r.op);
        let cmd = Command {
            client: r.client,
            seq: r.seq,
            acked_below: r.acked_below,
            cred: r.cred,
            op: r.op,
            stamp: Timestamp::ZERO,
            now: FileTime::default(),
            delta_id: Uuid::nil(),
            placement,
        };
        let (tx, rx) = oneshot::channel();
        let msg = HostMsg::Propose {
            shard,
            cmd: Box::new(cmd),
            waiter: Waiter::Fs(tx),
        };
        match self.ask(msg, rx, shard).await {
            Ok((reply, index)) => ClientResponse {
                result: reply.map_err(RpcError::Fs),
                token: SessionToken { index },
            },
            Err(RpcError::NotLeader { .. }) => ClientResponse {
                result: Err(self.shared.not_leader(shard)),
                token: self.applied(shard),
            },
            Err(e) => ClientResponse {
                result: Err(e),
                token: self.applied(shard),
            },
        }
    }

    async fn read(&self, r: ClientRequest) -> ClientResponse {
        let shard = r.shard;
        let wanted = match r.read {
            ReadMode::Linearizable => {
                let (reply, rx) = oneshot::channel();
                match self.ask(HostMsg::ReadIndex { shard, reply }, rx, shard).await {
                    Ok(index) => index,
                    #[cfg(feature = "deliberate-bugs")]
                    Err(RpcError::NotLeader { .. })
                        if crate::bugs::active(crate::bugs::Bug::StaleFollowerReads) =>
                    {
                        0
                    }
                    Err(RpcError::NotLeader { .. }) => {
                        return ClientResponse {
                            result: Err(self.shared.not_leader(shard)),
                            token: self.applied(shard),
                        };
                    }
                    Err(e) => {
                        return ClientResponse {
                            result: Err(e),
                            token: self.applied(shard),
                        };
                    }
                }
            }
            ReadMode::Session(token) => token.index,
        };
        // Applied here but not yet committed to LMDB (a read right after a write): the host
        // answers from its open transaction rather than make the reader wait for the commit.
        if self.shared.applied(shard).is_some_and(|a| a < wanted) {
            let (reply, rx) = oneshot::channel();
            let msg = HostMsg::Read {
                shard,
                wanted,
                req: Box::new(r.clone()),
                reply,
            };
            if let Ok(Some((result, token))) = self.ask(msg, rx, shard).await {
                return ClientResponse { result, token };
            }
        }
        let wait = if matches!(r.read, ReadMode::Linearizable) {
            self.timeout
        } else {
            CATCH_UP_WAIT
        };
        if let Err(e) = self.shared.wait_applied(shard, wanted, wait).await {
            return ClientResponse {
                result: Err(e),
                token: self.applied(shard),
            };
        }
        // A point read (a few LMDB lookups in pages the map keeps in memory) costs less than
        // the two thread hand-offs of the blocking pool, so it runs right here; a listing page
        // (up to a thousand inodes) goes to the blocking pool.
        let result = if matches!(r.op, proto::FsOp::ReadDir { .. }) {
            let server = self.clone();
            tokio::task::spawn_blocking(move || server.read_now(shard, &r))
                .await
                .map_err(|e| RpcError::Internal(e.to_string()))
        } else {
            Ok(self.read_now(shard, &r))
        };
        match result {
            Ok(Ok((result, token))) => ClientResponse { result, token },
            Ok(Err(e)) => ClientResponse {
                result: Err(internal(e)),
                token: SessionToken::default(),
            },
            Err(e) => ClientResponse {
                result: Err(e),
                token: SessionToken::default(),
            },
        }
    }

    fn read_now(&self, shard: u32, r: &ClientRequest) -> Result<ReadAnswer, StoreError> {
        let t = self.store.read()?;
        read_in(&self.store, &t, &self.table, shard, r)
    }
}

/// A read's reply and the applied index it was read at.
pub type ReadAnswer = (Result<proto::FsReply, RpcError>, SessionToken);

/// Serves read `r` of `shard` from transaction `t` (a read transaction, or the host's open
/// write transaction, which holds what is applied but not yet committed).
pub fn read_in(
    store: &Store,
    t: &heed::RoTxn<'_, heed::WithoutTls>,
    table: &ShardTable,
    shard: u32,
    r: &ClientRequest,
) -> Result<ReadAnswer, StoreError> {
    if !store.has_group(t, shard)? {
        return Ok((Err(RpcError::UnknownShard(shard)), SessionToken::default()));
    }
    let (index, _) = store.applied(t, shard)?;
    let view = ShardView::new(store, t, shard);
    let ctx = ShardCtx {
        shard: ShardId(shard),
        table,
    };
    let reply = fs::read(&view, ctx, r.client, &r.cred, &r.op)?;
    Ok((reply.map_err(RpcError::Fs), SessionToken { index }))
}

/// Blake3 over every state record of `shard` (not the raft log), read in one transaction.
fn digest(store: &Store, shard: u32) -> Result<AdminReply, StoreError> {
    let t = store.read()?;
    let (applied, _) = store.applied(&t, shard)?;
    let mut h = blake3::Hasher::new();
    let records = store.snapshot_records(&t, shard, 1 << 20, |batch| {
        for (table, k, v) in batch {
            h.update(&[table]);
            h.update(&(k.len() as u64).to_be_bytes());
            h.update(&k);
            h.update(&(v.len() as u64).to_be_bytes());
            h.update(&v);
        }
        Ok(())
    })?;
    Ok(AdminReply::Digest {
        applied,
        digest: h.finalize().to_hex().to_string(),
        records,
    })
}
