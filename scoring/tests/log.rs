//! The scoring stage and re-scoring against a real nats-server started for each test: every
//! finished trial gets exactly one `TrialScored` per scorer version, redelivery and reruns publish
//! nothing new, and old scores are left where they are.

use std::time::Duration;

use futures::StreamExt;
use schemas::event::{Event, EventData, Outcome, TrialFinished, TrialScored, TrialStatus};
use schemas::log::{EventFilter, EventLog};
use scoring::fixtures::TrialFixture;
use scoring::{RescoreFilter, Rules, ScoringConfig, rescore, stage};
use testkit::TemporaryNats;
use tokio_util::sync::CancellationToken;

async fn start() -> (TemporaryNats, EventLog) {
    let nats = TemporaryNats::start().await.expect("nats-server starts");
    let log = EventLog::connect(nats.url()).await.expect("connects");
    log.ensure_stream().await.expect("stream");
    (nats, log)
}

/// Trials 0..finished of `campaign` finished, and one more that has not.
fn campaign(campaign: &str, finished: u32) -> Vec<TrialFixture> {
    let mut trials: Vec<TrialFixture> = (0..finished)
        .map(|index| {
            let trial = TrialFixture::test()
                .in_campaign(campaign)
                .with_trial_index(index)
                .detected_after(1_000 + i64::from(index) * 100)
                .command_at(2_000, "etcdctl endpoint status");
            if index % 2 == 0 {
                trial.resolved_after(20_000)
            } else {
                trial
                    .final_healthy(false)
                    .finished(TrialStatus::Failed, 60_000)
            }
        })
        .collect();
    trials.push(
        TrialFixture::test()
            .in_campaign(campaign)
            .with_trial_index(finished)
            .detected_after(1_000)
            .unfinished(),
    );
    trials
}

async fn publish(log: &EventLog, trials: &[TrialFixture]) {
    let events = trials.iter().flat_map(TrialFixture::events);
    log.publish_all(events, 64, |_| {})
        .await
        .expect("published");
}

async fn scores(log: &EventLog, campaign_id: Option<&str>) -> Vec<(String, TrialScored)> {
    let filter = EventFilter {
        campaign_id: campaign_id.map(str::to_string),
        event_type: Some("TrialScored".to_string()),
        ..EventFilter::default()
    };
    let events: Vec<Event> = log
        .read(&filter, false)
        .await
        .unwrap()
        .map(|stored| stored.unwrap().event.unwrap())
        .collect()
        .await;
    events
        .into_iter()
        .map(|event| match event.data {
            EventData::TrialScored(scored) => (event.trial_id.unwrap(), scored),
            other => panic!("not a score: {other:?}"),
        })
        .collect()
}

/// Polls `condition` until it holds; gives up after a generous bound so a broken stage fails
/// the test instead of hanging it.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..600 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen");
}

