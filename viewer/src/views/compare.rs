//! `evalctl compare` (two campaigns' operator trials) and `evalctl compare-baseline` (a
//! campaign's operator trials against trials with no operator), each two scorecards and their
//! verdicts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use scoring::compare::CompareOptions;
use serde::Serialize;

use super::analyze::campaign_trials;
use super::graded::{Graded, graded};
use super::scorecard::{TwoGroups, two_groups};
use super::{Result, View, ViewError, resolve, short};
use crate::query::Param;
use crate::reader::Reader;

/// `evalctl compare A B`: the operator trials of two campaigns.
pub fn compare_campaigns(reader: &Reader, a: &str, b: &str) -> Result<View<TwoGroups>> {
    let a_id = resolve(reader, "campaigns", "campaign_id", a, "campaign")?;
    let b_id = resolve(reader, "campaigns", "campaign_id", b, "campaign")?;
    let options = CompareOptions::default();
    let select = |id: &str| {
        graded(
            reader,
            // Control trials are graded for false alarms: not comparable with fault trials.
            "t.campaign_id = (SELECT p1 FROM params) AND NOT t.baseline
                AND NOT coalesce(t.control, false)",
            &[Param::from(id)],
        )
    };
    let (a_trials, b_trials) = (select(&a_id)?, select(&b_id)?);
    let a_refs: Vec<&Graded> = a_trials.iter().collect();
    let b_refs: Vec<&Graded> = b_trials.iter().collect();
    let a_label = format!("A {}", short(&a_id));
    let b_label = format!("B {}", short(&b_id));
    let (data, body) = two_groups(&a_label, &a_refs, &b_label, &b_refs, &options);
    let text = format!("operator trials of campaign A ({a_id}) vs campaign B ({b_id})\n{body}");
    Ok(View { data, text })
}

/// A campaign's comparisons with the baseline, one per subject × chaos.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineComparisons {
    pub campaign_id: String,
    pub comparisons: Vec<BaselineComparison>,
}

/// One subject × chaos: the operator (`groups[0]`) against the baseline (`groups[1]`), or the
/// error `no baseline trials`.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineComparison {
    pub subject: String,
    pub chaos_type: String,
    /// `this campaign`, `campaign ID`, or `every campaign`.
    pub baseline_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub compared: Option<TwoGroups>,
}

/// `evalctl compare-baseline CAMPAIGN`: per subject × chaos, the operator's trials against baseline
/// trials (the campaign's own, those of `baseline_id`, or any campaign's with the same subject
/// and chaos type).
pub fn compare_baseline(
    reader: &Reader,
    campaign: &str,
    baseline_id: Option<&str>,
) -> Result<View<BaselineComparisons>> {
    let campaign_id = resolve(reader, "campaigns", "campaign_id", campaign, "campaign")?;
    let baseline_id = baseline_id
        .map(|id| resolve(reader, "campaigns", "campaign_id", id, "campaign"))
        .transpose()?;
    // The campaign's trials once: its operator trials, and its own baselines when it has them.
    let own_trials = campaign_trials(reader, &campaign_id)?;
    compare_baseline_trials(reader, campaign_id, baseline_id, &own_trials)
}

/// [`compare_baseline`] of the campaign `campaign_id` (resolved), whose scored trials are
/// `own_trials`, against the baselines of `baseline_id` (resolved) or as that says.
pub(crate) fn compare_baseline_trials(
    reader: &Reader,
    campaign_id: String,
    baseline_id: Option<String>,
    own_trials: &[Graded],
) -> Result<View<BaselineComparisons>> {
    let options = CompareOptions::default();
    let mut groups: BTreeMap<(String, String), Vec<&Graded>> = BTreeMap::new();
    // Control trials have no baseline: nothing was broken, and no operator means nothing to test.
    for trial in own_trials
        .iter()
        .filter(|trial| !trial.baseline && !trial.control)
    {
        groups
            .entry((trial.subject.clone(), trial.chaos_type.clone()))
            .or_default()
            .push(trial);
    }
    if groups.is_empty() {
        return Err(ViewError::NotFound(format!(
            "campaign {campaign_id} has no scored operator trials of a fault yet (control trials have no baseline; `{program} analyze` shows their false alarms)",
            program = schemas::program::name()
        )));
    }
    let mut text = format!("campaign {campaign_id}: the operator against doing nothing\n");
    let mut comparisons = Vec::new();
    for ((subject, chaos), trials) in &groups {
        let base_condition = "t.baseline AND t.subject = (SELECT p1 FROM params)
            AND t.chaos_type = (SELECT p2 FROM params)";
        let base_params = [Param::from(subject), Param::from(chaos)];
        let (baselines, source) = match &baseline_id {
            Some(id) => (
                graded(
                    reader,
                    &format!("{base_condition} AND t.campaign_id = (SELECT p3 FROM params)"),
                    &[Param::from(subject), Param::from(chaos), Param::from(id)],
                )?,
                format!("campaign {id}"),
            ),
            None => {
                let own: Vec<Graded> = own_trials
                    .iter()
                    .filter(|trial| {
                        trial.baseline && trial.subject == *subject && trial.chaos_type == *chaos
                    })
                    .cloned()
                    .collect();
                if own.is_empty() {
                    (
                        graded(reader, base_condition, &base_params)?,
                        "every campaign".to_string(),
                    )
                } else {
                    (own, "this campaign".to_string())
                }
            }
        };
        let _ = writeln!(
            text,
            "\n{subject} × {chaos} (baseline trials from {source})"
        );
        let mut comparison = BaselineComparison {
            subject: subject.clone(),
            chaos_type: chaos.clone(),
            baseline_source: source,
            error: None,
            compared: None,
        };
        if baselines.is_empty() {
            text.push_str("  no baseline trials for this subject and chaos type: run a campaign with include_baseline: true\n");
            comparison.error = Some("no baseline trials".to_string());
        } else {
            let base_refs: Vec<&Graded> = baselines.iter().collect();
            let (compared, body) = two_groups("operator", trials, "baseline", &base_refs, &options);
            text.push_str(&body);
            comparison.compared = Some(compared);
        }
        comparisons.push(comparison);
    }
    Ok(View {
        data: BaselineComparisons {
            campaign_id,
            comparisons,
        },
        text,
    })
}
