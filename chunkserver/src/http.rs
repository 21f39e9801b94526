//! The HTTP port: `GET /health`, `GET /status` (JSON) and `GET /metrics` (Prometheus text),
//! served by the shared `web` responder. Everything shown was measured by the last refresh
//! of the data dirs; nothing here touches a disk.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use web::{Page, Routes};

use crate::link_state::LinkState;
use crate::metrics::Metrics;
use crate::storage::{DirState, Store, lock};

/// What the HTTP port reads.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// This chunkserver.
    pub id: u64,
    /// Its data address.
    pub data_addr: SocketAddr,
    /// Its copies and dirs.
    pub store: Arc<Store>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The link to the metadata tier.
    pub link: Arc<Mutex<LinkState>>,
}

/// The routes of a chunkserver.
pub fn routes(state: HttpState) -> Routes {
    Arc::new(move |path| match path {
        "/health" => health(&state),
        "/status" => Page::json(format!("{:#}\n", status(&state))),
        "/metrics" => {
            state.metrics.observe_usage(state.store.usage());
            Page::metrics(state.metrics.encode())
        }
        _ => Page::not_found("/health, /status or /metrics"),
    })
}

/// `200` while some data dir works, `503` when none does.
fn health(state: &HttpState) -> Page {
    let usable = state
        .store
        .dirs()
        .iter()
        .any(|d| !matches!(d.state, DirState::Failed(_)));
    let body = serde_json::json!({ "id": state.id, "status": if usable { "ok" } else { "failed" } });
    let page = Page::json(format!("{body}\n"));
    if usable {
        page
    } else {
        Page {
            status: "503 Service Unavailable",
            ..page
        }
    }
}

fn status(state: &HttpState) -> serde_json::Value {
    let usage = state.store.usage();
    let dirs: Vec<serde_json::Value> = state
        .store
        .dirs()
        .into_iter()
        .map(|d| {
            let reason = match &d.state {
                DirState::Failed(r) => Some(r.clone()),
                _ => None,
            };
            serde_json::json!({
                "path": d.path.display().to_string(),
                "state": d.state.name(),
                "reason": reason,
                "capacity": d.space.total,
                "used": d.space.total.saturating_sub(d.space.available),
                "available": d.space.available,
                "chunks": d.chunks,
            })
        })
        .collect();
    serde_json::json!({
        "id": state.id,
        "data_addr": state.data_addr.to_string(),
        "mds": lock(&state.link).name(),
        "capacity": usage.capacity,
        "used": usage.used,
        "chunks": usage.chunks,
        "dirs": dirs,
    })
}
