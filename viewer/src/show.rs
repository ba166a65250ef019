//! `evalctl show`: a campaign with its trials, or one trial's timeline in the terminal (phases and
//! the agent's reasoning, tool calls and results relative to the injection, the state diff, every
//! score).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::query::{Param, display};
use crate::reader::Reader;
use crate::views::{View, ViewError, objects, query, resolve};

type Result<T, E = ViewError> = std::result::Result<T, E>;

fn rows(
    reader: &Reader,
    sql: &str,
    params: &[Param],
) -> Result<Vec<serde_json::Map<String, Value>>> {
    Ok(objects(&query(reader, sql, params)?))
}

fn text(row: &serde_json::Map<String, Value>, key: &str) -> String {
    row.get(key).map(display).unwrap_or_default()
}

/// `evalctl show ID`: a campaign (by id or prefix), or a trial with `trial`.
pub fn show(reader: &Reader, id: &str, trial: bool) -> Result<View> {
    if trial {
        let trial_id = resolve(reader, "trials", "trial_id", id, "trial")?;
        show_trial(reader, &trial_id)
    } else {
        let campaign_id = resolve(reader, "campaigns", "campaign_id", id, "campaign")?;
        show_campaign(reader, &campaign_id)
    }
}

fn seconds_text(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "–".to_string(),
        |ms| format!("{:.1}s", ms as f64 / 1000.0),
    )
}

fn show_campaign(reader: &Reader, campaign_id: &str) -> Result<View> {
    let id = [Param::from(campaign_id)];
    let header = rows(
        reader,
        &format!(
            "SELECT campaign_id, name, file_name, status, strftime(published_at, '%Y-%m-%d %H:%M:%S') AS published_at,
                    n_trials, n_baseline_trials, n_started, n_finished, seed
             FROM campaigns WHERE campaign_id = (SELECT p1 FROM params)"
        ),
        &id,
    )?
    .into_iter()
    .next()
    .unwrap_or_default();
    let trials = rows(
        reader,
        &format!(
            "SELECT trial_id, trial_index, subject, chaos_type, coalesce(variant, '(baseline)') AS variant,
                    state, status, score_outcome AS outcome, score_time_to_detect_ms AS time_to_detect_ms,
                    score_time_to_resolve_ms AS time_to_resolve_ms, score_n_commands AS n_commands,
                    score_n_destructive AS n_destructive, score_n_thrashing AS n_thrashing
             FROM trials WHERE campaign_id = (SELECT p1 FROM params) ORDER BY trial_index"
        ),
        &id,
    )?;
    let mut out = format!(
        "campaign {campaign_id}: {} ({})\n  file {}, published {} UTC, seed {}\n  {} trials ({} baseline): {} started, {} finished\n\n",
        text(&header, "name"),
        text(&header, "status"),
        text(&header, "file_name"),
        text(&header, "published_at"),
        text(&header, "seed"),
        text(&header, "n_trials"),
        text(&header, "n_baseline_trials"),
        text(&header, "n_started"),
        text(&header, "n_finished"),
    );
    let _ = writeln!(
        out,
        "{:>4}  {:<10} {:<8} {:<18} {:<12} {:<10} {:<8} {:>8} {:>8} {:>5}  FLAGS",
        "#", "TRIAL", "SUBJECT", "CHAOS", "VARIANT", "STATUS", "OUTCOME", "TTD", "TTR", "CMDS"
    );
    for trial in &trials {
        let mut flags = Vec::new();
        if trial
            .get("n_destructive")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
        {
            flags.push("destructive");
        }
        if trial
            .get("n_thrashing")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
        {
            flags.push("thrashing");
        }
        let status = trial
            .get("status")
            .and_then(Value::as_str)
            .map_or_else(|| text(trial, "state"), str::to_string);
        let _ = writeln!(
            out,
            "{:>4}  {:<10} {:<8} {:<18} {:<12} {:<10} {:<8} {:>8} {:>8} {:>5}  {}",
            text(trial, "trial_index"),
            text(trial, "trial_id").chars().take(10).collect::<String>(),
            text(trial, "subject"),
            text(trial, "chaos_type"),
            text(trial, "variant"),
            status,
            text(trial, "outcome"),
            seconds_text(trial.get("time_to_detect_ms").and_then(Value::as_i64)),
            seconds_text(trial.get("time_to_resolve_ms").and_then(Value::as_i64)),
            text(trial, "n_commands"),
            flags.join(",")
        );
    }
    out.push_str(&format!(
        "\n`{program} show --trial ID` shows a trial's timeline; `{program} analyze` its statistics\n",
        program = schemas::program::name()
    ));
    Ok(View {
        json: json!({
            "campaign": header,
            "trials": trials,
        }),
        text: out,
    })
}

