//! `run(config, shutdown)`: wires the store, the raft host thread, the peer transport, the
//! client port and the HTTP port together, and takes them down in order.

use std::future::Future;
use std::sync::Arc;

use net::TlsFiles;

use crate::cluster::ClusterFile;
use crate::config::MdsConfig;
use crate::host::{Host, HostMsg, HostParts, Shared};
use crate::keeper::Keeper;
use crate::metrics::Metrics;
use crate::server::Server;
use crate::sessions::Sessions;
use crate::store::Store;
use crate::transport::Transport;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum MdsError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The cluster file is unusable.
    #[error("cluster file: {0}")]
    Cluster(#[from] crate::cluster::ClusterFileError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
    /// TLS material or an endpoint could not be set up.
    #[error("transport: {0}")]
    Net(#[from] net::NetError),
    /// A port could not be bound.
    #[error("bind {what} {addr}: {source}")]
    Bind {
        /// Which port.
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The host thread could not start or died.
    #[error("raft host thread: {0}")]
    Host(String),
    /// A deliberate bug was asked for (see `bugs`) that this build cannot switch on.
    #[error("deliberate bug: {0}")]
    Bug(String),
}

/// Runs a metadata server until `shutdown` completes, then hands leadership over, stops the
/// host and closes the ports.
pub async fn run(config: MdsConfig, shutdown: impl Future<Output = ()>) -> Result<(), MdsError> {
    config.validate()?;
    #[cfg(feature = "deliberate-bugs")]
    crate::bugs::init().map_err(MdsError::Bug)?;
    #[cfg(not(feature = "deliberate-bugs"))]
    if std::env::var_os("MOOSENG_DELIBERATE_BUG").is_some() {
        return Err(MdsError::Bug(
            "MOOSENG_DELIBERATE_BUG is set, but this build has no deliberate bugs \
             (they exist only with the deliberate-bugs feature, for the Jepsen harness's tests)"
                .into(),
        ));
    }
    net::install_crypto_provider();
    let cluster = ClusterFile::load(&config.cluster_file)?;
    let table = cluster.table()?;
    let tls = TlsFiles::load(&config.tls_dir, &format!("node-{}", config.node_id))?;
    let store = Store::open(
        &config.data_dir.join("lmdb"),
        config.lmdb_map_size,
        config.lmdb_reserve,
    )?;
    let shared = Shared::new();
    let metrics = Arc::new(Metrics::new());

    let mut nodes = cluster.node_infos();
    if !nodes.iter().any(|n| n.id == config.node_id) {
        nodes.push(proto::admin::NodeInfo {
            id: config.node_id,
            client_addr: config.client_addr.to_string(),
            raft_addr: config.raft_addr.to_string(),
            http_addr: config.http_addr.to_string(),
        });
    }
    let (host_tx, host_rx) = std::sync::mpsc::channel();
    shared.connect_host(host_tx.clone());
    let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel();
    let host = Host::open(HostParts {
        node: config.node_id,
        store: store.clone(),
        wal_dir: config.data_dir.join("wal"),
        wal_segment_size: config.wal_segment_size,
        settings: config.raft(),
        table: table.clone(),
        nodes,
        inbox: host_rx,
        out: out_tx,
        shared: shared.clone(),
        metrics: metrics.clone(),
        max_clock_offset: config.max_clock_offset,
    })?;
    let host_thread = std::thread::Builder::new()
        .name("raft-host".into())
        .spawn(move || host.run())
        .map_err(|e| MdsError::Host(e.to_string()))?;

    let bind = |what, addr, r: Result<quinn::Endpoint, net::NetError>| {
        r.map_err(|e| MdsError::Bind {
            what,
            addr,
            source: std::io::Error::other(e.to_string()),
        })
    };
    let raft_ep = bind(
        "raft port",
        config.raft_addr,
        net::endpoint::peer(config.raft_addr, &tls),
    )?;
    let client_ep = bind(
        "client port",
        config.client_addr,
        net::endpoint::server(config.client_addr, &tls),
    )?;
    let http = web::bind(config.http_addr)
        .await
        .map_err(|source| MdsError::Bind {
            what: "HTTP port",
            addr: config.http_addr,
            source,
        })?;

    let transport = Transport {
        node: config.node_id,
        endpoint: raft_ep.clone(),
        shared: shared.clone(),
        host: host_tx.clone(),
        store: store.clone(),
        spool_dir: config.data_dir.join("snapshots"),
    };
    let keeper = Arc::new(Keeper::new(config.keeper, std::time::Instant::now()));
    let sessions = Arc::new(Sessions::default());
    let server = Server {
        store: store.clone(),
        shared: shared.clone(),
        host: host_tx.clone(),
        table: Arc::new(table),
        metrics: metrics.clone(),
        timeout: config.request_timeout,
        keeper: keeper.clone(),
        sessions: sessions.clone(),
        session_timeout: config.session_timeout,
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(transport.clone().dispatch(out_rx));
    tasks.spawn(transport.accept());
    tasks.spawn(serve_clients(client_ep.clone(), server));
    tasks.spawn(crate::sessions::reaper::run(
        sessions,
        store.clone(),
        shared.clone(),
        host_tx.clone(),
        config.node_id,
        config.session_timeout,
    ));
    tasks.spawn(crate::keeper::scan::run(
        keeper.clone(),
        store.clone(),
        shared.clone(),
        config.node_id,
        metrics.clone(),
    ));
    let http_state = crate::http::HttpState {
        node: config.node_id,
        shared,
        metrics,
        store,
        keeper,
    };
    tasks.spawn(web::serve(http, crate::http::routes(http_state)));
    tracing::info!(
        node = config.node_id,
        client = %config.client_addr,
        raft = %config.raft_addr,
        http = %config.http_addr,
        "metadata server running"
    );

    // A raft host that dies (a panic: raft-rs refuses to go on, or a bug) leaves nothing that
    // can serve or persist; the process ends with an error then, for a supervisor to restart
    // it, rather than linger with open ports that never answer.
    let mut host_join = tokio::task::spawn_blocking(move || host_thread.join());
    tokio::pin!(shutdown);
    let joined = tokio::select! {
        _ = &mut shutdown => {
            tracing::info!(node = config.node_id, "shutting down");
            let _ = host_tx.send(HostMsg::Shutdown);
            host_join.await
        }
        joined = &mut host_join => {
            tracing::error!(node = config.node_id, "the raft host thread stopped; exiting");
            joined
        }
    };
    client_ep.close(quinn::VarInt::from_u32(0), b"shutdown");
    raft_ep.close(quinn::VarInt::from_u32(0), b"shutdown");
    tasks.abort_all();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), client_ep.wait_idle()).await;
    match joined {
        Ok(Ok(())) => Ok(()),
        _ => Err(MdsError::Host("the raft host thread panicked".into())),
    }
}

async fn serve_clients(endpoint: quinn::Endpoint, server: Server) {
    while let Some(incoming) = endpoint.accept().await {
        let server = server.clone();
        tokio::spawn(async move {
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => return tracing::debug!("client port handshake: {e}"),
            };
            net::serve_connection(conn, proto::CLIENT_FRAME_CAP, move |req| {
                server.clone().handle(req)
            })
            .await;
        });
    }
}
