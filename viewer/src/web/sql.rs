//! The read-only SQL surface on the web: the `/sql` page, its CSV download, `GET /api/sql`,
//! `POST /api/sql` (what `Reader::Remote` calls, values bound as `params`) and `/api/tables`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::data;
use super::error::AppError;
use super::pages;
use super::routes::{PageResult, Params, html};
use super::source::Source;
use crate::api::bounded;
use crate::escape::csv_field;
use crate::query::{Limits, Param, QueryResult, display};
use crate::reader::SqlRequest;

/// Rows a page shows at most; the CSV download may have more.
const PAGE_ROWS: usize = 1_000;
const CSV_ROWS: usize = 100_000;
/// The query time a page or download may take.
const QUERY_TIMEOUT_MS: u64 = 30_000;

async fn run_sql(
    source: &Source,
    sql: String,
    params: Vec<Param>,
    limits: Limits,
) -> Result<QueryResult, AppError> {
    source
        .read(move |reader| Ok(reader.query(&sql, &params, limits)?))
        .await
}

fn page_limits() -> Limits {
    Limits {
        max_rows: PAGE_ROWS,
        max_bytes: crate::query::DEFAULT_MAX_BYTES,
        timeout_ms: QUERY_TIMEOUT_MS,
    }
}

pub(super) async fn sql_page(State(source): State<Source>, Query(params): Params) -> PageResult {
    let sql = params
        .get("q")
        .map(|text| text.trim().to_string())
        .unwrap_or_default();
    if sql.is_empty() {
        return Ok(html(pages::sql(&sql, None)));
    }
    match run_sql(&source, sql.clone(), Vec::new(), page_limits()).await {
        Ok(result) => Ok(html(pages::sql(&sql, Some(Ok(&result))))),
        Err(error) if error.status != StatusCode::SERVICE_UNAVAILABLE => Ok((
            error.status,
            html(pages::sql(&sql, Some(Err(&error.message)))),
        )
            .into_response()),
        Err(error) => Err(error),
    }
}

fn required_sql(params: &HashMap<String, String>) -> Result<String, AppError> {
    params
        .get("q")
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .ok_or_else(|| AppError::bad_request("give a query: ?q=SELECT ..."))
}

pub(super) async fn sql_csv(State(source): State<Source>, Query(params): Params) -> PageResult {
    let sql = required_sql(&params)?;
    let limits = Limits {
        max_rows: CSV_ROWS,
        max_bytes: crate::api::MAX_BYTES,
        timeout_ms: QUERY_TIMEOUT_MS,
    };
    let result = run_sql(&source, sql, Vec::new(), limits).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"query.csv\"",
            ),
        ],
        csv(&result),
    )
        .into_response())
}

/// RFC 4180 CSV; a cell that a spreadsheet would run as a formula gets a leading `'`
/// ([`csv_field`], which `evalctl sql --csv` shares).
pub(super) fn csv(result: &QueryResult) -> String {
    let mut out = String::new();
    let line = |cells: Vec<String>| cells.join(",") + "\r\n";
    out.push_str(&line(result.columns.iter().map(|c| csv_field(c)).collect()));
    for row in &result.rows {
        out.push_str(&line(
            row.iter().map(|value| csv_field(&display(value))).collect(),
        ));
    }
    out
}

pub(super) async fn sql_api_get(State(source): State<Source>, Query(params): Params) -> PageResult {
    let sql = required_sql(&params).map_err(AppError::into_json)?;
    let limits = bounded(
        params.get("max_rows").and_then(|text| text.parse().ok()),
        params.get("max_bytes").and_then(|text| text.parse().ok()),
        params.get("timeout_ms").and_then(|text| text.parse().ok()),
    );
    let result = run_sql(&source, sql, Vec::new(), limits)
        .await
        .map_err(AppError::into_json)?;
    Ok(Json(result).into_response())
}

/// The read API of `Reader::Remote`: the same answers as `evalctl sql`.
pub(super) async fn sql_api_post(
    State(source): State<Source>,
    body: axum::body::Bytes,
) -> PageResult {
    let request: SqlRequest = serde_json::from_slice(&body).map_err(|error| {
        AppError::bad_request(format!(
            "the body must be JSON {{\"sql\": \"SELECT ...\", \"params\": [scalars]}}: {error}"
        ))
        .into_json()
    })?;
    let limits = bounded(request.max_rows, request.max_bytes, request.timeout_ms);
    let result = run_sql(&source, request.sql, request.params, limits)
        .await
        .map_err(AppError::into_json)?;
    Ok(Json(result).into_response())
}

pub(super) async fn tables_api() -> Json<data::Tables> {
    Json(data::tables())
}
