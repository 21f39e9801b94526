//! The metadata client used by the FUSE mount, the admin commands and the benchmarks.
//!
//! It routes each operation to the shard owning its inode (from the shard table), finds the
//! shard's leader (following not-leader hints), retries retryable failures with the same
//! idempotency key until a deadline, and keeps a session token per shard so reads served by
//! any replica still see the client's own writes (for a moment after its own write to a
//! shard, its session reads there go to the leader, which has applied it already).
//!
//! | item | what it is |
//! |---|---|
//! | [`MdsClient`] | one client session: connections, routing, retries, tokens |
//! | [`data::DataClient`] | chunkservers' data ports |
//! | [`ReadFrom`] | where reads go: the leader (linearizable) or any replica (session) |
//! | [`ClientError`] | what an operation finally failed with |
//! | [`join_all`] | runs futures together on one task |
//! | [`listing`] | whole directory listings, read page by page |
//! | [`units`] | sizes as people write them (`256M`) and read them (`256 MiB`) |

pub mod data;
pub mod listing;
pub mod units;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use net::{NetError, TlsFiles};
use proto::admin::{AdminReply, AdminRequest};
use proto::chunk::{CsReply, CsRequest};
use proto::fs::{Cred, FsOp, FsReply};
use proto::{ClientRequest, Errno, ReadMode, Request, Response, RpcError, SessionToken, Topology};
use rand::Rng;

/// How long a server whose last attempt got no answer is passed over when a request may go to
/// any server (reads from any replica, a leader not yet known), unless every candidate is
/// silent. A killed server does not refuse QUIC connections, it just never answers, so every
/// request sent its way would wait a whole attempt timeout first; at most one request per
/// interval pays that while it stays down.
const PASS_OVER: Duration = Duration::from_secs(5);

/// The default of [`MdsClient::read_after_write`].
const READ_AFTER_WRITE: Duration = Duration::from_millis(100);

/// Where reads are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The shard leader, through its read index: linearizable.
    Leader,
    /// Any replica that has applied this client's session token: read-your-writes and
    /// monotonic reads.
    AnyReplica,
}

/// What an operation finally failed with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A POSIX error: final.
    #[error("{0:?}")]
    Fs(Errno),
    /// The servers refused the request (bad request, internal error).
    #[error(transparent)]
    Rpc(RpcError),
    /// No server answered before the deadline; `last` is the last failure seen.
    #[error("no answer within {after:?}; last error: {last}")]
    Exhausted {
        /// The deadline.
        after: Duration,
        /// The last failure.
        last: String,
    },
    /// The transport refused (certificate, malformed frames).
    #[error(transparent)]
    Net(NetError),
}

/// A metadata client session.
#[derive(Debug)]
pub struct MdsClient {
    endpoint: quinn::Endpoint,
    seeds: Vec<SocketAddr>,
    conns: Mutex<HashMap<SocketAddr, quinn::Connection>>,
    topology: Mutex<Option<Topology>>,
    leaders: Mutex<HashMap<u32, SocketAddr>>,
    tokens: Mutex<HashMap<u32, u64>>,
    /// When this client's last write to each shard was answered.
    wrote: Mutex<HashMap<u32, Instant>>,
    in_flight: Mutex<BTreeSet<u64>>,
    client_id: u64,
    next_seq: AtomicU64,
    next_replica: AtomicUsize,
    /// Servers whose last attempt got no answer, and when (see [`PASS_OVER`]).
    silent: Mutex<HashMap<SocketAddr, Instant>>,
    /// How long an operation keeps retrying.
    pub deadline: Duration,
    /// How long after this client's last write to a shard its session reads go to the
    /// leader (default 100 ms). The leader applied the write before answering it; a follower
    /// first learns the commit and applies it in a disk round of its own, and a session read
    /// would wait for that there.
    pub read_after_write: Duration,
    /// Timeout of one attempt (connection included). Metadata requests are small; a leader
    /// that does not answer within it is treated as gone and the request is retried (with the
    /// same idempotency key) wherever the leader is now.
    pub attempt_timeout: Duration,
}

