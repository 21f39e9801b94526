//! The HTTP port: `GET /health` (role per shard), `GET /status` (JSON: shards, peers,
//! chunkservers heard here, chunk health of the shards led here) and `GET /metrics`
//! (Prometheus text), served by the shared `web` responder.

use std::sync::Arc;

use web::{Page, Routes};

use crate::host::Shared;
use crate::keeper::Keeper;
use crate::metrics::Metrics;
use crate::store::Store;

/// What the HTTP port reads.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// This node.
    pub node: u64,
    /// Host publication.
    pub shared: Arc<Shared>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The store (its usage is read at scrape time).
    pub store: Store,
    /// Chunkserver liveness and chunk health.
    pub keeper: Arc<Keeper>,
}

/// The routes of a metadata server.
pub fn routes(state: HttpState) -> Routes {
    Arc::new(move |path| match path {
        "/health" => {
            let shards: Vec<serde_json::Value> = state
                .shared
                .statuses()
                .iter()
                .map(|s| serde_json::json!({ "shard": s.shard, "role": format!("{:?}", s.role).to_lowercase() }))
                .collect();
            Page::json(format!(
                "{}\n",
                serde_json::json!({ "node": state.node, "status": "ok", "shards": shards })
            ))
        }
        "/status" => {
            let shards: Vec<serde_json::Value> = state.shared.statuses().iter().map(status_json).collect();
            let peers: Vec<serde_json::Value> = state
                .shared
                .nodes()
                .iter()
                .map(|n| serde_json::json!({ "id": n.id, "client": n.client_addr, "raft": n.raft_addr, "http": n.http_addr }))
                .collect();
            let now = std::time::Instant::now();
            let chunkservers = state.keeper.chunkservers(now);
            let mut health: Vec<_> = state.keeper.health().into_iter().collect();
            health.sort_by_key(|h| h.0);
            let chunks: Vec<serde_json::Value> = health
                .iter()
                .map(|(shard, h)| serde_json::json!({ "shard": shard, "chunks": h.chunks, "under_goal": h.under_goal, "missing": h.missing, "garbage": h.garbage }))
                .collect();
            Page::json(format!(
                "{:#}\n",
                serde_json::json!({
                    "node": state.node,
                    "shards": shards,
                    "peers": peers,
                    "chunkservers": chunkservers,
                    "chunks": chunks,
                    "queued_orders": state.keeper.queued_orders(),
                })
            ))
        }
        "/metrics" => {
            if let Ok(u) = state.store.usage() {
                state
                    .metrics
                    .lmdb_used
                    .set(i64::try_from(u.used).unwrap_or(i64::MAX));
                state
                    .metrics
                    .lmdb_map
                    .set(i64::try_from(u.map).unwrap_or(i64::MAX));
            }
            Page::metrics(state.metrics.encode())
        }
        _ => Page::not_found("/health, /status or /metrics"),
    })
}

fn status_json(s: &proto::admin::ShardStatus) -> serde_json::Value {
    serde_json::json!({
        "shard": s.shard,
        "role": format!("{:?}", s.role).to_lowercase(),
        "term": s.term,
        "leader": s.leader,
        "commit": s.commit,
        "applied": s.applied,
        "voters": s.voters,
        "learners": s.learners,
        "matched": s.matched,
    })
}
