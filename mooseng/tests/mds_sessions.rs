//! Idempotency keys, session reads on followers, linearizable reads, requests raft cannot
//! serve, and the end of a silent client's session.
//!
//! Tier: integration (real `mooseng mds` processes on loopback).

mod common;

use std::time::{Duration, Instant};

use client::{ClientError, ReadFrom};
use common::{mkdir, root};
use proto::fs::{Cred, FsOp, FsReply};
use proto::{ClientRequest, ReadMode, Request, Response, RpcError, SessionToken};

fn request(seq: u64, read: ReadMode, op: FsOp) -> Request {
    Request::Fs(ClientRequest {
        shard: 0,
        client: 0xfeed,
        seq,
        acked_below: 1,
        cred: Cred::root(),
        read,
        op,
    })
}

async fn send(
    client: &client::MdsClient,
    addr: std::net::SocketAddr,
    req: &Request,
) -> proto::ClientResponse {
    match client.call(addr, req).await {
        Ok(Response::Fs(r)) => r,
        other => panic!("unexpected answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_get_the_first_answer_and_reads_follow_the_session() {
    let mut cluster = common::start(3, 3, &[]);
    let client = cluster.client();
    let leader = cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let leader_addr = cluster.node(leader).client;

    // The same (client, seq) twice: one file, the same answer, no EEXIST.
    let create = FsOp::MkDir {
        parent: 1,
        name: b"once".to_vec(),
        mode: 0o755,
    };
    let first = send(
        &client,
        leader_addr,
        &request(7, ReadMode::Linearizable, create.clone()),
    )
    .await;
    let again = send(
        &client,
        leader_addr,
        &request(7, ReadMode::Linearizable, create.clone()),
    )
    .await;
    assert!(matches!(first.result, Ok(FsReply::Attr(_))), "{first:?}");
    assert_eq!(first.result, again.result, "a retry gets the first answer");
    let fresh = send(&client, leader_addr, &request(8, ReadMode::Linearizable, create)).await;
    assert_eq!(
        fresh.result,
        Err(RpcError::Fs(proto::Errno::EEXIST)),
        "a new request is judged afresh"
    );

    // Session reads on every follower see the write the token names.
    let token = first.token;
    assert!(token.index > 0);
    let lookup = FsOp::Lookup {
        parent: 1,
        name: b"once".to_vec(),
    };
    for n in cluster.nodes.iter().filter(|n| n.id != leader) {
        let r = send(
            &client,
            n.client,
            &request(0, ReadMode::Session(token), lookup.clone()),
        )
        .await;
        assert!(
            matches!(r.result, Ok(FsReply::Attr(_))),
            "node {} serves the session read: {r:?}",
            n.id
        );
        assert!(r.token >= token, "tokens only grow");
    }
    // A token from the future cannot be served yet: a retryable answer, not a stale one.
    let future = SessionToken {
        index: token.index + 1_000_000,
    };
    let follower = cluster.nodes.iter().find(|n| n.id != leader).unwrap().client;
    let r = send(
        &client,
        follower,
        &request(0, ReadMode::Session(future), lookup.clone()),
    )
    .await;
    assert!(matches!(r.result, Err(RpcError::NotCaughtUp { .. })), "{r:?}");
    // Linearizable reads go to the leader: a follower answers with a hint.
    let r = send(
        &client,
        follower,
        &request(0, ReadMode::Linearizable, lookup.clone()),
    )
    .await;
    match r.result {
        Err(RpcError::NotLeader {
            leader: Some((id, addr)),
            ..
        }) => {
            assert_eq!(id, leader);
            assert_eq!(addr, leader_addr.to_string());
        }
        other => panic!("expected a not-leader hint, got {other:?}"),
    }
    // The client library routes both kinds of read.
    client
        .fs(&root(), lookup.clone(), ReadFrom::AnyReplica)
        .await
        .expect("session read");
    client
        .fs(&root(), lookup.clone(), ReadFrom::Leader)
        .await
        .expect("linearizable read");
    // Right after its own write, a client's session reads go to the leader, which applied
    // it; otherwise they take turns over the replicas.
    let mut router = cluster.client();
    router.read_after_write = Duration::from_secs(3600);
    mkdir(&router, 1, "routed").await;
    let counts = || lookups_per_node(&cluster);
    let before = counts();
    session_reads(&router, &lookup, 3).await;
    let after_write = counts();
    for (id, n) in &after_write {
        let want = if *id == leader { 3 } else { 0 };
        assert_eq!(n - before[id], want, "lookups on node {id} right after the write");
    }
    router.read_after_write = Duration::ZERO;
    session_reads(&router, &lookup, 6).await;
    let spread = counts();
    for (id, n) in &spread {
        assert!(
            *n > after_write[id],
            "node {id} serves some of the later session reads: {after_write:?} then {spread:?}"
        );
    }
    router.close().await;

    // Without a quorum, the survivor refuses writes with a retryable error, in bounded time.
    mkdir(&client, 1, "before-quorum-loss").await;
    let survivor = leader;
    for n in [1, 2, 3].into_iter().filter(|id| *id != survivor) {
        cluster.kill(n);
    }
    let started = Instant::now();
    let r = send(
        &client,
        leader_addr,
        &request(
            9,
            ReadMode::Linearizable,
            FsOp::MkDir {
                parent: 1,
                name: b"x".to_vec(),
                mode: 0o755,
            },
        ),
    )
    .await;
    assert!(r.result.as_ref().is_err_and(RpcError::is_retryable), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answered in {:?}",
        started.elapsed()
    );
    let r = send(
        &client,
        leader_addr,
        &request(0, ReadMode::Linearizable, FsOp::GetAttr { ino: 1 }),
    )
    .await;
    assert!(r.result.as_ref().is_err_and(RpcError::is_retryable), "{r:?}");
    let short = cluster.client();
    let mut short = short;
    short.deadline = Duration::from_secs(2);
    let e = short
        .fs(&root(), FsOp::GetAttr { ino: 1 }, ReadFrom::Leader)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Exhausted { .. }), "{e}");
    client.close().await;
}