impl MdsClient {
    /// A client that bootstraps from `seeds` (any metadata servers' client addresses).
    pub fn new(seeds: Vec<SocketAddr>, tls: &TlsFiles) -> Result<MdsClient, ClientError> {
        let endpoint = match seeds.first() {
            Some(a) => net::endpoint::client_for(*a, tls),
            None => net::endpoint::client(tls),
        }
        .map_err(ClientError::Net)?;
        Ok(MdsClient {
            endpoint,
            seeds,
            conns: Mutex::new(HashMap::new()),
            topology: Mutex::new(None),
            leaders: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            wrote: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(BTreeSet::new()),
            client_id: rand::thread_rng().r#gen::<u64>() | 1,
            next_seq: AtomicU64::new(1),
            next_replica: AtomicUsize::new(0),
            silent: Mutex::new(HashMap::new()),
            deadline: Duration::from_secs(30),
            read_after_write: READ_AFTER_WRITE,
            attempt_timeout: Duration::from_secs(1),
        })
    }

    /// This session's client id.
    pub fn id(&self) -> u64 {
        self.client_id
    }

    /// The largest applied index seen per shard.
    pub fn token(&self, shard: u32) -> SessionToken {
        SessionToken {
            index: lock(&self.tokens).get(&shard).copied().unwrap_or(0),
        }
    }

