//! Fixtures that several test files of the binary share.

#![allow(dead_code)]

use std::path::PathBuf;

use schemas::event::{Event, Producer, TrialStatus};
use scoring::fixtures::TrialFixture;
use scoring::score::{ScoringConfig, score};

/// A trial's events followed by its score (when it finished).
pub fn scored(trial: &TrialFixture) -> Vec<Event> {
    let mut events = trial.events();
    if events.iter().any(|e| e.event_type() == "TrialFinished") {
        events.push(score(&events, &ScoringConfig::default()).to_event(&Producer::here("test")));
    }
    events
}

/// The `CampaignPublished` of the quickstart campaign under `campaign_id`.
pub fn published(campaign_id: &str) -> Event {
    let prepared = ingest::campaign_files::prepare(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("campaigns/quickstart.yaml"),
        None,
        Some(campaign_id),
    )
    .unwrap();
    ingest::publish::campaign_events(&prepared, &Producer::here("test"))
        .next()
        .unwrap()
}

/// A scored etcd `node_kill` trial of the comparison fixtures: an operator trial of `variant`
/// that repairs (`success`) or times out after a destructive command, or, without a variant, a
/// baseline that heals after a minute.
pub fn comparison_trial(
    campaign: &str,
    index: u32,
    variant: Option<&str>,
    repetition: u32,
    success: bool,
) -> Vec<Event> {
    let mut fixture = TrialFixture::test()
        .in_campaign(campaign)
        .with_trial_index(index)
        .with_repetition(repetition);
    let Some(variant) = variant else {
        return scored(
            &fixture
                .baseline()
                .healthy_after(60_000 + i64::from(repetition) * 1_000),
        );
    };
    let detect = 1_000 + i64::from(repetition) * 100;
    fixture = fixture
        .with_variant(variant)
        .detected_after(detect)
        .command_at(detect + 500, "etcdctl endpoint status --cluster");
    fixture = if success {
        fixture
            .command_at(detect + 1_000, "eval lab node start 2")
            .resolved_after(8_000 + i64::from(repetition) * 250)
    } else {
        fixture
            .command_at(detect + 1_000, "etcdctl member remove 1")
            .finished(TrialStatus::TimedOut, 300_000)
    };
    scored(&fixture)
}
