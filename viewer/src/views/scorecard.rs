//! A group of trials as a scorecard (`GroupCard`: the statistics' summary, the seed harness's
//! figures, a control group's false alarms), two groups' verdicts (`ComparisonCard`), and their
//! text lines. Shared by `analyze` and the comparisons.

use std::fmt::Write as _;

use schemas::event::Outcome;
use scoring::compare::{
    CompareOptions, Comparison, GroupSummary, Side, TrialResult, Verdict, compare,
};
use scoring::power::SampleSize;
use scoring::stats::Interval;
use serde::Serialize;

use super::graded::Graded;
use super::percent;
use crate::table::{Column, TextTable};

/// One group's figures: the statistics' summary plus outcome counts, mean times and command
/// figures; a control group's false alarms; where a view says so, its subject and chaos type and
/// its trials' times.
#[derive(Debug, Clone, Serialize)]
pub struct GroupCard {
    pub group: String,
    pub n_trials: usize,
    pub n_errored: usize,
    pub n_graded: usize,
    pub n_success: usize,
    pub n_failure: usize,
    pub n_timeout: usize,
    pub success_rate: Option<f64>,
    /// `[low, high]` of the 95% Wilson interval.
    pub success_interval: Option<[f64; 2]>,
    pub n_detected: usize,
    pub median_time_to_detect_ms: Option<f64>,
    pub time_to_detect_interval_ms: Option<[f64; 2]>,
    pub mean_time_to_detect_ms: Option<f64>,
    pub n_recovered: usize,
    pub median_time_to_recover_ms: Option<f64>,
    pub time_to_recover_interval_ms: Option<[f64; 2]>,
    /// Over every trial with a resolution (a baseline's self-heal), whatever its outcome.
    pub n_time_to_resolve: usize,
    pub mean_time_to_resolve_ms: Option<f64>,
    pub n_commands: i64,
    pub n_unique_commands: i64,
    pub n_destructive_commands: i64,
    pub mean_commands: Option<f64>,
    pub n_with_destructive: usize,
    pub destructive_rate: Option<f64>,
    pub n_with_thrashing: usize,
    pub thrashing_rate: Option<f64>,
    #[serde(flatten)]
    pub control: Option<ControlFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chaos_type: Option<String>,
    #[serde(flatten)]
    pub times: Option<Times>,
}

/// A control group's false alarms (success = no false alarm, nothing destructive, healthy
/// throughout).
#[derive(Debug, Clone, Serialize)]
pub struct ControlFigures {
    /// Always true: marks a control group in the JSON.
    pub control: bool,
    pub n_with_false_alarm: usize,
    pub false_alarm_rate: Option<f64>,
    pub n_false_alarms: i64,
    pub n_stayed_healthy: usize,
}

/// Each trial's time to detect (detected trials) and to recover (successful trials), for charts.
#[derive(Debug, Clone, Serialize)]
pub struct Times {
    pub times_to_detect_ms: Vec<i64>,
    pub times_to_recover_ms: Vec<i64>,
}

/// One verdict with the sides' names.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictCard {
    pub metric: String,
    pub test: &'static str,
    pub paired: bool,
    pub n_a: usize,
    pub n_b: usize,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    pub alpha: f64,
    pub winner: Option<String>,
    pub needed_per_side: Option<u64>,
    pub needed_more_than: Option<u64>,
    pub text: String,
}

/// Two groups' verdicts: success rate, time to detect, time to recover.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonCard {
    pub a: String,
    pub b: String,
    pub paired: bool,
    pub verdicts: Vec<VerdictCard>,
}

/// Two groups side by side with their comparison.
#[derive(Debug, Clone, Serialize)]
pub struct TwoGroups {
    pub groups: Vec<GroupCard>,
    pub comparison: ComparisonCard,
}

fn pair(interval: Option<Interval>) -> Option<[f64; 2]> {
    interval.map(|i| [i.low, i.high])
}