/// `n` session reads of `op` through `client`.
async fn session_reads(client: &client::MdsClient, op: &FsOp, n: usize) {
    for _ in 0..n {
        client
            .fs(&root(), op.clone(), ReadFrom::AnyReplica)
            .await
            .expect("session read");
    }
}

/// Lookups each metadata server has answered (its `/metrics`).
fn lookups_per_node(cluster: &testkit::Cluster) -> std::collections::BTreeMap<u64, u64> {
    let series = "mooseng_operation_duration_seconds_count{operation=\"lookup\",result=\"Ok\"} ";
    cluster
        .nodes
        .iter()
        .map(|n| {
            let metrics = testkit::http_get(n.http, "/metrics").1;
            let count = metrics
                .lines()
                .find_map(|l| l.strip_prefix(series))
                .map_or(0, |v| v.trim().parse().expect("a count"));
            (n.id, count)
        })
        .collect()
}

async fn set_lk(client: &client::MdsClient, ino: u64, handle: u64) -> Result<FsReply, ClientError> {
    let lock = proto::fs::Lock {
        owner: 1,
        pid: 1,
        kind: proto::fs::LockKind::Write,
        start: 0,
        end: 9,
    };
    let op = FsOp::SetLk {
        ino,
        handle,
        lock,
        flock: false,
    };
    client.fs(&root(), op, ReadFrom::Leader).await
}

async fn create_open(client: &client::MdsClient, name: &str) -> (u64, u64) {
    let op = FsOp::Create {
        parent: 1,
        name: name.into(),
        mode: 0o666,
        exclusive: true,
        read: true,
        write: true,
    };
    match client.fs(&root(), op, ReadFrom::Leader).await {
        Ok(FsReply::Opened { attr, handle }) => (attr.ino, handle),
        other => panic!("create {name}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_clients_handles_and_locks_are_released_and_a_live_ones_are_kept() {
    let timeout = Duration::from_secs(2);
    let cluster = common::start(3, 3, &["--session-timeout-ms", "2000"]);
    let observer = cluster.client();
    cluster.wait_leader(&observer, 0, Duration::from_secs(10)).await;

    // A live client (keeping its session alive) and one that goes silent, each holding a lock
    // on its own file; the silent one also holds the last handle of an unlinked file.
    let live = cluster.client();
    let (live_file, live_handle) = create_open(&live, "live").await;
    set_lk(&live, live_file, live_handle).await.unwrap();
    let silent = cluster.client();
    let (silent_file, silent_handle) = create_open(&silent, "silent").await;
    set_lk(&silent, silent_file, silent_handle).await.unwrap();
    let (orphan, _) = create_open(&silent, "orphan").await;
    let unlink = FsOp::Unlink {
        parent: 1,
        name: b"orphan".to_vec(),
    };
    silent.fs(&root(), unlink, ReadFrom::Leader).await.unwrap();
    silent.close().await;

    let open = |ino| FsOp::Open {
        ino,
        read: true,
        write: true,
        truncate: false,
    };
    let h_live = match observer.fs(&root(), open(live_file), ReadFrom::Leader).await {
        Ok(FsReply::Opened { handle, .. }) => handle,
        other => panic!("{other:?}"),
    };
    let h_silent = match observer.fs(&root(), open(silent_file), ReadFrom::Leader).await {
        Ok(FsReply::Opened { handle, .. }) => handle,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        set_lk(&observer, silent_file, h_silent).await,
        Err(ClientError::Fs(proto::Errno::EAGAIN))
    ));

    let started = Instant::now();
    loop {
        live.keep_alive().await.unwrap();
        observer.keep_alive().await.unwrap();
        if set_lk(&observer, silent_file, h_silent).await.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < timeout * 4,
            "the silent client's lock was not released within two session timeouts after a leader's grace"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let getattr = observer
        .fs(&root(), FsOp::GetAttr { ino: orphan }, ReadFrom::Leader)
        .await;
    assert!(
        matches!(getattr, Err(ClientError::Fs(proto::Errno::ENOENT))),
        "{getattr:?}"
    );

    // The live client kept its lock through several timeouts.
    for _ in 0..3 {
        live.keep_alive().await.unwrap();
        observer.keep_alive().await.unwrap();
        tokio::time::sleep(timeout / 2).await;
    }
    assert!(matches!(
        set_lk(&observer, live_file, h_live).await,
        Err(ClientError::Fs(proto::Errno::EAGAIN))
    ));
}
