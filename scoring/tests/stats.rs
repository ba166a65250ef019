//! The statistics against published reference values: scipy 1.17.1's results for fixed inputs,
//! copied as numbers (each case names the scipy call that gave it), and the comparison verdicts.

use expect_test::{Expect, expect};
use schemas::event::Outcome;
use scoring::compare::{self, CompareOptions, PairKey, TrialResult};
use scoring::stats;

/// `actual` equals scipy's `expected` to 1e-9, relative to the larger of the two (or absolute
/// below 1e-300).
fn close(what: &str, actual: f64, expected: f64) {
    let scale = actual.abs().max(expected.abs()).max(1e-300);
    assert!(
        (actual - expected).abs() / scale < 1e-9 || (actual.is_nan() && expected.is_nan()),
        "{what}: {actual:?}, scipy says {expected:?}"
    );
}

#[test]
fn fisher_exact_matches_scipy() {
    // scipy.stats.fisher_exact(table) -> (statistic, pvalue), scipy 1.17.1
    let cases: &[([u64; 4], f64, f64)] = &[
        ([8, 2, 1, 5], 20.0, 0.034965034965034975),
        ([3, 7, 6, 4], 0.2857142857142857, 0.3698499642772088),
        ([10, 0, 0, 10], f64::INFINITY, 1.082508822446903e-05),
        ([0, 5, 0, 5], f64::NAN, 1.0),
        ([12, 8, 15, 5], 0.5, 0.5006034160650401),
        ([45, 5, 30, 20], 6.0, 0.0009668432030628979),
        ([1, 9, 11, 3], 0.030303030303030304, 0.0027594561852200836),
    ];
    for ([a, b, c, d], statistic, p) in cases {
        let result = stats::fisher_exact(*a, *b, *c, *d);
        let what = format!("fisher_exact([[{a}, {b}], [{c}, {d}]])");
        if statistic.is_infinite() {
            assert!(result.statistic.is_infinite(), "{what}");
        } else {
            close(&what, result.statistic, *statistic);
        }
        close(&what, result.p_value, *p);
    }
}

#[test]
fn mann_whitney_u_matches_scipy() {
    // scipy.stats.mannwhitneyu(x, y) (two-sided, method="auto"), scipy 1.17.1
    /// Name, x, y, then scipy's statistic and p-value, and the method scipy chose.
    type Case<'a> = (&'a str, &'a [f64], &'a [f64], f64, f64, stats::Method);
    let cases: &[Case] = &[
        (
            "exact, no ties",
            &[3.1, 4.2, 5.0, 6.3, 7.7],
            &[1.2, 2.5, 2.9, 3.3],
            19.0,
            0.031746031746031744,
            stats::Method::Exact,
        ),
        (
            "exact, 8 vs 10",
            &[12.0, 15.5, 9.1, 20.2, 11.7, 13.3, 18.8, 10.4],
            &[22.1, 25.3, 19.9, 30.0, 21.4, 17.2, 26.6, 24.0, 23.5, 28.1],
            3.0,
            0.00031994149641208463,
            stats::Method::Exact,
        ),
        (
            "asymptotic, 12 vs 10",
            &[
                31.2, 45.1, 22.3, 51.0, 38.4, 27.7, 44.2, 36.9, 29.5, 41.8, 33.3, 48.6,
            ],
            &[52.4, 61.3, 47.7, 39.9, 58.2, 66.1, 55.5, 43.3, 70.2, 49.4],
            12.0,
            0.0017358602386387972,
            stats::Method::Asymptotic,
        ),
        (
            "asymptotic, ties",
            &[1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0, 7.0, 8.0],
            &[2.0, 3.0, 3.0, 4.0, 6.0, 6.0, 9.0, 9.0, 10.0, 11.0, 12.0],
            31.5,
            0.1036188472480168,
            stats::Method::Asymptotic,
        ),
        (
            "small with ties: asymptotic",
            &[1.0, 2.0, 2.0],
            &[2.0, 3.0, 4.0, 5.0],
            1.0,
            0.09872864789482493,
            stats::Method::Asymptotic,
        ),
    ];
    for (name, x, y, statistic, p, method) in cases {
        let (result, used) = stats::mann_whitney_u(x, y).expect("both samples have values");
        close(name, result.statistic, *statistic);
        close(name, result.p_value, *p);
        assert_eq!(used, *method, "{name}");
    }
    assert!(stats::mann_whitney_u(&[], &[1.0]).is_none());
}

