//! The Chaos Mesh objects of the network faults: one `NetworkChaos` (`chaos-mesh.org/v1alpha1`)
//! per fault, naming its pods one by one (`selector.pods`), never by a label that could pick
//! more, and carrying the trial's labels so that cleanup finds it by them.

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject};
use serde_json::json;

/// Chaos Mesh's API group and version.
pub const GROUP: &str = "chaos-mesh.org";
pub const VERSION: &str = "v1alpha1";

/// The Chaos Mesh kinds the faults may create, with their plural (resource) names.
pub const KINDS: [(&str, &str); 1] = [("NetworkChaos", "networkchaos")];

/// The resource of `kind` (one of [`KINDS`]).
pub fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: GROUP.to_string(),
        version: VERSION.to_string(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: kind.to_string(),
        plural: plural.to_string(),
    }
}

/// `NetworkChaos`.
pub fn network_chaos_resource() -> ApiResource {
    resource("NetworkChaos", "networkchaos")
}

/// The CRD that must be installed for `kind` (`networkchaos.chaos-mesh.org`).
pub fn crd_name(plural: &str) -> String {
    format!("{plural}.{GROUP}")
}

/// What a `NetworkChaos` does.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkAction {
    /// `delay`: `latency_ms` on every packet the pods send, ± `jitter_ms`.
    Delay { latency_ms: u32, jitter_ms: u32 },
    /// `loss`: `percent` of the packets the pods send.
    Loss { percent: u32 },
    /// `partition` from the pods to `others` (and back, unless `one_way`).
    Partition { others: Vec<String>, one_way: bool },
}

/// One `NetworkChaos` on `pods` of `namespace`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkChaos {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub pods: Vec<String>,
    pub action: NetworkAction,
    /// Chaos Mesh ends the fault by itself after this long; without it, at cleanup.
    pub duration_seconds: Option<u32>,
}

impl NetworkChaos {
    /// The object as the API takes it.
    pub fn object(&self) -> DynamicObject {
        let pods = |names: &[String]| json!({ "pods": { self.namespace.clone(): names } });
        let mut spec = json!({
            "mode": "all",
            "selector": pods(&self.pods),
        });
        match &self.action {
            NetworkAction::Delay {
                latency_ms,
                jitter_ms,
            } => {
                spec["action"] = json!("delay");
                spec["delay"] = json!({
                    "latency": format!("{latency_ms}ms"),
                    "jitter": format!("{jitter_ms}ms"),
                    "correlation": "0",
                });
                spec["direction"] = json!("to");
            }
            NetworkAction::Loss { percent } => {
                spec["action"] = json!("loss");
                spec["loss"] = json!({ "loss": percent.to_string(), "correlation": "0" });
                spec["direction"] = json!("to");
            }
            NetworkAction::Partition { others, one_way } => {
                spec["action"] = json!("partition");
                spec["direction"] = json!(if *one_way { "to" } else { "both" });
                spec["target"] = json!({ "mode": "all", "selector": pods(others) });
            }
        }
        if let Some(seconds) = self.duration_seconds {
            spec["duration"] = json!(format!("{seconds}s"));
        }
        let mut object = DynamicObject::new(&self.name, &network_chaos_resource())
            .within(&self.namespace)
            .data(json!({ "spec": spec }));
        object.metadata.labels = Some(self.labels.clone());
        object
    }
}
