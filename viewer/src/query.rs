//! The read-only SQL surface over the DuckDB file, shared by `evalctl sql`, the read commands, the
//! API and the web pages.
//!
//! Protection comes from DuckDB, not from parsing SQL here: every connection has
//! `enable_external_access = false` (no files but the database, no `ATTACH`, `COPY`, `INSTALL` or
//! `LOAD`) and `lock_configuration = true` (no setting can be changed back), a file opened by a
//! reader is opened `READ_ONLY`, each query runs in a read-only transaction, and the user's text
//! is handed to DuckDB's `query()` table function as one string literal, which DuckDB accepts
//! only when it is a single SELECT: a second statement, a write, `ATTACH`, `SET`, `LOAD` are
//! refused by DuckDB's own parser. Each query has a row limit, a byte limit and a timeout (an
//! interrupt); a file a reader opens gets its own `memory_limit` and `threads`.
//!
//! A single SELECT can still call a table function with side effects (`checkpoint()` writes to
//! a file opened read-only, `truncate_duckdb_logs()`, `enable_logging()`, …), so the table
//! functions a query names are checked against an allow-list ([`ALLOWED_TABLE_FUNCTIONS`])
//! before it runs: DuckDB's own parser reads the text (`json_serialize_sql`), and every table
//! function in the tree (in subqueries, CTEs, `SUMMARIZE`/`DESCRIBE` of a query alike) must be on
//! the list. `query()` and `query_table()` are not, so no text can hide a call in a string.
//!
//! Values go in as bound parameters, never quoted into the text: the statement run is
//! `WITH params(p1, …, pN) AS (SELECT $1, …, $N) SELECT * FROM query('…')` with the values bound
//! to `$1…$N`, and the query reads them as `(SELECT p1 FROM params)`. DuckDB binds the text
//! inside `query()` within the outer statement, so it sees that common table expression; the
//! values themselves never reach a parser.
//!
//! The views' own queries (text compiled into the program, never a user's) skip the `query()`
//! wrapping and the table-function check ([`Trust::View`]): they run as prepared statements with
//! each `(SELECT pn FROM params)` replaced by `$n`, on the same sandboxed connection, read-only
//! transaction, limits and timeout. A scalar subquery in a filter is planned as a join, so
//! `trial_id = (SELECT p1 FROM params)` scanned the whole table where `trial_id = $1` is pushed
//! down to the row groups that can hold it.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::compute::concat_batches;
use duckdb::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::arrow::util::display::{ArrayFormatter, FormatOptions};
use duckdb::{AccessMode, Connection};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bounds of one query: rows, bytes of the answer (the text of its cells, 8 bytes a number),
/// and time. The answer stops at the first bound it reaches and says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_rows: usize,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    pub timeout_ms: u64,
}

/// The default byte limit of an answer: 16 MiB.
pub const DEFAULT_MAX_BYTES: usize = 16 << 20;

fn default_max_bytes() -> usize {
    DEFAULT_MAX_BYTES
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_rows: 10_000,
            max_bytes: DEFAULT_MAX_BYTES,
            timeout_ms: 30_000,
        }
    }
}

/// DuckDB's `memory_limit` and `threads` on a file a reader opens (its own database instance;
/// the owner's instance keeps the writer's settings). DuckDB's defaults are 80 % of the
/// machine's memory and every core, for each reader.
pub const READER_MEMORY_LIMIT: &str = "512MB";
pub const READER_THREADS: u32 = 2;

/// The table functions a query may call; any other (`checkpoint`, `force_checkpoint`,
/// `truncate_duckdb_logs`, `enable_logging`, `pragma_*` but two, `query`, `read_*`, …) is
/// refused, naming it. New functions of a later DuckDB are refused until listed here.
pub const ALLOWED_TABLE_FUNCTIONS: &[&str] = &[
    "range",
    "generate_series",
    "unnest",
    "repeat",
    "json_each",
    "json_tree",
    "duckdb_tables",
    "duckdb_columns",
    "duckdb_views",
    "duckdb_schemas",
    "duckdb_types",
    "duckdb_constraints",
    "duckdb_indexes",
    "duckdb_functions",
    "duckdb_keywords",
    "pragma_table_info",
    "pragma_version",
];

/// A value bound to a query: a JSON scalar (`null`, a boolean, a number or a string). The query
/// reads the `n`th as `(SELECT pn FROM params)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Param {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl From<&str> for Param {
    fn from(text: &str) -> Param {
        Param::Text(text.to_string())
    }
}

