//! `evalctl show`: a campaign with its trials, or one trial's timeline in the terminal (phases and
//! the agent's reasoning, tool calls and results relative to the injection, the state diff, every
//! score). Each is a `Serialize` struct (`CampaignShown`, `TrialShown`) and its text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::query::{Param, display};
use crate::reader::Reader;
use crate::table::{Column, TextTable};
use crate::views::{View, ViewError, joined, pick_one, prefix_pattern, resolve, typed_rows};

type Result<T, E = ViewError> = std::result::Result<T, E>;

fn seconds_text(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "–".to_string(),
        |ms| format!("{:.1}s", ms as f64 / 1000.0),
    )
}

fn or_empty(text: &Option<String>) -> &str {
    text.as_deref().unwrap_or_default()
}

fn number(value: Option<i64>) -> String {
    value.map_or_else(String::new, |value| value.to_string())
}

/// A campaign and its trials.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignShown {
    pub campaign: CampaignHeader,
    pub trials: Vec<CampaignTrial>,
}

/// A campaign's row: what it is and how far it got.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignHeader {
    pub campaign_id: String,
    pub name: Option<String>,
    pub file_name: Option<String>,
    pub status: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub published_at: Option<String>,
    pub n_trials: Option<i64>,
    pub n_baseline_trials: Option<i64>,
    pub n_started: Option<i64>,
    pub n_finished: Option<i64>,
    pub seed: Option<u64>,
}

/// One trial of a campaign with its latest score.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignTrial {
    pub trial_id: String,
    pub trial_index: Option<i64>,
    pub subject: Option<String>,
    pub chaos_type: Option<String>,
    /// `(baseline)` for a baseline trial.
    pub variant: Option<String>,
    pub state: Option<String>,
    pub status: Option<String>,
    pub outcome: Option<String>,
    pub time_to_detect_ms: Option<i64>,
    pub time_to_resolve_ms: Option<i64>,
    pub n_commands: Option<i64>,
    pub n_destructive: Option<i64>,
    pub n_thrashing: Option<i64>,
}

/// `evalctl show CAMPAIGN`: the campaign (by id or prefix) and its trials.
pub fn show_campaign(reader: &Reader, campaign: &str) -> Result<View<CampaignShown>> {
    let campaign_id = resolve(reader, "campaigns", "campaign_id", campaign, "campaign")?;
    show_resolved_campaign(reader, &campaign_id)
}

