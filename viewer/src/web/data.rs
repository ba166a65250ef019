//! The data of the pages that combine several views: each is also the page's JSON.

use serde::Serialize;
use serde_json::Value;

use crate::query::Param;
use crate::reader::Reader;
use crate::show::{CampaignHeader, CampaignTrial};
use crate::views::scorecard::GroupCard;
use crate::views::{
    BaselineComparison, VariantComparison, VariantRow, ViewError, joined, resolve, typed_rows,
};

type Result<T, E = ViewError> = std::result::Result<T, E>;

/// `/campaigns/{id}`: `evalctl show` (the campaign and its trials), `evalctl analyze` (the groups'
/// scorecards), `evalctl compare-baseline` (empty when it has nothing to compare), the variants
/// as published (name, model, prompt) and the campaign file.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignPage {
    pub campaign: CampaignHeader,
    pub trials: Vec<CampaignTrial>,
    pub groups: Vec<GroupCard>,
    pub n_scored: usize,
    pub baseline: Vec<BaselineComparison>,
    pub variants: Vec<PublishedVariant>,
    /// The campaign file's text, byte for byte.
    pub file_text: Option<String>,
}

/// A variant as the campaign published it.
#[derive(Debug, Clone, Serialize)]
pub struct PublishedVariant {
    pub name: Option<String>,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub file: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct Published {
    data: Option<String>,
    file_text: Option<String>,
}

/// What the campaign's `CampaignPublished` says of its variants, and its file.
fn published(
    reader: &Reader,
    campaign_id: &str,
) -> Result<(Vec<PublishedVariant>, Option<String>)> {
    let published: Option<Published> = typed_rows(
        reader,
        "SELECT e.data, c.file_text FROM events e JOIN campaigns c USING (campaign_id)
         WHERE e.campaign_id = (SELECT p1 FROM params) AND e.type = 'CampaignPublished'
         ORDER BY e.seq LIMIT 1",
        &[Param::from(campaign_id)],
    )?
    .into_iter()
    .next();
    let Some(published) = published else {
        return Ok((Vec::new(), None));
    };
    let field =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let variants = published
        .data
        .as_deref()
        .and_then(|data| serde_json::from_str::<Value>(data).ok())
        .and_then(|data| data.get("variants").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .map(|resolved| {
            let variant = resolved.get("variant").cloned().unwrap_or(Value::Null);
            PublishedVariant {
                name: field(&variant, "name"),
                model: field(&variant, "model"),
                system_prompt: field(&variant, "system_prompt"),
                file: field(resolved, "file"),
            }
        })
        .collect();
    Ok((variants, published.file_text))
}

pub fn campaign(reader: &Reader, id: &str) -> Result<CampaignPage> {
    let campaign_id = resolve(reader, "campaigns", "campaign_id", id, "campaign")?;
    let campaign_id = campaign_id.as_str();
    // The views read at once, each on a connection of its own; `analyze` and `compare-baseline`
    // share one read of the campaign's scored trials.
    let (shown, published, analyzed, baseline) = std::thread::scope(|scope| {
        let own = reader.try_clone();
        let shown = scope.spawn(move || crate::show::show_resolved_campaign(&own?, campaign_id));
        let own = reader.try_clone();
        let published = scope.spawn(move || published(&own?, campaign_id));
        let (analyzed, baseline) = match crate::views::campaign_trials(reader, campaign_id) {
            Err(error) => (Err(error), Ok(Vec::new())),
            Ok(trials) => std::thread::scope(|inner| {
                let trials = &trials;
                let own = reader.try_clone();
                let analyzed = inner.spawn(move || {
                    crate::views::analyze_trials(&own?, campaign_id.to_string(), trials, false)
                });
                let baseline = match crate::views::compare_baseline_trials(
                    reader,
                    campaign_id.to_string(),
                    None,
                    trials,
                ) {
                    Ok(view) => Ok(view.data.comparisons),
                    Err(ViewError::NotFound(_)) => Ok(Vec::new()),
                    Err(error) => Err(error),
                };
                (joined(analyzed), baseline)
            }),
        };
        (joined(shown), joined(published), analyzed, baseline)
    });
    let shown = shown?.data;
    let analyzed = analyzed?.data;
    let (variants, file_text) = published?;
    Ok(CampaignPage {
        campaign: shown.campaign,
        trials: shown.trials,
        groups: analyzed.groups,
        n_scored: analyzed.n_scored,
        baseline: baseline?,
        variants,
        file_text,
    })
}

/// `/variants`: the subject × chaos pairs that have variant trials, and for a chosen pair the
/// `evalctl compare-variants` scorecard.
#[derive(Debug, Clone, Serialize)]
pub struct VariantsPage {
    pub subject: Option<String>,
    pub chaos_type: Option<String>,
    pub choices: Vec<Choice>,
    pub variants: Vec<VariantRow>,
    pub scorecard: Option<VariantComparison>,
}

/// A subject × chaos type that variants ran against.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Choice {
    pub subject: String,
    pub chaos_type: String,
}

pub fn variants(reader: &Reader, choice: Option<&(String, String)>) -> Result<VariantsPage> {
    // The list and the scorecard read independently: the scorecard on a connection of its own,
    // at the same time.
    let (listed, scorecard) = std::thread::scope(|scope| {
        let scorecard = choice.map(|(subject, chaos)| {
            let own = reader.try_clone();
            scope.spawn(move || crate::views::compare_variants(&own?, subject, chaos, &[]))
        });
        let listed = crate::views::list_variants(reader);
        (listed, scorecard.map(joined))
    });
    let listed = listed?.data;
    let scorecard = scorecard.transpose()?.map(|view| view.data);
    let mut choices: Vec<Choice> = listed
        .variants
        .iter()
        .map(|row| Choice {
            subject: row.subject.clone(),
            chaos_type: row.chaos_type.clone(),
        })
        .collect();
    choices.sort();
    choices.dedup();
    Ok(VariantsPage {
        subject: choice.map(|(subject, _)| subject.clone()),
        chaos_type: choice.map(|(_, chaos)| chaos.clone()),
        choices,
        variants: listed.variants,
        scorecard,
    })
}

/// The tables and views with their columns, from the projector's definitions.
#[derive(Debug, Clone, Serialize)]
pub struct Tables {
    pub tables: Vec<TableDoc>,
    pub views: Vec<ViewDoc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableDoc {
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: Vec<ColumnDoc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnDoc {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub doc: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViewDoc {
    pub name: &'static str,
    pub doc: &'static str,
}

pub fn tables() -> Tables {
    Tables {
        tables: projector::schema::TABLES
            .iter()
            .map(|table| TableDoc {
                name: table.name,
                doc: table.doc,
                columns: table
                    .columns
                    .iter()
                    .map(|column| ColumnDoc {
                        name: column.name,
                        kind: column.kind.doc_name(),
                        doc: column.doc,
                    })
                    .collect(),
            })
            .collect(),
        views: projector::schema::VIEWS
            .iter()
            .map(|view| ViewDoc {
                name: view.name,
                doc: view.doc,
            })
            .collect(),
    }
}
