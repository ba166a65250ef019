//! The runbook's decisions, pure: the variant's tools config, which problem a ticket names, and
//! which commands diagnose and repair it for a careful (diagnose first) or a hasty agent.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::probe::{self, COMMAND_TIMEOUT};

/// The variant's `tools_config`, read leniently (unknown keys ignored, wrong types defaulted).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolsConfig {
    pub diagnose_first: bool,
    pub max_repair_attempts: u32,
    pub allow_destructive: bool,
    /// Command prefixes (`etcdctl`, `evalctl lab node`); empty allows everything.
    pub allowed_commands: Vec<String>,
}

impl Default for ToolsConfig {
    /// The `default` variant: careful, two attempts, nothing destructive.
    fn default() -> ToolsConfig {
        ToolsConfig {
            diagnose_first: true,
            max_repair_attempts: 2,
            allow_destructive: false,
            allowed_commands: Vec::new(),
        }
    }
}

impl ToolsConfig {
    pub fn from_json(text: &str) -> ToolsConfig {
        let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let defaults = ToolsConfig::default();
        ToolsConfig {
            diagnose_first: value["diagnose_first"]
                .as_bool()
                .unwrap_or(defaults.diagnose_first),
            max_repair_attempts: value["max_repair_attempts"]
                .as_u64()
                .map_or(defaults.max_repair_attempts, |n| n.clamp(1, 20) as u32),
            allow_destructive: value["allow_destructive"]
                .as_bool()
                .unwrap_or(defaults.allow_destructive),
            allowed_commands: value["allowed_commands"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|prefix| prefix.as_str().map(str::to_string))
                .collect(),
        }
    }

    pub fn style(&self) -> Style {
        if self.diagnose_first {
            Style::Careful
        } else {
            Style::Hasty
        }
    }

