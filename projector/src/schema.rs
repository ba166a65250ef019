//! The DuckDB tables and views: one definition per table, from which come the `CREATE TABLE`
//! statements, the Arrow schema of the record batches appended to it, and the README's table
//! documentation (a test keeps the README in step).
//!
//! Times are `TIMESTAMP` in UTC (DuckDB's `TIMESTAMPTZ` needs the ICU extension for most of its
//! functions, and it is not bundled). JSON is kept as text in `VARCHAR` columns whose names end in
//! `_json` or are `data`; DuckDB's string functions and a cast read it.

use std::sync::Arc;

use duckdb::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// JSON, as text.
    Json,
    Int,
    BigInt,
    UBigInt,
    Double,
    Bool,
    Time,
}

impl Kind {
    fn sql(self) -> &'static str {
        match self {
            Kind::Text | Kind::Json => "VARCHAR",
            Kind::Int => "INTEGER",
            Kind::BigInt => "BIGINT",
            Kind::UBigInt => "UBIGINT",
            Kind::Double => "DOUBLE",
            Kind::Bool => "BOOLEAN",
            Kind::Time => "TIMESTAMP",
        }
    }

    fn arrow(self) -> DataType {
        match self {
            Kind::Text | Kind::Json => DataType::Utf8,
            Kind::Int => DataType::Int32,
            Kind::BigInt => DataType::Int64,
            Kind::UBigInt => DataType::UInt64,
            Kind::Double => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }

    /// The type as the README and the SQL page name it (JSON is text in a `VARCHAR`).
    pub fn doc_name(self) -> &'static str {
        match self {
            Kind::Json => "JSON text",
            other => other.sql(),
        }
    }
}

/// One column: name, type, meaning.
#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
}

const fn col(name: &'static str, kind: Kind, doc: &'static str) -> Column {
    Column { name, kind, doc }
}

/// One table the projector maintains.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: &'static [Column],
}

impl Table {
    pub fn create_sql(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|column| format!("\"{}\" {}", column.name, column.kind.sql()))
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({});",
            self.name,
            columns.join(", ")
        )
    }

    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|column| Field::new(column.name, column.kind.arrow(), true))
                .collect::<Vec<_>>(),
        ))
    }
}

use Kind::*;

pub const CAMPAIGNS: Table = Table {
    name: "campaigns",
    doc: "one row per published campaign, with its progress",
    columns: &[
        col("campaign_id", Text, "the campaign's id"),
        col("name", Text, "the campaign's `name`"),
        col(
            "file_name",
            Text,
            "the campaign file as given to `evalctl publish`",
        ),
        col("published_at", Time, "when it was published"),
        col("seed", UBigInt, "the campaign seed"),
        col("n_trials", Int, "trials in the matrix, baselines included"),
        col("n_baseline_trials", Int, "baseline trials among them"),
        col("subjects_json", Json, "the subjects, as a JSON array"),
        col(
            "chaos_types_json",
            Json,
            "the chaos types in campaign order, as a JSON array",
        ),
        col(
            "variants_json",
            Json,
            "the variant names in campaign order, as a JSON array",
        ),
        col(
            "campaign_json",
            Json,
            "the validated campaign with every default filled in",
        ),
        col("file_text", Text, "the campaign file's text, byte for byte"),
        col("n_started", Int, "trials a worker has started"),
        col("n_finished", Int, "trials that have finished"),
        col(
            "finished_at",
            Time,
            "when `CampaignFinished` was recorded; NULL while running",
        ),
        col(
            "status",
            Text,
            "`published`, `running`, or `finished` (every trial finished)",
        ),
        col(
            "by_status_json",
            Json,
            "finished trials by status, from `CampaignFinished`",
        ),
    ],
};

