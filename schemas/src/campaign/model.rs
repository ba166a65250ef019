//! The campaign and variant file models: serde structs whose `///` docs are the user docs and the
//! descriptions of the generated JSON Schema.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A campaign file: which subjects to break, how, how often, and with which operator variants.
///
/// Files written for the seed harness are accepted unchanged; the fields marked "extension" are
/// this harness's additions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignFile {
    /// Name of the campaign, shown in every listing.
    pub name: String,
    /// Free text describing the campaign (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The systems to break, each a full axis of the matrix.
    #[serde(default = "default_subjects")]
    #[schemars(length(min = 1))]
    pub subjects: Vec<SubjectKind>,
    /// The faults to inject, each a full axis of the matrix. The same type may appear more than
    /// once with different parameters. `none` breaks nothing: a control trial that counts the
    /// operator's false alarms. An empty list is accepted only with `include_baseline: true`
    /// (the seed harness's fault-free form): it runs one `none` control trial per subject ×
    /// variant × repetition.
    pub chaos_types: Vec<ChaosSpec>,
    /// Trials for every subject × chaos type × variant.
    #[serde(default = "default_one")]
    #[schemars(range(min = 1, max = 1000000))]
    pub trials_per_combination: u32,
    /// Trials run at the same time, each on its own subject instance.
    #[serde(default = "default_one")]
    #[schemars(range(min = 1, max = 10))]
    pub parallel: u32,
    /// Pause between two trials on the same worker, in seconds.
    #[serde(default)]
    #[schemars(range(min = 0, max = 86400))]
    pub cooldown_seconds: u32,
    /// Add, for every subject × chaos type, the same number of trials with the same chaos and no
    /// operator, to measure how the subject heals by itself. `none` entries get no such baseline
    /// (with nothing broken and no operator, nothing is tested); with an empty `chaos_types` it
    /// asks for control trials instead (see `chaos_types`).
    #[serde(default)]
    pub include_baseline: bool,
    /// The operator variant to evaluate: a file in `variants/` next to the campaign (or in
    /// `--variants-dir`), found as `<name>.yaml` or by its `name:` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Several variants, each a full axis of the matrix, for A/B comparison (extension). Use
    /// either `variant` or `variants`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub variants: Option<Vec<String>>,
    /// Fixes every random choice (targets, timings) per trial index, so that every variant faces
    /// the identical fault schedule and comparisons can be paired (extension). When absent, a seed
    /// is drawn at publish time and recorded in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// A trial that has not finished after this many seconds ends as `timed_out`.
    #[serde(default = "default_trial_timeout")]
    #[schemars(range(min = 1, max = 86400))]
    pub trial_timeout_seconds: u32,
    /// Where and how each subject runs, keyed by subject name (extension). Subjects not listed
    /// run in the lab with 3 nodes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = { "$ref": "#/$defs/SubjectKind" }))]
    pub subject_settings: BTreeMap<SubjectKind, SubjectSettings>,
    /// The time zone in which the operator writes zone-less timestamps into operator.db: `UTC`,
    /// a fixed offset such as `+02:00`, or an IANA name such as `Europe/Berlin` (extension).
    #[serde(default = "default_operator_timezone")]
    pub operator_timezone: String,
    /// External operator (extension): the operator.db of an operator that is already running
    /// and watching the subject. Trials of variants without a `command` are captured from this
    /// file; a variant's `command` (managed mode) takes precedence. Baselines are never captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_db: Option<String>,
}

/// A variant file: one configuration of the operator's agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantFile {
    /// The variant's name, used by campaigns in `variant:` and `variants:`.
    pub name: String,
    /// The model the agent uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The agent's system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Free-form configuration of the agent's tools, passed to the operator as JSON.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub tools_config: serde_json::Map<String, serde_json::Value>,
    /// Managed mode (extension): the argv that starts the operator for each trial. Arguments are
    /// passed as arguments, never through a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub command: Option<Vec<String>>,
}

