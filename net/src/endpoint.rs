//! QUIC endpoints (one UDP socket each) and dialling a node.
//!
//! A process keeps one endpoint: a node's [`server`] endpoint also dials its peers, a client's
//! [`client`] endpoint only dials. Connections are cheap to share (`Connection` is `Clone`) and
//! dropping the last handle closes one.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{NetError, Result};
use crate::pki::SERVER_NAME;
use crate::tls::TlsFiles;

/// A server endpoint bound to `bind` that accepts mutual-TLS connections and can also dial
/// other nodes with the same identity. Must be called within a tokio runtime.
pub fn server(bind: SocketAddr, tls: &TlsFiles) -> Result<quinn::Endpoint> {
    server_with(bind, tls, crate::tls::transport_config())
}

/// A node's endpoint for its peers (the raft port): like [`server`], with the
/// [`peer_transport_config`](crate::tls::peer_transport_config) on both sides, so a peer that
/// restarted is reached again within [`PEER_IDLE_TIMEOUT`](crate::tls::PEER_IDLE_TIMEOUT).
pub fn peer(bind: SocketAddr, tls: &TlsFiles) -> Result<quinn::Endpoint> {
    server_with(bind, tls, crate::tls::peer_transport_config())
}

fn server_with(
    bind: SocketAddr,
    tls: &TlsFiles,
    transport: std::sync::Arc<quinn::TransportConfig>,
) -> Result<quinn::Endpoint> {
    let mut server = tls.server_config()?;
    server.transport_config(transport.clone());
    let mut client = tls.client_config()?;
    client.transport_config(transport);
    let mut endpoint = quinn::Endpoint::server(server, bind)?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

/// A client-only endpoint on an ephemeral IPv4 port (it can dial IPv4 addresses only; see
/// [`client_for`]). Must be called within a tokio runtime.
pub fn client(tls: &TlsFiles) -> Result<quinn::Endpoint> {
    client_bound((Ipv4Addr::UNSPECIFIED, 0).into(), tls)
}

/// A client-only endpoint on an ephemeral port of the same address family as `peer`.
pub fn client_for(peer: SocketAddr, tls: &TlsFiles) -> Result<quinn::Endpoint> {
    let bind = match peer {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    client_bound(bind, tls)
}

fn client_bound(bind: SocketAddr, tls: &TlsFiles) -> Result<quinn::Endpoint> {
    let mut endpoint = quinn::Endpoint::client(bind)?;
    endpoint.set_default_client_config(tls.client_config()?);
    Ok(endpoint)
}

/// Dials the node at `addr` as [`SERVER_NAME`] and completes the handshake.
///
/// A server that rejects *this* side's certificate may do so only after the handshake
/// completes here (TLS 1.3 lets the client finish first); the rejection then surfaces on the
/// first stream operation as [`NetError::Tls`]. Fails with [`NetError::Tls`] when the server's
/// certificate is not from the cluster CA, and [`NetError::Connect`] otherwise (including when
/// nothing answers within the idle timeout).
pub async fn connect(endpoint: &quinn::Endpoint, addr: SocketAddr) -> Result<quinn::Connection> {
    connect_to(endpoint, addr, SERVER_NAME).await
}

/// Like [`connect`], expecting the server's certificate to be valid for `server_name` (for
/// example [`crate::pki::CHUNKSERVER_ROLE_NAME`] for a data port).
pub async fn connect_to(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    server_name: &str,
) -> Result<quinn::Connection> {
    let connecting = endpoint
        .connect(addr, server_name)
        .map_err(|e| NetError::Connect {
            addr,
            reason: e.to_string(),
        })?;
    connecting.await.map_err(|e| match NetError::from(e) {
        NetError::Closed(reason) => NetError::Connect { addr, reason },
        NetError::Timeout => NetError::Connect {
            addr,
            reason: format!("no answer within {:?}", crate::tls::MAX_IDLE_TIMEOUT),
        },
        other => other,
    })
}
