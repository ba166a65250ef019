//! `evalctl import-legacy PATH/eval.db`: the seed harness's SQLite results become events in the log,
//! so that old trials sit beside new ones and are graded by the current scorer (the scoring stage
//! picks up their `TrialFinished`, or `evalctl rescore` replays them).
//!
//! # The legacy schema
//!
//! Two tables. Required columns must exist (an import without them stops and names every missing
//! one); optional columns may be absent or NULL.
//!
//! `campaigns`
//! - `id` (required; integer or text), `name` (required)
//! - `created_at`, `config_json` (the campaign file as JSON or YAML text)
//!
//! `trials`
//! - `id`, `campaign_id` (references `campaigns.id`), `subject` (`etcd` or `tikv`), `chaos_type`
//!   (`node_kill`, `process_pause`, `latency`, `packet_loss`, `network_partition`,
//!   `disk_pressure`, or the seed harness's aliases `kill`, `pause`, `delay`, `loss`,
//!   `partition`, `disk_full`), `started_at`, `ended_at` (all required)
//! - `chaos_injected_at`, `ticket_created_at`, `resolved_at`: times of injection, the operator's
//!   ticket and its resolution (for a baseline, `resolved_at` is when the subject healed)
//! - `outcome` (`success`, `failure`, `timeout`, `error`, …), `variant`, `is_baseline`
//! - `initial_state`, `final_state` (JSON; health is read from `healthy: bool`, or
//!   `status`/`health` of `healthy`/`ok`), `chaos_metadata` (JSON: `params` of the fault, `target`)
//! - `commands` (JSON list; each item a command string or an object with `command` (or `cmd`),
//!   `tool`, `params`, `reasoning`, `timestamp`, `exit_code`, `output`)
//!
//! Times are ISO 8601 with or without a zone (zone-less is UTC), or Unix seconds (or
//! milliseconds past 10^11). A trial whose required values cannot be read is skipped and named in
//! the report; the rest is imported.
//!
//! # The events
//!
//! Each legacy campaign becomes a campaign `legacy-<hash of its id, name and creation time>` with
//! `CampaignPublished`, then per trial `TrialRequested`, `TrialStarted`, `StateCaptured`
//! (initial), `ChaosInjected`, `TicketOpened`, one `AgentLogRecorded` per command,
//! `TicketResolved` (or, for a baseline, `SubjectHealthy`), `StateCaptured` (final),
//! `ChaosCleanedUp`, `TrialFinished`, and last `CampaignFinished`. Every id derives from the
//! campaign id and the event's place, and events the stream already holds are not sent again, so
//! importing the same file twice adds nothing. A command without a time takes the ticket's time
//! (else the injection's), so untimed repeats count as thrashing.
//!
//! The SQLite reading ([`read_legacy`]) and the publishing ([`import`]) are the edges; turning rows
//! into events ([`plan`]) is pure.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use schemas::campaign::{CampaignFile, ChaosSpec, SubjectKind, SubjectSettings, TrialSpec};
use schemas::event::{
    AgentLogEntryType, AgentLogRecorded, CampaignFinished, CampaignPublished, CapturePhase,
    ChaosCleanedUp, ChaosInjected, Event, EventData, Producer, ResolvedVariant, SCHEMA_VERSION,
    StateCaptured, SubjectHealthy, TicketOpened, TicketResolved, Timestamp, TrialFinished,
    TrialRequested, TrialStarted, TrialStatus,
};
use schemas::log::{EventFilter, EventLog, PublishSummary};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Columns an `eval.db` must have, by table.
pub const REQUIRED_COLUMNS: &[(&str, &[&str])] = &[
    ("campaigns", &["id", "name"]),
    (
        "trials",
        &[
            "id",
            "campaign_id",
            "subject",
            "chaos_type",
            "started_at",
            "ended_at",
        ],
    ),
];

const OPTIONAL_CAMPAIGN_COLUMNS: &[&str] = &["created_at", "config_json"];
const OPTIONAL_TRIAL_COLUMNS: &[&str] = &[
    "chaos_injected_at",
    "ticket_created_at",
    "resolved_at",
    "outcome",
    "initial_state",
    "final_state",
    "chaos_metadata",
    "commands",
    "variant",
    "is_baseline",
];

/// The trial timeout of a legacy campaign whose configuration does not say.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 300;

