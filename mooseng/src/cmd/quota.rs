//! `mooseng admin quota get|set|clear PATH`: directory quotas. A quota root's tree (the
//! directory itself not counted) may hold at most `--bytes` of file data (the sum of its
//! regular files' sizes) and `--inodes` inodes; operations that would pass a limit fail with
//! `EDQUOT` ("Disk quota exceeded"). Making a directory a quota root counts what its tree holds
//! already; moving an entry between trees under different quota roots fails with `EXDEV`
//! (`mv` copies instead).
//!
//! PATH is as [`crate::cmd::nspath`] reads it.

use anyhow::bail;
use clap::Subcommand;
use client::units::{human, parse_size};
use client::{ClientError, MdsClient, ReadFrom};
use proto::fs::{Cred, FsOp, Quota, QuotaLimit};
use proto::{Errno, FsReply};

use crate::cmd::nspath::PathArgs;

/// `mooseng admin quota …`.
#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Print the quota of directory PATH and what its tree uses.
    Get(PathArgs),
    /// Make directory PATH a quota root (counting what it holds), or change its limits. A
    /// limit not given is unlimited.
    Set {
        #[command(flatten)]
        path: PathArgs,
        /// The most file data the tree may hold: bytes, or with a suffix (`10G`, `512M`).
        #[arg(long, value_parser = parse_size)]
        bytes: Option<u64>,
        /// The most inodes (files, directories, links, …) the tree may hold.
        #[arg(long)]
        inodes: Option<u64>,
    },
    /// Stop accounting for directory PATH: it is no longer a quota root.
    Clear(PathArgs),
}

/// Runs the subcommand.
pub async fn run(cmd: QuotaCommand) -> anyhow::Result<()> {
    let (path, op) = match cmd {
        QuotaCommand::Get(path) => (path, None),
        QuotaCommand::Set { path, bytes, inodes } => (path, Some(Some(QuotaLimit { bytes, inodes }))),
        QuotaCommand::Clear(path) => (path, Some(None)),
    };
    let (client, ino) = path.open().await?;
    let op = match op {
        None => FsOp::GetQuota { ino },
        Some(limit) => FsOp::SetQuota { ino, limit },
    };
    let shown = path.path.display();
    let quota = call(&client, op, &shown.to_string()).await?;
    match quota {
        Some(q) => println!("{shown}: {}", describe(&q)),
        None => println!("{shown}: no quota"),
    }
    Ok(())
}

async fn call(client: &MdsClient, op: FsOp, path: &str) -> anyhow::Result<Option<Quota>> {
    match client.fs(&Cred::root(), op, ReadFrom::Leader).await {
        Ok(FsReply::Quota(q)) => Ok(q),
        Err(ClientError::Fs(Errno::ENOTDIR)) => bail!("{path}: not a directory"),
        Err(ClientError::Fs(Errno::EXDEV)) => bail!(
            "{path}: a file in this tree has a hard link outside it; its names would count \
             under different quotas (remove or move that link first)"
        ),
        other => bail!("{path}: quota request failed: {other:?}"),
    }
}

/// `bytes 1 GiB of 10 GiB (10%), inodes 12 of unlimited`.
fn describe(q: &Quota) -> String {
    let of = |used: String, limit: Option<u64>, raw: u64, show: fn(u64) -> String| match limit {
        Some(l) => {
            let pct = raw.saturating_mul(100).checked_div(l).unwrap_or(100);
            format!("{used} of {} ({pct}%)", show(l))
        }
        None => format!("{used} of unlimited"),
    };
    format!(
        "bytes {}, inodes {}",
        of(human(q.bytes), q.limit.bytes, q.bytes, human),
        of(q.inodes.to_string(), q.limit.inodes, q.inodes, |n| n.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_reads_against_its_limits() {
        let q = Quota {
            limit: QuotaLimit {
                bytes: Some(10 << 30),
                inodes: None,
            },
            bytes: 1 << 30,
            inodes: 12,
        };
        assert_eq!(
            describe(&q),
            "bytes 1 GiB of 10 GiB (10%), inodes 12 of unlimited"
        );
    }
}
