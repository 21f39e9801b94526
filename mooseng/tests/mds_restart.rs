//! Restarting every metadata server keeps the state digest identical; a restarted follower
//! is caught up within seconds.
//!
//! Tier: integration (real `mooseng mds` processes on loopback).

mod common;

use std::time::{Duration, Instant};

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

/// How soon a follower restarted on its old address must have every entry written while it
/// was down. The leader's connection to the old process goes unanswered; the raft port's
/// idle timeout (1 s, `net::PEER_IDLE_TIMEOUT`) ends it, the leader dials the new process and
/// sends what is missing. The rest of the bound is room for a loaded machine; with the 10 s
/// timeout of client connections the follower stayed cut off for 10 s.
const CATCH_UP_BOUND: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_is_caught_up_within_seconds() {
    let mut cluster = common::start(3, 3, &[]);
    let client = cluster.client();
    let leader = cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    mkdir(&client, 1, "before").await;
    cluster.kill(follower);
    for i in 0..20 {
        mkdir(&client, 1, &format!("while-down-{i}")).await;
    }
    let target = cluster
        .status(&client, leader, 0)
        .await
        .expect("the leader's status")
        .applied;
    cluster.spawn(follower);
    let restarted = Instant::now();
    let mut written = 0;
    loop {
        // A leader with nothing to send only heartbeats: keep it writing.
        mkdir(&client, 1, &format!("after-{written}")).await;
        written += 1;
        let applied = cluster.status(&client, follower, 0).await.map(|s| s.applied);
        if applied.is_some_and(|a| a >= target) {
            break;
        }
        assert!(
            restarted.elapsed() < CATCH_UP_BOUND,
            "follower {follower} applied {applied:?} of {target} {:?} after its restart",
            restarted.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "follower {follower} caught up {:?} after its restart",
        restarted.elapsed()
    );
    client.close().await;
}
