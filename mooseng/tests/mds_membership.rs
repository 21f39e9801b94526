//! Membership: a new node joins a shard as a learner, receives a snapshot (the log has been
//! compacted), is promoted to voter; then an old node is removed. No operation is lost.
//!
//! Tier: integration (real `mooseng mds` processes on loopback).

mod common;

use std::time::Duration;

use client::ReadFrom;
use common::{Cluster, list, mkdir, root};
use proto::admin::Role;
use proto::fs::FsOp;

/// `mooseng admin node add` of server `id` to shard 0 at its addresses (learner, then voter).
fn node_add(cluster: &Cluster, id: u64) {
    let n = cluster.node(id);
    let (c, r, h) = (n.client.to_string(), n.raft.to_string(), n.http.to_string());
    let id = id.to_string();
    cluster.admin(&[
        "node",
        "add",
        "--shard",
        "0",
        "--id",
        &id,
        "--client-addr",
        &c,
        "--raft-addr",
        &r,
        "--http-addr",
        &h,
    ]);
}

/// Files created before the membership change.
const FILES: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_gets_a_snapshot_is_promoted_and_an_old_node_leaves() {
    // A short log so that the new node cannot catch up from the log alone, and write-ahead
    // log segments small enough to roll over several times (80 creates fill about one).
    let flags = ["--log-keep", "16", "--wal-segment-size", "65536"];
    let mut cluster = common::start(3, 3, &flags);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let dir = mkdir(&client, 1, "before").await.ino;
    for i in 0..FILES {
        let op = FsOp::MkNod {
            parent: dir,
            name: format!("f{i}").into(),
            kind: crdt::model::FileKind::File,
            mode: 0o644,
            rdev: 0,
        };
        client.fs(&root(), op, ReadFrom::Leader).await.expect("create");
    }

    let segments: Vec<u64> = std::fs::read_dir(cluster.node(2).data.join("wal"))
        .expect("node 2's write-ahead log")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            u64::from_str_radix(name.strip_suffix(".wal")?, 16).ok()
        })
        .collect();
    assert!(
        segments.iter().any(|s| *s > 1),
        "the write-ahead log rolled over to a new segment: {segments:?}"
    );

    cluster.add_node(4, &flags);
    node_add(&cluster, 4);
    let s = cluster.status(&client, 4, 0).await.expect("node 4 hosts shard 0");
    assert!(s.voters.contains(&4), "node 4 is a voter: {s:?}");
    let log = std::fs::read_to_string(cluster.dir.path().join("logs/mds4.log")).unwrap_or_default();
    assert!(
        log.contains("installed snapshot"),
        "node 4 caught up through a snapshot"
    );

    // Remove node 1 (possibly the leader: the command moves leadership first).
    cluster.admin(&["node", "remove", "--shard", "0", "--id", "1"]);
    cluster.stop(1);
    let started = std::time::Instant::now();
    loop {
        let leader = cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
        let s = cluster.status(&client, leader, 0).await.expect("leader status");
        if s.voters == [2, 3, 4] && s.role == Role::Leader {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "configuration did not settle on 2,3,4: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let after = mkdir(&client, 1, "after").await.ino;
    assert_ne!(after, dir);
    let (_, digest) = cluster
        .converged_digest(&client, 0, Duration::from_secs(20))
        .await;
    assert_eq!(
        cluster.digest(&client, 4, 0).await.expect("node 4 digest").1,
        digest
    );
    let names = list(&client, dir).await;
    assert_eq!(
        names.len(),
        FILES,
        "every file created before the change is still there"
    );
    client.close().await;
}

/// A node removed, wiped and added back under its old id replays the log from the start —
/// its own removal included — and must still end up a caught-up voter. (Found by the Jepsen
/// harness's membership nemesis: the replayed removal used to stop the group for good, two
/// entries short of the others.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_removed_and_added_back_empty_under_its_id_catches_up() {
    let mut cluster = common::start(3, 3, &[]);
    let client = cluster.client();
    let leader = cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let back = (1..=3).find(|i| *i != leader).expect("a follower");
    mkdir(&client, 1, "before").await;

    cluster.admin(&["node", "remove", "--shard", "0", "--id", &back.to_string()]);
    cluster.stop(back);
    std::fs::remove_dir_all(&cluster.node(back).data).expect("wipe its data");
    mkdir(&client, 1, "while-away").await;

    cluster.spawn(back);
    node_add(&cluster, back);
    mkdir(&client, 1, "after").await;
    let (applied, digest) = cluster
        .converged_digest(&client, 0, Duration::from_secs(20))
        .await;
    let s = cluster
        .status(&client, back, 0)
        .await
        .expect("it hosts shard 0 again");
    assert!(s.voters.contains(&back), "a voter again: {s:?}");
    assert_eq!(cluster.digest(&client, back, 0).await, Some((applied, digest)));
    client.close().await;
}
