//! Tier: integration on loopback. Whole chunkservers (`chunkserver::run`) in this process
//! with a temporary CA: chained writes, chain failures, replication and delete orders, chunk
//! reports, metrics and status, and an unreachable metadata tier.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;

use chunkserver::CsError;
use common::{Cluster, FakeMds, bounded, call, local, sample};
use proto::chunk::{CsRequest, FullReport, HeldChunk, Order};
use proto::data::{DataError, DataReply, DataRequest, MAX_IO, Server};

/// Offset of the first data byte in a chunk file (the documented format, version 1).
const DATA_OFFSET: u64 = 8192;

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(17).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

fn write(
    chunk: u64,
    prev_version: u32,
    version: u32,
    offset: u32,
    data: Vec<u8>,
    chain: Vec<Server>,
) -> DataRequest {
    DataRequest::Write {
        chunk,
        version,
        prev_version,
        offset,
        data,
        chain,
    }
}

fn read(chunk: u64, version: u32, offset: u32, len: u32) -> DataRequest {
    DataRequest::Read {
        chunk,
        version,
        offset,
        len,
    }
}

/// Checks a reply carries exactly `want`, without printing megabytes when it does not.
#[track_caller]
fn assert_data(reply: DataReply, want: &[u8]) {
    match reply {
        DataReply::Data(got) => {
            assert_eq!(got.len(), want.len(), "length");
            let first = got.iter().zip(want).position(|(a, b)| a != b);
            assert_eq!(first, None, "first differing byte");
        }
        other => panic!("expected data, got {other:?}"),
    }
}