pub const TRIALS: Table = Table {
    name: "trials",
    doc: "one row per trial with its latest lifecycle state and the time of every phase",
    columns: &[
        col("trial_id", Text, "the trial's id"),
        col("campaign_id", Text, "its campaign"),
        col(
            "trial_index",
            Int,
            "position in the campaign's matrix, from 0",
        ),
        col("subject", Text, "`etcd`, `tikv`"),
        col("chaos_type", Text, "`node_kill`, `process_pause`, …"),
        col(
            "chaos_index",
            Int,
            "position of the fault in the campaign's `chaos_types`",
        ),
        col("chaos_json", Json, "the fault with every parameter"),
        col("variant", Text, "the operator variant; NULL for a baseline"),
        col("baseline", Bool, "a baseline trial (no operator)"),
        col(
            "control",
            Bool,
            "a control trial (`chaos_type` `none`): the operator runs, nothing is broken",
        ),
        col(
            "repetition",
            Int,
            "which repetition of its subject × chaos × variant, from 0",
        ),
        col(
            "seed",
            UBigInt,
            "the trial's seed (equal across variants of one repetition)",
        ),
        col("timeout_seconds", Int, "the trial's timeout"),
        col(
            "state",
            Text,
            "the latest lifecycle event: `requested`, `started`, `reset`, `healthy`, `injected`, `ticket_opened`, `session_started`, `ticket_resolved`, `cleaned_up`, `cleanup_failed`, `finished`",
        ),
        col(
            "status",
            Text,
            "`succeeded`, `failed`, `timed_out`, `errored`; NULL until finished",
        ),
        col("reason", Text, "why it ended so, when the worker said"),
        col("worker", Text, "the worker that ran it"),
        col(
            "attempt",
            Int,
            "delivery attempt of the trial's request, from 1",
        ),
        col("requested_at", Time, "`TrialRequested`"),
        col("started_at", Time, "`TrialStarted`"),
        col("reset_at", Time, "`SubjectReset`"),
        col("healthy_at", Time, "first `SubjectHealthy`"),
        col("injected_at", Time, "`ChaosInjected`"),
        col("target", Text, "the node the fault hit"),
        col(
            "ticket_first_seen_at",
            Time,
            "the first ticket's `first_seen_at` (operator time)",
        ),
        col(
            "ticket_opened_at",
            Time,
            "when the first `TicketOpened` was recorded",
        ),
        col(
            "session_started_at",
            Time,
            "the first agent session's start",
        ),
        col(
            "ticket_resolved_at",
            Time,
            "the first ticket resolution (operator time)",
        ),
        col("cleaned_up_at", Time, "`ChaosCleanedUp`"),
        col(
            "cleanup_error",
            Text,
            "the error of `ChaosCleanupFailed`, if any",
        ),
        col("finished_at", Time, "`TrialFinished`"),
        col("duration_ms", BigInt, "started → finished"),
        col("initial_healthy", Bool, "healthy at the initial capture"),
        col("final_healthy", Bool, "healthy at the final capture"),
        col(
            "initial_state_json",
            Json,
            "the initial `StateCaptured` snapshot",
        ),
        col(
            "final_state_json",
            Json,
            "the final `StateCaptured` snapshot",
        ),
        col(
            "operator_db",
            Text,
            "the operator.db the trial's tickets and log came from",
        ),
        col("n_log_entries", Int, "agent log entries recorded"),
        col("n_tool_calls", Int, "tool calls among them"),
        col("last_event_at", Time, "the latest event of the trial"),
        col(
            "first_seq",
            UBigInt,
            "stream sequence of the trial's first event: with `last_seq`, `seq BETWEEN first_seq AND last_seq` lets a query of one trial's rows in `events`, `agent_log`, `commands` or `scores` skip the rest of the table",
        ),
        col(
            "last_seq",
            UBigInt,
            "stream sequence of the trial's latest event",
        ),
        col(
            "score_outcome",
            Text,
            "the latest score's outcome (as in `latest_scores`): `success`, `failure`, `timeout`, `errored`; NULL until scored",
        ),
        col(
            "score_detected",
            Bool,
            "the latest score: the operator detected the fault",
        ),
        col(
            "score_time_to_detect_ms",
            BigInt,
            "the latest score: injection → ticket first seen",
        ),
        col(
            "score_time_to_resolve_ms",
            BigInt,
            "the latest score: injection → ticket resolved",
        ),
        col(
            "score_time_to_heal_ms",
            BigInt,
            "the latest score: injection → healthy again (baselines' self-heal)",
        ),
        col("score_n_commands", Int, "the latest score: tool calls"),
        col(
            "score_n_unique_commands",
            Int,
            "the latest score: distinct commands",
        ),
        col(
            "score_n_destructive",
            Int,
            "the latest score: calls classified `destructive`",
        ),
        col(
            "score_n_thrashing",
            Int,
            "the latest score: thrashing episodes",
        ),
        col(
            "score_n_false_alarms",
            Int,
            "the latest score of a control trial: tickets opened while nothing was broken; NULL for fault trials",
        ),
        col(
            "score_stayed_healthy",
            Bool,
            "the latest score of a control trial: the subject stayed healthy; NULL for fault trials",
        ),
    ],
};

