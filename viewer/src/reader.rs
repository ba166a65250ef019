//! Where read commands get their answers: through the API of the process that owns the DuckDB
//! file (`evalctl up`, or `evalctl project`) when one is running, else from the file opened read-only.
//! DuckDB allows one writing process per file; the owner says where its API listens in a small
//! file beside the database, so that a reader never meets a bare lock error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use duckdb::Connection;
use serde::{Deserialize, Serialize};

use crate::query::{
    Limits, Param, QueryError, QueryResult, Rows, Trust, open_read_only, run_query_arrow,
    run_query_as,
};

/// The API file's content (mode 0600: it may hold the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFile {
    /// Such as `http://127.0.0.1:8000`.
    pub url: String,
    pub pid: u32,
    /// The token the API requires, when it requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The API file of the database at `db_path`.
pub fn api_file_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".api");
    PathBuf::from(name)
}

/// Announces the owner's API; removed when the guard drops.
#[derive(Debug)]
pub struct ApiAnnouncement {
    path: PathBuf,
}

impl ApiAnnouncement {
    /// Writes the API file, readable by this user only (it may hold `token`).
    pub fn write(
        db_path: &Path,
        url: &str,
        token: Option<&str>,
    ) -> std::io::Result<ApiAnnouncement> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = api_file_path(db_path);
        let file = ApiFile {
            url: url.to_string(),
            pid: std::process::id(),
            token: token.map(str::to_string),
        };
        // A file left by an earlier owner may have another mode: start afresh.
        let _ = std::fs::remove_file(&path);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        out.write_all(&serde_json::to_vec(&file).expect("serializable"))?;
        Ok(ApiAnnouncement { path })
    }
}

impl Drop for ApiAnnouncement {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A source of read-only query answers.
pub enum Reader {
    Local(Connection),
    Remote { url: String, token: Option<String> },
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reader::Local(_) => f.write_str("Reader::Local"),
            Reader::Remote { url, .. } => write!(f, "Reader::Remote({url})"),
        }
    }
}

impl Reader {
    /// The owner's API when its process is alive, else the file read-only.
    pub fn open(db_path: &Path) -> Result<Reader, QueryError> {
        match Reader::owner(db_path) {
            Some(remote) => Ok(remote),
            None => open_read_only(db_path).map(Reader::Local),
        }
    }

    /// Another reader on the same source, for a query on another thread: a connection of its
    /// own to the same database instance, or the same API.
    pub fn try_clone(&self) -> Result<Reader, QueryError> {
        match self {
            Reader::Local(connection) => connection
                .try_clone()
                .map(Reader::Local)
                .map_err(|error| QueryError::Open(error.to_string())),
            Reader::Remote { url, token } => Ok(Reader::Remote {
                url: url.clone(),
                token: token.clone(),
            }),
        }
    }

    /// The API of the process that owns the file, when one announced it and is alive.
    pub fn owner(db_path: &Path) -> Option<Reader> {
        let bytes = std::fs::read(api_file_path(db_path)).ok()?;
        let file = serde_json::from_slice::<ApiFile>(&bytes).ok()?;
        projector::owner::process_alive(file.pid).then_some(Reader::Remote {
            url: file.url,
            token: file.token,
        })
    }

    /// Runs `sql` with `params` bound (the query reads the `n`th as `(SELECT pn FROM params)`).
    pub fn query(
        &self,
        sql: &str,
        params: &[Param],
        limits: Limits,
    ) -> Result<QueryResult, QueryError> {
        self.query_as(Trust::User, sql, params, limits)
    }

    /// [`Reader::query`] for a view's own text (never a user's): on a local file, its parameters
    /// bound in place so that DuckDB pushes its filters down ([`Trust::View`]); through the
    /// owner's API, as any query.
    pub fn view_query(
        &self,
        sql: &str,
        params: &[Param],
        limits: Limits,
    ) -> Result<QueryResult, QueryError> {
        self.query_as(Trust::View, sql, params, limits)
    }

    fn query_as(
        &self,
        trust: Trust,
        sql: &str,
        params: &[Param],
        limits: Limits,
    ) -> Result<QueryResult, QueryError> {
        match self {
            Reader::Local(connection) => run_query_as(connection, trust, sql, params, limits),
            Reader::Remote { url, token } => {
                remote_query(url, token.as_deref(), sql, params, limits)
            }
        }
    }

    /// [`Reader::view_query`] with typed access to the cells, for views that read many rows:
    /// straight from Arrow on a local file.
    pub fn view_rows(
        &self,
        sql: &str,
        params: &[Param],
        limits: Limits,
    ) -> Result<Rows, QueryError> {
        match self {
            Reader::Local(connection) => {
                run_query_arrow(connection, Trust::View, sql, params, limits).map(Rows::Arrow)
            }
            Reader::Remote { url, token } => {
                remote_query(url, token.as_deref(), sql, params, limits).map(Rows::Json)
            }
        }
    }

    /// Where the answers come from, for messages.
    pub fn describe(&self) -> String {
        match self {
            Reader::Local(_) => "the database file (read-only)".to_string(),
            Reader::Remote { url, .. } => format!("the running eval at {url}"),
        }
    }
}

/// The body of `POST /api/sql`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqlRequest {
    pub sql: String,
    /// Values bound to the query, read in it as `(SELECT p1 FROM params)`, ….
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    #[serde(default)]
    pub max_rows: Option<usize>,
    #[serde(default)]
    pub max_bytes: Option<usize>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// The body of an API error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    /// `sql`, `timeout`, `not_found`, `bad_request`, `unavailable`.
    pub kind: String,
}

/// `POST /api/sql` to the owner's API on loopback, with its token when it has one.
fn remote_query(
    url: &str,
    token: Option<&str>,
    sql: &str,
    params: &[Param],
    limits: Limits,
) -> Result<QueryResult, QueryError> {
    let remote = |message: String| QueryError::Remote {
        url: url.to_string(),
        message,
    };
    let body = serde_json::to_vec(&SqlRequest {
        sql: sql.to_string(),
        params: params.to_vec(),
        max_rows: Some(limits.max_rows),
        max_bytes: Some(limits.max_bytes),
        timeout_ms: Some(limits.timeout_ms),
    })
    .expect("serializable");
    let patience = Duration::from_millis(limits.timeout_ms) + Duration::from_secs(30);
    let answer = crate::http::request_with_token(
        "POST",
        &format!("{}/api/sql", url.trim_end_matches('/')),
        Some(&body),
        patience,
        token,
    )
    .map_err(remote)?;
    if answer.status == 200 {
        return serde_json::from_slice(&answer.body).map_err(|error| remote(error.to_string()));
    }
    let error: ApiError = serde_json::from_slice(&answer.body)
        .map_err(|_| remote(format!("HTTP {}: {}", answer.status, answer.text())))?;
    Err(match error.kind.as_str() {
        "timeout" => QueryError::Timeout(limits.timeout_ms),
        "sql" => QueryError::Sql(error.error),
        _ => remote(error.error),
    })
}
