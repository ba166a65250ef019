//! Comparisons of two groups of trials (campaign vs campaign, variant vs variant, agent vs
//! baseline): each group's rates and medians with 95% intervals, and for each figure a verdict
//! that names a winner only when the difference is significant, and otherwise says the data
//! cannot tell and how many trials the test would need to tell a difference as large as the
//! observed one (computed from the test's own power by [`crate::power`]).
//!
//! Errored trials are left out of everything: the harness failed, not the operator. When every
//! graded trial of both sides has a partner that ran on the same seed (same subject, chaos,
//! repetition and trial seed), the paired tests are used: McNemar for success, Wilcoxon
//! signed-rank for times; otherwise Fisher's exact test and Mann–Whitney U. Times compare the
//! successful trials only (time to resolve, or a baseline's time to heal); the success rate
//! accounts for the others.

use std::collections::BTreeMap;
use std::fmt;

use schemas::campaign::TrialSpec;
use schemas::event::{Outcome, TrialScored};

use crate::power::{self, SampleSize};
use crate::stats::{self, Interval};

/// One side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::A => "A",
            Side::B => "B",
        })
    }
}

/// What makes two trials of different variants a pair: they faced the same fault schedule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PairKey {
    pub subject: String,
    /// The chaos spec (type and parameters) as JSON, or any text that is equal exactly when the
    /// specs are (the viewer's scorecards use a hash of the JSON).
    pub chaos: String,
    pub repetition: u32,
    pub seed: u64,
}

impl PairKey {
    pub fn of(spec: &TrialSpec) -> PairKey {
        PairKey {
            subject: spec.subject.to_string(),
            chaos: serde_json::to_string(&spec.chaos).unwrap_or_default(),
            repetition: spec.repetition,
            seed: spec.seed,
        }
    }
}

/// One trial as comparisons see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialResult {
    pub pair_key: Option<PairKey>,
    pub outcome: Outcome,
    pub time_to_detect_ms: Option<i64>,
    /// For a successful trial: time to resolve, or a baseline's time to heal.
    pub time_to_recover_ms: Option<i64>,
}

impl TrialResult {
    /// From a trial's request (for pairing) and its score.
    pub fn from_scored(spec: Option<&TrialSpec>, scored: &TrialScored) -> TrialResult {
        let success = scored.outcome == Outcome::Success;
        TrialResult {
            pair_key: spec.map(PairKey::of),
            outcome: scored.outcome,
            time_to_detect_ms: scored.time_to_detect_ms.filter(|_| scored.detected),
            time_to_recover_ms: if !success {
                None
            } else if scored.baseline {
                scored.time_to_heal_ms
            } else {
                scored.time_to_resolve_ms
            },
        }
    }
}

/// Settings of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// Significance level of the verdicts.
    pub alpha: f64,
    /// Level of the intervals.
    pub confidence: f64,
    /// Power the needed sample sizes are computed for (see [`crate::power`]).
    pub power: f64,
    pub bootstrap_resamples: u32,
    pub bootstrap_seed: u64,
    /// Use paired tests when the trials pair up.
    pub allow_pairing: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            alpha: 0.05,
            confidence: 0.95,
            power: 0.8,
            bootstrap_resamples: stats::DEFAULT_BOOTSTRAP_RESAMPLES,
            bootstrap_seed: stats::DEFAULT_BOOTSTRAP_SEED,
            allow_pairing: true,
        }
    }
}

/// The figures of one side.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSummary {
    pub n_trials: usize,
    pub n_errored: usize,
    /// Trials graded: all but the errored ones.
    pub n_graded: usize,
    pub n_success: usize,
    pub success_rate: Option<f64>,
    pub success_interval: Option<Interval>,
    pub n_detected: usize,
    pub median_time_to_detect_ms: Option<f64>,
    pub time_to_detect_interval: Option<Interval>,
    pub median_time_to_recover_ms: Option<f64>,
    pub time_to_recover_interval: Option<Interval>,
}

