//! The faults on Kubernetes: planned into a [`KubeRecord`] (target and every name resolved,
//! nothing changed), applied, and cleaned up from the record and the trial's label alone.
//!
//! | fault | requests |
//! | --- | --- |
//! | `node_kill` | `DELETE` the pod, grace period 0, on the condition of its uid; cleanup waits for the pod of that name Ready again |
//! | `latency`, `packet_loss`, `network_partition` | `POST` a Chaos Mesh `NetworkChaos` naming the pods; cleanup `DELETE`s every object of the trial's label and waits until none is listed |

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, Preconditions};
use schemas::campaign::{ChaosSpec, Target, TargetChoice};
use serde::{Deserialize, Serialize};

use super::chaos_mesh::{self, NetworkAction, NetworkChaos};
use super::pods::Selection;
use crate::error::{Error, Result};
use crate::faults::TrialRng;

/// Whose fault it is: the names its objects are labelled with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub campaign_id: String,
    pub trial_id: String,
}

/// Everything the cleanup of one fault needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum KubeRecord {
    /// The pod was deleted at once; its controller makes it again.
    PodDelete {
        namespace: String,
        node: u32,
        pod: String,
        /// The deleted pod's uid (the new one has another).
        uid: String,
    },
    /// A control trial (`none`): nothing is changed, nothing undone.
    Nothing { namespace: String },
    /// A Chaos Mesh object; cleanup deletes it (and whatever else carries the trial's label).
    ChaosObject {
        namespace: String,
        kind: String,
        name: String,
        /// The object as created.
        object: serde_json::Value,
    },
}

/// The faults this runtime injects today; the others are refused at preflight with this list.
pub const SUPPORTED: [&str; 5] = [
    "node_kill",
    "latency",
    "packet_loss",
    "network_partition",
    "none",
];

/// Resolves `target` among the selection's data pods (`pd_` choices among the PD pods) without
/// the subject's topology: a node number or a random choice from the trial's seed. `leader` and
/// `follower` need the subject's API and are refused here.
pub fn resolve_target(selection: &Selection, target: &Target, rng: &mut TrialRng) -> Result<u32> {
    let of = |pd: bool| -> Vec<u32> {
        selection
            .nodes
            .iter()
            .filter(|node| node.pd == pd)
            .map(|node| node.number)
            .collect()
    };
    let candidates = match target {
        Target::Node(number) => {
            selection.node(*number)?;
            return Ok(*number);
        }
        Target::Choice(TargetChoice::Random) => of(false),
        Target::Choice(TargetChoice::PdRandom) => of(true),
        Target::Choice(choice) => {
            return Err(Error::Unsupported(format!(
                "target {choice:?} on kubernetes needs the subject's API (a port-forward), which this build does not reach yet; use random or a node number"
            )));
        }
    };
    if candidates.is_empty() {
        return Err(Error::Kube(format!(
            "no pods to target in namespace {}",
            selection.namespace
        )));
    }
    Ok(candidates[rng.below(candidates.len() as u64) as usize])
}

/// Plans `chaos` on the selection: the target resolved from `seed`, every object built.
pub fn plan(
    selection: &Selection,
    chaos: &ChaosSpec,
    seed: u64,
    owner: &Owner,
) -> Result<KubeRecord> {
    let mut rng = TrialRng::new(seed);
    let namespace = selection.namespace.clone();
    let fault = chaos.chaos_type().as_str();
    let network = |pods: Vec<String>, action: NetworkAction, duration: Option<u32>| {
        let chaos = NetworkChaos {
            name: super::object_name(&[
                "eval",
                owner.trial_id.get(..8).unwrap_or(&owner.trial_id),
                fault,
            ]),
            namespace: namespace.clone(),
            labels: super::labels(&owner.campaign_id, &owner.trial_id, fault),
            pods,
            action,
            duration_seconds: duration,
        };
        let object = serde_json::to_value(chaos.object()).expect("an object serializes");
        KubeRecord::ChaosObject {
            namespace: namespace.clone(),
            kind: "NetworkChaos".into(),
            name: chaos.name,
            object,
        }
    };
    Ok(match chaos {
        ChaosSpec::None(_) => KubeRecord::Nothing { namespace },
        ChaosSpec::NodeKill(params) => {
            let number = resolve_target(selection, &params.target, &mut rng)?;
            let node = selection.node(number)?;
            KubeRecord::PodDelete {
                namespace,
                node: number,
                pod: node.pod.clone(),
                uid: node.uid.clone(),
            }
        }
        ChaosSpec::Latency(params) => {
            let number = resolve_target(selection, &params.target, &mut rng)?;
            let (low, high) = (
                params.min_ms.min(params.max_ms),
                params.max_ms.max(params.min_ms),
            );
            network(
                selection.pod_names(&[number])?,
                NetworkAction::Delay {
                    latency_ms: (low + high) / 2,
                    jitter_ms: (high - low) / 2,
                },
                params.duration_seconds,
            )
        }
        ChaosSpec::PacketLoss(params) => {
            let number = resolve_target(selection, &params.target, &mut rng)?;
            network(
                selection.pod_names(&[number])?,
                NetworkAction::Loss {
                    percent: params.percent,
                },
                params.duration_seconds,
            )
        }
        ChaosSpec::NetworkPartition(params) => {
            let groups = match &params.groups {
                Some(groups) => groups.clone(),
                None => {
                    let number = resolve_target(selection, &params.target, &mut rng)?;
                    let rest = selection
                        .nodes
                        .iter()
                        .map(|node| node.number)
                        .filter(|n| *n != number)
                        .collect();
                    vec![vec![number], rest]
                }
            };
            let (first, others) = groups
                .split_first()
                .ok_or_else(|| Error::Kube("a partition needs two groups".into()))?;
            let others: Vec<u32> = others.iter().flatten().copied().collect();
            network(
                selection.pod_names(first)?,
                NetworkAction::Partition {
                    others: selection.pod_names(&others)?,
                    one_way: params.asymmetric,
                },
                params.duration_seconds,
            )
        }
        other => {
            return Err(Error::Unsupported(format!(
                "{} on kubernetes is not built yet (built: {})",
                other.chaos_type().as_str(),
                SUPPORTED.join(", ")
            )));
        }
    })
}

