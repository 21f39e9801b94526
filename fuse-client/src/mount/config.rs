//! The mount's configuration: [`MountConfig`], its `-o` options and their validation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::core::FsConfig;

/// The longest attribute or entry TTL accepted.
const MAX_TTL: Duration = Duration::from_secs(3600);
/// The most FUSE event-loop threads accepted.
const MAX_THREADS: usize = 64;

/// Everything `mooseng mount` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct MountConfig {
    /// The directory to mount on (must exist).
    pub mountpoint: PathBuf,
    /// Client addresses of metadata servers to bootstrap from (any of them; port 9421).
    pub masters: Vec<SocketAddr>,
    /// Directory of the cluster's TLS material (`ca.pem`, `<identity>.pem`, `<identity>.key`).
    pub tls_dir: PathBuf,
    /// Stem of the client certificate in `tls_dir` (default `client-admin`).
    pub identity: String,
    /// The `-o` options.
    pub options: MountOptions,
    /// FUSE event-loop threads, each reading the device through its own cloned descriptor
    /// (default 4). They only dispatch: operations run on the tokio runtime.
    pub threads: usize,
}

/// The `-o` options of a mount. The consistency mode is `strict` (every change is acknowledged
/// once a majority of its shard's replicas has it durably), the default and for now the only
/// one: `-o strict` is accepted, `-o optimistic` refused until the delta ring exists.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    /// `allow_other`: users other than the one mounting may use the mount (needs
    /// `user_allow_other` in `/etc/fuse.conf` when not mounted by root).
    pub allow_other: bool,
    /// `default_permissions`: the kernel also checks mode bits before asking (the metadata
    /// servers check permissions in every case).
    pub default_permissions: bool,
    /// `ro`: read-only (no atime updates either).
    pub read_only: bool,
    /// `noatime`: never update atime on reads (default: relatime).
    pub noatime: bool,
    /// `attr_ttl=SECONDS`: how long the kernel caches attributes (default 1 s).
    pub attr_ttl: Duration,
    /// `entry_ttl=SECONDS`: how long the kernel caches names (default 1 s).
    pub entry_ttl: Duration,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            allow_other: false,
            default_permissions: false,
            read_only: false,
            noatime: false,
            attr_ttl: Duration::from_secs(1),
            entry_ttl: Duration::from_secs(1),
        }
    }
}

impl MountOptions {
    /// The core's tunables for these options.
    pub fn core(&self) -> FsConfig {
        FsConfig {
            relatime: !self.read_only && !self.noatime,
            ..FsConfig::default()
        }
    }
}

/// A bad `-o` option string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// `optimistic` is not available yet.
    #[error(
        "-o optimistic: optimistic mode arrives with the delta ring; this build mounts in strict mode only"
    )]
    Optimistic,
    /// An option nobody knows.
    #[error(
        "-o {0}: unknown option (known: strict, allow_other, default_permissions, ro, rw, noatime, relatime, attr_ttl=SECONDS, entry_ttl=SECONDS)"
    )]
    Unknown(String),
    /// An option whose value is missing or malformed.
    #[error("-o {option}: {reason}")]
    BadValue {
        /// The option as given.
        option: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl MountConfig {
    /// A configuration with default options.
    pub fn new(mountpoint: PathBuf, masters: Vec<SocketAddr>, tls_dir: PathBuf) -> Self {
        MountConfig {
            mountpoint,
            masters,
            tls_dir,
            identity: "client-admin".into(),
            options: MountOptions::default(),
            threads: 4,
        }
    }

    /// Parses `-o` options (`a,b,c=d`; later options override earlier ones) over the defaults.
    pub fn parse_options(s: &str) -> Result<MountOptions, OptionsError> {
        let mut o = MountOptions::default();
        for opt in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (name, value) = match opt.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (opt, None),
            };
            let bare = || match value {
                None => Ok(true),
                Some(_) => Err(OptionsError::BadValue {
                    option: opt.into(),
                    reason: "takes no value".into(),
                }),
            };
            match name {
                "strict" => _ = bare()?,
                "optimistic" => return Err(OptionsError::Optimistic),
                "allow_other" => o.allow_other = bare()?,
                "default_permissions" => o.default_permissions = bare()?,
                "ro" => o.read_only = bare()?,
                "rw" => o.read_only = !bare()?,
                "noatime" => o.noatime = bare()?,
                "relatime" => o.noatime = !bare()?,
                "attr_ttl" => o.attr_ttl = seconds(opt, value)?,
                "entry_ttl" => o.entry_ttl = seconds(opt, value)?,
                _ => return Err(OptionsError::Unknown(opt.into())),
            }
        }
        Ok(o)
    }

    /// Checks what can be checked before mounting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, reason: &str| {
            Err(ConfigError {
                field,
                reason: reason.into(),
            })
        };
        if self.mountpoint.as_os_str().is_empty() {
            return bad("mountpoint", "empty");
        }
        if self.masters.is_empty() {
            return bad("masters", "at least one metadata server address is needed");
        }
        if self.identity.is_empty() || self.identity.contains('/') {
            return bad("identity", "must be a certificate file stem (no '/')");
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return bad("threads", &format!("must be 1 to {MAX_THREADS}"));
        }
        for (field, ttl) in [
            ("attr_ttl", self.options.attr_ttl),
            ("entry_ttl", self.options.entry_ttl),
        ] {
            if ttl > MAX_TTL {
                return bad(field, &format!("at most {} s", MAX_TTL.as_secs()));
            }
        }
        Ok(())
    }
}

