//! A FUSE mount of the run's cluster, made by the harness inside the clients' namespace (its
//! child shares the harness's mount namespace, so the harness sees the files), for the file
//! workloads.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A running `mooseng mount`; unmounted when dropped. Starting and dropping one wait for the
/// kernel (polling every 50 ms): do both on a blocking thread.
#[derive(Debug)]
pub struct Mount {
    dir: PathBuf,
    child: Option<Child>,
}

impl Mount {
    /// Mounts the cluster of `cluster_dir` at `dir` (created) and waits until it is mounted;
    /// the mount's log goes to `log`.
    #[allow(clippy::disallowed_methods, reason = "called on a blocking thread")]
    pub fn start(bin: &Path, cluster_dir: &Path, dir: &Path, log: &Path) -> anyhow::Result<Mount> {
        std::fs::create_dir_all(dir)?;
        let log = std::fs::File::create(log)?;
        let child = Command::new(bin)
            .arg("mount")
            .arg(dir)
            .arg("--cluster-dir")
            .arg(cluster_dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawning mooseng mount")?;
        let mut mount = Mount {
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        let started = Instant::now();
        while !mount.mounted() {
            if let Some(c) = mount.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                mount.child = None;
                bail!(
                    "mooseng mount {} exited ({status}) before mounting",
                    dir.display()
                );
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("{} was not mounted within 20 s", dir.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(mount)
    }

    /// The mountpoint.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn mounted(&self) -> bool {
        let target = self.dir.display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(4) == Some(target.as_str())))
    }
}

impl Drop for Mount {
    #[allow(clippy::disallowed_methods, reason = "dropped on a blocking thread")]
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.mounted() {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.dir)
                .status();
        }
    }
}
