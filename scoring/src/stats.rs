//! Statistics as pure functions: Wilson intervals for rates, seeded bootstrap intervals for
//! medians, Fisher's exact test, the Mann–Whitney U test, McNemar's exact test and the Wilcoxon
//! signed-rank test, each two-sided and computed as scipy 1.17 does (the tests in
//! `tests/stats.rs` hold scipy's values for fixed inputs).
//!
//! The normal distribution is computed here from first principles (a series and a continued
//! fraction for erfc, Newton's method for quantiles). The bootstrap and the simulated power draw
//! from xoshiro256** (`rand_xoshiro`, a fixed algorithm) with `rand`'s unbiased ranges, both
//! pinned in Cargo.lock, so a seed gives the same results until they are upgraded on purpose.

use std::f64::consts::{PI, SQRT_2};

use rand::{Rng as _, RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256StarStar;

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// The complementary error function, to about 1e-15 relative: a series of positive terms below
/// 0.5, where `1 - erf` loses nothing, and Lentz's continued fraction from there on.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 0.5 {
        // erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        while term > sum * 1e-17 {
            n += 1.0;
            term *= 2.0 * x * x / (2.0 * n + 1.0);
            sum += term;
        }
        return 1.0 - 2.0 / PI.sqrt() * (-x * x).exp() * sum;
    }
    if x > 27.3 {
        return 0.0;
    }
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
    let tiny = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for k in 1..20_000 {
        let a = f64::from(k) / 2.0;
        d = x + a * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = x + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / PI.sqrt() / f
}

/// P(Z <= z) for a standard normal Z.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / SQRT_2)
}

/// P(Z > z) for a standard normal Z, accurate far into the tail.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / SQRT_2)
}

/// The z with `normal_cdf(z) == p`: Abramowitz and Stegun's 26.2.23 (within 4.5e-4), then
/// Newton's method on the exact distribution function.
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p > 0.5 {
        return -normal_quantile(1.0 - p);
    }
    let t = (-2.0 * p.ln()).sqrt();
    let mut z = -(t
        - (2.515_517 + 0.802_853 * t + 0.010_328 * t * t)
            / (1.0 + 1.432_788 * t + 0.189_269 * t * t + 0.001_308 * t * t * t));
    for _ in 0..50 {
        let density = (-0.5 * z * z).exp() / (2.0 * PI).sqrt();
        if density == 0.0 {
            break;
        }
        let step = (normal_cdf(z) - p) / density;
        z -= step;
        if step.abs() < 1e-15 * z.abs().max(1.0) {
            break;
        }
    }
    z
}

/// The two-sided critical value for `confidence` (1.959963984540054 for 0.95).
pub fn z_for_confidence(confidence: f64) -> f64 {
    normal_quantile(1.0 - (1.0 - confidence) / 2.0)
}

/// The Wilson score interval of `successes` out of `n` at `confidence` (such as 0.95); `None`
/// for `n == 0`. As `statsmodels.stats.proportion.proportion_confint(method="wilson")`.
pub fn wilson_interval(successes: u64, n: u64, confidence: f64) -> Option<Interval> {
    if n == 0 || successes > n {
        return None;
    }
    let n = n as f64;
    let p = successes as f64 / n;
    let z = z_for_confidence(confidence);
    let z2 = z * z;
    let center = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Interval {
        low: (center - half).max(0.0),
        high: (center + half).min(1.0),
    })
}

/// The median (the mean of the two middle values for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(sorted_median(&sorted))
}

