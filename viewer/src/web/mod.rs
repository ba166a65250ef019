//! The web viewer: one axum app with the pages (rendered on the server by `maud`, which escapes
//! every value it inserts), their JSON under `/api/...`, the read-only SQL, server-sent progress
//! events and the embedded assets. Every page is built from the same data function as its JSON,
//! and those call the CLI's views (`views.rs`, `show.rs`), so the web and the terminal show one
//! set of figures.
//!
//! Where answers come from is a `Source`: the database instance of the process that owns the
//! file (`evalctl up`, `evalctl project`), or the file's path, opened for each request through
//! `Reader::open` (read-only, or the owner's API when one is announced), so that a standalone
//! viewer never holds the file between requests and an owner can start meanwhile.

mod charts;
mod data;
mod pages;

pub use pages::encode;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::api::{Database, bounded};
use crate::query::{Limits, Param, QueryError, QueryResult, display};
use crate::reader::{ApiError, Reader, SqlRequest};
use crate::views::ViewError;

/// The policy sent with every response: only this origin's scripts, styles and images (SVG
/// charts are inline markup, not scripts), no inline scripts, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Rows a page shows at most; the CSV download may have more.
const PAGE_ROWS: usize = 1_000;
const CSV_ROWS: usize = 100_000;
/// The query time a page or download may take.
const QUERY_TIMEOUT_MS: u64 = 30_000;

/// Where the viewer reads, and the page data it already computed.
#[derive(Clone, Debug)]
pub struct Source {
    origin: Origin,
    /// None when caching is off (the benchmark's uncached figures).
    cache: Option<Arc<Mutex<PageCache>>>,
}

#[derive(Clone, Debug)]
enum Origin {
    /// The owner's database instance: each request clones a connection.
    Shared(Database),
    /// The file, opened for each request (read-only, or through its owner's API).
    File(PathBuf),
}

/// What the data behind the pages was when an answer was computed: the projector's last
/// sequence, or, for a file that no process owns (so nothing writes it), its size and
/// modification time and its write-ahead log's.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Version {
    Sequence(Option<u64>),
    File(Vec<(u64, Option<std::time::SystemTime>)>),
}

/// Page data by request, each with the data version it was computed at: a page asked again
/// before the projector commits is answered without a query. Least recently used out first.
#[derive(Debug, Default)]
struct PageCache {
    entries: HashMap<String, (Version, Arc<Value>, u64)>,
    clock: u64,
}

/// Page data kept at most; the largest (a campaign of thousands of trials) are a few MB.
const CACHED_PAGES: usize = 64;

impl PageCache {
    fn get(&mut self, key: &str, version: &Version) -> Option<Arc<Value>> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entries.get_mut(key)?;
        if entry.0 != *version {
            return None;
        }
        entry.2 = clock;
        Some(entry.1.clone())
    }

    fn put(&mut self, key: String, version: Version, value: Arc<Value>) {
        self.clock += 1;
        if self.entries.len() >= CACHED_PAGES && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.2)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (version, value, self.clock));
    }
}

impl Source {
    /// The owner's database instance (`evalctl up`, `evalctl project`).
    pub fn shared(database: Database) -> Source {
        Source::with(Origin::Shared(database))
    }

    /// The file at `path`, opened read-only for each request, or read through its owner's API
    /// while one runs; never held between requests, so that an owner can start meanwhile.
    pub fn file(path: PathBuf) -> Source {
        Source::with(Origin::File(path))
    }

    fn with(origin: Origin) -> Source {
        Source {
            origin,
            cache: Some(Arc::new(Mutex::new(PageCache::default()))),
        }
    }

    /// The same source computing every page afresh (for `evalctl bench viewer`).
    pub fn without_cache(mut self) -> Source {
        self.cache = None;
        self
    }

    fn reader(&self) -> Result<Reader, QueryError> {
        match &self.origin {
            Origin::Shared(database) => database.connection().map(Reader::Local),
            Origin::File(path) => Reader::open(path),
        }
    }

