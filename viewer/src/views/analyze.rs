//! `evalctl analyze`: a campaign's scorecards per subject × chaos × variant (and baseline), and
//! with `--commands` the commands its agents ran.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use scoring::compare::CompareOptions;
use serde::{Deserialize, Serialize};

use super::graded::{Graded, graded};
use super::scorecard::{
    GroupCard, control_group_card, control_scorecard_table, group_card, scorecard_table,
};
use super::{Result, View, resolve, typed_rows};
use crate::query::Param;
use crate::reader::Reader;
use crate::table::{Column, TextTable};

/// A campaign's scorecards.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub campaign_id: String,
    pub name: String,
    pub status: String,
    pub n_scored: usize,
    /// One per subject × chaos × variant (`(baseline)` for the baselines), each with its subject
    /// and chaos type.
    pub groups: Vec<GroupCard>,
    /// With `--commands`: the 50 commands run most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<CommandRow>>,
}

/// A command with how often it ran and its category by the built-in rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandRow {
    pub category: Option<String>,
    pub command: Option<String>,
    pub rule: Option<String>,
    pub n_calls: i64,
    pub n_trials: i64,
}

#[derive(Debug, Default, Deserialize)]
struct Header {
    name: Option<String>,
    status: Option<String>,
    n_trials: Option<i64>,
    n_finished: Option<i64>,
}

/// `evalctl analyze CAMPAIGN`: per subject × chaos × variant (and baseline), the scorecard; with
/// `include_commands`, the commands run, by category.
pub fn analyze(reader: &Reader, campaign: &str, include_commands: bool) -> Result<View<Analysis>> {
    let campaign_id = resolve(reader, "campaigns", "campaign_id", campaign, "campaign")?;
    let trials = campaign_trials(reader, &campaign_id)?;
    analyze_trials(reader, campaign_id, &trials, include_commands)
}

/// The scored trials of the campaign `campaign_id` (resolved), as `analyze` and
/// `compare-baseline` read them.
pub(crate) fn campaign_trials(reader: &Reader, campaign_id: &str) -> Result<Vec<Graded>> {
    graded(
        reader,
        "t.campaign_id = (SELECT p1 FROM params)",
        &[Param::from(campaign_id)],
    )
}

/// [`analyze`] of the campaign `campaign_id` (resolved) and its scored `trials`.
pub(crate) fn analyze_trials(
    reader: &Reader,
    campaign_id: String,
    trials: &[Graded],
    include_commands: bool,
) -> Result<View<Analysis>> {
    let options = CompareOptions::default();
    let mut groups: BTreeMap<(String, String), BTreeMap<String, Vec<&Graded>>> = BTreeMap::new();
    for trial in trials {
        let label = if trial.baseline {
            "(baseline)".to_string()
        } else {
            trial
                .variant
                .clone()
                .unwrap_or_else(|| "(none)".to_string())
        };
        groups
            .entry((trial.subject.clone(), trial.chaos_type.clone()))
            .or_default()
            .entry(label)
            .or_default()
            .push(trial);
    }
    let header: Header = typed_rows(
        reader,
        "SELECT name, status, n_trials, n_finished FROM campaigns
         WHERE campaign_id = (SELECT p1 FROM params)",
        &[Param::from(&campaign_id)],
    )?
    .into_iter()
    .next()
    .unwrap_or_default();
    let name = header.name.unwrap_or_default();
    let status = header.status.unwrap_or_default();
    let mut text = format!(
        "campaign {campaign_id} ({name}): {status}, {}/{} trials finished, {} scored\n",
        header.n_finished.unwrap_or(0),
        header.n_trials.unwrap_or(0),
        trials.len()
    );
    let mut cards = Vec::new();
    for ((subject, chaos), variants) in &groups {
        // Control trials (chaos none) are their own rows, graded for false alarms.
        let control = variants.values().flatten().all(|trial| trial.control);
        let mut group_cards = Vec::new();
        for (label, members) in variants {
            let mut card = if control {
                control_group_card(label, members, &options)
            } else {
                group_card(label, members, &options)
            };
            card.subject = Some(subject.clone());
            card.chaos_type = Some(chaos.clone());
            group_cards.push(card);
        }
        let shown: Vec<&GroupCard> = group_cards.iter().collect();
        if control {
            let _ = writeln!(text, "\n{subject} × {chaos} (control: nothing broken)");
            text.push_str(&control_scorecard_table(&shown));
        } else {
            let _ = writeln!(text, "\n{subject} × {chaos}");
            text.push_str(&scorecard_table(&shown));
        }
        cards.extend(group_cards);
    }
    if trials.is_empty() {
        text.push_str("no scored trials yet\n");
    }
    let mut commands = None;
    if include_commands {
        let rows: Vec<CommandRow> = typed_rows(
            reader,
            "SELECT c.category, c.command, c.rule, count(*) AS n_calls, count(DISTINCT c.trial_id) AS n_trials
             FROM commands c WHERE c.campaign_id = (SELECT p1 FROM params)
             GROUP BY ALL ORDER BY n_calls DESC, c.command LIMIT 50",
            &[Param::from(&campaign_id)],
        )?;
        text.push_str("\ncommands (most run first; categories by the built-in rules)\n");
        let mut table = TextTable::new(&[
            Column::right("CALLS", 7).after(2),
            Column::right("TRIALS", 7),
            Column::left("CATEGORY", 12).after(2),
            Column::left("RULE", 24),
            Column::left("COMMAND", 0),
        ]);
        for row in &rows {
            table.row([
                row.n_calls.to_string(),
                row.n_trials.to_string(),
                row.category.clone().unwrap_or_default(),
                row.rule.clone().unwrap_or_default(),
                row.command.clone().unwrap_or_default(),
            ]);
        }
        text.push_str(&table.render());
        commands = Some(rows);
    }
    Ok(View {
        data: Analysis {
            campaign_id,
            name,
            status,
            n_scored: trials.len(),
            groups: cards,
            commands,
        },
        text,
    })
}
