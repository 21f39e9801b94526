//! Tier: integration on loopback. Real QUIC endpoints with mutual TLS: accepted and refused
//! certificates, garbage and oversized frames on a live connection, role checks.
//!
//! Every test is bounded by [`TEST_TIMEOUT`] and every call by [`CALL_TIMEOUT`], so a hang is a
//! failure, not a stuck CI job.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use net::frame::encode_frame;
use net::rpc::{CODE_MALFORMED, CODE_TOO_LARGE, CODE_UNSUPPORTED_VERSION};
use net::{
    CLIENT_ROLE_NAME, Ca, Identity, NODE_ROLE_NAME, NetError, TlsFiles, call, connect, endpoint,
    peer_has_role, peer_node_id, read_frame, serve_connection,
};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

const CAP: usize = 64 * 1024;
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A request with this sequence number is never answered.
const NEVER_ANSWER: u64 = u64::MAX;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Echo {
    seq: u64,
    payload: Vec<u8>,
}

/// What the server saw: the request and the caller's roles, from its certificate.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Reply {
    echo: Echo,
    peer_is_node: bool,
    peer_is_client: bool,
    peer_node: Option<u64>,
}

struct Server {
    ca: Ca,
    addr: SocketAddr,
    /// Why the server failed handshakes, in order.
    handshake_failures: mpsc::UnboundedReceiver<NetError>,
    /// One message each time `serve_connection` returns.
    served: mpsc::UnboundedReceiver<()>,
    _endpoint: quinn::Endpoint,
}

/// Starts node 1 of a fresh cluster on loopback, answering every [`Echo`] with a [`Reply`].
fn start_server() -> Server {
    let ca = Ca::generate("test").unwrap();
    let tls = TlsFiles {
        ca_pem: ca.cert_pem().to_string(),
        identity: ca.issue_node(1).unwrap(),
    };
    let endpoint = endpoint::server("127.0.0.1:0".parse().unwrap(), &tls).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let (failed, handshake_failures) = mpsc::unbounded_channel();
    let (done, served) = mpsc::unbounded_channel();
    let accepting = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            let failed = failed.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let conn = match incoming.await {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = failed.send(NetError::from(e));
                        return;
                    }
                };
                let peer_is_node = peer_has_role(&conn, NODE_ROLE_NAME);
                let peer_is_client = peer_has_role(&conn, CLIENT_ROLE_NAME);
                let peer_node = peer_node_id(&conn);
                serve_connection(conn, CAP, move |echo: Echo| async move {
                    if echo.seq == NEVER_ANSWER {
                        std::future::pending::<()>().await;
                    }
                    Reply {
                        echo,
                        peer_is_node,
                        peer_is_client,
                        peer_node,
                    }
                })
                .await;
                let _ = done.send(());
            });
        }
    });
    Server {
        ca,
        addr,
        handshake_failures,
        served,
        _endpoint: endpoint,
    }
}

impl Server {
    fn tls(&self, identity: Identity) -> TlsFiles {
        TlsFiles {
            ca_pem: self.ca.cert_pem().to_string(),
            identity,
        }
    }

    /// The reason of the next handshake the server refused.
    async fn next_handshake_failure(&mut self) -> NetError {
        tokio::time::timeout(CALL_TIMEOUT, self.handshake_failures.recv())
            .await
            .expect("server reports the refused handshake")
            .expect("server running")
    }
}

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test finished in time")
}

fn echo(seq: u64) -> Echo {
    Echo {
        seq,
        payload: seq.to_le_bytes().repeat(8),
    }
}

async fn echo_call(conn: &quinn::Connection, seq: u64) -> Result<Reply, NetError> {
    call(conn, &echo(seq), CAP, CALL_TIMEOUT).await
}

async fn assert_echoes(conn: &quinn::Connection, seq: u64) -> Reply {
    let reply = echo_call(conn, seq).await.expect("good call succeeds");
    assert_eq!(reply.echo, echo(seq));
    reply
}

/// Opens a stream, writes `bytes` (finishing the stream if asked) and reads the reply frame.
async fn raw_exchange(
    conn: &quinn::Connection,
    bytes: &[u8],
    finish: bool,
) -> Result<Option<Reply>, NetError> {
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(bytes).await?;
        if finish {
            send.finish()?;
        }
        read_frame::<Reply>(&mut recv, CAP).await
    };
    tokio::time::timeout(CALL_TIMEOUT, exchange)
        .await
        .expect("server answers or refuses")
}

