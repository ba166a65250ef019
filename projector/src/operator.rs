//! operator.db enrichment: the operator's own tables, read as they are (read-only, through
//! rusqlite) into `operator_tickets`, `operator_sessions` and `operator_log_entries`, each row
//! marked with the file it came from. A file that is missing or unreadable is recorded in
//! `operator_db_files` and skipped.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use schemas::event::Timestamp;

use crate::buffer::TableBuffer;
use crate::schema::{self, Kind, Table};

/// What reading one operator.db gave.
#[derive(Debug)]
pub struct FileRead {
    pub path: String,
    /// `read`, `missing` or `unreadable`.
    pub status: &'static str,
    pub error: Option<String>,
    pub size_bytes: Option<u64>,
    pub modified_at: Option<Timestamp>,
    /// One buffer per operator table, in [`OPERATOR_TABLES`] order; empty unless read.
    pub tables: Vec<TableBuffer>,
    pub counts: [Option<i32>; 3],
}

/// The projector's table and the operator.db table it copies.
pub const OPERATOR_TABLES: [(&Table, &str); 3] = [
    (&schema::OPERATOR_TICKETS, "tickets"),
    (&schema::OPERATOR_SESSIONS, "agent_sessions"),
    (&schema::OPERATOR_LOG_ENTRIES, "agent_log_entries"),
];

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads every operator table of the file at `path`.
pub fn read_file(path: &str) -> FileRead {
    let mut read = FileRead {
        path: path.to_string(),
        status: "read",
        error: None,
        size_bytes: None,
        modified_at: None,
        tables: Vec::new(),
        counts: [None; 3],
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) => {
            read.status = if error.kind() == std::io::ErrorKind::NotFound {
                "missing"
            } else {
                "unreadable"
            };
            read.error = Some(error.to_string());
            return read;
        }
    };
    read.size_bytes = Some(metadata.len());
    read.modified_at = metadata
        .modified()
        .ok()
        .map(|time| Timestamp::from_datetime(time.into()));
    match read_tables(Path::new(path)) {
        Ok((tables, counts)) => {
            read.tables = tables;
            read.counts = counts;
        }
        Err(error) => {
            read.status = "unreadable";
            read.error = Some(error);
        }
    }
    read
}

type Tables = (Vec<TableBuffer>, [Option<i32>; 3]);

fn read_tables(path: &Path) -> Result<Tables, String> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| error.to_string())?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|error| error.to_string())?;
    let mut tables = Vec::new();
    let mut counts = [None; 3];
    for (index, (table, source)) in OPERATOR_TABLES.iter().enumerate() {
        let mut buffer = TableBuffer::new(table);
        let present = ingest::sqlite::table_columns(&connection, source)
            .map_err(|error| format!("{source}: {error}"))?;
        if present.is_empty() {
            tables.push(buffer);
            continue;
        }
        // The contract's columns, NULL where the file lacks one; the first is the file itself.
        let select: Vec<String> = table.columns[1..]
            .iter()
            .map(|column| {
                if present.iter().any(|name| name == column.name) {
                    format!("\"{}\"", column.name)
                } else {
                    "NULL".to_string()
                }
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM \"{source}\" ORDER BY rowid",
            select.join(", ")
        );
        let mut statement = connection
            .prepare(&sql)
            .map_err(|error| format!("{source}: {error}"))?;
        let mut rows = statement
            .query([])
            .map_err(|error| format!("{source}: {error}"))?;
        let path_text = path.to_string_lossy();
        let mut n = 0;
        while let Some(row) = rows.next().map_err(|error| format!("{source}: {error}"))? {
            let mut out = buffer.row().text(Some(&path_text));
            for (offset, column) in table.columns[1..].iter().enumerate() {
                let value = row
                    .get_ref(offset)
                    .map_err(|error| format!("{source}.{}: {error}", column.name))?;
                out = match column.kind {
                    Kind::BigInt => out.bigint(as_integer(value)),
                    _ => out.text(as_text(value).as_deref()),
                };
            }
            out.end();
            n += 1;
        }
        counts[index] = Some(n);
        tables.push(buffer);
    }
    Ok((tables, counts))
}

fn as_integer(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(x) if x.fract() == 0.0 => Some(x as i64),
        ValueRef::Text(text) => std::str::from_utf8(text).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn as_text(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
        ValueRef::Text(text) | ValueRef::Blob(text) => Some(String::from_utf8_lossy(text).into()),
    }
}