    /// Whether `argv` starts with one of the allowed prefixes, word by word.
    pub fn permits(&self, argv: &[String]) -> bool {
        self.allowed_commands.is_empty()
            || self.allowed_commands.iter().any(|prefix| {
                let words: Vec<&str> = prefix.split_whitespace().collect();
                !words.is_empty()
                    && words.len() <= argv.len()
                    && words.iter().zip(argv).all(|(word, arg)| word == arg)
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Diagnoses, repairs once per attempt, verifies between attempts, escalates when out of
    /// attempts.
    Careful,
    /// Skips diagnosis, repeats the restart without looking, may reach for destructive commands.
    Hasty,
}

/// What a ticket is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A node does not answer: an etcd member, a TiKV store or a PD member.
    MemberUnreachable(u32),
    HighLatency(u32),
    /// The cluster lost its leader or its majority: etcd without a leader, PD without a leader
    /// or not answering, regions missing peers.
    NoLeader,
    NoSpace,
    /// TiKV: PD's evict-leader scheduler holds this store (PD's store id).
    LeadersEvicted(u64),
    Unknown,
}

impl Problem {
    /// The problem of a ticket: its invariant, its `store_id` (the lab node, `n2`, where the
    /// monitor knows it) and its violation key (`leaders_evicted:s1` names PD's store id).
    pub fn from_ticket(invariant_name: &str, store_id: Option<&str>, key: &str) -> Problem {
        let node = store_id
            .and_then(|id| id.strip_prefix('n'))
            .and_then(|number| number.parse().ok());
        let pd_store = key
            .split_once(":s")
            .and_then(|(_, id)| id.parse::<u64>().ok());
        match (invariant_name, node) {
            (
                "member_unreachable" | "store_down" | "store_unreachable" | "pd_member_unhealthy",
                Some(node),
            ) => Problem::MemberUnreachable(node),
            ("high_latency", Some(node)) => Problem::HighLatency(node),
            (
                "no_leader" | "pd_no_leader" | "pd_unreachable" | "regions_miss_peer"
                | "regions_down_peer",
                _,
            ) => Problem::NoLeader,
            ("nospace_alarm", _) => Problem::NoSpace,
            ("leaders_evicted", _) => pd_store.map_or(Problem::Unknown, Problem::LeadersEvicted),
            _ => Problem::Unknown,
        }
    }
}

/// A node's process as `evalctl lab status --json` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    Running,
    Paused,
    Down,
    Unknown,
}

impl ProcessState {
    fn parse(text: &str) -> ProcessState {
        match text {
            "running" => ProcessState::Running,
            "paused" => ProcessState::Paused,
            "down" => ProcessState::Down,
            _ => ProcessState::Unknown,
        }
    }
}

/// Process states by node from `evalctl lab status --json` (the named lab, or the only one).
pub fn parse_lab_status(output: &str, lab: Option<&str>) -> BTreeMap<u32, ProcessState> {
    let value: serde_json::Value = serde_json::from_str(output.trim()).unwrap_or_default();
    let labs = value.as_array().cloned().unwrap_or_default();
    let chosen = labs.iter().find(|entry| match lab {
        Some(name) => entry["lab"]["name"].as_str() == Some(name),
        None => labs.len() == 1,
    });
    chosen
        .and_then(|entry| entry["nodes"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|node| {
            Some((
                node["node"].as_u64()? as u32,
                ProcessState::parse(node["process"].as_str()?),
            ))
        })
        .collect()
}

/// What `evalctl lab node …` said about the node's process: its last word, or an error that says
/// it runs already (then it is running or paused; resuming is harmless either way).
pub fn process_state_from_node_output(output: &str) -> ProcessState {
    if output.contains("runs already") {
        return ProcessState::Paused;
    }
    output
        .lines()
        .rev()
        .find_map(|line| line.rsplit(": ").next())
        .map_or(ProcessState::Unknown, |word| {
            ProcessState::parse(word.trim())
        })
}

/// Where the commands point.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Every node's client endpoint; node N is the Nth.
    pub endpoints: Vec<String>,
    /// TiKV: the PD members' client endpoints (some of `endpoints`); empty for etcd.
    pub pd_endpoints: Vec<String>,
    pub lab: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Target {
    /// A TiKV cluster (it has PD).
    pub fn is_tikv(&self) -> bool {
        !self.pd_endpoints.is_empty()
    }

    /// The lab's nodes as the TiKV probe sees them.
    pub fn nodes(&self) -> crate::pd_probe::Nodes {
        crate::pd_probe::Nodes {
            endpoints: self.endpoints.clone(),
            pd_endpoints: self.pd_endpoints.clone(),
        }
    }

    /// The PD member to ask, avoiding node `avoid` (the one in trouble).
    pub fn pd(&self, avoid: Option<u32>) -> String {
        let avoided = avoid.and_then(|node| self.endpoint(node));
        self.pd_endpoints
            .iter()
            .find(|endpoint| Some(*endpoint) != avoided)
            .or(self.pd_endpoints.first())
            .cloned()
            .unwrap_or_default()
    }

    /// `curl` GET of PD's `/pd/api/v1/<path>`, asked of a member other than node `avoid`.
    pub fn pd_read(&self, path: &str, avoid: Option<u32>) -> Vec<String> {
        crate::pd_probe::curl(format!("{}/pd/api/v1/{path}", self.pd(avoid)))
    }

    /// `curl -X DELETE` of PD's `/pd/api/v1/<path>`.
    pub fn pd_delete(&self, path: &str, avoid: Option<u32>) -> Vec<String> {
        let mut argv = self.pd_read(path, avoid);
        argv.splice(2..2, ["-X".to_string(), "DELETE".to_string()]);
        argv
    }

    pub fn etcdctl(&self, args: &[&str]) -> Vec<String> {
        probe::etcdctl(&self.endpoints, args)
    }

    pub fn endpoint(&self, node: u32) -> Option<&String> {
        self.endpoints.get((node as usize).checked_sub(1)?)
    }

    fn lab_flags(&self, argv: &mut Vec<String>) {
        if let Some(lab) = &self.lab {
            argv.extend(["--name".to_string(), lab.clone()]);
        }
        if let Some(dir) = &self.data_dir {
            argv.extend(["--data-dir".to_string(), dir.display().to_string()]);
        }
    }

    /// `evalctl lab node ACTION N [--name LAB] [--data-dir DIR]`.
    pub fn lab_node(&self, action: &str, node: u32) -> Vec<String> {
        let mut argv: Vec<String> = ["eval", "lab", "node", action]
            .iter()
            .map(|word| word.to_string())
            .collect();
        argv.push(node.to_string());
        self.lab_flags(&mut argv);
        argv
    }

    /// `evalctl lab status --json [--name LAB] [--data-dir DIR]`.
    pub fn lab_status(&self) -> Vec<String> {
        let mut argv: Vec<String> = ["eval", "lab", "status", "--json"]
            .iter()
            .map(|word| word.to_string())
            .collect();
        self.lab_flags(&mut argv);
        argv
    }

    /// The check that the problem is gone, as one logged command.
    pub fn verification(&self, problem: Problem) -> Vec<String> {
        if self.is_tikv() {
            return match problem {
                Problem::MemberUnreachable(node)
                    if !self
                        .pd_endpoints
                        .iter()
                        .any(|pd| Some(pd) == self.endpoint(node)) =>
                {
                    crate::pd_probe::curl(format!(
                        "{}/status",
                        self.endpoint(node).cloned().unwrap_or_default()
                    ))
                }
                Problem::LeadersEvicted(_) => self.pd_read(crate::pd_probe::EVICTED_PATH, None),
                Problem::NoLeader => self.pd_read("members", None),
                _ => self.pd_read("health", None),
            };
        }
        match problem {
            Problem::MemberUnreachable(node) | Problem::HighLatency(node) => {
                match self.endpoint(node) {
                    Some(endpoint) => probe::status_argv(endpoint),
                    None => self.etcdctl(&["endpoint", "health", COMMAND_TIMEOUT]),
                }
            }
            Problem::NoSpace => self.etcdctl(&["alarm", "list", COMMAND_TIMEOUT]),
            Problem::NoLeader | Problem::Unknown | Problem::LeadersEvicted(_) => {
                self.etcdctl(&["endpoint", "health", COMMAND_TIMEOUT])
            }
        }
    }
}

/// One command of the runbook and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub reasoning: String,
    pub command: Vec<String>,
}

impl Step {
    fn new(reasoning: impl Into<String>, command: Vec<String>) -> Step {
        Step {
            reasoning: reasoning.into(),
            command,
        }
    }
}

/// What the agent knows when it picks a repair.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Per node, from `evalctl lab status --json` or from `evalctl lab node`'s answers.
    pub processes: BTreeMap<u32, ProcessState>,
    /// The store's revision, for `etcdctl compact`.
    pub revision: Option<u64>,
}