async fn consumer_drained(log: &EventLog) -> bool {
    let stream = log.stream().await.unwrap();
    // Not created yet: the stage has not started.
    let Ok(info) = stream.consumer_info(stage::CONSUMER_NAME).await else {
        return false;
    };
    info.num_pending == 0 && info.num_ack_pending == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stage_scores_each_finished_trial_once() {
    let (_nats, log) = start().await;
    let trials = campaign("stage", 3);
    publish(&log, &trials).await;

    let shutdown = CancellationToken::new();
    let running = tokio::spawn(stage::run(
        log.clone(),
        ScoringConfig::default(),
        shutdown.clone(),
    ));
    eventually("three scores", || async {
        scores(&log, Some("stage")).await.len() == 3
    })
    .await;

    // The last trial finishes now, and is scored in turn.
    let last = &trials[3];
    let finished = Event::new(
        &schemas::event::Producer::here("test"),
        "stage",
        Some(&last.trial_id()),
        TrialFinished {
            status: TrialStatus::Succeeded,
            reason: None,
        },
    );
    log.publish(&finished).await.unwrap();
    eventually("four scores", || async {
        scores(&log, Some("stage")).await.len() == 4
    })
    .await;

    // A second TrialFinished of a scored trial (a worker's retry, with its own id) is delivered
    // and acknowledged, and publishes nothing new.
    let again = Event::new(
        &schemas::event::Producer::here("test"),
        "stage",
        Some(&trials[0].trial_id()),
        TrialFinished {
            status: TrialStatus::Succeeded,
            reason: None,
        },
    );
    log.publish(&again).await.unwrap();
    eventually("the retry acknowledged", || consumer_drained(&log)).await;

    shutdown.cancel();
    running.await.unwrap().expect("the stage stops cleanly");

    let stored = scores(&log, Some("stage")).await;
    assert_eq!(stored.len(), 4);
    let outcomes: Vec<(u32, Outcome, &str)> = stored
        .iter()
        .map(|(trial_id, scored)| {
            let index = trials
                .iter()
                .position(|t| &t.trial_id() == trial_id)
                .unwrap() as u32;
            (index, scored.outcome, scored.scorer_version.as_str())
        })
        .collect();
    let mut sorted = outcomes.clone();
    sorted.sort_by_key(|(index, _, _)| *index);
    assert_eq!(
        sorted,
        [
            (0, Outcome::Success, "v3"),
            (1, Outcome::Failure, "v3"),
            (2, Outcome::Success, "v3"),
            // Detected, never resolved, and finished (now) long after its timeout.
            (3, Outcome::Timeout, "v3"),
        ]
    );

    // A restarted stage resumes its durable consumer: nothing is left to score.
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(stage::run(
        log.clone(),
        ScoringConfig::default(),
        shutdown.clone(),
    ));
    eventually("the restart drained", || consumer_drained(&log)).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(scores(&log, Some("stage")).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_publishes_one_new_score_per_finished_trial_beside_the_old_ones() {
    let (_nats, log) = start().await;
    let trials = campaign("replay", 4);
    publish(&log, &trials).await;
    // Old scores of an earlier scorer version, for two trials.
    let old: Vec<Event> = trials[..2]
        .iter()
        .map(|trial| {
            let mut scored = scoring::score(&trial.events(), &ScoringConfig::default());
            scored.scorer_version = "v0".to_string();
            scored.to_event(&schemas::event::Producer::here("test"))
        })
        .collect();
    log.publish_all(old, 8, |_| {}).await.unwrap();
    assert_eq!(scores(&log, Some("replay")).await.len(), 2);

    let mut calls = 0;
    let report = rescore(
        &log,
        &RescoreFilter::Campaign("replay".to_string()),
        &ScoringConfig::default(),
        |_| calls += 1,
    )
    .await
    .unwrap();
    assert!(calls >= 2);
    assert_eq!(report.scorer_version, "v3");
    assert_eq!(
        (
            report.n_trials,
            report.n_finished,
            report.n_published,
            report.n_already_scored
        ),
        (5, 4, 4, 0)
    );
    assert_eq!(report.by_outcome.get("success"), Some(&2));
    assert_eq!(report.by_outcome.get("failure"), Some(&2));
    let stored = scores(&log, Some("replay")).await;
    let versions: Vec<&str> = stored
        .iter()
        .map(|(_, s)| s.scorer_version.as_str())
        .collect();
    assert_eq!(versions, ["v0", "v0", "v3", "v3", "v3", "v3"]);
    for trial in &trials[..4] {
        let of_trial = stored
            .iter()
            .filter(|(id, s)| *id == trial.trial_id() && s.scorer_version == "v3")
            .count();
        assert_eq!(of_trial, 1);
    }

    // A rerun is a no-op: every score of this version is there already.
    let again = rescore(
        &log,
        &RescoreFilter::Campaign("replay".to_string()),
        &ScoringConfig::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((again.n_published, again.n_already_scored), (0, 4));
    assert_eq!(scores(&log, Some("replay")).await.len(), 6);

    // Other rules are another version: four more scores, beside the others.
    let user = Rules::parse(
        "team.yaml",
        "rules:\n  - name: status-is-remediation\n    category: remediation\n    argv: [etcdctl, endpoint]\n",
    )
    .unwrap();
    let config = ScoringConfig::with_rules(Rules::builtin().with_overrides(user));
    let version = config.version();
    assert!(version.starts_with("v3+"), "{version}");
    let report = rescore(
        &log,
        &RescoreFilter::Campaign("replay".to_string()),
        &config,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.n_published, 4);
    let stored = scores(&log, Some("replay")).await;
    assert_eq!(stored.len(), 10);
    let rescored = stored
        .iter()
        .find(|(id, s)| *id == trials[0].trial_id() && s.scorer_version == version)
        .unwrap();
    assert_eq!(rescored.1.commands_by_category["remediation"], 1);

    // Every campaign: only the new one's trials are scored.
    publish(&log, &campaign("second", 2)).await;
    let all = rescore(&log, &RescoreFilter::All, &ScoringConfig::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(all.n_campaigns, 2);
    assert_eq!((all.n_published, all.n_already_scored), (2, 4));
}

/// Many campaigns are re-scored in one read of the stream, each trial once under its own
/// campaign (two campaigns may hold the same trial index), and no consumer is left behind on
/// the server: a replay over thousands of campaigns once piled up a consumer each, for 30 s,
/// until the server refused more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_of_every_campaign_reads_once_and_leaves_no_consumer() {
    let (_nats, log) = start().await;
    let names: Vec<String> = (0..40).map(|n| format!("many-{n:02}")).collect();
    for name in &names {
        publish(&log, &campaign(name, 2)).await;
    }
    let report = rescore(&log, &RescoreFilter::All, &ScoringConfig::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.n_campaigns, 40);
    assert_eq!((report.n_finished, report.n_published), (80, 80));
    for name in &names {
        let stored = scores(&log, Some(name)).await;
        assert_eq!(stored.len(), 2, "{name}");
        assert_ne!(stored[0].0, stored[1].0, "{name}: one score per trial");
    }
    // The reads' consumers are deleted when they end (after the spawned deletes run).
    let mut stream = log.stream().await.unwrap();
    let mut left = u64::MAX;
    for _ in 0..50 {
        left = stream.info().await.unwrap().state.consumer_count as u64;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "consumers left on the stream");
}

/// An event of a trial that follows its `TrialFinished` (a capture running late) counts in its
/// score: a few such trials are read again one by one, many in one more read of the campaign.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_counts_the_events_that_follow_a_trials_end() {
    let (_nats, log) = start().await;
    for (campaign, n_trials) in [("late-few", 3), ("late-many", 70)] {
        let trials: Vec<TrialFixture> = (0..n_trials)
            .map(|index| {
                TrialFixture::test()
                    .in_campaign(campaign)
                    .with_trial_index(index)
                    .detected_after(1_000)
                    .healthy_after(15_000)
                    .resolved_after(20_000)
            })
            .collect();
        let late = |event: &Event| matches!(event.data, EventData::TicketResolved(_));
        let in_log_order = |trial: &TrialFixture| -> Vec<Event> {
            let (late, early): (Vec<Event>, Vec<Event>) =
                trial.events().into_iter().partition(late);
            early.into_iter().chain(late).collect()
        };
        let early = trials
            .iter()
            .flat_map(|trial| trial.events().into_iter().filter(|event| !late(event)));
        log.publish_all(early, 64, |_| {}).await.unwrap();
        let resolutions = trials
            .iter()
            .flat_map(|trial| trial.events().into_iter().filter(late));
        log.publish_all(resolutions, 64, |_| {}).await.unwrap();

        let report = rescore(
            &log,
            &RescoreFilter::Campaign(campaign.to_string()),
            &ScoringConfig::default(),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(report.n_published, u64::from(n_trials), "{campaign}");
        assert_eq!(report.by_outcome.get("success"), Some(&u64::from(n_trials)));
        let stored = scores(&log, Some(campaign)).await;
        assert_eq!(stored.len(), n_trials as usize);
        for trial in &trials {
            let (_, scored) = stored
                .iter()
                .find(|(trial_id, _)| *trial_id == trial.trial_id())
                .unwrap();
            let expected = scoring::score(&in_log_order(trial), &ScoringConfig::default());
            assert!(scored.resolved, "{campaign}");
            assert_eq!(scored, &expected.to_event_data(), "{campaign}");
        }
    }
}

/// An operator trial's events with its injection naming an operator.db, and the capture stage's
/// end of that capture (published separately, when a test says so).
fn operator_trial(campaign: &str) -> (Vec<Event>, Event) {
    let mut events = TrialFixture::test()
        .in_campaign(campaign)
        .detected_after(1_000)
        .command_at(2_000, "etcdctl endpoint status")
        .resolved_after(9_000)
        .events();
    let injection = events
        .iter_mut()
        .find_map(|event| match &mut event.data {
            EventData::ChaosInjected(injected) => {
                injected.operator_db = Some("/var/lib/op/operator.db".to_string());
                Some(event.id)
            }
            _ => None,
        })
        .expect("the fixture injects");
    let end = Event::new(
        &schemas::event::Producer::here("capture"),
        campaign,
        events[0].trial_id.as_deref(),
        schemas::event::OperatorCaptureFinished {
            injection_id: injection,
            operator_db: "/var/lib/op/operator.db".to_string(),
            status: schemas::event::OperatorDbStatus::Read,
            error: None,
            size_bytes: Some(4096),
            modified_at: None,
            ticket: None,
            sessions: Vec::new(),
            n_log_entries: 2,
        },
    );
    (events, end)
}

/// The stage grades an operator trial only once its capture has ended: its `TrialFinished` alone
/// is acknowledged without a score, and the `OperatorCaptureFinished` that follows triggers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stage_waits_for_the_end_of_an_operator_trials_capture() {
    let (_nats, log) = start().await;
    let (events, end) = operator_trial("gated");
    log.publish_all(events, 64, |_| {}).await.unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(stage::run(
        log.clone(),
        ScoringConfig::default(),
        shutdown.clone(),
    ));
    eventually("the TrialFinished handled", || consumer_drained(&log)).await;
    assert!(scores(&log, Some("gated")).await.is_empty());

    log.publish(&end).await.unwrap();
    eventually("the score after the capture's end", || async {
        scores(&log, Some("gated")).await.len() == 1
    })
    .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

/// A replay scores an operator trial whose capture never announced its end from what the log
/// holds, and counts it; one whose capture ended is scored like any other.
#[tokio::test]
async fn rescore_counts_operator_trials_without_the_end_of_their_capture() {
    let (_nats, log) = start().await;
    let (events, _) = operator_trial("no-end");
    log.publish_all(events, 64, |_| {}).await.unwrap();
    let (events, end) = operator_trial("ended");
    log.publish_all(events, 64, |_| {}).await.unwrap();
    log.publish(&end).await.unwrap();
    let config = ScoringConfig::default();
    let report = rescore(&log, &RescoreFilter::All, &config, |_| {})
        .await
        .unwrap();
    assert_eq!(report.n_finished, 2, "{report:?}");
    assert_eq!(report.n_published, 2, "{report:?}");
    assert_eq!(report.n_without_capture_end, 1, "{report:?}");
    let scored = scores(&log, None).await;
    assert!(
        scored
            .iter()
            .all(|(_, score)| score.detected && score.n_commands == 1)
    );
}