    /// Runs `work` with a reader on a blocking thread (DuckDB and the API client block).
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Reader) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, AppError> {
        let source = self.clone();
        tokio::task::spawn_blocking(move || {
            let reader = source.reader().map_err(ViewError::Query)?;
            work(&reader)
        })
        .await
        .map_err(|error| AppError::unavailable(format!("the query thread failed: {error}")))?
        .map_err(AppError::from)
    }

    /// The page data `work` computes for `key`, from the cache while the data has not changed.
    async fn cached(
        &self,
        key: String,
        work: impl FnOnce(&Reader) -> Result<Value, ViewError> + Send + 'static,
    ) -> Result<Arc<Value>, AppError> {
        let source = self.clone();
        tokio::task::spawn_blocking(move || {
            let Some(cache) = &source.cache else {
                let reader = source.reader().map_err(ViewError::Query)?;
                return work(&reader).map(Arc::new);
            };
            // A file nobody owns changes only when it is rewritten: its stamp says whether,
            // without opening it.
            let (version, reader) = match &source.origin {
                Origin::File(path) if Reader::owner(path).is_none() => {
                    (Version::File(file_stamp(path)), None)
                }
                _ => {
                    let reader = source.reader().map_err(ViewError::Query)?;
                    (Version::Sequence(last_sequence(&reader)?), Some(reader))
                }
            };
            if let Some(value) = lock(cache).get(&key, &version) {
                return Ok(value);
            }
            let reader = match reader {
                Some(reader) => reader,
                None => source.reader().map_err(ViewError::Query)?,
            };
            let value = Arc::new(work(&reader)?);
            lock(cache).put(key, version, value.clone());
            Ok(value)
        })
        .await
        .map_err(|error| AppError::unavailable(format!("the query thread failed: {error}")))?
        .map_err(AppError::from)
    }
}

fn lock(cache: &Mutex<PageCache>) -> std::sync::MutexGuard<'_, PageCache> {
    // The cache holds no invariant a panic could break half-way.
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The sizes and modification times of the file and its write-ahead log.
fn file_stamp(path: &std::path::Path) -> Vec<(u64, Option<std::time::SystemTime>)> {
    let mut wal = path.as_os_str().to_owned();
    wal.push(".wal");
    [path.to_path_buf(), PathBuf::from(wal)]
        .iter()
        .map(|file| match std::fs::metadata(file) {
            Ok(meta) => (meta.len(), meta.modified().ok()),
            Err(_) => (0, None),
        })
        .collect()
}

/// The whole viewer: pages, `/api/...`, assets.
pub fn app(source: Source) -> Router {
    Router::new()
        .route("/", get(campaigns_page))
        .route("/campaigns/{id}", get(campaign_page))
        .route("/trials/{id}", get(trial_page))
        .route("/variants", get(variants_page))
        .route("/sql", get(sql_page))
        .route("/sql.csv", get(sql_csv))
        .route("/api/campaigns", get(campaigns_api))
        .route("/api/campaigns/{id}", get(campaign_api))
        .route("/api/trials/{id}", get(trial_api))
        .route("/api/variants", get(variants_api))
        .route("/api/sql", get(sql_api_get).post(sql_api_post))
        .route("/api/tables", get(tables_api))
        .route("/api/events", get(progress_events))
        .route("/assets/style.css", get(style))
        .route("/assets/app.js", get(script))
        .route("/api/{*rest}", get(api_not_found).post(api_not_found))
        .fallback(page_not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(source)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

// ---------------------------------------------------------------------------------------------
// errors

/// What went wrong, and whether to answer with a page or JSON.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    json: bool,
}

impl AppError {
    fn bad_request(message: impl Into<String>) -> AppError {
        AppError {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_request",
            message: message.into(),
            json: false,
        }
    }

    fn not_found(message: impl Into<String>) -> AppError {
        AppError {
            status: StatusCode::NOT_FOUND,
            kind: "not_found",
            message: message.into(),
            json: false,
        }
    }

    fn unavailable(message: impl Into<String>) -> AppError {
        AppError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "unavailable",
            message: message.into(),
            json: false,
        }
    }

    fn into_json(mut self) -> AppError {
        self.json = true;
        self
    }
}

impl From<ViewError> for AppError {
    fn from(error: ViewError) -> AppError {
        match error {
            ViewError::NotFound(message) => AppError::not_found(message),
            ViewError::Invalid(message) => AppError::bad_request(message),
            ViewError::Query(error) => AppError::from(error),
        }
    }
}