/// A system that gets broken.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A TiKV cluster: PD and TiKV stores.
    Tikv,
    /// An etcd cluster.
    Etcd,
}

impl SubjectKind {
    pub const ALL: [SubjectKind; 2] = [SubjectKind::Tikv, SubjectKind::Etcd];

    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Tikv => "tikv",
            SubjectKind::Etcd => "etcd",
        }
    }
}

impl std::fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a subject's nodes run.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// Real processes on this host, one network namespace per node when root.
    #[default]
    Lab,
    /// Pods in a Kubernetes cluster, through the Kubernetes API.
    Kubernetes,
}

/// How `node_kill` kills a node on Kubernetes.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NodeKillWay {
    /// Delete the pod with grace period 0; its controller makes it anew.
    #[default]
    PodDelete,
    /// SIGKILL to the database's process through `pods/exec` (`kill -9`); the kubelet restarts
    /// the container in place. The kernel ignores it when the database is its container's PID 1
    /// (the default images): give the pods `shareProcessNamespace: true`, or use
    /// `container_kill`.
    Signal,
    /// Chaos Mesh `PodChaos` `container-kill`: the container runtime kills the database's
    /// container, which the kubelet restarts in place.
    ContainerKill,
}

/// How `disk_pressure` presses on a node's disk on Kubernetes.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DiskPressureWay {
    /// A file through `pods/exec` filling the data volume to `fill_percent`.
    #[default]
    Fill,
    /// Chaos Mesh `IOChaos`: every write to the data volume fails with ENOSPC, as on a full
    /// disk (`fill_percent` is not used).
    IoChaos,
    /// Chaos Mesh `StressChaos`: stress-ng `--hdd` workers in the pod's cgroup writing and
    /// syncing on the node's disk (Chaos Mesh runs them in its own filesystem, not on the data
    /// volume; `fill_percent` is not used).
    StressChaos,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Runtime settings of one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectSettings {
    /// Where the nodes run.
    #[serde(default)]
    pub runtime: Runtime,
    /// Number of nodes (etcd members or TiKV stores).
    #[serde(default = "default_nodes")]
    #[schemars(range(min = 1, max = 9))]
    pub nodes: u32,
    /// Kubernetes: each node's API as `http://HOST:PORT`, one per pod in node order (the data
    /// pods, then TiKV's PD pods), for a worker that reaches the pods itself (in the cluster);
    /// without them each node is reached through a port-forward.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// Kubernetes: the namespace of the subject's pods (default: the context's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kubernetes: the kubeconfig context (default: its current context; `--context` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Kubernetes: the label selector of the data pods (etcd members, TiKV stores). Without it,
    /// the TiDB Operator's labels (v1, then v2) or the etcd charts' are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Kubernetes, TiKV: the label selector of the PD pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pd_selector: Option<String>,
    /// Kubernetes: the TiDB cluster's or etcd release's name, narrowing the default selectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Kubernetes: how `node_kill` kills a pod's database (default `pod_delete`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub node_kill: NodeKillWay,
    /// Kubernetes: how `disk_pressure` presses on a pod's data volume (default `fill`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub disk_pressure: DiskPressureWay,
    /// TiKV on the lab: the directory holding `pd-server` and `tikv-server`. Without it they are
    /// looked for in `EVAL_TIKV_BIN_DIR`, then on `PATH`, then in TiUP's
    /// `~/.tiup/components/{pd,tikv}/<version>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binaries: Option<String>,
    /// TiKV only: how many PD members the lab starts beside its `nodes` stores, 1 or 3 (default
    /// 3, as the seed harness ran it). In a TiKV lab, nodes 1 to `nodes` are the stores
    /// (`tikv1`, …) and the PD members come after them (`pd1`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3))]
    pub pd_members: Option<u32>,
}

impl Default for SubjectSettings {
    fn default() -> Self {
        SubjectSettings {
            runtime: Runtime::Lab,
            nodes: default_nodes(),
            endpoints: Vec::new(),
            namespace: None,
            context: None,
            selector: None,
            pd_selector: None,
            cluster: None,
            node_kill: NodeKillWay::default(),
            disk_pressure: DiskPressureWay::default(),
            binaries: None,
            pd_members: None,
        }
    }
}

