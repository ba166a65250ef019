//! The Chaos Mesh objects of the faults: one object (`chaos-mesh.org/v1alpha1` `NetworkChaos`,
//! `IOChaos`, `StressChaos` or `PodChaos`) per fault, naming its pods one by one
//! (`selector.pods`), never by a label that could pick more, and carrying the trial's labels so
//! that cleanup finds it by them; and those objects in
//! the cluster: waiting for Chaos Mesh to inject one, listing and deleting by label, waiting
//! until Chaos Mesh lets them go, and `sweep` (`chaos cleanup --all`).

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams};
use serde_json::json;

use super::faults::{CLEANUP_WAIT, again};
use crate::error::{Error, Result};

/// Chaos Mesh's API group and version.
pub const GROUP: &str = "chaos-mesh.org";
pub const VERSION: &str = "v1alpha1";

/// The Chaos Mesh kinds the faults may create, with their plural (resource) names.
pub const KINDS: [(&str, &str); 4] = [
    ("NetworkChaos", "networkchaos"),
    ("IOChaos", "iochaos"),
    ("StressChaos", "stresschaos"),
    ("PodChaos", "podchaos"),
];

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

/// The CRD that must be installed for `kind` (`networkchaos.chaos-mesh.org`).
pub fn crd_name(plural: &str) -> String {
    format!("{plural}.{GROUP}")
}

/// ENOSPC ("No space left on device"), what a write to a full disk returns.
pub const ENOSPC: u32 = 28;

/// The I/O calls that fail on a full disk: those that write or allocate.
pub const WRITING_CALLS: [&str; 7] = [
    "write", "create", "mknod", "mkdir", "symlink", "link", "fsync",
];

/// stress-ng's disk workers of `StressChaos`: two workers writing and syncing 1 GiB files.
pub const DISK_STRESSORS: &str = "--hdd 2 --hdd-bytes 1g --hdd-opts sync";

/// What a Chaos Mesh object does to its pods.
#[derive(Debug, Clone, PartialEq)]
pub enum MeshAction {
    /// `NetworkChaos` `delay`: `latency_ms` on every packet the pods send, ± `jitter_ms`.
    Delay { latency_ms: u32, jitter_ms: u32 },
    /// `NetworkChaos` `loss`: `percent` of the packets the pods send.
    Loss { percent: u32 },
    /// `NetworkChaos` `partition` from the pods to `others` (and back, unless `one_way`).
    Partition { others: Vec<String>, one_way: bool },
    /// `IOChaos` `fault`: ENOSPC to every writing call under `volume_path` in `container`.
    DiskFull {
        container: String,
        volume_path: String,
    },
    /// `StressChaos`: [`DISK_STRESSORS`] in the cgroup of `container`.
    DiskStress { container: String },
    /// `PodChaos` `container-kill` of `container`.
    ContainerKill { container: String },
}

impl MeshAction {
    /// The object's kind and plural.
    pub fn kind(&self) -> (&'static str, &'static str) {
        let index = match self {
            MeshAction::Delay { .. } | MeshAction::Loss { .. } | MeshAction::Partition { .. } => 0,
            MeshAction::DiskFull { .. } => 1,
            MeshAction::DiskStress { .. } => 2,
            MeshAction::ContainerKill { .. } => 3,
        };
        KINDS[index]
    }
}

/// One Chaos Mesh object on `pods` of `namespace`.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshChaos {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub pods: Vec<String>,
    pub action: MeshAction,
    /// Chaos Mesh ends the fault by itself after this long; without it, at cleanup.
    pub duration_seconds: Option<u32>,
}

