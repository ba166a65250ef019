//! The client, configured as kubectl is: the kubeconfig of `KUBECONFIG` (a list of files, merged)
//! or `~/.kube/config`, its current context unless one is named (`--context` or the campaign's
//! `subject_settings.<subject>.context`), else the pod's own service account when the worker runs
//! in a pod.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::{Error, Result};

/// A connected client and where it points, for messages.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    /// `context kind-eval (https://127.0.0.1:6443)` or `in-cluster (https://10.96.0.1:443)`.
    pub place: String,
    /// The namespace the configuration names (the context's, or the pod's own).
    pub default_namespace: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("place", &self.place)
            .field("default_namespace", &self.default_namespace)
            .finish()
    }
}

/// Connects as kubectl would, to `context` when given.
pub async fn connect(context: Option<&str>) -> Result<Connection> {
    let (config, place) = match context {
        Some(context) => {
            let options = KubeConfigOptions {
                context: Some(context.to_string()),
                ..Default::default()
            };
            let config = Config::from_kubeconfig(&options).await.map_err(|error| {
                Error::Kube(format!(
                    "kubernetes context {context:?}: {error} ({})",
                    where_kubeconfig_is()
                ))
            })?;
            let place = format!("context {context} ({})", config.cluster_url);
            (config, place)
        }
        None => {
            let current = Kubeconfig::read()
                .ok()
                .and_then(|kubeconfig| kubeconfig.current_context);
            let config = Config::infer().await.map_err(|error| {
                Error::Kube(format!(
                    "no kubernetes cluster configured: {error} ({}; or run the worker in a pod with a service account)",
                    where_kubeconfig_is()
                ))
            })?;
            let place = match current {
                Some(context) => format!("context {context} ({})", config.cluster_url),
                None => format!("in-cluster ({})", config.cluster_url),
            };
            (config, place)
        }
    };
    let default_namespace = config.default_namespace.clone();
    let client = Client::try_from(config)
        .map_err(|error| Error::Kube(format!("kubernetes client for {place}: {error}")))?;
    Ok(Connection {
        client,
        place,
        default_namespace,
    })
}

/// Where the kubeconfig is looked for, as a hint in messages.
fn where_kubeconfig_is() -> String {
    match std::env::var_os("KUBECONFIG") {
        Some(list) => format!("KUBECONFIG={}", list.to_string_lossy()),
        None => "KUBECONFIG is unset, so ~/.kube/config".to_string(),
    }
}