/// PD members of a TiKV lab when the campaign does not say.
pub const DEFAULT_PD_MEMBERS: u32 = 3;

impl SubjectSettings {
    /// The PD members `subject`'s lab runs: none for etcd.
    pub fn pd_members_of(&self, subject: SubjectKind) -> u32 {
        match subject {
            SubjectKind::Tikv => self.pd_members.unwrap_or(DEFAULT_PD_MEMBERS),
            SubjectKind::Etcd => 0,
        }
    }

    /// Every node of `subject`'s lab: its stores or members, then its PD members.
    pub fn lab_nodes(&self, subject: SubjectKind) -> u32 {
        self.nodes + self.pd_members_of(subject)
    }
}

/// One fault with its parameters: `{type: node_kill, params: {...}}`. Unknown parameters are
/// errors; absent ones take the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "type",
    content = "params",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum ChaosSpec {
    /// SIGKILL to a node's process; cleanup restarts it.
    NodeKill(#[serde(default)] NodeKillParams),
    /// SIGSTOP to a node's process, SIGCONT after `duration_seconds` or at cleanup.
    ProcessPause(#[serde(default)] ProcessPauseParams),
    /// A delay between `min_ms` and `max_ms` on a node's traffic.
    Latency(#[serde(default)] LatencyParams),
    /// Random loss of `percent` of a node's packets.
    PacketLoss(#[serde(default)] PacketLossParams),
    /// Drop rules between groups of nodes (default: the target node against the rest).
    NetworkPartition(#[serde(default)] NetworkPartitionParams),
    /// Fill the node's own data filesystem to `fill_percent` with a file the fault owns.
    DiskPressure(#[serde(default)] DiskPressureParams),
    /// TiKV only: SIGKILL to the PD leader's process; cleanup restarts it.
    PdLeaderKill(#[serde(default)] PdLeaderKillParams),
    /// TiKV only: PD's `evict-leader-scheduler` for a store, so that every region leader leaves
    /// it; cleanup removes the store from the scheduler.
    LeaderEvict(#[serde(default)] LeaderEvictParams),
    /// TiKV only: SIGKILL to a majority of the stores, so that regions lose the majority of
    /// their replicas and cannot serve; cleanup restarts the stores still down.
    RegionUnavailable(#[serde(default)] RegionUnavailableParams),
    /// No fault: a control trial. The operator runs and is watched for `duration_seconds` while
    /// nothing is broken; every ticket it opens is a false alarm.
    None(#[serde(default)] NoneParams),
}

/// The kind of a fault, without parameters.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ChaosType {
    NodeKill,
    ProcessPause,
    Latency,
    PacketLoss,
    NetworkPartition,
    DiskPressure,
    PdLeaderKill,
    LeaderEvict,
    RegionUnavailable,
    /// No fault: a control trial.
    None,
}

impl ChaosType {
    pub const ALL: [ChaosType; 10] = [
        ChaosType::NodeKill,
        ChaosType::ProcessPause,
        ChaosType::Latency,
        ChaosType::PacketLoss,
        ChaosType::NetworkPartition,
        ChaosType::DiskPressure,
        ChaosType::PdLeaderKill,
        ChaosType::LeaderEvict,
        ChaosType::RegionUnavailable,
        ChaosType::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChaosType::NodeKill => "node_kill",
            ChaosType::ProcessPause => "process_pause",
            ChaosType::Latency => "latency",
            ChaosType::PacketLoss => "packet_loss",
            ChaosType::NetworkPartition => "network_partition",
            ChaosType::DiskPressure => "disk_pressure",
            ChaosType::PdLeaderKill => "pd_leader_kill",
            ChaosType::LeaderEvict => "leader_evict",
            ChaosType::RegionUnavailable => "region_unavailable",
            ChaosType::None => "none",
        }
    }

    /// A control trial's type: nothing is broken.
    pub fn is_control(self) -> bool {
        self == ChaosType::None
    }

    /// A fault only TiKV has (it needs PD).
    pub fn tikv_only(self) -> bool {
        matches!(
            self,
            ChaosType::PdLeaderKill | ChaosType::LeaderEvict | ChaosType::RegionUnavailable
        )
    }
}

impl std::fmt::Display for ChaosType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ChaosSpec {
    pub fn chaos_type(&self) -> ChaosType {
        match self {
            ChaosSpec::NodeKill(_) => ChaosType::NodeKill,
            ChaosSpec::ProcessPause(_) => ChaosType::ProcessPause,
            ChaosSpec::Latency(_) => ChaosType::Latency,
            ChaosSpec::PacketLoss(_) => ChaosType::PacketLoss,
            ChaosSpec::NetworkPartition(_) => ChaosType::NetworkPartition,
            ChaosSpec::DiskPressure(_) => ChaosType::DiskPressure,
            ChaosSpec::PdLeaderKill(_) => ChaosType::PdLeaderKill,
            ChaosSpec::LeaderEvict(_) => ChaosType::LeaderEvict,
            ChaosSpec::RegionUnavailable(_) => ChaosType::RegionUnavailable,
            ChaosSpec::None(_) => ChaosType::None,
        }
    }

    /// A control trial's chaos: nothing is broken.
    pub fn is_control(&self) -> bool {
        self.chaos_type().is_control()
    }
}

/// Which node a fault hits: `random` (drawn from the trial's seed), `leader`, `follower` (a
/// random non-leader), or a node number from 1. On TiKV, `random`, `leader` (the store holding
/// the most region leaders) and `follower` choose among the stores, and `pd_random`,
/// `pd_leader` and `pd_follower` among the PD members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Target {
    /// A node number, from 1 to the subject's node count.
    Node(#[schemars(range(min = 1))] u32),
    /// A node chosen when the fault is injected.
    Choice(TargetChoice),
}

impl Default for Target {
    fn default() -> Self {
        default_target()
    }
}

/// A node chosen when the fault is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetChoice {
    /// Drawn from the trial's seed.
    Random,
    /// The current leader.
    Leader,
    /// A non-leader, drawn from the trial's seed.
    Follower,
    /// TiKV: a PD member, drawn from the trial's seed.
    PdRandom,
    /// TiKV: the PD leader.
    PdLeader,
    /// TiKV: a PD member that is not the leader, drawn from the trial's seed.
    PdFollower,
}

impl TargetChoice {
    /// A choice among PD members, which only TiKV has.
    pub fn is_pd(self) -> bool {
        matches!(
            self,
            TargetChoice::PdRandom | TargetChoice::PdLeader | TargetChoice::PdFollower
        )
    }
}

/// Parameters of `node_kill`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeKillParams {
    /// The node to kill (default `random`).
    #[serde(default = "default_target")]
    #[schemars(default = "default_target")]
    pub target: Target,
}

/// Parameters of `process_pause`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessPauseParams {
    /// The node to pause (default `random`).
    #[serde(default = "default_target")]
    #[schemars(default = "default_target")]
    pub target: Target,
    /// Seconds until the process is resumed by the harness; absent means paused until the
    /// operator resumes it or the trial's cleanup does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub duration_seconds: Option<u32>,
}

/// Parameters of `latency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyParams {
    /// The node whose traffic is delayed (default `random`).
    #[serde(default = "default_target")]
    #[schemars(default = "default_target")]
    pub target: Target,
    /// Smallest added delay, in milliseconds.
    #[serde(default = "default_latency_min_ms")]
    #[schemars(range(min = 0, max = 60000))]
    pub min_ms: u32,
    /// Largest added delay, in milliseconds; at least `min_ms`.
    #[serde(default = "default_latency_max_ms")]
    #[schemars(range(min = 0, max = 60000))]
    pub max_ms: u32,
    /// Seconds until the delay is removed; absent means until cleanup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub duration_seconds: Option<u32>,
}

impl Default for LatencyParams {
    fn default() -> Self {
        LatencyParams {
            target: default_target(),
            min_ms: default_latency_min_ms(),
            max_ms: default_latency_max_ms(),
            duration_seconds: None,
        }
    }
}

/// Parameters of `packet_loss`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PacketLossParams {
    /// The node whose packets are dropped (default `random`).
    #[serde(default = "default_target")]
    #[schemars(default = "default_target")]
    pub target: Target,
    /// Share of packets dropped, in percent.
    #[serde(default = "default_loss_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub percent: u32,
    /// Seconds until the loss stops; absent means until cleanup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub duration_seconds: Option<u32>,
}

impl Default for PacketLossParams {
    fn default() -> Self {
        PacketLossParams {
            target: default_target(),
            percent: default_loss_percent(),
            duration_seconds: None,
        }
    }
}

/// Parameters of `network_partition`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkPartitionParams {
    /// The node cut off from the rest when `groups` is absent (default `random`).
    #[serde(default = "default_target")]
    #[schemars(default = "default_target")]
    pub target: Target,
    /// Explicit groups of node numbers that cannot reach each other, such as `[[1], [2, 3]]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2))]
    pub groups: Option<Vec<Vec<u32>>>,
    /// Drop one direction only: traffic from the first group to the others.
    #[serde(default)]
    pub asymmetric: bool,
    /// Seconds until the partition heals; absent means until cleanup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub duration_seconds: Option<u32>,
}

/// Parameters of `disk_pressure`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskPressureParams {
    /// The node whose data filesystem is filled (default `random`).
    #[serde(default = "default_target")]
    #[schemars(default = "default_target")]
    pub target: Target,
    /// How full the node's data filesystem is made, in percent.
    #[serde(default = "default_fill_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub fill_percent: u32,
    /// Seconds until the fill file is removed; absent means until cleanup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub duration_seconds: Option<u32>,
}

impl Default for DiskPressureParams {
    fn default() -> Self {
        DiskPressureParams {
            target: default_target(),
            fill_percent: default_fill_percent(),
            duration_seconds: None,
        }
    }
}

/// Parameters of `pd_leader_kill`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PdLeaderKillParams {}

/// Parameters of `leader_evict`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderEvictParams {
    /// The store whose leaders are evicted (default `random`; `leader` is the store holding the
    /// most region leaders).
    #[serde(default = "default_target")]
    #[schemars(default = "default_target")]
    pub target: Target,
    /// Seconds until the scheduler is removed; absent means until cleanup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub duration_seconds: Option<u32>,
}

