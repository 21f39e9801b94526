//! The link to the metadata tier: register (through shard 0), send each shard's leader the
//! full report of that shard's chunks, then heartbeat every metadata server every
//! `heartbeat` and send incremental reports (split by shard) every `report_interval` while
//! copies change. Heartbeat answers carry [`Order`]s, which run in the background through
//! the data service.
//!
//! Any failed exchange ends the session: the loop waits (with backoff, see [`Link`]) and
//! registers again with a new full report; changes whose report failed are queued again and
//! follow it. Data keeps being served throughout.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{ClientError, MdsClient};
use proto::chunk::{CsReply, CsRequest, FullReport, HeldChunk, Order};
use proto::data::{DataReply, DataRequest};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::link_state::{Link, LinkState};
use crate::service::{DataService, reply_kind};
use crate::storage::lock;

/// Most chunks named in one report message (about 1.5 MB encoded, well under the client
/// frame cap).
const REPORT_BATCH: usize = 100_000;

/// The link's settings and handles.
#[derive(Debug)]
pub struct MdsLink {
    /// This chunkserver.
    pub id: u64,
    /// Data address announced at registration.
    pub data_addr: String,
    /// HTTP address announced at registration.
    pub http_addr: String,
    /// The metadata client.
    pub client: Arc<MdsClient>,
    /// Executes orders (and owns the store).
    pub service: DataService,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Incremental report interval.
    pub report_interval: Duration,
    /// Longest wait between registration attempts.
    pub retry_max: Duration,
    /// The state shown by `/status`.
    pub state: Arc<Mutex<LinkState>>,
}

impl MdsLink {
    /// Runs until the task is dropped (at shutdown), which also cancels running orders.
    pub async fn run(self) {
        let mut link = Link::new(self.retry_max);
        let mut orders = Orders::default();
        loop {
            let e = self.session(&mut link, &mut orders).await;
            self.service.metrics.error("mds");
            let (wait, changed) = link.failed();
            *lock(&self.state) = link.state();
            if changed {
                tracing::warn!(error = %e, "metadata tier unreachable; serving data and retrying");
            } else {
                tracing::debug!(error = %e, ?wait, "metadata tier still unreachable");
            }
            orders.sleep_reaping(wait).await;
        }
    }

    /// One registration and what follows it, until an exchange fails.
    async fn session(&self, link: &mut Link, orders: &mut Orders) -> ClientError {
        if let Err(e) = self.register(orders).await {
            return e;
        }
        if let Some(failures) = link.registered() {
            tracing::info!(
                id = self.id,
                failed_attempts = failures,
                "registered with the metadata tier"
            );
        }
        *lock(&self.state) = link.state();
        let mut heartbeat = tokio::time::interval(self.heartbeat);
        let mut report = tokio::time::interval(self.report_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        report.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let sent = tokio::select! {
                _ = heartbeat.tick() => self.send_heartbeat(orders).await,
                _ = report.tick() => self.send_changes(orders).await,
                Some(_) = orders.tasks.join_next(), if !orders.tasks.is_empty() => Ok(()),
            };
            if let Err(e) = sent {
                return e;
            }
        }
    }

    async fn register(&self, orders: &mut Orders) -> Result<(), ClientError> {
        let usage = self.service.store.usage();
        let register = CsRequest::Register {
            id: self.id,
            addr: self.data_addr.clone(),
            http: self.http_addr.clone(),
            capacity: usage.capacity,
            used: usage.used,
        };
        self.send(register, orders).await?;
        let table = self.client.refresh_topology().await?.table;
        let store = self.service.store.clone();
        let held = tokio::task::spawn_blocking(move || store.full_report())
            .await
            .unwrap_or_default();
        let session = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        // Every shard gets a full report (possibly empty), in parts; the last part tells the
        // shard to forget copies on this server that no part listed.
        let mut by_shard: BTreeMap<u32, Vec<HeldChunk>> =
            table.shards.iter().map(|s| (s.id.0, Vec::new())).collect();
        for h in held {
            by_shard
                .entry(table.shard_of_id(h.chunk).id.0)
                .or_default()
                .push(h);
        }
        for (shard, held) in by_shard {
            let parts: Vec<&[HeldChunk]> = if held.is_empty() {
                vec![&[]]
            } else {
                held.chunks(REPORT_BATCH).collect()
            };
            let n = parts.len();
            for (i, part) in parts.into_iter().enumerate() {
                let report = CsRequest::ChunkReport {
                    id: self.id,
                    shard,
                    held: part.to_vec(),
                    lost: Vec::new(),
                    full: Some(FullReport {
                        session,
                        last: i + 1 == n,
                    }),
                };
                self.send(report, orders).await?;
            }
        }
        Ok(())
    }

