//! Chunkserver processes of a [`Cluster`]: each with its own data dirs (one per simulated
//! disk), ports and log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::{Cluster, free_port};

/// One chunkserver.
#[derive(Debug)]
pub struct Chunkserver {
    /// Its id (certificate `cs-<id>`).
    pub id: u64,
    /// Data address.
    pub data: SocketAddr,
    /// HTTP address.
    pub http: SocketAddr,
    /// Its data dirs.
    pub dirs: Vec<PathBuf>,
    /// The running process, if any.
    pub child: Option<Child>,
}

impl Cluster {
    /// Adds chunkservers 1..=`n` (certificates from `admin init`), each with `disks` data
    /// dirs, and starts them.
    pub fn start_chunkservers(&mut self, n: u64, disks: usize) {
        for id in 1..=n {
            let root = self.dir.path().join(format!("cs{id}"));
            let dirs: Vec<PathBuf> = (1..=disks).map(|d| root.join(format!("disk{d}"))).collect();
            for d in &dirs {
                std::fs::create_dir_all(d).expect("create a data dir");
            }
            let addr = |p| SocketAddr::from(([127, 0, 0, 1], p));
            self.chunkservers.push(Chunkserver {
                id,
                data: addr(free_port()),
                http: addr(free_port()),
                dirs,
                child: None,
            });
            self.spawn_chunkserver(id);
        }
    }

    /// A chunkserver by id.
    pub fn chunkserver(&self, id: u64) -> &Chunkserver {
        self.chunkservers
            .iter()
            .find(|c| c.id == id)
            .expect("known chunkserver")
    }

    /// Starts (or restarts) chunkserver `id`.
    pub fn spawn_chunkserver(&mut self, id: u64) {
        let cluster_dir = self.cluster_dir();
        let log = self.log_file(&format!("cs{id}.log"));
        let (bin, filter) = (self.bin.clone(), self.log_filter.clone());
        let cs = self
            .chunkservers
            .iter_mut()
            .find(|c| c.id == id)
            .expect("known chunkserver");
        assert!(cs.child.is_none(), "chunkserver {id} is already running");
        let dirs: Vec<String> = cs.dirs.iter().map(|d| d.display().to_string()).collect();
        let child = Command::new(bin)
            .arg("chunkserver")
            .arg("--cluster-dir")
            .arg(&cluster_dir)
            .args(["--id", &id.to_string(), "--data-dir", &dirs.join(",")])
            .args([
                "--data-addr",
                &cs.data.to_string(),
                "--http-addr",
                &cs.http.to_string(),
            ])
            .env("RUST_LOG", filter)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mooseng chunkserver");
        cs.child = Some(child);
    }

    /// Kills chunkserver `id` with SIGKILL.
    pub fn kill_chunkserver(&mut self, id: u64) {
        if let Some(cs) = self.chunkservers.iter_mut().find(|c| c.id == id)
            && let Some(mut c) = cs.child.take()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
