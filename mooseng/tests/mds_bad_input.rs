//! Bad input on the client port: garbage bytes, a certificate from another CA, an oversized
//! frame. Each gets a clear error and the server keeps serving others.
//!
//! Tier: integration (a real `mooseng mds` process on loopback).

mod common;

use std::time::Duration;

use client::ReadFrom;
use common::{mkdir, root};
use net::{NetError, TlsFiles};
use proto::fs::FsOp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_foreign_certificates_and_oversized_frames_are_refused() {
    let cluster = common::start(1, 1, &[]);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let addr = cluster.node(1).client;
    mkdir(&client, 1, "before").await;

    net::install_crypto_provider();
    let tls = TlsFiles::load(&cluster.cluster_dir().join("tls"), "client-admin").unwrap();
    let ep = net::endpoint::client_for(addr, &tls).unwrap();
    let conn = net::connect(&ep, addr).await.unwrap();

    // Garbage bytes on a stream: refused as malformed, the connection survives.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&[0, 0, 0, 9, 1, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8])
        .await
        .unwrap();
    send.finish().unwrap();
    let refused = net::read_frame::<proto::Response>(&mut recv, proto::CLIENT_FRAME_CAP).await;
    assert!(
        matches!(refused, Err(NetError::Rejected { .. })),
        "garbage refused: {refused:?}"
    );

    // An oversized frame: refused from its length prefix.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let len = (proto::CLIENT_FRAME_CAP as u32 + 1).to_be_bytes();
    send.write_all(&len).await.unwrap();
    let refused = net::read_frame::<proto::Response>(&mut recv, proto::CLIENT_FRAME_CAP).await;
    assert!(
        matches!(refused, Err(NetError::Rejected { .. })),
        "oversized frame refused: {refused:?}"
    );

    // The same connection still serves a good request.
    let ok: proto::Response = net::call(
        &conn,
        &proto::Request::Topology,
        proto::CLIENT_FRAME_CAP,
        Duration::from_secs(5),
    )
    .await
    .expect("good request after bad ones");
    assert!(matches!(ok, proto::Response::Topology(_)));

    // A client certificate from another CA: a TLS error, not a hang.
    let other_ca = net::Ca::generate("intruder").unwrap();
    let foreign = TlsFiles {
        ca_pem: tls.ca_pem.clone(),
        identity: other_ca.issue_client("mallory").unwrap(),
    };
    let ep2 = net::endpoint::client_for(addr, &foreign).unwrap();
    let result = async {
        let c = net::connect(&ep2, addr).await?;
        net::call::<_, proto::Response>(
            &c,
            &proto::Request::Topology,
            proto::CLIENT_FRAME_CAP,
            Duration::from_secs(5),
        )
        .await
    }
    .await;
    assert!(
        matches!(result, Err(NetError::Tls(_))),
        "foreign certificate refused: {result:?}"
    );

    // Everyone else is still served.
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
        .expect("still serving");
    client.close().await;
}
