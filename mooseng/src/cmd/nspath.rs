//! Paths in the cluster's namespace, as the admin commands take them: a namespace path
//! (`/projects/a`), or a path under a local mount of the cluster (`/mnt/mooseng/projects/a`),
//! which is translated.

use std::path::{Component, Path, PathBuf};

use anyhow::bail;
use clap::Args;
use client::{MdsClient, ReadFrom};
use proto::fs::{Cred, FsOp};
use proto::{Errno, FsReply};

use crate::cmd::ClusterArgs;

/// The path and the cluster.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// A path in the namespace, or under a local mount of the cluster.
    pub path: PathBuf,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

impl PathArgs {
    /// A client of the cluster and the inode the path names.
    pub async fn open(&self) -> anyhow::Result<(MdsClient, u64)> {
        let (_, client) = self.cluster.client()?;
        let ino = resolve(&client, &namespace_path(&self.path)?).await?;
        Ok((client, ino))
    }
}

/// The namespace path of `path`: itself if absolute and not under a local mount of MooseNG,
/// otherwise its part below the mount point.
fn namespace_path(path: &Path) -> anyhow::Result<PathBuf> {
    if let Ok(real) = std::fs::canonicalize(path)
        && let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts")
    {
        let mount = mounts
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() > 2 && f[0].starts_with("mooseng") && f[2].starts_with("fuse"))
                    .then(|| PathBuf::from(f[1]))
            })
            .filter(|m| real.starts_with(m))
            .max_by_key(|m| m.as_os_str().len());
        if let Some(m) = mount {
            return Ok(Path::new("/").join(real.strip_prefix(&m)?));
        }
    }
    if !path.is_absolute() {
        bail!(
            "{}: give an absolute namespace path or a path under a mount",
            path.display()
        );
    }
    Ok(path.to_path_buf())
}

/// The inode at namespace path `path`.
async fn resolve(client: &MdsClient, path: &Path) -> anyhow::Result<u64> {
    let mut ino = 1;
    for c in path.components() {
        let name = match c {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(n) => n.as_encoded_bytes().to_vec(),
            _ => bail!("{}: `..` is not supported", path.display()),
        };
        let op = FsOp::Lookup { parent: ino, name };
        ino = match client.fs(&Cred::root(), op, ReadFrom::Leader).await {
            Ok(FsReply::Attr(a)) => a.ino,
            Err(client::ClientError::Fs(Errno::ENOENT)) => {
                bail!("{}: no such file or directory", path.display())
            }
            other => bail!("{}: lookup failed: {other:?}", path.display()),
        };
    }
    Ok(ino)
}
