//! The cleanup record of a fault (`ChaosInjected.cleanup`): everything its cleanup needs, written
//! before the fault is applied so that any process on the worker's host can undo it after a
//! crash, and the delay proxy's settings that a `latency` record carries.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The cleanup of an injection as the log holds it: a record this harness's worker wrote, or
/// whatever an imported trial carried in its place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Cleanup {
    Record(CleanupRecord),
    /// Not a record: an imported trial's metadata (the seed harness's), or `null` where a reader
    /// dropped it to save memory. Nothing can be cleaned up from it.
    Foreign(serde_json::Value),
}

impl Cleanup {
    /// The record, when this is one.
    pub fn record(&self) -> Option<&CleanupRecord> {
        match self {
            Cleanup::Record(record) => Some(record),
            Cleanup::Foreign(_) => None,
        }
    }
}

impl From<CleanupRecord> for Cleanup {
    fn from(record: CleanupRecord) -> Cleanup {
        Cleanup::Record(record)
    }
}

impl From<serde_json::Value> for Cleanup {
    fn from(value: serde_json::Value) -> Cleanup {
        Cleanup::Foreign(value)
    }
}

/// Everything the cleanup of one fault needs, tagged by `fault`. A record of a lab names its
/// directory (`lab_dir`), from which the lab is opened again; a record of a Kubernetes cluster
/// (`kubernetes`) names its context, namespace and trial instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum CleanupRecord {
    /// The node's process was killed; cleanup starts the node again if it is still down.
    NodeKill {
        lab_dir: PathBuf,
        node: u32,
        /// The process that was killed.
        pid: u32,
    },
    /// The node's process was stopped (SIGSTOP); cleanup continues it.
    ProcessPause {
        lab_dir: PathBuf,
        node: u32,
        /// The process that was stopped.
        pid: u32,
    },
    /// The node's delay proxy delays every chunk while its control file exists; cleanup removes
    /// the file.
    Latency {
        lab_dir: PathBuf,
        node: u32,
        /// The delay proxy's control file.
        control: PathBuf,
        settings: DelaySettings,
    },
    /// nftables chains in the node's network namespace drop `percent` of packets both ways;
    /// cleanup deletes the chains.
    PacketLoss {
        lab_dir: PathBuf,
        node: u32,
        /// The node's network namespace.
        netns: String,
        percent: u32,
        /// The chains added to the namespace's `inet eval` table.
        chains: Vec<String>,
    },
    /// nftables chains drop the traffic between the groups; cleanup deletes them.
    NetworkPartition {
        lab_dir: PathBuf,
        /// Node numbers, one list per side.
        groups: Vec<Vec<u32>>,
        /// Only the first group's outgoing traffic is dropped.
        asymmetric: bool,
        /// (namespace, chains) of every node that got rules.
        rules: Vec<(String, Vec<String>)>,
    },
    /// A file fills the node's data filesystem; cleanup removes it (and starts the node again
    /// should it have exited on the full disk).
    DiskPressure {
        lab_dir: PathBuf,
        node: u32,
        /// The fill file, in the node's data directory.
        fill_file: PathBuf,
        /// How many bytes were to be written.
        bytes: u64,
    },
    /// TiKV: the PD leader's process was killed; cleanup starts the member again if it is still
    /// down.
    PdLeaderKill {
        lab_dir: PathBuf,
        /// The lab node of the PD member that led.
        node: u32,
        /// Its name in PD (`pd1`).
        member: String,
        /// The process that was killed.
        pid: u32,
    },
    /// TiKV: PD's `evict-leader-scheduler` holds the store; cleanup removes the store from it
    /// (`DELETE /pd/api/v1/schedulers/evict-leader-scheduler-<store_id>`), asking the lab's own
    /// PD members.
    LeaderEvict {
        lab_dir: PathBuf,
        /// The lab node of the store.
        node: u32,
        /// The store's id in PD.
        store_id: u64,
    },
    /// TiKV: a majority of the stores were killed; cleanup starts each one still down.
    RegionUnavailable {
        lab_dir: PathBuf,
        /// (lab node, killed process) of every store that was killed.
        stores: Vec<(u32, u32)>,
    },
    /// A control trial: nothing was broken, so its cleanup undoes nothing.
    None { lab_dir: PathBuf },
    /// A fault in a Kubernetes cluster (`runtime: kubernetes`); its own `fault` names which.
    Kubernetes(Box<KubeRecord>),
}

/// Everything the cleanup of a fault in a Kubernetes cluster needs: where (context and
/// namespace), whose (the labels every object made for it carries) and what was done. Cleanup
/// deletes only what carries the trial's label there, and waits for what the cluster restores
/// itself (a deleted pod made again by its controller).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KubeRecord {
    /// The fault (`node_kill`, `latency`, …).
    pub chaos: crate::campaign::ChaosType,
    /// The kubeconfig context the worker used; `None`: the current context, or in-cluster.
    pub context: Option<String>,
    pub namespace: String,
    /// The values of the `eval.dev/campaign` and `eval.dev/trial` labels.
    pub campaign_id: String,
    pub trial_id: String,
    /// The nodes (pods numbered as the runtime numbers them) the fault hits.
    pub nodes: Vec<u32>,
    /// A partition's sides, as node numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<u32>>,
    pub action: KubeAction,
}