impl GroupSummary {
    pub fn of(trials: &[TrialResult], options: &CompareOptions) -> GroupSummary {
        let graded: Vec<&TrialResult> = trials
            .iter()
            .filter(|t| t.outcome != Outcome::Errored)
            .collect();
        let n_success = graded
            .iter()
            .filter(|t| t.outcome == Outcome::Success)
            .count();
        let detect: Vec<f64> = graded
            .iter()
            .filter_map(|t| t.time_to_detect_ms)
            .map(|ms| ms as f64)
            .collect();
        let recover: Vec<f64> = graded
            .iter()
            .filter_map(|t| t.time_to_recover_ms)
            .map(|ms| ms as f64)
            .collect();
        let interval = |sample: &[f64]| {
            stats::bootstrap_median_interval(
                sample,
                options.confidence,
                options.bootstrap_resamples,
                options.bootstrap_seed,
            )
        };
        GroupSummary {
            n_trials: trials.len(),
            n_errored: trials.len() - graded.len(),
            n_graded: graded.len(),
            n_success,
            success_rate: (!graded.is_empty()).then(|| n_success as f64 / graded.len() as f64),
            success_interval: stats::wilson_interval(
                n_success as u64,
                graded.len() as u64,
                options.confidence,
            ),
            n_detected: detect.len(),
            median_time_to_detect_ms: stats::median(&detect),
            time_to_detect_interval: interval(&detect),
            median_time_to_recover_ms: stats::median(&recover),
            time_to_recover_interval: interval(&recover),
        }
    }
}

/// The answer of one test: a winner, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `success rate`, `time to detect`, `time to recover`.
    pub metric: String,
    /// The test's name, such as `Fisher's exact test`.
    pub test: &'static str,
    pub paired: bool,
    /// Values compared on each side (pairs count on both).
    pub n_a: usize,
    pub n_b: usize,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    pub alpha: f64,
    /// The better side, only when the difference is significant at `alpha`.
    pub winner: Option<Side>,
    /// Without a winner: how many trials (pairs when paired; for times, timed trials) per side
    /// the test would need to name the better side at `alpha` with the comparison's power, if
    /// the observed difference were the true one: always more data than the comparison had.
    /// `None` when no difference was observed (or there was no test).
    pub needed: Option<SampleSize>,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes = if self.paired {
            format!("{} pairs", self.n_a)
        } else {
            format!("{} vs {}", self.n_a, self.n_b)
        };
        let Some(p) = self.p_value else {
            return write!(
                f,
                "{}: the data cannot tell ({}; too few values for {})",
                self.metric, sizes, self.test
            );
        };
        match self.winner {
            Some(side) => write!(
                f,
                "{}: {side} is better (p = {}, {}, {sizes})",
                self.metric,
                format_p(p),
                self.test
            ),
            None => {
                write!(
                    f,
                    "{}: the data cannot tell (p = {}, {}, {sizes})",
                    self.metric,
                    format_p(p),
                    self.test
                )?;
                let unit = if self.paired { "pairs" } else { "trials" };
                match self.needed {
                    Some(SampleSize::About(n)) => write!(
                        f,
                        "; about {n} {unit} per side would be needed to tell a difference this large"
                    ),
                    Some(SampleSize::MoreThan(n)) => write!(
                        f,
                        "; more than {n} {unit} per side would be needed to tell a difference this large"
                    ),
                    None => f.write_str("; no difference was observed"),
                }
            }
        }
    }
}

