//! What the operator sees of etcd, through `etcdctl` (the [`observe`] edge), and which invariants
//! that breaks (the pure [`evaluate`]).
//!
//! Invariants: every member answers `endpoint status` (`member_unreachable:nN`), the members
//! agree on a leader (`no_leader:cluster`), every member answers within [`SLOW_STATUS`] (asked
//! twice: `high_latency:nN`), no `NOSPACE` alarm (`nospace_alarm:nN`). An unreachable member is
//! told apart as `refused` (nothing listens) or `unresponsive` (a TCP connect succeeds but the
//! request times out); in the lab a delay proxy listens in front of every member, so there the
//! process state comes from `evalctl lab status`, not from this.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::runner::CommandRunner;

/// A status answer slower than this, twice in a row, breaks the latency invariant.
pub const SLOW_STATUS: Duration = Duration::from_millis(200);
/// etcdctl's own deadline for one request.
pub const COMMAND_TIMEOUT: &str = "--command-timeout=700ms";

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Status {
        member_id: u64,
        leader: u64,
        revision: u64,
        db_size: u64,
    },
    Unreachable {
        error: String,
        /// `refused`, `unresponsive` or `unknown`.
        reachability: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberProbe {
    pub node: u32,
    pub endpoint: String,
    pub answer: Answer,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    pub members: Vec<MemberProbe>,
    /// `(member_id, alarm)`, e.g. `(…, "NOSPACE")`.
    pub alarms: Vec<(u64, String)>,
}

impl Observation {
    pub fn revision(&self) -> Option<u64> {
        self.members
            .iter()
            .filter_map(|member| match member.answer {
                Answer::Status { revision, .. } => Some(revision),
                Answer::Unreachable { .. } => None,
            })
            .max()
    }
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub key: String,
    pub invariant: String,
    pub store_id: String,
    pub severity: String,
    pub message: String,
    pub snapshot: serde_json::Value,
}

pub fn etcdctl(endpoints: &[String], args: &[&str]) -> Vec<String> {
    let mut argv = vec![
        "etcdctl".to_string(),
        format!("--endpoints={}", endpoints.join(",")),
    ];
    argv.extend(args.iter().map(|arg| arg.to_string()));
    argv
}

pub fn status_argv(endpoint: &str) -> Vec<String> {
    etcdctl(
        &[endpoint.to_string()],
        &["endpoint", "status", "-w", "json", COMMAND_TIMEOUT],
    )
}

/// Parses `etcdctl endpoint status -w json` (one endpoint).
pub fn parse_status(output: &str) -> Option<Answer> {
    let value: serde_json::Value = serde_json::from_str(output.trim()).ok()?;
    let status = value.as_array()?.first()?.get("Status")?;
    let number = |value: &serde_json::Value| value.as_u64().unwrap_or(0);
    Some(Answer::Status {
        member_id: number(&status["header"]["member_id"]),
        leader: number(&status["leader"]),
        revision: number(&status["header"]["revision"]),
        db_size: number(&status["dbSize"]),
    })
}

/// Parses `etcdctl alarm list` lines: `memberID:123 alarm:NOSPACE`.
pub fn parse_alarms(output: &str) -> Vec<(u64, String)> {
    output
        .lines()
        .filter_map(|line| {
            let mut member = None;
            let mut alarm = None;
            for word in line.split_whitespace() {
                if let Some(id) = word.strip_prefix("memberID:") {
                    member = id.parse().ok();
                } else if let Some(name) = word.strip_prefix("alarm:") {
                    alarm = Some(name.to_string());
                }
            }
            Some((member.unwrap_or(0), alarm?))
        })
        .collect()
}

fn host_port(endpoint: &str) -> &str {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

async fn reachability(endpoint: &str) -> String {
    let connect = tokio::net::TcpStream::connect(host_port(endpoint));
    match tokio::time::timeout(Duration::from_millis(300), connect).await {
        Ok(Ok(_)) => "unresponsive".into(),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => "refused".into(),
        _ => "unknown".into(),
    }
}

async fn probe_member(runner: &dyn CommandRunner, node: u32, endpoint: &str) -> MemberProbe {
    let argv = status_argv(endpoint);
    let mut output = runner.run(&argv).await;
    if output.success() && output.elapsed > SLOW_STATUS {
        // One slow answer can be a hiccup of a loaded host (or etcdctl's own start): ask again.
        output = runner.run(&argv).await;
    }
    let answer = match output.success().then(|| parse_status(&output.output)) {
        Some(Some(answer)) => answer,
        _ => Answer::Unreachable {
            error: output
                .output
                .trim()
                .lines()
                .last()
                .unwrap_or("")
                .to_string(),
            reachability: reachability(endpoint).await,
        },
    };
    MemberProbe {
        node,
        endpoint: endpoint.to_string(),
        answer,
        elapsed_ms: output.elapsed.as_millis() as u64,
    }
}

/// Asks every member for its status (concurrently) and the reachable ones for alarms.
pub async fn observe(runner: &Arc<dyn CommandRunner>, endpoints: &[String]) -> Observation {
    let mut probes = tokio::task::JoinSet::new();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let runner = runner.clone();
        let endpoint = endpoint.clone();
        probes
            .spawn(async move { probe_member(runner.as_ref(), index as u32 + 1, &endpoint).await });
    }
    let mut members = Vec::new();
    while let Some(probe) = probes.join_next().await {
        if let Ok(probe) = probe {
            members.push(probe);
        }
    }
    members.sort_by_key(|member| member.node);
    let reachable: Vec<String> = members
        .iter()
        .filter(|member| matches!(member.answer, Answer::Status { .. }))
        .map(|member| member.endpoint.clone())
        .collect();
    let mut alarms = Vec::new();
    if !reachable.is_empty() {
        let output = runner
            .run(&etcdctl(&reachable, &["alarm", "list", COMMAND_TIMEOUT]))
            .await;
        if output.success() {
            alarms = parse_alarms(&output.output);
        }
    }
    Observation { members, alarms }
}

/// The broken invariants of one observation.
pub fn evaluate(observation: &Observation) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut leaders = std::collections::BTreeSet::new();
    for member in &observation.members {
        let store_id = format!("n{}", member.node);
        match &member.answer {
            Answer::Unreachable {
                error,
                reachability,
            } => violations.push(Violation {
                key: format!("member_unreachable:{store_id}"),
                invariant: "member_unreachable".into(),
                store_id: store_id.clone(),
                severity: "critical".into(),
                message: format!(
                    "etcd member {store_id} ({}) does not answer ({reachability}): {error}",
                    member.endpoint
                ),
                snapshot: json!({
                    "node": member.node, "endpoint": member.endpoint, "error": error,
                    "reachability": reachability, "elapsed_ms": member.elapsed_ms,
                }),
            }),
            Answer::Status { leader, .. } => {
                leaders.insert(*leader);
                if member.elapsed_ms > SLOW_STATUS.as_millis() as u64 {
                    violations.push(Violation {
                        key: format!("high_latency:{store_id}"),
                        invariant: "high_latency".into(),
                        store_id: store_id.clone(),
                        severity: "warning".into(),
                        message: format!(
                            "etcd member {store_id} answers status in {} ms (threshold {} ms)",
                            member.elapsed_ms,
                            SLOW_STATUS.as_millis()
                        ),
                        snapshot: json!({
                            "node": member.node, "endpoint": member.endpoint,
                            "elapsed_ms": member.elapsed_ms,
                            "threshold_ms": SLOW_STATUS.as_millis() as u64,
                        }),
                    });
                }
            }
        }
    }
    let answering = observation.members.len()
        - violations
            .iter()
            .filter(|v| v.invariant == "member_unreachable")
            .count();
    let agreed = leaders.len() == 1 && !leaders.contains(&0);
    if !agreed {
        violations.push(Violation {
            key: "no_leader:cluster".into(),
            invariant: "no_leader".into(),
            store_id: "cluster".into(),
            severity: "critical".into(),
            message: format!(
                "no agreed etcd leader: {answering} of {} members answer, naming {:?}",
                observation.members.len(),
                leaders
                    .iter()
                    .map(|id| format!("{id:x}"))
                    .collect::<Vec<_>>()
            ),
            snapshot: json!({
                "answering": answering,
                "members": observation.members.len(),
                "leaders": leaders.iter().map(|id| format!("{id:x}")).collect::<Vec<_>>(),
            }),
        });
    }
    for (member_id, alarm) in &observation.alarms {
        if alarm != "NOSPACE" {
            continue;
        }
        let node = observation.members.iter().find(|member| {
            matches!(member.answer, Answer::Status { member_id: id, .. } if id == *member_id)
        });
        let store_id = node.map_or("cluster".to_string(), |node| format!("n{}", node.node));
        let key = format!("nospace_alarm:{store_id}");
        if violations.iter().any(|v| v.key == key) {
            continue;
        }
        violations.push(Violation {
            key,
            invariant: "nospace_alarm".into(),
            store_id,
            severity: "critical".into(),
            message: format!("etcd raised NOSPACE on member {member_id:x}"),
            snapshot: json!({"member_id": format!("{member_id:x}"), "alarm": alarm}),
        });
    }
    violations
}
