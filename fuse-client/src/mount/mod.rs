//! Mounting: [`run`] connects to the cluster, mounts, serves until `shutdown` completes or the
//! kernel unmounts (`fusermount3 -u`), then lands buffered writes and unmounts.
//!
//! The mount never uses fuser's `AutoUnmount`: with it, an in-process unmount leaves the mount
//! behind and joining the session hangs (cberner/fuser#407, fixed after 0.18). A mountpoint
//! still busy at shutdown is detached lazily (`fusermount3 -u -z`): it disappears from the
//! namespace at once, and files still open keep working while the process lives.

mod config;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use client::MdsClient;
use client::data::DataClient;
use fuser::{MountOption, Session, SessionACL};
use net::TlsFiles;
use tokio::runtime::RuntimeFlavor;
use tokio::sync::oneshot;

pub use self::config::{ConfigError, MountConfig, MountOptions, OptionsError};
use crate::core::release::RELEASE_INTERVAL;
use crate::core::{Data, Fs, Meta, watch};
use crate::fuse::{FuseFs, Ttl, notify};

/// How long the FUSE session may take to end after the mountpoint was unmounted.
const SESSION_END: Duration = Duration::from_secs(10);

/// Why a mount could not start or did not end cleanly.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The configuration cannot work.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The `-o` options are bad.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The TLS material could not be loaded or used.
    #[error("tls: {0}")]
    Tls(net::NetError),
    /// No metadata server answered.
    #[error("cannot reach the metadata servers: {0}")]
    Connect(client::ClientError),
    /// The mount must run on a multi-threaded tokio runtime (FUSE threads hand it work and
    /// wait for it at unmount).
    #[error("the mount needs a multi-threaded tokio runtime")]
    Runtime,
    /// The mountpoint is not a directory.
    #[error("mountpoint {0}: not a directory")]
    Mountpoint(PathBuf),
    /// The kernel refused the mount (permissions, `/dev/fuse`, `fusermount3`).
    #[error("mount {mountpoint}: {source}")]
    Mount {
        /// The mountpoint.
        mountpoint: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The mountpoint could not be unmounted.
    #[error("unmount {mountpoint}: {source}")]
    Unmount {
        /// The mountpoint.
        mountpoint: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The FUSE session failed.
    #[error("fuse session: {0}")]
    Session(std::io::Error),
}

/// How long a mount waits at start for a metadata server to answer: a cluster may be starting
/// with its clients (a compose lab, a test harness).
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// Fetches the topology, retrying while no metadata server answers, for up to
/// [`CONNECT_WAIT`].
async fn first_contact(mds: &MdsClient) -> Result<(), MountError> {
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        match mds.topology().await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() < CONNECT_WAIT => {
                if !std::mem::replace(&mut told, true) {
                    tracing::warn!(
                        "no metadata server answers yet ({e}); retrying for up to {CONNECT_WAIT:?}"
                    );
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(MountError::Connect(e)),
        }
    }
}

/// Mounts the file system `config` describes, serves it until `shutdown` completes or the
/// kernel unmounts it, then lands buffered writes and unmounts cleanly.
pub async fn run(config: MountConfig, shutdown: impl Future<Output = ()>) -> Result<(), MountError> {
    config.validate()?;
    net::install_crypto_provider();
    let tls = TlsFiles::load(&config.tls_dir, &config.identity).map_err(MountError::Tls)?;
    let mds = MdsClient::new(config.masters.clone(), &tls).map_err(MountError::Connect)?;
    first_contact(&mds).await?;
    let data = DataClient::new(&tls).map_err(MountError::Tls)?;
    let fs = Arc::new(Fs::new(mds, data, config.options.core()));
    let keep_alive = tokio::spawn(keep_alive(fs.clone()));
    let (stop_releaser, stopped) = tokio::sync::watch::channel(());
    let releaser = tokio::spawn(send_releases(fs.clone(), stopped));
    let served = serve(fs.clone(), &config, shutdown).await;
    keep_alive.abort();
    drop(stop_releaser);
    let _ = releaser.await;
    fs.send_releases().await;
    fs.meta().close().await;
    fs.data().close();
    served
}

/// Sends the queued releases of server handles every [`RELEASE_INTERVAL`] until `stop`'s
/// sender is dropped (never in the middle of a batch).
async fn send_releases(fs: Arc<Fs<MdsClient, DataClient>>, mut stop: tokio::sync::watch::Receiver<()>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(RELEASE_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        fs.send_releases().await;
    }
}

/// Keeps this mount's session alive at every metadata server (its open files and locks are
/// released once it is silent for the servers' session timeout), three times per timeout.
async fn keep_alive(fs: Arc<Fs<MdsClient, DataClient>>) {
    let mut failing = false;
    loop {
        let wait = match fs.meta().keep_alive().await {
            Ok(timeout) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("metadata servers reachable again; session kept");
                }
                timeout / 3
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!("cannot reach the metadata servers to keep the session alive: {e}");
                }
                Duration::from_secs(1)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Mounts `fs` as `config` says and serves it (see [`run`]).
pub(crate) async fn serve<M: Meta, D: Data>(
    fs: Arc<Fs<M, D>>,
    config: &MountConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MountError> {
    let rt = tokio::runtime::Handle::current();
    if rt.runtime_flavor() != RuntimeFlavor::MultiThread {
        return Err(MountError::Runtime);
    }
    let mountpoint = config.mountpoint.clone();
    if !mountpoint.is_dir() {
        return Err(MountError::Mountpoint(mountpoint));
    }
    let ttl = Ttl {
        attr: config.options.attr_ttl,
        entry: config.options.entry_ttl,
    };
    let fuse = FuseFs::new(fs.clone(), rt, ttl);
    let session_config = session_config(config);
    let at = mountpoint.clone();
    let mounted = tokio::task::spawn_blocking(move || Session::new(fuse, &at, &session_config))
        .await
        .map_err(|e| MountError::Session(std::io::Error::other(e)))?;
    let mut session = mounted.map_err(|source| MountError::Mount {
        mountpoint: mountpoint.clone(),
        source,
    })?;
    let notifier = session.notifier();
    let unmounter = session.unmount_callable();
    let (ended_tx, mut ended) = oneshot::channel();
    std::thread::Builder::new()
        .name("mooseng-fuse".into())
        .spawn(move || {
            let _ = ended_tx.send(session.run());
        })
        .map_err(MountError::Session)?;
    let (invalidations, inval_rx) = tokio::sync::mpsc::unbounded_channel();
    let invalidator = notify::spawn(notifier, inval_rx).map_err(MountError::Session)?;
    let watcher = tokio::spawn(watch::run(fs.clone(), invalidations));
    tracing::info!(mountpoint = %mountpoint.display(), "mounted");

    let by_kernel = tokio::select! {
        () = shutdown => None,
        r = &mut ended => Some(r),
    };
    watcher.abort();
    let _ = watcher.await;
    let _ = tokio::task::spawn_blocking(move || invalidator.join()).await;
    let ended = match by_kernel {
        Some(r) => r,
        None => {
            fs.flush_all().await;
            let lazy = unmount(unmounter, &mountpoint).await?;
            let wait = if lazy { SESSION_END / 2 } else { SESSION_END };
            let ended = tokio::time::timeout(wait, ended).await;
            // Writes made to files still open after the first flush.
            fs.flush_all().await;
            match ended {
                // The kernel tears down the connection of the superblock this unmount
                // released; a read racing with that teardown reports it as aborted.
                Ok(Ok(Err(e))) if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(Ok(())),
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(mountpoint = %mountpoint.display(), "files are still open on the detached mount; they fail once this process exits");
                    return Ok(());
                }
            }
        }
    };
    tracing::info!(mountpoint = %mountpoint.display(), "unmounted");
    match ended {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(MountError::Session(e)),
        Err(_) => Err(MountError::Session(std::io::Error::other(
            "the FUSE session thread died",
        ))),
    }
}

/// The fuser session configuration for `config`.
fn session_config(config: &MountConfig) -> fuser::Config {
    let o = &config.options;
    let fsname = match config.masters.first() {
        Some(a) => format!("mooseng:{a}"),
        None => "mooseng".into(),
    };
    let mut mount_options = vec![
        MountOption::FSName(fsname),
        MountOption::Subtype("mooseng".into()),
    ];
    if o.default_permissions {
        mount_options.push(MountOption::DefaultPermissions);
    }
    if o.read_only {
        mount_options.push(MountOption::RO);
    }
    if o.noatime {
        mount_options.push(MountOption::NoAtime);
    }
    let mut c = fuser::Config::default();
    c.mount_options = mount_options;
    c.acl = if o.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    c.n_threads = Some(config.threads);
    c.clone_fd = true;
    c
}

/// Unmounts `mountpoint`; if it is busy, detaches it lazily. Returns whether it was lazy.
async fn unmount(mut unmounter: fuser::SessionUnmounter, mountpoint: &Path) -> Result<bool, MountError> {
    let failed = |source| MountError::Unmount {
        mountpoint: mountpoint.to_path_buf(),
        source,
    };
    let tried = tokio::task::spawn_blocking(move || unmounter.unmount())
        .await
        .map_err(|e| failed(std::io::Error::other(e)))?;
    match tried {
        Ok(()) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            tracing::warn!(mountpoint = %mountpoint.display(), "mountpoint busy: detaching it lazily");
            let mp = mountpoint.to_path_buf();
            let status = tokio::task::spawn_blocking(move || {
                std::process::Command::new("fusermount3")
                    .arg("-u")
                    .arg("-z")
                    .arg(&mp)
                    .status()
            })
            .await
            .map_err(|e| failed(std::io::Error::other(e)))?
            .map_err(failed)?;
            if status.success() {
                Ok(true)
            } else {
                Err(failed(std::io::Error::other(format!(
                    "fusermount3 -u -z: {status}"
                ))))
            }
        }
        Err(e) => Err(failed(e)),
    }
}
