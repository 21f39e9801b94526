//! Failover of a 3-node metadata cluster under a stream of creates and renames.
//!
//! Tier: integration (real `mooseng mds` processes on loopback).
//!
//! Kill -9 the leader mid-stream: a new leader serves writes within 1 s, every acknowledged
//! operation is present afterwards and after the killed node restarts, and no operation is
//! applied twice (a duplicate create would answer EEXIST to its own client, a duplicate
//! rename ENOENT; both fail the test).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use client::{ClientError, MdsClient, ReadFrom};
use common::{list, mkdir, root};
use proto::fs::{FsOp, FsReply};

/// What a worker knows about its files: the name each acknowledged file has now, and the
/// operations that were not acknowledged (which may or may not have happened).
#[derive(Debug, Default)]
struct Ledger {
    acked: HashMap<u64, String>,
    unsure: Vec<(u64, String)>,
}

async fn worker(client: Arc<MdsClient>, dir: u64, w: usize, stop: Arc<AtomicBool>) -> Ledger {
    let mut ledger = Ledger::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let name = format!("w{w}-f{n}");
        let create = FsOp::MkNod {
            parent: dir,
            name: name.clone().into(),
            kind: crdt::model::FileKind::File,
            mode: 0o644,
            rdev: 0,
        };
        match client.fs(&root(), create, ReadFrom::Leader).await {
            Ok(FsReply::Attr(_)) => {
                ledger.acked.insert(n, name.clone());
            }
            Ok(other) => panic!("create {name}: unexpected reply {other:?}"),
            Err(ClientError::Fs(e)) => panic!("create {name} failed with {e:?}: applied twice?"),
            Err(e) => {
                ledger.unsure.push((n, name.clone()));
                eprintln!("create {name} not acknowledged: {e}");
                continue;
            }
        }
        if n.is_multiple_of(2) {
            let renamed = format!("w{w}-r{n}");
            let op = FsOp::Rename {
                parent: dir,
                name: name.clone().into(),
                new_parent: dir,
                new_name: renamed.clone().into(),
                flags: 0,
            };
            match client.fs(&root(), op, ReadFrom::Leader).await {
                Ok(_) => {
                    ledger.acked.insert(n, renamed);
                }
                Err(ClientError::Fs(e)) => panic!("rename {name} failed with {e:?}: applied twice?"),
                Err(e) => {
                    ledger.acked.remove(&n);
                    ledger.unsure.push((n, renamed));
                    ledger.unsure.push((n, name));
                    eprintln!("rename not acknowledged: {e}");
                }
            }
        }
    }
    ledger
}

/// Every acknowledged name is listed, and each file appears under exactly one name.
fn check(listing: &[String], ledgers: &[Ledger]) {
    for (w, l) in ledgers.iter().enumerate() {
        for (n, name) in &l.acked {
            assert!(
                listing.contains(name),
                "acknowledged file {n} of worker {w} ({name}) is missing"
            );
            let other = if name.contains("-r") {
                name.replace("-r", "-f")
            } else {
                name.replace("-f", "-r")
            };
            assert!(
                !listing.contains(&other),
                "file {n} of worker {w} exists as both {name} and {other}"
            );
        }
    }
    let known: usize = ledgers.iter().map(|l| l.acked.len() + l.unsure.len()).sum();
    assert!(
        listing.len() <= known,
        "{} entries listed but only {known} operations were made",
        listing.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_loses_nothing_and_fails_over_within_a_second() {
    let mut cluster = common::start(3, 3, &[]);
    let client = Arc::new(cluster.client());
    let leader = cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let dir = mkdir(&client, 1, "load").await.ino;

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|w| tokio::spawn(worker(client.clone(), dir, w, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Kill the leader and time how long until a survivor leads and commits a write.
    let probe = cluster.client();
    let killed_at = Instant::now();
    cluster.kill(leader);
    let new_leader = cluster.wait_leader(&probe, 0, Duration::from_secs(5)).await;
    assert_ne!(new_leader, leader);
    let op = FsOp::MkDir {
        parent: 1,
        name: b"after-failover".to_vec(),
        mode: 0o755,
    };
    let reply = probe
        .admin(
            cluster.node(new_leader).client,
            proto::admin::AdminRequest::Status,
        )
        .await;
    assert!(reply.is_ok(), "new leader answers: {reply:?}");
    probe
        .fs(&root(), op, ReadFrom::Leader)
        .await
        .expect("write at the new leader");
    let failover = killed_at.elapsed();
    eprintln!(
        "failover: node {new_leader} led and committed a write {failover:?} after node {leader} was killed"
    );
    assert!(failover < Duration::from_secs(1), "failover took {failover:?}");

    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut ledgers = Vec::new();
    for w in workers {
        ledgers.push(w.await.expect("worker"));
    }
    let acked: usize = ledgers.iter().map(|l| l.acked.len()).sum();
    assert!(
        acked > 50,
        "only {acked} operations were acknowledged; the load did not run"
    );

    check(&list(&client, dir).await, &ledgers);

    // The killed node comes back, catches up and agrees with the others.
    cluster.spawn(leader);
    let (applied, digest) = cluster
        .converged_digest(&client, 0, Duration::from_secs(20))
        .await;
    eprintln!("all three replicas at index {applied}, digest {digest}");
    let at_restarted = cluster
        .digest(&client, leader, 0)
        .await
        .expect("restarted node answers");
    assert_eq!(at_restarted, (applied, digest));
    cluster.stop(new_leader);
    cluster.wait_leader(&client, 0, Duration::from_secs(5)).await;
    check(&list(&client, dir).await, &ledgers);
    client.close().await;
    probe.close().await;
}
