//! FUSE mounts of a [`Cluster`] (`mooseng mount` processes) and the whole-file-system start
//! that mount tests share.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Cluster, http_get};

/// A running `mooseng mount`.
#[derive(Debug)]
pub struct Mount {
    /// Where it is mounted.
    pub path: PathBuf,
    child: Option<Child>,
}

/// Whether `path` is a FUSE mount point.
pub fn is_mounted(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
        m.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 2 && Path::new(f[1]) == path && f[2].starts_with("fuse")
        })
    })
}

/// Whether this machine can mount FUSE file systems (`/dev/fuse` and `fusermount3`).
pub fn fuse_available() -> bool {
    Path::new("/dev/fuse").exists()
        && Command::new("fusermount3")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
}

/// Whether a FUSE test can run here. Without FUSE it is skipped (with a line on stderr),
/// unless `REQUIRE_FUSE` is set, which turns a missing FUSE into a failure.
pub fn fuse_or_skip() -> bool {
    if fuse_available() {
        return true;
    }
    assert!(
        std::env::var_os("REQUIRE_FUSE").is_none(),
        "REQUIRE_FUSE is set but FUSE is not available"
    );
    eprintln!("skipped: no /dev/fuse");
    false
}

impl Cluster {
    /// Starts a whole file system: `mds` metadata servers (one shard, up to 3 replicas),
    /// `chunkservers` chunkservers with `disks` data dirs each, and waits until every metadata
    /// server sees every chunkserver alive.
    pub fn start_fs(bin: PathBuf, mds: u64, chunkservers: u64, disks: usize) -> Cluster {
        let mut c = Cluster::start(bin, None, mds, 3.min(mds as usize), &[]);
        c.start_chunkservers(chunkservers, disks);
        c.wait_chunkservers_alive(chunkservers as usize, Duration::from_secs(60));
        c
    }

    /// Waits until every running metadata server's `/status` shows `n` chunkservers alive.
    pub fn wait_chunkservers_alive(&self, n: usize, within: Duration) {
        let started = Instant::now();
        loop {
            let fewest = self
                .nodes
                .iter()
                .filter(|node| node.child.is_some())
                .map(|node| {
                    let body = http_get(node.http, "/status").1;
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    v["chunkservers"]
                        .as_array()
                        .map_or(0, |a| a.iter().filter(|c| c["alive"] == true).count())
                })
                .min()
                .unwrap_or(0);
            if fewest >= n {
                return;
            }
            assert!(
                started.elapsed() < within,
                "{n} chunkservers not alive everywhere within {within:?}"
            );
            crate::pause(Duration::from_millis(100));
        }
    }

    /// Mounts the file system at a new directory with `options` (`-o`, empty for the
    /// defaults) and waits until the mount is up.
    pub fn mount(&self, options: &str) -> Mount {
        let n = std::fs::read_dir(self.dir.path()).map_or(0, |d| d.count());
        let path = self.dir.path().join(format!("mnt{n}"));
        std::fs::create_dir_all(&path).expect("create a mount point");
        let path = std::fs::canonicalize(&path).expect("canonical mount point");
        let log = self.log_file(&format!("mount{n}.log"));
        let mut cmd = Command::new(&self.bin);
        cmd.arg("mount")
            .arg(&path)
            .arg("--cluster-dir")
            .arg(self.cluster_dir());
        if !options.is_empty() {
            cmd.args(["-o", options]);
        }
        let child = cmd
            .env("RUST_LOG", &self.log_filter)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mooseng mount");
        let mut m = Mount {
            path,
            child: Some(child),
        };
        let started = Instant::now();
        while !is_mounted(&m.path) {
            if let Some(Ok(Some(status))) = m.child.as_mut().map(Child::try_wait) {
                panic!("mooseng mount exited ({status}); see mount{n}.log");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "not mounted within 30 s"
            );
            crate::pause(Duration::from_millis(20));
        }
        m
    }
}

impl Mount {
    /// `path` inside the mount.
    pub fn join(&self, path: impl AsRef<Path>) -> PathBuf {
        self.path.join(path)
    }

    /// Unmounts with SIGTERM (as a user's Ctrl-C would) and waits for the process to exit;
    /// returns whether it exited successfully within 20 s.
    pub fn unmount(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success() && !is_mounted(&self.path);
            }
            crate::pause(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if is_mounted(&self.path) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.path)
                .status();
        }
    }
}
