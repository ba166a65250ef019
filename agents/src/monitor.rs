//! The monitor: every `monitor_every` it observes the subject (etcd through `etcdctl`, TiKV
//! through PD's API and its stores' status addresses), and opens a ticket per broken invariant
//! (or refreshes the open one). It never resolves: the agent does, after verifying.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::OperatorConfig;
use crate::db::{OperatorDb, TicketReport};
use crate::probe::Violation;
use crate::runner::CommandRunner;

/// How many observations in a row an invariant must fail before a ticket opens: an election
/// after a leader's loss and a single slow cycle are not worth a ticket (the first ticket after a
/// fault is the one a trial is judged by).
pub fn confirmations_needed(invariant: &str) -> u32 {
    match invariant {
        "no_leader" | "pd_no_leader" => 3,
        "high_latency" => 2,
        _ => 1,
    }
}

/// Which violations have been seen long enough to report, given how many cycles in a row each
/// key was seen before this one; `streaks` is updated.
pub fn confirmed(
    streaks: &mut BTreeMap<String, u32>,
    violations: Vec<Violation>,
) -> Vec<Violation> {
    let mut next = BTreeMap::new();
    let mut ready = Vec::new();
    for violation in violations {
        let streak = streaks.get(&violation.key).copied().unwrap_or(0) + 1;
        next.insert(violation.key.clone(), streak);
        if streak >= confirmations_needed(&violation.invariant) {
            ready.push(violation);
        }
    }
    *streaks = next;
    ready
}

pub fn subject_context(config: &OperatorConfig) -> serde_json::Value {
    let mut context = serde_json::json!({"subject": config.subject, "endpoints": config.endpoints});
    if !config.pd_endpoints.is_empty() {
        context["pd_endpoints"] = serde_json::json!(config.pd_endpoints);
    }
    context
}

pub async fn run(
    config: OperatorConfig,
    db: OperatorDb,
    runner: Arc<dyn CommandRunner>,
    shutdown: CancellationToken,
) {
    let target = config.target();
    let mut streaks = BTreeMap::new();
    let mut interval = tokio::time::interval(config.monitor_every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        let violations = tokio::select! {
            _ = shutdown.cancelled() => break,
            violations = crate::look(&runner, &target) => violations,
        };
        for violation in confirmed(&mut streaks, violations) {
            let report = TicketReport {
                violation_key: violation.key.clone(),
                invariant_name: violation.invariant.clone(),
                store_id: violation.store_id.clone(),
                severity: violation.severity.clone(),
                message: violation.message.clone(),
                metric_snapshot: violation.snapshot.clone(),
                subject_context: subject_context(&config),
            };
            match db.report(&report) {
                Ok((id, true)) => {
                    tracing::info!(ticket = id, key = %violation.key, "ticket opened: {}", violation.message)
                }
                Ok((_, false)) => {}
                Err(error) => tracing::warn!(%error, "cannot record a violation"),
            }
        }
    }
}
