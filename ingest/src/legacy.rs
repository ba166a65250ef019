//! `evalctl import-legacy PATH/eval.db`: the seed harness's SQLite results become events in the log,
//! so that old trials sit beside new ones and are graded by the current scorer (the scoring stage
//! picks up their `TrialFinished`, or `evalctl rescore` replays them).
//!
//! # The file: the seed harness's `eval.db`
//!
//! The seed harness (the Python `eval/` package of `pikehouse/operator`, `runner/db.py`) writes two
//! tables. What is read, column by column (required columns must exist, else the import stops and
//! names every missing one; the others may be absent or NULL):
//!
//! `campaigns`: one row per campaign; subject, chaos, baseline and variant live here.
//! - `id` (required): the campaign's integer id.
//! - `subject_name` (required): `tikv` (the only subject the seed harness ran) or `etcd`; a campaign
//!   file's several subjects are joined by commas, and the first known one is taken (the trials do
//!   not say which they ran).
//! - `chaos_type` (required): `node_kill`, `latency`, `disk_pressure`, `network_partition` (also
//!   `process_pause`, `packet_loss` and the aliases `kill`, `delay`, `partition`, …); a campaign file's
//!   several types are joined by commas (`node_kill,latency`).
//! - `baseline`: 1 makes every trial of the campaign a baseline trial (no operator).
//! - `variant_name`: the operator variant of every non-baseline trial; NULL or absent (files older
//!   than the seed harness's migration) is `default`, as the seed harness reads it.
//! - `created_at`: the time of `CampaignPublished`, and part of the campaign's id.
//! - `trial_count`: only quoted in the imported campaign's description (trials that crashed in the
//!   seed harness were never written, so it can exceed the rows).
//!
//! `trials`: one row per finished trial.
//! - `id`, `campaign_id`, `started_at`, `chaos_injected_at`, `ended_at` (required).
//! - `ticket_created_at`, `resolved_at`: the operator's ticket (the seed harness sets both or
//!   neither); for a baseline trial, `resolved_at` is when the subject was healthy again.
//! - `initial_state`, `final_state`: JSON snapshots; health is the seed harness's rule (below).
//! - `chaos_metadata`: JSON of what was injected: `chaos_type` (which fault this trial ran, see
//!   below), `target_container` or `isolated_container` (the `ChaosInjected` target), and the
//!   parameters `min_ms`, `max_ms` (latency) and `fill_percent` (disk pressure).
//! - `commands_json`: a JSON list of `{tool_name, tool_params, exit_code, timestamp}`, where
//!   `tool_params` is itself a JSON *string* (`"{\"command\": \"pd-ctl store\", …}"`), parsed here
//!   (an object is accepted too; a string that is not JSON is kept raw).
//!
//! Not read: `sqlite_sequence`, the indexes, and any other table or column. Times are ISO 8601
//! (the seed harness writes `+00:00`; zone-less times are UTC, as the seed harness reads them), or
//! Unix seconds.
//!
//! # Which fault a trial ran
//!
//! The seed harness runs one fault per trial and records it in the trial's `chaos_metadata`
//! (`{"chaos_type": "node_kill", "target_container": …, "signal": "SIGKILL"}`). So a trial's fault is
//! its metadata's `chaos_type`; when the metadata names none (or an unknown one), the campaign's
//! first chaos type, noted among the problems when the campaign has several. The imported campaign
//! lists every chaos type of the row. Per-fault views (`analyze` groups, `compare-variants tikv
//! latency`) therefore see a `node_kill,latency` campaign's trials under the fault each one ran,
//! whereas the seed harness's own views treat `node_kill,latency` as one opaque chaos name (its
//! `compare-variants tikv latency` leaves such a campaign out entirely).
//!
//! # Grades: the seed harness's rules, reproduced by the current scorer
//!
//! Health (`analysis/scoring.py`): a TiKV state is healthy when it has stores and every store's
//! `state_name` is `Up`; another subject's when the JSON is a non-empty object; a state that is not
//! JSON is unhealthy. That health is written into both `StateCaptured` events. The seed harness's
//! outcome is success when `resolved_at` is set and the final state healthy, timeout when
//! `resolved_at` is unset and the final state unhealthy, failure otherwise; it becomes the
//! `TrialFinished` status. The seed harness grades without a deadline, so each trial's timeout is
//! set just past its own end (at least [`DEFAULT_TIMEOUT_SECONDS`], the seed harness's wait): then
//! the current scorer reaches the same outcome from the events (a resolution and a healthy final
//! capture is a success; an unresolved trial is a timeout exactly when the harness said so). Two
//! cases the seed harness never writes itself grade differently: an operator trial with
//! `resolved_at` but no ticket (no detection, so not a success), and a baseline trial without
//! `resolved_at` but healthy at the end (the current scorer counts the self-heal it sees at the
//! final capture; the seed harness calls it a failure).
//!
//! # The events
//!
//! Each legacy campaign becomes a campaign `legacy-<hash of the row's id, created_at, subject,
//! chaos type, baseline and variant>` with `CampaignPublished`, then per trial `TrialRequested`,
//! `TrialStarted`, `StateCaptured` (initial), `ChaosInjected`, `TicketOpened`, one
//! `AgentLogRecorded` per command, `TicketResolved` (or, for a baseline, `SubjectHealthy`),
//! `StateCaptured` (final), `ChaosCleanedUp`, `TrialFinished`, and last `CampaignFinished`. Every id
//! derives from the campaign id and the event's place, and events the stream already holds are
//! not sent again, so importing the same file twice adds nothing. A command without a time takes
//! the ticket's time (else the injection's).
//!
//! The SQLite reading ([`read_legacy`]) and the publishing ([`import`]) are the edges; turning rows
//! into events ([`plan`]) is pure.

