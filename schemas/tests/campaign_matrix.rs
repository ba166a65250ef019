//! Expansion of a campaign into its trials: order, indices, per-subject settings, and seeds shared
//! by every variant and the baseline of the same cell and repetition.

use std::collections::BTreeMap;
use std::path::Path;

use expect_test::{Expect, expect};
use schemas::campaign::{TrialSpec, expand, matrix_counts, parse_campaign};

fn trials_of(fixture: &str) -> Vec<TrialSpec> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/campaigns")
        .join(fixture);
    let text = std::fs::read_to_string(&path).expect("fixture is readable");
    let campaign = parse_campaign(fixture, &text)
        .unwrap_or_else(|diagnostics| panic!("{diagnostics}"))
        .campaign;
    let variants: Vec<String> = campaign
        .variants
        .clone()
        .or_else(|| campaign.variant.clone().map(|variant| vec![variant]))
        .unwrap_or_default();
    expand(&campaign, &variants, campaign.seed.unwrap_or(0))
}

/// Expands `campaigns/<fixture>`: one line per trial, then the matrix summary.
fn check(fixture: &str, expect: Expect) {
    let trials = trials_of(fixture);
    let mut lines: Vec<String> = trials
        .iter()
        .map(|trial| {
            format!(
                "#{:<2} {} ({} nodes) chaos {}:{} {} rep {} seed {:016x} timeout {}s",
                trial.trial_index,
                trial.subject,
                trial.subject_settings.nodes,
                trial.chaos_index,
                trial.chaos.chaos_type(),
                trial.variant.as_deref().unwrap_or("baseline"),
                trial.repetition,
                trial.seed,
                trial.timeout_seconds,
            )
        })
        .collect();
    lines.push(String::new());
    lines.extend(matrix_counts(&trials).iter().map(|cell| {
        format!(
            "{} × {}:{} × {}: {}",
            cell.subject,
            cell.chaos_index,
            cell.chaos_type,
            cell.variant_label(),
            cell.n_trials
        )
    }));
    expect.assert_eq(&lines.join("\n"));
}

