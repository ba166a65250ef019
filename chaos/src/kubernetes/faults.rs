//! The faults on Kubernetes: planned into a [`KubeRecord`] (target and every name resolved,
//! nothing changed), applied, and cleaned up from the record and the trial's label alone.
//!
//! | fault | requests |
//! | --- | --- |
//! | `node_kill` | `DELETE` the pod, grace period 0, on the condition of its uid; cleanup waits for the pod of that name Ready again. `node_kill: signal`: `pods/exec` of a fixed script that sends SIGKILL to the database's process by name (refused when it is its container's PID 1), cleanup waits for the pod Ready. `node_kill: container_kill`: a Chaos Mesh `PodChaos` `container-kill` |
//! | `process_pause` | `pods/exec` of a fixed script that sends SIGSTOP to the database's process by name (refused when it is its container's PID 1); cleanup sends SIGCONT |
//! | `disk_pressure` | `pods/exec` of a fixed script that fills the pod's data volume (its persistent volume's mount) to `fill_percent`; cleanup removes the file. `disk_pressure: io_chaos`: a Chaos Mesh `IOChaos` failing writes on the data volume with ENOSPC; `stress_chaos`: a `StressChaos` of stress-ng disk workers |
//! | `pd_leader_kill` | as `node_kill`, on the pod of PD's leader (read through a port-forward to PD) |
//! | `leader_evict` | nothing here: the subject asks PD, through a port-forward, to evict the store's leaders, and to stop |
//! | `latency`, `packet_loss`, `network_partition` | `POST` a Chaos Mesh `NetworkChaos` naming the pods; cleanup `DELETE`s every object of its kind and the trial's label and waits until none is listed |

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams, Preconditions};
use schemas::campaign::{
    ChaosSpec, DiskPressureWay, NodeKillWay, SubjectKind, SubjectSettings, Target, TargetChoice,
};
pub use schemas::cleanup::{DeletedPod, KubeAction, KubeRecord};

use super::chaos_mesh::{MeshAction, MeshChaos, chaos_api, wait_injected, wait_none_labelled};
pub use super::chaos_mesh::{Swept, delete_labelled, leftovers, namespace_leftovers, sweep};
use super::exec::{check_signalled, in_container};
use super::pods::{Selection, pod_ready, wait_pod_ready};
use crate::error::{Error, Result};
use crate::faults::TrialRng;

/// Whose fault it is (the names its objects are labelled with), and in which cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub campaign_id: String,
    pub trial_id: String,
    /// The kubeconfig context; `None`: the current one, or in-cluster.
    pub context: Option<String>,
}

/// What the subject's own API says of its topology, read through the port-forwards before the
/// plan: for the `leader` and `follower` targets and TiKV's own faults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    /// The data node that `leader` targets (etcd's leader; TiKV's store with most leaders).
    pub leader: Option<u32>,
    /// TiKV: PD's leader.
    pub pd_leader: Option<u32>,
    /// TiKV: each store node's id in PD (read for `leader_evict` only).
    pub store_ids: BTreeMap<u32, u64>,
}

/// How the faults that can be done more than one way are done (the subject's settings
/// `node_kill` and `disk_pressure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ways {
    /// For `node_kill` and `pd_leader_kill`.
    pub node_kill: NodeKillWay,
    pub disk_pressure: DiskPressureWay,
}

impl Ways {
    /// The ways a subject's settings ask for.
    pub fn of(settings: &SubjectSettings) -> Ways {
        Ways {
            node_kill: settings.node_kill,
            disk_pressure: settings.disk_pressure,
        }
    }
}

/// The faults this runtime injects today; the others are refused at preflight with this list.
pub const SUPPORTED: [&str; 9] = [
    "node_kill",
    "process_pause",
    "disk_pressure",
    "latency",
    "packet_loss",
    "network_partition",
    "pd_leader_kill",
    "leader_evict",
    "none",
];

