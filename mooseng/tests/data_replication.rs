//! The data path with real processes: a chained write lands on as many chunkservers as the
//! goal asks, a killed chunkserver's copies are replaced within a stated bound while reads
//! keep working, and a removed file's chunks are deleted from the chunkservers.
//!
//! Tier: integration (real `mooseng mds` and `mooseng chunkserver` processes on loopback).

mod common;

use std::time::{Duration, Instant};

use client::{MdsClient, ReadFrom};
use proto::FsReply;
use proto::data::{DataError, DataReply, DataRequest, Server};
use proto::fs::{ChunkLocation, FsOp, Written};
use testkit::{read_copy, root};

/// How long a lost copy may stay lost: the dead-after interval (5 s), a scan (1 s), the
/// order's delivery with a heartbeat (1 s), the copy itself and its report (0.5 s), with room
/// for a loaded CI machine.
const REPAIR_BOUND: Duration = Duration::from_secs(20);

async fn fs(client: &MdsClient, op: FsOp) -> FsReply {
    let what = format!("{op:?}");
    client
        .fs(&root(), op, ReadFrom::Leader)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn server((id, addr): &(u64, String)) -> Server {
    Server {
        id: *id,
        addr: addr.clone(),
    }
}

async fn chunk(client: &MdsClient, op: FsOp) -> ChunkLocation {
    match fs(client, op).await {
        FsReply::Chunk(c) => c,
        other => panic!("expected a chunk, got {other:?}"),
    }
}

async fn wait_for<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_copies_are_replaced_and_removed_files_leave_no_chunks() {
    let mut cluster = common::start(3, 3, &[]);
    cluster.start_chunkservers(3, 2);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    cluster.wait_chunkservers_alive(3, Duration::from_secs(30));
    let data = cluster.data_client();

    let create = FsOp::Create {
        parent: 1,
        name: b"f".to_vec(),
        mode: 0o644,
        exclusive: true,
        read: true,
        write: true,
    };
    let FsReply::Opened { attr, handle } = fs(&client, create).await else {
        panic!("create")
    };
    let ino = attr.ino;
    let w = chunk(
        &client,
        FsOp::ChunkForWrite {
            ino,
            index: 0,
            handle,
        },
    )
    .await;
    assert_eq!(w.servers.len(), 2, "the default goal is 2 copies: {w:?}");
    let c = w.chunk.unwrap();
    let bytes: Vec<u8> = (0..(1u32 << 20) + 123)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let write = DataRequest::Write {
        chunk: c.id,
        version: c.version,
        prev_version: w.prev_version,
        offset: 0,
        data: bytes.clone(),
        chain: w.servers[1..].iter().map(server).collect(),
    };
    assert_eq!(
        data.call(&server(&w.servers[0]), &write).await.unwrap(),
        DataReply::Done
    );
    let written = vec![Written {
        index: 0,
        chunk: c,
        servers: w.servers.iter().map(|s| s.0).collect(),
    }];
    let end = bytes.len() as u64;
    fs(
        &client,
        FsOp::WriteDone {
            ino,
            handle,
            end,
            written,
        },
    )
    .await;

    let r = chunk(&client, FsOp::ChunkForRead { ino, index: 0 }).await;
    assert_eq!((r.chunk, r.file_size), (Some(c), end));
    for at in &r.servers {
        assert_eq!(
            read_copy(&data, at, &r, end as usize).await.unwrap(),
            bytes,
            "copy on {at:?}"
        );
    }

    let victim = w.servers[0].0;
    let spare = (1..=3).find(|id| w.servers.iter().all(|s| s.0 != *id)).unwrap();
    let killed = Instant::now();
    cluster.kill_chunkserver(victim);
    let r = chunk(&client, FsOp::ChunkForRead { ino, index: 0 }).await;
    let survivor = r.servers.iter().find(|s| s.0 != victim).unwrap();
    assert_eq!(
        read_copy(&data, survivor, &r, end as usize).await.unwrap(),
        bytes,
        "reads keep working"
    );

    let r = loop {
        let r = chunk(&client, FsOp::ChunkForRead { ino, index: 0 }).await;
        if r.servers.iter().any(|s| s.0 == spare) {
            break r;
        }
        assert!(
            killed.elapsed() < REPAIR_BOUND,
            "the lost copy was not replaced within {REPAIR_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("copy replaced {:?} after the kill", killed.elapsed());
    assert_eq!(r.chunk, Some(c), "the copy is of the current version");
    let new_copy = r.servers.iter().find(|s| s.0 == spare).unwrap();
    assert_eq!(
        read_copy(&data, new_copy, &r, end as usize).await.unwrap(),
        bytes,
        "the new copy is byte-identical"
    );

    fs(
        &client,
        FsOp::Unlink {
            parent: 1,
            name: b"f".to_vec(),
        },
    )
    .await;
    fs(&client, FsOp::Release { ino, handle }).await;
    let live: Vec<(u64, String)> = r.servers.iter().filter(|s| s.0 != victim).cloned().collect();
    wait_for(
        "the removed file's copies deleted",
        Duration::from_secs(20),
        || {
            let (data, live) = (&data, &live);
            async move {
                let mut gone = true;
                for at in live {
                    let stat = data.call(&server(at), &DataRequest::Stat { chunk: c.id }).await;
                    gone &= matches!(
                        stat,
                        Err(client::data::DataCallError::Refused {
                            error: DataError::NoChunk(_),
                            ..
                        })
                    );
                }
                gone
            }
        },
    )
    .await;
}
