//! Node-to-node transport on the raft port: one QUIC connection per peer node carries every
//! shard's raft messages in batches on a long-lived stream; snapshots stream on a stream of
//! their own. Only peers presenting a node certificate are accepted.
//!
//! Messages that cannot be sent (peer down, connection lost) are dropped: raft retransmits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use proto::PEER_FRAME_CAP;
use proto::peer::PeerFrame;
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::sync::mpsc;

use crate::host::snapshot::{Record, write_spool};
use crate::host::{HostMsg, Outgoing, Shared};
use crate::store::Store;

/// Largest number of raft messages in one frame.
const BATCH: usize = 256;
/// Records per snapshot frame, by size.
const SNAPSHOT_BATCH_BYTES: usize = 1 << 20;

/// What the transport tasks share.
#[derive(Clone)]
pub struct Transport {
    /// This node.
    pub node: u64,
    /// The raft endpoint (it also dials peers).
    pub endpoint: quinn::Endpoint,
    /// Peer addresses.
    pub shared: Arc<Shared>,
    /// The host thread's inbox.
    pub host: Sender<HostMsg>,
    /// The store (snapshots are read from it).
    pub store: Store,
    /// Where received snapshots are spooled.
    pub spool_dir: PathBuf,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Routes the host's outgoing messages to one task per peer.
    pub async fn dispatch(self, mut out: mpsc::UnboundedReceiver<Outgoing>) {
        let mut peers: HashMap<u64, mpsc::Sender<(u32, Message)>> = HashMap::new();
        while let Some(o) = out.recv().await {
            match o {
                Outgoing::Raft { to, shard, msg } => {
                    let tx = peers.entry(to).or_insert_with(|| {
                        let (tx, rx) = mpsc::channel(4096);
                        tokio::spawn(self.clone().peer(to, rx));
                        tx
                    });
                    // A full queue means the peer is not keeping up: drop, raft retransmits.
                    let _ = tx.try_send((shard, msg));
                }
                Outgoing::Snapshot { to, shard, msg } => {
                    tokio::spawn(self.clone().send_snapshot(to, shard, msg));
                }
            }
        }
    }

