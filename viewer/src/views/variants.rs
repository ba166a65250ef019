//! `evalctl list-variants` (each variant with what it ran against) and `evalctl
//! compare-variants` (every variant's scorecard for one subject × chaos, and verdicts against the
//! best).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use scoring::compare::{CompareOptions, TrialResult, compare};
use serde::{Deserialize, Serialize};

use super::graded::{Graded, graded};
use super::scorecard::{
    ComparisonCard, GroupCard, Times, comparison_card, comparison_text, control_group_card,
    control_scorecard_table, group_card, scorecard_table,
};
use super::{Result, View, ViewError, percent, success_rate, typed_rows};
use crate::query::Param;
use crate::reader::Reader;
use crate::table::{Column, TextTable};

/// Every variant's scorecard for one subject × chaos, and the verdicts against the best.
#[derive(Debug, Clone, Serialize)]
pub struct VariantComparison {
    pub subject: String,
    pub chaos_type: String,
    /// One card per variant, with its trials' times.
    pub variants: Vec<GroupCard>,
    /// The highest success rate, then the shortest median time to recover.
    pub best: Option<String>,
    pub comparisons: Vec<ComparisonCard>,
}

/// `evalctl compare-variants SUBJECT CHAOS`: the balanced scorecard of every variant (or those
/// named) over all campaigns, and a verdict for each variant against the best one.
pub fn compare_variants(
    reader: &Reader,
    subject: &str,
    chaos: &str,
    variants: &[String],
) -> Result<View<VariantComparison>> {
    let options = CompareOptions::default();
    let trials = graded(
        reader,
        "NOT t.baseline AND t.subject = (SELECT p1 FROM params)
            AND t.chaos_type = (SELECT p2 FROM params)",
        &[Param::from(subject), Param::from(chaos)],
    )?;
    let mut by_variant: BTreeMap<String, Vec<&Graded>> = BTreeMap::new();
    for trial in &trials {
        let name = trial
            .variant
            .clone()
            .unwrap_or_else(|| "(none)".to_string());
        if variants.is_empty() || variants.contains(&name) {
            by_variant.entry(name).or_default().push(trial);
        }
    }
    for wanted in variants {
        if !by_variant.contains_key(wanted) {
            return Err(ViewError::NotFound(format!(
                "no scored trials of variant {wanted:?} for {subject} × {chaos}; `{program} list-variants` shows what there is",
                program = schemas::program::name()
            )));
        }
    }
    if by_variant.is_empty() {
        return Err(ViewError::NotFound(format!(
            "no scored operator trials for {subject} × {chaos}; `{program} list-variants` shows what there is",
            program = schemas::program::name()
        )));
    }
    let mut text = format!(
        "{subject} × {chaos}: {} variants, {} scored trials\n",
        by_variant.len(),
        by_variant.values().map(Vec::len).sum::<usize>()
    );
    let control = trials.iter().all(|trial| trial.control);
    let mut cards = Vec::new();
    let mut best: Option<(&String, f64, f64)> = None;
    for (name, members) in &by_variant {
        let mut card = if control {
            control_group_card(name, members, &options)
        } else {
            group_card(name, members, &options)
        };
        card.times = Some(Times {
            times_to_detect_ms: members
                .iter()
                .filter_map(|t| t.result.time_to_detect_ms)
                .collect(),
            times_to_recover_ms: members
                .iter()
                .filter_map(|t| t.result.time_to_recover_ms)
                .collect(),
        });
        // The best: highest success rate, then shortest median time to recover.
        let rate = card.success_rate.unwrap_or(-1.0);
        let recover = card.median_time_to_recover_ms.unwrap_or(f64::INFINITY);
        if best.is_none_or(|(_, r, t)| rate > r || (rate == r && recover < t)) {
            best = Some((name, rate, recover));
        }
        cards.push(card);
    }
    let shown: Vec<&GroupCard> = cards.iter().collect();
    text.push_str(&if control {
        control_scorecard_table(&shown)
    } else {
        scorecard_table(&shown)
    });
    let mut verdicts = Vec::new();
    if let Some((best_name, _, _)) = best
        && by_variant.len() > 1
    {
        let _ = writeln!(text, "\nagainst {best_name} (the best success rate):");
        let best_results: Vec<TrialResult> = by_variant[best_name]
            .iter()
            .map(|t| t.result.clone())
            .collect();
        for (name, members) in &by_variant {
            if name == best_name {
                continue;
            }
            let results: Vec<TrialResult> = members.iter().map(|t| t.result.clone()).collect();
            let comparison = compare(&best_results, &results, &options);
            let _ = writeln!(text, "{best_name} vs {name}");
            text.push_str(&comparison_text(&comparison, best_name, name, control));
            verdicts.push(comparison_card(&comparison, best_name, name));
        }
    }
    Ok(View {
        data: VariantComparison {
            subject: subject.to_string(),
            chaos_type: chaos.to_string(),
            variants: cards,
            best: best.map(|(name, _, _)| name.clone()),
            comparisons: verdicts,
        },
        text,
    })
}

/// Each variant with the subjects and faults it ran against.
#[derive(Debug, Clone, Serialize)]
pub struct VariantList {
    pub variants: Vec<VariantRow>,
}

/// One variant × subject × chaos type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantRow {
    pub variant: String,
    pub subject: String,
    pub chaos_type: String,
    pub n_trials: i64,
    pub n_campaigns: i64,
    pub n_graded: i64,
    pub n_success: i64,
    #[serde(default)]
    pub success_rate: Option<f64>,
}

/// `evalctl list-variants`: each variant with the subjects and faults it ran against.
pub fn list_variants(reader: &Reader) -> Result<View<VariantList>> {
    let mut rows: Vec<VariantRow> = typed_rows(
        reader,
        "SELECT t.variant, t.subject, t.chaos_type,
                count(*) AS n_trials,
                count(DISTINCT t.campaign_id) AS n_campaigns,
                count(*) FILTER (WHERE t.score_outcome <> 'errored') AS n_graded,
                count(*) FILTER (WHERE t.score_outcome = 'success') AS n_success
         FROM trials t
         WHERE NOT coalesce(t.baseline, false) AND t.variant IS NOT NULL
         GROUP BY ALL ORDER BY t.variant, t.subject, t.chaos_type",
        &[],
    )?;
    let mut text = String::new();
    let mut table = TextTable::new(&[
        Column::left("VARIANT", 20),
        Column::left("SUBJECT", 8),
        Column::left("CHAOS", 18),
        Column::right("TRIALS", 7),
        Column::right("CAMPAIGNS", 10),
        Column::right("SUCCESS (n)", 16),
    ]);
    for row in &mut rows {
        row.success_rate = success_rate(row.n_success, row.n_graded);
        table.row([
            row.variant.clone(),
            row.subject.clone(),
            row.chaos_type.clone(),
            row.n_trials.to_string(),
            row.n_campaigns.to_string(),
            format!("{} (n={})", percent(row.success_rate), row.n_graded),
        ]);
    }
    if rows.is_empty() {
        text.push_str("no variants have run yet\n");
    } else {
        text.push_str(&table.render());
    }
    Ok(View {
        data: VariantList { variants: rows },
        text,
    })
}
