//! A minimal HTTP/1.1 JSON client for etcd's gRPC gateway (`POST /v3/...`): one request per
//! connection, a deadline on the whole exchange. Enough for health checks and state capture
//! without an HTTP stack.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{addr}: timed out after {}ms", timeout.as_millis())]
    TimedOut { addr: SocketAddr, timeout: Duration },
    #[error("{addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr}{path}: HTTP {status}: {body}")]
    Status {
        addr: SocketAddr,
        path: String,
        status: u16,
        body: String,
    },
    #[error("{addr}{path}: unreadable answer: {reason}")]
    Malformed {
        addr: SocketAddr,
        path: String,
        reason: String,
    },
}

/// POSTs `body` as JSON to `http://addr{path}` and returns the JSON answer.
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value, HttpError> {
    match tokio::time::timeout(timeout, exchange(addr, path, body)).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::TimedOut { addr, timeout }),
    }
}

async fn exchange(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, HttpError> {
    let io = |source| HttpError::Io { addr, source };
    let malformed = |reason: String| HttpError::Malformed {
        addr,
        path: path.to_string(),
        reason,
    };
    let payload = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let mut stream = TcpStream::connect(addr).await.map_err(io)?;
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(io)?;
    if response.is_empty() {
        return Err(malformed(
            "closed the connection without answering".to_string(),
        ));
    }
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| malformed("no header end".to_string()))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| malformed(format!("bad status line {:?}", head.lines().next())))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body).ok_or_else(|| malformed("bad chunked body".to_string()))?
    } else {
        body.to_string()
    };
    if status != 200 {
        return Err(HttpError::Status {
            addr,
            path: path.to_string(),
            status,
            body: body.chars().take(300).collect(),
        });
    }
    serde_json::from_str(&body).map_err(|error| malformed(error.to_string()))
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunks() {
        assert_eq!(
            super::dechunk("4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n").as_deref(),
            Some("Wikipedia")
        );
    }
}
