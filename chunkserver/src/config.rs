//! The chunkserver's configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a chunkserver needs to run; checked by [`CsConfig::validate`].
#[derive(Debug, Clone)]
pub struct CsConfig {
    /// Chunkserver id (at least 1), stable across restarts; its certificate is `cs-<id>`.
    pub id: u64,
    /// Data directories, typically one per disk. Each must exist (a missing mount point is
    /// reported as a failed dir, not replaced by a directory on the root file system).
    pub data_dirs: Vec<PathBuf>,
    /// Data port (QUIC), announced to the metadata tier as the address clients dial; port 0
    /// picks a free one. Default `127.0.0.1:9430`.
    pub data_addr: SocketAddr,
    /// HTTP port for `/health`, `/status` and `/metrics`. Default `127.0.0.1:9431`.
    pub http_addr: SocketAddr,
    /// Client addresses of metadata servers (any of them; the registry's leader is found
    /// from there).
    pub mds: Vec<SocketAddr>,
    /// Directory holding `ca.pem` and this server's `cs-<id>.pem` / `cs-<id>.key`.
    pub tls_dir: PathBuf,
    /// Interval between heartbeats to the metadata tier, and between checks of the data
    /// dirs. Default 1 s.
    pub heartbeat: Duration,
    /// Interval between incremental chunk reports while copies change. Default 500 ms.
    pub report_interval: Duration,
    /// How long one registration, heartbeat or report keeps retrying before the metadata
    /// tier counts as unreachable. Default 5 s.
    pub mds_timeout: Duration,
    /// Longest wait between attempts to register again while the metadata tier is
    /// unreachable (the wait doubles from 100 ms). Default 10 s.
    pub retry_max: Duration,
    /// How long dialling another chunkserver may take. Default 3 s.
    pub connect_timeout: Duration,
    /// How long a forwarded request may take, per chunkserver left in the chain (so each
    /// server gives up before the one before it). Default 30 s.
    pub forward_timeout: Duration,
    /// Replications (orders or requests) running at once. Default 2.
    pub max_replications: usize,
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunkserver configuration: {0}")]
pub struct ConfigError(pub String);

impl CsConfig {
    /// Defaults for everything but identity, paths and the metadata tier.
    pub fn new(id: u64, data_dirs: Vec<PathBuf>, tls_dir: PathBuf, mds: Vec<SocketAddr>) -> Self {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        CsConfig {
            id,
            data_dirs,
            data_addr: local(9430),
            http_addr: local(9431),
            mds,
            tls_dir,
            heartbeat: Duration::from_secs(1),
            report_interval: Duration::from_millis(500),
            mds_timeout: Duration::from_secs(5),
            retry_max: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            forward_timeout: Duration::from_secs(30),
            max_replications: 2,
        }
    }

    /// Checks every field and the rules between them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError(m));
        if self.id == 0 {
            return fail("chunkserver id must be at least 1".into());
        }
        if self.data_dirs.is_empty() {
            return fail("at least one data directory is needed".into());
        }
        for (i, a) in self.data_dirs.iter().enumerate() {
            for b in &self.data_dirs[i + 1..] {
                if a.starts_with(b) || b.starts_with(a) {
                    return fail(format!(
                        "data directories {} and {} overlap; give each disk one directory",
                        a.display(),
                        b.display()
                    ));
                }
            }
        }
        if self.data_addr.ip().is_unspecified() {
            return fail(format!(
                "data address {} is announced to clients, so it must be one they can reach, not a wildcard",
                self.data_addr
            ));
        }
        let Some(first) = self.mds.first() else {
            return fail("at least one metadata server address is needed".into());
        };
        if let Some(other) = self.mds.iter().find(|a| a.is_ipv4() != first.is_ipv4()) {
            return fail(format!(
                "metadata addresses {first} and {other} mix IPv4 and IPv6; the metadata client dials one family"
            ));
        }
        if self.mds.contains(&self.data_addr) {
            return fail(format!(
                "metadata address {} is this chunkserver's own data address",
                self.data_addr
            ));
        }
        for (what, d) in [
            ("heartbeat", self.heartbeat),
            ("report interval", self.report_interval),
            ("metadata timeout", self.mds_timeout),
            ("retry maximum", self.retry_max),
            ("connect timeout", self.connect_timeout),
        ] {
            if d.is_zero() {
                return fail(format!("{what} must be more than zero"));
            }
        }
        if self.connect_timeout >= self.forward_timeout {
            return fail(format!(
                "connect timeout {:?} must be shorter than the forward timeout {:?}, which includes dialling",
                self.connect_timeout, self.forward_timeout
            ));
        }
        if self.max_replications == 0 {
            return fail("max replications must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> CsConfig {
        CsConfig::new(
            1,
            vec!["/d1".into(), "/d2".into()],
            "/tls".into(),
            vec!["127.0.0.1:9421".parse().unwrap()],
        )
    }

    fn refused(change: impl FnOnce(&mut CsConfig), expect: &str) {
        let mut c = base();
        change(&mut c);
        let e = c.validate().unwrap_err();
        assert!(e.0.contains(expect), "{e} should mention {expect:?}");
    }

    #[test]
    fn defaults_are_valid() {
        base().validate().unwrap();
    }

    #[test]
    fn refuses_inconsistent_settings() {
        refused(|c| c.id = 0, "id");
        refused(|c| c.data_dirs.clear(), "data directory");
        refused(|c| c.data_dirs.push("/d1/inner".into()), "overlap");
        refused(|c| c.data_dirs.push("/d2".into()), "overlap");
        refused(|c| c.data_addr = "0.0.0.0:9430".parse().unwrap(), "wildcard");
        refused(|c| c.mds.clear(), "metadata server");
        refused(|c| c.mds.push("[::1]:9421".parse().unwrap()), "mix IPv4 and IPv6");
        refused(|c| c.mds.push(c.data_addr), "own data address");
        refused(|c| c.heartbeat = Duration::ZERO, "heartbeat");
        refused(|c| c.connect_timeout = c.forward_timeout, "connect timeout");
        refused(|c| c.max_replications = 0, "replications");
    }
}