    /// Heartbeats every metadata server; each answers with the orders it queued for us.
    async fn send_heartbeat(&self, orders: &mut Orders) -> Result<(), ClientError> {
        let usage = self.service.store.usage();
        let heartbeat = CsRequest::Heartbeat {
            id: self.id,
            addr: self.data_addr.clone(),
            capacity: usage.capacity,
            used: usage.used,
            chunks: usage.chunks,
        };
        for reply in self.client.heartbeat_all(heartbeat).await? {
            if let CsReply::Orders(list) = reply {
                orders.start(list, &self.service);
            }
        }
        Ok(())
    }

    /// Reports changed copies to the leaders of their shards.
    async fn send_changes(&self, orders: &mut Orders) -> Result<(), ClientError> {
        let store = &self.service.store;
        let mut changes = store.take_changes();
        if changes.is_empty() {
            return Ok(());
        }
        let table = match self.client.topology().await {
            Ok(t) => t.table,
            Err(e) => {
                store.requeue(changes);
                return Err(e);
            }
        };
        while !changes.is_empty() {
            let part = changes.take_first(REPORT_BATCH);
            let (held, lost) = part.report();
            let mut by_shard: BTreeMap<u32, (Vec<HeldChunk>, Vec<u64>)> = BTreeMap::new();
            for h in held {
                by_shard
                    .entry(table.shard_of_id(h.chunk).id.0)
                    .or_default()
                    .0
                    .push(h);
            }
            for chunk in lost {
                by_shard
                    .entry(table.shard_of_id(chunk).id.0)
                    .or_default()
                    .1
                    .push(chunk);
            }
            for (shard, (held, lost)) in by_shard {
                let report = CsRequest::ChunkReport {
                    id: self.id,
                    shard,
                    held,
                    lost,
                    full: None,
                };
                if let Err(e) = self.send(report, orders).await {
                    // Reported after the next registration, unless overtaken by newer changes.
                    // Shards that got their part see it again, which is harmless.
                    store.requeue(part);
                    store.requeue(changes);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    async fn send(&self, req: CsRequest, orders: &mut Orders) -> Result<(), ClientError> {
        match self.client.chunkserver(req).await? {
            CsReply::Ok => {}
            CsReply::Orders(list) => orders.start(list, &self.service),
        }
        Ok(())
    }
}

/// Orders running in the background, at most one per chunk.
#[derive(Debug, Default)]
struct Orders {
    tasks: JoinSet<()>,
    busy: Arc<Mutex<HashSet<u64>>>,
}

impl Orders {
    fn start(&mut self, list: Vec<Order>, service: &DataService) {
        for order in list {
            let (chunk, what, req) = match order {
                Order::Replicate { chunk, version, from } => (
                    chunk,
                    format!("replicate version {version} from chunkserver {}", from.id),
                    DataRequest::Replicate { chunk, version, from },
                ),
                Order::Delete { chunk, version } => (
                    chunk,
                    format!("delete version {version:?}"),
                    DataRequest::Delete { chunk, version },
                ),
            };
            if !lock(&self.busy).insert(chunk) {
                continue;
            }
            let service = service.clone();
            let busy = self.busy.clone();
            self.tasks.spawn(async move {
                match service.handle(req).await {
                    DataReply::Done => tracing::info!(chunk, order = what, "order done"),
                    other => {
                        tracing::warn!(chunk, order = what, outcome = reply_kind(&other), "order failed")
                    }
                }
                lock(&busy).remove(&chunk);
            });
        }
    }

    /// Waits `wait`, reaping finished orders meanwhile.
    async fn sleep_reaping(&mut self, wait: Duration) {
        let mut sleep = std::pin::pin!(tokio::time::sleep(wait));
        loop {
            tokio::select! {
                () = &mut sleep => return,
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
    }
}
