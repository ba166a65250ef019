//! The commands an operator's agent ran in a trial: their identity (tool and `command`, never the
//! free text around them), their classification by the rules, and thrashing, the same command
//! repeated many times in a short while.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use schemas::event::{AgentLogEntryType, Event, EventData, Timestamp};
use serde_json::Value;

use crate::rules::{Category, Classification, Rules};

/// What makes two tool calls the same command: the tool and its `command` parameter, or, for a
/// tool without one, its whole parameters less `reasoning`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommandId {
    pub tool: String,
    /// The command line (trimmed), or the parameters as canonical JSON (keys sorted).
    pub text: String,
    /// `text` is a shell command line (the call had a `command` parameter).
    pub is_shell: bool,
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            f.write_str(&self.tool)
        } else {
            write!(f, "{}: {}", self.tool, self.text)
        }
    }
}

/// Parameters that are commentary, not part of what a call does.
const FREE_TEXT_PARAMS: &[&str] = &["reasoning"];

impl CommandId {
    /// The identity of a `tool_call` entry: `tool_name` (`?` when absent) and its parameters.
    pub fn of(tool_name: Option<&str>, params: Option<&Value>, params_raw: Option<&str>) -> Self {
        let tool = tool_name.unwrap_or("?").to_string();
        match params {
            Some(Value::Object(map)) => match map.get("command") {
                Some(Value::String(line)) => CommandId {
                    tool,
                    text: collapse_blanks(line),
                    is_shell: true,
                },
                Some(Value::Array(words)) if words.iter().all(Value::is_string) => CommandId {
                    tool,
                    text: words
                        .iter()
                        .filter_map(Value::as_str)
                        .map(shell_quote)
                        .collect::<Vec<_>>()
                        .join(" "),
                    is_shell: true,
                },
                _ => {
                    let mut kept = map.clone();
                    for key in FREE_TEXT_PARAMS {
                        kept.remove(*key);
                    }
                    CommandId {
                        tool,
                        text: canonical_json(&Value::Object(kept)),
                        is_shell: false,
                    }
                }
            },
            Some(other) => CommandId {
                tool,
                text: canonical_json(other),
                is_shell: false,
            },
            None => CommandId {
                tool,
                text: params_raw.unwrap_or_default().trim().to_string(),
                is_shell: false,
            },
        }
    }

    pub fn classify(&self, rules: &Rules) -> Classification {
        rules.classify(
            &self.tool,
            self.is_shell.then_some(self.text.as_str()),
            &self.text,
        )
    }
}

/// The line trimmed, with runs of spaces and tabs outside quotes made one space: the same command
/// typed with other spacing is the same command.
fn collapse_blanks(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut pending_blank = false;
    for c in line.trim().chars() {
        if quote.is_none() && !escaped && (c == ' ' || c == '\t') {
            pending_blank = true;
            continue;
        }
        if pending_blank {
            out.push(' ');
            pending_blank = false;
        }
        out.push(c);
        match (quote, c) {
            _ if escaped => escaped = false,
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped = true,
            (Some('"'), '"') => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            _ => {}
        }
    }
    out
}

fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// JSON with object keys sorted at every level, so that equal parameters give equal text whatever
/// order they were written in.
fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sorted(v))).collect();
                let mut out = serde_json::Map::new();
                for (key, value) in ordered {
                    out.insert(key.clone(), value);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    match sorted(value) {
        // serde_json may keep insertion order (its `preserve_order` feature); write the keys in
        // the sorted order by hand so the text never depends on it.
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|key| {
                    format!(
                        "{}:{}",
                        Value::String(key.clone()),
                        canonical_json(&map[key])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

/// One `tool_call` entry of the agent's log.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub command: CommandId,
    /// The operator's timestamp of the entry.
    pub at: Timestamp,
}

/// The `tool_call` entries among `events`, each once (a re-captured entry, same operator.db,
/// session and entry id, counts once), in the order of the log.
pub fn tool_calls(events: &[Event]) -> Vec<ToolCall> {
    let mut seen = HashSet::new();
    let mut calls = Vec::new();
    for event in events {
        let EventData::AgentLogRecorded(entry) = &event.data else {
            continue;
        };
        if entry.entry_type != AgentLogEntryType::ToolCall {
            continue;
        }
        if !seen.insert((&entry.operator_db, &entry.session_id, entry.entry_id)) {
            continue;
        }
        calls.push(ToolCall {
            command: CommandId::of(
                entry.tool_name.as_deref(),
                entry.tool_params.as_ref(),
                entry.tool_params_raw.as_deref(),
            ),
            at: entry.timestamp,
        });
    }
    calls
}

/// One distinct command of a trial with how often it ran and its classification.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandUse {
    pub command: CommandId,
    pub n_calls: u32,
    pub classification: Classification,
}

/// The commands of a trial, counted and classified.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommandSummary {
    pub n_calls: u32,
    /// Calls by category; every category is present, with 0 when unused.
    pub by_category: BTreeMap<Category, u32>,
    /// Each distinct command, in the order of its first call.
    pub distinct: Vec<CommandUse>,
}

impl CommandSummary {
    pub fn n_unique(&self) -> u32 {
        self.distinct.len() as u32
    }

    pub fn count(&self, category: Category) -> u32 {
        self.by_category.get(&category).copied().unwrap_or(0)
    }
}

/// Counts and classifies `calls`.
pub fn summarize(calls: &[ToolCall], rules: &Rules) -> CommandSummary {
    let mut summary = CommandSummary {
        n_calls: calls.len() as u32,
        by_category: Category::ALL.into_iter().map(|c| (c, 0)).collect(),
        distinct: Vec::new(),
    };
    let mut index_of: BTreeMap<&CommandId, usize> = BTreeMap::new();
    for call in calls {
        let index = *index_of.entry(&call.command).or_insert_with(|| {
            summary.distinct.push(CommandUse {
                command: call.command.clone(),
                n_calls: 0,
                classification: call.command.classify(rules),
            });
            summary.distinct.len() - 1
        });
        let usage = &mut summary.distinct[index];
        usage.n_calls += 1;
        *summary
            .by_category
            .entry(usage.classification.category)
            .or_insert(0) += 1;
    }
    summary
}

/// A command run at least `min_repeats` times within the window, possibly several windows that
/// overlap: one episode of thrashing.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrashingEpisode {
    pub command: CommandId,
    pub n_calls: u32,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
}

/// The thrashing episodes among `calls`: for each command, every call that lies in some window of
/// `window_ms` holding `min_repeats` or more calls of that same command is a thrashing call, and
/// thrashing calls whose windows overlap form one episode. Ordered by first call, then command.
pub fn thrashing(calls: &[ToolCall], min_repeats: u32, window_ms: i64) -> Vec<ThrashingEpisode> {
    let min_repeats = min_repeats.max(2) as usize;
    let window_micros = window_ms.saturating_mul(1000);
    let mut by_command: BTreeMap<&CommandId, Vec<Timestamp>> = BTreeMap::new();
    for call in calls {
        by_command.entry(&call.command).or_default().push(call.at);
    }
    let mut episodes = Vec::new();
    for (command, mut times) in by_command {
        times.sort();
        // Runs [start, end] of indices of qualifying windows, merged when they share a call.
        let mut current: Option<(usize, usize)> = None;
        let mut end = 0;
        for start in 0..times.len() {
            end = end.max(start);
            while end + 1 < times.len()
                && times[end + 1].unix_micros() - times[start].unix_micros() <= window_micros
            {
                end += 1;
            }
            if end + 1 - start < min_repeats {
                continue;
            }
            current = match current {
                Some((first, last)) if start <= last => Some((first, end.max(last))),
                Some((first, last)) => {
                    episodes.push(episode(command, &times, first, last));
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
        if let Some((first, last)) = current {
            episodes.push(episode(command, &times, first, last));
        }
    }
    episodes.sort_by(|a, b| (a.first_at, &a.command).cmp(&(b.first_at, &b.command)));
    episodes
}

fn episode(
    command: &CommandId,
    times: &[Timestamp],
    first: usize,
    last: usize,
) -> ThrashingEpisode {
    ThrashingEpisode {
        command: command.clone(),
        n_calls: (last - first + 1) as u32,
        first_at: times[first],
        last_at: times[last],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_ignores_reasoning_and_key_order() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": 2, "x": 1}, "reasoning": "why"}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a": {"x": 1, "y": 2}, "b": 1, "reasoning": "other"}"#)
                .unwrap();
        let id = CommandId::of(Some("metrics"), Some(&a), None);
        assert_eq!(id, CommandId::of(Some("metrics"), Some(&b), None));
        assert_eq!(id.to_string(), r#"metrics: {"a":{"x":1,"y":2},"b":1}"#);
        let shell: Value = serde_json::from_str(
            r#"{"command": " etcdctl  get\t'a  b' \"c  d\" ", "reasoning": "x"}"#,
        )
        .unwrap();
        assert_eq!(
            CommandId::of(Some("shell"), Some(&shell), None).to_string(),
            r#"shell: etcdctl get 'a  b' "c  d""#
        );
        let argv: Value = serde_json::from_str(r#"{"command": ["echo", "a b"]}"#).unwrap();
        assert_eq!(
            CommandId::of(Some("exec"), Some(&argv), None).to_string(),
            "exec: echo 'a b'"
        );
    }
}
