//! operator.db: exactly the contract's three tables (DESIGN.md, "operator.db contract"), WAL mode,
//! one connection behind a mutex for the monitor and the agent, timestamps in UTC with `Z`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Error, Result};

/// Now, as ISO 8601 UTC with microseconds and `Z`.
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A violation as the monitor saw it, to open or refresh a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketReport {
    pub violation_key: String,
    pub invariant_name: String,
    pub store_id: String,
    pub severity: String,
    pub message: String,
    pub metric_snapshot: serde_json::Value,
    pub subject_context: serde_json::Value,
}

/// What the agent reads of a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub id: i64,
    pub violation_key: String,
    pub invariant_name: String,
    pub store_id: Option<String>,
    pub status: String,
    pub message: Option<String>,
    pub variant_model: Option<String>,
    pub variant_tools_config: Option<String>,
}

/// One `agent_log_entries` row.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEntry<'a> {
    Reasoning(&'a str),
    ToolCall {
        command: &'a str,
        reasoning: &'a str,
    },
    ToolResult {
        output: &'a str,
        exit_code: i32,
    },
}

#[derive(Clone)]
pub struct OperatorDb {
    path: PathBuf,
    connection: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for OperatorDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorDb")
            .field("path", &self.path)
            .finish()
    }
}

