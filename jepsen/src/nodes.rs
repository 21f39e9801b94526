//! The servers of a run: real `mooseng mds` processes, each started in its own network
//! namespace with `ip netns exec` (which execs, so the child's pid is the server's), killed
//! with SIGKILL, paused with SIGSTOP, and given a wall clock of its own through libfaketime
//! when it is installed; and, for the file workloads, `mooseng chunkserver` processes in
//! namespaces of their own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};

use crate::netns::Topology;

/// Where Debian's libfaketime lives.
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

const CLIENT_PORT: u16 = 7000;

/// The servers of a run and their processes.
#[derive(Debug)]
pub struct Nodes {
    bin: PathBuf,
    dir: PathBuf,
    topology: Topology,
    children: Vec<Option<Child>>,
    paused: Vec<bool>,
    faketime: bool,
    log_filter: String,
    bug: Option<String>,
    chunkservers: Vec<Option<Child>>,
}

impl Nodes {
    /// Bootstraps a one-shard cluster of every server of `topology` (all replicas) under
    /// `dir` with `mooseng admin init`; starts nothing. `bug` is a deliberate bug the servers
    /// switch on (`MOOSENG_DELIBERATE_BUG`; only builds with the `deliberate-bugs` feature
    /// accept it).
    pub fn init(bin: &Path, dir: &Path, topology: &Topology, bug: Option<String>) -> anyhow::Result<Nodes> {
        let mut init = Command::new(bin);
        init.args(["admin", "init", "--dir"])
            .arg(dir.join("cluster"))
            .args(["--replicas", &topology.nodes.to_string()])
            .args(["--chunkservers", &topology.chunkservers.to_string()]);
        for i in 1..=topology.nodes {
            let (client, raft, http) = Self::addrs(i);
            init.arg("--node").arg(format!("{i}={client},{raft},{http}"));
        }
        let out = init
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        if !out.status.success() {
            bail!(
                "mooseng admin init: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::fs::create_dir_all(dir.join("logs"))?;
        let faketime = Path::new(FAKETIME_LIB).exists();
        let nodes = Nodes {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            topology: topology.clone(),
            children: (0..topology.nodes).map(|_| None).collect(),
            paused: vec![false; topology.nodes],
            faketime,
            log_filter: std::env::var("MOOSENG_JEPSEN_LOG")
                .unwrap_or_else(|_| "info,raft=info,quinn=warn".into()),
            bug,
            chunkservers: (0..topology.chunkservers).map(|_| None).collect(),
        };
        for i in 1..=topology.nodes {
            nodes.write_skew(i, 0)?;
        }
        Ok(nodes)
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Whether clocks can be skewed (libfaketime is installed).
    pub fn can_skew(&self) -> bool {
        self.faketime
    }

    /// The cluster directory (cluster.toml, tls/).
    pub fn cluster_dir(&self) -> PathBuf {
        self.dir.join("cluster")
    }

    /// Client address of server `i` (1-based).
    pub fn client_addr(i: usize) -> SocketAddr {
        Self::addrs(i).0
    }

    /// Client, raft and HTTP addresses of server `i` (1-based).
    pub fn addrs(i: usize) -> (SocketAddr, SocketAddr, SocketAddr) {
        let at = |port| SocketAddr::from((Topology::node_ip(i), port));
        (at(CLIENT_PORT), at(CLIENT_PORT + 1), at(CLIENT_PORT + 2))
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("mds{i}"))
    }

    /// Deletes the data of server `i` (which must be stopped): it comes back empty.
    pub fn wipe(&self, i: usize) -> anyhow::Result<()> {
        match std::fs::remove_dir_all(self.data_dir(i)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Client addresses of every server.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        (1..=self.len()).map(Self::client_addr).collect()
    }

    fn skew_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("skew-n{i}"))
    }

    fn write_skew(&self, i: usize, secs: i64) -> anyhow::Result<()> {
        let text = if secs >= 0 {
            format!("+{secs}\n")
        } else {
            format!("{secs}\n")
        };
        std::fs::write(self.skew_file(i), text).context("writing the clock-skew file")
    }

    /// Starts server `i` (1-based); a running one is left alone, one that exited on its own
    /// (a crash) is started again.
    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(child) = &mut self.children[i - 1] {
            match child.try_wait()? {
                None => return Ok(()),
                Some(status) => eprintln!("jepsen: server {i} had exited ({status}); starting it again"),
            }
        }
        let (client, raft, http) = Self::addrs(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("logs").join(format!("mds{i}.log")))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.topology.node(i)])
            .arg(&self.bin)
            .arg("mds")
            .arg("--cluster-dir")
            .arg(self.cluster_dir())
            .args(["--node-id", &i.to_string(), "--data-dir"])
            .arg(self.data_dir(i))
            .args(["--client-addr", &client.to_string()])
            .args(["--raft-addr", &raft.to_string()])
            .args(["--http-addr", &http.to_string()])
            .env("RUST_LOG", &self.log_filter)
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(bug) = &self.bug {
            cmd.env("MOOSENG_DELIBERATE_BUG", bug);
        }
        if self.faketime {
            // The wall clock follows the skew file (re-read every second); the monotonic
            // clock, which raft's timers use, stays real.
            cmd.env("LD_PRELOAD", FAKETIME_LIB)
                .env("FAKETIME_TIMESTAMP_FILE", self.skew_file(i))
                .env("FAKETIME_CACHE_DURATION", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let child = cmd.spawn().context("spawning ip netns exec … mooseng mds")?;
        self.children[i - 1] = Some(child);
        self.paused[i - 1] = false;
        Ok(())
    }

    /// Starts chunkserver `i` (1-based) with one data directory, if it is not running.
    pub fn start_chunkserver(&mut self, i: usize) -> anyhow::Result<()> {
        if self.chunkservers[i - 1].is_some() {
            return Ok(());
        }
        let data = self.dir.join(format!("cs{i}"));
        std::fs::create_dir_all(&data)?;
        let ip = Topology::chunkserver_ip(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("logs").join(format!("cs{i}.log")))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.topology.chunkserver(i)])
            .arg(&self.bin)
            .arg("chunkserver")
            .arg("--cluster-dir")
            .arg(self.cluster_dir())
            .args(["--id", &i.to_string(), "--data-dir"])
            .arg(&data)
            .args([
                "--data-addr",
                &format!("{ip}:7100"),
                "--http-addr",
                &format!("{ip}:7101"),
            ])
            .env("RUST_LOG", &self.log_filter)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawning ip netns exec … mooseng chunkserver")?;
        self.chunkservers[i - 1] = Some(child);
        Ok(())
    }

    /// Kills chunkserver `i` with SIGKILL and reaps it.
    pub fn kill_chunkserver(&mut self, i: usize) {
        if let Some(mut c) = self.chunkservers[i - 1].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills server `i` with SIGKILL and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i - 1].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused[i - 1] = false;
    }

    /// Servers whose process ended on its own (a crash), reaped.
    pub fn exited(&mut self) -> Vec<usize> {
        let mut gone = Vec::new();
        for (k, slot) in self.children.iter_mut().enumerate() {
            if let Some(child) = slot
                && matches!(child.try_wait(), Ok(Some(_)))
            {
                *slot = None;
                gone.push(k + 1);
            }
        }
        gone
    }

    /// Whether server `i` runs (paused counts as running).
    pub fn running(&self, i: usize) -> bool {
        self.children[i - 1].is_some()
    }

    /// Sends SIGSTOP (`pause`) or SIGCONT to server `i`, if it runs.
    pub fn set_paused(&mut self, i: usize, pause: bool) -> anyhow::Result<()> {
        let Some(child) = &self.children[i - 1] else {
            return Ok(());
        };
        let signal = if pause { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill {signal} {} failed", child.id());
        }
        self.paused[i - 1] = pause;
        Ok(())
    }

    /// Whether server `i` is paused.
    pub fn paused(&self, i: usize) -> bool {
        self.paused[i - 1]
    }

    /// Runs `mooseng admin ARGS --cluster-dir …` (from the clients' namespace).
    pub fn admin(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut full: Vec<&std::ffi::OsStr> = vec!["admin".as_ref()];
        full.extend(args.iter().map(std::ffi::OsStr::new));
        let dir = self.cluster_dir();
        full.extend(["--cluster-dir".as_ref(), dir.as_os_str()]);
        crate::netns::run(&self.bin.to_string_lossy(), &full)
    }

    /// Sets server `i`'s wall clock `secs` off the real one (takes effect within a second).
    pub fn skew(&self, i: usize, secs: i64) -> anyhow::Result<()> {
        if !self.faketime {
            bail!("clock skew needs libfaketime ({FAKETIME_LIB}); install Debian's libfaketime");
        }
        self.write_skew(i, secs)
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for i in 1..=self.len() {
            let _ = self.set_paused(i, false);
            self.kill(i);
        }
        for i in 1..=self.chunkservers.len() {
            self.kill_chunkserver(i);
        }
    }
}
