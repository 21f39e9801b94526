//! The harness of the integration tests: a temporary cluster directory with its CA, in-process
//! chunkservers on loopback, a data client, and a scripted metadata server that records what
//! chunkservers tell it and hands out orders.
//!
//! Every wait is bounded by [`WAIT`], so a hang is a failure, not a stuck CI job.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chunkserver::{CsConfig, CsError};
use net::{CHUNKSERVER_ROLE_NAME, Ca, TlsFiles};
use proto::admin::NodeInfo;
use proto::chunk::{CsReply, CsRequest, Order};
use proto::data::{DATA_FRAME_CAP, DataReply, DataRequest, Server};
use proto::{Request, Response, RpcError, Topology};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// The longest any single expectation may take.
pub const WAIT: Duration = Duration::from_secs(20);
/// The longest a whole test may take.
pub const TEST: Duration = Duration::from_secs(90);

/// Runs a test body, failing it if it takes longer than [`TEST`].
pub async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST, test)
        .await
        .expect("test finished in time")
}

/// Waits for `f`, failing with `what` after [`WAIT`].
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A cluster directory: the CA and every server's certificates and data dirs.
pub struct Cluster {
    pub dir: TempDir,
    pub ca: Ca,
    client: quinn::Endpoint,
}

impl Cluster {
    pub fn new() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate("test").unwrap();
        ca.save(&dir.path().join("tls")).unwrap();
        let tls = TlsFiles {
            ca_pem: ca.cert_pem().to_string(),
            identity: ca.issue_client("tests").unwrap(),
        };
        let client = net::endpoint::client(&tls).unwrap();
        Cluster { dir, ca, client }
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    /// A configuration for chunkserver `id` with two data dirs, free loopback ports and
    /// short intervals.
    pub fn config(&self, id: u64, mds: SocketAddr) -> CsConfig {
        self.ca
            .issue_chunkserver(id)
            .unwrap()
            .save(&self.tls_dir(), &format!("cs-{id}"))
            .unwrap();
        let dirs: Vec<PathBuf> = (0..2)
            .map(|i| self.dir.path().join(format!("cs-{id}")).join(format!("disk{i}")))
            .collect();
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        let mut c = CsConfig::new(id, dirs, self.tls_dir(), vec![mds]);
        c.data_addr = local(testkit::free_port());
        c.http_addr = local(testkit::free_port());
        c.heartbeat = Duration::from_millis(100);
        c.report_interval = Duration::from_millis(50);
        c.mds_timeout = Duration::from_secs(1);
        c.retry_max = Duration::from_millis(300);
        c.connect_timeout = Duration::from_millis(500);
        c.forward_timeout = Duration::from_secs(5);
        c
    }

    /// Starts a chunkserver and waits until its HTTP port answers (it is bound after the
    /// data port).
    pub async fn start(&self, config: CsConfig) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let (id, data, http) = (config.id, config.data_addr, config.http_addr);
        let dirs = config.data_dirs.clone();
        let task = tokio::spawn(chunkserver::run(config, async {
            let _ = stopped.await;
        }));
        let running = Running {
            id,
            data,
            http,
            dirs,
            stop: Some(stop),
            task,
        };
        within("the chunkserver to come up", async {
            loop {
                if try_get(http, "/health").await.is_some() {
                    break;
                }
                assert!(!running.task.is_finished(), "chunkserver {id} exited at start");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        running
    }

    /// Connects the test client to a chunkserver's data port.
    pub async fn connect(&self, cs: &Running) -> quinn::Connection {
        within(
            "a data connection",
            net::connect_to(&self.client, cs.data, CHUNKSERVER_ROLE_NAME),
        )
        .await
        .unwrap()
    }
}

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A chunkserver running in this process.
pub struct Running {
    pub id: u64,
    pub data: SocketAddr,
    pub http: SocketAddr,
    pub dirs: Vec<PathBuf>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), CsError>>,
}

impl Running {
    /// The server as a chain member or replication source.
    pub fn server(&self) -> Server {
        Server {
            id: self.id,
            addr: self.data.to_string(),
        }
    }

