//! A cluster of real `mooseng mds` and `mooseng chunkserver` processes on loopback, for
//! integration tests and benchmarks.
//!
//! Each cluster gets its own temporary directory (cluster file, certificates, data dirs, logs)
//! and free ports. Processes are killed when the cluster is dropped; if that happens while a
//! thread panics, the directory is kept and its path printed so a failure can be investigated.

mod chunkservers;
mod copies;
mod http;
mod mounts;
mod ports;
mod rng;
mod wait;

pub use chunkservers::Chunkserver;
pub use copies::read_copy;
pub use http::http_get;
pub use mounts::{Mount, fuse_available, fuse_or_skip, is_mounted};
pub use ports::{free_port, free_ports};
pub use rng::SplitMix;
pub use wait::{eventually, pause};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::{MdsClient, ReadFrom};
use proto::admin::{AdminReply, AdminRequest, Role, ShardStatus};
use proto::fs::{Attr, Cred, FsOp, FsReply};

/// One metadata server.
#[derive(Debug)]
pub struct Node {
    /// Node id.
    pub id: u64,
    /// Client address.
    pub client: SocketAddr,
    /// Raft address.
    pub raft: SocketAddr,
    /// HTTP address.
    pub http: SocketAddr,
    /// Its data directory.
    pub data: PathBuf,
    /// The running process, if any.
    pub child: Option<Child>,
    /// Extra flags it runs with.
    pub flags: Vec<String>,
}

/// A cluster of `mooseng mds` processes.
#[derive(Debug)]
pub struct Cluster {
    /// The `mooseng` binary.
    pub bin: PathBuf,
    /// Everything of the cluster lives here.
    pub dir: tempfile::TempDir,
    /// The servers.
    pub nodes: Vec<Node>,
    /// `RUST_LOG` of every process it starts: `MOOSENG_TEST_LOG` if set, else info.
    pub log_filter: String,
    /// Chunkservers (see [`Cluster::start_chunkservers`]).
    pub chunkservers: Vec<Chunkserver>,
}

impl Cluster {
    /// Bootstraps `n` servers (one shard, `replicas` replicas) with the `mooseng` at `bin`,
    /// in a temporary directory under `parent` (the system's default if `None`), and starts
    /// them with `flags`.
    pub fn start(bin: PathBuf, parent: Option<&Path>, n: u64, replicas: usize, flags: &[&str]) -> Cluster {
        Self::start_in(bin, parent, n, 1, replicas, flags)
    }

    /// Like [`Cluster::start`] with `shards` shards, in the system's temporary directory.
    pub fn start_shards(bin: PathBuf, n: u64, shards: u32, replicas: usize, flags: &[&str]) -> Cluster {
        Self::start_in(bin, None, n, shards, replicas, flags)
    }

    fn start_in(
        bin: PathBuf,
        parent: Option<&Path>,
        n: u64,
        shards: u32,
        replicas: usize,
        flags: &[&str],
    ) -> Cluster {
        let mut builder = tempfile::Builder::new();
        builder.prefix("mooseng-cluster-");
        let dir = match parent {
            Some(p) => builder.tempdir_in(p),
            None => builder.tempdir(),
        }
        .expect("temp dir");
        let nodes: Vec<Node> = (1..=n).map(|id| Node::new(dir.path(), id, flags)).collect();
        let mut init = Command::new(&bin);
        init.args(["admin", "init", "--dir"])
            .arg(dir.path().join("cluster"));
        init.args([
            "--replicas",
            &replicas.to_string(),
            "--shards",
            &shards.to_string(),
        ]);
        for node in &nodes {
            init.arg("--node")
                .arg(format!("{}={},{},{}", node.id, node.client, node.raft, node.http));
        }
        let out = init.output().expect("run mooseng admin init");
        assert!(
            out.status.success(),
            "admin init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log_filter =
            std::env::var("MOOSENG_TEST_LOG").unwrap_or_else(|_| "info,raft=info,quinn=warn".to_string());
        let mut c = Cluster {
            bin,
            dir,
            nodes,
            log_filter,
            chunkservers: Vec::new(),
        };
        eprintln!("cluster in {}", c.dir.path().display());
        for id in 1..=n {
            c.spawn(id);
        }
        c
    }

    /// The cluster directory (cluster.toml, tls/).
    pub fn cluster_dir(&self) -> PathBuf {
        self.dir.path().join("cluster")
    }

    /// Runs `mooseng admin ARGS --cluster-dir …`, which must succeed, and returns its output.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .arg("admin")
            .args(args)
            .arg("--cluster-dir")
            .arg(self.cluster_dir())
            .output()
            .expect("run mooseng admin");
        assert!(
            out.status.success(),
            "mooseng admin {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A server by id.
    pub fn node(&self, id: u64) -> &Node {
        self.nodes.iter().find(|n| n.id == id).expect("known node")
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).expect("known node")
    }

    /// The log file `name` (appended to), under `logs/`.
    pub(crate) fn log_file(&self, name: &str) -> std::fs::File {
        let logs = self.dir.path().join("logs");
        std::fs::create_dir_all(&logs).expect("log dir");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(name))
            .expect("open log")
    }