fn format_p(p: f64) -> String {
    if p < 0.0001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// Success rates of two independent groups, by Fisher's exact test; the higher rate wins.
pub fn compare_rates(
    a_success: u64,
    a_n: u64,
    b_success: u64,
    b_n: u64,
    alpha: f64,
    power: f64,
) -> Verdict {
    let mut verdict = Verdict {
        metric: "success rate".to_string(),
        test: "Fisher's exact test",
        paired: false,
        n_a: a_n as usize,
        n_b: b_n as usize,
        statistic: None,
        p_value: None,
        alpha,
        winner: None,
        needed: None,
    };
    if a_n == 0 || b_n == 0 {
        return verdict;
    }
    let result = stats::fisher_exact(a_success, a_n - a_success, b_success, b_n - b_success);
    verdict.statistic = Some(result.statistic);
    verdict.p_value = Some(result.p_value);
    let (p1, p2) = (a_success as f64 / a_n as f64, b_success as f64 / b_n as f64);
    if result.p_value < alpha && p1 != p2 {
        verdict.winner = Some(if p1 > p2 { Side::A } else { Side::B });
    } else {
        verdict.needed = power::fisher_sample_size(a_success, a_n, b_success, b_n, alpha, power);
    }
    verdict
}

/// Paired successes (first: side A, second: side B), by McNemar's exact test.
pub fn compare_rates_paired(pairs: &[(bool, bool)], alpha: f64, power: f64) -> Verdict {
    let only_a = pairs.iter().filter(|(a, b)| *a && !*b).count() as u64;
    let only_b = pairs.iter().filter(|(a, b)| !*a && *b).count() as u64;
    let mut verdict = Verdict {
        metric: "success rate".to_string(),
        test: "McNemar's exact test",
        paired: true,
        n_a: pairs.len(),
        n_b: pairs.len(),
        statistic: None,
        p_value: None,
        alpha,
        winner: None,
        needed: None,
    };
    if pairs.is_empty() {
        return verdict;
    }
    let result = stats::mcnemar_exact(only_a, only_b);
    verdict.statistic = Some(result.statistic);
    verdict.p_value = Some(result.p_value);
    if result.p_value < alpha && only_a != only_b {
        verdict.winner = Some(if only_a > only_b { Side::A } else { Side::B });
    } else {
        verdict.needed =
            power::mcnemar_sample_size(only_a, only_b, pairs.len() as u64, alpha, power);
    }
    verdict
}

/// Times of two independent groups, by the Mann–Whitney U test; the faster side wins.
pub fn compare_times(metric: &str, a: &[f64], b: &[f64], alpha: f64, power: f64) -> Verdict {
    let mut verdict = Verdict {
        metric: metric.to_string(),
        test: "Mann-Whitney U test",
        paired: false,
        n_a: a.len(),
        n_b: b.len(),
        statistic: None,
        p_value: None,
        alpha,
        winner: None,
        needed: None,
    };
    let Some((result, _)) = stats::mann_whitney_u(a, b) else {
        return verdict;
    };
    verdict.statistic = Some(result.statistic);
    verdict.p_value = Some(result.p_value);
    // U of A counts the (a, b) pairs where a is slower; below half of them, A tends to be faster.
    let half = (a.len() * b.len()) as f64 / 2.0;
    if result.p_value < alpha && result.statistic != half {
        verdict.winner = Some(if result.statistic < half {
            Side::A
        } else {
            Side::B
        });
    } else if result.statistic != half {
        let a_faster = result.statistic < half;
        verdict.needed = power::mann_whitney_sample_size(a, b, a_faster, alpha, power);
    }
    verdict
}

/// Paired times (first: side A, second: side B), by the Wilcoxon signed-rank test.
pub fn compare_times_paired(metric: &str, pairs: &[(f64, f64)], alpha: f64, power: f64) -> Verdict {
    let mut verdict = Verdict {
        metric: metric.to_string(),
        test: "Wilcoxon signed-rank test",
        paired: true,
        n_a: pairs.len(),
        n_b: pairs.len(),
        statistic: None,
        p_value: None,
        alpha,
        winner: None,
        needed: None,
    };
    if !pairs.is_empty() && pairs.iter().all(|(a, b)| a == b) {
        // Every pair took the same time: nothing to test, and no difference to look for.
        verdict.statistic = Some(0.0);
        verdict.p_value = Some(1.0);
        return verdict;
    }
    let Some((result, _)) = stats::wilcoxon_signed_rank(pairs) else {
        return verdict;
    };
    verdict.statistic = Some(result.statistic);
    verdict.p_value = Some(result.p_value);
    let differences: Vec<f64> = pairs.iter().map(|(a, b)| a - b).collect();
    // Above 1/2, A tends to be slower.
    let share = walsh_share_above_zero(&differences);
    if result.p_value < alpha && share != 0.5 {
        verdict.winner = Some(if share < 0.5 { Side::A } else { Side::B });
    } else if share != 0.5 {
        verdict.needed = power::signed_rank_sample_size(&differences, share > 0.5, alpha, power);
    }
    verdict
}

/// The share of the Walsh averages `(d[i] + d[j]) / 2`, `i <= j`, above zero, counting those at
/// zero as half. In O(n log n): over the sorted differences, the partners of each `d[i]` above
/// `-d[i]` (or equal to it) are a contiguous run.
pub fn walsh_share_above_zero(differences: &[f64]) -> f64 {
    let mut sorted = differences.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return 0.5;
    }
    let (mut above, mut zero) = (0u64, 0u64);
    for (i, value) in sorted.iter().enumerate() {
        let partner = -value;
        // Partners at index i or later: the pairs i <= j.
        let first_equal = sorted.partition_point(|x| *x < partner).max(i);
        let first_above = sorted.partition_point(|x| *x <= partner).max(i);
        above += (n - first_above) as u64;
        zero += first_above.saturating_sub(first_equal) as u64;
    }
    let total = (n as u64 * (n as u64 + 1) / 2) as f64;
    (above as f64 + zero as f64 / 2.0) / total
}