impl From<&String> for Param {
    fn from(text: &String) -> Param {
        Param::Text(text.clone())
    }
}

impl Param {
    fn to_duckdb(&self) -> duckdb::types::Value {
        use duckdb::types::Value as Db;
        match self {
            Param::Null => Db::Null,
            Param::Bool(value) => Db::Boolean(*value),
            Param::Int(value) => Db::BigInt(*value),
            Param::Float(value) => Db::Double(*value),
            Param::Text(text) => Db::Text(text.clone()),
        }
    }
}

/// A query's answer: column names and types, rows as JSON values (numbers, booleans, null, and
/// text for everything else), and whether rows were left off at a limit, and which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub types: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
    /// The limit that cut the answer, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_by: Option<Truncation>,
    pub elapsed_ms: u64,
}

/// Which limit cut an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncation {
    /// `max_rows` rows were reached.
    Rows,
    /// The next row would have taken the answer past `max_bytes`.
    Bytes,
}

impl QueryResult {
    /// What to tell a person about rows left off, if any: `None` for a whole answer.
    pub fn truncation_note(&self, limits: Limits) -> Option<String> {
        match (self.truncated, self.truncated_by) {
            (false, _) => None,
            (true, Some(Truncation::Bytes)) => Some(format!(
                "truncated: {} rows shown; the next would take the answer past its size limit of {} bytes: select fewer rows or narrower columns",
                self.rows.len(),
                limits.max_bytes
            )),
            (true, _) => Some(format!(
                "truncated: {} rows shown; more were left off at the row limit: raise --limit",
                self.rows.len()
            )),
        }
    }
}

impl QueryResult {
    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Sql(String),
    #[error("the query ran longer than {0} ms and was stopped; narrow it, or raise --timeout")]
    Timeout(u64),
    #[error("no database at {0}; run `{program} project` (or `{program} up`) to build it from the log first", program = schemas::program::name())]
    NoDatabase(PathBuf),
    #[error("{0}")]
    Open(String),
    #[error("the running `{program} up` at {url} did not answer: {message}", program = schemas::program::name())]
    Remote { url: String, message: String },
}

/// Opens `path` read-only with the sandboxed settings.
pub fn open_read_only(path: &Path) -> Result<Connection, QueryError> {
    if !path.exists() {
        return Err(QueryError::NoDatabase(path.to_path_buf()));
    }
    let config = projector::db::sandboxed_config()
        .and_then(|config| {
            Ok(config
                .access_mode(AccessMode::ReadOnly)?
                .with("memory_limit", READER_MEMORY_LIMIT)?
                .with("threads", READER_THREADS.to_string())?)
        })
        .map_err(|error| QueryError::Open(error.to_string()))?;
    let connection = projector::db::open_with(path, config).map_err(|error| match error {
        projector::Error::Locked { .. } => QueryError::Open(format!(
            "{error}. If `{program} up` is running, its API file next to the database was not found; is it running with the same --data-dir?"
        , program = schemas::program::name())),
        other => QueryError::Open(other.to_string()),
    })?;
    connection
        .execute_batch("SET lock_configuration = true;")
        .map_err(|error| QueryError::Open(error.to_string()))?;
    Ok(connection)
}

/// Whose text a query is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Anyone's (`evalctl sql`, the SQL page, `POST /api/sql`): wrapped in `query()`, its table
    /// functions checked.
    User,
    /// A view's own, compiled into the program: its parameters bound in place (see the module's
    /// documentation).
    View,
}

/// Runs `sql` as a read-only query on `connection` within `limits`.
pub fn run_query(
    connection: &Connection,
    sql: &str,
    params: &[Param],
    limits: Limits,
) -> Result<QueryResult, QueryError> {
    run_query_as(connection, Trust::User, sql, params, limits)
}

/// [`run_query`] for text of the given [`Trust`].
pub fn run_query_as(
    connection: &Connection,
    trust: Trust,
    sql: &str,
    params: &[Param],
    limits: Limits,
) -> Result<QueryResult, QueryError> {
    let started = Instant::now();
    let mut result = protected(connection, trust, sql, params, limits, |statement| {
        collect(statement, params, limits)
    })?;
    result.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(result)
}

