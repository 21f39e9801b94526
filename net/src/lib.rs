//! MooseNG transport: the cluster PKI, QUIC endpoints with mutual TLS, and versioned,
//! size-capped frames carrying request/response calls.
//!
//! Every connection is QUIC with mutual TLS: both ends present a certificate from the cluster
//! CA, and services check the peer's *role* (node or client) from its certificate names.
//!
//! # Module map
//!
//! | module | what it holds |
//! |---|---|
//! | [`pki`] | the cluster [`Ca`], node and client [`Identity`]s, their PEM files, role names |
//! | [`tls`] | quinn server/client configs from [`TlsFiles`], transport settings, [`peer_has_role`] |
//! | [`endpoint`] | server and client endpoints, [`connect`] |
//! | [`frame`] | the frame format (length, version, postcard body) and stream read/write |
//! | [`rpc`] | one bi-stream per call: [`call`] and [`serve_connection`] |
//! | [`error`] | [`NetError`] and its retry classification |
//!
//! # Tests
//!
//! In-file unit tests cover the frame format, the PKI files and the role checks without
//! sockets; `net/tests/mtls.rs` runs real endpoints on loopback (mutual TLS accepted and
//! refused, garbage and oversized frames, role checks).

pub mod endpoint;
pub mod error;
pub mod frame;
pub mod pki;
pub mod rpc;
pub mod tls;

pub use endpoint::{connect, connect_to};
pub use error::{NetError, Result};
pub use frame::{FRAME_VERSION, read_frame, write_frame};
pub use pki::{CHUNKSERVER_ROLE_NAME, CLIENT_ROLE_NAME, Ca, Identity, NODE_ROLE_NAME, SERVER_NAME};
pub use rpc::{call, serve_connection};
pub use tls::{ALPN, TlsFiles, peer_has_role, peer_node_id};

/// Installs rustls's *ring* crypto provider as the process default, unless one is installed
/// already. Idempotent; every constructor of a TLS configuration calls it.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing a provider is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