pub const EVENTS: Table = Table {
    name: "events",
    doc: "every event of the log, raw, in stream order (unknown types included)",
    columns: &[
        col("seq", UBigInt, "the stream sequence number"),
        col("id", Text, "the event id (also the `Nats-Msg-Id`)"),
        col("type", Text, "the event type; unknown types are kept"),
        col("campaign_id", Text, "its campaign"),
        col("trial_id", Text, "its trial; NULL for campaign-wide events"),
        col("occurred_at", Time, "when it happened"),
        col("producer_stage", Text, "the stage that wrote it"),
        col("producer_host", Text, "the host that wrote it"),
        col("schema_version", Int, "the envelope's schema version"),
        col("data", Json, "the event's data as written"),
        col(
            "read_error",
            Text,
            "why the event or its data could not be read; NULL when fine",
        ),
    ],
};

pub const SCORES: Table = Table {
    name: "scores",
    doc: "every `TrialScored`: all scorer versions, old ones kept",
    columns: &[
        col("seq", UBigInt, "stream sequence of the `TrialScored` event"),
        col("campaign_id", Text, "its campaign"),
        col("trial_id", Text, "its trial"),
        col("scored_at", Time, "when the score was recorded"),
        col(
            "scorer_version",
            Text,
            "`v3`, or `v3+<hash>` with user rules (older scores keep their version)",
        ),
        col(
            "outcome",
            Text,
            "`success`, `failure`, `timeout`, `errored`",
        ),
        col("baseline", Bool, "a baseline trial"),
        col("control", Bool, "a control trial (`chaos: none`)"),
        col(
            "detected",
            Bool,
            "a ticket was first seen at or after injection",
        ),
        col("time_to_detect_ms", BigInt, "injection → ticket first seen"),
        col(
            "resolved",
            Bool,
            "ticket resolved and subject healthy at the end",
        ),
        col("time_to_resolve_ms", BigInt, "injection → ticket resolved"),
        col(
            "time_to_heal_ms",
            BigInt,
            "injection → healthy again (baselines' self-heal)",
        ),
        col(
            "healed_within_timeout",
            Bool,
            "healthy again within the timeout",
        ),
        col(
            "n_false_alarms",
            Int,
            "a control trial's tickets about its subject; NULL for fault trials",
        ),
        col(
            "stayed_healthy",
            Bool,
            "a control trial's subject stayed healthy throughout; NULL for fault trials",
        ),
        col("n_commands", Int, "tool calls"),
        col("n_unique_commands", Int, "distinct commands"),
        col("n_diagnostic", Int, "calls classified `diagnostic`"),
        col("n_remediation", Int, "calls classified `remediation`"),
        col("n_destructive", Int, "calls classified `destructive`"),
        col("n_other", Int, "calls classified `other`"),
        col("n_thrashing", Int, "thrashing episodes"),
        col(
            "thrashing_commands_json",
            Json,
            "the command of each episode",
        ),
        col(
            "details_json",
            Json,
            "the scorer's explanation, tickets, commands and settings",
        ),
        col(
            "latest",
            Bool,
            "whether this is the trial's most recent score (the last `TrialScored` in the stream); `latest_scores` is these rows",
        ),
    ],
};

pub const TOOL_CALLS: Table = Table {
    name: "tool_calls",
    doc: "one row per tool call, as the operator made it (the `commands` view adds how the trial's latest score classified it)",
    columns: &[
        col(
            "seq",
            UBigInt,
            "stream sequence of the `AgentLogRecorded` event",
        ),
        col("campaign_id", Text, "its campaign"),
        col("trial_id", Text, "its trial"),
        col("logged_at", Time, "the operator's timestamp of the call"),
        col("session_id", Text, "the agent session"),
        col("entry_id", BigInt, "the row id in `agent_log_entries`"),
        col("tool_name", Text, "the operator's tool, such as `shell`"),
        col(
            "command",
            Text,
            "the command line, or the parameters as JSON",
        ),
    ],
};

pub const SCORE_COMMANDS: Table = Table {
    name: "score_commands",
    doc: "each distinct command of every `TrialScored`, classified by the rules that score used (its `details`)",
    columns: &[
        col("seq", UBigInt, "stream sequence of the `TrialScored` event"),
        col("campaign_id", Text, "its campaign"),
        col("trial_id", Text, "its trial"),
        col("scorer_version", Text, "the score's version"),
        col("tool_name", Text, "the operator's tool"),
        col(
            "command",
            Text,
            "the command line, or the parameters as JSON",
        ),
        col(
            "category",
            Text,
            "`diagnostic`, `remediation`, `destructive`, `other`",
        ),
        col(
            "rule",
            Text,
            "the rule that decided the category; NULL for `other`",
        ),
        col("matched", Text, "the part of the command the rule matched"),
        col("n_calls", Int, "calls of it in the trial"),
    ],
};