impl From<QueryError> for AppError {
    fn from(error: QueryError) -> AppError {
        let message = error.to_string();
        match error {
            QueryError::Sql(_) => AppError {
                kind: "sql",
                ..AppError::bad_request(message)
            },
            QueryError::Timeout(_) => AppError {
                status: StatusCode::REQUEST_TIMEOUT,
                kind: "timeout",
                ..AppError::bad_request(message)
            },
            QueryError::NoDatabase(_) | QueryError::Open(_) | QueryError::Remote { .. } => {
                AppError::unavailable(message)
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.json {
            return (
                self.status,
                Json(ApiError {
                    error: self.message,
                    kind: self.kind.to_string(),
                }),
            )
                .into_response();
        }
        (
            self.status,
            Html(pages::error(self.status, &self.message).into_string()),
        )
            .into_response()
    }
}

type PageResult = Result<Response, AppError>;
type Params = Query<HashMap<String, String>>;

fn html(markup: maud::Markup) -> Response {
    Html(markup.into_string()).into_response()
}

async fn page_not_found(uri: axum::http::Uri) -> AppError {
    AppError::not_found(format!(
        "there is no page at {}; the campaigns are at /",
        uri.path()
    ))
}

async fn api_not_found(uri: axum::http::Uri) -> AppError {
    AppError::not_found(format!(
        "no API route {}; the routes are /api/campaigns, /api/campaigns/ID, /api/trials/ID, /api/variants, /api/sql, /api/tables, /api/events",
        uri.path()
    ))
    .into_json()
}

/// A whole-number parameter within `range`, or the default.
fn number_param(
    params: &HashMap<String, String>,
    name: &str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, AppError> {
    match params.get(name).map(|text| text.trim()) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|value| range.contains(value))
            .ok_or_else(|| {
                AppError::bad_request(format!(
                    "{name} must be a whole number from {} to {}, not {text:?}",
                    range.start(),
                    range.end()
                ))
            }),
    }
}

// ---------------------------------------------------------------------------------------------
// campaigns

struct ListRequest {
    filter: Option<String>,
    limit: usize,
    offset: usize,
}

fn list_request(params: &HashMap<String, String>) -> Result<ListRequest, AppError> {
    Ok(ListRequest {
        filter: params
            .get("q")
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty()),
        limit: number_param(params, "limit", 200, 1..=1_000)?,
        offset: number_param(params, "offset", 0, 0..=usize::MAX)?,
    })
}

async fn campaigns_json(source: &Source, request: ListRequest) -> Result<Arc<Value>, AppError> {
    let key = format!(
        "campaigns {:?} {} {}",
        request.filter, request.limit, request.offset
    );
    source
        .cached(key, move |reader| {
            crate::views::list(
                reader,
                request.filter.as_deref(),
                request.limit,
                request.offset,
            )
            .map(|view| view.json)
        })
        .await
}

async fn campaigns_page(State(source): State<Source>, Query(params): Params) -> PageResult {
    let request = list_request(&params)?;
    let data = campaigns_json(&source, request).await?;
    Ok(html(pages::campaigns(&data)))
}

async fn campaigns_api(State(source): State<Source>, Query(params): Params) -> PageResult {
    let request = list_request(&params).map_err(AppError::into_json)?;
    let data = campaigns_json(&source, request)
        .await
        .map_err(AppError::into_json)?;
    Ok(Json(&*data).into_response())
}

async fn campaign_json(source: &Source, id: String) -> Result<Arc<Value>, AppError> {
    source
        .cached(format!("campaign {id}"), move |reader| {
            data::campaign(reader, &id)
        })
        .await
}

async fn campaign_page(State(source): State<Source>, Path(id): Path<String>) -> PageResult {
    let data = campaign_json(&source, id).await?;
    Ok(html(pages::campaign(&data)))
}

async fn campaign_api(State(source): State<Source>, Path(id): Path<String>) -> PageResult {
    let data = campaign_json(&source, id)
        .await
        .map_err(AppError::into_json)?;
    Ok(Json(&*data).into_response())
}

// ---------------------------------------------------------------------------------------------
// trials

async fn trial_json(source: &Source, id: String) -> Result<Arc<Value>, AppError> {
    source
        .cached(format!("trial {id}"), move |reader| {
            crate::show::show(reader, &id, true).map(|view| view.json)
        })
        .await
}

async fn trial_page(State(source): State<Source>, Path(id): Path<String>) -> PageResult {
    let data = trial_json(&source, id).await?;
    Ok(html(pages::trial(&data)))
}

async fn trial_api(State(source): State<Source>, Path(id): Path<String>) -> PageResult {
    let data = trial_json(&source, id).await.map_err(AppError::into_json)?;
    Ok(Json(&*data).into_response())
}

// ---------------------------------------------------------------------------------------------
// variants