#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error("cannot open {}: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("{} is not an SQLite database ({reason})", path.display())]
    NotADatabase { path: PathBuf, reason: String },
    #[error("{} is not a legacy eval.db: {}", path.display(), problems.join("; "))]
    NotLegacy {
        path: PathBuf,
        problems: Vec<String>,
    },
    #[error("reading {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error(transparent)]
    Log(#[from] schemas::log::Error),
}

pub type Result<T, E = LegacyError> = std::result::Result<T, E>;

/// A value of a legacy row, as SQLite stored it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

impl Cell {
    fn text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Integer(n) => Some(n.to_string()),
            Cell::Real(x) => Some(x.to_string()),
            Cell::Text(text) if text.trim().is_empty() => None,
            Cell::Text(text) => Some(text.trim().to_string()),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Cell::Null => false,
            Cell::Integer(n) => *n != 0,
            Cell::Real(x) => *x != 0.0,
            Cell::Text(text) => matches!(
                text.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "t" | "y"
            ),
        }
    }
}

/// One row of `campaigns`.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyCampaign {
    pub id: String,
    pub name: String,
    pub created_at: Cell,
    pub config_json: Option<String>,
}

/// One row of `trials`; absent optional columns read as NULL.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyTrial {
    pub id: Cell,
    pub campaign_id: String,
    pub subject: Option<String>,
    pub chaos_type: Option<String>,
    pub started_at: Cell,
    pub ended_at: Cell,
    pub chaos_injected_at: Cell,
    pub ticket_created_at: Cell,
    pub resolved_at: Cell,
    pub outcome: Option<String>,
    pub initial_state: Option<String>,
    pub final_state: Option<String>,
    pub chaos_metadata: Option<String>,
    pub commands: Option<String>,
    pub variant: Option<String>,
    pub is_baseline: Cell,
}

/// The rows of a legacy `eval.db`, trials in `id` order.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyDb {
    /// The database's file name, recorded in the events (not its whole path, so that the same
    /// file imported from elsewhere gives the same events).
    pub file_name: String,
    pub campaigns: Vec<LegacyCampaign>,
    pub trials: Vec<LegacyTrial>,
}

