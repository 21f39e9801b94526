//! HTTP GET for the servers' HTTP ports.

use std::net::SocketAddr;

/// `GET path` from `addr`: (status code, body); status 0 if the port does not answer.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    web::get(addr, path).unwrap_or((0, String::new()))
}
