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