/// [`run_query`]'s answer as one Arrow record batch (at most `limits.max_rows` rows), for readers
/// of many rows that want typed values, not JSON ones. An answer past `limits.max_bytes` (in
/// Arrow's memory) is an error: a view must not show part of its figures.
pub fn run_query_arrow(
    connection: &Connection,
    trust: Trust,
    sql: &str,
    params: &[Param],
    limits: Limits,
) -> Result<RecordBatch, QueryError> {
    protected(connection, trust, sql, params, limits, |statement| {
        let schema = statement
            .stream_arrow(bound(params))
            .map_err(|error| error.to_string())?
            .get_schema();
        let (mut batches, mut rows, mut bytes) = (Vec::new(), 0, 0);
        while rows < limits.max_rows
            && let Some(array) = statement.step().map_err(|error| error.to_string())?
        {
            let batch = RecordBatch::from(&array);
            rows += batch.num_rows();
            bytes += batch.get_array_memory_size();
            if bytes > limits.max_bytes {
                return Err(format!(
                    "the answer is larger than its size limit of {} bytes",
                    limits.max_bytes
                ));
            }
            batches.push(batch);
        }
        let all = concat_batches(&schema, &batches).map_err(|error| error.to_string())?;
        Ok(all.slice(0, all.num_rows().min(limits.max_rows)))
    })
}

/// The parameters as DuckDB binds them.
fn bound(params: &[Param]) -> duckdb::ParamsFromIter<Vec<duckdb::types::Value>> {
    duckdb::params_from_iter(params.iter().map(Param::to_duckdb).collect())
}

/// Runs `run` on `sql` wrapped for safety (see the module's documentation) and prepared, in a
/// read-only transaction, interrupted after the timeout, once its table functions are checked.
fn protected<T>(
    connection: &Connection,
    trust: Trust,
    sql: &str,
    params: &[Param],
    limits: Limits,
    run: impl FnOnce(&mut duckdb::Statement<'_>) -> Result<T, String>,
) -> Result<T, QueryError> {
    let body = sql
        .trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    if body.is_empty() {
        return Err(QueryError::Sql("the query is empty".to_string()));
    }
    // The user's text goes to DuckDB's `query()` table function as one string literal: the
    // statement run is always a single SELECT, and `query()` itself accepts exactly one SELECT
    // (a `;`, a write, `ATTACH`, `SET`, … are refused by DuckDB's parser).
    let (statement_sql, checked) = match trust {
        Trust::User => {
            let literal = body.replace('\'', "''");
            (
                wrap_user_text(&literal, params.len(), limits),
                Some(literal),
            )
        }
        Trust::View => {
            let mut bound = body.to_string();
            for n in 1..=params.len() {
                bound = bound.replace(&format!("(SELECT p{n} FROM params)"), &format!("${n}"));
            }
            (bound, None)
        }
    };

    let started = std::time::Instant::now();
    let interrupt = connection.interrupt_handle();
    let (done, finished) = mpsc::channel::<()>();
    let timeout = Duration::from_millis(limits.timeout_ms);
    let timer = std::thread::spawn(move || {
        if finished.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
            interrupt.interrupt();
            true
        } else {
            false
        }
    });
    // A read-only transaction besides: nothing the query calls can write.
    let result = connection
        .execute_batch("BEGIN TRANSACTION READ ONLY;")
        .map_err(|error| error.to_string())
        .and_then(|()| match &checked {
            Some(literal) => check_table_functions(connection, literal),
            None => Ok(()),
        })
        .and_then(|()| {
            let mut statement = connection
                .prepare(&statement_sql)
                .map_err(|error| error.to_string())?;
            run(&mut statement)
        });
    let _ = connection.execute_batch("ROLLBACK;");
    drop(done);
    let timed_out = timer.join().unwrap_or(false);
    tracing::debug!(
        ms = started.elapsed().as_secs_f64() * 1e3,
        ?trust,
        sql = %body.chars().take(80).collect::<String>(),
        "query ran"
    );
    result.map_err(|message| {
        if timed_out {
            QueryError::Timeout(limits.timeout_ms)
        } else {
            QueryError::Sql(explain_error(&message))
        }
    })
}

/// The statement run for a user's text (`literal`, quoted for a string literal) with `n_params`
/// values bound: the text as one `query()` string, the values in a common table expression.
fn wrap_user_text(literal: &str, n_params: usize, limits: Limits) -> String {
    let mut wrapped = String::new();
    if n_params > 0 {
        let names: Vec<String> = (1..=n_params).map(|n| format!("p{n}")).collect();
        let places: Vec<String> = (1..=n_params).map(|n| format!("${n}")).collect();
        wrapped = format!(
            "WITH params({}) AS (SELECT {}) ",
            names.join(", "),
            places.join(", ")
        );
    }
    wrapped.push_str(&format!(
        "SELECT * FROM query('{literal}') LIMIT {}",
        limits.max_rows.saturating_add(1)
    ));
    wrapped
}

