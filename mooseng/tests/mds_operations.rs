//! The operations surface: `/health`, `/status`, `/metrics`, `mooseng admin status`, leader
//! transfer on command and on graceful shutdown, and several shards per process.
//!
//! Tier: integration (real `mooseng mds` processes on loopback).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use client::ReadFrom;
use common::{bin, mkdir, root};
use proto::admin::Role;
use proto::fs::FsOp;
use testkit::http_get;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_status_metrics_and_leader_moves() {
    let mut cluster = common::start(3, 3, &[]);
    let client = cluster.client();
    let leader = cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    mkdir(&client, 1, "d").await;

    let (code, body) = http_get(cluster.node(leader).http, "/health");
    assert_eq!(code, 200);
    assert!(body.contains("\"role\":\"leader\""), "{body}");
    let (code, body) = http_get(cluster.node(leader).http, "/status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
    assert_eq!(status["shards"][0]["leader"], leader);
    assert!(status["shards"][0]["applied"].as_u64().unwrap() >= 2);
    assert_eq!(status["peers"].as_array().unwrap().len(), 3);
    let (code, body) = http_get(cluster.node(leader).http, "/metrics");
    assert_eq!(code, 200);
    for name in [
        "mooseng_raft_role",
        "mooseng_raft_term",
        "mooseng_raft_apply_lag",
        "mooseng_raft_proposals_total",
        "mooseng_operations_total{operation=\"mkdir\",result=\"Ok\"}",
        "mooseng_operation_duration_seconds_bucket",
        "mooseng_raft_round_seconds_bucket",
        "mooseng_lmdb_used_bytes",
    ] {
        assert!(body.contains(name), "/metrics lacks {name}");
    }
    assert_eq!(http_get(cluster.node(leader).http, "/nope").0, 404);

    let table = cluster.admin(&["status"]);
    assert!(table.contains("leader") && table.lines().count() >= 4, "{table}");

    // Leader transfer on command.
    let to = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let out = cluster.admin(&["leader", "transfer", "--shard", "0", "--to", &to.to_string()]);
    assert!(out.contains(&format!("led by node {to}")), "{out}");
    assert_eq!(cluster.status(&client, to, 0).await.unwrap().role, Role::Leader);

    // Graceful shutdown of the leader hands leadership over without waiting for an election.
    let stopped = Instant::now();
    cluster.stop(to);
    let next = cluster.wait_leader(&client, 0, Duration::from_secs(5)).await;
    assert_ne!(next, to);
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "handover took {:?}",
        stopped.elapsed()
    );
    let log = std::fs::read_to_string(cluster.dir.path().join(format!("logs/mds{to}.log"))).unwrap();
    assert!(
        log.contains("transferring leadership before shutdown"),
        "the stopping leader handed over"
    );
    client
        .fs(
            &root(),
            FsOp::MkDir {
                parent: 1,
                name: b"after".to_vec(),
                mode: 0o755,
            },
            ReadFrom::Leader,
        )
        .await
        .unwrap();
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_hosts_many_shards() {
    let cluster = common::Cluster::start_shards(bin(), 3, 4, 3, &[]);
    let client = cluster.client();
    for shard in 0..4 {
        cluster.wait_leader(&client, shard, Duration::from_secs(15)).await;
    }
    for id in 1..=3 {
        let mut shards = Vec::new();
        for s in 0..4 {
            if cluster.status(&client, id, s).await.is_some() {
                shards.push(s);
            }
        }
        assert_eq!(shards, vec![0, 1, 2, 3], "node {id} hosts every shard");
    }
    let dir = mkdir(&client, 1, "sharded").await.ino;
    let t = client.topology().await.unwrap();
    assert_eq!(t.table.shards.len(), 4);
    assert_eq!(
        t.table.shard_of_id(dir).id,
        t.table.shard_of_id(1).id,
        "placement keeps the tree on its shard"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goals_are_set_by_path_or_class_and_inherited() {
    let cluster = common::start(1, 1, &[]);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let d = mkdir(&client, 1, "d").await;
    mkdir(&client, d.ino, "sub").await;
    assert_eq!(cluster.admin(&["goal", "get", "/d"]).trim(), "/d: 2 (default)");
    assert_eq!(
        cluster.admin(&["goal", "set", "/d", "fast"]).trim(),
        "/d: 3 (fast) (1 entries)"
    );
    assert_eq!(
        cluster.admin(&["goal", "get", "/d/sub"]).trim(),
        "/d/sub: 2 (default)",
        "existing entries keep theirs"
    );
    mkdir(&client, d.ino, "new").await;
    assert_eq!(
        cluster.admin(&["goal", "get", "/d/new"]).trim(),
        "/d/new: 3 (fast)",
        "new entries inherit"
    );
    assert_eq!(
        cluster.admin(&["goal", "set", "/d", "5", "--recursive"]).trim(),
        "/d: 5 (3 entries)"
    );
    assert_eq!(cluster.admin(&["goal", "get", "/d/sub"]).trim(), "/d/sub: 5");
    for (args, says) in [
        (
            ["goal", "set", "/d", "10"],
            "expected 1–9 copies or a storage class (default, fast)",
        ),
        (["goal", "set", "/nope", "2"], "/nope: no such file or directory"),
    ] {
        let out = Command::new(bin())
            .arg("admin")
            .args(args)
            .arg("--cluster-dir")
            .arg(cluster.cluster_dir())
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {out:?}"
        );
    }
}