    /// Starts (or restarts) server `id`.
    pub fn spawn(&mut self, id: u64) {
        let cluster_dir = self.cluster_dir();
        let log = self.log_file(&format!("mds{id}.log"));
        let (bin, filter) = (self.bin.clone(), self.log_filter.clone());
        let node = self.node_mut(id);
        assert!(node.child.is_none(), "node {id} is already running");
        let child = Command::new(bin)
            .arg("mds")
            .arg("--cluster-dir")
            .arg(&cluster_dir)
            .arg("--node-id")
            .arg(id.to_string())
            .arg("--data-dir")
            .arg(&node.data)
            .arg("--client-addr")
            .arg(node.client.to_string())
            .arg("--raft-addr")
            .arg(node.raft.to_string())
            .arg("--http-addr")
            .arg(node.http.to_string())
            .args(&node.flags)
            .env("RUST_LOG", filter)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mooseng mds");
        node.child = Some(child);
    }

    /// Adds server `id` (not in the cluster file) and starts it; it hosts nothing until added
    /// to a shard.
    pub fn add_node(&mut self, id: u64, flags: &[&str]) {
        self.admin(&["cert", "node", "--id", &id.to_string()]);
        let node = Node::new(self.dir.path(), id, flags);
        self.nodes.push(node);
        self.spawn(id);
    }

    /// Kills server `id` with SIGKILL.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.node_mut(id).child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops server `id` with SIGTERM and waits for it to exit.
    pub fn stop(&mut self, id: u64) {
        if let Some(mut c) = self.node_mut(id).child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                crate::pause(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("node {id} did not exit within 10 s of SIGTERM");
        }
    }

    /// Whether server `id` is running.
    pub fn running(&self, id: u64) -> bool {
        self.node(id).child.is_some()
    }

