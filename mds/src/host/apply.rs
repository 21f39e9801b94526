//! Applying committed entries: file-system commands through the state machine, chunkserver
//! reports into the registry, conf changes into raft. Each entry's effects, its idempotency
//! record and the applied index go into the round's transaction.

use crdt::codec;
use heed::RwTxn;
use proto::chunk::CsRequest;
use proto::{Errno, FsReply};
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, Entry, EntryType};
use shardmap::{ShardId, ShardTable};
use uuid::Uuid;

use crate::error::StoreError;
use crate::fs::{self, Command, ShardCtx};
use crate::host::shared::Note;
use crate::raft::group::Waiter;
use crate::raft::{ConfContext, Group, LogEntry};
use crate::store::cluster::ChunkserverInfo;
use crate::store::sessions::StoredReply;
use crate::store::{ShardView, Store};

/// An applied entry whose proposer waits on this node.
#[derive(Debug)]
pub struct Applied {
    index: u64,
    waiter: Waiter,
    outcome: Option<Result<FsReply, Errno>>,
}

impl Applied {
    /// Answers the waiter (after the round's transaction committed).
    pub fn answer(self) {
        match (self.waiter, self.outcome) {
            (Waiter::Fs(tx), Some(reply)) => drop(tx.send(Ok((reply, self.index)))),
            (Waiter::Fs(tx), None) => drop(tx.send(Ok((Err(Errno::EINVAL), self.index)))),
            (Waiter::Index(tx), _) => drop(tx.send(Ok(self.index))),
            (Waiter::Conf(tx), _) => drop(tx.send(Ok(proto::admin::AdminReply::Done))),
        }
    }
}

fn corrupt(what: &'static str) -> impl Fn(String) -> StoreError {
    move |reason| StoreError::Corrupt { what, reason }
}

/// Applies `entries` (in order) to group `g`'s shard.
pub fn apply_entries(
    store: &Store,
    w: &mut RwTxn,
    g: &mut Group,
    table: &ShardTable,
    entries: Vec<Entry>,
) -> Result<Vec<Applied>, StoreError> {
    let shard = g.shard;
    let mut out = Vec::new();
    let Some(last) = entries.last().map(|e| (e.index, e.term)) else {
        return Ok(out);
    };
    for e in entries {
        match e.get_entry_type() {
            EntryType::EntryNormal if e.data.is_empty() => {}
            EntryType::EntryNormal => {
                let entry: LogEntry =
                    codec::decode(&e.data).map_err(|x| corrupt("log entry")(x.to_string()))?;
                let ctx = ShardCtx {
                    shard: ShardId(shard),
                    table,
                };
                let outcome = match entry {
                    LogEntry::Fs(cmd) => Some(apply_command(store, w, ctx, e.index, cmd, &mut g.notes)?),
                    LogEntry::BootstrapRoot { stamp, now } => {
                        let view = ShardView::new(store, w, shard);
                        let mut meta = fs::FsState::meta(&view)?;
                        let stamp = stamp.raised_above(meta.last_stamp);
                        let mut effects =
                            fs::bootstrap_root(&view, ctx, stamp, now, delta_id(shard, e.index))?;
                        if let Some(m) = effects.meta.take() {
                            meta = m;
                        }
                        meta.last_stamp = stamp;
                        effects.meta = Some(meta);
                        store.write_effects(w, shard, effects)?;
                        None
                    }
                    LogEntry::Chunkserver(req) => {
                        apply_chunkserver(store, w, shard, req)?;
                        None
                    }
                };
                if let Some(waiter) = g.take_proposal(&e.context) {
                    out.push(Applied {
                        index: e.index,
                        waiter,
                        outcome,
                    });
                }
            }
            EntryType::EntryConfChangeV2 => {
                let cc = ConfChangeV2::parse_from_bytes(&e.data)
                    .map_err(|x| corrupt("conf change")(x.to_string()))?;
                apply_conf_change(store, w, g, &cc, &e, &mut out)?;
            }
            EntryType::EntryConfChange => {
                let cc = ConfChange::parse_from_bytes(&e.data)
                    .map_err(|x| corrupt("conf change")(x.to_string()))?;
                apply_conf_change(store, w, g, &cc, &e, &mut out)?;
            }
        }
    }
    g.applied = last;
    store.set_applied(w, shard, last.0, last.1)?;
    Ok(out)
}

