//! The edge that reads an operator.db: [`poll`] turns what is new since a cursor into capture
//! events, [`final_rows`] reads the trial's ticket and sessions as last written; the contract's
//! tables and columns come from `schemas::operator_db`.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, params};
use schemas::campaign::{SubjectKind, VariantFile};
use schemas::event::{
    AgentLogEntryType, AgentLogRecorded, AgentSessionStarted, Event, EventData, OperatorRow,
    Producer, TicketOpened, TicketResolved, Timestamp,
};
use schemas::operator_db::{self, AGENT_LOG_ENTRIES, AGENT_SESSIONS, TICKETS};

use super::time::{OperatorZone, parse_operator_time};
use super::{
    BUSY_TIMEOUT, CaptureError, CaptureTarget, Cursor, INJECTION_SLACK, Result, capture_event_id,
    db_identity,
};

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
    let connection = open(path, OpenFlags::SQLITE_OPEN_READ_ONLY, sql_error)?;
    check_schema(&connection, path, target.variant.is_some())?;

    let db_name = path.display().to_string();
    let make_event = |key: String, occurred_at: Timestamp, data: EventData| {
        let mut event = Event::new(producer, &target.campaign_id, Some(&target.trial_id), data)
            .with_id(capture_event_id(target, &identity, &key));
        // The row's own time, so that a re-capture produces the same event byte for byte.
        event.occurred_at = occurred_at;
        // A row too large for one message is kept cut, with a marker, never retried forever.
        schemas::fit::fit(event, schemas::fit::MAX_CAPTURED_EVENT_BYTES).0
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
    // The columns the typed fields read, in this order, then the contract's others the file has.
    let mut entry_columns: Vec<String> = [
        "id",
        "session_id",
        "entry_type",
        "content",
        "tool_name",
        "tool_params",
        "exit_code",
        "timestamp",
        "created_at",
    ]
    .map(str::to_string)
    .to_vec();
    for name in present_columns(&transaction, path, &AGENT_LOG_ENTRIES)? {
        if !entry_columns.contains(&name) {
            entry_columns.push(name);
        }
    }
    let mut statement = transaction
        .prepare(&format!(
            "SELECT {} \
             FROM agent_log_entries \
             WHERE id > ?1 AND (session_id IN (SELECT session_id FROM agent_sessions WHERE ticket_id = ?2) \
                                OR CAST(session_id AS TEXT) IN (SELECT CAST(id AS TEXT) FROM agent_sessions WHERE ticket_id = ?2)) \
             ORDER BY id",
            quoted(&entry_columns)
        ))
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![cursor.last_entry_row, ticket_id])
        .map_err(sql_error)?;
    let mut last_entry_row = cursor.last_entry_row;
    let mut n_new_entries = 0;
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
        n_new_entries += 1;
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
                // `content` is the field above; the rest as written.
                row: Some(operator_row(row, &entry_columns, &["content"]).map_err(sql_error)?),
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
    cursor.n_entries += n_new_entries;
    cursor.last_entry_row = last_entry_row;
    if let Some(event) = resolved_event {
        cursor.resolved = true;
        events.push(event);
    }
    Ok(events)
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