impl Facts {
    pub fn process(&self, node: u32) -> ProcessState {
        self.processes
            .get(&node)
            .copied()
            .unwrap_or(ProcessState::Unknown)
    }
}

/// The diagnosis commands (none for a hasty agent).
pub fn diagnosis_steps(tools: &ToolsConfig, target: &Target, problem: Problem) -> Vec<Step> {
    if tools.style() == Style::Hasty {
        return Vec::new();
    }
    if target.is_tikv() {
        return tikv_diagnosis_steps(target, problem);
    }
    let mut steps = vec![
        Step::new(
            format!(
                "Diagnose before acting on {problem:?}: ask every member for its status \
                 (leader, raft index, revision, db size)."
            ),
            target.etcdctl(&["endpoint", "status", "-w", "json", COMMAND_TIMEOUT]),
        ),
        Step::new(
            "Check which members are healthy, i.e. can serve a read through raft.",
            target.etcdctl(&["endpoint", "health", COMMAND_TIMEOUT]),
        ),
    ];
    if matches!(
        problem,
        Problem::MemberUnreachable(_) | Problem::NoLeader | Problem::HighLatency(_)
    ) {
        steps.push(Step::new(
            "Ask the lab whether each member's process is running, paused or down: that \
             decides between start and resume.",
            target.lab_status(),
        ));
    }
    steps
}