/// Refuses a query that calls a table function off [`ALLOWED_TABLE_FUNCTIONS`]. `literal` is the
/// query's text quoted for a string literal; DuckDB's parser reads it (the one `query()` uses),
/// and every `TABLE_FUNCTION` node of the tree is checked. Text the parser cannot serialize is
/// refused with the parser's message: nothing unchecked runs.
fn check_table_functions(connection: &Connection, literal: &str) -> Result<(), String> {
    let tree: String = connection
        .query_row(
            &format!("SELECT json_serialize_sql('{literal}')"),
            [],
            |row| row.get(0),
        )
        .map_err(|error| error.to_string())?;
    let tree: Value = serde_json::from_str(&tree).map_err(|error| error.to_string())?;
    if tree["error"].as_bool() != Some(false) {
        let message = tree["error_message"].as_str().unwrap_or("unreadable query");
        return Err(if tree["error_type"] == "parser" {
            format!("Parser Error: {message}")
        } else {
            format!("the query cannot be checked before it runs: {message}")
        });
    }
    let mut called = Vec::new();
    table_functions(&tree, &mut called);
    match called
        .into_iter()
        .find(|name| !ALLOWED_TABLE_FUNCTIONS.contains(&name.as_str()))
    {
        Some(name) => Err(format!(
            "table function {name}() is not allowed (a query may call only {})",
            ALLOWED_TABLE_FUNCTIONS.join(", ")
        )),
        None => Ok(()),
    }
}

/// The names of the table functions in a parse tree, lowercase; a node whose name cannot be read
/// gives an empty name, which no list allows.
fn table_functions(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("TABLE_FUNCTION") {
                let name = map
                    .get("function")
                    .and_then(|function| function.get("function_name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                out.push(name.to_lowercase());
            }
            for value in map.values() {
                table_functions(value, out);
            }
        }
        Value::Array(values) => {
            for value in values {
                table_functions(value, out);
            }
        }
        _ => {}
    }
}

/// A query's rows with typed access to their cells: Arrow arrays when read from the file, JSON
/// values when read through the owner's API. Integers of any width read as `int`.
#[derive(Debug)]
pub enum Rows {
    Arrow(RecordBatch),
    Json(QueryResult),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Arrow(batch) => batch.num_rows(),
            Rows::Json(result) => result.rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        match self {
            Rows::Arrow(batch) => batch.schema().index_of(name).ok(),
            Rows::Json(result) => result.column(name),
        }
    }

    fn array(batch: &RecordBatch, row: usize, column: usize) -> Option<&dyn Array> {
        let array = batch.column(column).as_ref();
        (!array.is_null(row)).then_some(array)
    }

    pub fn text(&self, row: usize, column: usize) -> Option<&str> {
        match self {
            Rows::Arrow(batch) => {
                let array = Rows::array(batch, row, column)?;
                match array.data_type() {
                    DataType::Utf8 => Some(array.as_string::<i32>().value(row)),
                    DataType::LargeUtf8 => Some(array.as_string::<i64>().value(row)),
                    _ => None,
                }
            }
            Rows::Json(result) => result.rows[row][column].as_str(),
        }
    }

    pub fn bool(&self, row: usize, column: usize) -> Option<bool> {
        match self {
            Rows::Arrow(batch) => Rows::array(batch, row, column)?
                .as_boolean_opt()
                .map(|array| array.value(row)),
            Rows::Json(result) => result.rows[row][column].as_bool(),
        }
    }

    pub fn int(&self, row: usize, column: usize) -> Option<i64> {
        self.integer(row, column)
            .and_then(|value| i64::try_from(value).ok())
    }

    pub fn uint(&self, row: usize, column: usize) -> Option<u64> {
        self.integer(row, column)
            .and_then(|value| u64::try_from(value).ok())
    }

    fn integer(&self, row: usize, column: usize) -> Option<i128> {
        match self {
            Rows::Arrow(batch) => integer_at(Rows::array(batch, row, column)?, row),
            Rows::Json(result) => {
                let value = &result.rows[row][column];
                value
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| value.as_u64().map(i128::from))
            }
        }
    }
}

