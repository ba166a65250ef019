//! `evalctl list`: the campaigns, newest first, with their progress and success rate.

use serde::{Deserialize, Serialize};

use super::{Result, View, percent, success_rate, typed_rows};
use crate::query::Param;
use crate::reader::Reader;
use crate::table::{Column, TextTable};

/// The campaigns a `list` asked for.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignList {
    pub campaigns: Vec<CampaignRow>,
    pub filter: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

/// One campaign with its progress and its operator trials' outcomes (baseline and control trials
/// left out).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignRow {
    pub campaign_id: String,
    pub name: Option<String>,
    pub status: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub published_at: Option<String>,
    pub n_trials: Option<i64>,
    pub n_started: Option<i64>,
    pub n_finished: Option<i64>,
    pub n_graded: i64,
    pub n_success: i64,
    pub n_errored: i64,
    /// `n_success / n_graded`; none before a trial is graded.
    #[serde(default)]
    pub success_rate: Option<f64>,
}

/// `evalctl list`: campaigns, newest first; with `filter`, only those whose id, name, status or file
/// name contains it (case-insensitive).
pub fn list(
    reader: &Reader,
    filter: Option<&str>,
    limit: usize,
    offset: usize,
) -> Result<View<CampaignList>> {
    let pattern = filter
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(|text| {
            format!(
                "%{}%",
                text.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
    let condition = if pattern.is_some() {
        "WHERE c.campaign_id ILIKE (SELECT p1 FROM params) ESCAPE '\\'
            OR c.name ILIKE (SELECT p1 FROM params) ESCAPE '\\'
            OR c.status ILIKE (SELECT p1 FROM params) ESCAPE '\\'
            OR c.file_name ILIKE (SELECT p1 FROM params) ESCAPE '\\'"
    } else {
        ""
    };
    let params: Vec<Param> = pattern.into_iter().map(Param::Text).collect();
    let mut campaigns: Vec<CampaignRow> = typed_rows(
        reader,
        &format!(
            "SELECT c.campaign_id, c.name, c.status, strftime(c.published_at, '%Y-%m-%d %H:%M:%S') AS published_at,
                    c.n_trials, c.n_started, c.n_finished,
                    coalesce(s.n_graded, 0) AS n_graded, coalesce(s.n_success, 0) AS n_success,
                    coalesce(s.n_errored, 0) AS n_errored
             FROM campaigns c
             LEFT JOIN (
                 SELECT campaign_id,
                        count(*) FILTER (WHERE outcome <> 'errored') AS n_graded,
                        count(*) FILTER (WHERE outcome = 'success') AS n_success,
                        count(*) FILTER (WHERE outcome = 'errored') AS n_errored
                 FROM latest_scores WHERE NOT baseline AND NOT coalesce(control, false)
                 GROUP BY campaign_id
             ) s ON s.campaign_id = c.campaign_id
             {condition}
             ORDER BY c.published_at DESC NULLS LAST, c.campaign_id
             LIMIT {limit} OFFSET {offset}"
        ),
        &params,
    )?;
    let mut table = TextTable::new(&[
        Column::left("CAMPAIGN", 12),
        Column::left("NAME", 24),
        Column::left("STATUS", 9),
        Column::left("PUBLISHED (UTC)", 19),
        Column::right("FINISHED/ALL", 13),
        Column::right("SUCCESS (n)", 16),
    ]);
    for row in &mut campaigns {
        row.success_rate = success_rate(row.n_success, row.n_graded);
        table.row([
            super::short(&row.campaign_id),
            row.name
                .as_deref()
                .unwrap_or_default()
                .chars()
                .take(24)
                .collect::<String>(),
            row.status.clone().unwrap_or_default(),
            row.published_at.clone().unwrap_or_default(),
            format!(
                "{}/{}",
                row.n_finished.unwrap_or(0),
                row.n_trials.unwrap_or(0)
            ),
            format!("{} (n={})", percent(row.success_rate), row.n_graded),
        ]);
    }
    let text = if campaigns.is_empty() && filter.is_some_and(|text| !text.trim().is_empty()) {
        "no campaign matches the filter\n".to_string()
    } else if campaigns.is_empty() {
        format!(
            "no campaigns yet (`{program} publish FILE` adds one; `{program} project` fills the database)\n",
            program = schemas::program::name()
        )
    } else {
        table.render()
    };
    Ok(View {
        data: CampaignList {
            campaigns,
            filter: filter.map(str::to_string),
            limit,
            offset,
        },
        text,
    })
}