/// A group's figures: the statistics' summary plus command figures.
pub(crate) fn group_card(label: &str, trials: &[&Graded], options: &CompareOptions) -> GroupCard {
    let results: Vec<TrialResult> = trials.iter().map(|t| t.result.clone()).collect();
    let summary = GroupSummary::of(&results, options);
    let graded: Vec<&&Graded> = trials
        .iter()
        .filter(|t| t.result.outcome != Outcome::Errored)
        .collect();
    let n = graded.len();
    let share = |count: usize| (n > 0).then(|| count as f64 / n as f64);
    let with_destructive = graded.iter().filter(|t| t.n_destructive > 0).count();
    let with_thrashing = graded.iter().filter(|t| t.n_thrashing > 0).count();
    let commands: i64 = graded.iter().map(|t| t.n_commands).sum();
    let count = |outcome: Outcome| {
        graded
            .iter()
            .filter(|t| t.result.outcome == outcome)
            .count()
    };
    let mean = |values: Vec<i64>| {
        (!values.is_empty()).then(|| values.iter().sum::<i64>() as f64 / values.len() as f64)
    };
    let resolve_times: Vec<i64> = graded
        .iter()
        .filter_map(|t| t.time_to_resolve_any_ms)
        .collect();
    GroupCard {
        group: label.to_string(),
        n_trials: summary.n_trials,
        n_errored: summary.n_errored,
        n_graded: summary.n_graded,
        n_success: summary.n_success,
        n_failure: count(Outcome::Failure),
        n_timeout: count(Outcome::Timeout),
        success_rate: summary.success_rate,
        success_interval: pair(summary.success_interval),
        n_detected: summary.n_detected,
        median_time_to_detect_ms: summary.median_time_to_detect_ms,
        time_to_detect_interval_ms: pair(summary.time_to_detect_interval),
        mean_time_to_detect_ms: mean(
            graded
                .iter()
                .filter_map(|t| t.result.time_to_detect_ms)
                .collect(),
        ),
        n_recovered: graded
            .iter()
            .filter(|t| t.result.time_to_recover_ms.is_some())
            .count(),
        median_time_to_recover_ms: summary.median_time_to_recover_ms,
        time_to_recover_interval_ms: pair(summary.time_to_recover_interval),
        n_time_to_resolve: resolve_times.len(),
        mean_time_to_resolve_ms: mean(resolve_times),
        n_commands: commands,
        n_unique_commands: graded.iter().map(|t| t.n_unique_commands).sum(),
        n_destructive_commands: graded.iter().map(|t| t.n_destructive).sum(),
        mean_commands: (n > 0).then(|| commands as f64 / n as f64),
        n_with_destructive: with_destructive,
        destructive_rate: share(with_destructive),
        n_with_thrashing: with_thrashing,
        thrashing_rate: share(with_thrashing),
        control: None,
        subject: None,
        chaos_type: None,
        times: None,
    }
}

/// A control group's figures: [`group_card`] plus the false alarms.
pub(crate) fn control_group_card(
    label: &str,
    trials: &[&Graded],
    options: &CompareOptions,
) -> GroupCard {
    let mut card = group_card(label, trials, options);
    let graded: Vec<&&Graded> = trials
        .iter()
        .filter(|t| t.result.outcome != Outcome::Errored)
        .collect();
    let n = graded.len();
    let with_false_alarm = graded.iter().filter(|t| t.n_false_alarms > 0).count();
    card.control = Some(ControlFigures {
        control: true,
        n_with_false_alarm: with_false_alarm,
        false_alarm_rate: (n > 0).then(|| with_false_alarm as f64 / n as f64),
        n_false_alarms: graded.iter().map(|t| t.n_false_alarms).sum(),
        n_stayed_healthy: graded.iter().filter(|t| t.stayed_healthy).count(),
    });
    card
}

fn interval_percent(interval: Option<[f64; 2]>) -> String {
    interval.map_or_else(String::new, |[low, high]| {
        format!(" [{:.0}–{:.0}%]", low * 100.0, high * 100.0)
    })
}

fn seconds(ms: Option<f64>) -> String {
    ms.map_or_else(|| "–".to_string(), |ms| format!("{:.1}s", ms / 1000.0))
}

fn interval_seconds(interval: Option<[f64; 2]>) -> String {
    interval.map_or_else(String::new, |[low, high]| {
        format!(" [{:.1}–{:.1}s]", low / 1000.0, high / 1000.0)
    })
}

fn mean_commands(card: &GroupCard) -> String {
    card.mean_commands
        .map_or_else(|| "–".to_string(), |x| format!("{x:.1}"))
}

/// A scorecard table: the group, its n and its success rate, then `rest`.
fn card_table(rest: Vec<Column>) -> TextTable {
    let mut columns = vec![
        Column::left("", 22).after(2),
        Column::right("n", 4),
        Column::right("success [95% CI]", 20),
    ];
    columns.extend(rest);
    TextTable::new(&columns)
}

/// A scorecard line's cells: the group, its n and its success rate, then `rest`.
fn card_row<const N: usize>(card: &GroupCard, rest: [String; N]) -> Vec<String> {
    let mut cells = vec![
        card.group.clone(),
        card.n_trials.to_string(),
        format!(
            "{}{}",
            percent(card.success_rate),
            interval_percent(card.success_interval)
        ),
    ];
    cells.extend(rest);
    cells
}

/// Control groups' scorecards, one line each.
pub(crate) fn control_scorecard_table(cards: &[&GroupCard]) -> String {
    let mut table = card_table(vec![
        Column::right("false alarm", 14),
        Column::right("tickets", 8),
        Column::right("cmds", 6),
        Column::right("destructive", 12),
        Column::right("stayed healthy", 15),
    ]);
    for card in cards {
        let n = card.n_graded;
        let control = card.control.as_ref();
        table.row(card_row(
            card,
            [
                format!("{}/{n}", control.map_or(0, |c| c.n_with_false_alarm)),
                control.map_or(0, |c| c.n_false_alarms).to_string(),
                mean_commands(card),
                format!("{}/{n}", card.n_with_destructive),
                format!("{}/{n}", control.map_or(0, |c| c.n_stayed_healthy)),
            ],
        ));
    }
    table.render()
}