/// Two groups side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub a: GroupSummary,
    pub b: GroupSummary,
    /// Paired tests were used: every graded trial had a partner on the other side.
    pub paired: bool,
    pub success: Verdict,
    pub time_to_detect: Verdict,
    pub time_to_recover: Verdict,
}

/// The graded trials of both sides as pairs, when every one of them has exactly one partner.
fn pair_up<'a>(
    a: &[&'a TrialResult],
    b: &[&'a TrialResult],
) -> Option<Vec<(&'a TrialResult, &'a TrialResult)>> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let mut by_key: BTreeMap<&PairKey, &TrialResult> = BTreeMap::new();
    for trial in b {
        if by_key.insert(trial.pair_key.as_ref()?, trial).is_some() {
            return None;
        }
    }
    let mut pairs = Vec::with_capacity(a.len());
    for trial in a {
        let partner = by_key.remove(trial.pair_key.as_ref()?)?;
        pairs.push((*trial, partner));
    }
    Some(pairs)
}

/// Compares side A with side B.
pub fn compare(a: &[TrialResult], b: &[TrialResult], options: &CompareOptions) -> Comparison {
    fn graded(trials: &[TrialResult]) -> Vec<&TrialResult> {
        trials
            .iter()
            .filter(|t| t.outcome != Outcome::Errored)
            .collect()
    }
    let (graded_a, graded_b) = (graded(a), graded(b));
    let pairs = if options.allow_pairing {
        pair_up(&graded_a, &graded_b)
    } else {
        None
    };
    let (alpha, power) = (options.alpha, options.power);
    let times = |trials: &[&TrialResult], pick: fn(&TrialResult) -> Option<i64>| -> Vec<f64> {
        trials
            .iter()
            .filter_map(|t| pick(t))
            .map(|ms| ms as f64)
            .collect()
    };
    let detect = |t: &TrialResult| t.time_to_detect_ms;
    let recover = |t: &TrialResult| t.time_to_recover_ms;
    let (success, time_to_detect, time_to_recover) = match &pairs {
        Some(pairs) => {
            let paired_times = |pick: fn(&TrialResult) -> Option<i64>| -> Vec<(f64, f64)> {
                pairs
                    .iter()
                    .filter_map(|(x, y)| Some((pick(x)? as f64, pick(y)? as f64)))
                    .collect()
            };
            let successes: Vec<(bool, bool)> = pairs
                .iter()
                .map(|(x, y)| (x.outcome == Outcome::Success, y.outcome == Outcome::Success))
                .collect();
            (
                compare_rates_paired(&successes, alpha, power),
                compare_times_paired("time to detect", &paired_times(detect), alpha, power),
                compare_times_paired("time to recover", &paired_times(recover), alpha, power),
            )
        }
        None => {
            let n_success = |trials: &[&TrialResult]| {
                trials
                    .iter()
                    .filter(|t| t.outcome == Outcome::Success)
                    .count() as u64
            };
            (
                compare_rates(
                    n_success(&graded_a),
                    graded_a.len() as u64,
                    n_success(&graded_b),
                    graded_b.len() as u64,
                    alpha,
                    power,
                ),
                compare_times(
                    "time to detect",
                    &times(&graded_a, detect),
                    &times(&graded_b, detect),
                    alpha,
                    power,
                ),
                compare_times(
                    "time to recover",
                    &times(&graded_a, recover),
                    &times(&graded_b, recover),
                    alpha,
                    power,
                ),
            )
        }
    };
    Comparison {
        a: GroupSummary::of(a, options),
        b: GroupSummary::of(b, options),
        paired: pairs.is_some(),
        success,
        time_to_detect,
        time_to_recover,
    }
}
