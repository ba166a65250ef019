//! What the operator.db capture and the legacy import share about reading SQLite files.

use rusqlite::Connection;

/// The column names of `table`, in order; empty when the table does not exist.
pub fn table_columns(connection: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    connection
        .prepare(&format!("PRAGMA table_info(\"{table}\")"))?
        .query_map([], |row| row.get::<_, String>(1))?
        .collect()
}