fn cell(value: ValueRef<'_>) -> Cell {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(n) => Cell::Integer(n),
        ValueRef::Real(x) => Cell::Real(x),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            Cell::Text(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

/// Reads a legacy `eval.db` (read-only). Fails with one message naming what is wrong when the file
/// is not an SQLite database, or lacks a table or required columns.
pub fn read_legacy(path: &Path) -> Result<LegacyDb> {
    if !path.is_file() {
        return Err(LegacyError::Open {
            path: path.to_path_buf(),
            reason: if path.exists() {
                "not a file".to_string()
            } else {
                "no such file".to_string()
            },
        });
    }
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| LegacyError::Open {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    let read_error = |error: rusqlite::Error| LegacyError::Read {
        path: path.to_path_buf(),
        reason: error.to_string(),
    };
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(|error| match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => LegacyError::NotADatabase {
                path: path.to_path_buf(),
                reason: error.to_string(),
            },
            _ => read_error(error),
        })?;

    let mut problems = Vec::new();
    let mut columns_of: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (table, required) in REQUIRED_COLUMNS {
        if !tables.iter().any(|name| name == table) {
            problems.push(format!(
                "no table {table:?} (it has {})",
                if tables.is_empty() {
                    "no tables".to_string()
                } else {
                    tables.join(", ")
                }
            ));
            continue;
        }
        let columns: Vec<String> =
            crate::sqlite::table_columns(&connection, table).map_err(read_error)?;
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|column| !columns.iter().any(|c| c.eq_ignore_ascii_case(column)))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "table {table} lacks column{} {} (it has {})",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                columns.join(", ")
            ));
        }
        columns_of.insert(table, columns);
    }
    if !problems.is_empty() {
        return Err(LegacyError::NotLegacy {
            path: path.to_path_buf(),
            problems,
        });
    }
    // Selects each wanted column, or NULL where an optional one is absent.
    let select = |table: &str, wanted: &[&str]| {
        let have = &columns_of[table];
        let list: Vec<String> = wanted
            .iter()
            .map(|column| {
                if have.iter().any(|c| c.eq_ignore_ascii_case(column)) {
                    format!("\"{column}\"")
                } else {
                    "NULL".to_string()
                }
            })
            .collect();
        format!(
            "SELECT {} FROM \"{table}\" ORDER BY \"id\"",
            list.join(", ")
        )
    };

    let campaign_columns: Vec<&str> = ["id", "name"]
        .into_iter()
        .chain(OPTIONAL_CAMPAIGN_COLUMNS.iter().copied())
        .collect();
    let mut statement = connection
        .prepare(&select("campaigns", &campaign_columns))
        .map_err(read_error)?;
    let campaigns = statement
        .query_map([], |row| {
            Ok(LegacyCampaign {
                id: cell(row.get_ref(0)?).text().unwrap_or_default(),
                name: cell(row.get_ref(1)?).text().unwrap_or_default(),
                created_at: cell(row.get_ref(2)?),
                config_json: cell(row.get_ref(3)?).text(),
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(read_error)?;

    let trial_columns: Vec<&str> = REQUIRED_COLUMNS[1]
        .1
        .iter()
        .copied()
        .chain(OPTIONAL_TRIAL_COLUMNS.iter().copied())
        .collect();
    let mut statement = connection
        .prepare(&select("trials", &trial_columns))
        .map_err(read_error)?;
    let trials = statement
        .query_map([], |row| {
            let at = |index: usize| row.get_ref(index).map(cell);
            Ok(LegacyTrial {
                id: at(0)?,
                campaign_id: at(1)?.text().unwrap_or_default(),
                subject: at(2)?.text(),
                chaos_type: at(3)?.text(),
                started_at: at(4)?,
                ended_at: at(5)?,
                chaos_injected_at: at(6)?,
                ticket_created_at: at(7)?,
                resolved_at: at(8)?,
                outcome: at(9)?.text(),
                initial_state: at(10)?.text(),
                final_state: at(11)?.text(),
                chaos_metadata: at(12)?.text(),
                commands: at(13)?.text(),
                variant: at(14)?.text(),
                is_baseline: at(15)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(read_error)?;
    Ok(LegacyDb {
        file_name: path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "eval.db".to_string()),
        campaigns,
        trials,
    })
}

/// Reads a legacy time as the capture reads an operator's: ISO 8601 with or without a zone
/// (zone-less is UTC here), or Unix seconds (milliseconds when above 10^11). `Ok(None)` for NULL
/// or empty.
pub fn parse_time(value: &Cell) -> Result<Option<Timestamp>, String> {
    let value = match value {
        Cell::Null => ValueRef::Null,
        Cell::Integer(n) => ValueRef::Integer(*n),
        Cell::Real(x) => ValueRef::Real(*x),
        Cell::Text(text) => ValueRef::Text(text.as_bytes()),
    };
    crate::capture::parse_operator_time(value, &crate::capture::OperatorZone::utc())
}

/// The events of one legacy campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCampaign {
    pub legacy_id: String,
    pub campaign_id: String,
    pub name: String,
    pub n_trials: u32,
    pub events: Vec<Event>,
}

/// What the rows become: campaigns with their events, and what could not be imported.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPlan {
    pub campaigns: Vec<PlannedCampaign>,
    /// Trials left out, and values that were dropped, each with why.
    pub problems: Vec<String>,
}

/// The campaign id of a legacy campaign: `legacy-` and 16 hex digits of a hash of its id, name
/// and creation time, the same at every import.
pub fn legacy_campaign_id(campaign: &LegacyCampaign) -> String {
    let mut hasher = Sha256::new();
    for part in [
        campaign.id.as_str(),
        campaign.name.as_str(),
        &campaign.created_at.text().unwrap_or_default(),
    ] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("legacy-{hex}")
}

fn chaos_spec(chaos_type: &str, metadata: Option<&Value>) -> Option<ChaosSpec> {
    let name = match chaos_type.trim().to_ascii_lowercase().as_str() {
        "kill" | "node_kill" | "process_kill" => "node_kill",
        "pause" | "process_pause" | "sigstop" => "process_pause",
        "delay" | "latency" | "network_latency" => "latency",
        "loss" | "packet_loss" => "packet_loss",
        "partition" | "network_partition" => "network_partition",
        "disk_full" | "disk" | "disk_pressure" => "disk_pressure",
        _ => return None,
    };
    let params = metadata
        .and_then(|metadata| metadata.get("params"))
        .filter(|params| params.is_object());
    if let Some(params) = params
        && let Ok(spec) = serde_json::from_value(json!({"type": name, "params": params}))
    {
        return Some(spec);
    }
    serde_json::from_value(json!({"type": name, "params": {}})).ok()
}

fn subject_kind(subject: &str) -> Option<SubjectKind> {
    serde_json::from_value(Value::String(subject.trim().to_ascii_lowercase())).ok()
}

/// Health read from a state snapshot: `healthy: bool`, or `status`/`health` of healthy or ok.
fn state_health(state: &Value) -> Option<bool> {
    if let Some(healthy) = state.get("healthy").and_then(Value::as_bool) {
        return Some(healthy);
    }
    for key in ["status", "health"] {
        if let Some(text) = state.get(key).and_then(Value::as_str) {
            return Some(matches!(
                text.to_ascii_lowercase().as_str(),
                "healthy" | "ok" | "up" | "green"
            ));
        }
    }
    None
}

fn parse_json(text: Option<&str>) -> Option<Value> {
    let text = text?;
    Some(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())))
}

fn status_of(outcome: Option<&str>, resolved: bool) -> TrialStatus {
    match outcome.map(|o| o.trim().to_ascii_lowercase()).as_deref() {
        Some("success" | "succeeded" | "resolved" | "pass" | "passed") => TrialStatus::Succeeded,
        Some("failure" | "failed" | "fail") => TrialStatus::Failed,
        Some("timeout" | "timed_out" | "timedout") => TrialStatus::TimedOut,
        Some("error" | "errored") => TrialStatus::Errored,
        _ if resolved => TrialStatus::Succeeded,
        _ => TrialStatus::Failed,
    }
}

/// One command of the legacy `commands` JSON.
struct LegacyCommand {
    tool: String,
    params: Value,
    timestamp: Option<Timestamp>,
    exit_code: Option<i64>,
    output: Option<String>,
}

fn legacy_commands(text: &str) -> Result<Vec<LegacyCommand>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| format!("commands are not JSON: {error}"))?;
    let Value::Array(items) = value else {
        return Err("commands are not a JSON list".to_string());
    };
    let mut commands = Vec::new();
    for item in items {
        match item {
            Value::String(line) => commands.push(LegacyCommand {
                tool: "shell".to_string(),
                params: json!({"command": line}),
                timestamp: None,
                exit_code: None,
                output: None,
            }),
            Value::Object(map) => {
                let text = |keys: &[&str]| {
                    keys.iter()
                        .find_map(|key| map.get(*key).and_then(Value::as_str))
                        .map(str::to_string)
                };
                let params = match map.get("params").or_else(|| map.get("tool_params")) {
                    Some(Value::Object(params)) => Value::Object(params.clone()),
                    _ => {
                        let mut params = serde_json::Map::new();
                        if let Some(line) = text(&["command", "cmd", "input"]) {
                            params.insert("command".to_string(), Value::String(line));
                        }
                        if let Some(reasoning) = text(&["reasoning"]) {
                            params.insert("reasoning".to_string(), Value::String(reasoning));
                        }
                        Value::Object(params)
                    }
                };
                let timestamp = ["timestamp", "ts", "time", "at"]
                    .iter()
                    .find_map(|key| map.get(*key))
                    .and_then(|value| match value {
                        Value::String(text) => parse_time(&Cell::Text(text.clone())).ok().flatten(),
                        Value::Number(number) => number
                            .as_f64()
                            .and_then(|x| parse_time(&Cell::Real(x)).ok().flatten()),
                        _ => None,
                    });
                commands.push(LegacyCommand {
                    tool: text(&["tool", "tool_name"]).unwrap_or_else(|| "shell".to_string()),
                    params,
                    timestamp,
                    exit_code: map.get("exit_code").and_then(Value::as_i64),
                    output: text(&["output", "result"]),
                });
            }
            _ => {}
        }
    }
    Ok(commands)
}

