//! The demo's child processes: each server runs as its own `mooseng` process with its log in
//! `<data-dir>/logs/`, so a user or a test can kill one and watch the cluster cope.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

/// What a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A metadata server.
    Mds,
    /// A chunkserver.
    Chunkserver,
    /// The FUSE mount.
    Mount,
}

/// One child process and where it listens.
#[derive(Debug, Serialize)]
pub struct Proc {
    /// Its role.
    pub role: Role,
    /// Node or chunkserver id (0 for the mount).
    pub id: u64,
    /// Process id.
    pub pid: u32,
    /// Ports by name (`client`, `raft`, `http`, `data`).
    pub ports: Vec<(String, u16)>,
    /// URLs of its HTTP endpoints.
    pub urls: Vec<String>,
    /// Its log file.
    pub log: PathBuf,
    #[serde(skip)]
    child: Child,
}

impl Proc {
    /// Starts `mooseng <args>` with stderr to `log`.
    pub fn spawn(
        role: Role,
        id: u64,
        args: &[String],
        log: &Path,
        ports: Vec<(String, u16)>,
    ) -> anyhow::Result<Proc> {
        let exe = std::env::current_exe().context("find the mooseng binary")?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        let child = Command::new(exe)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,quinn=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("start {role:?} {id}"))?;
        let urls = ports
            .iter()
            .filter(|(name, _)| name == "http")
            .flat_map(|(_, p)| ["health", "status", "metrics"].map(|e| format!("http://127.0.0.1:{p}/{e}")))
            .collect();
        Ok(Proc {
            role,
            id,
            pid: child.id(),
            ports,
            urls,
            log: log.to_path_buf(),
            child,
        })
    }

    /// The process's name in messages.
    pub fn name(&self) -> String {
        match self.role {
            Role::Mds => format!("mds {}", self.id),
            Role::Chunkserver => format!("chunkserver {}", self.id),
            Role::Mount => "mount".into(),
        }
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }

    /// Waits up to `within` for the process to exit after [`Proc::terminate`], then kills it.
    /// Returns whether it exited on its own.
    pub async fn wait_or_kill(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}
