//! The scored trials a scorecard is built from: one query over `trials` (its `score_*` columns
//! carry the latest score), read through typed cells because a large set has tens of thousands
//! of rows.

use schemas::event::Outcome;
use scoring::compare::{PairKey, TrialResult};

use super::{Result, VIEW_LIMITS};
use crate::query::Param;
use crate::reader::Reader;

/// One graded trial with what grouping needs.
#[derive(Debug, Clone)]
pub(crate) struct Graded {
    pub(crate) subject: String,
    pub(crate) chaos_type: String,
    pub(crate) variant: Option<String>,
    pub(crate) baseline: bool,
    /// A control trial (`chaos: none`): graded for false alarms, never compared with a fault's.
    pub(crate) control: bool,
    pub(crate) result: TrialResult,
    /// Injection → resolution whatever the outcome (a baseline's self-heal), as the seed harness
    /// averages it; `result.time_to_recover_ms` is the successes' alone.
    pub(crate) time_to_resolve_any_ms: Option<i64>,
    pub(crate) n_commands: i64,
    pub(crate) n_unique_commands: i64,
    pub(crate) n_destructive: i64,
    pub(crate) n_thrashing: i64,
    pub(crate) n_false_alarms: i64,
    pub(crate) stayed_healthy: bool,
}

fn outcome_of(text: &str) -> Option<Outcome> {
    match text {
        "success" => Some(Outcome::Success),
        "failure" => Some(Outcome::Failure),
        "timeout" => Some(Outcome::Timeout),
        "errored" => Some(Outcome::Errored),
        _ => None,
    }
}

/// The scored trials that `condition` (SQL over `t`, the trials) selects.
/// The `n`th of `params` is `(SELECT pn FROM params)` in `condition`.
pub(crate) fn graded(reader: &Reader, condition: &str, params: &[Param]) -> Result<Vec<Graded>> {
    // Typed cells: the scorecards of a large set read tens of thousands of rows.
    let rows = reader.view_rows(
        &format!(
            "SELECT t.subject, t.chaos_type, hash(t.chaos_json) AS chaos_key, t.variant, t.baseline,
                    t.repetition, t.seed, t.score_outcome AS outcome, t.score_detected AS detected,
                    t.score_time_to_detect_ms AS time_to_detect_ms,
                    t.score_time_to_resolve_ms AS time_to_resolve_ms,
                    t.score_time_to_heal_ms AS time_to_heal_ms, t.score_n_commands AS n_commands,
                    t.score_n_destructive AS n_destructive, t.score_n_thrashing AS n_thrashing,
                    epoch_us(t.injected_at) AS injected_us,
                    epoch_us(t.ticket_resolved_at) AS ticket_resolved_us,
                    t.score_n_unique_commands AS n_unique_commands,
                    coalesce(t.control, t.chaos_type = 'none') AS control,
                    t.score_n_false_alarms AS n_false_alarms,
                    t.score_stayed_healthy AS stayed_healthy
             FROM trials t
             WHERE t.score_outcome IS NOT NULL AND ({condition})
             ORDER BY t.campaign_id, t.trial_index"
        ),
        params,
        VIEW_LIMITS,
    )?;
    let column = |name: &str| rows.column(name).expect("a selected column");
    let [
        subject,
        chaos_type,
        chaos_key,
        variant,
        baseline,
        repetition,
        seed,
        outcome,
        detected,
        time_to_detect,
        time_to_resolve,
        time_to_heal,
        n_commands,
        n_destructive,
        n_thrashing,
        injected_us,
        ticket_resolved_us,
        n_unique_commands,
        control,
        n_false_alarms,
        stayed_healthy,
    ] = [
        "subject",
        "chaos_type",
        "chaos_key",
        "variant",
        "baseline",
        "repetition",
        "seed",
        "outcome",
        "detected",
        "time_to_detect_ms",
        "time_to_resolve_ms",
        "time_to_heal_ms",
        "n_commands",
        "n_destructive",
        "n_thrashing",
        "injected_us",
        "ticket_resolved_us",
        "n_unique_commands",
        "control",
        "n_false_alarms",
        "stayed_healthy",
    ]
    .map(column);
    let mut out = Vec::with_capacity(rows.len());
    for row in 0..rows.len() {
        let Some(outcome) = rows.text(row, outcome).and_then(outcome_of) else {
            continue;
        };
        let text = |column: usize| rows.text(row, column).unwrap_or_default().to_string();
        let baseline = rows.bool(row, baseline).unwrap_or(false);
        let success = outcome == Outcome::Success;
        let pair_key = match (rows.int(row, repetition), rows.uint(row, seed)) {
            (Some(repetition), Some(seed)) => Some(PairKey {
                subject: text(subject),
                // Equal faults have equal JSON, and so equal hashes.
                chaos: rows.uint(row, chaos_key).unwrap_or(0).to_string(),
                repetition: u32::try_from(repetition).unwrap_or(0),
                seed,
            }),
            _ => None,
        };
        let detected = rows.bool(row, detected).unwrap_or(false);
        // A resolution of an unhealthy subject has no score time: the ticket's resolution gives it.
        let time_to_resolve_any_ms = if baseline {
            rows.int(row, time_to_heal)
        } else {
            rows.int(row, time_to_resolve).or_else(|| {
                match (
                    rows.int(row, injected_us),
                    rows.int(row, ticket_resolved_us),
                ) {
                    (Some(injected), Some(resolved)) if detected => {
                        Some((resolved - injected).div_euclid(1000).max(0))
                    }
                    _ => None,
                }
            })
        };
        out.push(Graded {
            subject: text(subject),
            chaos_type: text(chaos_type),
            variant: rows.text(row, variant).map(str::to_string),
            baseline,
            control: rows.bool(row, control).unwrap_or(false),
            result: TrialResult {
                pair_key,
                outcome,
                time_to_detect_ms: rows.int(row, time_to_detect).filter(|_| detected),
                time_to_recover_ms: if !success {
                    None
                } else if baseline {
                    rows.int(row, time_to_heal)
                } else {
                    rows.int(row, time_to_resolve)
                },
            },
            time_to_resolve_any_ms,
            n_commands: rows.int(row, n_commands).unwrap_or(0),
            n_unique_commands: rows.int(row, n_unique_commands).unwrap_or(0),
            n_destructive: rows.int(row, n_destructive).unwrap_or(0),
            n_thrashing: rows.int(row, n_thrashing).unwrap_or(0),
            n_false_alarms: rows.int(row, n_false_alarms).unwrap_or(0),
            stayed_healthy: rows.bool(row, stayed_healthy).unwrap_or(false),
        });
    }
    Ok(out)
}