/// Builds the events of one campaign or trial with ids derived from the campaign and a place.
struct Builder<'a> {
    campaign_id: &'a str,
    producer: &'a Producer,
    events: Vec<Event>,
}

impl Builder<'_> {
    /// `place` is unique within the campaign: `(trial index + 1) << 20 | event number`, 0 for
    /// campaign-wide events.
    fn push(
        &mut self,
        trial_id: Option<&str>,
        place: u64,
        at: Timestamp,
        data: impl Into<EventData>,
    ) {
        self.events.push(Event {
            id: schemas::ids::derived_event_id(self.campaign_id, "legacy-import", place),
            schema_version: SCHEMA_VERSION,
            campaign_id: self.campaign_id.to_string(),
            trial_id: trial_id.map(str::to_string),
            occurred_at: at,
            producer: self.producer.clone(),
            data: data.into(),
        });
    }
}

/// A trial whose required values were read.
struct ReadyTrial<'a> {
    row: &'a LegacyTrial,
    subject: SubjectKind,
    chaos: ChaosSpec,
    metadata: Option<Value>,
    started_at: Timestamp,
    ended_at: Timestamp,
    variant: Option<String>,
}

/// Turns the rows into events. Pure: the same rows give the same events.
pub fn plan(db: &LegacyDb, producer: &Producer) -> ImportPlan {
    let mut problems = Vec::new();
    let mut campaigns = Vec::new();
    let known: HashSet<&str> = db.campaigns.iter().map(|c| c.id.as_str()).collect();
    for trial in &db.trials {
        if !known.contains(trial.campaign_id.as_str()) {
            problems.push(format!(
                "trial {}: campaign {:?} is not in table campaigns; skipped",
                trial.id.text().unwrap_or_default(),
                trial.campaign_id
            ));
        }
    }
    for campaign in &db.campaigns {
        campaigns.push(plan_campaign(db, campaign, producer, &mut problems));
    }
    ImportPlan {
        campaigns,
        problems,
    }
}