/// Resolves `target` among the selection's data pods (`pd_` choices among the PD pods): a node
/// number, a random choice from the trial's seed, or the leader or a follower as `topology` has
/// them.
pub fn resolve_target(
    selection: &Selection,
    topology: &Topology,
    target: &Target,
    rng: &mut TrialRng,
) -> Result<u32> {
    let of = |pd: bool| -> Vec<u32> {
        selection
            .nodes
            .iter()
            .filter(|node| node.pd == pd)
            .map(|node| node.number)
            .collect()
    };
    let choice = match target {
        Target::Node(number) => {
            selection.node(*number)?;
            return Ok(*number);
        }
        Target::Choice(choice) => *choice,
    };
    let (candidates, leader, what) = match choice {
        TargetChoice::Random | TargetChoice::Leader | TargetChoice::Follower => {
            (of(false), topology.leader, "")
        }
        TargetChoice::PdRandom | TargetChoice::PdLeader | TargetChoice::PdFollower => {
            (of(true), topology.pd_leader, "PD ")
        }
    };
    if candidates.is_empty() {
        return Err(Error::Kube(format!(
            "no {what}pods to target in namespace {}",
            selection.namespace
        )));
    }
    crate::faults::choose(choice, candidates, leader, what, rng)
}

/// Plans `chaos` on the selection, the way `ways` asks: the target resolved from `seed` (and
/// `topology`), every object built, nothing changed.
pub fn plan(
    selection: &Selection,
    topology: &Topology,
    chaos: &ChaosSpec,
    seed: u64,
    owner: &Owner,
    ways: Ways,
) -> Result<KubeRecord> {
    let mut rng = TrialRng::new(seed);
    let namespace = selection.namespace.clone();
    let fault = chaos.chaos_type();
    let record = |nodes: Vec<u32>, action: KubeAction| KubeRecord {
        chaos: fault,
        context: owner.context.clone(),
        namespace: namespace.clone(),
        campaign_id: owner.campaign_id.clone(),
        trial_id: owner.trial_id.clone(),
        nodes,
        groups: Vec::new(),
        action,
    };
    let delete = |numbers: Vec<u32>| -> Result<KubeRecord> {
        let pods = numbers
            .iter()
            .map(|number| {
                let node = selection.node(*number)?;
                Ok(DeletedPod {
                    node: *number,
                    pod: node.pod.clone(),
                    uid: node.uid.clone(),
                })
            })
            .collect::<Result<_>>()?;
        Ok(record(numbers, KubeAction::PodDelete { pods }))
    };
    let mesh = |nodes: Vec<u32>, action: MeshAction, duration: Option<u32>| {
        let chaos = MeshChaos {
            name: super::object_name(&[
                "eval",
                owner.trial_id.get(..8).unwrap_or(&owner.trial_id),
                fault.as_str(),
            ]),
            namespace: namespace.clone(),
            labels: super::labels(&owner.campaign_id, &owner.trial_id, fault.as_str()),
            pods: selection.pod_names(&nodes)?,
            action,
            duration_seconds: duration,
        };
        let object = serde_json::to_value(chaos.object()).expect("an object serializes");
        Ok::<_, Error>(record(
            nodes,
            KubeAction::ChaosObject {
                kind: chaos.action.kind().0.into(),
                name: chaos.name,
                object,
            },
        ))
    };
    let kill = |number: u32| -> Result<KubeRecord> {
        let node = selection.node(number)?;
        match ways.node_kill {
            NodeKillWay::PodDelete => delete(vec![number]),
            NodeKillWay::Signal => Ok(record(
                vec![number],
                KubeAction::ProcessKill {
                    node: number,
                    pod: node.pod.clone(),
                    container: node.container.clone(),
                    process: super::exec::process_name(selection.subject, node.pd).into(),
                    restarts: node.restarts,
                },
            )),
            NodeKillWay::ContainerKill => mesh(
                vec![number],
                MeshAction::ContainerKill {
                    container: node.container.clone(),
                },
                None,
            ),
        }
    };
    let target =
        |target: &Target, rng: &mut TrialRng| resolve_target(selection, topology, target, rng);
    Ok(match chaos {
        ChaosSpec::None(_) => record(Vec::new(), KubeAction::Nothing),
        ChaosSpec::NodeKill(params) => kill(target(&params.target, &mut rng)?)?,
        ChaosSpec::PdLeaderKill(_) => kill(
            topology
                .pd_leader
                .ok_or_else(|| Error::Kube("no PD leader to kill (PD names none)".into()))?,
        )?,
        ChaosSpec::LeaderEvict(params) => {
            let node = target(&params.target, &mut rng)?;
            let store_id = *topology
                .store_ids
                .get(&node)
                .ok_or_else(|| Error::Kube(format!("PD knows no store on node {node}")))?;
            let pd_pods = selection
                .nodes
                .iter()
                .filter(|node| node.pd)
                .map(|node| node.pod.clone())
                .collect();
            record(
                vec![node],
                KubeAction::LeaderEvict {
                    node,
                    store_id,
                    pd_pods,
                },
            )
        }
        ChaosSpec::ProcessPause(params) => {
            let number = target(&params.target, &mut rng)?;
            let node = selection.node(number)?;
            record(
                vec![number],
                KubeAction::ProcessPause {
                    node: number,
                    pod: node.pod.clone(),
                    container: node.container.clone(),
                    process: super::exec::process_name(selection.subject, node.pd).into(),
                },
            )
        }
        ChaosSpec::DiskPressure(params) => {
            let number = target(&params.target, &mut rng)?;
            let node = selection.node(number)?;
            let data_mount = || {
                node.data_mount.clone().ok_or_else(|| {
                    Error::Unsupported(format!(
                        "disk_pressure on kubernetes: container {} of pod {}/{} mounts no persistent volume to fill",
                        node.container, namespace, node.pod
                    ))
                })
            };
            let container = node.container.clone();
            match ways.disk_pressure {
                DiskPressureWay::Fill => record(
                    vec![number],
                    KubeAction::DiskFill {
                        node: number,
                        pod: node.pod.clone(),
                        container,
                        dir: data_mount()?,
                        file: fill_name(&owner.trial_id),
                        fill_percent: params.fill_percent,
                    },
                ),
                DiskPressureWay::IoChaos => mesh(
                    vec![number],
                    MeshAction::DiskFull {
                        container,
                        volume_path: data_mount()?,
                    },
                    params.duration_seconds,
                )?,
                DiskPressureWay::StressChaos => mesh(
                    vec![number],
                    MeshAction::DiskStress { container },
                    params.duration_seconds,
                )?,
            }
        }
        ChaosSpec::Latency(params) => {
            let node = target(&params.target, &mut rng)?;
            let (low, high) = (
                params.min_ms.min(params.max_ms),
                params.max_ms.max(params.min_ms),
            );
            mesh(
                vec![node],
                MeshAction::Delay {
                    latency_ms: (low + high) / 2,
                    jitter_ms: (high - low) / 2,
                },
                params.duration_seconds,
            )?
        }
        ChaosSpec::PacketLoss(params) => {
            let node = target(&params.target, &mut rng)?;
            mesh(
                vec![node],
                MeshAction::Loss {
                    percent: params.percent,
                },
                params.duration_seconds,
            )?
        }
        ChaosSpec::NetworkPartition(params) => {
            let groups = match &params.groups {
                Some(groups) => groups.clone(),
                None => {
                    let number = target(&params.target, &mut rng)?;
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
            let mut record = mesh(
                first.clone(),
                MeshAction::Partition {
                    others: selection.pod_names(&others)?,
                    one_way: params.asymmetric,
                },
                params.duration_seconds,
            )?;
            record.nodes = groups.iter().flatten().copied().collect();
            record.groups = groups;
            record
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

/// The fill file of trial `trial_id` (`eval-fill-0b5f6a2e`).
pub fn fill_name(trial_id: &str) -> String {
    format!(
        "eval-fill-{}",
        super::label_value(trial_id.get(..8).unwrap_or(trial_id))
    )
}

/// Refuses a record that is not one this harness plans for trial `trial_id`: a record comes
/// from the log, which is data, and its cleanup deletes, signals and removes files. It must be
/// the trial's own (its label is what cleanup deletes by), a fill file must be the trial's own
/// name in an absolute directory without `..`, and a paused process one of the databases'.
pub fn check_record(record: &KubeRecord, trial_id: &str) -> Result<()> {
    let refuse = |what: String| {
        Err(Error::Refused(format!(
            "the {} cleanup record names {what}",
            record.chaos.as_str()
        )))
    };
    if record.trial_id != trial_id {
        return refuse(format!("the trial {}, not {trial_id}", record.trial_id));
    }
    match &record.action {
        KubeAction::DiskFill { dir, file, .. } => {
            let path = std::path::Path::new(dir);
            if *file != fill_name(trial_id)
                || !path.is_absolute()
                || path
                    .components()
                    .any(|part| part == std::path::Component::ParentDir)
            {
                return refuse(format!(
                    "the file {dir}/{file}, which no fill of this trial writes"
                ));
            }
        }
        KubeAction::ProcessPause { process, .. } | KubeAction::ProcessKill { process, .. } => {
            let known = [SubjectKind::Etcd, SubjectKind::Tikv]
                .iter()
                .flat_map(|subject| {
                    [false, true].map(|pd| super::exec::process_name(*subject, pd))
                });
            if !known.into_iter().any(|name| name == process) {
                return refuse(format!("the process {process}, which is no database's"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Injects the planned fault: the pods deleted, the Chaos Mesh object created (and injected), or
/// the store put into PD's evict-leader scheduler.
pub async fn apply(client: &Client, record: &KubeRecord) -> Result<()> {
    let namespace = &record.namespace;
    match &record.action {
        KubeAction::Nothing => Ok(()),
        KubeAction::LeaderEvict {
            store_id, pd_pods, ..
        } => {
            let store_id = *store_id;
            ask_pd(client, namespace, pd_pods, |pd| async move {
                pd.add_evict_leader(store_id).await
            })
            .await
        }
        KubeAction::ProcessPause {
            pod,
            container,
            process,
            ..
        } => {
            let output = super::exec::run_script(
                client,
                namespace,
                pod,
                container,
                super::exec::SIGNAL_SCRIPT,
                &[process, "STOP"],
            )
            .await?;
            check_signalled(&output, record, "SIGSTOP")
        }
        KubeAction::ProcessKill {
            pod,
            container,
            process,
            restarts,
            ..
        } => {
            match super::exec::run_script(
                client,
                namespace,
                pod,
                container,
                super::exec::SIGNAL_SCRIPT,
                &[process, "KILL"],
            )
            .await
            {
                Ok(output) => check_signalled(&output, record, "SIGKILL"),
                // The exec runs in the container it kills, and may end with it before it answers:
                // the kill took when the container restarted (or is restarting).
                Err(error) => {
                    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
                    match pods.get_opt(pod).await {
                        Ok(Some(now))
                            if super::pods::restart_count(&now, container) != *restarts =>
                        {
                            Ok(())
                        }
                        _ => Err(error),
                    }
                }
            }
        }
        KubeAction::DiskFill {
            pod,
            container,
            dir,
            file,
            fill_percent,
            ..
        } => {
            let percent = fill_percent.to_string();
            super::exec::run_script(
                client,
                namespace,
                pod,
                container,
                super::exec::FILL_SCRIPT,
                &[dir, &percent, file],
            )
            .await?;
            Ok(())
        }
        KubeAction::PodDelete { pods } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
            for DeletedPod { pod, uid, .. } in pods {
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                api.delete(pod, &params).await.map_err(|error| {
                    Error::Kube(format!(
                        "deleting pod {namespace}/{pod}: {}",
                        super::describe(&error)
                    ))
                })?;
            }
            Ok(())
        }
        KubeAction::ChaosObject { kind, name, object } => {
            let api = chaos_api(client, namespace, kind)?;
            let object: DynamicObject = serde_json::from_value(object.clone())
                .map_err(|error| Error::Kube(format!("{kind} {name}: {error}")))?;
            check_labels(&object, record)?;
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

/// PD's client port in its pods (TiDB Operator's default).
pub const PD_PORT: u16 = 2379;

/// Asks `request` of PD through a port-forward to each of `pd_pods` in turn, until one answers
/// (a follower forwards to its leader); every pod's error when none does.
async fn ask_pd<T, F, Fut>(
    client: &Client,
    namespace: &str,
    pd_pods: &[String],
    request: F,
) -> Result<T>
where
    F: Fn(crate::tikv::pd::Pd) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, crate::tikv::pd::PdError>>,
{
    let mut errors = Vec::new();
    for pod in pd_pods {
        let forward = super::forward::Forward::start(client, namespace, pod, PD_PORT).await?;
        let pd = crate::tikv::pd::Pd {
            addr: forward.local,
            timeout: Duration::from_secs(8),
        };
        match request(pd).await {
            Ok(answer) => return Ok(answer),
            Err(error) => errors.push(format!("{pod}: {error}")),
        }
    }
    Err(Error::Kube(format!(
        "no PD pod of namespace {namespace} answered: {}",
        if errors.is_empty() {
            "there are none".to_string()
        } else {
            errors.join("; ")
        }
    )))
}

/// Refuses an object that does not carry the record's trial label: the record may come from the
/// log, and its cleanup deletes by that label.
fn check_labels(object: &DynamicObject, record: &KubeRecord) -> Result<()> {
    let labels = object.metadata.labels.clone().unwrap_or_default();
    let trial = super::label_value(&record.trial_id);
    if labels.get(super::TRIAL_LABEL) != Some(&trial)
        || labels.get(super::MANAGED_BY_LABEL).map(String::as_str) != Some(super::MANAGED_BY)
        || object.metadata.namespace.as_deref() != Some(record.namespace.as_str())
    {
        return Err(Error::Refused(format!(
            "the {} record's object is not labelled {}={trial} in namespace {}",
            record.chaos.as_str(),
            super::TRIAL_LABEL,
            record.namespace
        )));
    }
    Ok(())
}

/// One step of a poll begun at `started`: `false` when done (nothing `seen` left to wait for);
/// `true` after a pause of [`POLL`], to look again; past `limit`, the error `timed_out` makes of
/// what was last seen.
pub(super) async fn again(
    started: tokio::time::Instant,
    limit: Duration,
    seen: Option<String>,
    timed_out: impl FnOnce(String) -> Error,
) -> Result<bool> {
    let Some(seen) = seen else {
        return Ok(false);
    };
    if started.elapsed() > limit {
        return Err(timed_out(seen));
    }
    tokio::time::sleep(POLL).await;
    Ok(true)
}

/// How long cleanup waits for Chaos Mesh to recover and let its objects go, or for a deleted
/// pod to come back Ready.
pub const CLEANUP_WAIT: Duration = Duration::from_secs(120);
pub(super) const POLL: Duration = Duration::from_secs(1);

/// Undoes the fault from its record alone: deletes every Chaos Mesh object of the trial's label
/// in the record's namespace and waits until none is listed; for deleted pods, waits until the
/// pods of those names are Ready again; takes an evicted store out of PD's scheduler.
/// Idempotent: run again, it finds nothing to do.
pub async fn cleanup(client: &Client, record: &KubeRecord) -> Result<()> {
    let namespace = &record.namespace;
    match &record.action {
        KubeAction::Nothing => Ok(()),
        KubeAction::LeaderEvict {
            store_id, pd_pods, ..
        } => {
            let store_id = *store_id;
            ask_pd(client, namespace, pd_pods, |pd| async move {
                pd.remove_evict_leader(store_id).await
            })
            .await
        }
        KubeAction::ProcessPause {
            pod,
            container,
            process,
            ..
        } => {
            let args = [process.as_str(), "CONT"];
            in_container(
                client,
                namespace,
                pod,
                container,
                super::exec::SIGNAL_SCRIPT,
                &args,
            )
            .await
            .map(drop)
        }
        KubeAction::DiskFill {
            pod,
            container,
            dir,
            file,
            ..
        } => {
            let args = [dir.as_str(), file.as_str()];
            in_container(
                client,
                namespace,
                pod,
                container,
                super::exec::UNFILL_SCRIPT,
                &args,
            )
            .await
            .map(drop)
        }
        KubeAction::PodDelete { pods } => {
            for DeletedPod { pod, .. } in pods {
                wait_pod_ready(client, namespace, pod).await?;
            }
            Ok(())
        }
        KubeAction::ProcessKill { pod, .. } => wait_pod_ready(client, namespace, pod).await,
        KubeAction::ChaosObject { kind, .. } => {
            let selector = super::trial_selector(&record.trial_id);
            delete_labelled(client, namespace, &selector, kind).await?;
            wait_none_labelled(client, namespace, &selector, kind).await
        }
    }
}

/// What the fault left in the cluster: a deleted pod not Ready again, an object of the trial's
/// label still listed. Empty when fully undone.
pub async fn record_leftovers(client: &Client, record: &KubeRecord) -> Result<Vec<String>> {
    let namespace = &record.namespace;
    match &record.action {
        KubeAction::ProcessPause {
            pod,
            container,
            process,
            ..
        } => {
            let args = [process.as_str(), "STATE"];
            let states = in_container(
                client,
                namespace,
                pod,
                container,
                super::exec::SIGNAL_SCRIPT,
                &args,
            )
            .await?;
            Ok(states
                .lines()
                .filter(|line| line.ends_with(" T") || line.ends_with(" t"))
                .map(|line| {
                    let pid = line.split_whitespace().next().unwrap_or_default();
                    format!("{process} (pid {pid}) in pod {namespace}/{pod} is stopped")
                })
                .collect())
        }
        KubeAction::DiskFill {
            pod,
            container,
            dir,
            file,
            ..
        } => {
            let args = [dir.as_str(), file.as_str(), "CHECK"];
            let present = in_container(
                client,
                namespace,
                pod,
                container,
                super::exec::UNFILL_SCRIPT,
                &args,
            )
            .await?;
            Ok((present.trim() == "present")
                .then(|| format!("fill file {dir}/{file} in pod {namespace}/{pod} exists"))
                .into_iter()
                .collect())
        }
        KubeAction::Nothing => Ok(Vec::new()),
        KubeAction::LeaderEvict {
            store_id, pd_pods, ..
        } => {
            let evicted = ask_pd(client, namespace, pd_pods, |pd| async move {
                pd.evict_leader_stores().await
            })
            .await?;
            Ok(evicted
                .contains(store_id)
                .then(|| format!("store {store_id} is in PD's evict-leader-scheduler"))
                .into_iter()
                .collect())
        }
        KubeAction::PodDelete { pods } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let mut left = Vec::new();
            for DeletedPod { pod, .. } in pods {
                if !pod_ready(&api, namespace, pod).await? {
                    left.push(format!("pod {namespace}/{pod} is not Ready"));
                }
            }
            Ok(left)
        }
        KubeAction::ProcessKill { pod, .. } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
            Ok((!pod_ready(&api, namespace, pod).await?)
                .then(|| format!("pod {namespace}/{pod} is not Ready"))
                .into_iter()
                .collect())
        }
        KubeAction::ChaosObject { kind, .. } => {
            leftovers(
                client,
                namespace,
                &super::trial_selector(&record.trial_id),
                kind,
            )
            .await
        }
    }
}