fn delta_id(shard: u32, index: u64) -> Uuid {
    Uuid::from_u64_pair(u64::from(shard), index)
}

/// Runs one file-system command, unless it was applied before (a retried proposal that
/// committed twice), in which case the first answer stands.
fn apply_command(
    store: &Store,
    w: &mut RwTxn,
    ctx: ShardCtx<'_>,
    index: u64,
    cmd: Command,
    notes: &mut Vec<Note>,
) -> Result<Result<FsReply, Errno>, StoreError> {
    let shard = ctx.shard.0;
    if cmd.seq != 0
        && let Some(first) = store.reply(w, shard, cmd.client, cmd.seq)?
    {
        return Ok(first.0);
    }
    let view = ShardView::new(store, w, shard);
    let meta = fs::FsState::meta(&view)?;
    let stamp = cmd.stamp.raised_above(meta.last_stamp);
    let cmd = Command {
        stamp,
        delta_id: delta_id(shard, index),
        ..cmd
    };
    let (mut effects, reply) = fs::execute(&view, ctx, &cmd)?;
    let mut meta = effects.meta.take().unwrap_or(meta);
    meta.last_stamp = stamp;
    effects.meta = Some(meta);
    if !effects.records.is_empty() {
        notes.push(Note {
            client: cmd.client,
            inodes: effects.records.inodes.iter().map(|(i, _)| i.0).collect(),
            entries: effects
                .records
                .entries
                .iter()
                .map(|(d, e, _)| (d.0, e.name.as_bytes().to_vec()))
                .collect(),
        });
    }
    store.write_effects(w, shard, effects)?;
    if cmd.seq != 0 {
        store.put_reply(
            w,
            shard,
            cmd.client,
            cmd.seq,
            cmd.acked_below,
            &StoredReply(reply.clone()),
        )?;
    }
    Ok(reply)
}

/// Records a chunkserver's registration (shard 0) or its report about this shard's chunks.
fn apply_chunkserver(store: &Store, w: &mut RwTxn, shard: u32, req: CsRequest) -> Result<(), StoreError> {
    match req {
        CsRequest::Register {
            id,
            addr,
            http,
            capacity,
            used,
        } => store.put_chunkserver(
            w,
            &ChunkserverInfo {
                id,
                addr,
                http,
                capacity,
                used,
            },
        ),
        CsRequest::Heartbeat {
            id, capacity, used, ..
        } => match store.chunkserver(w, id)? {
            Some(cs) => store.put_chunkserver(w, &ChunkserverInfo { capacity, used, ..cs }),
            None => Ok(()),
        },
        CsRequest::ChunkReport {
            id,
            shard: about,
            held,
            lost,
            full,
        } => {
            if about != shard {
                tracing::warn!(
                    shard,
                    about,
                    chunkserver = id,
                    "ignoring a chunk report sent to the wrong shard"
                );
                return Ok(());
            }
            store.record_report(w, shard, id, &held, &lost, full)
        }
    }
}

fn apply_conf_change<C: raft_proto::ConfChangeI>(
    store: &Store,
    w: &mut RwTxn,
    g: &mut Group,
    cc: &C,
    e: &Entry,
    out: &mut Vec<Applied>,
) -> Result<(), StoreError> {
    let cs = g
        .raw
        .apply_conf_change(cc)
        .map_err(|x| corrupt("conf change")(format!("raft refused it: {x}")))?;
    store.set_conf_state(w, g.shard, &cs)?;
    g.conf_changed = true;
    if !e.context.is_empty() {
        let ctx: ConfContext =
            codec::decode(&e.context).map_err(|x| corrupt("conf context")(x.to_string()))?;
        if let Some(node) = &ctx.node {
            store.put_node(w, node)?;
        }
        if let Some(waiter) = g.take_conf_proposal(ctx.proposal) {
            out.push(Applied {
                index: e.index,
                waiter,
                outcome: None,
            });
        }
    }
    Ok(())
}
