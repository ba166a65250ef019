//! The etcd subject: members from Debian's `etcd-server` (their command lines from the runtime's
//! endpoints), topology (the leader), health (every member answers, one leader, no alarm) and
//! state capture through etcd's own client API (its JSON gateway), on any [`Runtime`].

use std::time::{Duration, Instant};

use schemas::campaign::SubjectKind;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::http::post_json;
use crate::lab::{Isolation, Lab, LabOptions, NodeState};
use crate::runtime::{NodeEndpoints, Runtime};
pub use crate::subject::Health;
use crate::subject::Subject;

/// Per-request deadline of health checks: a paused member must not stall them.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(700);
/// A member answering slower than this, twice in a row, counts as unhealthy (this is how the
/// `latency` fault shows: a delayed node still answers, only late).
pub const SLOW_ANSWER: Duration = Duration::from_millis(80);

/// The `etcd` program; `EVAL_ETCD` names another.
pub fn etcd_program() -> String {
    std::env::var("EVAL_ETCD").unwrap_or_else(|_| "etcd".to_string())
}

/// What one member says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub member_id: String,
    pub leader: String,
    pub raft_term: u64,
    pub raft_index: u64,
    pub db_size: u64,
    pub version: String,
}

/// etcd, reached through its JSON gateway on each node's client endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct EtcdSubject;

impl EtcdSubject {
    pub async fn member_status(&self, node: &NodeEndpoints) -> Result<MemberStatus> {
        let answer = post_json(
            node.client_addr,
            "/v3/maintenance/status",
            &serde_json::json!({}),
            REQUEST_TIMEOUT,
        )
        .await?;
        Ok(MemberStatus {
            member_id: text_field(&answer["header"]["member_id"]),
            leader: text_field(&answer["leader"]),
            raft_term: number_field(&answer["raftTerm"]),
            raft_index: number_field(&answer["raftIndex"]),
            db_size: number_field(&answer["dbSize"]),
            version: text_field(&answer["version"]),
        })
    }

    /// Every member's status and how long it took to answer, by node number, or why it did
    /// not answer.
    pub async fn statuses(
        &self,
        runtime: &impl Runtime,
    ) -> Vec<(u32, Result<(MemberStatus, Duration), String>)> {
        let nodes = runtime.nodes();
        let checks = nodes.iter().map(|node| async move {
            let started = Instant::now();
            let status = self.member_status(node).await.map_err(|e| e.to_string());
            (
                node.number,
                status.map(|status| (status, started.elapsed())),
            )
        });
        futures::future::join_all(checks).await
    }

    /// How long member `number` takes to answer when asked again, if still slower than
    /// [`SLOW_ANSWER`] (a single slow answer can be a scheduling hiccup of a loaded host).
    async fn slow_answer(&self, runtime: &impl Runtime, number: u32) -> Option<Duration> {
        let node = runtime.node_endpoints(number).ok()?;
        let started = Instant::now();
        self.member_status(&node).await.ok()?;
        Some(started.elapsed()).filter(|elapsed| *elapsed > SLOW_ANSWER)
    }