fn plan_campaign(
    db: &LegacyDb,
    campaign: &LegacyCampaign,
    producer: &Producer,
    problems: &mut Vec<String>,
) -> PlannedCampaign {
    let campaign_id = legacy_campaign_id(campaign);
    let config: Option<CampaignFile> = campaign.config_json.as_deref().and_then(|text| {
        schemas::campaign::parse_campaign("config_json", text)
            .map(|parsed| parsed.campaign)
            .ok()
    });
    let config_value: Option<Value> = campaign
        .config_json
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok());
    let timeout_seconds = config
        .as_ref()
        .map(|c| c.trial_timeout_seconds)
        .or_else(|| {
            config_value
                .as_ref()
                .and_then(|v| v.get("trial_timeout_seconds"))
                .and_then(Value::as_u64)
                .map(|n| n as u32)
        })
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let campaign_variant = config.as_ref().and_then(|c| c.variant.clone()).or_else(|| {
        config_value
            .as_ref()
            .and_then(|v| v.get("variant"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });

    // Read each trial's required values; skip the ones that cannot be.
    let mut ready = Vec::new();
    for row in db.trials.iter().filter(|t| t.campaign_id == campaign.id) {
        let label = format!(
            "campaign {} trial {}",
            campaign.id,
            row.id.text().unwrap_or_default()
        );
        let metadata = parse_json(row.chaos_metadata.as_deref());
        let subject = row.subject.as_deref().and_then(subject_kind);
        let chaos = row
            .chaos_type
            .as_deref()
            .and_then(|t| chaos_spec(t, metadata.as_ref()));
        let started_at = parse_time(&row.started_at);
        let ended_at = parse_time(&row.ended_at);
        match (subject, chaos, started_at, ended_at) {
            (Some(subject), Some(chaos), Ok(Some(started_at)), Ok(Some(ended_at))) => {
                let baseline = row.is_baseline.truthy()
                    || row
                        .variant
                        .as_deref()
                        .is_some_and(|v| v.eq_ignore_ascii_case("baseline"));
                let variant = if baseline {
                    None
                } else {
                    Some(
                        row.variant
                            .clone()
                            .or_else(|| campaign_variant.clone())
                            .unwrap_or_else(|| "legacy".to_string()),
                    )
                };
                ready.push(ReadyTrial {
                    row,
                    subject,
                    chaos,
                    metadata,
                    started_at,
                    ended_at,
                    variant,
                })
            }
            (subject, chaos, started_at, ended_at) => {
                let mut why = Vec::new();
                if subject.is_none() {
                    why.push(format!(
                        "unknown subject {:?}",
                        row.subject.as_deref().unwrap_or("")
                    ));
                }
                if chaos.is_none() {
                    why.push(format!(
                        "unknown chaos type {:?}",
                        row.chaos_type.as_deref().unwrap_or("")
                    ));
                }
                for (name, time) in [("started_at", started_at), ("ended_at", ended_at)] {
                    match time {
                        Ok(Some(_)) => {}
                        Ok(None) => why.push(format!("no {name}")),
                        Err(error) => why.push(format!("{name}: {error}")),
                    }
                }
                problems.push(format!("{label}: {}; skipped", why.join(", ")));
            }
        }
    }

    // The matrix of what ran: chaos entries in order of appearance, repetitions per cell.
    let mut chaos_entries: Vec<ChaosSpec> = Vec::new();
    let mut subjects: Vec<SubjectKind> = Vec::new();
    let mut variants: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(SubjectKind, usize, Option<String>), u32> = BTreeMap::new();
    let mut specs = Vec::new();
    for (trial_index, trial) in ready.iter().enumerate() {
        let chaos_index = match chaos_entries.iter().position(|c| c == &trial.chaos) {
            Some(index) => index,
            None => {
                chaos_entries.push(trial.chaos.clone());
                chaos_entries.len() - 1
            }
        };
        if !subjects.contains(&trial.subject) {
            subjects.push(trial.subject);
        }
        if let Some(variant) = &trial.variant
            && !variants.contains(variant)
        {
            variants.push(variant.clone());
        }
        let repetition = cells
            .entry((trial.subject, chaos_index, trial.variant.clone()))
            .or_insert(0);
        specs.push(TrialSpec {
            trial_index: trial_index as u32,
            subject: trial.subject,
            subject_settings: SubjectSettings::default(),
            chaos_index: chaos_index as u32,
            chaos: trial.chaos.clone(),
            variant: trial.variant.clone(),
            baseline: trial.variant.is_none(),
            repetition: *repetition,
            seed: legacy_seed(&campaign_id, trial.subject, chaos_index, *repetition),
            timeout_seconds,
            cooldown_seconds: 0,
        });
        *repetition += 1;
    }

    let first_start = ready.iter().map(|t| t.started_at).min();
    let published_at = parse_time(&campaign.created_at)
        .ok()
        .flatten()
        .or(first_start)
        .unwrap_or_else(|| Timestamp::from_unix_micros(0).expect("the epoch"));
    let n_baseline = specs.iter().filter(|s| s.baseline).count() as u32;
    let campaign_file = config.clone().unwrap_or_else(|| {
        let trials_per_combination = cells.values().copied().max().unwrap_or(1).max(1);
        serde_json::from_value(json!({
            "name": campaign.name,
            "description": format!("imported from legacy {} (campaign {})", db.file_name, campaign.id),
            "subjects": if subjects.is_empty() { vec![SubjectKind::Etcd] } else { subjects.clone() },
            "chaos_types": if chaos_entries.is_empty() {
                vec![chaos_spec("node_kill", None).expect("node_kill has defaults")]
            } else {
                chaos_entries.clone()
            },
            "trials_per_combination": trials_per_combination,
            "include_baseline": n_baseline > 0,
            "variants": if variants.is_empty() { None } else { Some(variants.clone()) },
            "trial_timeout_seconds": timeout_seconds,
        }))
        .expect("a synthesized campaign is valid")
    });
    let file_text = campaign
        .config_json
        .clone()
        .unwrap_or_else(|| serde_json::to_string_pretty(&campaign_file).unwrap_or_default());
    let resolved_variants = variants
        .iter()
        .filter_map(|name| {
            serde_json::from_value(json!({"name": name}))
                .ok()
                .map(|variant| ResolvedVariant {
                    file: format!("{}#variant/{name}", db.file_name),
                    variant,
                })
        })
        .collect();

    let mut builder = Builder {
        campaign_id: &campaign_id,
        producer,
        events: Vec::new(),
    };
    builder.push(
        None,
        0,
        published_at,
        CampaignPublished {
            name: campaign.name.clone(),
            file_name: format!("{}#campaign/{}", db.file_name, campaign.id),
            file_text,
            campaign: campaign_file,
            variants: resolved_variants,
            seed: legacy_seed(&campaign_id, SubjectKind::Etcd, usize::MAX, 0),
            n_trials: specs.len() as u32,
            n_baseline_trials: n_baseline,
        },
    );
    let mut by_status: BTreeMap<String, u32> = BTreeMap::new();
    let mut last_end = published_at;
    for (trial, spec) in ready.iter().zip(specs) {
        let status = trial_events(&mut builder, db, trial, spec, problems);
        *by_status
            .entry(
                serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            )
            .or_insert(0) += 1;
        last_end = last_end.max(trial.ended_at);
    }
    let n_trials = ready.len() as u32;
    builder.push(
        None,
        1,
        last_end,
        CampaignFinished {
            n_trials,
            by_status,
        },
    );
    PlannedCampaign {
        legacy_id: campaign.id.clone(),
        campaign_id: campaign_id.clone(),
        name: campaign.name.clone(),
        n_trials,
        events: builder.events,
    }
}

/// A trial seed shared by the variants (and baseline) of one subject, chaos entry and repetition,
/// so that they pair in comparisons as trials of new campaigns do.
fn legacy_seed(
    campaign_id: &str,
    subject: SubjectKind,
    chaos_index: usize,
    repetition: u32,
) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"eval legacy seed v1\0");
    hasher.update(campaign_id.as_bytes());
    hasher.update([0]);
    hasher.update(subject.as_str().as_bytes());
    hasher.update((chaos_index as u64).to_le_bytes());
    hasher.update(repetition.to_le_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

fn trial_events(
    builder: &mut Builder<'_>,
    db: &LegacyDb,
    trial: &ReadyTrial<'_>,
    spec: TrialSpec,
    problems: &mut Vec<String>,
) -> TrialStatus {
    let row = trial.row;
    let label = format!(
        "campaign {} trial {}",
        row.campaign_id,
        row.id.text().unwrap_or_default()
    );
    let trial_id = schemas::ids::trial_id(builder.campaign_id, spec.trial_index);
    let base = (u64::from(spec.trial_index) + 1) << 20;
    let mut n = 0u64;
    let mut push = |builder: &mut Builder<'_>, at: Timestamp, data: EventData| {
        n += 1;
        builder.push(Some(&trial_id), base | n, at, data);
    };
    let mut time = |name: &str, value: &Cell| match parse_time(value) {
        Ok(time) => time,
        Err(error) => {
            problems.push(format!("{label}: {name}: {error}; left out"));
            None
        }
    };
    let injected_at = time("chaos_injected_at", &row.chaos_injected_at);
    let ticket_at = time("ticket_created_at", &row.ticket_created_at);
    let resolved_at = time("resolved_at", &row.resolved_at);
    let operator_db = format!("legacy:{}", db.file_name);
    let ticket_id = match &row.id {
        Cell::Integer(id) => *id,
        other => {
            let digest = Sha256::digest(other.text().unwrap_or_default().as_bytes());
            i64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) & i64::MAX
        }
    };
    let baseline = spec.baseline;
    let chaos_type = spec.chaos.chaos_type();

    push(
        builder,
        trial.started_at,
        TrialRequested {
            trial: spec.clone(),
            parallel: 1,
        }
        .into(),
    );
    push(
        builder,
        trial.started_at,
        TrialStarted {
            worker: "legacy-import".to_string(),
            attempt: 1,
        }
        .into(),
    );
    if let Some(state) = parse_json(row.initial_state.as_deref()) {
        push(
            builder,
            trial.started_at,
            StateCaptured {
                phase: CapturePhase::Initial,
                healthy: state_health(&state).unwrap_or(true),
                state,
                watch_health: None,
            }
            .into(),
        );
    }
    if let Some(at) = injected_at {
        push(
            builder,
            at,
            ChaosInjected {
                worker: "legacy-import".to_string(),
                chaos: spec.chaos.clone(),
                target: trial.metadata.as_ref().and_then(|m| {
                    ["target", "node", "target_node"]
                        .iter()
                        .find_map(|key| m.get(*key))
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                }),
                cleanup: trial.metadata.clone().unwrap_or(Value::Null),
                operator_db: None,
            }
            .into(),
        );
    }
    let ticket = if baseline { None } else { ticket_at };
    if let Some(at) = ticket {
        push(
            builder,
            at,
            TicketOpened {
                operator_db: operator_db.clone(),
                ticket_id,
                subject: None,
                violation_key: None,
                invariant_name: None,
                store_id: None,
                severity: None,
                message: Some(format!("imported from legacy {}", db.file_name)),
                first_seen_at: at,
            }
            .into(),
        );
    }
    if let Some(text) = row.commands.as_deref() {
        match legacy_commands(text) {
            Ok(commands) => {
                let fallback = ticket.or(injected_at).unwrap_or(trial.started_at);
                for (index, command) in commands.into_iter().enumerate() {
                    let at = command.timestamp.unwrap_or(fallback);
                    push(
                        builder,
                        at,
                        AgentLogRecorded {
                            operator_db: operator_db.clone(),
                            session_id: format!("legacy-{ticket_id}"),
                            entry_id: index as i64 + 1,
                            entry_type: AgentLogEntryType::ToolCall,
                            content: command.output,
                            tool_name: Some(command.tool),
                            tool_params: Some(command.params),
                            tool_params_raw: None,
                            exit_code: command.exit_code,
                            timestamp: at,
                        }
                        .into(),
                    );
                }
            }
            Err(error) => problems.push(format!("{label}: {error}; commands left out")),
        }
    }
    match (baseline, resolved_at) {
        (false, Some(at)) if ticket.is_some() => push(
            builder,
            at,
            TicketResolved {
                operator_db: operator_db.clone(),
                ticket_id,
                resolved_at: at,
            }
            .into(),
        ),
        (false, Some(_)) => problems.push(format!(
            "{label}: resolved_at without ticket_created_at; the resolution is left out"
        )),
        (true, Some(at)) => push(
            builder,
            at,
            SubjectHealthy {
                after_ms: injected_at
                    .map(|injected| {
                        ((at.unix_micros() - injected.unix_micros()) / 1000).max(0) as u64
                    })
                    .unwrap_or(0),
            }
            .into(),
        ),
        _ => {}
    }
    let status = status_of(row.outcome.as_deref(), resolved_at.is_some());
    let final_state = parse_json(row.final_state.as_deref());
    let final_healthy = final_state
        .as_ref()
        .and_then(state_health)
        .unwrap_or(status == TrialStatus::Succeeded);
    push(
        builder,
        trial.ended_at,
        StateCaptured {
            phase: CapturePhase::Final,
            healthy: final_healthy,
            state: final_state.unwrap_or(Value::Null),
            watch_health: None,
        }
        .into(),
    );
    if injected_at.is_some() {
        push(
            builder,
            trial.ended_at,
            ChaosCleanedUp {
                chaos_type,
                duration_ms: 0,
            }
            .into(),
        );
    }
    push(
        builder,
        trial.ended_at,
        TrialFinished {
            status,
            reason: Some(match &row.outcome {
                Some(outcome) => format!(
                    "imported from legacy {} (outcome {outcome:?})",
                    db.file_name
                ),
                None => format!("imported from legacy {}", db.file_name),
            }),
        }
        .into(),
    );
    status
}