#[test]
fn mcnemar_matches_scipy_binomtest() {
    // scipy.stats.binomtest(only_a, only_a + only_b, 0.5).pvalue, scipy 1.17.1
    let cases: &[(u64, u64, f64)] = &[
        (3, 12, 0.03515625),
        (0, 8, 0.0078125),
        (2, 12, 0.012939453125),
        (10, 2, 0.03857421875),
        (7, 0, 0.015625),
    ];
    for (only_a, only_b, p) in cases {
        close(
            &format!("binomtest({only_a}, {})", only_a + only_b),
            stats::mcnemar_exact(*only_a, *only_b).p_value,
            *p,
        );
    }
    assert_eq!(stats::mcnemar_exact(0, 0).p_value, 1.0);
    assert_eq!(stats::mcnemar_exact(4, 4).p_value, 1.0);
}

const A60: [f64; 60] = [
    106.912, 116.432, 106.609, 73.937, 118.107, 108.927, 89.261, 111.622, 107.291, 105.883,
    100.568, 110.934, 85.271, 96.742, 90.358, 111.977, 100.794, 94.151, 84.362, 94.856, 100.163,
    94.488, 125.881, 120.134, 45.777, 62.22, 96.505, 91.556, 104.273, 104.346, 142.357, 77.76,
    92.448, 140.855, 112.934, 113.261, 89.72, 67.038, 103.349, 102.18, 75.453, 86.335, 98.559,
    81.105, 98.035, 101.91, 100.712, 89.874, 111.875, 117.823, 106.417, 83.635, 114.633, 89.971,
    117.583, 78.564, 118.289, 99.599, 75.025, 93.722,
];
const B60: [f64; 60] = [
    112.453, 124.16, 101.787, 67.863, 125.103, 109.26, 96.616, 124.217, 95.803, 113.427, 117.814,
    112.959, 82.163, 109.264, 97.892, 125.936, 102.342, 84.333, 88.262, 95.398, 112.916, 101.424,
    114.573, 113.182, 59.615, 74.018, 95.103, 96.546, 113.729, 114.03, 156.119, 85.325, 96.5,
    143.267, 128.491, 95.752, 93.333, 72.368, 94.096, 110.508, 73.94, 99.959, 102.303, 92.797,
    115.223, 110.739, 96.955, 79.731, 134.409, 121.71, 104.531, 90.078, 117.719, 103.492, 122.922,
    83.701, 116.143, 109.295, 69.686, 105.381,
];

#[test]
fn wilcoxon_matches_scipy() {
    // scipy.stats.wilcoxon(x, y) (two-sided, zero_method="wilcox", correction=False,
    // method="auto"), scipy 1.17.1
    let exact_x = [
        125.0, 115.0, 130.0, 140.0, 140.5, 115.5, 140.2, 125.3, 140.7, 135.0,
    ];
    let exact_y = [
        110.0, 122.0, 125.0, 120.0, 140.1, 124.0, 123.0, 137.0, 135.4, 145.0,
    ];
    let ties_x = [
        10.0, 12.0, 14.0, 15.0, 16.0, 18.0, 20.0, 22.0, 25.0, 27.0, 30.0, 31.0, 33.0, 35.0, 36.0,
        38.0, 40.0, 41.0, 44.0, 47.0,
    ];
    let ties_y = [
        12.0, 10.0, 16.0, 15.0, 14.0, 20.0, 18.0, 25.0, 22.0, 29.0, 28.0, 33.0, 31.0, 37.0, 34.0,
        40.0, 38.0, 44.0, 41.0, 45.0,
    ];
    let zip = |x: &[f64], y: &[f64]| x.iter().copied().zip(y.iter().copied()).collect::<Vec<_>>();
    let cases = [
        (
            "exact, 10 pairs",
            zip(&exact_x, &exact_y),
            22.0,
            0.625,
            stats::Method::Exact,
        ),
        (
            "asymptotic, 60 pairs",
            zip(&A60, &B60),
            405.5,
            0.00017630681841306303,
            stats::Method::Asymptotic,
        ),
        (
            "ties and a zero, 20 pairs",
            zip(&ties_x, &ties_y),
            91.0,
            0.864109737260312,
            stats::Method::Asymptotic,
        ),
    ];
    for (name, pairs, statistic, p, method) in cases {
        let (result, used) = stats::wilcoxon_signed_rank(&pairs).expect("non-zero differences");
        close(name, result.statistic, statistic);
        close(name, result.p_value, p);
        assert_eq!(used, method, "{name}");
    }
    assert!(stats::wilcoxon_signed_rank(&[(1.0, 1.0)]).is_none());
}