fn show_trial(reader: &Reader, trial_id: &str) -> Result<View> {
    let id = [Param::from(trial_id)];
    let trial = rows(
        reader,
        &format!(
            "SELECT t.*, c.name AS campaign_name, epoch_ms(t.injected_at) AS injected_ms,
                    epoch_ms(t.started_at) AS started_ms
             FROM trials t LEFT JOIN campaigns c USING (campaign_id)
             WHERE trial_id = (SELECT p1 FROM params)"
        ),
        &id,
    )?
    .into_iter()
    .next()
    .ok_or_else(|| ViewError::NotFound(format!("no trial {trial_id}")))?;
    // The trial's rows lie within its range of stream sequences: a filter on `seq` lets DuckDB
    // skip the other row groups of the large tables.
    let of_trial = match (
        trial.get("first_seq").and_then(Value::as_u64),
        trial.get("last_seq").and_then(Value::as_u64),
    ) {
        (Some(first), Some(last)) => {
            format!("seq BETWEEN {first} AND {last} AND trial_id = (SELECT p1 FROM params)")
        }
        _ => "trial_id = (SELECT p1 FROM params)".to_string(),
    };
    // The log in order; an agent log entry at the operator's time, with its command's category.
    let timeline = rows(
        reader,
        &format!(
            "SELECT e.seq, e.type, epoch_ms(coalesce(a.logged_at, e.occurred_at)) AS at_ms, e.data,
                    a.entry_type, a.content, a.tool_name, a.tool_params_json, a.exit_code,
                    c.command, c.category, c.rule
             FROM (SELECT * FROM events WHERE {of_trial}) e
             LEFT JOIN (SELECT * FROM agent_log WHERE {of_trial}) a ON a.seq = e.seq
             LEFT JOIN (SELECT * FROM commands WHERE {of_trial}) c ON c.seq = e.seq
             ORDER BY e.seq"
        ),
        &id,
    )?;
    let scores = rows(
        reader,
        &format!(
            "SELECT scorer_version, outcome, detected, time_to_detect_ms, resolved, time_to_resolve_ms,
                    time_to_heal_ms, n_commands, n_unique_commands, n_diagnostic, n_remediation,
                    n_destructive, n_other, n_thrashing, thrashing_commands_json, details_json
             FROM scores WHERE {of_trial} ORDER BY seq"
        ),
        &id,
    )?;
    let zero = trial
        .get("injected_ms")
        .and_then(Value::as_i64)
        .or_else(|| trial.get("started_ms").and_then(Value::as_i64))
        .unwrap_or(0);

    let mut out = format!(
        "trial {trial_id} (#{} of campaign {} {})\n  {} × {} {} on target {}, {}\n  state {}, status {}{}\n",
        text(&trial, "trial_index"),
        text(&trial, "campaign_id"),
        text(&trial, "campaign_name"),
        text(&trial, "subject"),
        text(&trial, "chaos_type"),
        text(&trial, "chaos_json"),
        text(&trial, "target"),
        trial.get("variant").and_then(Value::as_str).map_or_else(
            || "baseline (no operator)".to_string(),
            |v| format!("variant {v}")
        ),
        text(&trial, "state"),
        text(&trial, "status"),
        trial
            .get("reason")
            .and_then(Value::as_str)
            .map_or_else(String::new, |reason| format!(" ({reason})")),
    );
    out.push_str("\ntimeline (seconds from the injection)\n");
    let mut events = Vec::new();
    for row in &timeline {
        let at = row.get("at_ms").and_then(Value::as_i64).map(|ms| ms - zero);
        let relative = at.map_or_else(
            || "       ?".to_string(),
            |ms| format!("{:>+8.1}", ms as f64 / 1000.0),
        );
        let kind = text(row, "type");
        let line = match kind.as_str() {
            "AgentLogRecorded" => match text(row, "entry_type").as_str() {
                "reasoning" => format!("reasoning    {}", indent(&text(row, "content"))),
                "tool_call" => format!(
                    "tool call    {}: {}  [{} by {}]",
                    text(row, "tool_name"),
                    text(row, "command"),
                    text(row, "category"),
                    row.get("rule").and_then(Value::as_str).unwrap_or("no rule")
                ),
                "tool_result" => format!(
                    "tool result  exit {}: {}",
                    text(row, "exit_code"),
                    indent(&fold(&text(row, "content")))
                ),
                other => format!("agent log    {other}"),
            },
            _ => format!("{kind:<12} {}", summarize(&kind, &text(row, "data"))),
        };
        let _ = writeln!(out, "  {relative}  {line}");
        events.push(json!({
            "seq": row.get("seq"),
            "type": kind,
            "at_ms_from_injection": at,
            "entry_type": row.get("entry_type"),
            "content": row.get("content"),
            "tool_name": row.get("tool_name"),
            "command": row.get("command"),
            "category": row.get("category"),
            "rule": row.get("rule"),
            "exit_code": row.get("exit_code"),
            "tool_params": row
                .get("tool_params_json")
                .and_then(Value::as_str)
                .and_then(|params| serde_json::from_str::<Value>(params).ok()),
            "summary": summarize(&kind, &text(row, "data")),
            "data": serde_json::from_str::<Value>(&text(row, "data")).unwrap_or(Value::Null),
        }));
    }

    let diff = state_diff(
        &text(&trial, "initial_state_json"),
        &text(&trial, "final_state_json"),
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
            text(score, "scorer_version"),
            text(score, "outcome"),
            text(score, "detected"),
            seconds_text(score.get("time_to_detect_ms").and_then(Value::as_i64)),
            text(score, "resolved"),
            seconds_text(score.get("time_to_resolve_ms").and_then(Value::as_i64)),
            text(score, "n_commands"),
            text(score, "n_diagnostic"),
            text(score, "n_remediation"),
            text(score, "n_destructive"),
            text(score, "n_thrashing"),
        );
        if let Ok(details) = serde_json::from_str::<Value>(&text(score, "details_json"))
            && let Some(lines) = details.get("explanation").and_then(Value::as_array)
        {
            for line in lines.iter().filter_map(Value::as_str) {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    let json = json!({
        "trial": trial,
        "timeline": events,
        "state_diff": diff.iter().map(|(path, (before, after))| json!({"path": path, "initial": before, "final": after})).collect::<Vec<_>>(),
        "scores": scores,
    });
    Ok(View { json, text: out })
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