fn sorted_median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The `q` quantile of sorted values by linear interpolation (numpy's default, "type 7").
fn sorted_quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

/// xoshiro256** (`rand_xoshiro`) seeded through SplitMix64: a fixed algorithm, so that a seed
/// gives the same bootstrap on every machine and every build.
#[derive(Debug, Clone)]
pub struct Rng {
    generator: Xoshiro256StarStar,
}

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng {
            generator: Xoshiro256StarStar::seed_from_u64(seed),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.generator.next_u64()
    }

    /// Uniform on the open interval (0, 1).
    pub fn open_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Marsaglia's polar method; the second value is dropped).
    pub fn normal(&mut self) -> f64 {
        loop {
            let x = 2.0 * self.open_unit() - 1.0;
            let y = 2.0 * self.open_unit() - 1.0;
            let r = x * x + y * y;
            if r < 1.0 && r > 0.0 {
                return x * (-2.0 * r.ln() / r).sqrt();
            }
        }
    }

    /// Gamma(shape, 1) for `shape >= 1` (Marsaglia and Tsang's method, with their squeeze: a
    /// draw under `1 - 0.0331 x⁴` lies inside the acceptance region, so it is accepted without
    /// the two logarithms of the exact test; about 98% of draws are, and the values and the draws
    /// consumed are the same as without it).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.open_unit();
            let x2 = x * x;
            if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Beta(a, b) for `a, b >= 1`.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }

    /// Uniform in `0..bound` without bias, `bound > 0`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.generator.random_range(0..bound)
    }
}

/// Resamples the bootstrap draws by default.
pub const DEFAULT_BOOTSTRAP_RESAMPLES: u32 = 10_000;
/// The seed of comparisons unless the caller picks one.
pub const DEFAULT_BOOTSTRAP_SEED: u64 = 0x5eed;

/// A percentile bootstrap interval for the median of `sample`: `resamples` bootstrap medians
/// drawn by a PRNG seeded with `seed`, and the (1 - confidence)/2 and (1 + confidence)/2
/// quantiles of them. Reproducible: equal inputs give equal intervals. `None` when empty.
///
/// A resample's median depends only on which positions of the sorted sample its middle draws
/// land on, so those are drawn directly instead of drawing n values and sorting them: the k-th
/// smallest of n uniform draws from `0..n` is `floor(n · U₍ₖ₎)` where `U₍ₖ₎`, the k-th smallest of
/// n uniforms on (0, 1), follows Beta(k, n - k + 1); the next one up is
/// `U₍ₖ₊₁₎ = U₍ₖ₎ + (1 - U₍ₖ₎) · Beta(1, n - k)`. The medians have exactly the distribution of
/// resampling, at a cost that does not grow with n (10,000 resamples of 30,000 values take
/// about as long as of 30).
pub fn bootstrap_median_interval(
    sample: &[f64],
    confidence: f64,
    resamples: u32,
    seed: u64,
) -> Option<Interval> {
    if sample.is_empty() || resamples == 0 {
        return None;
    }
    let mut medians = bootstrap_medians(sample, resamples, seed);
    medians.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Some(Interval {
        low: sorted_quantile(&medians, tail),
        high: sorted_quantile(&medians, 1.0 - tail),
    })
}

/// The medians of `resamples` bootstrap resamples of `sample` (drawn as
/// [`bootstrap_median_interval`] says), in the order drawn.
pub fn bootstrap_medians(sample: &[f64], resamples: u32, seed: u64) -> Vec<f64> {
    if sample.is_empty() {
        return Vec::new();
    }
    let mut rng = Rng::seeded(seed);
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let size = n as f64;
    let at = |u: f64| sorted[((size * u) as usize).min(n - 1)];
    let mut medians = Vec::with_capacity(resamples as usize);
    for _ in 0..resamples {
        let median = if n % 2 == 1 {
            let k = n.div_ceil(2) as f64;
            at(rng.beta(k, size - k + 1.0))
        } else {
            let k = (n / 2) as f64;
            let lower = rng.beta(k, size - k + 1.0);
            // The smallest of the n - k draws above the lower middle one.
            let upper = lower + (1.0 - lower) * (1.0 - rng.open_unit().powf(1.0 / (size - k)));
            (at(lower) + at(upper)) / 2.0
        };
        medians.push(median);
    }
    medians
}

/// ln(k!) for k in 0..=n.
pub(crate) fn ln_factorials(n: u64) -> Vec<f64> {
    let mut table = Vec::with_capacity(n as usize + 1);
    let mut sum = 0.0;
    table.push(0.0);
    for k in 1..=n {
        sum += (k as f64).ln();
        table.push(sum);
    }
    table
}

/// A test's statistic and two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: f64,
}