    /// The process id of server `id`, if running.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.node(id).child.as_ref().map(Child::id)
    }

    /// A client with the admin certificate, seeded with every running server.
    pub fn client(&self) -> MdsClient {
        net::install_crypto_provider();
        let tls = net::TlsFiles::load(&self.cluster_dir().join("tls"), "client-admin").expect("admin cert");
        let seeds = self.nodes.iter().map(|n| n.client).collect();
        MdsClient::new(seeds, &tls).expect("client")
    }

    /// Node `id`'s view of `shard`, if it answers.
    pub async fn status(&self, client: &MdsClient, id: u64, shard: u32) -> Option<ShardStatus> {
        match client.admin(self.node(id).client, AdminRequest::Status).await {
            Ok(AdminReply::Status(s)) => s.shards.into_iter().find(|s| s.shard == shard),
            _ => None,
        }
    }

    /// Waits for a running server to lead `shard`; returns its id.
    pub async fn wait_leader(&self, client: &MdsClient, shard: u32, timeout: Duration) -> u64 {
        let started = Instant::now();
        loop {
            for n in self.nodes.iter().filter(|n| n.child.is_some()) {
                if let Some(s) = self.status(client, n.id, shard).await
                    && s.role == Role::Leader
                {
                    return n.id;
                }
            }
            assert!(
                started.elapsed() < timeout,
                "no leader for shard {shard} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Node `id`'s digest of `shard`: (applied index, digest).
    pub async fn digest(&self, client: &MdsClient, id: u64, shard: u32) -> Option<(u64, String)> {
        match client
            .admin(self.node(id).client, AdminRequest::Digest { shard })
            .await
        {
            Ok(AdminReply::Digest { applied, digest, .. }) => Some((applied, digest)),
            _ => None,
        }
    }

    /// Waits until every running server answers for `shard` at the same applied index and
    /// returns their common digest (panics if they disagree once caught up).
    pub async fn converged_digest(&self, client: &MdsClient, shard: u32, timeout: Duration) -> (u64, String) {
        let started = Instant::now();
        loop {
            let mut seen = Vec::new();
            let running: Vec<u64> = self
                .nodes
                .iter()
                .filter(|n| n.child.is_some())
                .map(|n| n.id)
                .collect();
            for &id in &running {
                if self.status(client, id, shard).await.is_some()
                    && let Some(d) = self.digest(client, id, shard).await
                {
                    seen.push((id, d));
                }
            }
            let applied: Vec<u64> = seen.iter().map(|(_, d)| d.0).collect();
            if seen.len() == running.len() && !seen.is_empty() && applied.iter().all(|a| *a == applied[0]) {
                let first = &seen[0].1;
                for (id, d) in &seen {
                    assert_eq!(
                        d, first,
                        "node {id} and node {} applied index {} but differ",
                        seen[0].0, first.0
                    );
                }
                return first.clone();
            }
            assert!(
                started.elapsed() < timeout,
                "replicas did not converge within {timeout:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Node {
    fn new(root: &Path, id: u64, flags: &[&str]) -> Node {
        let addr = |p| SocketAddr::from(([127, 0, 0, 1], p));
        Node {
            id,
            client: addr(free_port()),
            raft: addr(free_port()),
            http: addr(free_port()),
            data: root.join(format!("mds{id}")),
            child: None,
            flags: flags.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let children = self.nodes.iter_mut().map(|n| &mut n.child);
        for child in children.chain(self.chunkservers.iter_mut().map(|c| &mut c.child)) {
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            let dir = self.dir.path().to_path_buf();
            eprintln!("logs kept in {}", dir.display());
            std::mem::forget(std::mem::replace(
                &mut self.dir,
                tempfile::tempdir().expect("temp dir"),
            ));
        }
    }
}

/// The superuser.
pub fn root() -> Cred {
    Cred::root()
}

/// `mkdir parent/name` (mode 0755) through `client`; returns the new directory's attributes.
pub async fn mkdir(client: &MdsClient, parent: u64, name: &str) -> Attr {
    match client
        .fs(
            &root(),
            FsOp::MkDir {
                parent,
                name: name.into(),
                mode: 0o755,
            },
            ReadFrom::Leader,
        )
        .await
    {
        Ok(FsReply::Attr(a)) => a,
        other => panic!("mkdir {name}: {other:?}"),
    }
}

/// Looks `name` up in `parent` at the leader.
pub async fn lookup(client: &MdsClient, parent: u64, name: &str) -> Option<Attr> {
    match client
        .fs(
            &root(),
            FsOp::Lookup {
                parent,
                name: name.into(),
            },
            ReadFrom::Leader,
        )
        .await
    {
        Ok(FsReply::Attr(a)) => Some(a),
        Err(client::ClientError::Fs(proto::Errno::ENOENT)) => None,
        other => panic!("lookup {name}: {other:?}"),
    }
}

/// Every visible name in directory `dir`, read in pages at the leader.
pub async fn list(client: &MdsClient, dir: u64) -> Vec<String> {
    let cred = root();
    client::listing::list_dir(dir, 500, |op| client.fs(&cred, op, ReadFrom::Leader))
        .await
        .unwrap_or_else(|e| panic!("readdir {dir}: {e}"))
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect()
}