impl MeshChaos {
    /// The object as the API takes it.
    pub fn object(&self) -> DynamicObject {
        let pods = |names: &[String]| json!({ "pods": { self.namespace.clone(): names } });
        let mut spec = json!({
            "mode": "all",
            "selector": pods(&self.pods),
        });
        match &self.action {
            MeshAction::Delay {
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
            MeshAction::Loss { percent } => {
                spec["action"] = json!("loss");
                spec["loss"] = json!({ "loss": percent.to_string(), "correlation": "0" });
                spec["direction"] = json!("to");
            }
            MeshAction::Partition { others, one_way } => {
                spec["action"] = json!("partition");
                spec["direction"] = json!(if *one_way { "to" } else { "both" });
                spec["target"] = json!({ "mode": "all", "selector": pods(others) });
            }
            MeshAction::DiskFull {
                container,
                volume_path,
            } => {
                spec["action"] = json!("fault");
                spec["containerNames"] = json!([container]);
                spec["volumePath"] = json!(volume_path);
                spec["path"] = json!(format!("{}/**/*", volume_path.trim_end_matches('/')));
                spec["errno"] = json!(ENOSPC);
                spec["percent"] = json!(100);
                spec["methods"] = json!(WRITING_CALLS);
            }
            MeshAction::DiskStress { container } => {
                spec["containerNames"] = json!([container]);
                spec["stressngStressors"] = json!(DISK_STRESSORS);
            }
            MeshAction::ContainerKill { container } => {
                spec["action"] = json!("container-kill");
                spec["containerNames"] = json!([container]);
            }
        }
        if let Some(seconds) = self.duration_seconds {
            spec["duration"] = json!(format!("{seconds}s"));
        }
        let (kind, plural) = self.action.kind();
        let mut object = DynamicObject::new(&self.name, &resource(kind, plural))
            .within(&self.namespace)
            .data(json!({ "spec": spec }));
        object.metadata.labels = Some(self.labels.clone());
        object
    }
}

/// How long Chaos Mesh may take to inject a fault.
pub const INJECT_WAIT: Duration = Duration::from_secs(60);

/// Waits until Chaos Mesh reports the object `Selected` and `AllInjected`; an object whose
/// selector picks nothing stays unselected for good, so the wait is bounded.
pub(super) async fn wait_injected(
    api: &Api<DynamicObject>,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Result<()> {
    let started = tokio::time::Instant::now();
    loop {
        let seen = injection(api, namespace, kind, name).await?;
        let waiting = again(started, INJECT_WAIT, seen, |seen| {
            Error::Kube(format!(
                "Chaos Mesh did not inject {kind} {namespace}/{name} within {}s (conditions: {seen}); see `kubectl describe {} -n {namespace} {name}`",
                INJECT_WAIT.as_secs(),
                kind.to_lowercase()
            ))
        });
        if !waiting.await? {
            return Ok(());
        }
    }
}

/// `None` once the object is `Selected` and `AllInjected`, else the conditions seen.
async fn injection(
    api: &Api<DynamicObject>,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Result<Option<String>> {
    let object = api.get(name).await.map_err(|error| {
        Error::Kube(format!(
            "reading {kind} {namespace}/{name}: {}",
            super::describe(&error)
        ))
    })?;
    let conditions = conditions(&object);
    let is_true = |wanted: &str| {
        conditions
            .iter()
            .any(|(kind, status)| kind == wanted && status == "True")
    };
    if is_true("Selected") && is_true("AllInjected") {
        return Ok(None);
    }
    let seen: Vec<String> = conditions
        .iter()
        .map(|(kind, status)| format!("{kind}={status}"))
        .collect();
    Ok(Some(if seen.is_empty() {
        "none yet".to_string()
    } else {
        seen.join(", ")
    }))
}

/// `status.conditions` of a Chaos Mesh object as (type, status) pairs.
fn conditions(object: &DynamicObject) -> Vec<(String, String)> {
    object.data["status"]["conditions"]
        .as_array()
        .map(|conditions| {
            conditions
                .iter()
                .map(|condition| {
                    let text = |key: &str| condition[key].as_str().unwrap_or_default().to_string();
                    (text("type"), text("status"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The API of Chaos Mesh's `kind` in `namespace`.
pub(super) fn chaos_api(
    client: &Client,
    namespace: &str,
    kind: &str,
) -> Result<Api<DynamicObject>> {
    let (kind, plural) = known_kind(kind)?;
    Ok(Api::namespaced_with(
        client.clone(),
        namespace,
        &resource(kind, plural),
    ))
}

/// The kind of [`KINDS`] named `kind`, with its plural.
pub fn known_kind(kind: &str) -> Result<(&'static str, &'static str)> {
    KINDS
        .into_iter()
        .find(|(known, _)| *known == kind)
        .ok_or_else(|| Error::Refused(format!("{kind} is not a kind the harness creates")))
}

/// Deletes every `kind` object in `namespace` that `selector` picks; returns their names.
pub async fn delete_labelled(
    client: &Client,
    namespace: &str,
    selector: &str,
    kind: &str,
) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    let api = chaos_api(client, namespace, kind)?;
    for object in list_labelled(&api, namespace, kind, selector, false).await? {
        let name = object.metadata.name.clone().unwrap_or_default();
        if delete_object(&api, namespace, kind, &name).await? {
            deleted.push(format!("{kind} {namespace}/{name}"));
        }
    }
    Ok(deleted)
}

/// The objects of `kind` in `namespace` that `selector` picks; none when the cluster does not
/// serve the kind (no Chaos Mesh), or, with `forbidden_is_none`, when the harness may not list it.
async fn list_labelled(
    api: &Api<DynamicObject>,
    namespace: &str,
    kind: &str,
    selector: &str,
    forbidden_is_none: bool,
) -> Result<Vec<DynamicObject>> {
    match api.list(&ListParams::default().labels(selector)).await {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(status))
            if status.code == 404 || (forbidden_is_none && status.code == 403) =>
        {
            Ok(Vec::new())
        }
        Err(error) => Err(Error::Kube(format!(
            "listing {kind} in namespace {namespace} with {selector:?}: {}",
            super::describe(&error)
        ))),
    }
}

/// The `kind` objects of `selector` still in `namespace` (being deleted included).
pub async fn leftovers(
    client: &Client,
    namespace: &str,
    selector: &str,
    kind: &str,
) -> Result<Vec<String>> {
    let api = chaos_api(client, namespace, kind)?;
    let objects = list_labelled(&api, namespace, kind, selector, false).await?;
    Ok(named(kind, namespace, objects))
}

/// `NetworkChaos ns/name` for each object.
fn named(kind: &str, namespace: &str, objects: Vec<DynamicObject>) -> Vec<String> {
    objects
        .into_iter()
        .map(|object| {
            format!(
                "{kind} {namespace}/{}",
                object.metadata.name.unwrap_or_default()
            )
        })
        .collect()
}

/// The objects of every kind of [`KINDS`] that `selector` picks in `namespace`, for a reset. A
/// kind the harness may not list is passed over: the preflight asks for `list` wherever it asks
/// for `create`, so the harness made none of it.
pub async fn namespace_leftovers(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> Result<Vec<String>> {
    let mut left = Vec::new();
    for (kind, _) in KINDS {
        let api = chaos_api(client, namespace, kind)?;
        let objects = list_labelled(&api, namespace, kind, selector, true).await?;
        left.extend(named(kind, namespace, objects));
    }
    Ok(left)
}

/// Waits until no `kind` object of `selector` is left in `namespace` (Chaos Mesh holds an
/// object by its finalizer until it has undone the fault).
pub(super) async fn wait_none_labelled(
    client: &Client,
    namespace: &str,
    selector: &str,
    kind: &str,
) -> Result<()> {
    let started = tokio::time::Instant::now();
    loop {
        let left = leftovers(client, namespace, selector, kind).await?;
        let seen = (!left.is_empty()).then(|| left.join(", "));
        let waiting = again(started, CLEANUP_WAIT, seen, |left| {
            Error::Kube(format!(
                "still there {}s after their deletion: {left} (is Chaos Mesh's controller running?)",
                CLEANUP_WAIT.as_secs()
            ))
        });
        if !waiting.await? {
            return Ok(());
        }
    }
}

/// What `chaos cleanup --all` did on a cluster.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// `NetworkChaos ns/name` of every object deleted.
    pub deleted: Vec<String>,
    /// Kinds and namespaces the harness may not list objects in, left unchecked (`networkchaos in
    /// kube-system`).
    pub unreadable: Vec<String>,
}

/// Deletes every Chaos Mesh object the harness made ([`super::harness_selector`]) in every
/// namespace it can list: across the cluster in one list when allowed, else namespace by
/// namespace. A cluster without Chaos Mesh has nothing to clean up.
pub async fn sweep(client: &Client) -> Result<Swept> {
    use k8s_openapi::api::core::v1::Namespace;
    let selector = super::harness_selector();
    let params = ListParams::default().labels(&selector);
    let mut swept = Swept::default();
    let mut namespaces: Option<Vec<String>> = None;
    for (kind, plural) in KINDS {
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &resource(kind, plural));
        let found: Vec<(String, String)> = match all.list(&params).await {
            Ok(list) => list
                .items
                .into_iter()
                .filter_map(|object| Some((object.metadata.namespace?, object.metadata.name?)))
                .collect(),
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(kube::Error::Api(status)) if status.code == 403 => {
                if namespaces.is_none() {
                    let all: Api<Namespace> = Api::all(client.clone());
                    let list = all.list(&ListParams::default()).await.map_err(|error| {
                        Error::Kube(format!(
                            "may list {plural} in no namespace at once, nor list the namespaces ({}); clean up with the campaign's context and namespace",
                            super::describe(&error)
                        ))
                    })?;
                    namespaces = Some(
                        list.items
                            .into_iter()
                            .filter_map(|namespace| namespace.metadata.name)
                            .collect(),
                    );
                }
                let mut found = Vec::new();
                for namespace in namespaces.iter().flatten() {
                    let api = chaos_api(client, namespace, kind)?;
                    match api.list(&params).await {
                        Ok(list) => {
                            found.extend(list.items.into_iter().filter_map(|object| {
                                Some((namespace.clone(), object.metadata.name?))
                            }))
                        }
                        Err(kube::Error::Api(status)) if status.code == 403 => {
                            swept.unreadable.push(format!("{plural} in {namespace}"))
                        }
                        Err(error) => {
                            return Err(Error::Kube(format!(
                                "listing {plural} in namespace {namespace}: {}",
                                super::describe(&error)
                            )));
                        }
                    }
                }
                found
            }
            Err(error) => {
                return Err(Error::Kube(format!(
                    "listing {plural} with {selector:?}: {}",
                    super::describe(&error)
                )));
            }
        };
        for (namespace, name) in found {
            let api = chaos_api(client, &namespace, kind)?;
            if delete_object(&api, &namespace, kind, &name).await? {
                swept.deleted.push(format!("{kind} {namespace}/{name}"));
            }
        }
    }
    Ok(swept)
}

/// Deletes one object; `false` when it was gone already (another cleanup got there first).
async fn delete_object(
    api: &Api<DynamicObject>,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Result<bool> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(error) => Err(Error::Kube(format!(
            "deleting {kind} {namespace}/{name}: {}",
            super::describe(&error)
        ))),
    }
}