    async fn connect(&self, to: u64) -> Option<quinn::Connection> {
        let addr: SocketAddr = self.shared.node(to)?.raft_addr.parse().ok()?;
        match net::connect(&self.endpoint, addr).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::debug!(to, %addr, "connect to peer: {e}");
                None
            }
        }
    }

    /// Sends batches of raft messages to node `to`, reconnecting with backoff.
    async fn peer(self, to: u64, mut rx: mpsc::Receiver<(u32, Message)>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let Some(conn) = self.connect(to).await else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                drain(&mut rx);
                continue;
            };
            backoff = Duration::from_millis(50);
            let Ok(mut send) = conn.open_uni().await else {
                continue;
            };
            loop {
                let Some(first) = rx.recv().await else { return };
                let mut msgs = vec![encode(first)];
                while msgs.len() < BATCH {
                    match rx.try_recv() {
                        Ok(m) => msgs.push(encode(m)),
                        Err(_) => break,
                    }
                }
                if let Err(e) = net::write_frame(
                    &mut send,
                    &PeerFrame::Raft {
                        from: self.node,
                        msgs,
                    },
                )
                .await
                {
                    tracing::debug!(to, "send raft batch: {e}");
                    break;
                }
            }
        }
    }

    /// Streams a shard's records to node `to`, then the `MsgSnapshot` that installs them.
    async fn send_snapshot(self, to: u64, shard: u32, mut msg: Message) {
        let ok = self.stream_snapshot(to, shard, &mut msg).await;
        if let Err(e) = &ok {
            tracing::warn!(shard, to, "snapshot transfer failed: {e}");
        }
        let _ = self.host.send(HostMsg::SnapshotSent {
            shard,
            to,
            ok: ok.is_ok(),
        });
    }

    async fn stream_snapshot(&self, to: u64, shard: u32, msg: &mut Message) -> Result<u64, String> {
        let conn = self.connect(to).await.ok_or("peer unreachable")?;
        let mut send = conn.open_uni().await.map_err(|e| e.to_string())?;
        let (tx, mut rx) = mpsc::channel::<Result<Vec<Record>, String>>(4);
        let store = self.store.clone();
        // One read transaction gives the records and the metadata they match.
        let (meta_tx, meta_rx) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let read = || -> Result<u64, crate::error::StoreError> {
                let r = store.read()?;
                let (index, term) = store.applied(&r, shard)?;
                let cs = store.conf_state(&r, shard)?;
                let _ = meta_tx.send((index, term, cs));
                store.snapshot_records(&r, shard, SNAPSHOT_BATCH_BYTES, |batch| {
                    tx.blocking_send(Ok(batch))
                        .map_err(|_| crate::error::StoreError::Corrupt {
                            what: "snapshot",
                            reason: "receiver gone".into(),
                        })
                })
            };
            if let Err(e) = read() {
                let _ = tx.blocking_send(Err(e.to_string()));
            }
        });
        let (index, term, cs) = meta_rx.await.map_err(|_| "snapshot metadata unavailable")?;
        let meta = msg.mut_snapshot().mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(cs);
        let begin = PeerFrame::SnapshotBegin {
            from: self.node,
            shard,
            msg: encode((shard, msg.clone())).1,
        };
        net::write_frame(&mut send, &begin)
            .await
            .map_err(|e| e.to_string())?;
        let mut records = 0;
        while let Some(batch) = rx.recv().await {
            let batch = batch?;
            records += batch.len() as u64;
            net::write_frame(&mut send, &PeerFrame::SnapshotRecords { records: batch })
                .await
                .map_err(|e| e.to_string())?;
        }
        net::write_frame(&mut send, &PeerFrame::SnapshotEnd)
            .await
            .map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        send.stopped().await.map_err(|e| e.to_string())?;
        tracing::info!(shard, to, index, records, "sent snapshot");
        Ok(records)
    }

    /// Accepts peer connections on the raft endpoint until it closes.
    pub async fn accept(self) {
        while let Some(incoming) = self.endpoint.accept().await {
            let t = self.clone();
            tokio::spawn(async move {
                let conn = match incoming.await {
                    Ok(c) => c,
                    Err(e) => return tracing::debug!("raft port handshake: {e}"),
                };
                if !net::peer_has_role(&conn, net::NODE_ROLE_NAME) {
                    tracing::warn!(remote = %conn.remote_address(), "raft port: refusing a non-node certificate");
                    return conn.close(quinn::VarInt::from_u32(1), b"node certificate required");
                }
                while let Ok(recv) = conn.accept_uni().await {
                    tokio::spawn(t.clone().inbound(recv));
                }
            });
        }
    }

    async fn inbound(self, mut recv: quinn::RecvStream) {
        loop {
            match net::read_frame::<PeerFrame>(&mut recv, PEER_FRAME_CAP).await {
                Ok(Some(PeerFrame::Raft { from, msgs })) => {
                    let msgs = msgs
                        .into_iter()
                        .filter_map(|(shard, b)| decode(shard, &b))
                        .collect();
                    if self.host.send(HostMsg::Raft { from, msgs }).is_err() {
                        return;
                    }
                }
                Ok(Some(PeerFrame::SnapshotBegin { from, shard, msg })) => {
                    if let Err(e) = self.receive_snapshot(&mut recv, from, shard, &msg).await {
                        tracing::warn!(shard, from, "receive snapshot: {e}");
                    }
                    return;
                }
                Ok(Some(other)) => return tracing::warn!("unexpected peer frame {other:?}"),
                Ok(None) => return,
                Err(e) => return tracing::debug!("raft stream: {e}"),
            }
        }
    }

    async fn receive_snapshot(
        &self,
        recv: &mut quinn::RecvStream,
        from: u64,
        shard: u32,
        msg: &[u8],
    ) -> Result<(), String> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let msg = decode(shard, msg).ok_or("malformed MsgSnapshot")?.1;
        std::fs::create_dir_all(&self.spool_dir).map_err(|e| e.to_string())?;
        let path = self.spool_dir.join(format!(
            "shard{shard}-{}.spool",
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let result = async {
            loop {
                match net::read_frame::<PeerFrame>(recv, PEER_FRAME_CAP)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    Some(PeerFrame::SnapshotRecords { records }) => {
                        write_spool(&mut out, &records).map_err(|e| e.to_string())?
                    }
                    Some(PeerFrame::SnapshotEnd) => break Ok(()),
                    other => break Err(format!("unexpected frame in snapshot stream: {other:?}")),
                }
            }
        }
        .await;
        let result = result.and_then(|()| {
            std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
            out.get_ref().sync_all().map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        tracing::info!(shard, from, "received snapshot records");
        self.host
            .send(HostMsg::SnapshotReady {
                shard,
                msg,
                file: path,
            })
            .map_err(|_| "host stopped".to_string())
    }
}

fn encode((shard, msg): (u32, Message)) -> (u32, Vec<u8>) {
    (shard, msg.write_to_bytes().expect("raft messages always encode"))
}

fn decode(shard: u32, bytes: &[u8]) -> Option<(u32, Message)> {
    match Message::parse_from_bytes(bytes) {
        Ok(m) => Some((shard, m)),
        Err(e) => {
            tracing::warn!(shard, "dropping malformed raft message: {e}");
            None
        }
    }
}

fn drain(rx: &mut mpsc::Receiver<(u32, Message)>) {
    while rx.try_recv().is_ok() {}
}