/// [`show_campaign`] of the campaign `campaign_id`, already resolved.
pub(crate) fn show_resolved_campaign(
    reader: &Reader,
    campaign_id: &str,
) -> Result<View<CampaignShown>> {
    let id = [Param::from(campaign_id)];
    let header: CampaignHeader = typed_rows(
        reader,
        "SELECT campaign_id, name, file_name, status, strftime(published_at, '%Y-%m-%d %H:%M:%S') AS published_at,
                n_trials, n_baseline_trials, n_started, n_finished, seed
         FROM campaigns WHERE campaign_id = (SELECT p1 FROM params)",
        &id,
    )?
    .into_iter()
    .next()
    .ok_or_else(|| ViewError::NotFound(format!("no campaign {campaign_id}")))?;
    let trials: Vec<CampaignTrial> = typed_rows(
        reader,
        "SELECT trial_id, trial_index, subject, chaos_type, coalesce(variant, '(baseline)') AS variant,
                state, status, score_outcome AS outcome, score_time_to_detect_ms AS time_to_detect_ms,
                score_time_to_resolve_ms AS time_to_resolve_ms, score_n_commands AS n_commands,
                score_n_destructive AS n_destructive, score_n_thrashing AS n_thrashing
         FROM trials WHERE campaign_id = (SELECT p1 FROM params) ORDER BY trial_index",
        &id,
    )?;
    let mut out = format!(
        "campaign {campaign_id}: {} ({})\n  file {}, published {} UTC, seed {}\n  {} trials ({} baseline): {} started, {} finished\n\n",
        or_empty(&header.name),
        or_empty(&header.status),
        or_empty(&header.file_name),
        or_empty(&header.published_at),
        header
            .seed
            .map_or_else(String::new, |seed| seed.to_string()),
        number(header.n_trials),
        number(header.n_baseline_trials),
        number(header.n_started),
        number(header.n_finished),
    );
    let mut table = TextTable::new(&[
        Column::right("#", 4),
        Column::left("TRIAL", 10).after(2),
        Column::left("SUBJECT", 8),
        Column::left("CHAOS", 18),
        Column::left("VARIANT", 12),
        Column::left("STATUS", 10),
        Column::left("OUTCOME", 8),
        Column::right("TTD", 8),
        Column::right("TTR", 8),
        Column::right("CMDS", 5),
        Column::left("FLAGS", 0).after(2),
    ]);
    for trial in &trials {
        let mut flags = Vec::new();
        if trial.n_destructive.unwrap_or(0) > 0 {
            flags.push("destructive");
        }
        if trial.n_thrashing.unwrap_or(0) > 0 {
            flags.push("thrashing");
        }
        let status = trial.status.as_ref().or(trial.state.as_ref());
        table.row([
            number(trial.trial_index),
            trial.trial_id.chars().take(10).collect::<String>(),
            or_empty(&trial.subject).to_string(),
            or_empty(&trial.chaos_type).to_string(),
            or_empty(&trial.variant).to_string(),
            status.cloned().unwrap_or_default(),
            or_empty(&trial.outcome).to_string(),
            seconds_text(trial.time_to_detect_ms),
            seconds_text(trial.time_to_resolve_ms),
            number(trial.n_commands),
            flags.join(","),
        ]);
    }
    out.push_str(&table.render());
    out.push_str(&format!(
        "\n`{program} show --trial ID` shows a trial's timeline; `{program} analyze` its statistics\n",
        program = schemas::program::name()
    ));
    Ok(View {
        data: CampaignShown {
            campaign: header,
            trials,
        },
        text: out,
    })
}

/// A trial's row, its timeline, the difference between its initial and final state, and every
/// score it got.
#[derive(Debug, Clone, Serialize)]
pub struct TrialShown {
    pub trial: TrialRow,
    pub timeline: Vec<TimelineEntry>,
    pub state_diff: Vec<StateChange>,
    pub scores: Vec<ScoreRow>,
}

/// The trial's row of `trials` (every column: those the views read are fields, the others are
/// kept as they come in `columns`), with its campaign's name and the times the timeline counts
/// from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialRow {
    pub trial_id: String,
    pub campaign_id: String,
    pub campaign_name: Option<String>,
    pub trial_index: Option<i64>,
    pub subject: Option<String>,
    pub chaos_type: Option<String>,
    pub chaos_json: Option<String>,
    pub target: Option<String>,
    /// None for a baseline trial (no operator).
    pub variant: Option<String>,
    pub state: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub initial_state_json: Option<String>,
    pub final_state_json: Option<String>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub injected_ms: Option<i64>,
    pub started_ms: Option<i64>,
    #[serde(flatten)]
    pub columns: serde_json::Map<String, Value>,
}

/// One event of the trial's log, with its agent log entry and command when it is one.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub seq: Option<u64>,
    #[serde(rename = "type")]
    pub kind: String,
    pub at_ms_from_injection: Option<i64>,
    pub entry_type: Option<String>,
    pub content: Option<String>,
    pub tool_name: Option<String>,
    pub command: Option<String>,
    pub category: Option<String>,
    pub rule: Option<String>,
    pub exit_code: Option<i64>,
    pub tool_params: Option<Value>,
    /// A lifecycle event's data in a few words.
    pub summary: String,
    pub data: Value,
}