/// An address nothing answers on.
fn nowhere() -> std::net::SocketAddr {
    local(testkit::free_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chained_write_lands_on_every_server() {
    bounded(async {
        let cluster = Cluster::new();
        let mds = nowhere();
        let mut servers = Vec::new();
        for id in 1..=3 {
            servers.push(cluster.start(cluster.config(id, mds)).await);
        }
        let chain: Vec<Server> = servers[1..].iter().map(|s| s.server()).collect();
        let first = cluster.connect(&servers[0]).await;
        let data = pattern(1, (1 << 20) + 333);
        let reply = call(&first, write(42, 0, 1, 100, data.clone(), chain.clone())).await;
        assert_eq!(reply, DataReply::Done);
        // A second session moves every copy to version 2.
        let patch = pattern(2, 5000);
        let reply = call(&first, write(42, 1, 2, 70_000, patch.clone(), chain.clone())).await;
        assert_eq!(reply, DataReply::Done);
        let mut expect = vec![0u8; 100];
        expect.extend_from_slice(&data);
        expect[70_000..75_000].copy_from_slice(&patch);
        for s in &servers {
            let conn = cluster.connect(s).await;
            assert_eq!(
                call(&conn, DataRequest::Stat { chunk: 42 }).await,
                DataReply::Info {
                    version: 2,
                    len: expect.len() as u32
                },
                "stat on {}",
                s.id
            );
            let got = call(&conn, read(42, 2, 0, expect.len() as u32)).await;
            assert_data(got, &expect);
        }
        // Truncate and sync travel the chain too.
        let truncate = DataRequest::Truncate {
            chunk: 42,
            version: 3,
            prev_version: 2,
            len: 10,
            chain: chain.clone(),
        };
        assert_eq!(call(&first, truncate).await, DataReply::Done);
        let sync = DataRequest::Sync {
            chunk: 42,
            version: 3,
            chain,
        };
        assert_eq!(call(&first, sync).await, DataReply::Done);
        let last = cluster.connect(&servers[2]).await;
        assert_eq!(
            call(&last, DataRequest::Stat { chunk: 42 }).await,
            DataReply::Info { version: 3, len: 10 }
        );
        for s in servers {
            s.stop().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_fails_the_chain_and_is_named() {
    bounded(async {
        let cluster = Cluster::new();
        let mds = nowhere();
        let mut servers = Vec::new();
        for id in 1..=3 {
            servers.push(cluster.start(cluster.config(id, mds)).await);
        }
        let chain: Vec<Server> = servers[1..].iter().map(|s| s.server()).collect();
        let first = cluster.connect(&servers[0]).await;
        // Connections along the chain exist before the third server goes away.
        assert_eq!(
            call(&first, write(7, 0, 1, 0, b"before".to_vec(), chain.clone())).await,
            DataReply::Done
        );
        servers.pop().unwrap().stop().await;
        let reply = call(&first, write(7, 1, 2, 0, b"after!".to_vec(), chain.clone())).await;
        match reply {
            DataReply::Error(DataError::Chain { server, .. }) => assert_eq!(server, 3, "{reply:?}"),
            other => panic!("expected a chain failure, got {other:?}"),
        }
        // The servers before the failure keep the write.
        for s in &servers {
            let conn = cluster.connect(s).await;
            assert_eq!(
                call(&conn, read(7, 2, 0, 6)).await,
                DataReply::Data(b"after!".to_vec())
            );
        }
        // A chain naming the receiving server is refused.
        let looped = write(8, 0, 1, 0, b"x".to_vec(), vec![servers[0].server()]);
        assert!(matches!(
            call(&first, looped).await,
            DataReply::Error(DataError::BadRequest(_))
        ));
        for s in servers {
            s.stop().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_replicate_and_delete_and_reports_follow() {
    bounded(async {
        let cluster = Cluster::new();
        let mut mds = FakeMds::start(&cluster, local(0));
        let a = cluster.start(cluster.config(1, mds.addr)).await;
        let b = cluster.start(cluster.config(2, mds.addr)).await;
        for id in [1, 2] {
            mds.expect("a full report", |r| {
                matches!(r, CsRequest::ChunkReport { id: i, full: Some(FullReport { last: true, .. }), held, .. } if *i == id && held.is_empty())
            })
            .await;
        }

        // More than one read's worth, so the copy takes several requests.
        let data = pattern(3, MAX_IO as usize + 70_000);
        let conn_a = cluster.connect(&a).await;
        for (offset, piece) in [(0, &data[..MAX_IO as usize]), (MAX_IO, &data[MAX_IO as usize..])] {
            let reply = call(&conn_a, write(5, 0, 4, offset, piece.to_vec(), Vec::new())).await;
            assert_eq!(reply, DataReply::Done);
        }
        mds.expect("a's report of the new copy", |r| {
            matches!(r, CsRequest::ChunkReport { id: 1, full: None, held, .. }
                if held == &[HeldChunk { chunk: 5, version: 4 }])
        })
        .await;

        mds.order(
            2,
            Order::Replicate {
                chunk: 5,
                version: 4,
                from: a.server(),
            },
        );
        mds.expect("b's report of the replica", |r| {
            matches!(r, CsRequest::ChunkReport { id: 2, held, .. } if held.contains(&HeldChunk { chunk: 5, version: 4 }))
        })
        .await;
        let conn_b = cluster.connect(&b).await;
        let head = call(&conn_b, read(5, 4, 0, MAX_IO)).await;
        assert_data(head, &data[..MAX_IO as usize]);
        let tail = call(&conn_b, read(5, 4, MAX_IO, MAX_IO)).await;
        let mut rest = data[MAX_IO as usize..].to_vec();
        rest.resize(MAX_IO as usize, 0);
        assert_data(tail, &rest);
        mds.expect("a heartbeat counting the replica", |r| {
            matches!(r, CsRequest::Heartbeat { id: 2, chunks: 1, capacity, .. } if *capacity > 0)
        })
        .await;

        mds.order(
            1,
            Order::Delete {
                chunk: 5,
                version: Some(4),
            },
        );
        mds.expect("a's report of the deletion", |r| {
            matches!(r, CsRequest::ChunkReport { id: 1, lost, .. } if lost == &[5])
        })
        .await;
        assert_eq!(
            call(&conn_a, DataRequest::Stat { chunk: 5 }).await,
            DataReply::Error(DataError::NoChunk(5))
        );
        a.stop().await;
        b.stop().await;
        mds.stop();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_and_restarts_show_in_the_reports() {
    bounded(async {
        let cluster = Cluster::new();
        let mut mds = FakeMds::start(&cluster, local(0));
        let config = cluster.config(1, mds.addr);
        let cs = cluster.start(config.clone()).await;
        mds.expect("the registration", |r| {
            matches!(r, CsRequest::Register { id: 1, .. })
        })
        .await;
        let conn = cluster.connect(&cs).await;
        for chunk in [1, 2, 3] {
            let reply = call(
                &conn,
                write(chunk, 0, 1, 0, pattern(chunk as u8, 200_000), Vec::new()),
            )
            .await;
            assert_eq!(reply, DataReply::Done);
        }
        // Flip one byte of chunk 2's second block on disk.
        let path = cs.chunk_file(2).expect("chunk 2 has a file");
        let f = fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let mut b = [0u8; 1];
        let pos = DATA_OFFSET + 65_536 + 10;
        f.read_exact_at(&mut b, pos).unwrap();
        f.write_all_at(&[b[0] ^ 1], pos).unwrap();
        assert_eq!(
            call(&conn, read(2, 1, 65_000, 1000)).await,
            DataReply::Error(DataError::Corrupt { chunk: 2, block: 1 })
        );
        mds.expect(
            "the loss of chunk 2",
            |r| matches!(r, CsRequest::ChunkReport { lost, full: None, .. } if lost == &[2]),
        )
        .await;
        assert!(cs.chunk_file(2).is_none(), "the bad copy is set aside");

        // After a restart, the full report lists exactly what is left.
        cs.stop().await;
        let cs = cluster.start(config).await;
        mds.expect("the new registration", |r| {
            matches!(r, CsRequest::Register { id: 1, .. })
        })
        .await;
        let full = mds
            .expect("the full report", |r| {
                matches!(
                    r,
                    CsRequest::ChunkReport {
                        full: Some(FullReport { last: true, .. }),
                        ..
                    }
                )
            })
            .await;
        let CsRequest::ChunkReport { held, .. } = full else {
            unreachable!()
        };
        assert_eq!(
            held,
            vec![
                HeldChunk { chunk: 1, version: 1 },
                HeldChunk { chunk: 3, version: 1 }
            ]
        );
        mds.expect("a heartbeat", |r| {
            matches!(r, CsRequest::Heartbeat { chunks: 2, .. })
        })
        .await;
        cs.stop().await;
        mds.stop();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_status_count_what_happened() {
    bounded(async {
        let cluster = Cluster::new();
        let cs = cluster.start(cluster.config(1, nowhere())).await;
        let conn = cluster.connect(&cs).await;
        let data = pattern(4, 300_000);
        assert_eq!(
            call(&conn, write(9, 0, 1, 0, data.clone(), Vec::new())).await,
            DataReply::Done
        );
        assert_eq!(
            call(&conn, read(9, 1, 1000, 50_000)).await,
            DataReply::Data(data[1000..51_000].to_vec())
        );
        assert_eq!(
            call(&conn, read(9, 7, 0, 1)).await,
            DataReply::Error(DataError::WrongVersion {
                chunk: 9,
                have: 1,
                want: 7
            })
        );
        let m = cs.get("/metrics").await;
        let value = |name: &str| sample(&m, name).unwrap_or_else(|| panic!("no {name} in\n{m}"));
        assert_eq!(value("mooseng_chunkserver_written_bytes_total"), 300_000.0);
        assert_eq!(value("mooseng_chunkserver_read_bytes_total"), 50_000.0);
        assert_eq!(
            value("mooseng_chunkserver_operations_total{operation=\"write\"}"),
            1.0
        );
        assert_eq!(
            value("mooseng_chunkserver_operations_total{operation=\"read\"}"),
            2.0
        );
        assert_eq!(
            value("mooseng_chunkserver_errors_total{kind=\"wrong_version\"}"),
            1.0
        );
        assert_eq!(value("mooseng_chunkserver_chunks"), 1.0);
        assert!(value("mooseng_chunkserver_capacity_bytes") > 0.0);
        assert!(value("mooseng_chunkserver_used_bytes") > 0.0);

        let status: serde_json::Value = serde_json::from_str(&cs.get("/status").await).unwrap();
        assert_eq!(status["id"], 1);
        assert_eq!(status["chunks"], 1);
        let dirs = status["dirs"].as_array().unwrap();
        assert_eq!(dirs.len(), 2);
        assert!(dirs.iter().all(|d| d["state"] == "ok"), "{status:#}");
        let health: serde_json::Value = serde_json::from_str(&cs.get("/health").await).unwrap();
        assert_eq!(health["status"], "ok");

        // Disks going away show as failed dirs; with none left the server is unhealthy.
        let dir_states = || async {
            let status: serde_json::Value = serde_json::from_str(&cs.get("/status").await).unwrap();
            let dirs = status["dirs"].as_array().unwrap().clone();
            dirs.iter()
                .map(|d| d["state"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        fs::remove_dir_all(&cs.dirs[1]).unwrap();
        common::within("the second dir to fail", async {
            while dir_states().await != ["ok", "failed"] {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        fs::remove_dir_all(&cs.dirs[0]).unwrap();
        common::within("the server to turn unhealthy", async {
            loop {
                let health: serde_json::Value = serde_json::from_str(&cs.get("/health").await).unwrap();
                if health["status"] == "failed" {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(dir_states().await, ["failed", "failed"]);
        assert_eq!(
            call(&conn, read(9, 1, 0, 1)).await,
            DataReply::Error(DataError::NoChunk(9))
        );
        cs.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_is_served_while_the_metadata_tier_is_away_and_it_registers_once_back() {
    bounded(async {
        let cluster = Cluster::new();
        let mds_addr = nowhere();
        let cs = cluster.start(cluster.config(1, mds_addr)).await;
        let conn = cluster.connect(&cs).await;
        assert_eq!(
            call(&conn, write(3, 0, 1, 0, b"still here".to_vec(), Vec::new())).await,
            DataReply::Done
        );
        assert_eq!(
            call(&conn, read(3, 1, 0, 10)).await,
            DataReply::Data(b"still here".to_vec())
        );
        // The link keeps failing and retrying.
        common::within("two failed attempts", async {
            loop {
                let m = cs.get("/metrics").await;
                if sample(&m, "mooseng_chunkserver_errors_total{kind=\"mds\"}").is_some_and(|n| n >= 2.0) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await;
        let status: serde_json::Value = serde_json::from_str(&cs.get("/status").await).unwrap();
        assert_eq!(status["mds"], "unreachable");

        // The metadata tier comes up where it was expected: registration and a full report.
        let mut mds = FakeMds::start(&cluster, mds_addr);
        mds.expect("the registration", |r| matches!(r, CsRequest::Register { id: 1, .. }))
            .await;
        mds.expect("the full report", |r| {
            matches!(r, CsRequest::ChunkReport { full: Some(FullReport { last: true, .. }), held, .. } if held == &[HeldChunk { chunk: 3, version: 1 }])
        })
        .await;
        mds.expect("a heartbeat", |r| matches!(r, CsRequest::Heartbeat { id: 1, .. }))
            .await;
        let status: serde_json::Value = serde_json::from_str(&cs.get("/status").await).unwrap();
        assert_eq!(status["mds"], "registered");
        cs.stop().await;
        mds.stop();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_to_start_without_config_certificates_or_disks() {
    bounded(async {
        let cluster = Cluster::new();
        let never = std::future::pending::<()>;

        let mut bad = cluster.config(1, nowhere());
        bad.connect_timeout = bad.forward_timeout;
        let e = chunkserver::run(bad, never()).await.unwrap_err();
        assert!(matches!(e, CsError::Config(_)), "{e}");

        let mut uncertified = cluster.config(2, nowhere());
        uncertified.id = 3;
        let e = chunkserver::run(uncertified, never()).await.unwrap_err();
        assert!(matches!(e, CsError::Tls(_)), "{e}");

        let diskless = cluster.config(4, nowhere());
        for d in &diskless.data_dirs {
            fs::remove_dir(d).unwrap();
        }
        let e = chunkserver::run(diskless, never()).await.unwrap_err();
        assert!(matches!(e, CsError::Storage(_)), "{e}");
        assert!(e.to_string().contains("disk0"), "{e}");
    })
    .await;
}