#[test]
fn wilson_matches_scipy() {
    // scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson"),
    // scipy 1.17.1
    let cases: &[(u64, u64, f64, f64)] = &[
        (7, 10, 0.39677814746114526, 0.892208732593699),
        (0, 10, 0.0, 0.27753279986288926),
        (10, 10, 0.7224672001371109, 1.0),
        (45, 60, 0.6276792992295218, 0.8422347746994333),
        (1, 3, 0.06149194472039626, 0.7923403991979523),
    ];
    for (k, n, low, high) in cases {
        let interval = stats::wilson_interval(*k, *n, 0.95).expect("n > 0");
        assert!((interval.low - low).abs() < 1e-12, "{k}/{n}: {interval:?}");
        assert!(
            (interval.high - high).abs() < 1e-12,
            "{k}/{n}: {interval:?}"
        );
    }
    // confidence_level=0.9
    let interval = stats::wilson_interval(7, 10, 0.9).unwrap();
    close("wilson 90%", interval.low, 0.4416997958698351);
    close("wilson 90%", interval.high, 0.8731234160968021);
    assert!(stats::wilson_interval(0, 0, 0.95).is_none());
}

#[test]
fn normal_distribution_matches_scipy() {
    // scipy.stats.norm.sf(z) and norm.ppf(p), scipy 1.17.1
    for (z, sf) in [
        (0.1, 0.460172162722971),
        (0.6, 0.2742531177500736),
        (1.0, 0.15865525393145707),
        (2.0, 0.022750131948179195),
        (3.5, 0.00023262907903552502),
        (5.0, 2.866515718791933e-07),
        (8.0, 6.22096057427174e-16),
        (12.0, 1.776482112077653e-33),
    ] {
        close(&format!("norm.sf({z})"), stats::normal_sf(z), sf);
    }
    close(
        "norm.ppf(1e-10)",
        stats::normal_quantile(1e-10),
        -6.361340902404056,
    );
    close(
        "norm.ppf(0.975)",
        stats::normal_quantile(0.975),
        1.959963984540054,
    );
}

/// The share of Walsh averages above zero, counted over every pair as its definition says.
fn walsh_share_by_definition(differences: &[f64]) -> f64 {
    let (mut above, mut total) = (0.0, 0.0);
    for i in 0..differences.len() {
        for j in i..differences.len() {
            let sum = differences[i] + differences[j];
            total += 1.0;
            if sum > 0.0 {
                above += 1.0;
            } else if sum == 0.0 {
                above += 0.5;
            }
        }
    }
    above / total
}

#[test]
fn walsh_share_counts_every_pair() {
    // Small integers: many ties, zeros and sums at exactly zero.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for n in 1..=120 {
        let spread = 1 + next() % 9;
        let differences: Vec<f64> = (0..n)
            .map(|_| (next() % (2 * spread + 1)) as f64 - spread as f64)
            .collect();
        let fast = compare::walsh_share_above_zero(&differences);
        let slow = walsh_share_by_definition(&differences);
        assert!(
            (fast - slow).abs() < 1e-12,
            "{differences:?}: {fast} by sorting, {slow} by definition"
        );
    }
    // Pairs of [-1, 1]: -2 below zero, 0 at zero, 2 above.
    assert_eq!(compare::walsh_share_above_zero(&[-1.0, 1.0]), 0.5);
}