fn assert_rejected(result: Result<Option<Reply>, NetError>, code: quinn::VarInt) {
    match result {
        Err(NetError::Rejected { code: c }) if c == code.into_inner() => {}
        other => panic!("expected rejection with code {code}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_certificates_make_many_calls_over_one_connection() {
    bounded(async {
        let server = start_server();

        // A node dials from its own server endpoint, with the identity loaded from PEM files.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), server.ca.cert_pem()).unwrap();
        server
            .ca
            .issue_node(2)
            .unwrap()
            .save(dir.path(), "node-2")
            .unwrap();
        let node_tls = TlsFiles::load(dir.path(), "node-2").unwrap();
        let node_ep = endpoint::server("127.0.0.1:0".parse().unwrap(), &node_tls).unwrap();

        let client_tls = server.tls(server.ca.issue_client("fuse").unwrap());
        let client_ep = endpoint::client_for(server.addr, &client_tls).unwrap();

        for ep in [&node_ep, &client_ep] {
            let conn = connect(ep, server.addr).await.unwrap();
            for seq in 0..5 {
                assert_echoes(&conn, seq).await;
            }
            // Concurrent calls share the connection, each on its own stream.
            let mut calls = tokio::task::JoinSet::new();
            for seq in 100..120 {
                let conn = conn.clone();
                calls.spawn(async move { assert_echoes(&conn, seq).await });
            }
            while let Some(done) = calls.join_next().await {
                done.unwrap();
            }
            assert!(conn.close_reason().is_none());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_from_another_ca_is_refused_and_server_keeps_serving() {
    bounded(async {
        let mut server = start_server();
        let good = endpoint::client(&server.tls(server.ca.issue_node(2).unwrap())).unwrap();
        let good_conn = connect(&good, server.addr).await.unwrap();
        assert_echoes(&good_conn, 1).await;

        // Trusts the cluster CA but presents a node certificate from another CA (with the same
        // cluster name, so only the key differs).
        let other = Ca::generate("test").unwrap();
        let impostor = endpoint::client(&server.tls(other.issue_node(2).unwrap())).unwrap();
        let result = async {
            let conn = connect(&impostor, server.addr).await?;
            echo_call(&conn, 2).await
        }
        .await;
        match result {
            Err(e @ NetError::Tls(_)) => assert!(!e.is_retryable()),
            other => panic!("impostor not refused: {other:?}"),
        }
        let refused = server.next_handshake_failure().await;
        assert!(matches!(refused, NetError::Tls(_)), "{refused:?}");

        // Trusts only the other CA: this client refuses the server itself.
        let stranger = endpoint::client(&TlsFiles {
            ca_pem: other.cert_pem().to_string(),
            identity: other.issue_node(3).unwrap(),
        })
        .unwrap();
        let result = connect(&stranger, server.addr).await;
        assert!(matches!(result, Err(NetError::Tls(_))), "{result:?}");

        // The established connection and new ones keep working.
        assert_echoes(&good_conn, 3).await;
        let again = connect(&good, server.addr).await.unwrap();
        assert_echoes(&again, 4).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_certificate_is_refused() {
    bounded(async {
        let mut server = start_server();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(server.ca.cert_pem().as_bytes()).unwrap())
            .unwrap();
        let mut tls = rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![net::ALPN.to_vec()];
        let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
        let mut anonymous = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        anonymous.set_default_client_config(config);

        let result = async {
            let conn = connect(&anonymous, server.addr).await?;
            echo_call(&conn, 1).await
        }
        .await;
        assert!(matches!(result, Err(NetError::Tls(_))), "{result:?}");
        let refused = server.next_handshake_failure().await;
        assert!(matches!(refused, NetError::Tls(_)), "{refused:?}");

        let good = endpoint::client(&server.tls(server.ca.issue_client("ok").unwrap())).unwrap();
        assert_echoes(&connect(&good, server.addr).await.unwrap(), 2).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_fail_only_their_stream() {
    bounded(async {
        let server = start_server();
        let client = endpoint::client(&server.tls(server.ca.issue_client("c").unwrap())).unwrap();
        let conn = connect(&client, server.addr).await.unwrap();
        let good = encode_frame(&echo(7)).unwrap();

        // Plausible length and version, body not an Echo (a varint that never ends).
        let garbage_body = [0, 0, 0, 4, 1, 0xff, 0xff, 0xff];
        assert_rejected(raw_exchange(&conn, &garbage_body, true).await, CODE_MALFORMED);
        assert_echoes(&conn, 1).await;

        // Text where a frame belongs: its first 4 bytes read as a ~1.2 GB length.
        assert_rejected(
            raw_exchange(&conn, b"GET / HTTP/1.1\r\n\r\n", true).await,
            CODE_TOO_LARGE,
        );
        assert_echoes(&conn, 2).await;

        // A huge length alone, stream left open: refused from the prefix, without waiting for
        // (or allocating) the announced body.
        assert_rejected(raw_exchange(&conn, &[0xff; 4], false).await, CODE_TOO_LARGE);

        // Zero length, unknown version, body cut short.
        assert_rejected(raw_exchange(&conn, &[0, 0, 0, 0], true).await, CODE_MALFORMED);
        let mut future = good.clone();
        future[4] = 9;
        assert_rejected(raw_exchange(&conn, &future, true).await, CODE_UNSUPPORTED_VERSION);
        assert_rejected(
            raw_exchange(&conn, &good[..good.len() - 1], true).await,
            CODE_MALFORMED,
        );
        assert_echoes(&conn, 3).await;

        // A well-formed request over the server's cap, through `call`.
        let big = Echo {
            seq: 4,
            payload: vec![0xab; CAP + 1],
        };
        let result = call::<_, Reply>(&conn, &big, CAP, CALL_TIMEOUT).await;
        match result {
            Err(NetError::Rejected { code }) if code == CODE_TOO_LARGE.into_inner() => {}
            other => panic!("oversized request not refused: {other:?}"),
        }

        // A response over the caller's own cap.
        let result = call::<_, Reply>(&conn, &echo(5), 8, CALL_TIMEOUT).await;
        assert!(
            matches!(result, Err(NetError::FrameTooLarge { cap: 8, .. })),
            "{result:?}"
        );

        // A request the server never answers times out without hurting the connection.
        let result = call::<_, Reply>(&conn, &echo(NEVER_ANSWER), CAP, Duration::from_millis(200)).await;
        assert!(matches!(result, Err(NetError::Timeout)), "{result:?}");

        assert!(conn.close_reason().is_none(), "{:?}", conn.close_reason());
        assert_echoes(&conn, 6).await;
        assert_echoes(&connect(&client, server.addr).await.unwrap(), 7).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tells_node_certificates_from_client_certificates() {
    bounded(async {
        let server = start_server();
        let node = endpoint::client(&server.tls(server.ca.issue_node(7).unwrap())).unwrap();
        let client = endpoint::client(&server.tls(server.ca.issue_client("fuse").unwrap())).unwrap();

        let seen = assert_echoes(&connect(&node, server.addr).await.unwrap(), 1).await;
        assert!(seen.peer_is_node && !seen.peer_is_client, "{seen:?}");
        assert_eq!(seen.peer_node, Some(7));

        let seen = assert_echoes(&connect(&client, server.addr).await.unwrap(), 2).await;
        assert!(seen.peer_is_client && !seen.peer_is_node, "{seen:?}");
        assert_eq!(seen.peer_node, None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_ends_when_the_connection_closes_even_with_a_handler_in_flight() {
    bounded(async {
        let mut server = start_server();
        let client = endpoint::client(&server.tls(server.ca.issue_client("c").unwrap())).unwrap();
        let conn = connect(&client, server.addr).await.unwrap();
        assert_echoes(&conn, 1).await;
        let result = call::<_, Reply>(&conn, &echo(NEVER_ANSWER), CAP, Duration::from_millis(100)).await;
        assert!(matches!(result, Err(NetError::Timeout)), "{result:?}");
        assert!(
            server.served.try_recv().is_err(),
            "serving ended while the connection was open"
        );

        conn.close(0u32.into(), b"done");
        tokio::time::timeout(CALL_TIMEOUT, server.served.recv())
            .await
            .expect("serve_connection returns once the connection closes")
            .expect("server running");
    })
    .await;
}