    async fn conn(&self, addr: SocketAddr) -> Result<quinn::Connection, NetError> {
        if let Some(c) = lock(&self.conns)
            .get(&addr)
            .filter(|c| c.close_reason().is_none())
        {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(self.attempt_timeout, net::connect(&self.endpoint, addr))
            .await
            .map_err(|_| NetError::Timeout)??;
        lock(&self.conns).insert(addr, c.clone());
        Ok(c)
    }

    fn forget_conn(&self, addr: SocketAddr) {
        lock(&self.conns).remove(&addr);
    }

    /// Sends one request to one server.
    pub async fn call(&self, addr: SocketAddr, req: &Request) -> Result<Response, NetError> {
        self.call_within(addr, req, self.attempt_timeout).await
    }

    async fn call_within(
        &self,
        addr: SocketAddr,
        req: &Request,
        timeout: Duration,
    ) -> Result<Response, NetError> {
        let conn = self.conn(addr).await?;
        let r = net::call(&conn, req, proto::CLIENT_FRAME_CAP, timeout).await;
        if r.as_ref().is_err_and(NetError::is_retryable) {
            self.forget_conn(addr);
        }
        r
    }

    /// The cluster topology, fetched from any reachable server (cached).
    pub async fn topology(&self) -> Result<Topology, ClientError> {
        if let Some(t) = lock(&self.topology).clone() {
            return Ok(t);
        }
        self.refresh_topology().await
    }

    /// Fetches the topology again, asking every known server at once and taking the first
    /// answer (so a dead seed costs nothing).
    pub async fn refresh_topology(&self) -> Result<Topology, ClientError> {
        let known: Vec<SocketAddr> = lock(&self.topology)
            .as_ref()
            .map(|t| {
                t.nodes
                    .iter()
                    .filter_map(|n| n.client_addr.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let mut addrs: Vec<SocketAddr> = self.seeds.iter().chain(known.iter()).copied().collect();
        addrs.sort_unstable();
        addrs.dedup();
        let asks = addrs.into_iter().map(|addr| {
            Box::pin(async move {
                match self.call(addr, &Request::Topology).await {
                    Ok(Response::Topology(t)) => Ok(t),
                    Ok(other) => Err(format!("{addr}: unexpected answer {other:?}")),
                    Err(e) => Err(format!("{addr}: {e}")),
                }
            })
                as std::pin::Pin<Box<dyn std::future::Future<Output = Result<Topology, String>> + Send + '_>>
        });
        let t = first_ok(asks.collect())
            .await
            .map_err(|errors| ClientError::Exhausted {
                after: self.attempt_timeout,
                last: if errors.is_empty() {
                    "no seed addresses".into()
                } else {
                    errors.join("; ")
                },
            })?;
        let mut leaders = lock(&self.leaders);
        for (shard, leader) in &t.leaders {
            if let Some(a) = t
                .nodes
                .iter()
                .find(|n| n.id == *leader)
                .and_then(|n| n.client_addr.parse().ok())
            {
                leaders.insert(*shard, a);
            }
        }
        drop(leaders);
        *lock(&self.topology) = Some(t.clone());
        Ok(t)
    }

    /// The shard serving `ino`.
    pub async fn shard_of(&self, ino: u64) -> Result<u32, ClientError> {
        Ok(self.topology().await?.table.shard_of_id(ino).id.0)
    }

    async fn target(&self, shard: u32, from: ReadFrom) -> Result<SocketAddr, ClientError> {
        let to_leader = from == ReadFrom::Leader
            || lock(&self.wrote)
                .get(&shard)
                .is_some_and(|at| at.elapsed() < self.read_after_write);
        if to_leader && let Some(a) = lock(&self.leaders).get(&shard) {
            return Ok(*a);
        }
        let t = self.topology().await?;
        let replicas: Vec<SocketAddr> = t
            .table
            .shard(shardmap::ShardId(shard))
            .map(|s| s.replicas.clone())
            .unwrap_or_default()
            .iter()
            .filter_map(|id| t.nodes.iter().find(|n| n.id == *id))
            .chain(t.nodes.iter())
            .filter_map(|n| n.client_addr.parse().ok())
            .collect();
        let answering: Vec<SocketAddr> = replicas
            .iter()
            .filter(|a| !self.is_silent(**a))
            .copied()
            .collect();
        let replicas = if answering.is_empty() { replicas } else { answering };
        let i = self.next_replica.fetch_add(1, Ordering::Relaxed);
        replicas
            .get(i % replicas.len().max(1))
            .copied()
            .ok_or(ClientError::Exhausted {
                after: Duration::ZERO,
                last: "topology lists no metadata server".into(),
            })
    }

    /// Runs a file-system operation: mutations at the leader with an idempotency key, reads
    /// from the leader (linearizable) or any replica (session), retrying until the deadline.
    pub async fn fs(&self, cred: &Cred, op: FsOp, from: ReadFrom) -> Result<FsReply, ClientError> {
        let shard = self.shard_of(op.routing_ino()).await?;
        let mutation = op.is_mutation();
        let seq = if mutation { self.begin_seq() } else { 0 };
        let result = self
            .fs_attempts(
                shard,
                seq,
                cred,
                op,
                if mutation { ReadFrom::Leader } else { from },
            )
            .await;
        if mutation {
            lock(&self.in_flight).remove(&seq);
            if result.is_ok() {
                lock(&self.wrote).insert(shard, Instant::now());
            }
        }
        result
    }

    fn begin_seq(&self) -> u64 {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        lock(&self.in_flight).insert(seq);
        seq
    }

    fn acked_below(&self) -> u64 {
        lock(&self.in_flight)
            .first()
            .copied()
            .unwrap_or_else(|| self.next_seq.load(Ordering::Relaxed))
    }

    async fn fs_attempts(
        &self,
        shard: u32,
        seq: u64,
        cred: &Cred,
        op: FsOp,
        from: ReadFrom,
    ) -> Result<FsReply, ClientError> {
        let request = || {
            let read = match from {
                ReadFrom::Leader => ReadMode::Linearizable,
                ReadFrom::AnyReplica => ReadMode::Session(self.token(shard)),
            };
            Request::Fs(ClientRequest {
                shard,
                client: self.client_id,
                seq,
                acked_below: self.acked_below(),
                cred: cred.clone(),
                read,
                op: op.clone(),
            })
        };
        let answer = |r: Response| match r {
            Response::Fs(resp) => {
                self.observe(shard, resp.token);
                Some(resp.result)
            }
            _ => None,
        };
        self.attempts(shard, from, request, answer).await
    }

    /// Asks `addr` alone for a read of `op`: one attempt, no redirect. With
    /// [`ReadFrom::Leader`] it is linearizable and a follower answers [`RpcError::NotLeader`];
    /// with [`ReadFrom::AnyReplica`] that server answers once it has applied this session's
    /// token. For a client that keeps to one server first, as a Jepsen-style client bound to
    /// a node does, and for reading every replica after a test.
    pub async fn read_at(
        &self,
        addr: SocketAddr,
        cred: &Cred,
        op: FsOp,
        from: ReadFrom,
    ) -> Result<FsReply, ClientError> {
        let shard = self.shard_of(op.routing_ino()).await?;
        let read = match from {
            ReadFrom::Leader => ReadMode::Linearizable,
            ReadFrom::AnyReplica => ReadMode::Session(self.token(shard)),
        };
        let request = Request::Fs(ClientRequest {
            shard,
            client: self.client_id,
            seq: 0,
            acked_below: self.acked_below(),
            cred: cred.clone(),
            read,
            op,
        });
        match self.call(addr, &request).await.map_err(ClientError::Net)? {
            Response::Fs(resp) => {
                self.observe(shard, resp.token);
                resp.result.map_err(|e| match e {
                    RpcError::Fs(errno) => ClientError::Fs(errno),
                    other => ClientError::Rpc(other),
                })
            }
            _ => Err(ClientError::Rpc(RpcError::Internal(format!(
                "{addr}: unexpected kind of answer"
            )))),
        }
    }

    /// Sends a chunkserver's registration, heartbeat or chunk report to the leader of shard 0
    /// (which keeps the chunkserver registry), retrying until the deadline.
    pub async fn chunkserver(&self, req: CsRequest) -> Result<CsReply, ClientError> {
        let shard = match &req {
            CsRequest::ChunkReport { shard, .. } => *shard,
            _ => 0,
        };
        let answer = |r: Response| match r {
            Response::Chunkserver(result) => Some(result),
            _ => None,
        };
        self.attempts(
            shard,
            ReadFrom::Leader,
            || Request::Chunkserver(req.clone()),
            answer,
        )
        .await
    }

    /// Sends a chunkserver heartbeat to every metadata server of the topology at once (each
    /// keeps its own view of liveness) and returns the answers of those that answered, or an
    /// error if none did.
    pub async fn heartbeat_all(&self, req: CsRequest) -> Result<Vec<CsReply>, ClientError> {
        self.call_all(Request::Chunkserver(req), |r| match r {
            Response::Chunkserver(Ok(reply)) => Ok(reply),
            Response::Chunkserver(Err(e)) => Err(e.to_string()),
            other => Err(format!("unexpected answer {other:?}")),
        })
        .await
    }

    /// Tells every metadata server that this client is alive, so that it keeps its open files
    /// and locks; returns the shortest session timeout among the servers that answered (call
    /// again well within it), or an error if none answered.
    pub async fn keep_alive(&self) -> Result<Duration, ClientError> {
        let timeouts = self
            .call_all(
                Request::KeepAlive {
                    client: self.client_id,
                },
                |r| match r {
                    Response::KeptAlive { timeout_ms } => Ok(Duration::from_millis(timeout_ms)),
                    other => Err(format!("unexpected answer {other:?}")),
                },
            )
            .await?;
        Ok(timeouts.into_iter().min().unwrap_or(Duration::from_secs(30)))
    }

    /// Sends `req` to every metadata server of the topology at once; returns what `answer`
    /// makes of each answer that came, or an error if none did.
    async fn call_all<T: Send>(
        &self,
        req: Request,
        answer: impl Fn(Response) -> Result<T, String> + Sync,
    ) -> Result<Vec<T>, ClientError> {
        let t = self.topology().await?;
        let addrs: Vec<SocketAddr> = t
            .nodes
            .iter()
            .filter_map(|n| n.client_addr.parse().ok())
            .collect();
        let (req, answer) = (&req, &answer);
        let calls = addrs.iter().map(|addr| {
            Box::pin(async move {
                match self.call(*addr, req).await {
                    Ok(r) => answer(r).map_err(|e| format!("{addr}: {e}")),
                    Err(e) => Err(format!("{addr}: {e}")),
                }
            }) as Attempt<'_, T>
        });
        let mut answers = Vec::new();
        let mut errors = Vec::new();
        for r in join_all(calls).await {
            match r {
                Ok(reply) => answers.push(reply),
                Err(e) => errors.push(e),
            }
        }
        if answers.is_empty() {
            return Err(ClientError::Exhausted {
                after: self.attempt_timeout,
                last: if errors.is_empty() {
                    "topology lists no metadata server".into()
                } else {
                    errors.join("; ")
                },
            });
        }
        if !errors.is_empty() {
            tracing::debug!("not every metadata server answered: {}", errors.join("; "));
        }
        Ok(answers)
    }

    /// Sends requests made by `request` to `shard` (its leader, or any replica) until `answer`
    /// extracts a final result, following not-leader hints and retrying retryable failures
    /// with backoff until the deadline.
    async fn attempts<T>(
        &self,
        shard: u32,
        from: ReadFrom,
        request: impl Fn() -> Request,
        answer: impl Fn(Response) -> Option<Result<T, RpcError>>,
    ) -> Result<T, ClientError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(10);
        let mut last = String::new();
        loop {
            if started.elapsed() > self.deadline {
                return Err(ClientError::Exhausted {
                    after: self.deadline,
                    last,
                });
            }
            let addr = self.target(shard, from).await?;
            let result = self.call(addr, &request()).await;
            match &result {
                Ok(_) => lock(&self.silent).remove(&addr),
                Err(e) if e.is_retryable() => lock(&self.silent).insert(addr, Instant::now()),
                Err(_) => None,
            };
            match result.map(&answer) {
                Ok(Some(Ok(reply))) => return Ok(reply),
                Ok(Some(Err(RpcError::Fs(e)))) => return Err(ClientError::Fs(e)),
                Ok(Some(Err(RpcError::NotLeader { leader, .. }))) => {
                    // A hint at a server that just failed to answer is a follower's stale
                    // view of a leader that is gone: wait for the election instead.
                    let hint = leader
                        .and_then(|(_, a)| a.parse::<SocketAddr>().ok())
                        .filter(|h| !self.is_silent(*h));
                    let mut leaders = lock(&self.leaders);
                    match hint.filter(|h| *h != addr) {
                        Some(h) => {
                            leaders.insert(shard, h);
                            continue;
                        }
                        None => {
                            leaders.remove(&shard);
                        }
                    }
                    last = format!("{addr} is not the leader of shard {shard} and knows none");
                }
                Ok(Some(Err(RpcError::UnknownShard(_)))) => {
                    lock(&self.leaders).remove(&shard);
                    last = format!("{addr} does not host shard {shard}");
                }
                Ok(Some(Err(e))) if e.is_retryable() => {
                    if !matches!(e, RpcError::NotCaughtUp { .. }) {
                        lock(&self.leaders).remove(&shard);
                    }
                    last = e.to_string();
                }
                Ok(Some(Err(e))) => return Err(ClientError::Rpc(e)),
                Ok(None) => last = format!("{addr}: unexpected kind of answer"),
                Err(e) if e.is_retryable() => {
                    lock(&self.leaders).remove(&shard);
                    last = format!("{addr}: {e}");
                }
                Err(e) => return Err(ClientError::Net(e)),
            }
            let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
            tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// Whether `addr` failed to answer less than [`PASS_OVER`] ago.
    fn is_silent(&self, addr: SocketAddr) -> bool {
        lock(&self.silent)
            .get(&addr)
            .is_some_and(|at| at.elapsed() < PASS_OVER)
    }

    fn observe(&self, shard: u32, token: SessionToken) {
        let mut tokens = lock(&self.tokens);
        let t = tokens.entry(shard).or_insert(0);
        *t = (*t).max(token.index);
    }

    /// Waits (up to about ten seconds) for the metadata changes after `since` on one server of
    /// `shard` (see [`proto::Request::Watch`]); the server used is reported so that a watcher
    /// keeps polling the same one (sequence numbers are per server).
    pub async fn watch(
        &self,
        shard: u32,
        at: Option<SocketAddr>,
        since: u64,
    ) -> Result<(SocketAddr, proto::Changes), ClientError> {
        let addr = match at {
            Some(a) => a,
            None => self.target(shard, ReadFrom::Leader).await?,
        };
        match self
            .call_within(addr, &Request::Watch { since }, Duration::from_secs(15))
            .await
        {
            Ok(Response::Watch(c)) => Ok((addr, c)),
            Ok(other) => Err(ClientError::Rpc(RpcError::BadRequest(format!(
                "unexpected answer {other:?}"
            )))),
            Err(e) => Err(ClientError::Net(e)),
        }
    }

    /// Sends an administrative request to the server at `addr`.
    pub async fn admin(&self, addr: SocketAddr, req: AdminRequest) -> Result<AdminReply, ClientError> {
        match self.call(addr, &Request::Admin(req)).await {
            Ok(Response::Admin(Ok(r))) => Ok(r),
            Ok(Response::Admin(Err(e))) => Err(ClientError::Rpc(e)),
            Ok(other) => Err(ClientError::Rpc(RpcError::BadRequest(format!(
                "unexpected answer {other:?}"
            )))),
            Err(e) => Err(ClientError::Net(e)),
        }
    }

    /// Closes every connection and waits briefly for the close to reach the servers.
    pub async fn close(&self) {
        self.endpoint.close(quinn::VarInt::from_u32(0), b"bye");
        let _ = tokio::time::timeout(Duration::from_millis(500), self.endpoint.wait_idle()).await;
    }
}

/// A boxed attempt that fails with a description.
type Attempt<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, String>> + Send + 'a>>;

/// Runs `futures` concurrently on the current task; their outputs, in order.
pub async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (f, slot) in pending.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// The first future to succeed, or every error if all fail.
async fn first_ok<T>(mut futs: Vec<Attempt<'_, T>>) -> Result<T, Vec<String>> {
    let mut errors = Vec::new();
    std::future::poll_fn(move |cx| {
        let mut i = 0;
        while i < futs.len() {
            match futs[i].as_mut().poll(cx) {
                std::task::Poll::Ready(Ok(t)) => return std::task::Poll::Ready(Ok(t)),
                std::task::Poll::Ready(Err(e)) => {
                    errors.push(e);
                    drop(futs.swap_remove(i));
                }
                std::task::Poll::Pending => i += 1,
            }
        }
        if futs.is_empty() {
            std::task::Poll::Ready(Err(std::mem::take(&mut errors)))
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::join_all;

    #[tokio::test(start_paused = true)]
    async fn join_all_runs_its_futures_together_and_keeps_their_order() {
        let started = tokio::time::Instant::now();
        let outputs = join_all([30u64, 10, 20].map(|ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        }))
        .await;
        assert_eq!(outputs, [30, 10, 20]);
        assert_eq!(started.elapsed(), Duration::from_millis(30));
    }
}