/// Groups' scorecards, one line each.
pub(crate) fn scorecard_table(cards: &[&GroupCard]) -> String {
    let mut table = card_table(vec![
        Column::right("median TTD [95% CI] (n)", 24),
        Column::right("median TTR [95% CI] (n)", 24),
        Column::right("mean TTD / TTR", 16),
        Column::right("cmds", 6),
        Column::right("destructive", 12),
        Column::right("thrashing", 12),
    ]);
    for card in cards {
        let n = card.n_graded;
        table.row(card_row(
            card,
            [
                format!(
                    "{}{} ({})",
                    seconds(card.median_time_to_detect_ms),
                    interval_seconds(card.time_to_detect_interval_ms),
                    card.n_detected
                ),
                format!(
                    "{}{} ({})",
                    seconds(card.median_time_to_recover_ms),
                    interval_seconds(card.time_to_recover_interval_ms),
                    card.n_recovered
                ),
                format!(
                    "{} / {}",
                    seconds(card.mean_time_to_detect_ms),
                    seconds(card.mean_time_to_resolve_ms)
                ),
                mean_commands(card),
                format!("{}/{n}", card.n_with_destructive),
                format!("{}/{n}", card.n_with_thrashing),
            ],
        ));
    }
    table.render()
}

fn verdict_card(verdict: &Verdict, a: &str, b: &str) -> VerdictCard {
    VerdictCard {
        metric: verdict.metric.clone(),
        test: verdict.test,
        paired: verdict.paired,
        n_a: verdict.n_a,
        n_b: verdict.n_b,
        statistic: verdict.statistic,
        p_value: verdict.p_value,
        alpha: verdict.alpha,
        winner: verdict.winner.map(|side| match side {
            Side::A => a.to_string(),
            Side::B => b.to_string(),
        }),
        needed_per_side: match verdict.needed {
            Some(SampleSize::About(n)) => Some(n),
            _ => None,
        },
        needed_more_than: match verdict.needed {
            Some(SampleSize::MoreThan(n)) => Some(n),
            _ => None,
        },
        text: named_verdict(verdict, a, b),
    }
}

/// The verdict's sentence with the sides' names instead of A and B.
fn named_verdict(verdict: &Verdict, a: &str, b: &str) -> String {
    let text = verdict.to_string();
    match verdict.winner {
        Some(Side::A) => text.replacen(": A is better", &format!(": {a} is better"), 1),
        Some(Side::B) => text.replacen(": B is better", &format!(": {b} is better"), 1),
        None => text,
    }
}

pub(crate) fn comparison_card(comparison: &Comparison, a: &str, b: &str) -> ComparisonCard {
    ComparisonCard {
        a: a.to_string(),
        b: b.to_string(),
        paired: comparison.paired,
        verdicts: vec![
            verdict_card(&comparison.success, a, b),
            verdict_card(&comparison.time_to_detect, a, b),
            verdict_card(&comparison.time_to_recover, a, b),
        ],
    }
}

/// The verdicts in words; for control trials only the success rate's (no fault to detect or
/// recover from).
pub(crate) fn comparison_text(comparison: &Comparison, a: &str, b: &str, control: bool) -> String {
    let mut text = format!(
        "  verdict ({}, α = {}):\n",
        if comparison.paired {
            "paired tests: the trials ran on the same seeds"
        } else {
            "independent samples"
        },
        comparison.success.alpha
    );
    let verdicts = [
        &comparison.success,
        &comparison.time_to_detect,
        &comparison.time_to_recover,
    ];
    let shown = if control {
        &verdicts[..1]
    } else {
        &verdicts[..]
    };
    for verdict in shown {
        let _ = writeln!(text, "    {}", named_verdict(verdict, a, b));
    }
    text
}

/// Two groups side by side with their comparison, and its text.
pub(crate) fn two_groups(
    a_label: &str,
    a: &[&Graded],
    b_label: &str,
    b: &[&Graded],
    options: &CompareOptions,
) -> (TwoGroups, String) {
    let a_card = group_card(a_label, a, options);
    let b_card = group_card(b_label, b, options);
    let a_results: Vec<TrialResult> = a.iter().map(|t| t.result.clone()).collect();
    let b_results: Vec<TrialResult> = b.iter().map(|t| t.result.clone()).collect();
    let comparison = compare(&a_results, &b_results, options);
    let mut text = scorecard_table(&[&a_card, &b_card]);
    text.push_str(&comparison_text(&comparison, a_label, b_label, false));
    let data = TwoGroups {
        groups: vec![a_card, b_card],
        comparison: comparison_card(&comparison, a_label, b_label),
    };
    (data, text)
}
