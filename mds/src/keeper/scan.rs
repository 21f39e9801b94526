//! The repair loop. Every scan interval, for each shard this server leads, it reads the next
//! page of the shard's live chunks and of its garbage, plans each chunk and queues the orders.
//! A pass over a table ends when a page comes back short; the health counted over the pass is
//! then published.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crdt::model::{Ino, RecordsView};
use proto::admin::Role;
use proto::chunk::Order;
use proto::data::Server;

use crate::error::StoreError;
use crate::fs::ops::goal;
use crate::host::Shared;
use crate::keeper::plan::{self, Action};
use crate::keeper::{Keeper, ShardHealth, lock};
use crate::metrics::{Metrics, OrderLabel, ShardLabel};
use crate::store::{ShardView, Store};

/// Chunks read per table per shard per scan interval.
pub const PAGE: usize = 4096;

/// Where a shard's passes are, and what they counted so far.
#[derive(Debug, Default, Clone, Copy)]
struct Pass {
    live_after: u64,
    garbage_after: u64,
    counted: ShardHealth,
}

/// What one page found.
#[derive(Debug, Default)]
struct Page {
    /// Orders: (chunkserver, order).
    orders: Vec<(u64, Order)>,
    live_last: Option<u64>,
    garbage_last: Option<u64>,
    counted: ShardHealth,
}

/// Liveness as one page sees it.
struct View {
    /// Live chunkservers and their data addresses.
    alive: HashMap<u64, String>,
    /// Live chunkservers with room, best first.
    placement: Vec<u64>,
}

/// Runs the repair loop until the task is dropped.
pub async fn run(keeper: Arc<Keeper>, store: Store, shared: Arc<Shared>, node: u64, metrics: Arc<Metrics>) {
    let mut passes: HashMap<u32, Pass> = HashMap::new();
    let mut tick = tokio::time::interval(keeper.settings().scan_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let servers = keeper.chunkservers(now);
        metrics
            .chunkservers_alive
            .set(servers.iter().filter(|s| s.alive).count() as i64);
        lock(&keeper.book).expire(now);
        let led: Vec<u32> = shared
            .statuses()
            .into_iter()
            .filter(|s| s.role == Role::Leader && s.leader == node)
            .map(|s| s.shard)
            .collect();
        passes.retain(|shard, _| led.contains(shard));
        lock(&keeper.health).retain(|shard, _| led.contains(shard));
        if !lock(&keeper.live).settled(now) {
            continue;
        }
        let view = Arc::new(View {
            alive: servers
                .iter()
                .filter(|s| s.alive)
                .map(|s| (s.id, s.addr.clone()))
                .collect(),
            placement: keeper.placement(now).into_iter().map(|p| p.0).collect(),
        });
        for shard in led {
            let pass = *passes.entry(shard).or_default();
            let (store, view) = (store.clone(), view.clone());
            let page = match tokio::task::spawn_blocking(move || scan_page(&store, shard, pass, &view)).await
            {
                Ok(Ok(page)) => page,
                Ok(Err(e)) => {
                    tracing::warn!(shard, "chunk scan: {e}");
                    continue;
                }
                Err(_) => continue,
            };
            queue(&keeper, &metrics, page.orders, Instant::now());
            let pass = passes.entry(shard).or_default();
            let c = &mut pass.counted;
            c.chunks += page.counted.chunks;
            c.under_goal += page.counted.under_goal;
            c.missing += page.counted.missing;
            c.garbage += page.counted.garbage;
            match page.live_last {
                Some(last) => pass.live_after = last,
                None => {
                    let mut health = lock(&keeper.health);
                    let h = health.entry(shard).or_default();
                    (h.chunks, h.under_goal, h.missing) = (c.chunks, c.under_goal, c.missing);
                    let l = ShardLabel { shard };
                    metrics
                        .chunks_under_goal
                        .get_or_create(&l)
                        .set(c.under_goal as i64);
                    metrics.chunks_missing.get_or_create(&l).set(c.missing as i64);
                    pass.live_after = 0;
                    (c.chunks, c.under_goal, c.missing) = (0, 0, 0);
                }
            }
            match page.garbage_last {
                Some(last) => pass.garbage_after = last,
                None => {
                    lock(&keeper.health).entry(shard).or_default().garbage = c.garbage;
                    pass.garbage_after = 0;
                    c.garbage = 0;
                }
            }
        }
    }
}

fn queue(keeper: &Keeper, metrics: &Metrics, orders: Vec<(u64, Order)>, now: Instant) {
    let mut book = lock(&keeper.book);
    for (server, order) in orders {
        let kind = match order {
            Order::Replicate { .. } => "replicate",
            Order::Delete { .. } => "delete",
        };
        if book.issue(vec![(server, order)], now) > 0 {
            metrics.chunk_orders.get_or_create(&OrderLabel { kind }).inc();
        }
    }
}

/// Reads and plans one page of each of the shard's chunk tables.
fn scan_page(store: &Store, shard: u32, pass: Pass, view: &View) -> Result<Page, StoreError> {
    let txn = store.read()?;
    let records = ShardView::new(store, &txn, shard);
    let alive = |id: u64| view.alive.contains_key(&id);
    let mut page = Page::default();
    let live = store.owned_after(&txn, shard, pass.live_after, PAGE)?;
    if live.len() == PAGE {
        page.live_last = live.last().map(|c| c.0);
    }
    for (chunk, ino) in live {
        let Some(inode) = records.inode(Ino(ino))? else {
            continue;
        };
        let copies = store.chunk_copies(&txn, shard, chunk)?;
        let (health, actions) = plan::live_chunk(
            chunk,
            &copies,
            goal::effective(inode.goal()),
            alive,
            &view.placement,
        );
        page.counted.chunks += 1;
        page.counted.under_goal += u64::from(health.under_goal());
        page.counted.missing += u64::from(health.missing());
        page.orders.extend(orders(chunk, actions, &view.alive));
    }
    let garbage = store.garbage_after(&txn, shard, pass.garbage_after, PAGE)?;
    if garbage.len() == PAGE {
        page.garbage_last = garbage.last().copied();
    }
    for chunk in garbage {
        page.counted.garbage += 1;
        let copies = store.chunk_copies(&txn, shard, chunk)?;
        page.orders
            .extend(orders(chunk, plan::garbage(&copies, alive), &view.alive));
    }
    Ok(page)
}

/// The orders carrying out `actions` on `chunk`, with the source addresses from `addrs`.
fn orders(chunk: u64, actions: Vec<Action>, addrs: &HashMap<u64, String>) -> Vec<(u64, Order)> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Replicate { to, from, version } => {
                let addr = addrs.get(&from)?.clone();
                let from = Server { id: from, addr };
                Some((to, Order::Replicate { chunk, version, from }))
            }
            Action::Delete { on, version } => Some((on, Order::Delete { chunk, version })),
        })
        .collect()
}