/// Fisher's exact test of the 2×2 table `[[a, b], [c, d]]` (rows: the two groups; columns:
/// successes and failures), two-sided: the probability, given the margins, of a table as
/// likely or less likely than this one. The statistic is the sample odds ratio `ad / bc`.
/// As `scipy.stats.fisher_exact([[a, b], [c, d]])`.
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> TestResult {
    let odds_ratio = if b * c == 0 {
        if a * d == 0 { f64::NAN } else { f64::INFINITY }
    } else {
        (a * d) as f64 / (b * c) as f64
    };
    let n = a + b + c + d;
    let null = FisherNull::new(&ln_factorials(n), a + b, a + c, n);
    TestResult {
        statistic: odds_ratio,
        p_value: null.p_value(a),
    }
}

/// The null distribution of Fisher's test for one set of margins (first row `row`, first column
/// `col`, `n` in all): the hypergeometric probabilities of the top-left cell. Built once, it gives
/// the p-value of every table with these margins, which the power computation needs by the
/// million.
pub(crate) struct FisherNull {
    low: u64,
    ln_pmf: Vec<f64>,
    pmf: Vec<f64>,
}

impl FisherNull {
    /// `ln_factorials` must reach at least `n`.
    pub(crate) fn new(ln_factorials: &[f64], row: u64, col: u64, n: u64) -> FisherNull {
        let lf = ln_factorials;
        let ln_pmf = |x: u64| {
            lf[col as usize] - lf[x as usize] - lf[(col - x) as usize] + lf[(n - col) as usize]
                - lf[(row - x) as usize]
                - lf[(n - col - (row - x)) as usize]
                - (lf[n as usize] - lf[row as usize] - lf[(n - row) as usize])
        };
        let low = col.saturating_sub(n - row);
        let high = col.min(row);
        let ln_pmf: Vec<f64> = (low..=high).map(ln_pmf).collect();
        let pmf = ln_pmf.iter().map(|value| value.exp()).collect();
        FisherNull { low, ln_pmf, pmf }
    }

    /// The two-sided p-value of the table whose top-left cell is `a`: the probability of a
    /// table as likely or less likely.
    pub(crate) fn p_value(&self, a: u64) -> f64 {
        // scipy's relative tolerance for "as likely".
        let threshold = self.ln_pmf[(a - self.low) as usize] + (1.0f64 + 1e-7).ln();
        let mut p = 0.0;
        for (ln_value, value) in self.ln_pmf.iter().zip(&self.pmf) {
            if *ln_value <= threshold {
                p += value;
            }
        }
        p.min(1.0)
    }

    /// The values the top-left cell can take.
    pub(crate) fn range(&self) -> std::ops::RangeInclusive<u64> {
        self.low..=self.low + self.ln_pmf.len() as u64 - 1
    }
}

/// Mid-ranks of `values` (1-based, ties share their average rank) and the sizes of tie groups.
fn rank(values: &[f64]) -> (Vec<f64>, Vec<u64>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut ties = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && values[order[end + 1]] == values[order[start]] {
            end += 1;
        }
        let average = (start + end) as f64 / 2.0 + 1.0;
        for &index in &order[start..=end] {
            ranks[index] = average;
        }
        ties.push((end - start + 1) as u64);
        start = end + 1;
    }
    (ranks, ties)
}

/// Which p-value computation a rank test used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The exact null distribution (small samples without ties).
    Exact,
    /// The normal approximation, corrected for ties.
    Asymptotic,
}

/// The Mann–Whitney U test of two independent samples, two-sided. The statistic is U of `x`.
/// Like scipy's `method="auto"`: exact when either sample has at most 8 values and there are
/// no ties, else the normal approximation with tie and continuity corrections.
/// As `scipy.stats.mannwhitneyu(x, y)`.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Option<(TestResult, Method)> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let (ranks, ties) = rank(&all);
    let r1: f64 = ranks[..n1].iter().sum();
    let u1 = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let (p_value, method) = mann_whitney_p_value(u1, n1, n2, &ties);
    Some((
        TestResult {
            statistic: u1,
            p_value,
        },
        method,
    ))
}

