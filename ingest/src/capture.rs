//! The operator.db capture: follows one trial's operator.db (DESIGN.md, "operator.db contract") and
//! publishes what the operator did as events: `TicketOpened` for the trial's ticket,
//! `AgentSessionStarted` per session on it, one `AgentLogRecorded` per `agent_log_entries` row of
//! those sessions, and `TicketResolved`.
//!
//! # Which ticket
//!
//! The trial's ticket is the first (lowest id) whose `first_seen_at` is at or after the injection
//! (minus [`INJECTION_SLACK`], for clocks read at different moments) and whose `subject_context`
//! names the trial's subject or no subject at all.
//!
//! # Ids, cursors and restarts
//!
//! Every event id derives from the campaign, the trial, the database's identity (a hash of its
//! canonical path), the table and the row id, so a second capture of the same rows publishes only
//! duplicates, which JetStream drops within its duplicate window. Beyond that window, [`follow`]
//! seeds its [`Cursor`] from the trial's capture events already in the log, so nothing is sent
//! twice. Each batch is published before the cursor moves past it.
//!
//! # Reading while the operator writes
//!
//! Each poll opens the file read-only with a busy timeout and reads in one transaction (one
//! snapshot, WAL or rollback journal). The harness's only write is the trial's variant into its
//! ticket's `variant_*` columns, once, on a separate short read-write connection after the read
//! transaction ended (so a rollback-journal operator is never blocked by our shared lock).
//!
//! # Time zones
//!
//! A time without a zone is read in the operator's zone: `UTC`, a fixed offset (`+02:00`,
//! `-0530`, `UTC+2`), or an IANA name read from the system's TZif files (`/usr/share/zoneinfo`,
//! or `$TZDIR`).
//!
//! [`poll`] is the edge that reads SQLite; [`follow`] adds the waiting, the log and the loop;
//! [`stage`] runs `follow` for every trial with an operator, as the worker injects its fault.

pub mod stage;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use futures::StreamExt;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, params};
use schemas::campaign::{SubjectKind, VariantFile};
use schemas::event::{
    AgentLogEntryType, AgentLogRecorded, AgentSessionStarted, Event, EventData, Producer,
    TicketOpened, TicketResolved, Timestamp,
};
use schemas::log::{EventFilter, EventLog};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// How often [`follow`] reads the file.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a read waits for the operator's write lock before giving up for this poll.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// A ticket first seen this long before the injection still counts as the trial's.
pub const INJECTION_SLACK: Duration = Duration::from_millis(500);
/// Publishes awaiting their acknowledgement at once.
const IN_FLIGHT: usize = 256;

const TICKET_COLUMNS: &[&str] = &[
    "id",
    "violation_key",
    "invariant_name",
    "store_id",
    "status",
    "first_seen_at",
    "resolved_at",
    "message",
    "severity",
    "subject_context",
    "created_at",
    "updated_at",
];
const VARIANT_COLUMNS: &[&str] = &[
    "variant_model",
    "variant_system_prompt",
    "variant_tools_config",
];
const SESSION_COLUMNS: &[&str] = &["id", "session_id", "ticket_id", "started_at", "created_at"];
const ENTRY_COLUMNS: &[&str] = &[
    "id",
    "session_id",
    "entry_type",
    "content",
    "tool_name",
    "tool_params",
    "exit_code",
    "timestamp",
    "created_at",
];

/// One trial's operator.db and what the capture needs to know about the trial.
#[derive(Debug, Clone)]
pub struct CaptureTarget {
    pub campaign_id: String,
    pub trial_id: String,
    pub operator_db: PathBuf,
    pub subject: SubjectKind,
    pub injected_at: Timestamp,
    /// How zone-less times are read: `UTC`, a fixed offset like `+02:00`, or an IANA name.
    pub operator_timezone: String,
    /// Written into the trial's ticket when it appears; `None` for baselines.
    pub variant: Option<VariantFile>,
}

/// How far a capture has read one operator.db.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Ticket rows up to this id were looked at and are not the trial's.
    pub last_ticket_row: i64,
    /// The trial's ticket, once found (its `TicketOpened` is then published).
    pub ticket_id: Option<i64>,
    /// The variant is in the ticket's `variant_*` columns.
    pub variant_written: bool,
    /// `session_id`s of the ticket's sessions already published.
    pub sessions: BTreeSet<String>,
    /// `agent_log_entries` rows up to this id are published.
    pub last_entry_row: i64,
    /// The ticket's `TicketResolved` is published.
    pub resolved: bool,
}

