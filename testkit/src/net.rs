//! Loopback helpers: free ports, a minimal HTTP/1.1 client, polling.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

/// An HTTP response: status, lower-cased header lines, body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    /// The value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(&name)).then(|| v.trim())
        })
    }
}

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One request over a fresh connection (`Connection: close`), bounded in time.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response> {
    let fut = async {
        let s = tokio::net::TcpStream::connect(addr).await?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            head.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        // Write and read at once: a server may answer (a 413, a 429) before it has read the
        // body and close, so a failed write is not the outcome; the answer is.
        let (mut rd, mut wr) = s.into_split();
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        let writer = tokio::spawn(async move {
            let _ = wr.write_all(&out).await;
            wr
        });
        let mut raw = Vec::new();
        let read = rd.read_to_end(&mut raw).await;
        let _ = writer.await;
        match read {
            // A reset after the answer arrived (unread body bytes make the server's close a
            // reset) leaves the answer in `raw`.
            Err(_) if raw.windows(4).any(|w| w == b"\r\n\r\n") => {}
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        parse_response(&raw)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"))?
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response: {text:?}"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no status in {head:?}"))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok(Response {
        status,
        head: head.to_owned(),
        body,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// GET; returns status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let r = request(addr, "GET", path, &[], b"").await?;
    Ok((r.status, r.body))
}

/// POST a JSON body; returns status and body.
pub async fn http_post(addr: SocketAddr, path: &str, body: &str) -> Result<(u16, String)> {
    let r = request(addr, "POST", path, &[], body.as_bytes()).await?;
    Ok((r.status, r.body))
}

/// GET and parse JSON; `None` while the server is not answering 200 with JSON.
pub async fn get_json(addr: SocketAddr, path: &str) -> Option<Value> {
    match http_get(addr, path).await {
        Ok((200, body)) => serde_json::from_str(&body).ok(),
        _ => None,
    }
}

/// Poll `f` every 50 ms until it returns `Some`, or fail after `timeout` with `what`.
pub async fn poll_until<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse_response(raw).expect("parse");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "abcde");
        assert_eq!(r.header("x-a"), Some("b"));
    }
}
