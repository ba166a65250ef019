//! The local HTTP API of the process that owns the DuckDB file: the web viewer (`web`, served by
//! `serve`) on the owner's database instance, whose `POST /api/sql` answers the read commands of
//! other processes.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use duckdb::Connection;

use crate::query::{Limits, QueryError};
use crate::reader::ApiError;

/// The largest row limit, answer size and timeout a request may ask for.
pub const MAX_ROWS: usize = 100_000;
pub const MAX_BYTES: usize = 64 << 20;
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// A connection to the database that each request clones its own connection from.
#[derive(Clone)]
pub struct Database {
    connection: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Database")
    }
}

impl Database {
    pub fn new(connection: Connection) -> Database {
        Database {
            connection: Arc::new(Mutex::new(connection)),
        }
    }

    /// A connection of its own to the shared database.
    pub fn connection(&self) -> Result<Connection, QueryError> {
        let guard = self
            .connection
            .lock()
            .map_err(|_| QueryError::Open("the database handle is poisoned".to_string()))?;
        guard
            .try_clone()
            .map_err(|error| QueryError::Open(error.to_string()))
    }
}

/// The limits a request asked for, within the API's bounds.
pub fn bounded(
    max_rows: Option<usize>,
    max_bytes: Option<usize>,
    timeout_ms: Option<u64>,
) -> Limits {
    let default = Limits::default();
    Limits {
        max_rows: max_rows.unwrap_or(default.max_rows).clamp(1, MAX_ROWS),
        max_bytes: max_bytes.unwrap_or(default.max_bytes).clamp(1, MAX_BYTES),
        timeout_ms: timeout_ms
            .unwrap_or(default.timeout_ms)
            .clamp(1, MAX_TIMEOUT_MS),
    }
}

/// A query error as an HTTP answer.
pub fn error_response(error: &QueryError) -> Response {
    let (status, kind) = match error {
        QueryError::Sql(_) => (StatusCode::BAD_REQUEST, "sql"),
        QueryError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
        QueryError::NoDatabase(_) | QueryError::Open(_) | QueryError::Remote { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    (
        status,
        Json(ApiError {
            error: error.to_string(),
            kind: kind.to_string(),
        }),
    )
        .into_response()
}