/// What a [`follow`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureReport {
    pub operator_db: PathBuf,
    /// The trial's ticket, when one appeared.
    pub ticket_id: Option<i64>,
    pub resolved: bool,
    /// Capture events of this trial the log held when the capture started (not sent again).
    pub n_already_in_log: u64,
    /// Events stored by this capture.
    pub n_published: u64,
    /// Events the stream already had (same id), dropped.
    pub n_duplicates: u64,
    /// Log entries whose `tool_params` were not valid JSON (kept raw).
    pub n_malformed_tool_params: u64,
    pub n_polls: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("operator.db {} did not appear within {}s", path.display(), waited.as_secs_f64())]
    MissingFile { path: PathBuf, waited: Duration },
    #[error("{} has no table {table:?} (see the operator.db contract)", path.display())]
    MissingTable { path: PathBuf, table: String },
    #[error("{}: table {table} has no column {column:?} (see the operator.db contract)", path.display())]
    MissingColumn {
        path: PathBuf,
        table: String,
        column: String,
    },
    #[error("{} is corrupt or not an sqlite database ({reason}); the events already published stay in the log", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: {table} row {row}, column {column}: {reason}", path.display())]
    BadValue {
        path: PathBuf,
        table: String,
        row: i64,
        column: String,
        reason: String,
    },
    #[error("operator time zone {zone:?} is not supported: {reason}")]
    Timezone { zone: String, reason: String },
    #[error("{} is locked by the operator ({reason})", path.display())]
    Busy { path: PathBuf, reason: String },
    #[error("reading {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("writing the variant into ticket {ticket_id} of {}: {reason}", path.display())]
    VariantWrite {
        path: PathBuf,
        ticket_id: i64,
        reason: String,
    },
    #[error("trial {trial_id} of campaign {campaign_id}: {reason}")]
    Trial {
        campaign_id: String,
        trial_id: String,
        reason: String,
    },
    #[error("consumer {consumer}: {reason}")]
    Consumer { consumer: String, reason: String },
    #[error(transparent)]
    Log(#[from] schemas::log::Error),
}

pub type Result<T, E = CaptureError> = std::result::Result<T, E>;