#[derive(Debug, Deserialize)]
struct TimelineRow {
    seq: Option<u64>,
    #[serde(rename = "type")]
    kind: String,
    at_ms: Option<i64>,
    data: Option<String>,
    entry_type: Option<String>,
    content: Option<String>,
    tool_name: Option<String>,
    tool_params_json: Option<String>,
    exit_code: Option<i64>,
    command: Option<String>,
    category: Option<String>,
    rule: Option<String>,
}

/// A leaf of the state that differs: its path, and its values before and after (none when
/// absent).
#[derive(Debug, Clone, Serialize)]
pub struct StateChange {
    pub path: String,
    pub initial: Option<String>,
    #[serde(rename = "final")]
    pub final_value: Option<String>,
}

/// One `TrialScored` of the trial.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoreRow {
    pub scorer_version: Option<String>,
    pub outcome: Option<String>,
    pub detected: Option<bool>,
    pub time_to_detect_ms: Option<i64>,
    pub resolved: Option<bool>,
    pub time_to_resolve_ms: Option<i64>,
    pub time_to_heal_ms: Option<i64>,
    pub n_commands: Option<i64>,
    pub n_unique_commands: Option<i64>,
    pub n_diagnostic: Option<i64>,
    pub n_remediation: Option<i64>,
    pub n_destructive: Option<i64>,
    pub n_other: Option<i64>,
    pub n_thrashing: Option<i64>,
    pub thrashing_commands_json: Option<String>,
    pub details_json: Option<String>,
}

