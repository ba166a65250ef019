//! The seed harness's read commands, by their names, over the DuckDB tables: `list`, `show`,
//! `analyze`, `compare`, `compare-baseline`, `compare-variants`, `list-variants`. Each builds a
//! JSON value (what `--json` prints) and a text rendering of it. Every figure carries its n.
//!
//! Beside the medians and intervals, each scorecard carries the seed harness's own figures, so an
//! imported `eval.db` reads as it did there: outcome counts, the mean time to detect (over the
//! detected trials), the mean time to resolve over every trial with a resolution whatever its
//! outcome (a baseline's self-heal; the seed harness's `avg_time_to_resolve_sec`, whereas the
//! median time to recover counts successes alone), and total, unique and destructive commands.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemas::event::Outcome;
use scoring::compare::{
    CompareOptions, Comparison, GroupSummary, PairKey, Side, TrialResult, Verdict, compare,
};
use scoring::power::SampleSize;
use scoring::stats::Interval;
use serde_json::{Value, json};

use crate::query::{Limits, Param, QueryError, QueryResult, display};
use crate::reader::Reader;

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

type Result<T, E = ViewError> = std::result::Result<T, E>;

/// A view's answer: what `--json` prints, and the text for a person.
#[derive(Debug, Clone)]
pub struct View {
    pub json: Value,
    pub text: String,
}

/// Bounds of the views' own queries.
const VIEW_LIMITS: Limits = Limits {
    max_rows: 1_000_000,
    timeout_ms: 60_000,
};

/// Runs one of the views' own queries; the `n`th of `params` is `(SELECT pn FROM params)` in it.
pub(crate) fn query(reader: &Reader, sql: &str, params: &[Param]) -> Result<QueryResult> {
    Ok(reader.query(sql, params, VIEW_LIMITS)?)
}

/// Rows as JSON objects keyed by column name.
pub(crate) fn objects(result: &QueryResult) -> Vec<serde_json::Map<String, Value>> {
    result
        .rows
        .iter()
        .map(|row| {
            result
                .columns
                .iter()
                .cloned()
                .zip(row.iter().cloned())
                .collect()
        })
        .collect()
}

fn text_of(row: &serde_json::Map<String, Value>, key: &str) -> String {
    row.get(key).map(display).unwrap_or_default()
}

fn int_of(row: &serde_json::Map<String, Value>, key: &str) -> Option<i64> {
    row.get(key).and_then(Value::as_i64)
}

/// Resolves an id prefix among the values of `column` in `table`.
pub fn resolve(
    reader: &Reader,
    table: &str,
    column: &str,
    prefix: &str,
    what: &str,
) -> Result<String> {
    if prefix.is_empty() {
        return Err(ViewError::Invalid(format!("an empty {what} id")));
    }
    let pattern = format!("{}%", prefix.replace('%', "").replace('_', "\\_"));
    let result = query(
        reader,
        &format!(
            "SELECT DISTINCT {column} FROM {table}
             WHERE {column} LIKE (SELECT p1 FROM params) ESCAPE '\\' ORDER BY 1 LIMIT 6"
        ),
        &[Param::Text(pattern)],
    )?;
    let ids: Vec<String> = result.rows.iter().map(|row| display(&row[0])).collect();
    match ids.as_slice() {
        [] => Err(ViewError::NotFound(format!(
            "no {what} matches {prefix:?}; `{program} list` shows the campaigns",
            program = schemas::program::name()
        ))),
        [one] => Ok(one.clone()),
        many => Err(ViewError::Invalid(format!(
            "{prefix:?} matches several {what}s ({}{}); give more characters",
            many.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if many.len() > 5 { ", …" } else { "" }
        ))),
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_string(), |rate| format!("{:.0}%", rate * 100.0))
}

fn interval_percent(interval: Option<Interval>) -> String {
    interval.map_or_else(String::new, |i| {
        format!(" [{:.0}–{:.0}%]", i.low * 100.0, i.high * 100.0)
    })
}

fn seconds(ms: Option<f64>) -> String {
    ms.map_or_else(|| "–".to_string(), |ms| format!("{:.1}s", ms / 1000.0))
}

fn interval_seconds(interval: Option<Interval>) -> String {
    interval.map_or_else(String::new, |i| {
        format!(" [{:.1}–{:.1}s]", i.low / 1000.0, i.high / 1000.0)
    })
}

