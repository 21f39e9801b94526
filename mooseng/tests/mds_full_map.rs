//! A full LMDB map: mutations fail with ENOSPC at the client and nothing is corrupted; after
//! the map is grown (restart with a larger --lmdb-map-size), writes succeed again.
//!
//! Tier: integration (a real `mooseng mds` process on loopback).

mod common;

use std::time::Duration;

use client::{ClientError, ReadFrom};
use common::{list, mkdir, root};
use proto::Errno;
use proto::fs::FsOp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_map_gives_enospc_and_growing_it_recovers() {
    let small = [
        "--lmdb-map-size",
        "2097152",
        "--lmdb-reserve",
        "524288",
        "--log-keep",
        "64",
    ];
    let mut cluster = common::start(1, 1, &small);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let dir = mkdir(&client, 1, "fill").await.ino;
    let long = "x".repeat(200);
    let mut created = Vec::new();
    let mut enospc = false;
    for i in 0..20_000 {
        let name = format!("{long}-{i}");
        let op = FsOp::MkNod {
            parent: dir,
            name: name.clone().into(),
            kind: crdt::model::FileKind::File,
            mode: 0o644,
            rdev: 0,
        };
        match client.fs(&root(), op, ReadFrom::Leader).await {
            Ok(_) => created.push(name),
            Err(ClientError::Fs(Errno::ENOSPC)) => {
                enospc = true;
                break;
            }
            Err(e) => panic!("create {i}: {e}"),
        }
    }
    assert!(
        enospc,
        "the 2 MiB map never filled after {} creates",
        created.len()
    );
    eprintln!("map full after {} creates", created.len());
    // Reads still work and see every acknowledged create.
    assert_eq!(list(&client, dir).await.len(), created.len());
    client.close().await;

    // Grow the map: restart with a larger one.
    cluster.stop(1);
    let node = cluster.nodes.iter_mut().find(|n| n.id == 1).unwrap();
    node.flags = vec![
        "--lmdb-map-size".into(),
        "67108864".into(),
        "--log-keep".into(),
        "64".into(),
    ];
    cluster.spawn(1);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let names = list(&client, dir).await;
    assert_eq!(names.len(), created.len(), "nothing lost or corrupted");
    for name in created.iter().step_by(97) {
        assert!(names.contains(name), "{name} survived");
    }
    let op = FsOp::MkNod {
        parent: dir,
        name: b"after-growth".to_vec(),
        kind: crdt::model::FileKind::File,
        mode: 0o644,
        rdev: 0,
    };
    client
        .fs(&root(), op, ReadFrom::Leader)
        .await
        .expect("writes succeed after the map grew");
    client.close().await;
}