#[test]
fn two_subjects_two_chaos_two_variants_two_repetitions_with_baselines() {
    check(
        "matrix.yaml",
        expect![[r#"
        #0  tikv (3 nodes) chaos 0:node_kill default rep 0 seed 7707b6c76ae8e259 timeout 300s
        #1  tikv (3 nodes) chaos 0:node_kill default rep 1 seed 9797cb4e0536d7c8 timeout 300s
        #2  tikv (3 nodes) chaos 0:node_kill hasty rep 0 seed 7707b6c76ae8e259 timeout 300s
        #3  tikv (3 nodes) chaos 0:node_kill hasty rep 1 seed 9797cb4e0536d7c8 timeout 300s
        #4  tikv (3 nodes) chaos 1:latency default rep 0 seed dd12811299466a4c timeout 300s
        #5  tikv (3 nodes) chaos 1:latency default rep 1 seed 048cc7a23a135cd8 timeout 300s
        #6  tikv (3 nodes) chaos 1:latency hasty rep 0 seed dd12811299466a4c timeout 300s
        #7  tikv (3 nodes) chaos 1:latency hasty rep 1 seed 048cc7a23a135cd8 timeout 300s
        #8  etcd (5 nodes) chaos 0:node_kill default rep 0 seed 77100c820861996e timeout 300s
        #9  etcd (5 nodes) chaos 0:node_kill default rep 1 seed 1d664f5949bb95c8 timeout 300s
        #10 etcd (5 nodes) chaos 0:node_kill hasty rep 0 seed 77100c820861996e timeout 300s
        #11 etcd (5 nodes) chaos 0:node_kill hasty rep 1 seed 1d664f5949bb95c8 timeout 300s
        #12 etcd (5 nodes) chaos 1:latency default rep 0 seed d7d724b32b0c1a76 timeout 300s
        #13 etcd (5 nodes) chaos 1:latency default rep 1 seed c43343d71fb4cb5e timeout 300s
        #14 etcd (5 nodes) chaos 1:latency hasty rep 0 seed d7d724b32b0c1a76 timeout 300s
        #15 etcd (5 nodes) chaos 1:latency hasty rep 1 seed c43343d71fb4cb5e timeout 300s
        #16 tikv (3 nodes) chaos 0:node_kill baseline rep 0 seed 7707b6c76ae8e259 timeout 300s
        #17 tikv (3 nodes) chaos 0:node_kill baseline rep 1 seed 9797cb4e0536d7c8 timeout 300s
        #18 tikv (3 nodes) chaos 1:latency baseline rep 0 seed dd12811299466a4c timeout 300s
        #19 tikv (3 nodes) chaos 1:latency baseline rep 1 seed 048cc7a23a135cd8 timeout 300s
        #20 etcd (5 nodes) chaos 0:node_kill baseline rep 0 seed 77100c820861996e timeout 300s
        #21 etcd (5 nodes) chaos 0:node_kill baseline rep 1 seed 1d664f5949bb95c8 timeout 300s
        #22 etcd (5 nodes) chaos 1:latency baseline rep 0 seed d7d724b32b0c1a76 timeout 300s
        #23 etcd (5 nodes) chaos 1:latency baseline rep 1 seed c43343d71fb4cb5e timeout 300s

        tikv × 0:node_kill × default: 2
        tikv × 0:node_kill × hasty: 2
        tikv × 1:latency × default: 2
        tikv × 1:latency × hasty: 2
        etcd × 0:node_kill × default: 2
        etcd × 0:node_kill × hasty: 2
        etcd × 1:latency × default: 2
        etcd × 1:latency × hasty: 2
        tikv × 0:node_kill × baseline: 2
        tikv × 1:latency × baseline: 2
        etcd × 0:node_kill × baseline: 2
        etcd × 1:latency × baseline: 2"#]],
    );
}

#[test]
fn seed_harness_campaign() {
    check(
        "seed_harness.yaml",
        expect![[r#"
        #0  tikv (3 nodes) chaos 0:node_kill default rep 0 seed 5895d1a1a9ca0252 timeout 300s
        #1  tikv (3 nodes) chaos 0:node_kill default rep 1 seed 3dd7a35995caf791 timeout 300s
        #2  tikv (3 nodes) chaos 0:node_kill default rep 2 seed 658dceafd9c633a0 timeout 300s
        #3  tikv (3 nodes) chaos 1:latency default rep 0 seed 297d544c4d3bced6 timeout 300s
        #4  tikv (3 nodes) chaos 1:latency default rep 1 seed dd9fab72b6dafb22 timeout 300s
        #5  tikv (3 nodes) chaos 1:latency default rep 2 seed 1425cfe0d9bf45e6 timeout 300s
        #6  tikv (3 nodes) chaos 0:node_kill baseline rep 0 seed 5895d1a1a9ca0252 timeout 300s
        #7  tikv (3 nodes) chaos 0:node_kill baseline rep 1 seed 3dd7a35995caf791 timeout 300s
        #8  tikv (3 nodes) chaos 0:node_kill baseline rep 2 seed 658dceafd9c633a0 timeout 300s
        #9  tikv (3 nodes) chaos 1:latency baseline rep 0 seed 297d544c4d3bced6 timeout 300s
        #10 tikv (3 nodes) chaos 1:latency baseline rep 1 seed dd9fab72b6dafb22 timeout 300s
        #11 tikv (3 nodes) chaos 1:latency baseline rep 2 seed 1425cfe0d9bf45e6 timeout 300s

        tikv × 0:node_kill × default: 3
        tikv × 1:latency × default: 3
        tikv × 0:node_kill × baseline: 3
        tikv × 1:latency × baseline: 3"#]],
    );
}

/// The seed harness's fault-free form: one `none` trial per subject × variant × repetition, and
/// no baseline (nothing broken, no operator: nothing to test).
#[test]
fn seed_harness_control_trials() {
    check(
        "seed_harness_control.yaml",
        expect![[r#"
        #0  etcd (3 nodes) chaos 0:none default rep 0 seed 2d0a26a8b00faa48 timeout 300s
        #1  etcd (3 nodes) chaos 0:none default rep 1 seed c671c7c74a82a0b3 timeout 300s
        #2  etcd (3 nodes) chaos 0:none hasty rep 0 seed 2d0a26a8b00faa48 timeout 300s
        #3  etcd (3 nodes) chaos 0:none hasty rep 1 seed c671c7c74a82a0b3 timeout 300s

        etcd × 0:none × default: 2
        etcd × 0:none × hasty: 2"#]],
    );
}

/// A listed `none` runs beside the faults; `include_baseline` adds baselines of the faults only.
#[test]
fn control_beside_faults_has_no_baseline() {
    check(
        "control_and_faults.yaml",
        expect![[r#"
        #0  etcd (3 nodes) chaos 0:none default rep 0 seed 08caf8a0e9b054d5 timeout 300s
        #1  etcd (3 nodes) chaos 1:node_kill default rep 0 seed 5b4c340a0f347285 timeout 300s
        #2  etcd (3 nodes) chaos 1:node_kill baseline rep 0 seed 5b4c340a0f347285 timeout 300s

        etcd × 0:none × default: 1
        etcd × 1:node_kill × default: 1
        etcd × 1:node_kill × baseline: 1"#]],
    );
}

#[test]
fn variants_and_baseline_of_a_cell_share_its_seeds() {
    let trials = trials_of("matrix.yaml");
    let mut seeds_by_cell: BTreeMap<(String, u32, u32), Vec<u64>> = BTreeMap::new();
    for trial in &trials {
        seeds_by_cell
            .entry((
                trial.subject.to_string(),
                trial.chaos_index,
                trial.repetition,
            ))
            .or_default()
            .push(trial.seed);
    }
    let mut distinct: Vec<u64> = Vec::new();
    for ((subject, chaos_index, repetition), seeds) in &seeds_by_cell {
        assert_eq!(seeds.len(), 3, "two variants and the baseline");
        assert!(
            seeds.iter().all(|seed| *seed == seeds[0]),
            "{subject} chaos {chaos_index} rep {repetition}: {seeds:?}"
        );
        distinct.push(seeds[0]);
    }
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        seeds_by_cell.len(),
        "cells have different seeds"
    );
}