use std::collections::{BTreeMap, HashMap, HashSet};
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
    ("campaigns", &["id", "subject_name", "chaos_type"]),
    (
        "trials",
        &[
            "id",
            "campaign_id",
            "started_at",
            "chaos_injected_at",
            "ended_at",
        ],
    ),
];

const OPTIONAL_CAMPAIGN_COLUMNS: &[&str] =
    &["baseline", "variant_name", "created_at", "trial_count"];
const OPTIONAL_TRIAL_COLUMNS: &[&str] = &[
    "ticket_created_at",
    "resolved_at",
    "initial_state",
    "final_state",
    "chaos_metadata",
    "commands_json",
];

/// The least timeout of an imported trial: the seed harness waits 300 s for a resolution (and for
/// a baseline's self-heal).
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 300;

/// The variant of a campaign whose `variant_name` is NULL or absent, as the seed harness reads it.
pub const DEFAULT_VARIANT: &str = "default";

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
    pub subject_name: String,
    pub chaos_type: String,
    pub baseline: bool,
    /// `variant_name`; `None` when NULL or absent.
    pub variant_name: Option<String>,
    pub created_at: Cell,
    pub trial_count: Option<String>,
}

/// One row of `trials`; absent optional columns read as NULL.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyTrial {
    pub id: Cell,
    pub campaign_id: String,
    pub started_at: Cell,
    pub chaos_injected_at: Cell,
    pub ticket_created_at: Cell,
    pub resolved_at: Cell,
    pub ended_at: Cell,
    pub initial_state: Option<String>,
    pub final_state: Option<String>,
    pub chaos_metadata: Option<String>,
    pub commands_json: Option<String>,
}