pub const AGENT_LOG: Table = Table {
    name: "agent_log",
    doc: "the agent's reasoning, tool calls and tool results in order",
    columns: &[
        col(
            "seq",
            UBigInt,
            "stream sequence of the `AgentLogRecorded` event",
        ),
        col("campaign_id", Text, "its campaign"),
        col("trial_id", Text, "its trial"),
        col("logged_at", Time, "the operator's timestamp of the entry"),
        col("operator_db", Text, "the operator.db it was read from"),
        col("session_id", Text, "the agent session"),
        col("entry_id", BigInt, "the row id in `agent_log_entries`"),
        col(
            "entry_type",
            Text,
            "`reasoning`, `tool_call`, `tool_result`",
        ),
        col("content", Text, "the text: reasoning, or a tool's output"),
        col("tool_name", Text, "the tool of a call"),
        col("tool_params_json", Json, "its parameters"),
        col(
            "tool_params_raw",
            Text,
            "the parameters as written, when not valid JSON",
        ),
        col("exit_code", BigInt, "a tool result's exit code"),
    ],
};

pub const OPERATOR_DB_FILES: Table = Table {
    name: "operator_db_files",
    doc: "each end of an operator.db capture (`OperatorCaptureFinished`: one per operator trial, per attempt): what the capture stage found of the file",
    columns: &[
        col(
            "seq",
            UBigInt,
            "stream sequence of the `OperatorCaptureFinished` event",
        ),
        col("campaign_id", Text, "its campaign"),
        col("trial_id", Text, "its trial"),
        col("operator_db", Text, "the file's path on the capture's host"),
        col("capture_host", Text, "the host whose capture stage read it"),
        col(
            "status",
            Text,
            "`read`, `missing`, `unreadable` or `refused`",
        ),
        col("error", Text, "what went wrong, when not read"),
        col("size_bytes", UBigInt, "its size at the end of the trial"),
        col("modified_at", Time, "its modification time then"),
        col(
            "n_tickets",
            Int,
            "the trial's tickets captured from it (0 or 1)",
        ),
        col("n_sessions", Int, "the ticket's sessions"),
        col("n_log_entries", Int, "the sessions' log entries captured"),
    ],
};

/// The columns every operator table starts with: where the row came from.
macro_rules! operator_columns {
    ($event:literal; $($contract:expr),* $(,)?) => {
        &[
            col("seq", UBigInt, concat!("stream sequence of the `", $event, "` event that carried the row")),
            col("campaign_id", Text, "its campaign"),
            col("trial_id", Text, "its trial"),
            col("operator_db", Text, "the file the row comes from"),
            $($contract),*
        ]
    };
}

/// The columns before the contract's in each `operator_*` table.
pub const OPERATOR_PREFIX: usize = 4;

pub const OPERATOR_TICKETS: Table = Table {
    name: "operator_tickets",
    doc: "the trial's ticket of every operator trial, as the operator last wrote it (from `OperatorCaptureFinished`)",
    columns: operator_columns![
        "OperatorCaptureFinished";
        col("id", BigInt, "the ticket's row id"),
        col("violation_key", Text, ""),
        col("invariant_name", Text, ""),
        col("store_id", Text, ""),
        col(
            "status",
            Text,
            "`open`, `acknowledged`, `diagnosed`, `resolved`",
        ),
        col("held", Text, ""),
        col("batch_key", Text, ""),
        col("occurrence_count", BigInt, ""),
        col(
            "first_seen_at",
            Text,
            "as written (ISO 8601, zone optional)",
        ),
        col("last_seen_at", Text, "as written"),
        col("resolved_at", Text, "as written"),
        col("message", Text, ""),
        col("severity", Text, ""),
        col("diagnosis", Text, ""),
        col("metric_snapshot", Text, ""),
        col("subject_context", Text, ""),
        col("variant_model", Text, ""),
        col("variant_system_prompt", Text, ""),
        col("variant_tools_config", Text, ""),
        col("created_at", Text, "as written"),
        col("updated_at", Text, "as written"),
    ],
};

pub const OPERATOR_SESSIONS: Table = Table {
    name: "operator_sessions",
    doc: "the agent sessions on each operator trial's ticket, as last written (from `OperatorCaptureFinished`)",
    columns: operator_columns![
        "OperatorCaptureFinished";
        col("id", BigInt, "the row id"),
        col("session_id", Text, ""),
        col("ticket_id", BigInt, ""),
        col(
            "status",
            Text,
            "`running`, `completed`, `failed`, `escalated`",
        ),
        col("started_at", Text, "as written"),
        col("ended_at", Text, "as written"),
        col("outcome_summary", Text, ""),
        col("created_at", Text, "as written"),
    ],
};

