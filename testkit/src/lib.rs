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