/// One legacy campaign as imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedCampaign {
    /// Its `id` in the legacy `campaigns` table.
    pub legacy_id: String,
    /// Its id in the log.
    pub campaign_id: String,
    pub name: String,
    pub n_trials: u32,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    pub campaigns: Vec<ImportedCampaign>,
    pub n_events: u64,
    /// Events the stream already held (an earlier import), not sent again.
    pub already_stored: u64,
    pub summary: PublishSummary,
    /// Trials and values left out, each with why.
    pub problems: Vec<String>,
}

/// Imports a legacy `eval.db` into the log: reads it, turns it into events, and publishes those
/// the stream does not hold yet.
pub async fn import(log: &EventLog, path: &Path) -> Result<ImportReport> {
    let db = read_legacy(path)?;
    let planned = plan(&db, &Producer::here("import"));
    log.ensure_stream().await?;
    let mut report = ImportReport {
        campaigns: Vec::new(),
        n_events: 0,
        already_stored: 0,
        summary: PublishSummary::default(),
        problems: planned.problems,
    };
    for campaign in planned.campaigns {
        report.campaigns.push(ImportedCampaign {
            legacy_id: campaign.legacy_id.clone(),
            campaign_id: campaign.campaign_id.clone(),
            name: campaign.name.clone(),
            n_trials: campaign.n_trials,
        });
        report.n_events += campaign.events.len() as u64;
        let existing = stored_ids(log, &campaign.campaign_id).await?;
        let (already, missing): (Vec<Event>, Vec<Event>) = campaign
            .events
            .into_iter()
            .partition(|event| existing.contains(&event.id));
        report.already_stored += already.len() as u64;
        let summary = log.publish_all(missing, 256, |_| {}).await?;
        report.summary.stored += summary.stored;
        report.summary.duplicates += summary.duplicates;
    }
    Ok(report)
}

/// The ids of the events the stream holds for a campaign.
async fn stored_ids(log: &EventLog, campaign_id: &str) -> Result<HashSet<Uuid>> {
    let filter = EventFilter {
        campaign_id: Some(campaign_id.to_string()),
        ..EventFilter::default()
    };
    let mut stored = std::pin::pin!(log.read(&filter, false).await?);
    let mut ids = HashSet::new();
    while let Some(next) = stored.next().await {
        if let Ok(event) = next?.event {
            ids.insert(event.id);
        }
    }
    Ok(ids)
}