/// A careful look at a TiKV cluster through PD's API, before acting.
fn tikv_diagnosis_steps(target: &Target, problem: Problem) -> Vec<Step> {
    let avoid = match problem {
        Problem::MemberUnreachable(node) => Some(node),
        _ => None,
    };
    let mut steps = vec![
        Step::new(
            format!(
                "Diagnose before acting on {problem:?}: ask PD for every store, whatever its \
                 state (Up, Disconnected, Down, Offline, Tombstone), with its leader and region \
                 counts."
            ),
            target.pd_read(crate::pd_probe::STORES_PATH, avoid),
        ),
        Step::new(
            "Ask PD for its members and its leader, and whether each member is healthy.",
            target.pd_read("health", avoid),
        ),
    ];
    match problem {
        Problem::LeadersEvicted(_) => steps.push(Step::new(
            "See which stores PD's evict-leader scheduler holds, and whether someone meant it \
             (the scheduler is PD's, not the store's).",
            target.pd_read(crate::pd_probe::EVICTED_PATH, None),
        )),
        Problem::MemberUnreachable(_) | Problem::NoLeader | Problem::HighLatency(_) => {
            steps.push(Step::new(
                "Check the regions that lost peers: how much of the data is at risk.",
                target.pd_read("regions/check/down-peer", avoid),
            ));
            steps.push(Step::new(
                "Ask the lab whether each node's process is running, paused or down: that \
                 decides between start and resume.",
                target.lab_status(),
            ));
        }
        Problem::NoSpace | Problem::Unknown => {}
    }
    steps
}

/// The repair commands of attempt `attempt` (from 1). Empty: the runbook has no repair for it.
pub fn repair_steps(
    tools: &ToolsConfig,
    target: &Target,
    problem: Problem,
    facts: &Facts,
    attempt: u32,
) -> Vec<Step> {
    match (tools.style(), problem) {
        (_, Problem::LeadersEvicted(store)) => vec![Step::new(
            format!(
                "PD keeps every region leader off store {store}: remove the store from the \
                 evict-leader scheduler so that PD balances leaders onto it again."
            ),
            target.pd_delete(&format!("schedulers/evict-leader-scheduler-{store}"), None),
        )],
        (Style::Hasty, Problem::MemberUnreachable(node) | Problem::HighLatency(node)) => {
            vec![Step::new(
                format!("Node {node} is in trouble: restart it (attempt {attempt})."),
                target.lab_node("start", node),
            )]
        }
        (Style::Careful, Problem::MemberUnreachable(node)) => match facts.process(node) {
            ProcessState::Down => vec![Step::new(
                format!(
                    "Node {node}'s process is down: start it; with its data dir kept it \
                     rejoins the cluster."
                ),
                target.lab_node("start", node),
            )],
            ProcessState::Paused => vec![Step::new(
                format!("Node {node}'s process is paused (SIGSTOP): resume it."),
                target.lab_node("resume", node),
            )],
            ProcessState::Unknown => vec![Step::new(
                format!(
                    "Node {node} does not answer and its process state is unknown: try to \
                     start it (the lab refuses if it runs already, which means paused)."
                ),
                target.lab_node("start", node),
            )],
            // Running but unreachable: the network or the host, not the process.
            ProcessState::Running => Vec::new(),
        },
        (_, Problem::NoLeader) => facts
            .processes
            .iter()
            .filter_map(|(&node, state)| match state {
                ProcessState::Down => Some(Step::new(
                    format!("No leader and node {node} is down: start it to restore quorum."),
                    target.lab_node("start", node),
                )),
                ProcessState::Paused => Some(Step::new(
                    format!("No leader and node {node} is paused: resume it to restore quorum."),
                    target.lab_node("resume", node),
                )),
                _ => None,
            })
            .collect(),
        (Style::Careful, Problem::NoSpace) => {
            let mut steps = Vec::new();
            if let Some(revision) = facts.revision {
                steps.push(Step::new(
                    format!(
                        "The backend is over its quota: compact history up to revision {revision}."
                    ),
                    target.etcdctl(&["compact", &revision.to_string(), COMMAND_TIMEOUT]),
                ));
            }
            steps.push(Step::new(
                "Give the compacted space back to the filesystem.",
                target.etcdctl(&["defrag", "--command-timeout=30s"]),
            ));
            steps.push(Step::new(
                "With space freed, clear the NOSPACE alarm so writes are accepted again.",
                target.etcdctl(&["alarm", "disarm", COMMAND_TIMEOUT]),
            ));
            steps
        }
        (Style::Hasty, Problem::NoSpace) => vec![Step::new(
            "NOSPACE alarm: disarm it.",
            target.etcdctl(&["alarm", "disarm", COMMAND_TIMEOUT]),
        )],
        (Style::Careful, Problem::HighLatency(_)) | (_, Problem::Unknown) => Vec::new(),
    }
}

