//! Mutual-TLS quinn configurations from the cluster CA and an [`Identity`], the transport
//! settings, and role checks on an established connection.
//!
//! Both sides trust only the cluster CA. A server requires a client certificate chained to it;
//! which *role* the peer has (node or client) is a separate check, [`peer_has_role`], made by
//! each service for its port (raft accepts only [`NODE_ROLE_NAME`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{TransportConfig, VarInt};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::WebPkiClientVerifier;

use crate::error::{NetError, Result};
use crate::pki::{self, CA_CERT_FILE, Identity, NODE_ROLE_NAME};

/// The ALPN protocol of every MooseNG QUIC connection.
pub const ALPN: &[u8] = b"mooseng/1";

/// A connection with no traffic (keep-alives included) for this long is dead.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval of keep-alive packets; well under [`MAX_IDLE_TIMEOUT`].
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// Idle timeout of node-to-node (raft) connections. A peer that restarts on the same address
/// never answers the connection its old process had: the sender must notice within a
/// failover, not after [`MAX_IDLE_TIMEOUT`].
pub const PEER_IDLE_TIMEOUT: Duration = Duration::from_secs(1);
/// Keep-alive interval of node-to-node connections; well under [`PEER_IDLE_TIMEOUT`].
pub const PEER_KEEP_ALIVE_INTERVAL: Duration = Duration::from_millis(200);
/// Concurrent bidirectional streams (one per RPC) a peer may open.
pub const MAX_CONCURRENT_BIDI_STREAMS: u32 = 4096;
/// Concurrent unidirectional streams a peer may open.
pub const MAX_CONCURRENT_UNI_STREAMS: u32 = 64;
/// Flow-control window of one stream: a whole data request (up to 8 MiB of payload) fits,
/// so a chunk write streams without waiting for window updates. A connection may have four
/// streams' worth in flight, which bounds what one peer can make this side buffer.
pub const STREAM_WINDOW: u32 = 16 << 20;
/// The largest UDP payload path MTU discovery probes for: jumbo frames where the path has
/// them (loopback, data-center networks); paths with 1500-byte frames settle below it.
pub const MTU_UPPER_BOUND: u16 = 8952;

/// The CA certificate every peer must chain to and this process's own identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The cluster CA certificate (PEM).
    pub ca_pem: String,
    /// This process's certificate and key.
    pub identity: Identity,
}

impl TlsFiles {
    /// Reads `<dir>/ca.pem` and the identity `<dir>/<stem>.pem` + `<dir>/<stem>.key`, checking
    /// that they parse.
    pub fn load(dir: &Path, stem: &str) -> Result<TlsFiles> {
        let ca_path = dir.join(CA_CERT_FILE);
        let ca_pem = pki::read_file(&ca_path)?;
        pki::parse_certs(&ca_pem).map_err(|e| NetError::pki(&ca_path, e))?;
        Ok(TlsFiles {
            ca_pem,
            identity: Identity::load(dir, stem)?,
        })
    }

