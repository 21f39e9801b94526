//! Restarting every metadata server keeps the state digest identical; killing every server
//! while LMDB is behind the write-ahead log loses no acknowledged write; a restarted follower
//! is caught up within seconds.
//!
//! Tier: integration (real `mooseng mds` processes on loopback).

mod common;

use std::time::{Duration, Instant};

use client::ReadFrom;
use common::{list, mkdir, root};
use proto::fs::FsOp;
use testkit::http_get;

/// A directory `d` holding `n` files created one after the other: its inode.
async fn files(client: &client::MdsClient, n: usize) -> u64 {
    let dir = mkdir(client, 1, "d").await.ino;
    for i in 0..n {
        let op = FsOp::MkNod {
            parent: dir,
            name: format!("f{i}").into(),
            kind: crdt::model::FileKind::File,
            mode: 0o600,
            rdev: 0,
        };
        client.fs(&root(), op, ReadFrom::Leader).await.expect("create");
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_node_keeps_the_state_digest() {
    let mut cluster = common::start(3, 3, &[]);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let dir = files(&client, 50).await;
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

    let client = kill_and_restart_all(&mut cluster).await;
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

/// Kills every server with SIGKILL, starts them again, and waits for a leader: a new client.
async fn kill_and_restart_all(cluster: &mut testkit::Cluster) -> client::MdsClient {
    for id in [1, 2, 3] {
        cluster.kill(id);
    }
    for id in [1, 2, 3] {
        cluster.spawn(id);
    }
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    client
}

/// The value of the gauge `name` in `/metrics` of node `id`.
fn gauge(cluster: &testkit::Cluster, id: u64, name: &str) -> u64 {
    let (code, body) = http_get(cluster.node(id).http, "/metrics");
    assert_eq!(code, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("/metrics of node {id} lacks {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_every_node_while_lmdb_is_behind_replays_acknowledged_writes_from_the_log() {
    // LMDB never commits applied entries on its own here: they live only in the write-ahead
    // log (and LMDB's uncommitted transaction) until the kill.
    let lazy = [
        "--lmdb-commit-interval-ms",
        "600000",
        "--lmdb-idle-commit-ms",
        "600000",
    ];
    let mut cluster = common::start(3, 3, &lazy);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let dir = files(&client, 100).await;
    // Reads see what is applied though LMDB has not committed it: the server answers them
    // from its open transaction instead of committing.
    assert_eq!(list(&client, dir).await.len(), 100);
    client.close().await;
    let client = kill_and_restart_all(&mut cluster).await;
    let replayed: Vec<u64> = [1, 2, 3]
        .iter()
        .map(|id| gauge(&cluster, *id, "mooseng_wal_replayed_entries"))
        .collect();
    assert!(
        replayed.iter().any(|r| *r >= 101),
        "the mkdir and 100 creates were applied again from the log on some node: {replayed:?}"
    );
    let names = list(&client, dir).await;
    assert_eq!(names.len(), 100, "every acknowledged create survives: {names:?}");
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