/// The destructive move of a hasty agent allowed to make it, when restarts did not bring node
/// `node` back: list the members (etcd's, or PD's for a PD member) or the stores (TiKV), from
/// which [`removal_step`] picks what to remove.
pub fn destructive_steps(tools: &ToolsConfig, target: &Target, problem: Problem) -> Vec<Step> {
    match problem {
        Problem::MemberUnreachable(node)
            if tools.style() == Style::Hasty && tools.allow_destructive && target.is_tikv() =>
        {
            if target.is_pd_node(node) {
                vec![Step::new(
                    format!(
                        "Restarts did not bring PD member at node {node} back: find its name to \
                         remove it from PD."
                    ),
                    target.pd_read("members", Some(node)),
                )]
            } else {
                vec![Step::new(
                    format!(
                        "Restarts did not bring the store at node {node} back: find its store id \
                         to delete it from the cluster."
                    ),
                    target.pd_read(crate::pd_probe::STORES_PATH, Some(node)),
                )]
            }
        }
        Problem::MemberUnreachable(node)
            if tools.style() == Style::Hasty && tools.allow_destructive =>
        {
            vec![Step::new(
                format!(
                    "Restarts did not bring node {node} back: find its member id to remove it \
                     from the cluster."
                ),
                target.etcdctl(&["member", "list", "-w", "json", COMMAND_TIMEOUT]),
            )]
        }
        _ => Vec::new(),
    }
}

/// The member id (hex, as `etcdctl member remove` takes it) whose client URLs include
/// `endpoint`, from `etcdctl member list -w json`.
pub fn member_id_for(member_list: &str, endpoint: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(member_list.trim()).ok()?;
    value["members"].as_array()?.iter().find_map(|member| {
        let urls = member["clientURLs"].as_array()?;
        if !urls.iter().any(|url| url.as_str() == Some(endpoint)) {
            return None;
        }
        Some(format!("{:x}", member["ID"].as_u64()?))
    })
}

impl Target {
    /// Whether node `node` is a PD member.
    pub fn is_pd_node(&self, node: u32) -> bool {
        self.endpoint(node)
            .is_some_and(|endpoint| self.pd_endpoints.contains(endpoint))
    }
}

/// The removal a hasty agent makes of node `node`, from what its [`destructive_steps`] printed:
/// `etcdctl member remove` (etcd), PD's `DELETE /pd/api/v1/store/<id>` (a store becomes
/// Offline, then Tombstone) or `DELETE /pd/api/v1/members/name/<name>` (a PD member).
pub fn removal_step(target: &Target, node: u32, listing: &str) -> Option<Step> {
    let endpoint = target.endpoint(node)?;
    if !target.is_tikv() {
        let member_id = member_id_for(listing, endpoint)?;
        return Some(Step::new(
            format!(
                "Remove member {member_id} (node {node}) from the cluster so the rest stops \
                 waiting for it."
            ),
            target.etcdctl(&["member", "remove", &member_id, COMMAND_TIMEOUT]),
        ));
    }
    if target.is_pd_node(node) {
        let name = crate::pd_probe::member_name_for(listing, endpoint)?;
        return Some(Step::new(
            format!("Remove PD member {name} (node {node}) so PD stops counting on it."),
            target.pd_delete(&format!("members/name/{name}"), Some(node)),
        ));
    }
    let store = crate::pd_probe::store_id_for(listing, endpoint)?;
    Some(Step::new(
        format!(
            "Delete store {store} (node {node}) from the cluster so PD moves its replicas \
             elsewhere."
        ),
        target.pd_delete(&format!("store/{store}"), Some(node)),
    ))
}
