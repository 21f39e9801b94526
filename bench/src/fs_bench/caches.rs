//! Dropping the kernel's caches, so that a phase reaches the file system rather than the
//! dentry, inode or page cache of an earlier one.
//!
//! Through FUSE an evicted dentry or inode means a LOOKUP (or GETATTR) to the daemon again,
//! and an evicted page a READ. The file system's own caches (a daemon's attribute cache, the
//! metadata server's RAM or LMDB pages) are not touched by `Level::Metadata`: that is the
//! state of a file system whose client has not seen these names lately.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

/// What to drop.
#[derive(Debug, Clone, Copy)]
pub enum Level {
    /// Dentries and inodes (`echo 2 > /proc/sys/vm/drop_caches`).
    Metadata,
    /// The page cache too (`echo 3`): file data, everywhere on the machine.
    All,
}

/// `sync`, then drops the caches of `level`. Needs root.
pub fn drop(level: Level) -> anyhow::Result<()> {
    let status = Command::new("sync").status().context("run sync")?;
    if !status.success() {
        bail!("sync failed: {status}");
    }
    let value = match level {
        Level::Metadata => "2\n",
        Level::All => "3\n",
    };
    std::fs::write("/proc/sys/vm/drop_caches", value).context("write /proc/sys/vm/drop_caches")?;
    Ok(())
}

/// The type of the file system mounted at the longest mountpoint holding `path`, as in
/// /proc/self/mounts (`fuse`, `fuse.bindfs`, `tmpfs` …), or `unknown`.
pub fn fstype(path: &Path) -> String {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return "unknown".into();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2).then(|| (unescape(f[1]), f[2].to_string()))
        })
        .filter(|(mnt, _)| path.starts_with(mnt))
        .max_by_key(|(mnt, _)| mnt.len())
        .map_or_else(|| "unknown".into(), |(_, t)| t)
}

/// Undoes the octal escapes of /proc/self/mounts (`\040` is a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).and_then(|d| std::str::from_utf8(d).ok());
        if b[i] == b'\\'
            && let Some(v) = octal.and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescape() {
        assert_eq!(super::unescape(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(super::unescape("/plain"), "/plain");
        assert_eq!(super::unescape(r"/end\04"), r"/end\04");
    }
}
