//! Restarting every metadata server keeps the state digest identical.
//!
//! Tier: integration (real `mooseng mds` processes on loopback).

mod common;

use std::time::Duration;

use client::ReadFrom;
use common::{list, mkdir, root};
use proto::fs::FsOp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_node_keeps_the_state_digest() {
    let mut cluster = common::start(3, 3, &[]);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let dir = mkdir(&client, 1, "d").await.ino;
    for i in 0..50 {
        let op = FsOp::MkNod {
            parent: dir,
            name: format!("f{i}").into(),
            kind: crdt::model::FileKind::File,
            mode: 0o600,
            rdev: 0,
        };
        client.fs(&root(), op, ReadFrom::Leader).await.expect("create");
    }
    let set = FsOp::SetXattr {
        ino: dir,
        name: b"user.k".to_vec(),
        value: b"v".to_vec(),
        flags: 0,
    };
    client.fs(&root(), set, ReadFrom::Leader).await.expect("setxattr");
    let before = cluster
        .converged_digest(&client, 0, Duration::from_secs(10))
        .await;
    client.close().await;

    for id in [1, 2, 3] {
        cluster.kill(id);
    }
    for id in [1, 2, 3] {
        cluster.spawn(id);
    }
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let after = cluster
        .converged_digest(&client, 0, Duration::from_secs(10))
        .await;
    assert_eq!(
        after.1, before.1,
        "state digest changed across a full restart ({} -> {})",
        before.0, after.0
    );
    assert_eq!(list(&client, dir).await.len(), 50);
    client.close().await;
}