/// What a fault did in the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "does", rename_all = "snake_case")]
pub enum KubeAction {
    /// Pods deleted at once (grace period 0, on the condition of their uid); their controller
    /// makes them again, and cleanup waits until each is Ready.
    PodDelete { pods: Vec<DeletedPod> },
    /// A Chaos Mesh object; cleanup deletes every object of the trial's label and waits until
    /// Chaos Mesh has let them go.
    ChaosObject {
        /// `NetworkChaos`, `IOChaos`, `StressChaos` or `PodChaos`.
        kind: String,
        name: String,
        /// The object as created.
        object: serde_json::Value,
    },
    /// TiKV: the store put into PD's evict-leader scheduler, through a port-forward to a PD
    /// pod; cleanup takes it out the same way.
    LeaderEvict {
        node: u32,
        store_id: u64,
        /// The PD pods, asked in turn.
        pd_pods: Vec<String>,
    },
    /// The database's process in a pod's container stopped (SIGSTOP, through `pods/exec`);
    /// cleanup continues every process of that name there (none, when the container restarted).
    ProcessPause {
        node: u32,
        pod: String,
        container: String,
        /// The process's name (`etcd`, `tikv-server`, `pd-server`).
        process: String,
    },
    /// The database's process in a pod's container killed (SIGKILL, through `pods/exec`); the
    /// kubelet restarts the container, and cleanup waits for the pod Ready again.
    ProcessKill {
        node: u32,
        pod: String,
        container: String,
        /// The process's name (`etcd`, `tikv-server`, `pd-server`).
        process: String,
        /// The container's restarts before the kill: one more shows it took, when the exec
        /// ends with the container before it answers.
        restarts: i32,
    },
    /// A fill file on the pod's data volume (through `pods/exec`); cleanup removes it.
    DiskFill {
        node: u32,
        pod: String,
        container: String,
        /// The data volume's mount path in the container.
        dir: String,
        /// The fill file's name in `dir`.
        file: String,
        fill_percent: u32,
    },
    /// A control trial: nothing is changed, nothing undone.
    Nothing,
}

/// A pod deleted by a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeletedPod {
    pub node: u32,
    pub pod: String,
    /// The deleted pod's uid (the one made again has another).
    pub uid: String,
}

impl CleanupRecord {
    /// The lab the fault was injected on; `None` for a fault in a Kubernetes cluster.
    pub fn lab_dir(&self) -> Option<&Path> {
        Some(match self {
            CleanupRecord::NodeKill { lab_dir, .. }
            | CleanupRecord::ProcessPause { lab_dir, .. }
            | CleanupRecord::Latency { lab_dir, .. }
            | CleanupRecord::PacketLoss { lab_dir, .. }
            | CleanupRecord::NetworkPartition { lab_dir, .. }
            | CleanupRecord::DiskPressure { lab_dir, .. }
            | CleanupRecord::PdLeaderKill { lab_dir, .. }
            | CleanupRecord::LeaderEvict { lab_dir, .. }
            | CleanupRecord::RegionUnavailable { lab_dir, .. }
            | CleanupRecord::None { lab_dir } => lab_dir,
            CleanupRecord::Kubernetes(_) => return None,
        })
    }

    /// The fault's name, as the record's `fault` tag spells it.
    pub fn fault_name(&self) -> &'static str {
        match self {
            CleanupRecord::NodeKill { .. } => "node_kill",
            CleanupRecord::ProcessPause { .. } => "process_pause",
            CleanupRecord::Latency { .. } => "latency",
            CleanupRecord::PacketLoss { .. } => "packet_loss",
            CleanupRecord::NetworkPartition { .. } => "network_partition",
            CleanupRecord::DiskPressure { .. } => "disk_pressure",
            CleanupRecord::PdLeaderKill { .. } => "pd_leader_kill",
            CleanupRecord::LeaderEvict { .. } => "leader_evict",
            CleanupRecord::RegionUnavailable { .. } => "region_unavailable",
            CleanupRecord::None { .. } => "none",
            CleanupRecord::Kubernetes(record) => record.chaos.as_str(),
        }
    }

    /// The node the fault hit, as a name (`n2`), or the groups of a partition; `None` for a
    /// control trial, which hits nothing.
    pub fn target(&self) -> Option<String> {
        match self {
            CleanupRecord::NodeKill { node, .. }
            | CleanupRecord::ProcessPause { node, .. }
            | CleanupRecord::Latency { node, .. }
            | CleanupRecord::PacketLoss { node, .. }
            | CleanupRecord::DiskPressure { node, .. }
            | CleanupRecord::LeaderEvict { node, .. }
            | CleanupRecord::PdLeaderKill { node, .. } => Some(format!("n{node}")),
            CleanupRecord::RegionUnavailable { stores, .. } => Some(
                stores
                    .iter()
                    .map(|(node, _)| format!("n{node}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            CleanupRecord::NetworkPartition { groups, .. } => Some(format!("{groups:?}")),
            CleanupRecord::None { .. } => None,
            CleanupRecord::Kubernetes(record) => match &record.action {
                KubeAction::Nothing => None,
                _ if !record.groups.is_empty() => Some(format!("{:?}", record.groups)),
                _ => Some(
                    record
                        .nodes
                        .iter()
                        .map(|node| format!("n{node}"))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            },
        }
    }
}

/// The delay settings a delay proxy's control file holds: `{"min_ms": 50, "max_ms": 150,
/// "seed": 7}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelaySettings {
    /// Smallest delay added to a chunk, in milliseconds.
    pub min_ms: u32,
    /// Largest delay added to a chunk, in milliseconds; at least `min_ms`.
    pub max_ms: u32,
    /// Seeds the delays, so a trial replayed with the same seed draws the same ones per connection.
    pub seed: u64,
}

impl DelaySettings {
    /// Why these settings cannot be used, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.min_ms > self.max_ms {
            return Err(format!(
                "min_ms ({}) is greater than max_ms ({})",
                self.min_ms, self.max_ms
            ));
        }
        Ok(())
    }
}