    /// Stops it and waits for `run` to return.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        within("the chunkserver to stop", &mut self.task)
            .await
            .unwrap()
            .unwrap();
    }

    /// The file of `chunk`'s copy, wherever it is.
    pub fn chunk_file(&self, chunk: u64) -> Option<PathBuf> {
        self.dirs
            .iter()
            .map(|d| {
                d.join("chunks")
                    .join(format!("{:02x}", chunk & 0xff))
                    .join(format!("{chunk:016x}.chunk"))
            })
            .find(|p| p.exists())
    }

    pub async fn get(&self, path: &str) -> String {
        within("an HTTP answer", async {
            try_get(self.http, path).await.expect("HTTP port answers")
        })
        .await
    }
}

/// Sends a data request.
pub async fn call(conn: &quinn::Connection, req: DataRequest) -> DataReply {
    net::call(conn, &req, DATA_FRAME_CAP, WAIT).await.unwrap()
}

/// `GET path` on a loopback HTTP port: the body, or `None` if nothing listens.
async fn try_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out.split_once("\r\n\r\n")?.1.to_string())
}

/// The value of an unlabelled or fully labelled sample in Prometheus text.
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        (n == name).then(|| v.parse().ok())?
    })
}

/// A metadata server that answers the topology and chunkserver requests, records every
/// chunkserver request and answers heartbeats with the orders queued for their sender.
pub struct FakeMds {
    pub addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<CsRequest>,
    orders: Arc<Mutex<HashMap<u64, Vec<Order>>>>,
    endpoint: quinn::Endpoint,
}

impl FakeMds {
    pub fn start(cluster: &Cluster, addr: SocketAddr) -> FakeMds {
        let tls = TlsFiles {
            ca_pem: cluster.ca.cert_pem().to_string(),
            identity: cluster.ca.issue_node(1).unwrap(),
        };
        let endpoint = net::endpoint::server(addr, &tls).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let topology = Topology {
            table: shardmap::ShardTable::uniform(1, &[1], 1).unwrap(),
            nodes: vec![NodeInfo {
                id: 1,
                client_addr: addr.to_string(),
                raft_addr: addr.to_string(),
                http_addr: addr.to_string(),
            }],
            leaders: vec![(0, 1)],
        };
        let (tx, seen) = mpsc::unbounded_channel();
        let orders: Arc<Mutex<HashMap<u64, Vec<Order>>>> = Arc::default();
        let accepting = endpoint.clone();
        let queued = orders.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accepting.accept().await {
                let (tx, topology, queued) = (tx.clone(), topology.clone(), queued.clone());
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    net::serve_connection(conn, proto::CLIENT_FRAME_CAP, move |req: Request| {
                        let answer = match req {
                            Request::Topology => Response::Topology(topology.clone()),
                            Request::Chunkserver(r) => {
                                let reply = match &r {
                                    CsRequest::Heartbeat { id, .. } => {
                                        let list = queued.lock().unwrap().remove(id).unwrap_or_default();
                                        if list.is_empty() {
                                            CsReply::Ok
                                        } else {
                                            CsReply::Orders(list)
                                        }
                                    }
                                    _ => CsReply::Ok,
                                };
                                let _ = tx.send(r);
                                Response::Chunkserver(Ok(reply))
                            }
                            _ => Response::Chunkserver(Err(RpcError::BadRequest(
                                "not a metadata server".into(),
                            ))),
                        };
                        async move { answer }
                    })
                    .await;
                });
            }
        });
        FakeMds {
            addr,
            seen,
            orders,
            endpoint,
        }
    }

    /// Queues orders for chunkserver `id`'s next heartbeat.
    pub fn order(&self, id: u64, order: Order) {
        self.orders.lock().unwrap().entry(id).or_default().push(order);
    }

    /// The next request satisfying `want`, skipping others.
    pub async fn expect(&mut self, what: &str, want: impl Fn(&CsRequest) -> bool) -> CsRequest {
        within(what, async {
            loop {
                let r = self.seen.recv().await.expect("fake metadata server running");
                if want(&r) {
                    return r;
                }
            }
        })
        .await
    }

    pub fn stop(&self) {
        self.endpoint.close(quinn::VarInt::from_u32(0), b"stop");
    }
}