/// The subject and chaos type asked for: both or neither.
fn variants_request(
    params: &HashMap<String, String>,
) -> Result<Option<(String, String)>, AppError> {
    let get = |name: &str| {
        params
            .get(name)
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
    };
    match (get("subject"), get("chaos")) {
        (Some(subject), Some(chaos)) => Ok(Some((subject, chaos))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(AppError::bad_request(
            "give the chaos type too: /variants?subject=etcd&chaos=node_kill",
        )),
        (None, Some(_)) => Err(AppError::bad_request(
            "give the subject too: /variants?subject=etcd&chaos=node_kill",
        )),
    }
}

async fn variants_json(
    source: &Source,
    choice: Option<(String, String)>,
) -> Result<Arc<Value>, AppError> {
    source
        .cached(format!("variants {choice:?}"), move |reader| {
            data::variants(reader, choice.as_ref())
        })
        .await
}

async fn variants_page(State(source): State<Source>, Query(params): Params) -> PageResult {
    let choice = variants_request(&params)?;
    let data = variants_json(&source, choice).await?;
    Ok(html(pages::variants(&data)))
}

async fn variants_api(State(source): State<Source>, Query(params): Params) -> PageResult {
    let choice = variants_request(&params).map_err(AppError::into_json)?;
    let data = variants_json(&source, choice)
        .await
        .map_err(AppError::into_json)?;
    Ok(Json(&*data).into_response())
}

// ---------------------------------------------------------------------------------------------
// SQL

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
        timeout_ms: QUERY_TIMEOUT_MS,
    }
}

async fn sql_page(State(source): State<Source>, Query(params): Params) -> PageResult {
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

async fn sql_csv(State(source): State<Source>, Query(params): Params) -> PageResult {
    let sql = required_sql(&params)?;
    let limits = Limits {
        max_rows: CSV_ROWS,
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

/// RFC 4180 CSV; a cell that a spreadsheet would run as a formula gets a leading `'`.
pub fn csv(result: &QueryResult) -> String {
    fn cell(text: &str) -> String {
        let text = if text.starts_with(['=', '+', '@', '\t', '\r'])
            || (text.starts_with('-') && text.parse::<f64>().is_err())
        {
            format!("'{text}")
        } else {
            text.to_string()
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>| cells.join(",") + "\r\n";
    out.push_str(&line(result.columns.iter().map(|c| cell(c)).collect()));
    for row in &result.rows {
        out.push_str(&line(
            row.iter().map(|value| cell(&display(value))).collect(),
        ));
    }
    out
}

async fn sql_api_get(State(source): State<Source>, Query(params): Params) -> PageResult {
    let sql = required_sql(&params).map_err(AppError::into_json)?;
    let limits = bounded(
        params.get("max_rows").and_then(|text| text.parse().ok()),
        params.get("timeout_ms").and_then(|text| text.parse().ok()),
    );
    let result = run_sql(&source, sql, Vec::new(), limits)
        .await
        .map_err(AppError::into_json)?;
    Ok(Json(result).into_response())
}

/// The read API of `Reader::Remote`: the same answers as `evalctl sql`.
async fn sql_api_post(State(source): State<Source>, body: axum::body::Bytes) -> PageResult {
    let request: SqlRequest = serde_json::from_slice(&body).map_err(|error| {
        AppError::bad_request(format!(
            "the body must be JSON {{\"sql\": \"SELECT ...\", \"params\": [scalars]}}: {error}"
        ))
        .into_json()
    })?;
    let limits = bounded(request.max_rows, request.timeout_ms);
    let result = run_sql(&source, request.sql, request.params, limits)
        .await
        .map_err(AppError::into_json)?;
    Ok(Json(result).into_response())
}

async fn tables_api() -> Json<Value> {
    Json(data::tables())
}

// ---------------------------------------------------------------------------------------------
// live updates

/// The projector's last committed sequence, or none before the first commit.
fn last_sequence(reader: &Reader) -> Result<Option<u64>, ViewError> {
    let result = reader.query(
        "SELECT max(last_sequence) AS last_sequence FROM projector_progress",
        &[],
        Limits {
            max_rows: 1,
            timeout_ms: 5_000,
        },
    )?;
    Ok(result
        .rows
        .first()
        .and_then(|row| row.first())
        .and_then(Value::as_u64))
}

/// `progress` events: the projector's last sequence now, then each time a commit moves it
/// (polled every second: commits happen at most every 250 ms, and a reader in another process
/// has no other signal).
async fn progress_events(
    State(source): State<Source>,
) -> Sse<impl futures::Stream<Item = Result<SseEvent, std::convert::Infallible>>> {
    let stream =
        futures::stream::unfold((source, None::<Option<u64>>), |(source, last)| async move {
            loop {
                if last.is_some() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let Ok(sequence) = source.read(last_sequence).await else {
                    if last.is_none() {
                        // Nothing readable yet: say so once, then keep polling.
                        let event = SseEvent::default()
                            .event("progress")
                            .data(r#"{"last_sequence":null}"#);
                        return Some((Ok(event), (source, Some(None))));
                    }
                    continue;
                };
                if last != Some(sequence) {
                    let event = SseEvent::default()
                        .event("progress")
                        .data(serde_json::json!({ "last_sequence": sequence }).to_string());
                    return Some((Ok(event), (source, Some(sequence))));
                }
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

// ---------------------------------------------------------------------------------------------
// assets

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}