/// DuckDB's message, with a hint for the refusals users meet.
fn explain_error(message: &str) -> String {
    let message = message.trim();
    let first = message.lines().next().unwrap_or_default();
    let hint = if first.contains("file system operations are disabled")
        || first.contains("external access")
    {
        " (reading files and other databases is disabled: only the tables of eval.duckdb can be queried)"
    } else if first.contains("configuration has been locked")
        || first.contains("lock_configuration")
    {
        " (settings are locked)"
    } else if first.contains("syntax error")
        || first.contains("Expected a single SELECT statement")
        || first.contains("cannot be checked before it runs")
    {
        " (only a single read-only query is accepted: SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE)"
    } else {
        ""
    };
    match message.split_once('\n') {
        Some((first, rest)) => format!("{first}{hint}\n{rest}"),
        None => format!("{message}{hint}"),
    }
}

/// The rows of the executed statement as JSON values, fetched chunk by chunk (a streaming
/// result: DuckDB does not hold the whole answer) until a limit is reached.
fn collect(
    statement: &mut duckdb::Statement<'_>,
    params: &[Param],
    limits: Limits,
) -> Result<QueryResult, String> {
    let schema = statement
        .stream_arrow(bound(params))
        .map_err(|error| error.to_string())?
        .get_schema();
    let mut result = QueryResult {
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        types: schema
            .fields()
            .iter()
            .map(|f| type_name(f.data_type()))
            .collect(),
        rows: Vec::new(),
        truncated: false,
        truncated_by: None,
        elapsed_ms: 0,
    };
    let options = FormatOptions::default().with_null("");
    let mut bytes = 0usize;
    'batches: while let Some(array) = statement.step().map_err(|error| error.to_string())? {
        let batch = RecordBatch::from(&array);
        let formatters: Vec<ArrayFormatter<'_>> = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(|error| error.to_string())?;
        for row in 0..batch.num_rows() {
            if result.rows.len() == limits.max_rows {
                result.truncated = true;
                result.truncated_by = Some(Truncation::Rows);
                break 'batches;
            }
            let values: Vec<Value> = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(column, formatter)| cell(column.as_ref(), formatter, row))
                .collect();
            bytes = bytes.saturating_add(values.iter().map(cell_bytes).sum());
            if bytes > limits.max_bytes {
                result.truncated = true;
                result.truncated_by = Some(Truncation::Bytes);
                break 'batches;
            }
            result.rows.push(values);
        }
    }
    Ok(result)
}

/// What a cell counts toward an answer's byte limit: its text, or 8 bytes.
fn cell_bytes(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        _ => 8,
    }
}

fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".to_string(),
        DataType::Boolean => "boolean".to_string(),
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => "time".to_string(),
        other if other.is_integer() => "integer".to_string(),
        other if other.is_floating() || matches!(other, DataType::Decimal128(..)) => {
            "number".to_string()
        }
        other => other.to_string().to_lowercase(),
    }
}

fn cell(array: &dyn Array, formatter: &ArrayFormatter<'_>, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    // Text, booleans and numbers are read straight from their arrays (a scorecard reads tens of
    // thousands of rows); other types as Arrow formats them.
    match array.data_type() {
        DataType::Utf8 => return Value::String(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => {
            return Value::String(array.as_string::<i64>().value(row).to_string());
        }
        DataType::Boolean => return Value::Bool(array.as_boolean().value(row)),
        _ => {}
    }
    if let Some(value) = integer_at(array, row) {
        // Every width up to 64 bits fits one of the two.
        return i64::try_from(value)
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(u64::try_from(value).unwrap_or(u64::MAX)));
    }
    let text = || formatter.value(row).to_string();
    match array.data_type() {
        DataType::Float64 => number(array.as_primitive::<Float64Type>().value(row), text),
        DataType::Float32 => number(
            f64::from(array.as_primitive::<Float32Type>().value(row)),
            text,
        ),
        data_type if data_type.is_integer() => {
            let text = text();
            text.parse::<i64>()
                .map(Value::from)
                .or_else(|_| text.parse::<u64>().map(Value::from))
                .unwrap_or(Value::String(text))
        }
        _ => Value::String(text()),
    }
}

/// The value at `row` of an integer array of up to 64 bits (not null); `None` for other types.
fn integer_at(array: &dyn Array, row: usize) -> Option<i128> {
    Some(match array.data_type() {
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
        _ => return None,
    })
}

fn number(value: f64, text: impl FnOnce() -> String) -> Value {
    serde_json::Number::from_f64(value).map_or_else(|| Value::String(text()), Value::Number)
}

/// A value as the terminal and CSV show it.
pub fn display(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
