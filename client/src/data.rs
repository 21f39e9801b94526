//! Talking to chunkservers' data ports, for clients and for chunkservers forwarding to one
//! another: one kept connection per server address (names are resolved, so `host:port` from
//! a compose network works), one stream per request. A kept connection found closed mid-call
//! is dialled again and the call made once more: every data request may be repeated (a
//! repeated write lands at the version it already moved to).
//!
//! A killed chunkserver never refuses anything (QUIC runs over UDP and ignores the ICMP
//! errors a closed port draws): it just stays silent. So a request whose packets draw no
//! packet at all from the server within [`SIGN_OF_LIFE`] (a live server acknowledges within a
//! round trip plus its ack delay, however long the request itself takes) fails at once as
//! unreachable instead of waiting out its timeout, and for [`SILENT_FOR`] after that the
//! server gets only [`SIGN_OF_LIFE`] to complete a new handshake. Readers fall over to another
//! copy and chains drop the server within a fraction of a second, not after the 10 s request
//! timeout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use net::{NetError, TlsFiles};
use proto::data::{DATA_FRAME_CAP, DataError, DataReply, DataRequest, Server};

/// How long a chunkserver has to show any sign of life (a packet on the connection, or a
/// completed handshake) once a request is sent or a silent server is dialled.
pub const SIGN_OF_LIFE: Duration = Duration::from_millis(500);

/// How long a server that stayed silent is dialled with [`SIGN_OF_LIFE`] as the connect
/// timeout.
pub const SILENT_FOR: Duration = Duration::from_secs(10);

/// Why a data request failed.
#[derive(Debug, thiserror::Error)]
pub enum DataCallError {
    /// The chunkserver answered with an error.
    #[error("chunkserver {server}: {error}")]
    Refused {
        /// The server.
        server: u64,
        /// Its answer.
        error: DataError,
    },
    /// The chunkserver could not be reached or did not answer.
    #[error("chunkserver {server} ({addr}): {error}")]
    Unreachable {
        /// The server.
        server: u64,
        /// Its address.
        addr: String,
        /// What happened.
        error: NetError,
    },
}

/// A pool of connections to chunkservers' data ports.
#[derive(Debug)]
pub struct DataClient {
    endpoint: quinn::Endpoint,
    conns: Mutex<HashMap<String, quinn::Connection>>,
    /// Servers (by address) that last stayed silent, and when.
    silent: Mutex<HashMap<String, Instant>>,
    /// How long dialling a server may take.
    pub connect_timeout: Duration,
    /// How long a request may take once connected, unless given per call.
    pub timeout: Duration,
}

impl DataClient {
    /// A client with its own endpoint presenting `tls`'s identity.
    pub fn new(tls: &TlsFiles) -> Result<DataClient, NetError> {
        Ok(Self::from_endpoint(
            net::endpoint::client(tls)?,
            Duration::from_secs(3),
            Duration::from_secs(10),
        ))
    }

    /// A client dialling from `endpoint` (a chunkserver's own, so peers see its certificate).
    pub fn from_endpoint(
        endpoint: quinn::Endpoint,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> DataClient {
        DataClient {
            endpoint,
            conns: Mutex::new(HashMap::new()),
            silent: Mutex::new(HashMap::new()),
            connect_timeout,
            timeout,
        }
    }

    /// Sends `req` to `server` and returns its successful answer, within [`DataClient::timeout`].
    pub async fn call(&self, server: &Server, req: &DataRequest) -> Result<DataReply, DataCallError> {
        self.call_within(server, req, self.timeout).await
    }

    /// Sends `req` to `server` and waits at most `timeout` for the answer.
    pub async fn call_within(
        &self,
        server: &Server,
        req: &DataRequest,
        timeout: Duration,
    ) -> Result<DataReply, DataCallError> {
        let unreachable = |error| DataCallError::Unreachable {
            server: server.id,
            addr: server.addr.clone(),
            error,
        };
        let silent = |error| {
            lock(&self.silent).insert(server.addr.clone(), Instant::now());
            unreachable(error)
        };
        let conn = self.conn(&server.addr).await.map_err(silent)?;
        let answer = match exchange(&conn, req, timeout).await {
            Err(NetError::Closed(reason)) => {
                tracing::debug!(server = server.id, reason, "connection closed; dialling again");
                self.forget(&server.addr, &conn);
                let conn = self.conn(&server.addr).await.map_err(silent)?;
                exchange(&conn, req, timeout).await
            }
            r => r,
        };
        if answer.is_ok() {
            lock(&self.silent).remove(&server.addr);
        }
        match answer {
            Ok(DataReply::Error(error)) => Err(DataCallError::Refused {
                server: server.id,
                error,
            }),
            Ok(reply) => Ok(reply),
            Err(e) => {
                if e.is_retryable() {
                    self.forget(&server.addr, &conn);
                    return Err(silent(e));
                }
                Err(unreachable(e))
            }
        }
    }

    async fn conn(&self, addr: &str) -> Result<quinn::Connection, NetError> {
        if let Some(c) = lock(&self.conns).get(addr).filter(|c| c.close_reason().is_none()) {
            return Ok(c.clone());
        }
        let to = resolve(addr).await?;
        let was_silent = lock(&self.silent)
            .get(addr)
            .is_some_and(|at| at.elapsed() < SILENT_FOR);
        let within = if was_silent {
            SIGN_OF_LIFE.min(self.connect_timeout)
        } else {
            self.connect_timeout
        };
        let dial = net::connect_to(&self.endpoint, to, net::CHUNKSERVER_ROLE_NAME);
        let conn = tokio::time::timeout(within, dial)
            .await
            .map_err(|_| NetError::Connect {
                addr: to,
                reason: format!("no answer within {within:?}"),
            })??;
        lock(&self.conns).insert(addr.to_string(), conn.clone());
        Ok(conn)
    }

    /// Drops the kept connection to `addr` if it is still `conn`.
    fn forget(&self, addr: &str, conn: &quinn::Connection) {
        let mut conns = lock(&self.conns);
        if conns.get(addr).is_some_and(|c| c.stable_id() == conn.stable_id()) {
            conns.remove(addr);
        }
    }

    /// Closes every connection.
    pub fn close(&self) {
        self.endpoint.close(quinn::VarInt::from_u32(0), b"bye");
    }
}

/// Sends `req` on `conn` and waits at most `timeout` for the answer; fails with
/// [`NetError::Timeout`] (and closes `conn`) if the server sends no packet at all within
/// [`SIGN_OF_LIFE`].
async fn exchange(
    conn: &quinn::Connection,
    req: &DataRequest,
    timeout: Duration,
) -> Result<DataReply, NetError> {
    let heard = conn.stats().udp_rx.datagrams;
    let mut call = std::pin::pin!(net::call(conn, req, DATA_FRAME_CAP, timeout));
    tokio::select! {
        answer = &mut call => return answer,
        () = tokio::time::sleep(SIGN_OF_LIFE.min(timeout)) => {}
    }
    if conn.stats().udp_rx.datagrams == heard {
        conn.close(quinn::VarInt::from_u32(0), b"silent");
        return Err(NetError::Timeout);
    }
    call.await
}

/// `addr` as a socket address, resolving a host name.
async fn resolve(addr: &str) -> Result<SocketAddr, NetError> {
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    let fail = |reason: String| NetError::Connect {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        reason: format!("resolve {addr}: {reason}"),
    };
    tokio::net::lookup_host(addr)
        .await
        .map_err(|e| fail(e.to_string()))?
        .next()
        .ok_or_else(|| fail("no addresses".into()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