pub const OPERATOR_LOG_ENTRIES: Table = Table {
    name: "operator_log_entries",
    doc: "the `agent_log_entries` rows of each operator trial's sessions, as written (from `AgentLogRecorded`)",
    columns: operator_columns![
        "AgentLogRecorded";
        col("id", BigInt, "the row id"),
        col("session_id", Text, ""),
        col(
            "entry_type",
            Text,
            "`reasoning`, `tool_call`, `tool_result`",
        ),
        col("content", Text, ""),
        col("raw_content", Text, ""),
        col("tool_name", Text, ""),
        col("tool_params", Text, "as written"),
        col("exit_code", BigInt, ""),
        col("timestamp", Text, "as written"),
        col("created_at", Text, "as written"),
    ],
};

/// Every table, in the order the README documents them.
pub const TABLES: &[&Table] = &[
    &CAMPAIGNS,
    &TRIALS,
    &EVENTS,
    &SCORES,
    &TOOL_CALLS,
    &SCORE_COMMANDS,
    &AGENT_LOG,
    &OPERATOR_DB_FILES,
    &OPERATOR_TICKETS,
    &OPERATOR_SESSIONS,
    &OPERATOR_LOG_ENTRIES,
];

/// The projector's own bookkeeping: the last stream sequence applied, written in the same
/// transaction as the rows it produced.
pub const PROGRESS_SQL: &str = "CREATE TABLE IF NOT EXISTS projector_progress (
    stream VARCHAR, last_sequence UBIGINT, projector_version INTEGER, updated_at TIMESTAMP);";

/// Changes whenever a table's definition does; a file of another version is rebuilt.
pub const PROJECTOR_VERSION: i32 = 7;

/// A view and its meaning.
#[derive(Debug)]
pub struct View {
    pub name: &'static str,
    pub doc: &'static str,
    pub sql: &'static str,
}

pub const VIEWS: &[View] = &[
    View {
        name: "commands",
        doc: "one row per tool call (`tool_calls`), classified as the trial's latest score classified it (`score_commands`): `category` (`diagnostic`, `remediation`, `destructive`, `other`; NULL until the trial is scored), `rule` (NULL for `other`) and `matched`",
        sql: "CREATE OR REPLACE VIEW commands AS
            SELECT c.seq, c.campaign_id, c.trial_id, c.logged_at, c.session_id, c.entry_id,
                   c.tool_name, c.command, sc.category, sc.rule, sc.matched
            FROM tool_calls c
            LEFT JOIN scores s ON s.trial_id = c.trial_id AND s.latest
            LEFT JOIN score_commands sc
                   ON sc.seq = s.seq AND sc.tool_name = c.tool_name AND sc.command = c.command;",
    },
    View {
        name: "latest_scores",
        doc: "per trial, its most recent `TrialScored` (the last in the stream)",
        sql: "CREATE OR REPLACE VIEW latest_scores AS SELECT * FROM scores WHERE latest;",
    },
    View {
        name: "trial_summary",
        doc: "one row per trial: campaign name, subject, chaos, variant, status, and its latest score's figures",
        sql: "CREATE OR REPLACE VIEW trial_summary AS
            SELECT t.trial_id, t.campaign_id, c.name AS campaign_name, t.trial_index, t.subject,
                   t.chaos_type, t.variant, t.baseline, t.control, t.repetition, t.state, t.status,
                   t.started_at, t.injected_at, t.finished_at, t.duration_ms,
                   s.scorer_version, s.outcome, s.detected, s.time_to_detect_ms, s.resolved,
                   s.time_to_resolve_ms, s.time_to_heal_ms, s.healed_within_timeout,
                   s.n_commands, s.n_unique_commands, s.n_destructive, s.n_thrashing,
                   s.n_false_alarms, s.stayed_healthy
            FROM trials t
            LEFT JOIN campaigns c USING (campaign_id)
            LEFT JOIN latest_scores s USING (trial_id);",
    },
];

/// The README's documentation of every table and view, as Markdown.
pub fn markdown() -> String {
    let mut out = String::new();
    for table in TABLES {
        out.push_str(&format!("#### `{}`: {}\n\n", table.name, table.doc));
        out.push_str("| column | type | meaning |\n| --- | --- | --- |\n");
        for column in table.columns {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                column.name,
                column.kind.doc_name(),
                column.doc
            ));
        }
        out.push('\n');
    }
    out.push_str("#### Views\n\n");
    for view in VIEWS {
        out.push_str(&format!("- `{}`: {}\n", view.name, view.doc));
    }
    out
}