impl ScoreRow {
    /// The scorer's explanation, line by line.
    pub fn explanation(&self) -> Vec<String> {
        self.details_json
            .as_deref()
            .and_then(|details| serde_json::from_str::<Value>(details).ok())
            .and_then(|details| {
                details
                    .get("explanation")
                    .and_then(Value::as_array)
                    .map(|lines| {
                        lines
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
            })
            .unwrap_or_default()
    }
}

fn flag(value: Option<bool>) -> String {
    value.map_or_else(String::new, |value| value.to_string())
}

/// `evalctl show --trial TRIAL`: the trial (by id or prefix) and its timeline, state and scores.
pub fn show_trial(reader: &Reader, trial: &str) -> Result<View<TrialShown>> {
    // The prefix resolved by the query that reads the trial's row: one scan of `trials`.
    let rows: Vec<TrialRow> = typed_rows(
        reader,
        "SELECT t.*, c.name AS campaign_name, epoch_ms(t.injected_at) AS injected_ms,
                epoch_ms(t.started_at) AS started_ms
         FROM trials t LEFT JOIN campaigns c USING (campaign_id)
         WHERE t.trial_id LIKE (SELECT p1 FROM params) ESCAPE '\\'
         ORDER BY t.trial_id LIMIT 6",
        &[prefix_pattern(trial, "trial")?],
    )?;
    let mut ids: Vec<String> = rows.iter().map(|row| row.trial_id.clone()).collect();
    ids.dedup();
    let trial_id = &pick_one(ids, trial, "trial")?;
    let trial = rows
        .into_iter()
        .find(|row| row.trial_id == *trial_id)
        .expect("the id picked is a row's");
    let id = [Param::from(trial_id)];
    // The trial's rows lie within its range of stream sequences: a filter on `seq` lets DuckDB
    // skip the other row groups of the large tables.
    let of_trial = match (trial.first_seq, trial.last_seq) {
        (Some(first), Some(last)) => {
            format!("seq BETWEEN {first} AND {last} AND trial_id = (SELECT p1 FROM params)")
        }
        _ => "trial_id = (SELECT p1 FROM params)".to_string(),
    };
    // The log in order (an agent log entry at the operator's time, with its command's category)
    // and the scores, read at once.
    let timeline_sql = format!(
        "SELECT e.seq, e.type, epoch_ms(coalesce(a.logged_at, e.occurred_at)) AS at_ms, e.data,
                a.entry_type, a.content, a.tool_name, a.tool_params_json, a.exit_code,
                c.command, c.category, c.rule
         FROM (SELECT * FROM events WHERE {of_trial}) e
         LEFT JOIN (SELECT * FROM agent_log WHERE {of_trial}) a ON a.seq = e.seq
         LEFT JOIN (SELECT * FROM commands WHERE {of_trial}) c ON c.seq = e.seq
         ORDER BY e.seq"
    );
    let scores_sql = format!(
        "SELECT scorer_version, outcome, detected, time_to_detect_ms, resolved, time_to_resolve_ms,
                time_to_heal_ms, n_commands, n_unique_commands, n_diagnostic, n_remediation,
                n_destructive, n_other, n_thrashing, thrashing_commands_json, details_json
         FROM scores WHERE {of_trial} ORDER BY seq"
    );
    let (timeline, scores) = std::thread::scope(|scope| {
        let own = reader.try_clone();
        let scores = scope.spawn(|| typed_rows::<ScoreRow>(&own?, &scores_sql, &id));
        let timeline = typed_rows::<TimelineRow>(reader, &timeline_sql, &id);
        (timeline, joined(scores))
    });
    let (timeline, scores) = (timeline?, scores?);
    let zero = trial.injected_ms.or(trial.started_ms).unwrap_or(0);

    let mut out = format!(
        "trial {trial_id} (#{} of campaign {} {})\n  {} × {} {} on target {}, {}\n  state {}, status {}{}\n",
        number(trial.trial_index),
        trial.campaign_id,
        or_empty(&trial.campaign_name),
        or_empty(&trial.subject),
        or_empty(&trial.chaos_type),
        or_empty(&trial.chaos_json),
        or_empty(&trial.target),
        trial.variant.as_deref().map_or_else(
            || "baseline (no operator)".to_string(),
            |v| format!("variant {v}")
        ),
        or_empty(&trial.state),
        or_empty(&trial.status),
        trial
            .reason
            .as_deref()
            .map_or_else(String::new, |reason| format!(" ({reason})")),
    );
    out.push_str("\ntimeline (seconds from the injection)\n");
    let mut events = Vec::new();
    for row in timeline {
        let at = row.at_ms.map(|ms| ms - zero);
        let relative = at.map_or_else(
            || "       ?".to_string(),
            |ms| format!("{:>+8.1}", ms as f64 / 1000.0),
        );
        let data = row.data.as_deref().unwrap_or_default();
        let summary = summarize(&row.kind, data);
        let line = match row.kind.as_str() {
            "AgentLogRecorded" => match or_empty(&row.entry_type) {
                "reasoning" => format!("reasoning    {}", indent(or_empty(&row.content))),
                "tool_call" => format!(
                    "tool call    {}: {}  [{} by {}]",
                    or_empty(&row.tool_name),
                    or_empty(&row.command),
                    or_empty(&row.category),
                    row.rule.as_deref().unwrap_or("no rule")
                ),
                "tool_result" => format!(
                    "tool result  exit {}: {}",
                    number(row.exit_code),
                    indent(&fold(or_empty(&row.content)))
                ),
                other => format!("agent log    {other}"),
            },
            kind => format!("{kind:<12} {summary}"),
        };
        let _ = writeln!(out, "  {relative}  {line}");
        events.push(TimelineEntry {
            seq: row.seq,
            at_ms_from_injection: at,
            tool_params: row
                .tool_params_json
                .as_deref()
                .and_then(|params| serde_json::from_str::<Value>(params).ok()),
            summary,
            data: serde_json::from_str::<Value>(data).unwrap_or(Value::Null),
            kind: row.kind,
            entry_type: row.entry_type,
            content: row.content,
            tool_name: row.tool_name,
            command: row.command,
            category: row.category,
            rule: row.rule,
            exit_code: row.exit_code,
        });
    }

    let diff = state_diff(
        or_empty(&trial.initial_state_json),
        or_empty(&trial.final_state_json),
    );
    out.push_str("\nstate: initial → final\n");
    if diff.is_empty() {
        out.push_str("  no difference\n");
    }
    for (path, (before, after)) in &diff {
        let _ = writeln!(
            out,
            "  {path}: {} → {}",
            before.as_deref().unwrap_or("(absent)"),
            after.as_deref().unwrap_or("(absent)")
        );
    }

    out.push_str("\nscores\n");
    if scores.is_empty() {
        out.push_str("  not scored yet\n");
    }
    for score in &scores {
        let _ = writeln!(
            out,
            "  {}: {} — detected {} (TTD {}), resolved {} (TTR {}), {} commands ({} diagnostic, {} remediation, {} destructive), {} thrashing",
            or_empty(&score.scorer_version),
            or_empty(&score.outcome),
            flag(score.detected),
            seconds_text(score.time_to_detect_ms),
            flag(score.resolved),
            seconds_text(score.time_to_resolve_ms),
            number(score.n_commands),
            number(score.n_diagnostic),
            number(score.n_remediation),
            number(score.n_destructive),
            number(score.n_thrashing),
        );
        for line in score.explanation() {
            let _ = writeln!(out, "      {line}");
        }
    }
    let state_diff = diff
        .into_iter()
        .map(|(path, (initial, final_value))| StateChange {
            path,
            initial,
            final_value,
        })
        .collect();
    Ok(View {
        data: TrialShown {
            trial,
            timeline: events,
            state_diff,
            scores,
        },
        text: out,
    })
}

fn indent(text: &str) -> String {
    text.trim_end()
        .replace('\n', "\n                          ")
}

/// Long outputs folded to their first and last lines.
fn fold(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    if lines.len() <= 8 {
        return lines.join("\n");
    }
    format!(
        "{}\n… {} lines folded …\n{}",
        lines[..4].join("\n"),
        lines.len() - 6,
        lines[lines.len() - 2..].join("\n")
    )
}

/// A lifecycle event's data in a few words.
fn summarize(kind: &str, data: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(data) else {
        return String::new();
    };
    let field = |key: &str| value.get(key).map(display).unwrap_or_default();
    match kind {
        "TrialStarted" => format!("worker {} (attempt {})", field("worker"), field("attempt")),
        "SubjectReset" => format!("{} in {} ms", field("instance"), field("duration_ms")),
        "SubjectHealthy" => format!("after {} ms", field("after_ms")),
        "StateCaptured" => format!("{} (healthy: {})", field("phase"), field("healthy")),
        "ChaosInjected" => format!(
            "{} on {}",
            value
                .get("chaos")
                .map(|chaos| chaos.to_string())
                .unwrap_or_default(),
            field("target")
        ),
        "TicketOpened" => format!(
            "ticket {} {} ({})",
            field("ticket_id"),
            field("invariant_name"),
            field("severity")
        ),
        "AgentSessionStarted" => format!("session {}", field("session_id")),
        "TicketResolved" => format!("ticket {}", field("ticket_id")),
        "ChaosCleanedUp" => format!("in {} ms", field("duration_ms")),
        "ChaosCleanupFailed" => field("error"),
        "TrialFinished" => format!("{} {}", field("status"), field("reason")),
        "TrialScored" => format!("{} {}", field("scorer_version"), field("outcome")),
        _ => String::new(),
    }
}

/// The leaf values of a JSON document by path (`members[0].healthy`); unreadable text is empty.
pub fn flatten_state(text: &str) -> BTreeMap<String, String> {
    fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    flatten(&path, child, out);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    flatten(&format!("{prefix}[{index}]"), child, out);
                }
            }
            leaf => {
                out.insert(prefix.to_string(), leaf.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        flatten("", &value, &mut out);
    }
    out
}

/// Leaf values of two JSON documents that differ, by path.
pub fn state_diff(before: &str, after: &str) -> BTreeMap<String, (Option<String>, Option<String>)> {
    let (a, b) = (flatten_state(before), flatten_state(after));
    let mut diff = BTreeMap::new();
    for path in a.keys().chain(b.keys()) {
        let (x, y) = (a.get(path), b.get(path));
        if x != y {
            diff.insert(path.clone(), (x.cloned(), y.cloned()));
        }
    }
    diff
}