/// Injects the planned fault.
pub async fn apply(client: &Client, record: &KubeRecord) -> Result<()> {
    match record {
        KubeRecord::Nothing { .. } => Ok(()),
        KubeRecord::PodDelete {
            namespace,
            pod,
            uid,
            ..
        } => {
            let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            pods.delete(pod, &params).await.map_err(|error| {
                Error::Kube(format!(
                    "deleting pod {namespace}/{pod}: {}",
                    super::describe(&error)
                ))
            })?;
            Ok(())
        }
        KubeRecord::ChaosObject {
            namespace,
            kind,
            name,
            object,
        } => {
            let api = chaos_api(client, namespace, kind)?;
            let object: DynamicObject = serde_json::from_value(object.clone())
                .map_err(|error| Error::Kube(format!("{kind} {name}: {error}")))?;
            api.create(&PostParams::default(), &object)
                .await
                .map_err(|error| {
                    Error::Kube(format!(
                        "creating {kind} {namespace}/{name}: {}",
                        super::describe(&error)
                    ))
                })?;
            wait_injected(&api, namespace, kind, name).await
        }
    }
}

/// How long Chaos Mesh may take to inject a fault.
pub const INJECT_WAIT: Duration = Duration::from_secs(60);

/// Waits until Chaos Mesh reports the object `Selected` and `AllInjected`; an object whose
/// selector picks nothing stays unselected for good, so the wait is bounded.
async fn wait_injected(
    api: &Api<DynamicObject>,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Result<()> {
    let look = async || {
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
    };
    wait_until(INJECT_WAIT, look, |seen| {
        Error::Kube(format!(
            "Chaos Mesh did not inject {kind} {namespace}/{name} within {}s (conditions: {seen}); see `kubectl describe networkchaos -n {namespace} {name}`",
            INJECT_WAIT.as_secs()
        ))
    })
    .await
}

/// Asks `look` every [`POLL`] until it answers `None` (done), for at most `limit`; then the
/// error `timed_out` makes of its last answer (what it saw).
async fn wait_until(
    limit: Duration,
    mut look: impl AsyncFnMut() -> Result<Option<String>>,
    timed_out: impl FnOnce(String) -> Error,
) -> Result<()> {
    let started = tokio::time::Instant::now();
    loop {
        let Some(seen) = look().await? else {
            return Ok(());
        };
        if started.elapsed() > limit {
            return Err(timed_out(seen));
        }
        tokio::time::sleep(POLL).await;
    }
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
fn chaos_api(client: &Client, namespace: &str, kind: &str) -> Result<Api<DynamicObject>> {
    let (kind, plural) = chaos_mesh::KINDS
        .iter()
        .find(|(known, _)| *known == kind)
        .ok_or_else(|| Error::Refused(format!("{kind} is not a kind the harness creates")))?;
    Ok(Api::namespaced_with(
        client.clone(),
        namespace,
        &chaos_mesh::resource(kind, plural),
    ))
}

/// How long cleanup waits for Chaos Mesh to recover and let its objects go, or for a deleted
/// pod to come back Ready.
pub const CLEANUP_WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_secs(1);

/// Undoes the fault: deletes every Chaos Mesh object of the trial's label in the record's
/// namespace and waits until none is listed; for a deleted pod, waits until the pod of that name
/// is Ready again. Idempotent: run again, it finds nothing to delete.
pub async fn cleanup(client: &Client, record: &KubeRecord, owner: &Owner) -> Result<()> {
    match record {
        KubeRecord::Nothing { .. } => Ok(()),
        KubeRecord::PodDelete { namespace, pod, .. } => {
            wait_pod_ready(client, namespace, pod).await
        }
        KubeRecord::ChaosObject { namespace, .. } => {
            delete_labelled(client, namespace, &super::trial_selector(&owner.trial_id)).await?;
            wait_none_labelled(client, namespace, &super::trial_selector(&owner.trial_id)).await
        }
    }
}

/// Deletes every Chaos Mesh object in `namespace` that `selector` picks; returns their names.
pub async fn delete_labelled(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for (kind, _) in chaos_mesh::KINDS {
        let api = chaos_api(client, namespace, kind)?;
        for object in list_labelled(&api, namespace, kind, selector).await? {
            let name = object.metadata.name.clone().unwrap_or_default();
            if delete_object(&api, namespace, kind, &name).await? {
                deleted.push(format!("{kind} {namespace}/{name}"));
            }
        }
    }
    Ok(deleted)
}

async fn list_labelled(
    api: &Api<DynamicObject>,
    namespace: &str,
    kind: &str,
    selector: &str,
) -> Result<Vec<DynamicObject>> {
    api.list(&ListParams::default().labels(selector))
        .await
        .map(|list| list.items)
        .map_err(|error| {
            Error::Kube(format!(
                "listing {kind} in namespace {namespace} with {selector:?}: {}",
                super::describe(&error)
            ))
        })
}

/// The Chaos Mesh objects of `selector` still in `namespace` (being deleted included).
pub async fn leftovers(client: &Client, namespace: &str, selector: &str) -> Result<Vec<String>> {
    let mut left = Vec::new();
    for (kind, _) in chaos_mesh::KINDS {
        let api = chaos_api(client, namespace, kind)?;
        for object in list_labelled(&api, namespace, kind, selector).await? {
            left.push(format!(
                "{kind} {namespace}/{}",
                object.metadata.name.unwrap_or_default()
            ));
        }
    }
    Ok(left)
}

/// Waits until no object of `selector` is left in `namespace` (Chaos Mesh holds an object by
/// its finalizer until it has undone the fault).
async fn wait_none_labelled(client: &Client, namespace: &str, selector: &str) -> Result<()> {
    let look = async || {
        let left = leftovers(client, namespace, selector).await?;
        Ok((!left.is_empty()).then(|| left.join(", ")))
    };
    wait_until(CLEANUP_WAIT, look, |left| {
        Error::Kube(format!(
            "still there {}s after their deletion: {left} (is Chaos Mesh's controller running?)",
            CLEANUP_WAIT.as_secs()
        ))
    })
    .await
}

/// Waits until pod `name` of `namespace` exists and is Ready.
async fn wait_pod_ready(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let look = async || {
        let pod = pods.get_opt(name).await.map_err(|error| {
            Error::Kube(format!(
                "reading pod {namespace}/{name}: {}",
                super::describe(&error)
            ))
        })?;
        let ready = pod.as_ref().is_some_and(super::pods::is_ready);
        Ok((!ready).then(String::new))
    };
    wait_until(CLEANUP_WAIT, look, |_| {
        Error::Kube(format!(
            "pod {namespace}/{name} is not Ready {}s after the fault",
            CLEANUP_WAIT.as_secs()
        ))
    })
    .await
}

/// What `chaos cleanup --all` did on a cluster.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// `NetworkChaos ns/name` of every object deleted.
    pub deleted: Vec<String>,
    /// Namespaces the harness may not list objects in, left unchecked.
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
    for (kind, plural) in chaos_mesh::KINDS {
        let all: Api<DynamicObject> =
            Api::all_with(client.clone(), &chaos_mesh::resource(kind, plural));
        let found: Vec<(String, String)> = match all.list(&params).await {
            Ok(list) => list
                .items
                .into_iter()
                .filter_map(|object| Some((object.metadata.namespace?, object.metadata.name?)))
                .collect(),
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(kube::Error::Api(status)) if status.code == 403 => {
                let namespaces: Api<Namespace> = Api::all(client.clone());
                let list = namespaces
                    .list(&ListParams::default())
                    .await
                    .map_err(|error| {
                        Error::Kube(format!(
                            "may list {plural} in no namespace at once, nor list the namespaces ({}); clean up with the campaign's context and namespace",
                            super::describe(&error)
                        ))
                    })?;
                let mut found = Vec::new();
                for namespace in list.items.into_iter().filter_map(|n| n.metadata.name) {
                    let api = chaos_api(client, &namespace, kind)?;
                    match api.list(&params).await {
                        Ok(list) => {
                            found.extend(list.items.into_iter().filter_map(|object| {
                                Some((namespace.clone(), object.metadata.name?))
                            }))
                        }
                        Err(kube::Error::Api(status)) if status.code == 403 => {
                            swept.unreadable.push(namespace)
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
