//! A fake operator for the capture tests: operator.db files with exactly the contract's schema
//! (DESIGN.md, "operator.db contract"), and the rows an operator writes into them.

// Each test binary uses its own part of these.
#![allow(dead_code)]

use std::path::Path;

use rusqlite::{Connection, params};

/// The operator.db contract's tables, as the reference operator creates them.
pub fn schema() -> String {
    schemas::operator_db::ddl()
}

pub fn create_db(path: &Path, wal: bool) -> Connection {
    let db = Connection::open(path).unwrap();
    if wal {
        db.pragma_update(None, "journal_mode", "wal").unwrap();
    }
    db.execute_batch(&schema()).unwrap();
    db
}

pub fn ticket(db: &Connection, first_seen_at: &str, subject_context: Option<&str>) -> i64 {
    db.execute(
        "INSERT INTO tickets (violation_key, invariant_name, store_id, status, first_seen_at, \
         last_seen_at, message, severity, subject_context, created_at, updated_at) \
         VALUES ('member_down:2', 'all_members_healthy', '2', 'open', ?1, ?1, \
                 'member 2 is down', 'critical', ?2, ?1, ?1)",
        params![first_seen_at, subject_context],
    )
    .unwrap();
    db.last_insert_rowid()
}

pub fn session(db: &Connection, session_id: &str, ticket_id: i64, started_at: &str) {
    db.execute(
        "INSERT INTO agent_sessions (session_id, ticket_id, started_at, created_at) VALUES (?1, ?2, ?3, ?3)",
        params![session_id, ticket_id, started_at],
    )
    .unwrap();
}

pub fn entry(
    db: &Connection,
    session_id: &str,
    entry_type: &str,
    content: &str,
    tool: Option<(&str, &str)>,
    exit_code: Option<i64>,
    timestamp: &str,
) {
    db.execute(
        "INSERT INTO agent_log_entries (session_id, entry_type, content, tool_name, tool_params, \
         exit_code, timestamp, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            session_id,
            entry_type,
            content,
            tool.map(|t| t.0),
            tool.map(|t| t.1),
            exit_code,
            timestamp
        ],
    )
    .unwrap();
}

pub fn resolve(db: &Connection, ticket_id: i64, resolved_at: &str) {
    db.execute(
        "UPDATE tickets SET status = 'resolved', resolved_at = ?2, updated_at = ?2 WHERE id = ?1",
        params![ticket_id, resolved_at],
    )
    .unwrap();
}

/// The operator.db of one trial: a ticket before the injection, one for another subject, the
/// trial's (with a session and entries of every type, one with malformed `tool_params`), a
/// later one, and a session of the other subject's ticket whose entries must not show.
pub fn prepared_db(path: &Path) -> Connection {
    let db = create_db(path, false);
    ticket(&db, "2026-03-01T09:59:00Z", Some(r#"{"subject": "etcd"}"#));
    let other = ticket(
        &db,
        "2026-03-01T10:00:03Z",
        Some(r#"{"subject": "tikv", "store": 1}"#),
    );
    let trial = ticket(
        &db,
        "2026-03-01T09:59:59.700Z",
        Some(r#"{"subject": "etcd", "member": "etcd-2"}"#),
    );
    ticket(&db, "2026-03-01T10:00:09Z", Some("etcd cluster"));
    session(&db, "s-other", other, "2026-03-01T10:00:04Z");
    session(&db, "s-trial", trial, "2026-03-01T10:00:05Z");
    entry(
        &db,
        "s-other",
        "reasoning",
        "tikv store 1 is slow",
        None,
        None,
        "2026-03-01T10:00:05Z",
    );
    entry(
        &db,
        "s-trial",
        "reasoning",
        "member etcd-2 is down\n",
        None,
        None,
        "2026-03-01T10:00:06Z",
    );
    entry(
        &db,
        "s-trial",
        "tool_call",
        "",
        Some((
            "shell",
            r#"{"command": "etcdctl endpoint status", "reasoning": "look"}"#,
        )),
        None,
        "2026-03-01T10:00:07Z",
    );
    entry(
        &db,
        "s-trial",
        "tool_result",
        "etcd-2: connection refused",
        None,
        Some(1),
        "2026-03-01T10:00:08Z",
    );
    entry(
        &db,
        "s-trial",
        "tool_call",
        "",
        Some(("shell", r#"{"command": "systemctl restart etcd"#)),
        None,
        "2026-03-01 10:00:09",
    );
    entry(
        &db,
        "s-trial",
        "tool_result",
        "",
        None,
        Some(0),
        "2026-03-01T10:00:10Z",
    );
    resolve(&db, trial, "2026-03-01T10:00:30Z");
    db
}

/// A ticket's id and its `variant_model`, `variant_system_prompt`, `variant_tools_config`.
pub type TicketVariant = (i64, Option<String>, Option<String>, Option<String>);

pub fn variants_of(db: &Connection) -> Vec<TicketVariant> {
    db.prepare("SELECT id, variant_model, variant_system_prompt, variant_tools_config FROM tickets ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}
