//! Port-forwards: a listener on 127.0.0.1 whose every connection is carried to one port of one
//! pod through the API server (kube's `Portforwarder`, the `portforward` subresource), so that
//! the subject's own API (etcd's client port, PD's) is reached from the worker's host as a lab
//! node's is, without a route into the cluster's network.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use tokio::net::TcpListener;

use crate::error::{Error, Result};

/// A running port-forward; stopped when dropped.
#[derive(Debug)]
pub struct Forward {
    /// Where to connect on this host.
    pub local: SocketAddr,
    pub pod: String,
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Forward {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `port` of `pod`.
    pub async fn start(client: &Client, namespace: &str, pod: &str, port: u16) -> Result<Forward> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|error| Error::Kube(format!("port-forward to {pod}:{port}: {error}")))?;
        let local = listener
            .local_addr()
            .map_err(|error| Error::Kube(format!("port-forward to {pod}:{port}: {error}")))?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let target = format!("{namespace}/{pod}:{port}");
        let name = pod.to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (pods, name, target) = (pods.clone(), name.clone(), target.clone());
                tokio::spawn(async move {
                    let mut forwarder = match pods.portforward(&name, &[port]).await {
                        Ok(forwarder) => forwarder,
                        Err(error) => {
                            tracing::warn!(%target, error = %super::describe(&error), "port-forward refused");
                            return;
                        }
                    };
                    if let Some(mut upstream) = forwarder.take_stream(port) {
                        if let Err(error) =
                            tokio::io::copy_bidirectional(&mut socket, &mut upstream).await
                        {
                            tracing::debug!(%target, %error, "port-forwarded connection ended");
                        }
                        drop(upstream);
                    }
                    if let Err(error) = forwarder.join().await {
                        tracing::debug!(%target, %error, "port-forward ended");
                    }
                });
            }
        });
        Ok(Forward {
            local,
            pod: pod.to_string(),
            port,
            task,
        })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}