/// The two-sided p-value of the Mann–Whitney test for U of the first sample `u1`, sample sizes
/// `n1` and `n2`, and the sizes of the tie groups of the pooled values (`[]`, or all ones, when
/// there are no ties), by the rule of [`mann_whitney_u`].
pub(crate) fn mann_whitney_p_value(u1: f64, n1: usize, n2: usize, ties: &[u64]) -> (f64, Method) {
    let u2 = (n1 * n2) as f64 - u1;
    let u = u1.max(u2);
    let has_ties = ties.iter().any(|&t| t > 1);
    let exact = (n1 <= 8 || n2 <= 8) && !has_ties;
    if exact {
        let p = 2.0 * mann_whitney_sf(u.round() as u64, n1, n2);
        (p.min(1.0), Method::Exact)
    } else {
        let n = (n1 + n2) as f64;
        let tie_term: f64 = ties.iter().map(|&t| (t * t * t - t) as f64).sum();
        let s = ((n1 * n2) as f64 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
        let z = (u - (n1 * n2) as f64 / 2.0 - 0.5) / s;
        ((2.0 * normal_sf(z)).min(1.0), Method::Asymptotic)
    }
}

/// P(U >= u) under the null for sample sizes n1, n2: the number of arrangements with each U,
/// counted by the recurrence of the partition of u into at most n1 parts no larger than n2.
fn mann_whitney_sf(u: u64, n1: usize, n2: usize) -> f64 {
    // The distribution is symmetric in the two sizes; the loop runs over the smaller.
    let (n1, n2) = (n1.min(n2), n1.max(n2));
    let max_u = n1 * n2;
    // The counts are the coefficients of the Gaussian binomial coefficient, built one factor at
    // a time; arithmetic modulo q^(max_u + 1) keeps it exact within the degrees that matter.
    let mut counts = vec![0.0f64; max_u + 1];
    counts[0] = 1.0;
    // Coefficients of prod_{i=1..n1} (1 - q^{n2+i}) / (1 - q^i).
    for i in 1..=n1 {
        // multiply by (1 - q^{n2+i})
        let shift = n2 + i;
        for k in (shift..=max_u).rev() {
            counts[k] -= counts[k - shift];
        }
        // divide by (1 - q^i)
        for k in i..=max_u {
            counts[k] += counts[k - i];
        }
    }
    let total: f64 = counts.iter().sum();
    let u = u as usize;
    let tail: f64 = counts[u.min(max_u + 1)..].iter().sum();
    tail / total
}

/// McNemar's exact test of paired successes: `only_a` pairs where only the first side
/// succeeded, `only_b` where only the second did; the two-sided binomial test of `only_a` among
/// the discordant pairs at 1/2. The statistic is `min(only_a, only_b)`.
/// As `scipy.stats.binomtest(only_a, only_a + only_b, 0.5).pvalue`.
pub fn mcnemar_exact(only_a: u64, only_b: u64) -> TestResult {
    let n = only_a + only_b;
    let k = only_a.min(only_b);
    if n == 0 || only_a == only_b {
        return TestResult {
            statistic: k as f64,
            p_value: 1.0,
        };
    }
    let lf = ln_factorials(n);
    let half_n = n as f64 * 0.5f64.ln();
    let tail: f64 = (0..=k)
        .map(|i| (lf[n as usize] - lf[i as usize] - lf[(n - i) as usize] + half_n).exp())
        .sum();
    TestResult {
        statistic: k as f64,
        p_value: (2.0 * tail).min(1.0),
    }
}

/// The Wilcoxon signed-rank test of paired differences `x[i] - y[i]`, two-sided; zero
/// differences are dropped (Wilcoxon's method). The statistic is the smaller of the positive and
/// negative rank sums. Exact when at most 50 pairs remain, without ties and without zero
/// differences, else the normal approximation with tie correction and no continuity correction.
/// As `scipy.stats.wilcoxon(x, y)`, except that for up to 13 pairs with ties or zeros scipy runs
/// a permutation test where this uses the normal approximation.
pub fn wilcoxon_signed_rank(pairs: &[(f64, f64)]) -> Option<(TestResult, Method)> {
    let differences: Vec<f64> = pairs.iter().map(|(x, y)| x - y).collect();
    let n_zero = differences.iter().filter(|d| **d == 0.0).count();
    let nonzero: Vec<f64> = differences.iter().copied().filter(|d| *d != 0.0).collect();
    let n = nonzero.len();
    if n == 0 {
        return None;
    }
    let magnitudes: Vec<f64> = nonzero.iter().map(|d| d.abs()).collect();
    let (ranks, ties) = rank(&magnitudes);
    let r_plus: f64 = nonzero
        .iter()
        .zip(&ranks)
        .filter(|(d, _)| **d > 0.0)
        .map(|(_, r)| r)
        .sum();
    let r_minus: f64 = nonzero
        .iter()
        .zip(&ranks)
        .filter(|(d, _)| **d < 0.0)
        .map(|(_, r)| r)
        .sum();
    let statistic = r_plus.min(r_minus);
    let has_ties = ties.iter().any(|&t| t > 1);
    let exact = signed_rank_is_exact(differences.len(), has_ties, n_zero);
    let p = if exact {
        signed_rank_exact_p_value(r_plus, &signed_rank_counts(n))
    } else {
        signed_rank_normal_p_value(r_plus, n, &ties)
    };
    Some((
        TestResult {
            statistic,
            p_value: p,
        },
        if exact {
            Method::Exact
        } else {
            Method::Asymptotic
        },
    ))
}

/// Whether [`wilcoxon_signed_rank`] uses the exact distribution: at most 50 pairs in all, no
/// ties among the magnitudes and no zero differences.
pub(crate) fn signed_rank_is_exact(n_pairs: usize, has_ties: bool, n_zero: usize) -> bool {
    n_pairs <= 50 && !has_ties && n_zero == 0
}

/// The exact two-sided p-value of the positive rank sum `r_plus`, given
/// [`signed_rank_counts`] of the number of non-zero differences.
pub(crate) fn signed_rank_exact_p_value(r_plus: f64, counts: &[f64]) -> f64 {
    let total: f64 = counts.iter().sum();
    let floor = r_plus.floor() as usize;
    let ceil = r_plus.ceil() as usize;
    let sf: f64 = counts[floor.min(counts.len())..].iter().sum::<f64>() / total;
    let cdf: f64 = counts[..=ceil.min(counts.len() - 1)].iter().sum::<f64>() / total;
    (2.0 * sf.min(cdf)).min(1.0)
}

/// The two-sided p-value of the positive rank sum `r_plus` of `n` non-zero differences by the
/// normal approximation, corrected for the tie groups `ties` of their magnitudes.
pub(crate) fn signed_rank_normal_p_value(r_plus: f64, n: usize, ties: &[u64]) -> f64 {
    let count = n as f64;
    let mean = count * (count + 1.0) / 4.0;
    let tie_term: f64 = ties.iter().map(|&t| (t * t * t - t) as f64).sum();
    let se = ((count * (count + 1.0) * (2.0 * count + 1.0) - tie_term / 2.0) / 24.0).sqrt();
    let z = (r_plus - mean) / se;
    (2.0 * normal_sf(z.abs())).min(1.0)
}

/// How many of the 2^n sign assignments give each positive rank sum 0..=n(n+1)/2.
pub(crate) fn signed_rank_counts(n: usize) -> Vec<f64> {
    let max = n * (n + 1) / 2;
    let mut counts = vec![0.0f64; max + 1];
    counts[0] = 1.0;
    for rank in 1..=n {
        for sum in (rank..=max).rev() {
            counts[sum] += counts[sum - rank];
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_basics() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-16);
        assert!((z_for_confidence(0.95) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_quantile(1e-10) + 6.361_340_902_404_056).abs() < 1e-9);
    }

    #[test]
    fn rng_is_fixed() {
        let mut rng = Rng::seeded(1);
        let first: Vec<u64> = (0..3).map(|_| rng.below(10)).collect();
        let mut again = Rng::seeded(1);
        assert_eq!(first, (0..3).map(|_| again.below(10)).collect::<Vec<_>>());
    }
}