/// Parameters of `region_unavailable`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionUnavailableParams {
    /// How many stores are killed (default: a majority of them, which with PD's default of 3
    /// replicas leaves every region without its majority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 9))]
    pub stores: Option<u32>,
}

/// Parameters of `none`, the control trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoneParams {
    /// How long the operator is watched while nothing is broken, in seconds; less than
    /// `trial_timeout_seconds`.
    #[serde(default = "default_control_duration")]
    #[schemars(range(min = 1, max = 86400))]
    pub duration_seconds: u32,
}

impl Default for NoneParams {
    fn default() -> Self {
        NoneParams {
            duration_seconds: default_control_duration(),
        }
    }
}

fn default_control_duration() -> u32 {
    30
}
fn default_subjects() -> Vec<SubjectKind> {
    vec![SubjectKind::Tikv]
}
fn default_one() -> u32 {
    1
}
fn default_trial_timeout() -> u32 {
    300
}
fn default_nodes() -> u32 {
    3
}
fn default_operator_timezone() -> String {
    "UTC".to_string()
}
fn default_target() -> Target {
    Target::Choice(TargetChoice::Random)
}
fn default_latency_min_ms() -> u32 {
    50
}
fn default_latency_max_ms() -> u32 {
    150
}
fn default_loss_percent() -> u32 {
    30
}
fn default_fill_percent() -> u32 {
    80
}
