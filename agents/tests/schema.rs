//! operator.db against the contract (DESIGN.md, "operator.db contract"), on a real SQLite file.

use agents::db::{LogEntry, OperatorDb, TicketReport};
use rusqlite::Connection;

/// `entry_type, tool_name, tool_params, exit_code`.
type LogRow = (String, Option<String>, Option<String>, Option<i64>);

fn columns(connection: &Connection, table: &str) -> Vec<(String, String, bool)> {
    let mut statement = connection
        .prepare(&format!("PRAGMA table_info({table})"))
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((row.get(1)?, row.get(2)?, row.get::<_, i64>(5)? == 1))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn names(columns: &[(String, String, bool)]) -> Vec<&str> {
    columns.iter().map(|(name, _, _)| name.as_str()).collect()
}

#[test]
fn schema_is_exactly_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/operator.db");
    OperatorDb::open(&path).unwrap();
    // Opening again (a restarted operator) keeps everything.
    OperatorDb::open(&path).unwrap();
    let connection = Connection::open(&path).unwrap();

    let mut tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.sort();
    assert_eq!(tables, ["agent_log_entries", "agent_sessions", "tickets"]);

    let tickets = columns(&connection, "tickets");
    assert_eq!(
        names(&tickets),
        [
            "id",
            "violation_key",
            "invariant_name",
            "store_id",
            "status",
            "held",
            "batch_key",
            "occurrence_count",
            "first_seen_at",
            "last_seen_at",
            "resolved_at",
            "message",
            "severity",
            "diagnosis",
            "metric_snapshot",
            "subject_context",
            "variant_model",
            "variant_system_prompt",
            "variant_tools_config",
            "created_at",
            "updated_at",
        ]
    );
    let sessions = columns(&connection, "agent_sessions");
    assert_eq!(
        names(&sessions),
        [
            "id",
            "session_id",
            "ticket_id",
            "status",
            "started_at",
            "ended_at",
            "outcome_summary",
            "created_at"
        ]
    );
    let entries = columns(&connection, "agent_log_entries");
    assert_eq!(
        names(&entries),
        [
            "id",
            "session_id",
            "entry_type",
            "content",
            "raw_content",
            "tool_name",
            "tool_params",
            "exit_code",
            "timestamp",
            "created_at",
        ]
    );
    for table in [&tickets, &sessions, &entries] {
        assert_eq!(table[0], ("id".to_string(), "INTEGER".to_string(), true));
    }
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn tickets_open_once_refresh_and_log_rows_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.db");
    let db = OperatorDb::open(&path).unwrap();
    let report = TicketReport {
        violation_key: "member_unreachable:n2".into(),
        invariant_name: "member_unreachable".into(),
        store_id: "n2".into(),
        severity: "critical".into(),
        message: "n2 does not answer".into(),
        metric_snapshot: serde_json::json!({"node": 2}),
        subject_context: serde_json::json!({"subject": "etcd", "endpoints": ["http://a:1"]}),
    };
    let (id, new) = db.report(&report).unwrap();
    assert!(new);
    assert_eq!(db.report(&report).unwrap(), (id, false));
    db.start_session("s1", id).unwrap();
    db.log("s1", &LogEntry::Reasoning("why")).unwrap();
    db.log(
        "s1",
        &LogEntry::ToolCall {
            command: "etcdctl endpoint health",
            reasoning: "why",
        },
    )
    .unwrap();
    db.log(
        "s1",
        &LogEntry::ToolResult {
            output: "ok",
            exit_code: 0,
        },
    )
    .unwrap();
    db.end_session("s1", "completed", "done").unwrap();
    db.resolve_ticket(id).unwrap();
    // Resolved: the same violation later opens a new ticket.
    let (second, new) = db.report(&report).unwrap();
    assert!(new && second != id);

    let connection = Connection::open(&path).unwrap();
    let (count, status, first, last, resolved, context, variant): (
        i64,
        String,
        String,
        String,
        Option<String>,
        String,
        Option<String>,
    ) = connection
        .query_row(
            "SELECT occurrence_count, status, first_seen_at, last_seen_at, resolved_at, \
             subject_context, variant_tools_config FROM tickets WHERE id = ?1",
            [id],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(count, 2);
    assert_eq!(status, "resolved");
    assert_eq!(variant, None);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&context).unwrap()["subject"],
        "etcd"
    );
    for time in [&first, &last, resolved.as_ref().unwrap()] {
        assert!(time.ends_with('Z'), "{time}");
        chrono::DateTime::parse_from_rfc3339(time).unwrap();
    }
    assert!(last >= first);

    let rows: Vec<LogRow> = connection
        .prepare("SELECT entry_type, tool_name, tool_params, exit_code FROM agent_log_entries ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows[0].0, "reasoning");
    assert_eq!(rows[1].0, "tool_call");
    assert_eq!(rows[1].1.as_deref(), Some("shell"));
    let params: serde_json::Value = serde_json::from_str(rows[1].2.as_deref().unwrap()).unwrap();
    assert_eq!(
        params,
        serde_json::json!({"command": "etcdctl endpoint health", "reasoning": "why"})
    );
    assert_eq!(rows[2].0, "tool_result");
    assert_eq!(rows[2].3, Some(0));
}
