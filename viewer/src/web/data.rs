//! The data of the pages that combine several views: each is also the page's JSON.

use serde_json::{Value, json};

use crate::query::{Limits, Param};
use crate::reader::Reader;
use crate::views::{ViewError, resolve};

type Result<T, E = ViewError> = std::result::Result<T, E>;

/// `/campaigns/{id}`: `evalctl show` (the campaign and its trials), `evalctl analyze` (the groups'
/// scorecards), `evalctl compare-baseline` (null when it has nothing to compare), and the variants
/// as published (name, model, prompt).
pub fn campaign(reader: &Reader, id: &str) -> Result<Value> {
    let campaign_id = resolve(reader, "campaigns", "campaign_id", id, "campaign")?;
    // The four views read independently, each on a connection of its own, at once.
    let (shown, analyzed, baseline, published) = std::thread::scope(|scope| {
        let on_own = |work: fn(&Reader, &str) -> Result<Value>| {
            let reader = reader.try_clone();
            let campaign_id = campaign_id.as_str();
            scope.spawn(move || work(&reader?, campaign_id))
        };
        let shown = on_own(|reader, id| Ok(crate::show::show(reader, id, false)?.json));
        let analyzed = on_own(|reader, id| Ok(crate::views::analyze(reader, id, false)?.json));
        let baseline =
            on_own(
                |reader, id| match crate::views::compare_baseline(reader, id, None) {
                    Ok(view) => Ok(view.json["comparisons"].clone()),
                    Err(ViewError::NotFound(_)) => Ok(Value::Array(Vec::new())),
                    Err(error) => Err(error),
                },
            );
        let published = on_own(|reader, id| {
            let result = reader.query(
                "SELECT data FROM events
                 WHERE campaign_id = (SELECT p1 FROM params) AND type = 'CampaignPublished'
                 ORDER BY seq LIMIT 1",
                &[Param::from(id)],
                Limits::default(),
            )?;
            Ok(result
                .rows
                .first()
                .and_then(|row| row.first())
                .cloned()
                .unwrap_or(Value::Null))
        });
        let join = |handle: std::thread::ScopedJoinHandle<'_, Result<Value>>| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        };
        (join(shown), join(analyzed), join(baseline), join(published))
    });
    let (shown, analyzed, baseline, published) = (shown?, analyzed?, baseline?, published?);
    let variants = published
        .as_str()
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
/// `evalctl compare-variants` scorecard.
pub fn variants(reader: &Reader, choice: Option<&(String, String)>) -> Result<Value> {
    // The list and the scorecard read independently: the scorecard on a connection of its own,
    // at the same time.
    let (listed, scorecard) = std::thread::scope(|scope| {
        let scorecard = choice.map(|(subject, chaos)| {
            let reader = reader.try_clone();
            scope.spawn(move || -> Result<Value> {
                Ok(crate::views::compare_variants(&reader?, subject, chaos, &[])?.json)
            })
        });
        let listed = crate::views::list_variants(reader).map(|view| view.json);
        let scorecard = scorecard.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (listed, scorecard)
    });
    let listed = listed?;
    let scorecard = scorecard.transpose()?.unwrap_or(Value::Null);
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
    Ok(json!({
        "subject": choice.map(|(subject, _)| subject),
        "chaos_type": choice.map(|(_, chaos)| chaos),
        "choices": pairs.iter().map(|(subject, chaos)| json!({"subject": subject, "chaos_type": chaos})).collect::<Vec<_>>(),
        "variants": listed["variants"],
        "scorecard": scorecard,
    }))
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
                    "type": column.kind.doc_name(),
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
