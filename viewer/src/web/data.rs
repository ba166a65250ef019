//! The data of the pages that combine several views: each is also the page's JSON.

use serde_json::{Value, json};

use crate::query::Limits;
use crate::reader::Reader;
use crate::views::{ViewError, literal, resolve};

type Result<T, E = ViewError> = std::result::Result<T, E>;

/// `/campaigns/{id}`: `eval show` (the campaign and its trials), `eval analyze` (the groups'
/// scorecards), `eval compare-baseline` (null when it has nothing to compare), and the variants
/// as published (name, model, prompt).
pub fn campaign(reader: &Reader, id: &str) -> Result<Value> {
    let campaign_id = resolve(reader, "campaigns", "campaign_id", id, "campaign")?;
    let shown = crate::show::show(reader, &campaign_id, false)?.json;
    let analyzed = crate::views::analyze(reader, &campaign_id, false)?.json;
    let baseline = match crate::views::compare_baseline(reader, &campaign_id, None) {
        Ok(view) => view.json["comparisons"].clone(),
        Err(ViewError::NotFound(_)) => Value::Array(Vec::new()),
        Err(error) => return Err(error),
    };
    let published = reader.query(
        &format!(
            "SELECT data FROM events WHERE campaign_id = {} AND type = 'CampaignPublished' ORDER BY seq LIMIT 1",
            literal(&campaign_id)
        ),
        Limits::default(),
    )?;
    let variants = published
        .rows
        .first()
        .and_then(|row| row.first())
        .and_then(Value::as_str)
        .and_then(|data| serde_json::from_str::<Value>(data).ok())
        .and_then(|data| data.get("variants").cloned())
        .and_then(|variants| variants.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|resolved| {
            let variant = &resolved["variant"];
            json!({
                "name": variant["name"],
                "model": variant["model"],
                "system_prompt": variant["system_prompt"],
                "file": resolved["file"],
            })
        })
        .collect::<Vec<_>>();
    Ok(json!({
        "campaign": shown["campaign"],
        "trials": shown["trials"],
        "groups": analyzed["groups"],
        "n_scored": analyzed["n_scored"],
        "baseline": baseline,
        "variants": variants,
    }))
}

/// `/variants`: the subject × chaos pairs that have variant trials, and for a chosen pair the
/// `eval compare-variants` scorecard.
pub fn variants(reader: &Reader, choice: Option<&(String, String)>) -> Result<Value> {
    let listed = crate::views::list_variants(reader)?.json;
    let mut pairs: Vec<(String, String)> = listed["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            (
                row["subject"].as_str().unwrap_or_default().to_string(),
                row["chaos_type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    let scorecard = match choice {
        Some((subject, chaos)) => crate::views::compare_variants(reader, subject, chaos, &[])?.json,
        None => Value::Null,
    };
    Ok(json!({
        "subject": choice.map(|(subject, _)| subject),
        "chaos_type": choice.map(|(_, chaos)| chaos),
        "choices": pairs.iter().map(|(subject, chaos)| json!({"subject": subject, "chaos_type": chaos})).collect::<Vec<_>>(),
        "variants": listed["variants"],
        "scorecard": scorecard,
    }))
}

/// A column kind's DuckDB type, as the README names it.
fn kind_name(kind: projector::schema::Kind) -> &'static str {
    use projector::schema::Kind;
    match kind {
        Kind::Json => "JSON text",
        Kind::Text => "VARCHAR",
        Kind::Int => "INTEGER",
        Kind::BigInt => "BIGINT",
        Kind::UBigInt => "UBIGINT",
        Kind::Double => "DOUBLE",
        Kind::Bool => "BOOLEAN",
        Kind::Time => "TIMESTAMP",
    }
}

/// The tables and views with their columns, from the projector's definitions.
pub fn tables() -> Value {
    let tables: Vec<Value> = projector::schema::TABLES
        .iter()
        .map(|table| {
            json!({
                "name": table.name,
                "doc": table.doc,
                "columns": table.columns.iter().map(|column| json!({
                    "name": column.name,
                    "type": kind_name(column.kind),
                    "doc": column.doc,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let views: Vec<Value> = projector::schema::VIEWS
        .iter()
        .map(|view| json!({"name": view.name, "doc": view.doc}))
        .collect();
    json!({"tables": tables, "views": views})
}