    /// The active alarms (`NOSPACE`, `CORRUPT`), asked of any member that answers.
    pub async fn alarms(&self, runtime: &impl Runtime) -> Result<Vec<String>> {
        let mut last_error = None;
        for node in runtime.nodes() {
            match post_json(
                node.client_addr,
                "/v3/maintenance/alarm",
                &serde_json::json!({"action": "GET"}),
                REQUEST_TIMEOUT,
            )
            .await
            {
                Ok(answer) => {
                    return Ok(answer["alarms"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|alarm| text_field(&alarm["alarm"]))
                        .collect());
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .map(Error::from)
            .unwrap_or_else(|| Error::Lab("no member".into())))
    }

    /// The number of keys, counted by a member that answers.
    pub async fn key_count(&self, runtime: &impl Runtime) -> Option<u64> {
        for node in runtime.nodes() {
            // The whole key space: key "\0" with range_end "\0", base64-encoded.
            let request =
                serde_json::json!({"key": "AA==", "range_end": "AA==", "count_only": true});
            if let Ok(answer) =
                post_json(node.client_addr, "/v3/kv/range", &request, REQUEST_TIMEOUT).await
            {
                return Some(number_field(&answer["count"]));
            }
        }
        None
    }
}

impl Subject for EtcdSubject {
    fn kind(&self) -> SubjectKind {
        SubjectKind::Etcd
    }

    async fn start_member<R: Runtime>(&self, runtime: &mut R, number: u32) -> Result<u32> {
        let argv = member_argv(runtime, &runtime.node_endpoints(number)?);
        runtime.start_process(number, &argv).await
    }

    /// Healthy = every member answers, all name the same leader, which is one of them, and no
    /// alarm is raised.
    async fn health<R: Runtime>(&self, runtime: &R) -> Health {
        let statuses = self.statuses(runtime).await;
        let mut down = Vec::new();
        let mut slow = Vec::new();
        let mut leaders = std::collections::BTreeSet::new();
        let mut ids = std::collections::BTreeMap::new();
        for (number, status) in &statuses {
            match status {
                Ok((status, elapsed)) => {
                    if *elapsed > SLOW_ANSWER
                        && let Some(elapsed) = self.slow_answer(runtime, *number).await
                    {
                        slow.push(format!("n{number} answers in {}ms", elapsed.as_millis()));
                    }
                    leaders.insert(status.leader.clone());
                    ids.insert(status.member_id.clone(), *number);
                }
                Err(error) => down.push(format!("n{number}: {error}")),
            }
        }
        let leader = (leaders.len() == 1)
            .then(|| leaders.iter().next().and_then(|id| ids.get(id).copied()))
            .flatten();
        let unhealthy = |reason: String| Health {
            healthy: false,
            reason: Some(reason),
            leader,
        };
        if !down.is_empty() {
            return unhealthy(format!("not answering: {}", down.join("; ")));
        }
        if leader.is_none() {
            return unhealthy(format!("no agreed leader (members name {leaders:?})"));
        }
        if !slow.is_empty() {
            return unhealthy(format!("slow: {}", slow.join("; ")));
        }
        match self.alarms(runtime).await {
            Ok(alarms) if !alarms.is_empty() => unhealthy(format!("alarms: {}", alarms.join(", "))),
            Ok(_) => Health {
                healthy: true,
                reason: None,
                leader,
            },
            Err(error) => unhealthy(format!("alarm check failed: {error}")),
        }
    }

    /// Per member its process, status and data filesystem use; the leader, the key count,
    /// alarms and health.
    async fn capture_state<R: Runtime>(&self, runtime: &R) -> serde_json::Value {
        let health = self.health(runtime).await;
        let statuses = self.statuses(runtime).await;
        let members: Vec<serde_json::Value> = runtime
            .nodes()
            .iter()
            .zip(&statuses)
            .map(|(node, (_, status))| {
                let disk = runtime.disk_usage(node.number).ok();
                serde_json::json!({
                    "node": node.number,
                    "name": node.name,
                    "endpoint": node.client_url(),
                    "process": runtime.process_status(node.number),
                    "pid": runtime.recorded_pid(node.number),
                    "status": status.as_ref().ok().map(|(status, _)| status),
                    "answer_ms": status.as_ref().ok().map(|(_, elapsed)| elapsed.as_millis() as u64),
                    "error": status.as_ref().err(),
                    "disk_total_bytes": disk.map(|(total, _)| total),
                    "disk_used_bytes": disk.map(|(_, used)| used),
                })
            })
            .collect();
        serde_json::json!({
            "subject": "etcd",
            "lab": runtime.instance(),
            "healthy": health.healthy,
            "reason": health.reason,
            "leader": health.leader,
            "members": members,
            "key_count": self.key_count(runtime).await,
            "alarms": self.alarms(runtime).await.ok(),
        })
    }
}

/// An etcd cluster in a lab: the etcd subject with the lab as its runtime, for callers that
/// work on one lab (`evalctl lab`, tests, the trial benchmark).
#[derive(Debug, Clone)]
pub struct EtcdLab {
    pub lab: Lab,
}

impl EtcdLab {
    /// Creates a lab for etcd (not started; see [`EtcdLab::reset`]).
    pub async fn create(
        data_dir: &std::path::Path,
        name: Option<String>,
        nodes: u32,
        isolation: Isolation,
    ) -> Result<EtcdLab> {
        let lab = Lab::create(LabOptions {
            data_dir: data_dir.to_path_buf(),
            name,
            subject: SubjectKind::Etcd,
            nodes,
            isolation,
            pd_members: 0,
            tikv_binaries: None,
            held: true,
        })
        .await?;
        Ok(EtcdLab { lab })
    }

    pub fn from_lab(lab: Lab) -> Result<EtcdLab> {
        if lab.state.subject != SubjectKind::Etcd {
            return Err(Error::Lab(format!(
                "lab {} runs {}, not etcd",
                lab.state.name, lab.state.subject
            )));
        }
        Ok(EtcdLab { lab })
    }

    /// A fresh cluster: every member stopped, data wiped, all started with a new cluster token.
    pub async fn reset(&mut self) -> Result<()> {
        EtcdSubject.reset(&mut self.lab).await
    }

    /// Starts member `number` (again): with its data dir kept, it rejoins its cluster.
    pub async fn start_member(&mut self, number: u32) -> Result<u32> {
        EtcdSubject.start_member(&mut self.lab, number).await
    }

    /// The client endpoints, as `http://addr:port`.
    pub fn endpoints(&self) -> Vec<String> {
        self.lab.endpoints()
    }

    pub async fn member_status(&self, node: &NodeState) -> Result<MemberStatus> {
        EtcdSubject.member_status(&node.endpoints()).await
    }

    /// Every member's status and how long it took to answer, by node number.
    pub async fn statuses(&self) -> Vec<(u32, Result<(MemberStatus, Duration), String>)> {
        EtcdSubject.statuses(&self.lab).await
    }

    pub async fn health(&self) -> Health {
        EtcdSubject.health(&self.lab).await
    }

    /// Polls the health until healthy; returns how long it took.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<Duration> {
        EtcdSubject.wait_healthy(&self.lab, timeout).await
    }

    pub async fn capture_state(&self) -> serde_json::Value {
        EtcdSubject.capture_state(&self.lab).await
    }
}

/// The command line of member `node`: arguments passed as arguments, all from the lab's own
/// layout.
pub fn member_argv(runtime: &impl Runtime, node: &NodeEndpoints) -> Vec<String> {
    let initial_cluster = runtime
        .nodes()
        .iter()
        .map(|member| format!("{}={}", member.name, member.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        etcd_program(),
        "--name".into(),
        node.name.clone(),
        "--data-dir".into(),
        node.data_dir.join("etcd").display().to_string(),
        "--listen-client-urls".into(),
        format!("http://{}", node.listen_client_addr),
        "--advertise-client-urls".into(),
        node.client_url(),
        "--listen-peer-urls".into(),
        format!("http://{}", node.listen_peer_addr),
        "--initial-advertise-peer-urls".into(),
        node.peer_url(),
        "--initial-cluster".into(),
        initial_cluster,
        "--initial-cluster-token".into(),
        runtime.generation(),
        "--initial-cluster-state".into(),
        "new".into(),
        "--heartbeat-interval".into(),
        "100".into(),
        "--election-timeout".into(),
        "1000".into(),
        // Small enough that a filled data filesystem meets the quota before the disk.
        "--quota-backend-bytes".into(),
        (64 * 1024 * 1024).to_string(),
        "--logger".into(),
        "zap".into(),
        "--log-outputs".into(),
        "stderr".into(),
    ]
}

/// etcd's gateway writes 64-bit numbers as strings.
fn number_field(value: &serde_json::Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
        .unwrap_or(0)
}

fn text_field(value: &serde_json::Value) -> String {
    value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string())
}
