//! A small blocking HTTP/1.1 client for loopback services: the owner's read API, and in the
//! benchmark and the browser test the viewer and ChromeDriver. One request per connection
//! (`Connection: close`); chunked bodies are decoded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response: its status, its head (status line and headers) and its body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method url` with an optional JSON body and reads the whole answer, waiting at most
/// `patience` for each read. Only `http://` URLs.
pub fn request(
    method: &str,
    url: &str,
    json_body: Option<&[u8]>,
    patience: Duration,
) -> Result<Response, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// addresses are supported, not {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(authority).map_err(|error| error.to_string())?;
    stream
        .set_read_timeout(Some(patience))
        .map_err(|error| error.to_string())?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if let Some(body) = json_body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    } else if method != "GET" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(json_body.unwrap_or_default()))
        .map_err(|error| error.to_string())?;
    // Read the head, then as much body as it announces: some servers (ChromeDriver) keep the
    // connection open despite `Connection: close`.
    let mut response = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let split = loop {
        if let Some(split) = response.windows(4).position(|window| window == b"\r\n\r\n") {
            break split;
        }
        let read = stream
            .read(&mut buffer)
            .map_err(|error| error.to_string())?;
        if read == 0 {
            return Err("the connection closed before the response's headers".to_string());
        }
        response.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("a bad status line: {head:?}"))?;
    let mut answer = Response {
        status,
        head,
        body: response[split + 4..].to_vec(),
    };
    let chunked = answer
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"));
    let length = answer
        .header("content-length")
        .and_then(|value| value.parse::<usize>().ok());
    let complete = |body: &[u8]| match (chunked, length) {
        (true, _) => body.ends_with(b"0\r\n\r\n"),
        (false, Some(length)) => body.len() >= length,
        (false, None) => false,
    };
    while !complete(&answer.body) {
        let read = stream
            .read(&mut buffer)
            .map_err(|error| error.to_string())?;
        if read == 0 {
            break;
        }
        answer.body.extend_from_slice(&buffer[..read]);
    }
    if chunked {
        answer.body = dechunk(&answer.body);
    } else if let Some(length) = length {
        answer.body.truncate(length);
    }
    Ok(answer)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|window| window == b"\r\n") {
        let size_text = String::from_utf8_lossy(&body[..end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        if size == 0 || body.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[(end + 4 + size).min(body.len())..];
    }
    out
}