#[test]
fn bootstrap_is_seeded_and_reproducible() {
    let sample = [
        31.2, 45.1, 22.3, 51.0, 38.4, 27.7, 44.2, 36.9, 29.5, 41.8, 33.3, 48.6,
    ];
    let interval = stats::bootstrap_median_interval(&sample, 0.95, 10_000, 42).unwrap();
    assert_eq!(
        Some(interval),
        stats::bootstrap_median_interval(&sample, 0.95, 10_000, 42)
    );
    let median = stats::median(&sample).unwrap();
    assert!(interval.low <= median && median <= interval.high);
    expect![[r#"
        median 37.65, 95% interval [30.35, 44.650000000000006]
        another seed: [30.35, 44.650000000000006]
        one value: [7.0, 7.0]"#]]
    .assert_eq(&format!(
        "median {median}, 95% interval [{}, {}]\nanother seed: [{}, {}]\none value: {:?}",
        interval.low,
        interval.high,
        stats::bootstrap_median_interval(&sample, 0.95, 10_000, 7)
            .unwrap()
            .low,
        stats::bootstrap_median_interval(&sample, 0.95, 10_000, 7)
            .unwrap()
            .high,
        stats::bootstrap_median_interval(&[7.0], 0.95, 100, 1)
            .map(|i| [i.low, i.high])
            .unwrap(),
    ));
    assert!(stats::bootstrap_median_interval(&[], 0.95, 100, 1).is_none());
}

fn check(verdict: compare::Verdict, expected: Expect) {
    expected.assert_eq(&verdict.to_string());
}

#[test]
fn verdicts_name_a_winner_only_when_significant() {
    check(
        compare::compare_rates(18, 20, 8, 20, 0.05, 0.8),
        expect!["success rate: A is better (p = 0.0022, Fisher's exact test, 20 vs 20)"],
    );
    check(
        compare::compare_rates(12, 20, 10, 20, 0.05, 0.8),
        expect![
            "success rate: the data cannot tell (p = 0.7512, Fisher's exact test, 20 vs 20); about 408 trials per side would be needed to tell a difference this large"
        ],
    );
    check(
        compare::compare_rates(10, 20, 10, 20, 0.05, 0.8),
        expect![
            "success rate: the data cannot tell (p = 1.0000, Fisher's exact test, 20 vs 20); no difference was observed"
        ],
    );
    check(
        compare::compare_rates(3, 3, 0, 0, 0.05, 0.8),
        expect![
            "success rate: the data cannot tell (3 vs 0; too few values for Fisher's exact test)"
        ],
    );
    check(
        compare::compare_rates_paired(
            &[
                [(true, false); 9].as_slice(),
                &[(true, true); 5],
                &[(false, true); 1],
            ]
            .concat(),
            0.05,
            0.8,
        ),
        expect!["success rate: A is better (p = 0.0215, McNemar's exact test, 15 pairs)"],
    );
    check(
        compare::compare_times(
            "time to recover",
            &[
                31.2, 45.1, 22.3, 51.0, 38.4, 27.7, 44.2, 36.9, 29.5, 41.8, 33.3, 48.6,
            ],
            &[52.4, 61.3, 47.7, 39.9, 58.2, 66.1, 55.5, 43.3, 70.2, 49.4],
            0.05,
            0.8,
        ),
        expect!["time to recover: A is better (p = 0.0017, Mann-Whitney U test, 12 vs 10)"],
    );
    check(
        compare::compare_times(
            "time to detect",
            &[10.0, 12.0, 14.0],
            &[11.0, 13.0, 15.0],
            0.05,
            0.8,
        ),
        expect![
            "time to detect: the data cannot tell (p = 0.7000, Mann-Whitney U test, 3 vs 3); about 47 trials per side would be needed to tell a difference this large"
        ],
    );
    let pairs: Vec<(f64, f64)> = A60.iter().copied().zip(B60.iter().copied()).collect();
    check(
        compare::compare_times_paired("time to recover", &pairs, 0.05, 0.8),
        expect!["time to recover: A is better (p = 0.0002, Wilcoxon signed-rank test, 60 pairs)"],
    );
}

fn trial(key: u32, outcome: Outcome, recover_ms: Option<i64>) -> TrialResult {
    TrialResult {
        pair_key: Some(PairKey {
            subject: "etcd".to_string(),
            chaos: "node_kill".to_string(),
            repetition: key,
            seed: u64::from(key),
        }),
        outcome,
        time_to_detect_ms: Some(1_000 + i64::from(key) * 10),
        time_to_recover_ms: recover_ms,
    }
}

#[test]
fn comparisons_pair_trials_on_the_same_seed_and_leave_out_errored_ones() {
    let a: Vec<TrialResult> = (0..12)
        .map(|k| trial(k, Outcome::Success, Some(20_000 + i64::from(k) * 500)))
        .collect();
    let mut b: Vec<TrialResult> = (0..12)
        .map(|k| {
            if k % 3 == 0 {
                trial(k, Outcome::Timeout, None)
            } else {
                trial(k, Outcome::Success, Some(30_000 + i64::from(k) * 700))
            }
        })
        .collect();
    let comparison = compare::compare(&a, &b, &CompareOptions::default());
    assert!(comparison.paired);
    expect![[r#"
        success rate: the data cannot tell (p = 0.1250, McNemar's exact test, 12 pairs); about 23 pairs per side would be needed to tell a difference this large
        time to detect: the data cannot tell (p = 1.0000, Wilcoxon signed-rank test, 12 pairs); no difference was observed
        time to recover: A is better (p = 0.0078, Wilcoxon signed-rank test, 8 pairs)
        A: 12/12 success, 95% [0.758, 1.000]; B: 8/12 success, 95% [0.391, 0.862]"#]]
    .assert_eq(&format!(
        "{}\n{}\n{}\nA: {}/{} success, 95% [{:.3}, {:.3}]; B: {}/{} success, 95% [{:.3}, {:.3}]",
        comparison.success,
        comparison.time_to_detect,
        comparison.time_to_recover,
        comparison.a.n_success,
        comparison.a.n_graded,
        comparison.a.success_interval.unwrap().low,
        comparison.a.success_interval.unwrap().high,
        comparison.b.n_success,
        comparison.b.n_graded,
        comparison.b.success_interval.unwrap().low,
        comparison.b.success_interval.unwrap().high,
    ));

    // An errored trial leaves its partner without a pair: the comparison falls back to the
    // unpaired tests, and the errored trial counts nowhere.
    b[0] = trial(0, Outcome::Errored, None);
    let comparison = compare::compare(&a, &b, &CompareOptions::default());
    assert!(!comparison.paired);
    assert_eq!(
        (
            comparison.b.n_trials,
            comparison.b.n_errored,
            comparison.b.n_graded
        ),
        (12, 1, 11)
    );
    expect!["success rate: the data cannot tell (p = 0.0932, Fisher's exact test, 12 vs 11); about 24 trials per side would be needed to tell a difference this large"]
        .assert_eq(&comparison.success.to_string());
}

/// Bootstrap medians the plain way: n values drawn, sorted, their median taken.
fn medians_by_resampling(sample: &[f64], resamples: u32, seed: u64) -> Vec<f64> {
    let mut rng = stats::Rng::seeded(seed);
    let n = sample.len();
    let mut draw = vec![0.0; n];
    (0..resamples)
        .map(|_| {
            for slot in draw.iter_mut() {
                *slot = sample[rng.below(n as u64) as usize];
            }
            draw.sort_by(f64::total_cmp);
            if n % 2 == 1 {
                draw[n / 2]
            } else {
                (draw[n / 2 - 1] + draw[n / 2]) / 2.0
            }
        })
        .collect()
}

#[test]
fn bootstrap_medians_follow_the_distribution_of_plain_resampling() {
    let mut rng = stats::Rng::seeded(3);
    let resamples = 20_000;
    for n in [1, 2, 3, 4, 5, 8, 13, 30, 101, 400] {
        // Times with ties, as real measurements in milliseconds have.
        let sample: Vec<f64> = (0..n)
            .map(|_| (1_000 + rng.below(25) * 250) as f64)
            .collect();
        let fast = stats::bootstrap_medians(&sample, resamples, 11);
        let plain = medians_by_resampling(&sample, resamples, 12);
        // The two empirical distribution functions agree at every value a median can take
        // (each is within about 0.0035 of the truth, one standard deviation).
        let mut values: Vec<f64> = fast.iter().chain(&plain).copied().collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        let share = |medians: &[f64], value: f64| {
            medians.iter().filter(|m| **m <= value).count() as f64 / medians.len() as f64
        };
        let largest = values
            .iter()
            .map(|value| (share(&fast, *value) - share(&plain, *value)).abs())
            .fold(0.0, f64::max);
        assert!(
            largest < 0.02,
            "n = {n}: the distributions differ by {largest}"
        );
    }
}

#[test]
fn gamma_and_beta_draws_have_their_means() {
    let mut rng = stats::Rng::seeded(5);
    for (a, b) in [(1.0, 1.0), (2.0, 9.0), (50.0, 51.0), (15_000.0, 15_001.0)] {
        let draws = 20_000;
        let mean = (0..draws).map(|_| rng.beta(a, b)).sum::<f64>() / f64::from(draws);
        let expected = a / (a + b);
        let sd = (a * b / ((a + b).powi(2) * (a + b + 1.0)) / f64::from(draws)).sqrt();
        assert!(
            (mean - expected).abs() < 5.0 * sd,
            "Beta({a}, {b}): mean {mean}, expected {expected}"
        );
    }
}

/// The squeeze in `Rng::gamma` only skips logarithms: with the same seed, its draws are those of
/// Marsaglia and Tsang's exact test alone, written here without it, bit for bit.
#[test]
fn gamma_draws_are_those_of_the_exact_test_without_the_squeeze() {
    fn exact_gamma(rng: &mut stats::Rng, shape: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = rng.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = rng.open_unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
    for shape in [1.0, 1.5, 3.0, 10.0, 501.0, 15_000.5] {
        let (mut squeezed, mut exact) = (stats::Rng::seeded(11), stats::Rng::seeded(11));
        for draw in 0..200_000 {
            let (a, b) = (squeezed.gamma(shape), exact_gamma(&mut exact, shape));
            assert_eq!(a.to_bits(), b.to_bits(), "shape {shape}, draw {draw}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sample-size hints against the exact tests, computed here by brute-force enumeration of their
// null distributions in integers (no code shared with the library).

/// C(n, k), exactly.
fn choose(n: u64, k: u64) -> u128 {
    if k > n {
        return 0;
    }
    (0..k).fold(1u128, |acc, i| acc * u128::from(n - i) / u128::from(i + 1))
}

/// Fisher's two-sided p-value of `[[a, b], [c, d]]`: the hypergeometric probability of every
/// table with these margins that is no more likely than this one, compared in integers.
fn fisher_p_by_enumeration(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let (row, col, n) = (a + b, a + c, a + b + c + d);
    let weight = |x: u64| choose(row, x) * choose(n - row, col - x);
    let observed = weight(a);
    let low = col.saturating_sub(n - row);
    let tail: u128 = (low..=col.min(row))
        .map(weight)
        .filter(|w| *w <= observed)
        .sum();
    tail as f64 / choose(n, col) as f64
}

/// McNemar's exact p-value: twice the binomial(d, 1/2) tail at the minority count.
fn mcnemar_p_by_enumeration(only_a: u64, only_b: u64) -> f64 {
    let d = only_a + only_b;
    let tail: u128 = (0..=only_a.min(only_b)).map(|i| choose(d, i)).sum();
    (2.0 * tail as f64 / 2f64.powi(d as i32)).min(1.0)
}

/// The exact Mann–Whitney p-value of n against n with every A value below every B value: the
/// share of the C(2n, n) ways to pick A's ranks whose U is as extreme, both ways.
fn mann_whitney_separated_p_by_enumeration(n: u32) -> f64 {
    let (mut extreme, mut total) = (0u64, 0u64);
    for mask in 0u32..1 << (2 * n) {
        if mask.count_ones() != n {
            continue;
        }
        total += 1;
        // U of A: pairs with the A rank above the B rank.
        let mut u = 0;
        for i in 0..2 * n {
            for j in 0..2 * n {
                if mask & (1 << i) != 0 && mask & (1 << j) == 0 && i > j {
                    u += 1;
                }
            }
        }
        if u == 0 || u == n * n {
            extreme += 1;
        }
    }
    extreme as f64 / total as f64
}

/// The exact signed-rank p-value of n positive differences: the share of the 2^n sign
/// assignments whose positive rank sum is as extreme, both ways.
fn signed_rank_all_positive_p_by_enumeration(n: u32) -> f64 {
    let most = n * (n + 1) / 2;
    let extreme = (0u32..1 << n)
        .filter(|signs| {
            let r_plus: u32 = (0..n)
                .filter(|i| signs & (1 << i) != 0)
                .map(|i| i + 1)
                .sum();
            r_plus == 0 || r_plus == most
        })
        .count();
    extreme as f64 / f64::from(1u32 << n)
}

/// Binomial(n, p) probabilities.
fn binomial(n: u64, p: f64) -> Vec<f64> {
    (0..=n)
        .map(|k| choose(n, k) as f64 * p.powi(k as i32) * (1.0 - p).powi((n - k) as i32))
        .collect()
}

/// Fisher's power by brute force: every table of n against n, weighted by its binomial
/// probability, that rejects with the first side ahead.
fn fisher_power_by_enumeration(p_high: f64, p_low: f64, n: u64) -> f64 {
    let (high, low) = (binomial(n, p_high), binomial(n, p_low));
    let mut power = 0.0;
    for x in 0..=n {
        for y in 0..x {
            if fisher_p_by_enumeration(x, n - x, y, n - y) < 0.05 {
                power += high[x as usize] * low[y as usize];
            }
        }
    }
    power
}

/// The first n from `n_min` whose power reaches 80%.
fn first_n_with_power(n_min: u64, power: impl Fn(u64) -> f64) -> u64 {
    (n_min..).find(|n| power(*n) >= 0.8).expect("reached")
}

#[test]
fn hints_come_from_the_exact_tests_at_small_n() {
    use scoring::power::SampleSize::About;
    let close = |what: &str, actual: f64, expected: f64| {
        assert!(
            (actual - expected).abs() < 1e-12,
            "{what}: {actual}, expected {expected}"
        );
    };

    // Fisher, 100% against 0%: p = 0.1 at 3 per side, 2/70 = 0.0286 at 4 (scipy agrees).
    close("fisher 3 vs 3", fisher_p_by_enumeration(3, 0, 0, 3), 0.1);
    close(
        "fisher 4 vs 4",
        fisher_p_by_enumeration(4, 0, 0, 4),
        2.0 / 70.0,
    );
    close(
        "fisher 4 vs 2",
        fisher_p_by_enumeration(4, 0, 0, 2),
        1.0 / 15.0,
    );
    for n in 1..=12 {
        close(
            "fisher",
            stats::fisher_exact(n, 0, 0, n).p_value,
            fisher_p_by_enumeration(n, 0, 0, n),
        );
    }
    // Every table of 4 vs 4 then rejects: 4 per side, which 4 vs 2 (the quickstart's
    // compare-baseline) and 3 vs 3 both lack; 2 vs 2 needs 4 too, never 3.
    for (a_n, b_n, needed) in [(4, 2, 4), (3, 3, 4), (2, 2, 4), (1, 3, 4)] {
        let verdict = compare::compare_rates(a_n, a_n, 0, b_n, 0.05, 0.8);
        assert_eq!(verdict.winner, None);
        let by_enumeration = first_n_with_power(a_n.max(b_n).max(a_n.min(b_n) + 1), |n| {
            if fisher_p_by_enumeration(n, 0, 0, n) < 0.05 {
                1.0
            } else {
                0.0
            }
        });
        assert_eq!(by_enumeration, needed);
        assert_eq!(verdict.needed, Some(About(needed)), "{a_n} vs {b_n}");
    }
    check(
        compare::compare_rates(4, 4, 0, 2, 0.05, 0.8),
        expect![[
            "success rate: the data cannot tell (p = 0.0667, Fisher's exact test, 4 vs 2); about 4 trials per side would be needed to tell a difference this large"
        ]],
    );
    // 75% against 25%: the first n from 5 whose exact power reaches 80%, by brute force.
    let needed = first_n_with_power(5, |n| fisher_power_by_enumeration(0.75, 0.25, n));
    assert_eq!(
        compare::compare_rates(3, 4, 1, 4, 0.05, 0.8).needed,
        Some(About(needed))
    );
    // scipy.stats.fisher_exact over the same tables: 0.7897 at 17, 0.8330 at 18.
    assert_eq!(needed, 18);
    close(
        "power at 17",
        fisher_power_by_enumeration(0.75, 0.25, 17),
        0.789_664_759_911_112_4,
    );
    for n in [5, 10, 17, 18] {
        close(
            &format!("fisher power at {n}"),
            scoring::power::fisher_power(0.75, 0.25, n, 0.05),
            fisher_power_by_enumeration(0.75, 0.25, n),
        );
    }

    // McNemar, every discordant pair one way: p = 2 / 2^5 = 0.0625 at 5, 2 / 2^6 = 0.03125 at 6.
    close("mcnemar 5", mcnemar_p_by_enumeration(5, 0), 0.0625);
    close("mcnemar 6", mcnemar_p_by_enumeration(6, 0), 0.03125);
    for d in 1..=20 {
        for k in 0..=d {
            close(
                "mcnemar",
                stats::mcnemar_exact(d - k, k).p_value,
                mcnemar_p_by_enumeration(d - k, k),
            );
        }
    }
    for n_pairs in [1usize, 2, 4, 5] {
        let verdict = compare::compare_rates_paired(&vec![(true, false); n_pairs], 0.05, 0.8);
        assert_eq!(verdict.winner, None);
        assert_eq!(verdict.needed, Some(About(6)), "{n_pairs} pairs");
    }
    check(
        compare::compare_rates_paired(&[(true, false); 4], 0.05, 0.8),
        expect![[
            "success rate: the data cannot tell (p = 0.1250, McNemar's exact test, 4 pairs); about 6 pairs per side would be needed to tell a difference this large"
        ]],
    );
    // Three of four pairs discordant: the discordant count is binomial(n, 3/4), and the test
    // rejects once it reaches 6: P(D >= 6) is 0.6785 at 8 pairs, 0.8343 at 9 (scipy agrees).
    let at_least_six = |n: u64| {
        binomial(n, 0.75)[6.min(n as usize + 1)..]
            .iter()
            .sum::<f64>()
    };
    close("P(D >= 6 | 8)", at_least_six(8), 0.678_543_090_820_312_6);
    assert_eq!(first_n_with_power(5, at_least_six), 9);
    let three_of_four = [(true, false), (true, false), (true, false), (true, true)];
    assert_eq!(
        compare::compare_rates_paired(&three_of_four, 0.05, 0.8).needed,
        Some(About(9))
    );

    // Mann–Whitney, every A time below every B time: p = 0.1 at 3 per side, 2/70 at 4; the
    // resampled data stays separated, so the power is 0 at 3 and 1 at 4.
    close(
        "mann-whitney 3",
        mann_whitney_separated_p_by_enumeration(3),
        0.1,
    );
    close(
        "mann-whitney 4",
        mann_whitney_separated_p_by_enumeration(4),
        2.0 / 70.0,
    );
    for n in 1..=6u32 {
        let a: Vec<f64> = (0..n).map(f64::from).collect();
        let b: Vec<f64> = (n..2 * n).map(f64::from).collect();
        let (result, _) = stats::mann_whitney_u(&a, &b).unwrap();
        close(
            "mann-whitney",
            result.p_value,
            mann_whitney_separated_p_by_enumeration(n),
        );
    }
    for (a, b) in [
        (vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]),
        (vec![1.0, 2.0], vec![3.0, 4.0, 5.0]),
        (vec![1.0], vec![2.0]),
    ] {
        let verdict = compare::compare_times("time to recover", &a, &b, 0.05, 0.8);
        assert_eq!(verdict.winner, None);
        assert_eq!(verdict.needed, Some(About(4)), "{a:?} vs {b:?}");
    }

    // Signed-rank, every difference one way: p = 0.0625 at 5 pairs, 0.03125 at 6.
    close(
        "signed-rank 5",
        signed_rank_all_positive_p_by_enumeration(5),
        0.0625,
    );
    close(
        "signed-rank 6",
        signed_rank_all_positive_p_by_enumeration(6),
        0.03125,
    );
    for n in 1..=10u32 {
        let pairs: Vec<(f64, f64)> = (1..=n).map(|i| (f64::from(i) + 0.5, 0.0)).collect();
        let (result, _) = stats::wilcoxon_signed_rank(&pairs).unwrap();
        close(
            "signed-rank",
            result.p_value,
            signed_rank_all_positive_p_by_enumeration(n),
        );
    }
    for n_pairs in 1..=5u32 {
        let pairs: Vec<(f64, f64)> = (1..=n_pairs)
            .map(|i| (10.0 * f64::from(i), 20.0 * f64::from(i)))
            .collect();
        let verdict = compare::compare_times_paired("time to recover", &pairs, 0.05, 0.8);
        assert_eq!(verdict.winner, None);
        assert_eq!(verdict.needed, Some(About(6)), "{n_pairs} pairs");
    }
}

#[test]
fn hints_are_above_the_data_and_absent_when_they_cannot_be_honest() {
    use scoring::power::SampleSize::{About, MoreThan};
    // No difference: no hint.
    assert_eq!(compare::compare_rates(3, 6, 3, 6, 0.05, 0.8).needed, None);
    assert_eq!(
        compare::compare_rates_paired(&[(true, false), (false, true)], 0.05, 0.8).needed,
        None
    );
    // A difference too small for any size up to the cap: says so.
    let verdict = compare::compare_rates(50, 100, 49, 100, 0.05, 0.8);
    assert_eq!(verdict.needed, Some(MoreThan(1000)));
    expect![[
        "success rate: the data cannot tell (p = 1.0000, Fisher's exact test, 100 vs 100); more than 1000 trials per side would be needed to tell a difference this large"
    ]]
    .assert_eq(&verdict.to_string());
    // Whatever the data, a hint is more data than it has.
    for (a_success, a_n, b_success, b_n) in [(9, 10, 6, 10), (7, 9, 2, 4), (1, 2, 0, 1)] {
        let verdict = compare::compare_rates(a_success, a_n, b_success, b_n, 0.05, 0.8);
        assert_eq!(verdict.winner, None);
        let Some(About(n)) = verdict.needed else {
            panic!("{verdict}");
        };
        assert!(n >= a_n.max(b_n) && n > a_n.min(b_n), "{verdict}");
    }
}
