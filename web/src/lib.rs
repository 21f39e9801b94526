//! A deliberately small HTTP/1.1 responder for operational endpoints (`/health`, `/status`,
//! `/metrics`): `GET` only, one request per connection, bounded request size, a 5 s deadline.
//! Each server supplies a [`Routes`] function from path to [`Page`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head accepted.
const MAX_REQUEST: usize = 8 << 10;

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Status line, e.g. `200 OK`.
    pub status: &'static str,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

impl Page {
    /// `200 OK` with a JSON body.
    pub fn json(body: String) -> Page {
        Page {
            status: "200 OK",
            content_type: "application/json",
            body,
        }
    }

    /// `200 OK` with Prometheus (OpenMetrics) text.
    pub fn metrics(body: String) -> Page {
        Page {
            status: "200 OK",
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body,
        }
    }

    /// `404 Not Found`, listing what exists.
    pub fn not_found(known: &str) -> Page {
        Page {
            status: "404 Not Found",
            content_type: "text/plain",
            body: format!("try {known}\n"),
        }
    }

    fn text(status: &'static str, body: &str) -> Page {
        Page {
            status,
            content_type: "text/plain",
            body: body.to_string(),
        }
    }
}

/// Maps a request path to a page.
pub type Routes = Arc<dyn Fn(&str) -> Page + Send + Sync>;

/// Binds the HTTP port.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, routes: Routes) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(Duration::from_secs(5), answer(stream, &routes))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "http request timed out");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, routes: &Routes) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return respond(
                &mut stream,
                Page::text("431 Request Header Fields Too Large", "request too large\n"),
            )
            .await;
        }
    }
    let line = String::from_utf8_lossy(buf.split(|b| *b == b'\n').next().unwrap_or_default()).into_owned();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return respond(&mut stream, Page::text("405 Method Not Allowed", "only GET\n")).await;
    }
    let page = routes(path);
    respond(&mut stream, page).await
}

async fn respond(stream: &mut TcpStream, page: Page) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        page.status,
        page.content_type,
        page.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(page.body.as_bytes()).await?;
    stream.shutdown().await
}

/// A blocking `GET path` from `addr` (for tools and tests): (status code, body), with a 5 s
/// deadline for connecting and for reading.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP status line"))?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn get_reads_what_serve_answers() {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Routes = Arc::new(|path| match path {
            "/status" => Page::json("{\"ok\":true}".into()),
            _ => Page::not_found("/status"),
        });
        tokio::spawn(serve(listener, routes));
        let got =
            tokio::task::spawn_blocking(move || (get(addr, "/status").unwrap(), get(addr, "/x").unwrap().0))
                .await
                .unwrap();
        assert_eq!(got, ((200, "{\"ok\":true}".to_string()), 404));
    }
}