    /// A server configuration that presents the identity, requires a client certificate
    /// chained to the CA, and speaks [`ALPN`] with the transport settings of [`transport_config`].
    pub fn server_config(&self) -> Result<quinn::ServerConfig> {
        crate::install_crypto_provider();
        let verifier = WebPkiClientVerifier::builder(Arc::new(self.roots()?))
            .build()
            .map_err(|e| NetError::Tls(format!("build client certificate verifier: {e}")))?;
        let (chain, key) = self.own_cert()?;
        let mut tls = rustls::ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| NetError::Tls(format!("server certificate: {e}")))?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = QuicServerConfig::try_from(tls).map_err(|e| NetError::Tls(e.to_string()))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(transport_config());
        Ok(config)
    }

    /// A client configuration that trusts only the CA and presents the identity.
    pub fn client_config(&self) -> Result<quinn::ClientConfig> {
        crate::install_crypto_provider();
        let (chain, key) = self.own_cert()?;
        let mut tls = rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(chain, key)
            .map_err(|e| NetError::Tls(format!("client certificate: {e}")))?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = QuicClientConfig::try_from(tls).map_err(|e| NetError::Tls(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(transport_config());
        Ok(config)
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        for cert in pki::parse_certs(&self.ca_pem).map_err(|e| NetError::Tls(format!("CA {e}")))? {
            roots
                .add(cert)
                .map_err(|e| NetError::Tls(format!("CA certificate: {e}")))?;
        }
        Ok(roots)
    }

    fn own_cert(
        &self,
    ) -> Result<(
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )> {
        let chain = self.identity.cert_chain().map_err(NetError::Tls)?;
        let key = self.identity.private_key().map_err(NetError::Tls)?;
        Ok((chain, key))
    }
}

/// The transport settings of client and data endpoints, server and client sides alike.
pub fn transport_config() -> Arc<TransportConfig> {
    transport(MAX_IDLE_TIMEOUT, KEEP_ALIVE_INTERVAL)
}

/// The transport settings of node-to-node (raft) endpoints: [`transport_config`] with
/// [`PEER_IDLE_TIMEOUT`].
pub fn peer_transport_config() -> Arc<TransportConfig> {
    transport(PEER_IDLE_TIMEOUT, PEER_KEEP_ALIVE_INTERVAL)
}

fn transport(idle: Duration, keep_alive: Duration) -> Arc<TransportConfig> {
    let mut transport = TransportConfig::default();
    transport
        .max_idle_timeout(Some(idle.try_into().expect("a valid idle timeout")))
        .keep_alive_interval(Some(keep_alive))
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_CONCURRENT_BIDI_STREAMS))
        .max_concurrent_uni_streams(VarInt::from_u32(MAX_CONCURRENT_UNI_STREAMS))
        .stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
        .receive_window(VarInt::from_u32(4 * STREAM_WINDOW))
        .send_window(4 * u64::from(STREAM_WINDOW));
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(MTU_UPPER_BOUND);
    transport.mtu_discovery_config(Some(mtu));
    Arc::new(transport)
}

/// Whether the peer's certificate is valid for `role_name` (for example
/// [`NODE_ROLE_NAME`] or [`CLIENT_ROLE_NAME`](crate::CLIENT_ROLE_NAME)).
///
/// The handshake already proved that the certificate chains to the cluster CA; this checks
/// only the name. False if the peer presented no certificate.
pub fn peer_has_role(conn: &quinn::Connection, role_name: &str) -> bool {
    peer_certs(conn).is_some_and(|certs| certs.first().is_some_and(|leaf| cert_has_role(leaf, role_name)))
}

/// The node id of a peer with a node certificate (from its `node-<id>.mooseng` name), or `None`
/// for clients and peers without a certificate.
pub fn peer_node_id(conn: &quinn::Connection) -> Option<u64> {
    let certs = peer_certs(conn)?;
    let leaf = certs.first()?;
    if !cert_has_role(leaf, NODE_ROLE_NAME) {
        return None;
    }
    let cert = webpki::EndEntityCert::try_from(leaf).ok()?;
    let mut ids = cert.valid_dns_names().filter_map(|name| {
        name.strip_prefix("node-")?
            .strip_suffix(".mooseng")?
            .parse::<u64>()
            .ok()
    });
    let id = ids.next()?;
    // A certificate naming two nodes identifies neither.
    ids.next().is_none().then_some(id)
}

/// Whether `cert` is valid for the DNS name `role_name` (its subject alternative names; no
/// wildcards are issued by the cluster CA).
pub fn cert_has_role(cert: &CertificateDer<'_>, role_name: &str) -> bool {
    let Ok(name) = ServerName::try_from(role_name) else {
        return false;
    };
    webpki::EndEntityCert::try_from(cert).is_ok_and(|c| c.verify_is_valid_for_subject_name(&name).is_ok())
}

/// The peer's certificate chain, end-entity first (quinn's rustls session hands it out as
/// `Vec<CertificateDer>`).
fn peer_certs(conn: &quinn::Connection) -> Option<Vec<CertificateDer<'static>>> {
    let identity = conn.peer_identity()?;
    identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()
        .map(|certs| *certs)
}