fn interval_json(interval: Option<Interval>) -> Value {
    interval.map_or(Value::Null, |i| json!([i.low, i.high]))
}

// ---------------------------------------------------------------------------------------------
// list

/// `evalctl list`: campaigns, newest first; with `filter`, only those whose id, name, status or file
/// name contains it (case-insensitive).
pub fn list(reader: &Reader, filter: Option<&str>, limit: usize, offset: usize) -> Result<View> {
    let pattern = filter
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(|text| {
            format!(
                "%{}%",
                text.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
    let condition = if pattern.is_some() {
        "WHERE c.campaign_id ILIKE (SELECT p1 FROM params) ESCAPE '\\'
            OR c.name ILIKE (SELECT p1 FROM params) ESCAPE '\\'
            OR c.status ILIKE (SELECT p1 FROM params) ESCAPE '\\'
            OR c.file_name ILIKE (SELECT p1 FROM params) ESCAPE '\\'"
    } else {
        ""
    };
    let params: Vec<Param> = pattern.into_iter().map(Param::Text).collect();
    let result = query(
        reader,
        &format!(
            "SELECT c.campaign_id, c.name, c.status, strftime(c.published_at, '%Y-%m-%d %H:%M:%S') AS published_at,
                    c.n_trials, c.n_started, c.n_finished,
                    coalesce(s.n_graded, 0) AS n_graded, coalesce(s.n_success, 0) AS n_success,
                    coalesce(s.n_errored, 0) AS n_errored
             FROM campaigns c
             LEFT JOIN (
                 SELECT campaign_id,
                        count(*) FILTER (WHERE outcome <> 'errored') AS n_graded,
                        count(*) FILTER (WHERE outcome = 'success') AS n_success,
                        count(*) FILTER (WHERE outcome = 'errored') AS n_errored
                 FROM latest_scores WHERE NOT baseline AND NOT coalesce(control, false)
                 GROUP BY campaign_id
             ) s ON s.campaign_id = c.campaign_id
             {condition}
             ORDER BY c.published_at DESC NULLS LAST, c.campaign_id
             LIMIT {limit} OFFSET {offset}"
        ),
        &params,
    )?;
    let rows = objects(&result);
    let mut text = String::new();
    if rows.is_empty() && filter.is_some_and(|text| !text.trim().is_empty()) {
        text.push_str("no campaign matches the filter\n");
    } else if rows.is_empty() {
        text.push_str(&format!(
            "no campaigns yet (`{program} publish FILE` adds one; `{program} project` fills the database)\n",
            program = schemas::program::name()
        ));
    } else {
        let _ = writeln!(
            text,
            "{:<12} {:<24} {:<9} {:<19} {:>13} {:>16}",
            "CAMPAIGN", "NAME", "STATUS", "PUBLISHED (UTC)", "FINISHED/ALL", "SUCCESS (n)"
        );
    }
    let mut campaigns = Vec::new();
    for row in &rows {
        let n_graded = int_of(row, "n_graded").unwrap_or(0);
        let n_success = int_of(row, "n_success").unwrap_or(0);
        let rate = (n_graded > 0).then(|| n_success as f64 / n_graded as f64);
        let id = text_of(row, "campaign_id");
        let _ = writeln!(
            text,
            "{:<12} {:<24} {:<9} {:<19} {:>13} {:>16}",
            id.chars().take(12).collect::<String>(),
            text_of(row, "name").chars().take(24).collect::<String>(),
            text_of(row, "status"),
            text_of(row, "published_at"),
            format!(
                "{}/{}",
                int_of(row, "n_finished").unwrap_or(0),
                int_of(row, "n_trials").unwrap_or(0)
            ),
            format!("{} (n={n_graded})", percent(rate)),
        );
        let mut object = row.clone();
        object.insert("success_rate".to_string(), json!(rate));
        campaigns.push(Value::Object(object));
    }
    Ok(View {
        json: json!({"campaigns": campaigns, "filter": filter, "limit": limit, "offset": offset}),
        text,
    })
}

// ---------------------------------------------------------------------------------------------
// trial results for the statistics

/// One graded trial with what grouping needs.
#[derive(Debug, Clone)]
struct Graded {
    subject: String,
    chaos_type: String,
    variant: Option<String>,
    baseline: bool,
    /// A control trial (`chaos: none`): graded for false alarms, never compared with a fault's.
    control: bool,
    result: TrialResult,
    /// Injection → resolution whatever the outcome (a baseline's self-heal), as the seed harness
    /// averages it; `result.time_to_recover_ms` is the successes' alone.
    time_to_resolve_any_ms: Option<i64>,
    n_commands: i64,
    n_unique_commands: i64,
    n_destructive: i64,
    n_thrashing: i64,
    n_false_alarms: i64,
    stayed_healthy: bool,
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
fn graded(reader: &Reader, condition: &str, params: &[Param]) -> Result<Vec<Graded>> {
    // Typed cells: the scorecards of a large set read tens of thousands of rows.
    let rows = reader.rows(
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

/// A group's figures: the statistics' summary plus command figures.
fn group_json(label: &str, trials: &[&Graded], options: &CompareOptions) -> (Value, GroupSummary) {
    let results: Vec<TrialResult> = trials.iter().map(|t| t.result.clone()).collect();
    let summary = GroupSummary::of(&results, options);
    let graded: Vec<&&Graded> = trials
        .iter()
        .filter(|t| t.result.outcome != Outcome::Errored)
        .collect();
    let n = graded.len();
    let share = |count: usize| (n > 0).then(|| count as f64 / n as f64);
    let with_destructive = graded.iter().filter(|t| t.n_destructive > 0).count();
    let with_thrashing = graded.iter().filter(|t| t.n_thrashing > 0).count();
    let commands: i64 = graded.iter().map(|t| t.n_commands).sum();
    let count = |outcome: Outcome| {
        graded
            .iter()
            .filter(|t| t.result.outcome == outcome)
            .count()
    };
    let mean = |values: Vec<i64>| {
        (!values.is_empty()).then(|| values.iter().sum::<i64>() as f64 / values.len() as f64)
    };
    let resolve_times: Vec<i64> = graded
        .iter()
        .filter_map(|t| t.time_to_resolve_any_ms)
        .collect();
    let value = json!({
        "group": label,
        "n_trials": summary.n_trials,
        "n_errored": summary.n_errored,
        "n_graded": summary.n_graded,
        "n_success": summary.n_success,
        "n_failure": count(Outcome::Failure),
        "n_timeout": count(Outcome::Timeout),
        "success_rate": summary.success_rate,
        "success_interval": interval_json(summary.success_interval),
        "n_detected": summary.n_detected,
        "median_time_to_detect_ms": summary.median_time_to_detect_ms,
        "time_to_detect_interval_ms": interval_json(summary.time_to_detect_interval),
        "mean_time_to_detect_ms": mean(graded.iter().filter_map(|t| t.result.time_to_detect_ms).collect()),
        "n_recovered": graded.iter().filter(|t| t.result.time_to_recover_ms.is_some()).count(),
        "median_time_to_recover_ms": summary.median_time_to_recover_ms,
        "time_to_recover_interval_ms": interval_json(summary.time_to_recover_interval),
        // Over every trial with a resolution (a baseline's self-heal), whatever its outcome.
        "n_time_to_resolve": resolve_times.len(),
        "mean_time_to_resolve_ms": mean(resolve_times),
        "n_commands": commands,
        "n_unique_commands": graded.iter().map(|t| t.n_unique_commands).sum::<i64>(),
        "n_destructive_commands": graded.iter().map(|t| t.n_destructive).sum::<i64>(),
        "mean_commands": (n > 0).then(|| commands as f64 / n as f64),
        "n_with_destructive": with_destructive,
        "destructive_rate": share(with_destructive),
        "n_with_thrashing": with_thrashing,
        "thrashing_rate": share(with_thrashing),
    });
    (value, summary)
}

/// A control group's figures: the summary (success = no false alarm, nothing destructive,
/// healthy throughout) plus the false alarms.
fn control_group_json(
    label: &str,
    trials: &[&Graded],
    options: &CompareOptions,
) -> (Value, GroupSummary) {
    let (mut value, summary) = group_json(label, trials, options);
    let graded: Vec<&&Graded> = trials
        .iter()
        .filter(|t| t.result.outcome != Outcome::Errored)
        .collect();
    let n = graded.len();
    let with_false_alarm = graded.iter().filter(|t| t.n_false_alarms > 0).count();
    value["control"] = json!(true);
    value["n_with_false_alarm"] = json!(with_false_alarm);
    value["false_alarm_rate"] = json!((n > 0).then(|| with_false_alarm as f64 / n as f64));
    value["n_false_alarms"] = json!(graded.iter().map(|t| t.n_false_alarms).sum::<i64>());
    value["n_stayed_healthy"] = json!(graded.iter().filter(|t| t.stayed_healthy).count());
    (value, summary)
}

fn control_scorecard_header() -> String {
    format!(
        "  {:<22} {:>4} {:>20} {:>14} {:>8} {:>6} {:>12} {:>15}\n",
        "",
        "n",
        "success [95% CI]",
        "false alarm",
        "tickets",
        "cmds",
        "destructive",
        "stayed healthy"
    )
}

fn control_scorecard_line(group: &Value, summary: &GroupSummary) -> String {
    let count = |key: &str| group[key].as_u64().unwrap_or(0);
    let n = summary.n_graded;
    format!(
        "  {:<22} {:>4} {:>20} {:>14} {:>8} {:>6} {:>12} {:>15}\n",
        group["group"].as_str().unwrap_or(""),
        summary.n_trials,
        format!(
            "{}{}",
            percent(summary.success_rate),
            interval_percent(summary.success_interval)
        ),
        format!("{}/{n}", count("n_with_false_alarm")),
        count("n_false_alarms"),
        group["mean_commands"]
            .as_f64()
            .map_or_else(|| "–".to_string(), |x| format!("{x:.1}")),
        format!("{}/{n}", count("n_with_destructive")),
        format!("{}/{n}", count("n_stayed_healthy")),
    )
}

fn scorecard_header() -> String {
    format!(
        "  {:<22} {:>4} {:>20} {:>24} {:>24} {:>16} {:>6} {:>12} {:>12}\n",
        "",
        "n",
        "success [95% CI]",
        "median TTD [95% CI] (n)",
        "median TTR [95% CI] (n)",
        "mean TTD / TTR",
        "cmds",
        "destructive",
        "thrashing"
    )
}

fn scorecard_line(group: &Value, summary: &GroupSummary) -> String {
    let count = |key: &str| group[key].as_u64().unwrap_or(0);
    let n = summary.n_graded;
    format!(
        "  {:<22} {:>4} {:>20} {:>24} {:>24} {:>16} {:>6} {:>12} {:>12}\n",
        group["group"].as_str().unwrap_or(""),
        summary.n_trials,
        format!(
            "{}{}",
            percent(summary.success_rate),
            interval_percent(summary.success_interval)
        ),
        format!(
            "{}{} ({})",
            seconds(summary.median_time_to_detect_ms),
            interval_seconds(summary.time_to_detect_interval),
            summary.n_detected
        ),
        format!(
            "{}{} ({})",
            seconds(summary.median_time_to_recover_ms),
            interval_seconds(summary.time_to_recover_interval),
            count("n_recovered")
        ),
        format!(
            "{} / {}",
            seconds(group["mean_time_to_detect_ms"].as_f64()),
            seconds(group["mean_time_to_resolve_ms"].as_f64())
        ),
        group["mean_commands"]
            .as_f64()
            .map_or_else(|| "–".to_string(), |x| format!("{x:.1}")),
        format!("{}/{n}", count("n_with_destructive")),
        format!("{}/{n}", count("n_with_thrashing")),
    )
}

fn verdict_json(verdict: &Verdict, a: &str, b: &str) -> Value {
    json!({
        "metric": verdict.metric,
        "test": verdict.test,
        "paired": verdict.paired,
        "n_a": verdict.n_a,
        "n_b": verdict.n_b,
        "statistic": verdict.statistic,
        "p_value": verdict.p_value,
        "alpha": verdict.alpha,
        "winner": verdict.winner.map(|side| match side { Side::A => a, Side::B => b }),
        "needed_per_side": match verdict.needed {
            Some(SampleSize::About(n)) => Some(n),
            _ => None,
        },
        "needed_more_than": match verdict.needed {
            Some(SampleSize::MoreThan(n)) => Some(n),
            _ => None,
        },
        "text": named_verdict(verdict, a, b),
    })
}

/// The verdict's sentence with the sides' names instead of A and B.
fn named_verdict(verdict: &Verdict, a: &str, b: &str) -> String {
    let text = verdict.to_string();
    match verdict.winner {
        Some(Side::A) => text.replacen(": A is better", &format!(": {a} is better"), 1),
        Some(Side::B) => text.replacen(": B is better", &format!(": {b} is better"), 1),
        None => text,
    }
}

fn comparison_json(comparison: &Comparison, a: &str, b: &str) -> Value {
    json!({
        "a": a,
        "b": b,
        "paired": comparison.paired,
        "verdicts": [
            verdict_json(&comparison.success, a, b),
            verdict_json(&comparison.time_to_detect, a, b),
            verdict_json(&comparison.time_to_recover, a, b),
        ],
    })
}

/// The verdicts in words; for control trials only the success rate's (no fault to detect or
/// recover from).
fn comparison_text(comparison: &Comparison, a: &str, b: &str, control: bool) -> String {
    let mut text = format!(
        "  verdict ({}, α = {}):\n",
        if comparison.paired {
            "paired tests: the trials ran on the same seeds"
        } else {
            "independent samples"
        },
        comparison.success.alpha
    );
    let verdicts = [
        &comparison.success,
        &comparison.time_to_detect,
        &comparison.time_to_recover,
    ];
    let shown = if control {
        &verdicts[..1]
    } else {
        &verdicts[..]
    };
    for verdict in shown {
        let _ = writeln!(text, "    {}", named_verdict(verdict, a, b));
    }
    text
}

/// Two groups side by side with their comparison.
fn two_groups(
    a_label: &str,
    a: &[&Graded],
    b_label: &str,
    b: &[&Graded],
    options: &CompareOptions,
) -> (Value, String) {
    let (a_json, a_summary) = group_json(a_label, a, options);
    let (b_json, b_summary) = group_json(b_label, b, options);
    let a_results: Vec<TrialResult> = a.iter().map(|t| t.result.clone()).collect();
    let b_results: Vec<TrialResult> = b.iter().map(|t| t.result.clone()).collect();
    let comparison = compare(&a_results, &b_results, options);
    let mut text = scorecard_header();
    text.push_str(&scorecard_line(&a_json, &a_summary));
    text.push_str(&scorecard_line(&b_json, &b_summary));
    text.push_str(&comparison_text(&comparison, a_label, b_label, false));
    let json = json!({
        "groups": [a_json, b_json],
        "comparison": comparison_json(&comparison, a_label, b_label),
    });
    (json, text)
}

// ---------------------------------------------------------------------------------------------
// analyze

/// `evalctl analyze CAMPAIGN`: per subject × chaos × variant (and baseline), the scorecard; with
/// `include_commands`, the commands run, by category.
pub fn analyze(reader: &Reader, campaign: &str, include_commands: bool) -> Result<View> {
    let campaign_id = resolve(reader, "campaigns", "campaign_id", campaign, "campaign")?;
    let options = CompareOptions::default();
    let trials = graded(
        reader,
        "t.campaign_id = (SELECT p1 FROM params)",
        &[Param::from(&campaign_id)],
    )?;
    let mut groups: BTreeMap<(String, String), BTreeMap<String, Vec<&Graded>>> = BTreeMap::new();
    for trial in &trials {
        let label = if trial.baseline {
            "(baseline)".to_string()
        } else {
            trial
                .variant
                .clone()
                .unwrap_or_else(|| "(none)".to_string())
        };
        groups
            .entry((trial.subject.clone(), trial.chaos_type.clone()))
            .or_default()
            .entry(label)
            .or_default()
            .push(trial);
    }
    let name = query(
        reader,
        "SELECT name, status, n_trials, n_finished FROM campaigns
         WHERE campaign_id = (SELECT p1 FROM params)",
        &[Param::from(&campaign_id)],
    )?;
    let header = objects(&name).into_iter().next().unwrap_or_default();
    let mut text = format!(
        "campaign {campaign_id} ({}): {}, {}/{} trials finished, {} scored\n",
        text_of(&header, "name"),
        text_of(&header, "status"),
        int_of(&header, "n_finished").unwrap_or(0),
        int_of(&header, "n_trials").unwrap_or(0),
        trials.len()
    );
    let mut json_groups = Vec::new();
    for ((subject, chaos), variants) in &groups {
        // Control trials (chaos none) are their own rows, graded for false alarms.
        let control = variants.values().flatten().all(|trial| trial.control);
        if control {
            let _ = writeln!(text, "\n{subject} × {chaos} (control: nothing broken)");
            text.push_str(&control_scorecard_header());
        } else {
            let _ = writeln!(text, "\n{subject} × {chaos}");
            text.push_str(&scorecard_header());
        }
        for (label, members) in variants {
            let mut value = if control {
                let (value, summary) = control_group_json(label, members, &options);
                text.push_str(&control_scorecard_line(&value, &summary));
                value
            } else {
                let (value, summary) = group_json(label, members, &options);
                text.push_str(&scorecard_line(&value, &summary));
                value
            };
            value["subject"] = json!(subject);
            value["chaos_type"] = json!(chaos);
            json_groups.push(value);
        }
    }
    if trials.is_empty() {
        text.push_str("no scored trials yet\n");
    }
    let mut json = json!({
        "campaign_id": campaign_id,
        "name": text_of(&header, "name"),
        "status": text_of(&header, "status"),
        "n_scored": trials.len(),
        "groups": json_groups,
    });
    if include_commands {
        let result = query(
            reader,
            "SELECT c.category, c.command, c.rule, count(*) AS n_calls, count(DISTINCT c.trial_id) AS n_trials
             FROM commands c WHERE c.campaign_id = (SELECT p1 FROM params)
             GROUP BY ALL ORDER BY n_calls DESC, c.command LIMIT 50",
            &[Param::from(&campaign_id)],
        )?;
        let rows = objects(&result);
        text.push_str("\ncommands (most run first; categories by the built-in rules)\n");
        let _ = writeln!(
            text,
            "  {:>7} {:>7}  {:<12} {:<24} COMMAND",
            "CALLS", "TRIALS", "CATEGORY", "RULE"
        );
        for row in &rows {
            let _ = writeln!(
                text,
                "  {:>7} {:>7}  {:<12} {:<24} {}",
                int_of(row, "n_calls").unwrap_or(0),
                int_of(row, "n_trials").unwrap_or(0),
                text_of(row, "category"),
                text_of(row, "rule"),
                text_of(row, "command")
            );
        }
        json["commands"] = Value::Array(rows.into_iter().map(Value::Object).collect());
    }
    Ok(View { json, text })
}

// ---------------------------------------------------------------------------------------------
// compare, compare-baseline, compare-variants, list-variants

/// `evalctl compare A B`: the operator trials of two campaigns.
pub fn compare_campaigns(reader: &Reader, a: &str, b: &str) -> Result<View> {
    let a_id = resolve(reader, "campaigns", "campaign_id", a, "campaign")?;
    let b_id = resolve(reader, "campaigns", "campaign_id", b, "campaign")?;
    let options = CompareOptions::default();
    let select = |id: &str| {
        graded(
            reader,
            // Control trials are graded for false alarms: not comparable with fault trials.
            "t.campaign_id = (SELECT p1 FROM params) AND NOT t.baseline
                AND NOT coalesce(t.control, false)",
            &[Param::from(id)],
        )
    };
    let (a_trials, b_trials) = (select(&a_id)?, select(&b_id)?);
    let a_refs: Vec<&Graded> = a_trials.iter().collect();
    let b_refs: Vec<&Graded> = b_trials.iter().collect();
    let a_label = format!("A {}", short(&a_id));
    let b_label = format!("B {}", short(&b_id));
    let (json, body) = two_groups(&a_label, &a_refs, &b_label, &b_refs, &options);
    let text = format!("operator trials of campaign A ({a_id}) vs campaign B ({b_id})\n{body}");
    Ok(View { json, text })
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// `evalctl compare-baseline CAMPAIGN`: per subject × chaos, the operator's trials against baseline
/// trials (the campaign's own, those of `baseline_id`, or any campaign's with the same subject
/// and chaos type).
pub fn compare_baseline(
    reader: &Reader,
    campaign: &str,
    baseline_id: Option<&str>,
) -> Result<View> {
    let campaign_id = resolve(reader, "campaigns", "campaign_id", campaign, "campaign")?;
    let baseline_id = baseline_id
        .map(|id| resolve(reader, "campaigns", "campaign_id", id, "campaign"))
        .transpose()?;
    let options = CompareOptions::default();
    // The campaign's trials once: its operator trials, and its own baselines when it has them.
    let own_trials = graded(
        reader,
        "t.campaign_id = (SELECT p1 FROM params)",
        &[Param::from(&campaign_id)],
    )?;
    let mut groups: BTreeMap<(String, String), Vec<&Graded>> = BTreeMap::new();
    // Control trials have no baseline: nothing was broken, and no operator means nothing to test.
    for trial in own_trials
        .iter()
        .filter(|trial| !trial.baseline && !trial.control)
    {
        groups
            .entry((trial.subject.clone(), trial.chaos_type.clone()))
            .or_default()
            .push(trial);
    }
    if groups.is_empty() {
        return Err(ViewError::NotFound(format!(
            "campaign {campaign_id} has no scored operator trials of a fault yet (control trials have no baseline; `{program} analyze` shows their false alarms)",
            program = schemas::program::name()
        )));
    }
    let mut text = format!("campaign {campaign_id}: the operator against doing nothing\n");
    let mut json_groups = Vec::new();
    for ((subject, chaos), trials) in &groups {
        let base_condition = "t.baseline AND t.subject = (SELECT p1 FROM params)
            AND t.chaos_type = (SELECT p2 FROM params)";
        let base_params = [Param::from(subject), Param::from(chaos)];
        let (baselines, source) = match &baseline_id {
            Some(id) => (
                graded(
                    reader,
                    &format!("{base_condition} AND t.campaign_id = (SELECT p3 FROM params)"),
                    &[Param::from(subject), Param::from(chaos), Param::from(id)],
                )?,
                format!("campaign {id}"),
            ),
            None => {
                let own: Vec<Graded> = own_trials
                    .iter()
                    .filter(|trial| {
                        trial.baseline && trial.subject == *subject && trial.chaos_type == *chaos
                    })
                    .cloned()
                    .collect();
                if own.is_empty() {
                    (
                        graded(reader, base_condition, &base_params)?,
                        "every campaign".to_string(),
                    )
                } else {
                    (own, "this campaign".to_string())
                }
            }
        };
        let _ = writeln!(
            text,
            "\n{subject} × {chaos} (baseline trials from {source})"
        );
        if baselines.is_empty() {
            text.push_str("  no baseline trials for this subject and chaos type: run a campaign with include_baseline: true\n");
            json_groups.push(json!({"subject": subject, "chaos_type": chaos, "baseline_source": source, "error": "no baseline trials"}));
            continue;
        }
        let base_refs: Vec<&Graded> = baselines.iter().collect();
        let (mut value, body) = two_groups("operator", trials, "baseline", &base_refs, &options);
        text.push_str(&body);
        value["subject"] = json!(subject);
        value["chaos_type"] = json!(chaos);
        value["baseline_source"] = json!(source);
        json_groups.push(value);
    }
    Ok(View {
        json: json!({"campaign_id": campaign_id, "comparisons": json_groups}),
        text,
    })
}

/// `evalctl compare-variants SUBJECT CHAOS`: the balanced scorecard of every variant (or those
/// named) over all campaigns, and a verdict for each variant against the best one.
pub fn compare_variants(
    reader: &Reader,
    subject: &str,
    chaos: &str,
    variants: &[String],
) -> Result<View> {
    let options = CompareOptions::default();
    let trials = graded(
        reader,
        "NOT t.baseline AND t.subject = (SELECT p1 FROM params)
            AND t.chaos_type = (SELECT p2 FROM params)",
        &[Param::from(subject), Param::from(chaos)],
    )?;
    let mut by_variant: BTreeMap<String, Vec<&Graded>> = BTreeMap::new();
    for trial in &trials {
        let name = trial
            .variant
            .clone()
            .unwrap_or_else(|| "(none)".to_string());
        if variants.is_empty() || variants.contains(&name) {
            by_variant.entry(name).or_default().push(trial);
        }
    }
    for wanted in variants {
        if !by_variant.contains_key(wanted) {
            return Err(ViewError::NotFound(format!(
                "no scored trials of variant {wanted:?} for {subject} × {chaos}; `{program} list-variants` shows what there is",
                program = schemas::program::name()
            )));
        }
    }
    if by_variant.is_empty() {
        return Err(ViewError::NotFound(format!(
            "no scored operator trials for {subject} × {chaos}; `{program} list-variants` shows what there is",
            program = schemas::program::name()
        )));
    }
    let mut text = format!(
        "{subject} × {chaos}: {} variants, {} scored trials\n",
        by_variant.len(),
        by_variant.values().map(Vec::len).sum::<usize>()
    );
    let control = trials.iter().all(|trial| trial.control);
    text.push_str(&if control {
        control_scorecard_header()
    } else {
        scorecard_header()
    });
    let mut cards = Vec::new();
    let mut best: Option<(&String, f64, f64)> = None;
    for (name, members) in &by_variant {
        let (mut value, summary) = if control {
            let (value, summary) = control_group_json(name, members, &options);
            text.push_str(&control_scorecard_line(&value, &summary));
            (value, summary)
        } else {
            let (value, summary) = group_json(name, members, &options);
            text.push_str(&scorecard_line(&value, &summary));
            (value, summary)
        };
        value["times_to_detect_ms"] = members
            .iter()
            .filter_map(|t| t.result.time_to_detect_ms)
            .collect();
        value["times_to_recover_ms"] = members
            .iter()
            .filter_map(|t| t.result.time_to_recover_ms)
            .collect();
        // The best: highest success rate, then shortest median time to recover.
        let rate = summary.success_rate.unwrap_or(-1.0);
        let recover = summary.median_time_to_recover_ms.unwrap_or(f64::INFINITY);
        if best.is_none_or(|(_, r, t)| rate > r || (rate == r && recover < t)) {
            best = Some((name, rate, recover));
        }
        cards.push(value);
    }
    let mut verdicts = Vec::new();
    if let Some((best_name, _, _)) = best
        && by_variant.len() > 1
    {
        let _ = writeln!(text, "\nagainst {best_name} (the best success rate):");
        let best_results: Vec<TrialResult> = by_variant[best_name]
            .iter()
            .map(|t| t.result.clone())
            .collect();
        for (name, members) in &by_variant {
            if name == best_name {
                continue;
            }
            let results: Vec<TrialResult> = members.iter().map(|t| t.result.clone()).collect();
            let comparison = compare(&best_results, &results, &options);
            let _ = writeln!(text, "{best_name} vs {name}");
            text.push_str(&comparison_text(&comparison, best_name, name, control));
            verdicts.push(comparison_json(&comparison, best_name, name));
        }
    }
    Ok(View {
        json: json!({
            "subject": subject,
            "chaos_type": chaos,
            "variants": cards,
            "best": best.map(|(name, _, _)| name.clone()),
            "comparisons": verdicts,
        }),
        text,
    })
}

/// `evalctl list-variants`: each variant with the subjects and faults it ran against.
pub fn list_variants(reader: &Reader) -> Result<View> {
    let result = query(
        reader,
        "SELECT t.variant, t.subject, t.chaos_type,
                count(*) AS n_trials,
                count(DISTINCT t.campaign_id) AS n_campaigns,
                count(*) FILTER (WHERE t.score_outcome <> 'errored') AS n_graded,
                count(*) FILTER (WHERE t.score_outcome = 'success') AS n_success
         FROM trials t
         WHERE NOT coalesce(t.baseline, false) AND t.variant IS NOT NULL
         GROUP BY ALL ORDER BY t.variant, t.subject, t.chaos_type",
        &[],
    )?;
    let rows = objects(&result);
    let mut text = String::new();
    if rows.is_empty() {
        text.push_str("no variants have run yet\n");
    } else {
        let _ = writeln!(
            text,
            "{:<20} {:<8} {:<18} {:>7} {:>10} {:>16}",
            "VARIANT", "SUBJECT", "CHAOS", "TRIALS", "CAMPAIGNS", "SUCCESS (n)"
        );
    }
    let mut out = Vec::new();
    for row in rows {
        let n_graded = int_of(&row, "n_graded").unwrap_or(0);
        let rate =
            (n_graded > 0).then(|| int_of(&row, "n_success").unwrap_or(0) as f64 / n_graded as f64);
        let _ = writeln!(
            text,
            "{:<20} {:<8} {:<18} {:>7} {:>10} {:>16}",
            text_of(&row, "variant"),
            text_of(&row, "subject"),
            text_of(&row, "chaos_type"),
            int_of(&row, "n_trials").unwrap_or(0),
            int_of(&row, "n_campaigns").unwrap_or(0),
            format!("{} (n={n_graded})", percent(rate)),
        );
        let mut object = row;
        object.insert("success_rate".to_string(), json!(rate));
        out.push(Value::Object(object));
    }
    Ok(View {
        json: json!({"variants": out}),
        text,
    })
}
