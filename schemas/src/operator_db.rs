//! The operator.db contract (DESIGN.md, "operator.db contract"): the operator's own SQLite tables
//! `tickets`, `agent_sessions` and `agent_log_entries`, their columns and their DDL, written once.
//!
//! The reference operator creates its file from [`ddl`]; the capture stage reads the columns
//! named here (and requires the [`Column::required`] ones); the tests' fake operators and the
//! Python fixture (through `evalctl operator schema`) build their files from the same text.
//! The rows the capture publishes ([`crate::event::OperatorRow`]) are keyed by these names.

/// One column of an operator table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    /// Its declaration after the name, as the reference operator creates it.
    pub declaration: &'static str,
    /// The capture refuses a file whose table lacks it (the others read as NULL when absent).
    pub required: bool,
}

/// One table of the contract.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// Statements that follow the table's `CREATE TABLE` (indexes).
    pub after: &'static str,
}

const fn col(name: &'static str, declaration: &'static str, required: bool) -> Column {
    Column {
        name,
        declaration,
        required,
    }
}

pub const TICKETS: Table = Table {
    name: "tickets",
    columns: &[
        col("id", "INTEGER PRIMARY KEY", true),
        col("violation_key", "TEXT NOT NULL", true),
        col("invariant_name", "TEXT NOT NULL", true),
        col("store_id", "TEXT", true),
        col("status", "TEXT NOT NULL DEFAULT 'open'", true),
        col("held", "INTEGER NOT NULL DEFAULT 0", false),
        col("batch_key", "TEXT", false),
        col("occurrence_count", "INTEGER NOT NULL DEFAULT 1", false),
        col("first_seen_at", "TEXT NOT NULL", true),
        col("last_seen_at", "TEXT NOT NULL", false),
        col("resolved_at", "TEXT", true),
        col("message", "TEXT", true),
        col("severity", "TEXT", true),
        col("diagnosis", "TEXT", false),
        col("metric_snapshot", "TEXT", false),
        col("subject_context", "TEXT", true),
        col("variant_model", "TEXT", false),
        col("variant_system_prompt", "TEXT", false),
        col("variant_tools_config", "TEXT", false),
        col("created_at", "TEXT NOT NULL", true),
        col("updated_at", "TEXT NOT NULL", true),
    ],
    after: "CREATE INDEX IF NOT EXISTS tickets_violation_key ON tickets (violation_key, status);",
};

/// The columns the harness writes (the trial's variant, into its ticket): required of a file
/// whose trials have a variant.
pub const VARIANT_COLUMNS: [&str; 3] = [
    "variant_model",
    "variant_system_prompt",
    "variant_tools_config",
];

pub const AGENT_SESSIONS: Table = Table {
    name: "agent_sessions",
    columns: &[
        col("id", "INTEGER PRIMARY KEY", true),
        col("session_id", "TEXT NOT NULL UNIQUE", true),
        col("ticket_id", "INTEGER REFERENCES tickets (id)", true),
        col("status", "TEXT NOT NULL DEFAULT 'running'", false),
        col("started_at", "TEXT NOT NULL", true),
        col("ended_at", "TEXT", false),
        col("outcome_summary", "TEXT", false),
        col("created_at", "TEXT NOT NULL", true),
    ],
    after: "",
};

pub const AGENT_LOG_ENTRIES: Table = Table {
    name: "agent_log_entries",
    columns: &[
        col("id", "INTEGER PRIMARY KEY", true),
        col("session_id", "TEXT NOT NULL", true),
        col("entry_type", "TEXT NOT NULL", true),
        col("content", "TEXT", true),
        col("raw_content", "TEXT", false),
        col("tool_name", "TEXT", true),
        col("tool_params", "TEXT", true),
        col("exit_code", "INTEGER", true),
        col("timestamp", "TEXT NOT NULL", true),
        col("created_at", "TEXT NOT NULL", true),
    ],
    after: "",
};

/// The three tables, in the order they are created.
pub const TABLES: [&Table; 3] = [&TICKETS, &AGENT_SESSIONS, &AGENT_LOG_ENTRIES];

impl Table {
    /// The names of the columns, in order.
    pub fn column_names(&self) -> impl Iterator<Item = &'static str> + use<> {
        self.columns.iter().map(|column| column.name)
    }

    /// The table's `CREATE TABLE IF NOT EXISTS` (one column a line) and what follows it.
    pub fn ddl(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|column| format!("    {} {}", column.name, column.declaration))
            .collect();
        let mut ddl = format!(
            "CREATE TABLE IF NOT EXISTS {} (\n{}\n);\n",
            self.name,
            columns.join(",\n")
        );
        if !self.after.is_empty() {
            ddl.push_str(self.after);
            ddl.push('\n');
        }
        ddl
    }
}

/// The whole contract as SQL: what an operator runs to create its operator.db.
pub fn ddl() -> String {
    TABLES.iter().map(|table| table.ddl()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ddl_declares_every_column_once_in_order() {
        let ddl = ddl();
        for table in TABLES {
            let start = ddl
                .find(&format!("CREATE TABLE IF NOT EXISTS {} (", table.name))
                .expect("each table is created");
            let mut at = start;
            for column in table.columns {
                let found = ddl[at..]
                    .find(&format!("\n    {} ", column.name))
                    .unwrap_or_else(|| panic!("{}.{} in order", table.name, column.name));
                at += found + 1;
            }
        }
        assert!(ddl.contains("session_id TEXT NOT NULL UNIQUE"));
        assert!(
            VARIANT_COLUMNS
                .iter()
                .all(|name| TICKETS.column_names().any(|c| c == *name))
        );
    }
}