impl OperatorDb {
    /// Opens (creating when missing) operator.db in WAL mode with the contract's tables.
    pub fn open(path: &Path) -> Result<OperatorDb> {
        let error = |source| Error::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::Database {
                path: path.to_path_buf(),
                reason: format!("creating {}: {e}", parent.display()),
            })?;
        }
        let connection = Connection::open(path).map_err(error)?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(error)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "operator.db is not in WAL mode");
        }
        connection
            .execute_batch(&schemas::operator_db::ddl())
            .map_err(error)?;
        Ok(OperatorDb {
            path: path.to_path_buf(),
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        // A panic elsewhere while holding the lock leaves the connection usable.
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&connection).map_err(|source| Error::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Opens a ticket for the violation, or refreshes the unresolved one it already has
    /// (`last_seen_at`, `occurrence_count`, the snapshot). Returns the ticket id and whether it
    /// is new.
    pub fn report(&self, report: &TicketReport) -> Result<(i64, bool)> {
        let now = now();
        self.with(|connection| {
            let existing: Option<i64> = connection
                .query_row(
                    "SELECT id FROM tickets WHERE violation_key = ?1 AND status != 'resolved' \
                     ORDER BY id DESC LIMIT 1",
                    params![report.violation_key],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(id) = existing {
                connection.execute(
                    "UPDATE tickets SET last_seen_at = ?1, occurrence_count = occurrence_count + 1, \
                     metric_snapshot = ?2, message = ?3, updated_at = ?1 WHERE id = ?4",
                    params![now, report.metric_snapshot.to_string(), report.message, id],
                )?;
                return Ok((id, false));
            }
            connection.execute(
                "INSERT INTO tickets (violation_key, invariant_name, store_id, status, held, \
                 occurrence_count, first_seen_at, last_seen_at, message, severity, \
                 metric_snapshot, subject_context, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'open', 0, 1, ?4, ?4, ?5, ?6, ?7, ?8, ?4, ?4)",
                params![
                    report.violation_key,
                    report.invariant_name,
                    report.store_id,
                    now,
                    report.message,
                    report.severity,
                    report.metric_snapshot.to_string(),
                    report.subject_context.to_string(),
                ],
            )?;
            Ok((connection.last_insert_rowid(), true))
        })
    }

    /// Unresolved tickets not held, oldest first.
    pub fn workable_tickets(&self) -> Result<Vec<Ticket>> {
        self.with(|connection| {
            let mut statement = connection.prepare(
                "SELECT id FROM tickets WHERE status != 'resolved' AND held = 0 ORDER BY id",
            )?;
            let ids = statement
                .query_map([], |row| row.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(ids)
        })?
        .into_iter()
        .filter_map(|id| self.ticket(id).transpose())
        .collect()
    }

    pub fn ticket(&self, id: i64) -> Result<Option<Ticket>> {
        self.with(|connection| {
            connection
                .query_row(
                    "SELECT id, violation_key, invariant_name, store_id, status, message, \
                     variant_model, variant_tools_config FROM tickets WHERE id = ?1",
                    params![id],
                    |row| {
                        Ok(Ticket {
                            id: row.get(0)?,
                            violation_key: row.get(1)?,
                            invariant_name: row.get(2)?,
                            store_id: row.get(3)?,
                            status: row.get(4)?,
                            message: row.get(5)?,
                            variant_model: row.get(6)?,
                            variant_tools_config: row.get(7)?,
                        })
                    },
                )
                .optional()
        })
    }

    pub fn set_ticket_status(&self, id: i64, status: &str) -> Result<()> {
        self.with(|connection| {
            connection.execute(
                "UPDATE tickets SET status = ?1, updated_at = ?2 WHERE id = ?3",
                params![status, now(), id],
            )?;
            Ok(())
        })
    }

    pub fn set_diagnosis(&self, id: i64, diagnosis: &str) -> Result<()> {
        self.with(|connection| {
            connection.execute(
                "UPDATE tickets SET status = 'diagnosed', diagnosis = ?1, updated_at = ?2 \
                 WHERE id = ?3",
                params![diagnosis, now(), id],
            )?;
            Ok(())
        })
    }

    pub fn resolve_ticket(&self, id: i64) -> Result<()> {
        let now = now();
        self.with(|connection| {
            connection.execute(
                "UPDATE tickets SET status = 'resolved', resolved_at = ?1, updated_at = ?1 \
                 WHERE id = ?2",
                params![now, id],
            )?;
            Ok(())
        })
    }

    /// Holds a ticket: the agent gave up on it (escalated or failed) and does not take it again.
    pub fn hold_ticket(&self, id: i64) -> Result<()> {
        self.with(|connection| {
            connection.execute(
                "UPDATE tickets SET held = 1, updated_at = ?1 WHERE id = ?2",
                params![now(), id],
            )?;
            Ok(())
        })
    }

    pub fn start_session(&self, session_id: &str, ticket_id: i64) -> Result<()> {
        let now = now();
        self.with(|connection| {
            connection.execute(
                "INSERT INTO agent_sessions (session_id, ticket_id, status, started_at, created_at) \
                 VALUES (?1, ?2, 'running', ?3, ?3)",
                params![session_id, ticket_id, now],
            )?;
            Ok(())
        })
    }

    pub fn end_session(&self, session_id: &str, status: &str, outcome_summary: &str) -> Result<()> {
        self.with(|connection| {
            connection.execute(
                "UPDATE agent_sessions SET status = ?1, ended_at = ?2, outcome_summary = ?3 \
                 WHERE session_id = ?4",
                params![status, now(), outcome_summary, session_id],
            )?;
            Ok(())
        })
    }

    pub fn log(&self, session_id: &str, entry: &LogEntry<'_>) -> Result<()> {
        let now = now();
        let (entry_type, content, tool_name, tool_params, exit_code) = match entry {
            LogEntry::Reasoning(text) => ("reasoning", Some(text.to_string()), None, None, None),
            LogEntry::ToolCall { command, reasoning } => (
                "tool_call",
                Some(command.to_string()),
                Some("shell"),
                Some(serde_json::json!({"command": command, "reasoning": reasoning}).to_string()),
                None,
            ),
            LogEntry::ToolResult { output, exit_code } => (
                "tool_result",
                Some(output.to_string()),
                Some("shell"),
                None,
                Some(*exit_code),
            ),
        };
        self.with(|connection| {
            connection.execute(
                "INSERT INTO agent_log_entries (session_id, entry_type, content, raw_content, \
                 tool_name, tool_params, exit_code, timestamp, created_at) \
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![
                    session_id,
                    entry_type,
                    content,
                    tool_name,
                    tool_params,
                    exit_code,
                    now
                ],
            )?;
            Ok(())
        })
    }
}