/// The rows of a legacy `eval.db`, each table in `id` order.
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

    let campaign_columns: Vec<&str> = REQUIRED_COLUMNS[0]
        .1
        .iter()
        .chain(OPTIONAL_CAMPAIGN_COLUMNS)
        .copied()
        .collect();
    let mut statement = connection
        .prepare(&select("campaigns", &campaign_columns))
        .map_err(read_error)?;
    let campaigns = statement
        .query_map([], |row| {
            let at = |index: usize| row.get_ref(index).map(cell);
            Ok(LegacyCampaign {
                id: at(0)?.text().unwrap_or_default(),
                subject_name: at(1)?.text().unwrap_or_default(),
                chaos_type: at(2)?.text().unwrap_or_default(),
                baseline: at(3)?.truthy(),
                variant_name: at(4)?.text(),
                created_at: at(5)?,
                trial_count: at(6)?.text(),
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(read_error)?;

    let trial_columns: Vec<&str> = REQUIRED_COLUMNS[1]
        .1
        .iter()
        .chain(OPTIONAL_TRIAL_COLUMNS)
        .copied()
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
                started_at: at(2)?,
                chaos_injected_at: at(3)?,
                ended_at: at(4)?,
                ticket_created_at: at(5)?,
                resolved_at: at(6)?,
                initial_state: at(7)?.text(),
                final_state: at(8)?.text(),
                chaos_metadata: at(9)?.text(),
                commands_json: at(10)?.text(),
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
/// (zone-less is UTC here, as the seed harness reads it), or Unix seconds (milliseconds when above
/// 10^11). `Ok(None)` for NULL or empty.
pub fn parse_time(value: &Cell) -> Result<Option<Timestamp>, String> {
    let value = match value {
        Cell::Null => ValueRef::Null,
        Cell::Integer(n) => ValueRef::Integer(*n),
        Cell::Real(x) => ValueRef::Real(*x),
        Cell::Text(text) => ValueRef::Text(text.as_bytes()),
    };
    crate::capture::parse_operator_time(value, &crate::capture::OperatorZone::utc())
}

/// The seed harness's health of a state snapshot (`is_final_state_healthy`): for TiKV, stores
/// exist and every one's `state_name` is `Up`; for another subject, a non-empty JSON value; text
/// that is not JSON (or no snapshot) is unhealthy.
pub fn seed_state_healthy(state: Option<&str>, subject: SubjectKind) -> bool {
    let Some(state) = state.and_then(|text| serde_json::from_str::<Value>(text).ok()) else {
        return false;
    };
    match subject {
        SubjectKind::Tikv => match state.get("stores").and_then(Value::as_array) {
            Some(stores) if !stores.is_empty() => stores
                .iter()
                .all(|store| store.get("state_name").and_then(Value::as_str) == Some("Up")),
            _ => false,
        },
        SubjectKind::Etcd => match &state {
            Value::Null | Value::Bool(false) => false,
            Value::Object(map) => !map.is_empty(),
            Value::Array(items) => !items.is_empty(),
            Value::String(text) => !text.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::Bool(true) => true,
        },
    }
}

/// The seed harness's outcome (`score_trial`): success when resolved and healthy at the end,
/// timeout when unresolved and unhealthy, failure otherwise.
pub fn seed_outcome(resolved: bool, final_healthy: bool) -> TrialStatus {
    match (resolved, final_healthy) {
        (true, true) => TrialStatus::Succeeded,
        (false, false) => TrialStatus::TimedOut,
        _ => TrialStatus::Failed,
    }
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
    /// Trials left out, and values that were dropped or guessed, each with why.
    pub problems: Vec<String>,
}

/// The campaign id of a legacy campaign: `legacy-` and 16 hex digits of a hash of its row (id,
/// creation time, subject, chaos type, baseline flag and variant), the same at every import.
pub fn legacy_campaign_id(campaign: &LegacyCampaign) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"eval legacy campaign v2\0");
    for part in [
        campaign.id.as_str(),
        &campaign.created_at.text().unwrap_or_default(),
        campaign.subject_name.as_str(),
        campaign.chaos_type.as_str(),
        if campaign.baseline { "1" } else { "0" },
        campaign.variant_name.as_deref().unwrap_or(DEFAULT_VARIANT),
    ] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("legacy-{hex}")
}

/// Our name of a seed harness chaos type (or one of its aliases).
fn chaos_name(chaos_type: &str) -> Option<&'static str> {
    Some(match chaos_type.trim().to_ascii_lowercase().as_str() {
        "kill" | "node_kill" | "process_kill" => "node_kill",
        "pause" | "process_pause" | "sigstop" => "process_pause",
        "delay" | "latency" | "network_latency" => "latency",
        "loss" | "packet_loss" => "packet_loss",
        "partition" | "network_partition" => "network_partition",
        "disk_full" | "disk" | "disk_pressure" => "disk_pressure",
        _ => return None,
    })
}

/// The fault `name` with the parameters the seed harness's `chaos_metadata` records for it (the
/// defaults when they are missing or out of range).
fn chaos_spec(name: &str, metadata: Option<&Value>) -> ChaosSpec {
    let keys: &[&str] = match name {
        "latency" => &["min_ms", "max_ms"],
        "disk_pressure" => &["fill_percent"],
        _ => &[],
    };
    let params: serde_json::Map<String, Value> = keys
        .iter()
        .filter_map(|key| {
            let value = metadata?.get(*key)?;
            value.is_u64().then(|| (key.to_string(), value.clone()))
        })
        .collect();
    serde_json::from_value(json!({"type": name, "params": params}))
        .or_else(|_| serde_json::from_value(json!({"type": name, "params": {}})))
        .expect("every fault has defaults")
}

fn subject_kind(subject: &str) -> Option<SubjectKind> {
    serde_json::from_value(Value::String(subject.trim().to_ascii_lowercase())).ok()
}

fn parse_json(text: Option<&str>) -> Option<Value> {
    let text = text?;
    Some(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())))
}

