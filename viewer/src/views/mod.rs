//! The seed harness's read commands, by their names, over the DuckDB tables: `list`, `analyze`,
//! `compare`, `compare-baseline`, `compare-variants`, `list-variants` (and `show`, in
//! `crate::show`). Each returns a [`View`]: a `Serialize` struct (what `--json` prints and what
//! the web pages render, field by field) and a text rendering of it. Every figure carries its n.
//!
//! Beside the medians and intervals, each scorecard carries the seed harness's own figures, so an
//! imported `eval.db` reads as it did there: outcome counts, the mean time to detect (over the
//! detected trials), the mean time to resolve over every trial with a resolution whatever its
//! outcome (a baseline's self-heal; the seed harness's `avg_time_to_resolve_sec`, whereas the
//! median time to recover counts successes alone), and total, unique and destructive commands.

mod analyze;
mod compare;
mod graded;
mod list;
pub mod scorecard;
mod variants;

pub use analyze::{Analysis, CommandRow, analyze};
pub(crate) use analyze::{analyze_trials, campaign_trials};
pub(crate) use compare::compare_baseline_trials;
pub use compare::{BaselineComparison, BaselineComparisons, compare_baseline, compare_campaigns};
pub use list::{CampaignList, CampaignRow, list};
pub use variants::{VariantComparison, VariantList, VariantRow, compare_variants, list_variants};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::query::{Limits, Param, QueryError, QueryResult, display};
use crate::reader::Reader;

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// A row that does not read as its view's type: the tables and the view disagree.
    #[error("an answer of the database does not read as expected: {0}")]
    Row(String),
}

pub(crate) type Result<T, E = ViewError> = std::result::Result<T, E>;

/// A view's answer: its data (what `--json` prints, what a page renders) and the text for a
/// person.
#[derive(Debug, Clone)]
pub struct View<T> {
    pub data: T,
    pub text: String,
}

impl<T: Serialize> View<T> {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::to_value(&self.data).expect("a view serializes")
    }
}

/// Bounds of the views' own queries.
pub(crate) const VIEW_LIMITS: Limits = Limits {
    max_rows: 1_000_000,
    max_bytes: crate::api::MAX_BYTES,
    timeout_ms: 60_000,
};

/// Runs one of the views' own queries; the `n`th of `params` is `(SELECT pn FROM params)` in it.
pub(crate) fn query(reader: &Reader, sql: &str, params: &[Param]) -> Result<QueryResult> {
    Ok(reader.view_query(sql, params, VIEW_LIMITS)?)
}

/// Rows as JSON objects keyed by column name.
pub(crate) fn objects(result: &QueryResult) -> Vec<serde_json::Map<String, Value>> {
    result
        .rows
        .iter()
        .map(|row| {
            result
                .columns
                .iter()
                .cloned()
                .zip(row.iter().cloned())
                .collect()
        })
        .collect()
}

/// [`query`]'s rows, each read as a `T` (by column name).
pub(crate) fn typed_rows<T: DeserializeOwned>(
    reader: &Reader,
    sql: &str,
    params: &[Param],
) -> Result<Vec<T>> {
    objects(&query(reader, sql, params)?)
        .into_iter()
        .map(|row| {
            serde_json::from_value(Value::Object(row))
                .map_err(|error| ViewError::Row(error.to_string()))
        })
        .collect()
}

/// Resolves an id prefix among the values of `column` in `table`.
pub fn resolve(
    reader: &Reader,
    table: &str,
    column: &str,
    prefix: &str,
    what: &str,
) -> Result<String> {
    let result = query(
        reader,
        &format!(
            "SELECT DISTINCT {column} FROM {table}
             WHERE {column} LIKE (SELECT p1 FROM params) ESCAPE '\\' ORDER BY 1 LIMIT 6"
        ),
        &[prefix_pattern(prefix, what)?],
    )?;
    let ids: Vec<String> = result.rows.iter().map(|row| display(&row[0])).collect();
    pick_one(ids, prefix, what)
}

/// The `LIKE` pattern of the ids that start with `prefix` (`ESCAPE '\\'`), for [`resolve`] and for
/// views that resolve the id in the query that reads its row.
pub(crate) fn prefix_pattern(prefix: &str, what: &str) -> Result<Param> {
    if prefix.is_empty() {
        return Err(ViewError::Invalid(format!("an empty {what} id")));
    }
    Ok(Param::Text(format!(
        "{}%",
        prefix.replace('%', "").replace('_', "\\_")
    )))
}

/// The one of `matches` (the values that start with `prefix`, in order, at most 6), or the
/// error that none or several match.
pub(crate) fn pick_one<T>(mut matches: Vec<T>, prefix: &str, what: &str) -> Result<T>
where
    T: std::fmt::Display,
{
    match matches.len() {
        0 => Err(ViewError::NotFound(format!(
            "no {what} matches {prefix:?}; `{program} list` shows the campaigns",
            program = schemas::program::name()
        ))),
        1 => Ok(matches.remove(0)),
        _ => Err(ViewError::Invalid(format!(
            "{prefix:?} matches several {what}s ({}{}); give more characters",
            matches
                .iter()
                .take(5)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if matches.len() > 5 { ", …" } else { "" }
        ))),
    }
}

/// A success rate `[0, 1]` as a whole percent, `–` without one.
pub(crate) fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_string(), |rate| format!("{:.0}%", rate * 100.0))
}

/// `n_success / n_graded`; none before a trial is graded.
pub(crate) fn success_rate(n_success: i64, n_graded: i64) -> Option<f64> {
    (n_graded > 0).then(|| n_success as f64 / n_graded as f64)
}

/// The first 12 characters of an id.
pub(crate) fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// A scoped thread's result (views read at once on threads of their own); its panic goes on in
/// the caller.
pub(crate) fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