/// A stable identity of the database file: 16 hex digits of the SHA-256 of its canonical path.
/// Together with the trial id in every event id, it keeps rows of two files (or of one file
/// shared by two trials) apart, while a restarted capture of the same file finds the same ids.
pub fn db_identity(path: &Path) -> Result<String> {
    let canonical = path.canonicalize().map_err(|error| CaptureError::Read {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    let hash = Sha256::digest(canonical.to_string_lossy().as_bytes());
    Ok(hash[..8].iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The id of the capture event for `row` of `table` (`kind` tells events of one row apart).
pub fn capture_event_id(target: &CaptureTarget, identity: &str, key: &str) -> uuid::Uuid {
    schemas::ids::derived_event_id(
        &target.campaign_id,
        &format!("capture/{}/{identity}/{key}", target.trial_id),
        0,
    )
}

/// One pass: reads what is new since `cursor`, returns its events in order (ticket, sessions,
/// entries, resolution) and advances `cursor`. The only write is the variant into the trial's
/// ticket, once, when the ticket is first found.
pub fn poll(
    target: &CaptureTarget,
    cursor: &mut Cursor,
    producer: &Producer,
) -> Result<Vec<Event>> {
    let path = target.operator_db.as_path();
    let zone = OperatorZone::parse(&target.operator_timezone)?;
    if !path.is_file() {
        return Err(CaptureError::Read {
            path: path.to_path_buf(),
            reason: if path.exists() {
                "not a file".to_string()
            } else {
                "no such file".to_string()
            },
        });
    }
    let identity = db_identity(path)?;
    let sql_error = |error: rusqlite::Error| sqlite_error(path, error);
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(sql_error)?;
    check_schema(&connection, path, target.variant.is_some())?;

    let db_name = path.display().to_string();
    let make_event = |key: String, occurred_at: Timestamp, data: EventData| {
        let mut event = Event::new(producer, &target.campaign_id, Some(&target.trial_id), data)
            .with_id(capture_event_id(target, &identity, &key));
        // The row's own time, so that a re-capture produces the same event byte for byte.
        event.occurred_at = occurred_at;
        event
    };
    let mut events = Vec::new();

    if cursor.ticket_id.is_none() {
        let found = {
            let transaction = connection.unchecked_transaction().map_err(sql_error)?;
            let found = find_ticket(&transaction, target, &zone, cursor)?;
            transaction.finish().map_err(sql_error)?;
            found
        };
        if let Some(ticket) = found {
            if let Some(variant) = &target.variant {
                write_variant(path, ticket.id, variant)?;
            }
            cursor.variant_written = target.variant.is_some();
            cursor.ticket_id = Some(ticket.id);
            cursor.last_ticket_row = ticket.id;
            let first_seen_at = ticket.first_seen_at;
            events.push(make_event(
                format!("tickets/{}", ticket.id),
                first_seen_at,
                EventData::TicketOpened(TicketOpened {
                    operator_db: db_name.clone(),
                    ticket_id: ticket.id,
                    subject: ticket.subject,
                    violation_key: ticket.violation_key,
                    invariant_name: ticket.invariant_name,
                    store_id: ticket.store_id,
                    severity: ticket.severity,
                    message: ticket.message,
                    first_seen_at,
                }),
            ));
        }
    }
    let Some(ticket_id) = cursor.ticket_id else {
        return Ok(events);
    };

    let transaction = connection.unchecked_transaction().map_err(sql_error)?;
    // Sessions.
    let mut statement = transaction
        .prepare(
            "SELECT id, session_id, started_at, created_at FROM agent_sessions \
             WHERE ticket_id = ?1 ORDER BY id",
        )
        .map_err(sql_error)?;
    let mut rows = statement.query(params![ticket_id]).map_err(sql_error)?;
    let mut new_sessions = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        let row_id: i64 = row.get(0).map_err(sql_error)?;
        let session_id = text(row.get_ref(1).map_err(sql_error)?).unwrap_or_default();
        if cursor.sessions.contains(&session_id) {
            continue;
        }
        let started_at = row_time(
            path,
            &zone,
            "agent_sessions",
            row_id,
            [
                ("started_at", row.get_ref(2).map_err(sql_error)?),
                ("created_at", row.get_ref(3).map_err(sql_error)?),
            ],
        )?;
        new_sessions.push(session_id.clone());
        events.push(make_event(
            format!("agent_sessions/{row_id}"),
            started_at,
            EventData::AgentSessionStarted(AgentSessionStarted {
                operator_db: db_name.clone(),
                session_id,
                ticket_id: Some(ticket_id),
                started_at,
            }),
        ));
    }
    drop(rows);
    drop(statement);

    // Log entries of the ticket's sessions (by `session_id`, or by the session's row id for
    // operators that reference it that way).
    let mut statement = transaction
        .prepare(
            "SELECT id, session_id, entry_type, content, tool_name, tool_params, exit_code, \
                    timestamp, created_at \
             FROM agent_log_entries \
             WHERE id > ?1 AND (session_id IN (SELECT session_id FROM agent_sessions WHERE ticket_id = ?2) \
                                OR CAST(session_id AS TEXT) IN (SELECT CAST(id AS TEXT) FROM agent_sessions WHERE ticket_id = ?2)) \
             ORDER BY id",
        )
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![cursor.last_entry_row, ticket_id])
        .map_err(sql_error)?;
    let mut last_entry_row = cursor.last_entry_row;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let row_id: i64 = row.get(0).map_err(sql_error)?;
        let at = |index: usize| row.get_ref(index).map_err(sql_error);
        let bad = |column: &str, reason: String| CaptureError::BadValue {
            path: path.to_path_buf(),
            table: "agent_log_entries".to_string(),
            row: row_id,
            column: column.to_string(),
            reason,
        };
        let entry_type_text = text(at(2)?).unwrap_or_default();
        let entry_type = match entry_type_text.to_ascii_lowercase().as_str() {
            "reasoning" => AgentLogEntryType::Reasoning,
            "tool_call" => AgentLogEntryType::ToolCall,
            "tool_result" => AgentLogEntryType::ToolResult,
            _ => {
                return Err(bad(
                    "entry_type",
                    format!(
                        "unknown entry type {entry_type_text:?} (expected reasoning, tool_call or tool_result)"
                    ),
                ));
            }
        };
        let (tool_params, tool_params_raw) = match text(at(5)?) {
            None => (None, None),
            Some(raw) => match serde_json::from_str::<serde_json::Value>(&raw) {
                Ok(value) => (Some(value), None),
                Err(_) => (None, Some(raw)),
            },
        };
        let exit_code = match at(6)? {
            ValueRef::Integer(code) => Some(code),
            ValueRef::Real(code) => Some(code as i64),
            other => match text(other) {
                None => None,
                Some(code) => Some(
                    code.trim()
                        .parse::<i64>()
                        .map_err(|_| bad("exit_code", format!("not an integer: {code:?}")))?,
                ),
            },
        };
        let timestamp = row_time(
            path,
            &zone,
            "agent_log_entries",
            row_id,
            [("timestamp", at(7)?), ("created_at", at(8)?)],
        )?;
        last_entry_row = row_id;
        events.push(make_event(
            format!("agent_log_entries/{row_id}"),
            timestamp,
            EventData::AgentLogRecorded(AgentLogRecorded {
                operator_db: db_name.clone(),
                session_id: text(at(1)?).unwrap_or_default(),
                entry_id: row_id,
                entry_type,
                content: raw_text(at(3)?),
                tool_name: text(at(4)?),
                tool_params,
                tool_params_raw,
                exit_code,
                timestamp,
            }),
        ));
    }
    drop(rows);
    drop(statement);

    // Resolution.
    let mut resolved_event = None;
    if !cursor.resolved {
        let mut statement = transaction
            .prepare("SELECT status, resolved_at, updated_at FROM tickets WHERE id = ?1")
            .map_err(sql_error)?;
        let mut rows = statement.query(params![ticket_id]).map_err(sql_error)?;
        if let Some(row) = rows.next().map_err(sql_error)? {
            let status = text(row.get_ref(0).map_err(sql_error)?).unwrap_or_default();
            if status.eq_ignore_ascii_case("resolved") {
                let resolved_at = row_time(
                    path,
                    &zone,
                    "tickets",
                    ticket_id,
                    [
                        ("resolved_at", row.get_ref(1).map_err(sql_error)?),
                        ("updated_at", row.get_ref(2).map_err(sql_error)?),
                    ],
                )?;
                resolved_event = Some(make_event(
                    format!("tickets/{ticket_id}/resolved"),
                    resolved_at,
                    EventData::TicketResolved(TicketResolved {
                        operator_db: db_name.clone(),
                        ticket_id,
                        resolved_at,
                    }),
                ));
            }
        }
    }
    transaction.finish().map_err(sql_error)?;

    cursor.sessions.extend(new_sessions);
    cursor.last_entry_row = last_entry_row;
    if let Some(event) = resolved_event {
        cursor.resolved = true;
        events.push(event);
    }
    Ok(events)
}

/// Follows `target` until `stop` is cancelled: waits up to `wait_for_file` for the file (and
/// for its tables, which an operator creates just after the file), polls every
/// [`POLL_INTERVAL`], publishes each batch before moving the cursor past it, and after `stop`
/// reads one last time so that rows written up to then are published.
pub async fn follow(
    log: &EventLog,
    target: CaptureTarget,
    wait_for_file: Duration,
    stop: CancellationToken,
) -> Result<CaptureReport> {
    let producer = Producer::here("capture");
    let deadline = tokio::time::Instant::now() + wait_for_file;
    let mut report = CaptureReport {
        operator_db: target.operator_db.clone(),
        ..CaptureReport::default()
    };
    OperatorZone::parse(&target.operator_timezone)?;
    while !target.operator_db.is_file() {
        if tokio::time::Instant::now() >= deadline {
            return Err(CaptureError::MissingFile {
                path: target.operator_db.clone(),
                waited: wait_for_file,
            });
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(report),
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
    let identity = db_identity(&target.operator_db)?;
    let (mut cursor, n_already_in_log) = seed_cursor(log, &target, &identity).await?;
    report.n_already_in_log = n_already_in_log;

    let target = std::sync::Arc::new(target);
    let mut schema_seen = false;
    loop {
        let stopping = stop.is_cancelled();
        let polled = {
            let reading = target.clone();
            let producer = producer.clone();
            let mut next = cursor.clone();
            tokio::task::spawn_blocking(move || {
                let events = poll(&reading, &mut next, &producer);
                events.map(|events| (events, next))
            })
            .await
            .map_err(|error| CaptureError::Read {
                path: target.operator_db.clone(),
                reason: format!("the reading task failed: {error}"),
            })?
        };
        report.n_polls += 1;
        match polled {
            Ok((events, next)) => {
                schema_seen = true;
                report.n_malformed_tool_params += events
                    .iter()
                    .filter(|event| {
                        matches!(&event.data, EventData::AgentLogRecorded(entry) if entry.tool_params_raw.is_some())
                    })
                    .count() as u64;
                if !events.is_empty() {
                    let summary = log.publish_all(events, IN_FLIGHT, |_| {}).await?;
                    report.n_published += summary.stored;
                    report.n_duplicates += summary.duplicates;
                }
                cursor = next;
            }
            Err(CaptureError::MissingTable { .. } | CaptureError::MissingColumn { .. })
                if !schema_seen && !stopping && tokio::time::Instant::now() < deadline => {}
            Err(CaptureError::Busy { path, reason }) if !stopping => {
                tracing::debug!(path = %path.display(), %reason, "operator.db busy, retrying");
            }
            Err(error) => return Err(error),
        }
        report.ticket_id = cursor.ticket_id;
        report.resolved = cursor.resolved;
        if stopping {
            return Ok(report);
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

/// The cursor that the trial's capture events already in the log imply, and how many there are.
pub async fn seed_cursor(
    log: &EventLog,
    target: &CaptureTarget,
    identity: &str,
) -> Result<(Cursor, u64)> {
    let filter = EventFilter {
        campaign_id: Some(target.campaign_id.clone()),
        trial_id: Some(target.trial_id.clone()),
        event_type: None,
    };
    let db_name = target.operator_db.display().to_string();
    let mut cursor = Cursor::default();
    let mut n_events = 0;
    let mut stored = std::pin::pin!(log.read(&filter, false).await?);
    while let Some(stored) = stored.next().await {
        let Ok(event) = stored?.event else { continue };
        // Only this file's events: a capture of another file for the same trial keeps its own.
        let ours = |key: String| event.id == capture_event_id(target, identity, &key);
        match &event.data {
            EventData::TicketOpened(ticket) if ours(format!("tickets/{}", ticket.ticket_id)) => {
                cursor.ticket_id = Some(ticket.ticket_id);
                cursor.last_ticket_row = cursor.last_ticket_row.max(ticket.ticket_id);
                cursor.variant_written = target.variant.is_some();
            }
            // A session's id derives from its row id, which the event does not carry: its file
            // name tells it apart instead.
            EventData::AgentSessionStarted(session) if session.operator_db == db_name => {
                cursor.sessions.insert(session.session_id.clone());
            }
            EventData::AgentLogRecorded(entry)
                if ours(format!("agent_log_entries/{}", entry.entry_id)) =>
            {
                cursor.last_entry_row = cursor.last_entry_row.max(entry.entry_id);
            }
            EventData::TicketResolved(resolved)
                if ours(format!("tickets/{}/resolved", resolved.ticket_id)) =>
            {
                cursor.resolved = true;
            }
            _ => continue,
        }
        n_events += 1;
    }
    Ok((cursor, n_events))
}

/// A ticket row that is the trial's.
struct FoundTicket {
    id: i64,
    subject: Option<String>,
    violation_key: Option<String>,
    invariant_name: Option<String>,
    store_id: Option<String>,
    severity: Option<String>,
    message: Option<String>,
    first_seen_at: Timestamp,
}

fn find_ticket(
    connection: &Connection,
    target: &CaptureTarget,
    zone: &OperatorZone,
    cursor: &mut Cursor,
) -> Result<Option<FoundTicket>> {
    let path = target.operator_db.as_path();
    let sql_error = |error: rusqlite::Error| sqlite_error(path, error);
    let earliest = target.injected_at.unix_micros() - INJECTION_SLACK.as_micros() as i64;
    let mut statement = connection
        .prepare(
            "SELECT id, subject_context, first_seen_at, created_at, violation_key, invariant_name, \
                    store_id, severity, message \
             FROM tickets WHERE id > ?1 ORDER BY id",
        )
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![cursor.last_ticket_row])
        .map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let id: i64 = row.get(0).map_err(sql_error)?;
        let at = |index: usize| row.get_ref(index).map_err(sql_error);
        let subject = match subject_of(text(at(1)?).as_deref(), target.subject) {
            SubjectMatch::Other => {
                cursor.last_ticket_row = id;
                continue;
            }
            SubjectMatch::Named(subject) => Some(subject),
            SubjectMatch::Unnamed => None,
        };
        let first_seen_at = row_time(
            path,
            zone,
            "tickets",
            id,
            [("first_seen_at", at(2)?), ("created_at", at(3)?)],
        )?;
        if first_seen_at.unix_micros() < earliest {
            cursor.last_ticket_row = id;
            continue;
        }
        return Ok(Some(FoundTicket {
            id,
            subject,
            violation_key: text(at(4)?),
            invariant_name: text(at(5)?),
            store_id: text(at(6)?),
            severity: text(at(7)?),
            message: raw_text(at(8)?),
            first_seen_at,
        }));
    }
    Ok(None)
}

enum SubjectMatch {
    /// The context names the trial's subject.
    Named(String),
    /// The context names no subject: the ticket may be the trial's.
    Unnamed,
    /// The context names another subject only.
    Other,
}

/// Which subject a ticket's `subject_context` names: its JSON `subject` field when there is one,
/// else any subject name in its text.
fn subject_of(context: Option<&str>, trial_subject: SubjectKind) -> SubjectMatch {
    let Some(context) = context else {
        return SubjectMatch::Unnamed;
    };
    let named = |name: &str| {
        let name = name.trim().to_ascii_lowercase();
        SubjectKind::ALL
            .into_iter()
            .filter(|kind| name.contains(kind.as_str()))
            .collect::<Vec<_>>()
    };
    let explicit = serde_json::from_str::<serde_json::Value>(context)
        .ok()
        .and_then(|value| {
            ["subject", "subject_kind", "system"]
                .iter()
                .find_map(|key| value.get(key)?.as_str().map(str::to_string))
        });
    let kinds = match explicit {
        Some(name) if !named(&name).is_empty() => named(&name),
        _ => named(context),
    };
    if kinds.is_empty() {
        SubjectMatch::Unnamed
    } else if kinds.contains(&trial_subject) {
        SubjectMatch::Named(trial_subject.as_str().to_string())
    } else {
        SubjectMatch::Other
    }
}

/// Writes the variant into the ticket, on a short read-write connection: the harness's only
/// write to operator.db.
fn write_variant(path: &Path, ticket_id: i64, variant: &VariantFile) -> Result<()> {
    let write_error = |error: rusqlite::Error| CaptureError::VariantWrite {
        path: path.to_path_buf(),
        ticket_id,
        reason: error.to_string(),
    };
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(write_error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(write_error)?;
    let tools_config = serde_json::Value::Object(variant.tools_config.clone()).to_string();
    connection
        .execute(
            "UPDATE tickets SET variant_model = ?1, variant_system_prompt = ?2, \
             variant_tools_config = ?3 WHERE id = ?4",
            params![
                variant.model,
                variant.system_prompt,
                tools_config,
                ticket_id
            ],
        )
        .map_err(write_error)?;
    Ok(())
}

/// Names the first missing table or column of the contract.
fn check_schema(connection: &Connection, path: &Path, with_variant: bool) -> Result<()> {
    let sql_error = |error: rusqlite::Error| sqlite_error(path, error);
    let ticket_columns: Vec<&str> = TICKET_COLUMNS
        .iter()
        .chain(if with_variant { VARIANT_COLUMNS } else { &[] })
        .copied()
        .collect();
    for (table, wanted) in [
        ("tickets", ticket_columns.as_slice()),
        ("agent_sessions", SESSION_COLUMNS),
        ("agent_log_entries", ENTRY_COLUMNS),
    ] {
        let columns: Vec<String> =
            crate::sqlite::table_columns(connection, table).map_err(sql_error)?;
        if columns.is_empty() {
            return Err(CaptureError::MissingTable {
                path: path.to_path_buf(),
                table: table.to_string(),
            });
        }
        if let Some(column) = wanted
            .iter()
            .find(|column| !columns.iter().any(|have| have.eq_ignore_ascii_case(column)))
        {
            return Err(CaptureError::MissingColumn {
                path: path.to_path_buf(),
                table: table.to_string(),
                column: column.to_string(),
            });
        }
    }
    Ok(())
}

fn sqlite_error(path: &Path, error: rusqlite::Error) -> CaptureError {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => CaptureError::Corrupt {
            path: path.to_path_buf(),
            reason: error.to_string(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => CaptureError::Busy {
            path: path.to_path_buf(),
            reason: error.to_string(),
        },
        _ => CaptureError::Read {
            path: path.to_path_buf(),
            reason: error.to_string(),
        },
    }
}

/// A cell as trimmed text; `None` for NULL or blank.
fn text(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_string())
        }
    }
}

/// A cell as written (content and messages keep their whitespace); `None` for NULL.
fn raw_text(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        other => text(other),
    }
}

/// The first readable time among `columns` (the row's own time, then its fallbacks).
fn row_time<const N: usize>(
    path: &Path,
    zone: &OperatorZone,
    table: &str,
    row: i64,
    columns: [(&str, ValueRef<'_>); N],
) -> Result<Timestamp> {
    let bad = |column: &str, reason: String| CaptureError::BadValue {
        path: path.to_path_buf(),
        table: table.to_string(),
        row,
        column: column.to_string(),
        reason,
    };
    for (column, value) in columns {
        match parse_operator_time(value, zone) {
            Ok(Some(time)) => return Ok(time),
            Ok(None) => continue,
            Err(reason) => return Err(bad(column, reason)),
        }
    }
    Err(bad(columns[0].0, "no time".to_string()))
}

/// Reads an operator time: ISO 8601 with a zone, or without one (read in `zone`), or Unix
/// seconds (milliseconds above 10^11). `Ok(None)` for NULL or blank.
pub fn parse_operator_time(
    value: ValueRef<'_>,
    zone: &OperatorZone,
) -> Result<Option<Timestamp>, String> {
    let from_seconds = |seconds: f64| {
        let micros = if seconds.abs() > 1e11 {
            seconds * 1_000.0
        } else {
            seconds * 1_000_000.0
        };
        Timestamp::from_unix_micros(micros.round() as i64)
            .ok_or_else(|| format!("time {seconds} is out of range"))
    };
    match value {
        ValueRef::Integer(n) => return from_seconds(n as f64).map(Some),
        ValueRef::Real(x) => return from_seconds(x).map(Some),
        _ => {}
    }
    let Some(text) = text(value) else {
        return Ok(None);
    };
    if let Ok(seconds) = text.parse::<f64>() {
        return from_seconds(seconds).map(Some);
    }
    let with_t = text.replacen(' ', "T", 1);
    let with_t = with_t
        .strip_suffix("UTC")
        .map(|rest| format!("{}Z", rest.trim_end()))
        .unwrap_or(with_t);
    if let Ok(instant) = DateTime::parse_from_rfc3339(&with_t) {
        return Ok(Some(Timestamp::from_datetime(instant.with_timezone(&Utc))));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(instant) = DateTime::parse_from_str(&with_t, format) {
            return Ok(Some(Timestamp::from_datetime(instant.with_timezone(&Utc))));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&with_t, format) {
            return Ok(Some(zone.to_utc(naive)));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(&with_t, "%Y-%m-%d") {
        return Ok(Some(zone.to_utc(date.and_time(chrono::NaiveTime::MIN))));
    }
    Err(format!("unreadable time {text:?}"))
}

/// The operator's time zone, for zone-less times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorZone {
    Fixed(FixedOffset),
    /// An IANA zone from a TZif file.
    Tzif(tzif::Zone),
}

impl OperatorZone {
    /// Coordinated Universal Time.
    pub fn utc() -> OperatorZone {
        OperatorZone::Fixed(FixedOffset::east_opt(0).expect("zero"))
    }

    /// `UTC`/`Z`/`GMT`, a fixed offset (`+02:00`, `-0530`, `+2`, `UTC+02:00`), or an IANA name
    /// found under `$TZDIR` or `/usr/share/zoneinfo`.
    pub fn parse(name: &str) -> Result<OperatorZone> {
        let unsupported = |reason: String| CaptureError::Timezone {
            zone: name.to_string(),
            reason,
        };
        let trimmed = name.trim();
        let upper = trimmed.to_ascii_uppercase();
        if matches!(
            upper.as_str(),
            "" | "UTC" | "Z" | "GMT" | "ETC/UTC" | "UTC0"
        ) {
            return Ok(OperatorZone::utc());
        }
        let offset_text = ["UTC", "GMT"]
            .iter()
            .find_map(|prefix| upper.strip_prefix(prefix))
            .unwrap_or(trimmed);
        if offset_text.starts_with(['+', '-']) {
            return parse_offset(offset_text)
                .map(OperatorZone::Fixed)
                .ok_or_else(|| {
                    unsupported("expected an offset like +02:00, -0530 or +2".to_string())
                });
        }
        if trimmed.contains("..")
            || trimmed.starts_with('/')
            || !trimmed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
        {
            return Err(unsupported("not a zone name".to_string()));
        }
        let dir = std::env::var_os("TZDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"));
        let file = dir.join(trimmed);
        let bytes = std::fs::read(&file).map_err(|error| {
            unsupported(format!(
                "no zone file {} ({error}); use UTC or a fixed offset like +02:00",
                file.display()
            ))
        })?;
        tzif::Zone::parse(&bytes)
            .map(OperatorZone::Tzif)
            .map_err(|reason| unsupported(format!("{}: {reason}", file.display())))
    }

    /// The instant of a local time; in a gap (clocks forward) the offset before the gap applies,
    /// in an overlap (clocks back) the earlier instant.
    pub fn to_utc(&self, local: NaiveDateTime) -> Timestamp {
        match self {
            OperatorZone::Fixed(offset) => {
                let instant = offset
                    .from_local_datetime(&local)
                    .single()
                    .map(|instant| instant.with_timezone(&Utc))
                    .unwrap_or_else(|| local.and_utc());
                Timestamp::from_datetime(instant)
            }
            OperatorZone::Tzif(zone) => {
                let local_seconds = local.and_utc().timestamp();
                let seconds = zone.local_to_utc(local_seconds);
                let micros =
                    seconds * 1_000_000 + i64::from(local.and_utc().timestamp_subsec_micros());
                Timestamp::from_unix_micros(micros)
                    .unwrap_or_else(|| Timestamp::from_datetime(local.and_utc()))
            }
        }
    }
}

fn parse_offset(text: &str) -> Option<FixedOffset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((hours, minutes)) => (hours, minutes),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if !(0..=14).contains(&hours) || !(0..60).contains(&minutes) {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// A reader of TZif files (RFC 8536), enough to turn local times into instants: the
/// transitions, and beyond the last one the footer's POSIX rule.
pub mod tzif {
    /// One zone's offsets over time.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Zone {
        /// Transition instants (Unix seconds), ascending, with the UTC offset from then on.
        transitions: Vec<(i64, i32)>,
        /// The offset before the first transition.
        initial_offset: i32,
        /// After the last transition, when the footer says.
        rule: Option<PosixRule>,
    }

    /// A POSIX TZ rule such as `CET-1CEST,M3.5.0,M10.5.0/3`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct PosixRule {
        std_offset: i32,
        dst: Option<(i32, RuleDate, i32, RuleDate, i32)>,
    }

    /// `Mm.w.d`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct RuleDate {
        month: u32,
        week: u32,
        weekday: u32,
    }

    impl Zone {
        pub fn parse(bytes: &[u8]) -> Result<Zone, String> {
            let header = |at: usize| -> Result<[usize; 6], String> {
                if bytes.get(at..at + 4) != Some(b"TZif") {
                    return Err("not a TZif file".to_string());
                }
                let mut counts = [0usize; 6];
                for (index, count) in counts.iter_mut().enumerate() {
                    let start = at + 20 + index * 4;
                    let field = bytes.get(start..start + 4).ok_or("truncated header")?;
                    *count = u32::from_be_bytes(field.try_into().expect("4 bytes")) as usize;
                }
                Ok(counts)
            };
            let [isut, isstd, leap, time, types, chars] = header(0)?;
            let version = *bytes.get(4).ok_or("truncated header")?;
            let v1_size = time * 5 + types * 6 + chars + leap * 8 + isstd + isut;
            let (start, time_size, counts) = if version >= b'2' {
                let second = 44 + v1_size;
                (second + 44, 8, header(second)?)
            } else {
                (44, 4, [isut, isstd, leap, time, types, chars])
            };
            let [isut, isstd, leap, time, types, chars] = counts;
            let take = |from: usize, len: usize| {
                bytes
                    .get(from..from + len)
                    .ok_or_else(|| "truncated data".to_string())
            };
            let times = take(start, time * time_size)?;
            let indices = take(start + time * time_size, time)?;
            let infos = take(start + time * (time_size + 1), types * 6)?;
            let offset_of = |index: usize| -> Result<i32, String> {
                let info = infos
                    .get(index * 6..index * 6 + 4)
                    .ok_or("bad type index")?;
                Ok(i32::from_be_bytes(info.try_into().expect("4 bytes")))
            };
            let mut transitions = Vec::with_capacity(time);
            for index in 0..time {
                let raw = &times[index * time_size..(index + 1) * time_size];
                let at = if time_size == 8 {
                    i64::from_be_bytes(raw.try_into().expect("8 bytes"))
                } else {
                    i64::from(i32::from_be_bytes(raw.try_into().expect("4 bytes")))
                };
                transitions.push((at, offset_of(usize::from(indices[index]))?));
            }
            let initial_offset = if types > 0 { offset_of(0)? } else { 0 };
            let data_end = start
                + time * (time_size + 1)
                + types * 6
                + chars
                + leap * (time_size + 4)
                + isstd
                + isut;
            let rule = if version >= b'2' {
                bytes
                    .get(data_end..)
                    .and_then(|footer| std::str::from_utf8(footer).ok())
                    .map(|footer| footer.trim_matches('\n'))
                    .filter(|footer| !footer.is_empty())
                    .map(PosixRule::parse)
                    .transpose()?
            } else {
                None
            };
            Ok(Zone {
                transitions,
                initial_offset,
                rule,
            })
        }

        /// The UTC offset at instant `utc` (Unix seconds).
        pub fn offset_at(&self, utc: i64) -> i32 {
            match self.transitions.partition_point(|(at, _)| *at <= utc) {
                0 => self.initial_offset,
                after if after == self.transitions.len() => match self.rule {
                    Some(rule) => rule.offset_at(utc),
                    None => self.transitions[after - 1].1,
                },
                after => self.transitions[after - 1].1,
            }
        }

        /// The instant (Unix seconds) of a local time given as seconds since the local epoch.
        pub fn local_to_utc(&self, local: i64) -> i64 {
            // Candidate offsets are those in effect a day either side; the earliest consistent
            // instant wins (an overlap's first occurrence). In a gap none is consistent, and
            // the offset before the gap applies.
            let before = self.offset_at(local - 86_400);
            let after = self.offset_at(local + 86_400);
            let mut candidates = [before, after];
            candidates.sort_unstable_by(|a, b| b.cmp(a));
            candidates
                .iter()
                .map(|offset| local - i64::from(*offset))
                .find(|utc| local - i64::from(self.offset_at(*utc)) == *utc)
                .unwrap_or(local - i64::from(before))
        }
    }

    impl PosixRule {
        fn parse(text: &str) -> Result<PosixRule, String> {
            let bad = || format!("unsupported TZ rule {text:?}");
            let mut rest = text;
            let name = |rest: &mut &str| -> Result<(), String> {
                if let Some(quoted) = rest.strip_prefix('<') {
                    let end = quoted.find('>').ok_or_else(bad)?;
                    *rest = &quoted[end + 1..];
                } else {
                    let end = rest
                        .find(|c: char| !c.is_ascii_alphabetic())
                        .unwrap_or(rest.len());
                    if end < 3 {
                        return Err(bad());
                    }
                    *rest = &rest[end..];
                }
                Ok(())
            };
            // POSIX offsets are west of Greenwich: `CET-1` is UTC+1.
            let offset = |rest: &mut &str| -> Result<i32, String> {
                let end = rest
                    .find(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | ':')))
                    .unwrap_or(rest.len());
                let seconds = hms(&rest[..end]).ok_or_else(bad)?;
                *rest = &rest[end..];
                Ok(seconds)
            };
            name(&mut rest)?;
            let std_offset = -offset(&mut rest)?;
            if rest.is_empty() {
                return Ok(PosixRule {
                    std_offset,
                    dst: None,
                });
            }
            name(&mut rest)?;
            let dst_offset = if rest.starts_with(',') {
                std_offset + 3600
            } else {
                -offset(&mut rest)?
            };
            let mut parts = rest.strip_prefix(',').ok_or_else(bad)?.split(',');
            let mut date = || -> Result<(RuleDate, i32), String> {
                let part = parts.next().ok_or_else(bad)?;
                let (date, time) = part.split_once('/').unwrap_or((part, "2"));
                let fields: Vec<u32> = date
                    .strip_prefix('M')
                    .ok_or_else(bad)?
                    .split('.')
                    .map(|field| field.parse().map_err(|_| bad()))
                    .collect::<Result<_, _>>()?;
                let [month, week, weekday] = fields[..] else {
                    return Err(bad());
                };
                Ok((
                    RuleDate {
                        month,
                        week,
                        weekday,
                    },
                    hms(time).ok_or_else(bad)?,
                ))
            };
            let (start, start_time) = date()?;
            let (end, end_time) = date()?;
            Ok(PosixRule {
                std_offset,
                dst: Some((dst_offset, start, start_time, end, end_time)),
            })
        }

        fn offset_at(self, utc: i64) -> i32 {
            let Some((dst_offset, start, start_time, end, end_time)) = self.dst else {
                return self.std_offset;
            };
            let year = chrono::DateTime::from_timestamp(utc, 0)
                .map(|instant| chrono::Datelike::year(&instant))
                .unwrap_or(1970);
            // Start is in standard time, end in daylight time (both local).
            let starts =
                start.local_seconds(year) + i64::from(start_time) - i64::from(self.std_offset);
            let ends = end.local_seconds(year) + i64::from(end_time) - i64::from(dst_offset);
            let in_dst = if starts < ends {
                utc >= starts && utc < ends
            } else {
                utc >= starts || utc < ends
            };
            if in_dst { dst_offset } else { self.std_offset }
        }
    }

    impl RuleDate {
        /// Local midnight of the date in `year`, in seconds since the local epoch.
        fn local_seconds(self, year: i32) -> i64 {
            use chrono::{Datelike, NaiveDate};
            let first = NaiveDate::from_ymd_opt(year, self.month, 1).unwrap_or_default();
            let shift = (self.weekday + 7 - first.weekday().num_days_from_sunday()) % 7;
            let mut day = 1 + shift + (self.week.clamp(1, 5) - 1) * 7;
            let days_in_month = (28..=31)
                .rev()
                .find(|day| NaiveDate::from_ymd_opt(year, self.month, *day).is_some())
                .unwrap_or(28);
            while day > days_in_month {
                day -= 7;
            }
            NaiveDate::from_ymd_opt(year, self.month, day)
                .unwrap_or(first)
                .and_hms_opt(0, 0, 0)
                .map(|midnight| midnight.and_utc().timestamp())
                .unwrap_or_default()
        }
    }

    /// `[+-]hh[:mm[:ss]]` as seconds.
    fn hms(text: &str) -> Option<i32> {
        let (sign, rest) = match text.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, text.strip_prefix('+').unwrap_or(text)),
        };
        let mut seconds = 0;
        for (index, part) in rest.split(':').enumerate() {
            if index > 2 {
                return None;
            }
            seconds += part.parse::<i32>().ok()? * [3600, 60, 1][index];
        }
        Some(sign * seconds)
    }
}
