//! What the workspace's tests share and its programs never need, kept out of the wire-types crate
//! and the stage libraries: [`TemporaryNats`], a `nats-server -js` of a test's own, and
//! [`replay::Replay`], an HTTP server that answers recorded responses and records every request.

pub mod replay;

use schemas::log::local::{LocalNats, LocalServerError};

/// A [`LocalNats`] with its store in a temporary directory removed on drop: what each test
/// starts for itself.
#[derive(Debug)]
pub struct TemporaryNats {
    // Field order matters: the server stops before its directory is removed.
    pub server: LocalNats,
    pub dir: tempfile::TempDir,
}

impl TemporaryNats {
    /// Starts a fresh `nats-server -js` on a free port of 127.0.0.1.
    pub async fn start() -> Result<TemporaryNats, LocalServerError> {
        let dir = tempfile::Builder::new()
            .prefix("eval-nats-")
            .tempdir()
            .map_err(|source| LocalServerError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let server = LocalNats::start(dir.path(), None).await?;
        Ok(TemporaryNats { server, dir })
    }

    pub fn url(&self) -> &str {
        self.server.url()
    }
}

/// A [`LocalCluster`] of three members with their stores in a temporary directory removed on
/// drop: a JetStream cluster that survives the loss of one member.
#[derive(Debug)]
pub struct TemporaryCluster {
    // Field order matters: the members stop before their directory is removed.
    pub cluster: schemas::log::cluster::LocalCluster,
    pub dir: tempfile::TempDir,
}

impl TemporaryCluster {
    /// Starts a fresh cluster of `size` members on free ports of 127.0.0.1.
    pub async fn start(size: usize) -> Result<TemporaryCluster, LocalServerError> {
        let dir = tempfile::Builder::new()
            .prefix("eval-cluster-")
            .tempdir()
            .map_err(|source| LocalServerError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let cluster = schemas::log::cluster::LocalCluster::start(dir.path(), size).await?;
        Ok(TemporaryCluster { cluster, dir })
    }

    /// Every member's URL, comma-separated, as `--nats` takes them.
    pub fn urls(&self) -> String {
        self.cluster.urls()
    }
}

/// `text` as a URL's query value, encoded the way kube's client encodes it
/// (`application/x-www-form-urlencoded`: a space as `+`).
pub fn encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (byte as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Accepts a WebSocket upgrade on `stream` as the API server does for a port-forward or an exec
/// (answering with the `v4.channel.k8s.io` protocol): the socket and the request's path and
/// query, or `None` when the client's handshake fails.
pub async fn accept_channel_socket(
    stream: tokio::net::TcpStream,
) -> Option<(
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    String,
)> {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let uri = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = uri.clone();
    // tungstenite's handshake callback returns its own (large) error response type.
    #[allow(clippy::result_large_err)]
    let callback = move |request: &Request, mut response: Response| {
        *seen.lock().expect("uri") = request.uri().to_string();
        response.headers_mut().insert(
            "sec-websocket-protocol",
            tokio_tungstenite::tungstenite::http::HeaderValue::from_static("v4.channel.k8s.io"),
        );
        Ok(response)
    };
    let socket = tokio_tungstenite::accept_hdr_async(stream, callback)
        .await
        .ok()?;
    let uri = uri.lock().expect("uri").clone();
    Some((socket, uri))
}