/// Opens operator.db as the capture always does: a regular file only (a FIFO would block the
/// reader), never through a symbolic link, waiting for the operator's lock up to the busy timeout;
/// `mode` is read-only or read-write, SQLite's errors go through `error`.
fn open(
    path: &Path,
    mode: OpenFlags,
    error: impl Fn(rusqlite::Error) -> CaptureError,
) -> Result<Connection> {
    super::confine::regular_file(path)?;
    let connection = Connection::open_with_flags(
        path,
        mode | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(&error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(error)?;
    Ok(connection)
}

/// Writes the variant into the ticket, on a short read-write connection: the harness's only
/// write to operator.db.
fn write_variant(path: &Path, ticket_id: i64, variant: &VariantFile) -> Result<()> {
    let write_error = |error: rusqlite::Error| CaptureError::VariantWrite {
        path: path.to_path_buf(),
        ticket_id,
        reason: error.to_string(),
    };
    let connection = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE, write_error)?;
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

/// Names the first missing table or required column of the contract (and the variant's columns
/// when the harness must write them).
fn check_schema(connection: &Connection, path: &Path, with_variant: bool) -> Result<()> {
    let sql_error = |error: rusqlite::Error| sqlite_error(path, error);
    for table in operator_db::TABLES {
        let columns: Vec<String> =
            crate::sqlite::table_columns(connection, table.name).map_err(sql_error)?;
        if columns.is_empty() {
            return Err(CaptureError::MissingTable {
                path: path.to_path_buf(),
                table: table.name.to_string(),
            });
        }
        let variant = if with_variant && table.name == TICKETS.name {
            &operator_db::VARIANT_COLUMNS[..]
        } else {
            &[]
        };
        let wanted = table
            .columns
            .iter()
            .filter(|column| column.required)
            .map(|column| column.name)
            .chain(variant.iter().copied());
        if let Some(column) = wanted
            .into_iter()
            .find(|column| !columns.iter().any(|have| have.eq_ignore_ascii_case(column)))
        {
            return Err(CaptureError::MissingColumn {
                path: path.to_path_buf(),
                table: table.name.to_string(),
                column: column.to_string(),
            });
        }
    }
    Ok(())
}

/// The contract's columns of `table` that the file has, in the contract's order.
fn present_columns(
    connection: &Connection,
    path: &Path,
    table: &operator_db::Table,
) -> Result<Vec<String>> {
    let have = crate::sqlite::table_columns(connection, table.name)
        .map_err(|error| sqlite_error(path, error))?;
    Ok(table
        .column_names()
        .filter(|name| have.iter().any(|have| have.eq_ignore_ascii_case(name)))
        .map(str::to_string)
        .collect())
}

fn quoted(columns: &[String]) -> String {
    columns
        .iter()
        .map(|name| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The cells of `row` (selected as `columns`) as the operator wrote them, but `skip`.
fn operator_row(
    row: &rusqlite::Row<'_>,
    columns: &[String],
    skip: &[&str],
) -> rusqlite::Result<OperatorRow> {
    let mut cells = OperatorRow::new();
    for (index, name) in columns.iter().enumerate() {
        if skip.contains(&name.as_str()) {
            continue;
        }
        cells.insert(name.clone(), cell(row.get_ref(index)?));
    }
    Ok(cells)
}

/// A cell as written: numbers as numbers, text as text, NULL (and blobs, which the contract has
/// none of) as null.
fn cell(value: ValueRef<'_>) -> serde_json::Value {
    match value {
        ValueRef::Null | ValueRef::Blob(_) => serde_json::Value::Null,
        ValueRef::Integer(n) => n.into(),
        ValueRef::Real(x) => serde_json::Number::from_f64(x)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        ValueRef::Text(bytes) => String::from_utf8_lossy(bytes).into_owned().into(),
    }
}

/// The trial's ticket and its sessions as last written, every contract column the file has:
/// what `OperatorCaptureFinished` carries at the end of the trial. Read-only, in one snapshot.
pub fn final_rows(path: &Path, ticket_id: i64) -> Result<(Option<OperatorRow>, Vec<OperatorRow>)> {
    let sql_error = |error: rusqlite::Error| sqlite_error(path, error);
    let connection = open(path, OpenFlags::SQLITE_OPEN_READ_ONLY, sql_error)?;
    let transaction = connection.unchecked_transaction().map_err(sql_error)?;
    let read = |table: &operator_db::Table, key: &str| -> Result<Vec<OperatorRow>> {
        let columns = present_columns(&transaction, path, table)?;
        let mut statement = transaction
            .prepare(&format!(
                "SELECT {} FROM \"{}\" WHERE \"{key}\" = ?1 ORDER BY rowid",
                quoted(&columns),
                table.name
            ))
            .map_err(sql_error)?;
        let mut rows = statement.query(params![ticket_id]).map_err(sql_error)?;
        let mut read = Vec::new();
        while let Some(row) = rows.next().map_err(sql_error)? {
            read.push(operator_row(row, &columns, &[]).map_err(sql_error)?);
        }
        Ok(read)
    };
    let ticket = read(&TICKETS, "id")?.into_iter().next();
    let sessions = read(&AGENT_SESSIONS, "ticket_id")?;
    transaction.finish().map_err(sql_error)?;
    Ok((ticket, sessions))
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
pub(super) fn text(value: ValueRef<'_>) -> Option<String> {
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
