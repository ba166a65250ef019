//! The etcd subject on the lab runtime: members from Debian's `etcd-server`, health (every member
//! answers, one leader, no alarm) and state capture through etcd's own client API (its JSON
//! gateway), and the lab operations faults need (restart a member, find the leader).

use std::time::{Duration, Instant};

use schemas::campaign::SubjectKind;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::http::post_json;
use crate::lab::{Isolation, Lab, LabOptions, NodeState};

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

/// The cluster's health, with the reason when unhealthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub healthy: bool,
    pub reason: Option<String>,
    /// The leader's node number, when the members agree on one.
    pub leader: Option<u32>,
}

/// An etcd cluster in a lab.
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
        self.lab.wipe().await?;
        for number in 1..=self.lab.state.nodes.len() as u32 {
            self.start_member(number).await?;
        }
        Ok(())
    }

    /// Starts member `number` (again): with its data dir kept, it rejoins its cluster.
    pub async fn start_member(&mut self, number: u32) -> Result<u32> {
        let argv = member_argv(&self.lab, self.lab.node(number)?);
        self.lab.start_process(number, &argv).await
    }

    /// The client endpoints, as `http://addr:port`.
    pub fn endpoints(&self) -> Vec<String> {
        self.lab
            .state
            .nodes
            .iter()
            .map(NodeState::client_url)
            .collect()
    }

    pub async fn member_status(&self, node: &NodeState) -> Result<MemberStatus> {
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
    pub async fn statuses(&self) -> Vec<(u32, Result<(MemberStatus, Duration), String>)> {
        let checks = self.lab.state.nodes.iter().map(|node| async move {
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
    async fn slow_answer(&self, number: u32) -> Option<Duration> {
        let node = self.lab.node(number).ok()?;
        let started = Instant::now();
        self.member_status(node).await.ok()?;
        Some(started.elapsed()).filter(|elapsed| *elapsed > SLOW_ANSWER)
    }

    /// The active alarms (`NOSPACE`, `CORRUPT`), asked of any member that answers.
    pub async fn alarms(&self) -> Result<Vec<String>> {
        let mut last_error = None;
        for node in &self.lab.state.nodes {
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

    /// Healthy = every member answers, all name the same leader, which is one of them, and no
    /// alarm is raised.
    pub async fn health(&self) -> Health {
        let statuses = self.statuses().await;
        let mut down = Vec::new();
        let mut slow = Vec::new();
        let mut leaders = std::collections::BTreeSet::new();
        let mut ids = std::collections::BTreeMap::new();
        for (number, status) in &statuses {
            match status {
                Ok((status, elapsed)) => {
                    if *elapsed > SLOW_ANSWER
                        && let Some(elapsed) = self.slow_answer(*number).await
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
        match self.alarms().await {
            Ok(alarms) if !alarms.is_empty() => unhealthy(format!("alarms: {}", alarms.join(", "))),
            Ok(_) => Health {
                healthy: true,
                reason: None,
                leader,
            },
            Err(error) => unhealthy(format!("alarm check failed: {error}")),
        }
    }

    /// Polls [`EtcdLab::health`] until healthy; returns how long it took.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        loop {
            let health = self.health().await;
            if health.healthy {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= timeout {
                return Err(Error::NotHealthy {
                    seconds: timeout.as_secs(),
                    reason: health.reason.unwrap_or_default(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The number of keys, counted by a member that answers.
    pub async fn key_count(&self) -> Option<u64> {
        for node in &self.lab.state.nodes {
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

    /// A snapshot: per member its process, status and data filesystem use; the leader, the key
    /// count, alarms and health.
    pub async fn capture_state(&self) -> serde_json::Value {
        let health = self.health().await;
        let statuses = self.statuses().await;
        let members: Vec<serde_json::Value> = self
            .lab
            .state
            .nodes
            .iter()
            .zip(&statuses)
            .map(|(node, (_, status))| {
                let disk = self.lab.disk_usage(node.number).ok();
                serde_json::json!({
                    "node": node.number,
                    "name": node.name,
                    "endpoint": node.client_url(),
                    "process": node.process_status(),
                    "pid": node.pid,
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
            "lab": self.lab.state.name,
            "healthy": health.healthy,
            "reason": health.reason,
            "leader": health.leader,
            "members": members,
            "key_count": self.key_count().await,
            "alarms": self.alarms().await.ok(),
        })
    }
}

/// The command line of member `node`: arguments passed as arguments, all from the lab's own
/// layout.
pub fn member_argv(lab: &Lab, node: &NodeState) -> Vec<String> {
    let initial_cluster = lab
        .state
        .nodes
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
        format!("http://{}", node.internal_client_addr),
        "--advertise-client-urls".into(),
        node.client_url(),
        "--listen-peer-urls".into(),
        format!("http://{}", node.internal_peer_addr),
        "--initial-advertise-peer-urls".into(),
        node.peer_url(),
        "--initial-cluster".into(),
        initial_cluster,
        "--initial-cluster-token".into(),
        lab.state.cluster_token.clone(),
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
