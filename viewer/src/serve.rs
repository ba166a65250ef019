//! The viewer as a stage: bind an address, then serve `web::app` on it until the cancellation
//! token fires. `evalctl viewer` serves a file; `evalctl up` and `evalctl project` serve the
//! owner's database (the read API). Binding is its own step so that a caller can learn the port
//! (announce it, print it) before serving.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::web::{Access, Source, app};

/// A bound listener, not yet serving.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
}

/// Binds `address` (port 0 for any free port).
pub async fn bind(address: SocketAddr) -> std::io::Result<Bound> {
    Ok(Bound {
        listener: TcpListener::bind(address).await?,
    })
}

impl Bound {
    /// The address actually bound (the port chosen for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves the viewer on `source` behind `access` until `shutdown` is cancelled; requests in
    /// flight finish.
    pub async fn serve(
        self,
        source: Source,
        access: Access,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, app(source, access))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}