/// One command of `commands_json`.
struct LegacyCommand {
    tool: String,
    params: Option<Value>,
    params_raw: Option<String>,
    timestamp: Option<Timestamp>,
    exit_code: Option<i64>,
}

/// The commands of `commands_json`: objects `{tool_name, tool_params, exit_code, timestamp}` whose
/// `tool_params` is a JSON string (or an object); a bare string is a shell command line.
fn legacy_commands(text: &str) -> Result<Vec<LegacyCommand>, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|error| format!("commands_json is not JSON: {error}"))?;
    let Value::Array(items) = value else {
        return Err("commands_json is not a JSON list".to_string());
    };
    let mut commands = Vec::new();
    for item in items {
        match item {
            Value::String(line) => commands.push(LegacyCommand {
                tool: "shell".to_string(),
                params: Some(json!({"command": line})),
                params_raw: None,
                timestamp: None,
                exit_code: None,
            }),
            Value::Object(map) => {
                let (params, params_raw) = match map.get("tool_params") {
                    Some(Value::String(raw)) => match serde_json::from_str::<Value>(raw) {
                        Ok(params) => (Some(params), None),
                        Err(_) => (None, Some(raw.clone())),
                    },
                    Some(Value::Null) | None => (None, None),
                    Some(params) => (Some(params.clone()), None),
                };
                let timestamp = map.get("timestamp").and_then(|value| match value {
                    Value::String(text) => parse_time(&Cell::Text(text.clone())).ok().flatten(),
                    Value::Number(number) => number
                        .as_f64()
                        .and_then(|x| parse_time(&Cell::Real(x)).ok().flatten()),
                    _ => None,
                });
                commands.push(LegacyCommand {
                    tool: map
                        .get("tool_name")
                        .and_then(Value::as_str)
                        .unwrap_or("shell")
                        .to_string(),
                    params,
                    params_raw,
                    timestamp,
                    exit_code: map.get("exit_code").and_then(Value::as_i64),
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
    chaos: ChaosSpec,
    metadata: Option<Value>,
    started_at: Timestamp,
    ended_at: Timestamp,
    injected_at: Option<Timestamp>,
    timeout_seconds: u32,
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
    // Each campaign's trials, in the file's order, found once (not by a scan per campaign).
    let mut trials_of: HashMap<&str, Vec<&LegacyTrial>> = HashMap::new();
    for trial in &db.trials {
        trials_of
            .entry(trial.campaign_id.as_str())
            .or_default()
            .push(trial);
    }
    for campaign in &db.campaigns {
        let trials = trials_of
            .get(campaign.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(planned) = plan_campaign(db, campaign, trials, producer, &mut problems) {
            campaigns.push(planned);
        }
    }
    ImportPlan {
        campaigns,
        problems,
    }
}

fn plan_campaign(
    db: &LegacyDb,
    campaign: &LegacyCampaign,
    trials: &[&LegacyTrial],
    producer: &Producer,
    problems: &mut Vec<String>,
) -> Option<PlannedCampaign> {
    let campaign_label = format!("campaign {}", campaign.id);
    let listed = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::to_string)
            .collect()
    };
    let subject_names = listed(&campaign.subject_name);
    let Some(subject) = subject_names.iter().find_map(|name| subject_kind(name)) else {
        problems.push(format!(
            "{campaign_label}: unknown subject {:?}; its trials are skipped",
            campaign.subject_name
        ));
        return None;
    };
    if subject_names.len() > 1 {
        problems.push(format!(
            "{campaign_label}: several subjects {:?}; its trials are taken as {subject}",
            campaign.subject_name
        ));
    }
    let mut campaign_chaos: Vec<&'static str> = Vec::new();
    for name in listed(&campaign.chaos_type) {
        match chaos_name(&name) {
            Some(ours) if !campaign_chaos.contains(&ours) => campaign_chaos.push(ours),
            Some(_) => {}
            None => problems.push(format!(
                "{campaign_label}: unknown chaos type {name:?}; left out of the campaign"
            )),
        }
    }
    let Some(&first_chaos) = campaign_chaos.first() else {
        problems.push(format!(
            "{campaign_label}: no known chaos type in {:?}; its trials are skipped",
            campaign.chaos_type
        ));
        return None;
    };
    let campaign_id = legacy_campaign_id(campaign);
    let variant = (!campaign.baseline).then(|| {
        campaign
            .variant_name
            .clone()
            .unwrap_or_else(|| DEFAULT_VARIANT.to_string())
    });

    // Read each trial's required values; skip the ones that cannot be.
    let mut ready = Vec::new();
    for row in trials.iter().copied() {
        let label = format!(
            "{campaign_label} trial {}",
            row.id.text().unwrap_or_default()
        );
        let metadata = parse_json(row.chaos_metadata.as_deref());
        let named = metadata
            .as_ref()
            .and_then(|m| m.get("chaos_type"))
            .and_then(Value::as_str);
        let chaos = match named.and_then(chaos_name) {
            Some(name) => {
                if !campaign_chaos.contains(&name) {
                    problems.push(format!(
                        "{label}: its chaos_metadata names {name}, not among the campaign's {:?}; taken as {name}",
                        campaign.chaos_type
                    ));
                }
                name
            }
            None => {
                if campaign_chaos.len() > 1 {
                    problems.push(format!(
                        "{label}: its chaos_metadata names no known chaos type ({}); taken as the campaign's first, {first_chaos}",
                        named.map_or_else(|| "none".to_string(), |n| format!("{n:?}"))
                    ));
                }
                first_chaos
            }
        };
        let started_at = parse_time(&row.started_at);
        let ended_at = parse_time(&row.ended_at);
        let (Ok(Some(started_at)), Ok(Some(ended_at))) = (&started_at, &ended_at) else {
            let mut why = Vec::new();
            for (name, time) in [("started_at", &started_at), ("ended_at", &ended_at)] {
                match time {
                    Ok(Some(_)) => {}
                    Ok(None) => why.push(format!("no {name}")),
                    Err(error) => why.push(format!("{name}: {error}")),
                }
            }
            problems.push(format!("{label}: {}; skipped", why.join(", ")));
            continue;
        };
        let injected_at = match parse_time(&row.chaos_injected_at) {
            Ok(time) => time,
            Err(error) => {
                problems.push(format!(
                    "{label}: chaos_injected_at: {error}; left out (the trial grades as errored)"
                ));
                None
            }
        };
        // Past the trial's own end: the seed harness grades without a deadline.
        let ran_seconds = injected_at
            .map(|injected| (ended_at.unix_micros() - injected.unix_micros()).div_euclid(1_000_000))
            .unwrap_or(0);
        let timeout_seconds =
            u32::try_from(ran_seconds + 1).map_or(u32::MAX, |s| s.max(DEFAULT_TIMEOUT_SECONDS));
        ready.push(ReadyTrial {
            row,
            chaos: chaos_spec(chaos, metadata.as_ref()),
            metadata,
            started_at: *started_at,
            ended_at: *ended_at,
            injected_at,
            timeout_seconds,
        });
    }

    // The matrix of what ran: chaos entries in order of appearance, repetitions per entry.
    let mut chaos_entries: Vec<ChaosSpec> = Vec::new();
    let mut repetitions: BTreeMap<usize, u32> = BTreeMap::new();
    let mut specs = Vec::new();
    for (trial_index, trial) in ready.iter().enumerate() {
        let chaos_index = match chaos_entries.iter().position(|c| c == &trial.chaos) {
            Some(index) => index,
            None => {
                chaos_entries.push(trial.chaos.clone());
                chaos_entries.len() - 1
            }
        };
        let repetition = repetitions.entry(chaos_index).or_insert(0);
        specs.push(TrialSpec {
            trial_index: trial_index as u32,
            subject,
            subject_settings: SubjectSettings::default(),
            chaos_index: chaos_index as u32,
            chaos: trial.chaos.clone(),
            variant: variant.clone(),
            baseline: campaign.baseline,
            repetition: *repetition,
            seed: legacy_seed(&campaign_id, subject, chaos_index, *repetition),
            timeout_seconds: trial.timeout_seconds,
            cooldown_seconds: 0,
        });
        *repetition += 1;
    }
    // The campaign lists every chaos type of its row, those no trial ran with their defaults.
    let mut campaign_chaos_specs = chaos_entries.clone();
    for name in &campaign_chaos {
        if !chaos_entries
            .iter()
            .any(|c| c.chaos_type().as_str() == *name)
        {
            campaign_chaos_specs.push(chaos_spec(name, None));
        }
    }

    let first_start = ready.iter().map(|t| t.started_at).min();
    let published_at = parse_time(&campaign.created_at)
        .ok()
        .flatten()
        .or(first_start)
        .unwrap_or_else(|| Timestamp::from_unix_micros(0).expect("the epoch"));
    let timeout_seconds = ready
        .iter()
        .map(|t| t.timeout_seconds)
        .max()
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let name = format!(
        "{} #{}: {}/{} {}",
        db.file_name,
        campaign.id,
        campaign.subject_name,
        campaign.chaos_type,
        variant.as_deref().unwrap_or("baseline")
    );
    let campaign_file: CampaignFile = serde_json::from_value(json!({
        "name": name,
        "description": format!(
            "imported from the seed harness's {} (campaign {}: subject {:?}, chaos {:?}, baseline {}, variant {:?}, trial_count {})",
            db.file_name,
            campaign.id,
            campaign.subject_name,
            campaign.chaos_type,
            campaign.baseline,
            campaign.variant_name.as_deref().unwrap_or(DEFAULT_VARIANT),
            campaign.trial_count.as_deref().unwrap_or("unknown"),
        ),
        "subjects": [subject],
        "chaos_types": campaign_chaos_specs,
        "trials_per_combination": repetitions.values().copied().max().unwrap_or(1).max(1),
        "include_baseline": campaign.baseline,
        "variants": variant.as_ref().map(|v| vec![v.clone()]),
        "trial_timeout_seconds": timeout_seconds,
    }))
    .expect("a synthesized campaign is valid");
    let resolved_variants = variant
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
            name: name.clone(),
            file_name: format!("{}#campaign/{}", db.file_name, campaign.id),
            file_text: serde_json::to_string_pretty(&campaign_file).unwrap_or_default(),
            campaign: campaign_file,
            variants: resolved_variants,
            seed: legacy_seed(&campaign_id, subject, usize::MAX, 0),
            n_trials: specs.len() as u32,
            n_baseline_trials: if campaign.baseline {
                specs.len() as u32
            } else {
                0
            },
        },
    );
    let mut by_status: BTreeMap<String, u32> = BTreeMap::new();
    let mut last_end = published_at;
    for (trial, spec) in ready.iter().zip(specs) {
        let status = trial_events(&mut builder, db, trial, spec, problems);
        *by_status.entry(status.as_str().to_string()).or_insert(0) += 1;
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
    Some(PlannedCampaign {
        legacy_id: campaign.id.clone(),
        campaign_id: campaign_id.clone(),
        name,
        n_trials,
        events: builder.events,
    })
}

/// A trial seed shared by the trials of one subject, chaos entry and repetition of a campaign.
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
    let injected_at = trial.injected_at;
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
    let subject = spec.subject;
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
    if let Some(text) = row.initial_state.as_deref() {
        push(
            builder,
            trial.started_at,
            StateCaptured {
                phase: CapturePhase::Initial,
                healthy: seed_state_healthy(Some(text), subject),
                state: parse_json(Some(text)).unwrap_or(Value::Null),
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
                    ["target_container", "isolated_container", "target"]
                        .iter()
                        .find_map(|key| m.get(*key))
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                }),
                cleanup: trial.metadata.clone().unwrap_or(Value::Null).into(),
                operator_db: None,
                operator_host: None,
            }
            .into(),
        );
    }
    let ticket = if baseline {
        if ticket_at.is_some() {
            problems.push(format!(
                "{label}: a baseline trial's ticket_created_at is left out (no operator ran)"
            ));
        }
        None
    } else {
        ticket_at
    };
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
    if let Some(text) = row.commands_json.as_deref() {
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
                            content: None,
                            tool_name: Some(command.tool),
                            tool_params: command.params,
                            tool_params_raw: command.params_raw,
                            exit_code: command.exit_code,
                            timestamp: at,
                            row: None,
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
    let final_healthy = seed_state_healthy(row.final_state.as_deref(), subject);
    let status = seed_outcome(resolved_at.is_some(), final_healthy);
    push(
        builder,
        trial.ended_at,
        StateCaptured {
            phase: CapturePhase::Final,
            healthy: final_healthy,
            state: parse_json(row.final_state.as_deref()).unwrap_or(Value::Null),
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
            reason: Some(format!(
                "imported from legacy {}: the seed harness's outcome",
                db.file_name
            )),
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
    // Only the campaigns the log holds already (its subject index says which, without reading a
    // message: one listing, where asking campaign by campaign costs a request each) are read for
    // the events they have; everything missing goes out in one publish.
    let present: HashSet<String> = log.campaign_ids().await?.into_iter().collect();
    let mut missing = Vec::new();
    for campaign in planned.campaigns {
        report.campaigns.push(ImportedCampaign {
            legacy_id: campaign.legacy_id.clone(),
            campaign_id: campaign.campaign_id.clone(),
            name: campaign.name.clone(),
            n_trials: campaign.n_trials,
        });
        report.n_events += campaign.events.len() as u64;
        if !present.contains(&campaign.campaign_id) {
            missing.extend(campaign.events);
            continue;
        }
        let existing = stored_ids(log, &campaign.campaign_id).await?;
        let (already, new): (Vec<Event>, Vec<Event>) = campaign
            .events
            .into_iter()
            .partition(|event| existing.contains(&event.id));
        report.already_stored += already.len() as u64;
        missing.extend(new);
    }
    report.summary = log
        .publish_all(missing, schemas::log::DEFAULT_IN_FLIGHT, |_| {})
        .await?;
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
