//! `run(config, shutdown)`: opens the data dirs, serves the data and HTTP ports, keeps the
//! link to the metadata tier and checks the dirs every heartbeat; on shutdown closes the
//! ports.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::data::DataClient;
use client::{ClientError, MdsClient};
use net::TlsFiles;
use proto::data::DATA_FRAME_CAP;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::{ConfigError, CsConfig};
use crate::http::{HttpState, routes};
use crate::link_state::LinkState;
use crate::mds_link::MdsLink;
use crate::metrics::Metrics;
use crate::service::DataService;
use crate::storage::{OpenError, Store};

/// How long closing waits for peers to acknowledge.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Why the chunkserver could not start.
#[derive(Debug, thiserror::Error)]
pub enum CsError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No data dir could be opened.
    #[error("data dirs: {0}")]
    Storage(#[from] OpenError),
    /// The certificate files are missing or unusable.
    #[error("tls files: {0}")]
    Tls(net::NetError),
    /// A port could not be bound.
    #[error("bind {what} {addr}: {reason}")]
    Bind {
        /// Which port.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// What failed.
        reason: String,
    },
    /// The metadata client could not be set up.
    #[error("metadata client: {0}")]
    Client(ClientError),
}

/// Runs a chunkserver until `shutdown` completes, then closes its ports.
pub async fn run(config: CsConfig, shutdown: impl Future<Output = ()>) -> Result<(), CsError> {
    config.validate()?;
    net::install_crypto_provider();
    let tls = TlsFiles::load(&config.tls_dir, &format!("cs-{}", config.id)).map_err(CsError::Tls)?;
    let dirs = config.data_dirs.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&dirs))
        .await
        .map_err(|e| OpenError::NoUsableDir(format!("opening panicked: {e}")))??;
    let store = Arc::new(store);

    let bind_failed = |what, addr, reason: String| CsError::Bind { what, addr, reason };
    let endpoint = net::endpoint::server(config.data_addr, &tls)
        .map_err(|e| bind_failed("data port", config.data_addr, e.to_string()))?;
    let data_addr = endpoint
        .local_addr()
        .map_err(|e| bind_failed("data port", config.data_addr, e.to_string()))?;
    let http = web::bind(config.http_addr)
        .await
        .map_err(|e| bind_failed("HTTP port", config.http_addr, e.to_string()))?;
    let http_addr = http
        .local_addr()
        .map_err(|e| bind_failed("HTTP port", config.http_addr, e.to_string()))?;

    let metrics = Arc::new(Metrics::new());
    let service = DataService {
        id: config.id,
        store: store.clone(),
        peers: Arc::new(DataClient::from_endpoint(
            endpoint.clone(),
            config.connect_timeout,
            config.forward_timeout,
        )),
        metrics: metrics.clone(),
        forward_timeout: config.forward_timeout,
        replications: Arc::new(Semaphore::new(config.max_replications)),
    };
    let mut client = MdsClient::new(config.mds.clone(), &tls).map_err(CsError::Client)?;
    client.deadline = config.mds_timeout;
    let client = Arc::new(client);
    let link_state = Arc::new(Mutex::new(LinkState::Connecting));

    let mut tasks = JoinSet::new();
    tasks.spawn(serve_data(endpoint.clone(), service.clone()));
    tasks.spawn(check_dirs(store.clone(), config.heartbeat));
    tasks.spawn(web::serve(
        http,
        routes(HttpState {
            id: config.id,
            data_addr,
            store: store.clone(),
            metrics,
            link: link_state.clone(),
        }),
    ));
    tasks.spawn(
        MdsLink {
            id: config.id,
            data_addr: data_addr.to_string(),
            http_addr: http_addr.to_string(),
            client: client.clone(),
            service,
            heartbeat: config.heartbeat,
            report_interval: config.report_interval,
            retry_max: config.retry_max,
            state: link_state,
        }
        .run(),
    );
    let usage = store.usage();
    tracing::info!(
        id = config.id,
        data = %data_addr,
        http = %http_addr,
        chunks = usage.chunks,
        capacity = usage.capacity,
        "chunkserver running"
    );

    shutdown.await;
    tracing::info!(id = config.id, "shutting down");
    tasks.abort_all();
    endpoint.close(quinn::VarInt::from_u32(0), b"shutdown");
    let _ = tokio::time::timeout(CLOSE_GRACE, endpoint.wait_idle()).await;
    client.close().await;
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Accepts data connections from any holder of a cluster certificate (clients and other
/// chunkservers) and serves them.
async fn serve_data(endpoint: quinn::Endpoint, service: DataService) {
    while let Some(incoming) = endpoint.accept().await {
        let service = service.clone();
        tokio::spawn(async move {
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => return tracing::debug!("data port handshake: {e}"),
            };
            net::serve_connection(conn, DATA_FRAME_CAP, move |req| service.clone().handle(req)).await;
        });
    }
}

/// Measures the dirs and notices failed ones every `every`.
async fn check_dirs(store: Arc<Store>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let store = store.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || store.refresh()).await {
            tracing::error!("data dir check failed: {e}");
        }
    }
}