/// A non-negative number of seconds (fractions allowed) for option `opt`.
fn seconds(opt: &str, value: Option<&str>) -> Result<Duration, OptionsError> {
    let bad = |reason: &str| OptionsError::BadValue {
        option: opt.into(),
        reason: reason.into(),
    };
    let v = value.ok_or_else(|| bad("needs a value in seconds"))?;
    let secs: f64 = v.parse().map_err(|_| bad("not a number of seconds"))?;
    if !secs.is_finite() || secs < 0.0 || secs > MAX_TTL.as_secs_f64() {
        return Err(bad(&format!(
            "must be between 0 and {} seconds",
            MAX_TTL.as_secs()
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_options_parse_over_the_defaults() {
        assert_eq!(MountConfig::parse_options("").unwrap(), MountOptions::default());
        let o = MountConfig::parse_options(
            "strict,allow_other, default_permissions,ro,attr_ttl=0.5,entry_ttl=10",
        )
        .unwrap();
        assert!(o.allow_other && o.default_permissions && o.read_only);
        assert_eq!(o.attr_ttl, Duration::from_millis(500));
        assert_eq!(o.entry_ttl, Duration::from_secs(10));
        assert!(!o.core().relatime, "ro mounts do not update atime");
        let o = MountConfig::parse_options("ro,rw,noatime,relatime,attr_ttl=0").unwrap();
        assert!(!o.read_only && !o.noatime, "later options win");
        assert_eq!(o.attr_ttl, Duration::ZERO);
        assert!(o.core().relatime);
    }

    #[test]
    fn bad_options_are_refused_with_the_option_named() {
        for (s, want) in [
            ("allow_others", OptionsError::Unknown("allow_others".into())),
            (
                "ro=1",
                OptionsError::BadValue {
                    option: "ro=1".into(),
                    reason: "takes no value".into(),
                },
            ),
            (
                "attr_ttl",
                OptionsError::BadValue {
                    option: "attr_ttl".into(),
                    reason: "needs a value in seconds".into(),
                },
            ),
            (
                "entry_ttl=soon",
                OptionsError::BadValue {
                    option: "entry_ttl=soon".into(),
                    reason: "not a number of seconds".into(),
                },
            ),
        ] {
            assert_eq!(MountConfig::parse_options(s), Err(want), "{s}");
        }
        for s in ["attr_ttl=-1", "attr_ttl=NaN", "entry_ttl=1e9"] {
            assert!(
                matches!(MountConfig::parse_options(s), Err(OptionsError::BadValue { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn optimistic_is_a_clear_error_not_ignored() {
        let e = MountConfig::parse_options("allow_other,optimistic").unwrap_err();
        assert_eq!(e, OptionsError::Optimistic);
        assert!(
            e.to_string()
                .contains("optimistic mode arrives with the delta ring"),
            "{e}"
        );
    }

    #[test]
    fn validate_refuses_what_cannot_work() {
        let good = MountConfig::new(
            "/mnt/m".into(),
            vec!["127.0.0.1:9421".parse().unwrap()],
            "/etc/m/tls".into(),
        );
        assert_eq!(good.validate(), Ok(()));
        let cases: Vec<(MountConfig, &str)> = vec![
            (
                MountConfig {
                    masters: vec![],
                    ..good.clone()
                },
                "masters",
            ),
            (
                MountConfig {
                    mountpoint: PathBuf::new(),
                    ..good.clone()
                },
                "mountpoint",
            ),
            (
                MountConfig {
                    identity: "../key".into(),
                    ..good.clone()
                },
                "identity",
            ),
            (
                MountConfig {
                    threads: 0,
                    ..good.clone()
                },
                "threads",
            ),
            (
                MountConfig {
                    threads: 65,
                    ..good.clone()
                },
                "threads",
            ),
            (
                MountConfig {
                    options: MountOptions {
                        attr_ttl: Duration::from_secs(7200),
                        ..MountOptions::default()
                    },
                    ..good.clone()
                },
                "attr_ttl",
            ),
        ];
        for (c, field) in cases {
            assert_eq!(c.validate().unwrap_err().field, field);
        }
    }
}
