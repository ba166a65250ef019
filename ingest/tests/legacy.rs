//! The import of the seed harness's real `eval.db` (`testdata/seed-harness/`, written by that
//! harness's own code): the trials it becomes, the current scorer giving every trial the seed
//! harness's own grade and figures (`expected_cli.json`), a second import adding nothing, and a
//! clear error for a file that is not such a database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use expect_test::expect;
use futures::StreamExt;
use ingest::legacy::{self, LegacyError};
use rusqlite::Connection;
use schemas::campaign::SubjectKind;
use schemas::event::{Event, EventData, Outcome, Producer, TrialStatus};
use schemas::log::{EventFilter, EventLog};
use scoring::score::{ScoringConfig, TrialScore, score};
use serde_json::Value;
use testkit::TemporaryNats;

fn seed_harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/seed-harness")
}

fn seed_db() -> PathBuf {
    seed_harness().join("eval.db")
}

/// What the seed harness's own CLI printed for `command` (`expected_cli.json`), as JSON.
fn seed_cli(command: &str) -> Value {
    let all: Value = serde_json::from_str(
        &std::fs::read_to_string(seed_harness().join("expected_cli.json")).unwrap(),
    )
    .unwrap();
    let run = &all[command];
    assert_eq!(run["exit_code"], 0, "{command}: {run}");
    serde_json::from_str(run["stdout"].as_str().unwrap()).unwrap()
}

fn producer() -> Producer {
    Producer {
        stage: "import".to_string(),
        host: "test".to_string(),
    }
}

fn plan_of(path: &Path) -> legacy::ImportPlan {
    let db = legacy::read_legacy(path).unwrap();
    let plan = legacy::plan(&db, &producer());
    assert_eq!(plan, legacy::plan(&db, &producer()), "planning is pure");
    plan
}

/// A campaign's events split by trial, in order.
fn trials_of(events: &[Event]) -> Vec<Vec<Event>> {
    let mut trials: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    let mut order = Vec::new();
    for event in events {
        if let Some(trial) = &event.trial_id {
            if !trials.contains_key(trial) {
                order.push(trial.clone());
            }
            trials.entry(trial.clone()).or_default().push(event.clone());
        }
    }
    order
        .into_iter()
        .map(|trial| trials.remove(&trial).unwrap())
        .collect()
}

fn seconds_after(from: schemas::event::Timestamp, to: schemas::event::Timestamp) -> String {
    format!(
        "+{:.1}s",
        (to.unix_micros() - from.unix_micros()) as f64 / 1e6
    )
}

#[test]
fn the_seed_harness_file_becomes_one_campaign_per_row_and_one_trial_per_row() {
    let plan = plan_of(&seed_db());
    let mut out = String::new();
    for campaign in &plan.campaigns {
        out.push_str(&format!(
            "campaign {} ({}) as {}: {} trials\n",
            campaign.legacy_id, campaign.name, campaign.campaign_id, campaign.n_trials
        ));
        for trial in trials_of(&campaign.events) {
            let mut line = String::new();
            let mut injected = None;
            let mut commands = Vec::new();
            for event in &trial {
                match &event.data {
                    EventData::TrialRequested(requested) => line.push_str(&format!(
                        "  #{} {} {} {} rep {} timeout {}s",
                        requested.trial.trial_index,
                        requested.trial.subject,
                        serde_json::to_string(&requested.trial.chaos).unwrap(),
                        requested.trial.variant.as_deref().unwrap_or("baseline"),
                        requested.trial.repetition,
                        requested.trial.timeout_seconds
                    )),
                    EventData::ChaosInjected(chaos) => {
                        injected = Some(event.occurred_at);
                        line.push_str(&format!(", target {}", chaos.target.as_deref().unwrap()));
                    }
                    EventData::TicketOpened(_) => line.push_str(&format!(
                        ", ticket {}",
                        seconds_after(injected.unwrap(), event.occurred_at)
                    )),
                    EventData::TicketResolved(_) => line.push_str(&format!(
                        ", resolved {}",
                        seconds_after(injected.unwrap(), event.occurred_at)
                    )),
                    EventData::SubjectHealthy(_) => line.push_str(&format!(
                        ", healthy {}",
                        seconds_after(injected.unwrap(), event.occurred_at)
                    )),
                    EventData::StateCaptured(capture) => line.push_str(&format!(
                        ", {:?} {}",
                        capture.phase,
                        if capture.healthy {
                            "healthy"
                        } else {
                            "unhealthy"
                        }
                    )),
                    EventData::AgentLogRecorded(entry) => commands.push(
                        // `tool_params` was a JSON string in the file: here it is an object.
                        entry.tool_params.as_ref().unwrap()["command"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    ),
                    EventData::TrialFinished(finished) => {
                        line.push_str(&format!(", {}", finished.status.as_str()))
                    }
                    _ => {}
                }
            }
            out.push_str(&format!("{line}; commands {commands:?}\n"));
        }
    }
    for problem in &plan.problems {
        out.push_str(&format!("problem: {problem}\n"));
    }
    expect![[r#"
        campaign 1 (eval.db #1: tikv/latency default) as legacy-50a9a620767a3408: 5 trials
          #0 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} default rep 0 timeout 300s, Initial healthy, target tikv-tikv1-1, ticket +6.5s, resolved +48.0s, Final healthy, succeeded; commands ["pd-ctl store", "pd-ctl store", "tikv-ctl --host tikv1:20160 metrics"]
          #1 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} default rep 1 timeout 303s, Initial healthy, target tikv-tikv1-1, ticket +9.0s, Final unhealthy, timed_out; commands ["pd-ctl store", "pd-ctl store", "tikv-ctl --host tikv1:20160 metrics"]
          #2 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} default rep 2 timeout 300s, Initial healthy, target tikv-tikv1-1, ticket +4.0s, resolved +61.5s, Final healthy, succeeded; commands ["pd-ctl store", "pd-ctl store", "tikv-ctl --host tikv1:20160 metrics"]
          #3 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} default rep 3 timeout 300s, Initial healthy, target tikv-tikv1-1, ticket +12.0s, resolved +80.0s, Final unhealthy, failed; commands ["pd-ctl store", "pd-ctl store", "tikv-ctl --host tikv1:20160 metrics", "pd-ctl store delete 2"]
          #4 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} default rep 4 timeout 300s, Initial healthy, target tikv-tikv1-1, ticket +7.5s, resolved +55.0s, Final healthy, succeeded; commands ["pd-ctl store", "pd-ctl store", "tikv-ctl --host tikv1:20160 metrics", "pd-ctl store delete 2"]
        campaign 2 (eval.db #2: tikv/latency baseline) as legacy-7c1a4e175ff45da4: 3 trials
          #0 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} baseline rep 0 timeout 303s, Initial healthy, target tikv-tikv1-1, Final unhealthy, timed_out; commands []
          #1 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} baseline rep 1 timeout 300s, Initial healthy, target tikv-tikv1-1, healthy +140.0s, Final healthy, succeeded; commands []
          #2 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} baseline rep 2 timeout 303s, Initial healthy, target tikv-tikv1-1, Final unhealthy, timed_out; commands []
        campaign 3 (eval.db #3: tikv/latency sonnet-careful) as legacy-e9996e9e2c7bdec9: 4 trials
          #0 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} sonnet-careful rep 0 timeout 300s, Initial healthy, target tikv-tikv1-1, ticket +5.0s, resolved +40.0s, Final healthy, succeeded; commands ["pd-ctl store", "pd-ctl store", "tikv-ctl --host tikv1:20160 metrics"]
          #1 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} sonnet-careful rep 1 timeout 300s, Initial healthy, target tikv-tikv1-1, ticket +5.5s, resolved +44.0s, Final healthy, succeeded; commands ["pd-ctl store", "pd-ctl store", "tikv-ctl --host tikv1:20160 metrics"]
          #2 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} sonnet-careful rep 2 timeout 303s, Initial healthy, target tikv-tikv1-1, ticket +8.0s, Final healthy, failed; commands ["pd-ctl store", "pd-ctl store", "tikv-ctl --host tikv1:20160 metrics"]
          #3 tikv {"type":"latency","params":{"target":"random","min_ms":50,"max_ms":150}} sonnet-careful rep 3 timeout 300s, Initial healthy, target tikv-tikv1-1, ticket +6.0s, resolved +39.5s, Final healthy, succeeded; commands ["pd-ctl store", "pd-ctl store", "tikv-ctl --host tikv1:20160 metrics"]
        campaign 4 (eval.db #4: tikv/node_kill,latency default) as legacy-eb9a4668e196970a: 2 trials
          #0 tikv {"type":"node_kill","params":{"target":"random"}} default rep 0 timeout 300s, Initial healthy, target tikv-tikv1-1, ticket +3.0s, resolved +30.0s, Final healthy, succeeded; commands ["pd-ctl store", "pd-ctl store", "tikv-ctl --host tikv1:20160 metrics"]
          #1 tikv {"type":"node_kill","params":{"target":"random"}} default rep 1 timeout 303s, Initial healthy, target tikv-tikv1-1, Final unhealthy, timed_out; commands []
    "#]]
    .assert_eq(&out);
}

/// A campaign's figures as the seed harness's `analyze N --json` names them, from our scores.
fn seed_figures(scores: &[TrialScore], events: &[Vec<Event>]) -> Value {
    let count = |outcome: Outcome| scores.iter().filter(|s| s.outcome == outcome).count();
    let mean = |values: Vec<f64>| {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let detect: Vec<f64> = scores
        .iter()
        .filter_map(|s| s.time_to_detect_ms)
        .map(|ms| ms as f64 / 1000.0)
        .collect();
    // The seed harness's time to resolve counts every resolution (even when the final state is
    // unhealthy): the import's `TicketResolved` or, for a baseline, `SubjectHealthy`.
    let resolve: Vec<f64> = events
        .iter()
        .filter_map(|trial| {
            let injected = trial.iter().find_map(|e| match e.data {
                EventData::ChaosInjected(_) => Some(e.occurred_at),
                _ => None,
            })?;
            let resolved = trial.iter().find_map(|e| match e.data {
                EventData::TicketResolved(_) | EventData::SubjectHealthy(_) => Some(e.occurred_at),
                _ => None,
            })?;
            Some((resolved.unix_micros() - injected.unix_micros()) as f64 / 1e6)
        })
        .collect();
    serde_json::json!({
        "trial_count": scores.len(),
        "success_count": count(Outcome::Success),
        "failure_count": count(Outcome::Failure),
        "timeout_count": count(Outcome::Timeout),
        "win_rate": count(Outcome::Success) as f64 / scores.len() as f64,
        "avg_time_to_detect_sec": mean(detect),
        "avg_time_to_resolve_sec": mean(resolve),
        "total_commands": scores.iter().map(|s| s.commands.n_calls).sum::<u32>(),
        "total_unique_commands": scores.iter().map(|s| s.commands.n_unique()).sum::<u32>(),
    })
}

fn assert_close(ours: &Value, theirs: &Value, what: &str) {
    match (ours.as_f64(), theirs.as_f64()) {
        (Some(a), Some(b)) => assert!((a - b).abs() < 1e-6, "{what}: ours {a}, seed {b}"),
        _ => assert_eq!(ours, theirs, "{what}"),
    }
}

#[test]
fn the_current_scorer_gives_every_campaign_the_seed_harness_figures() {
    let plan = plan_of(&seed_db());
    assert_eq!(plan.campaigns.len(), 4);
    for campaign in &plan.campaigns {
        let trials = trials_of(&campaign.events);
        let scores: Vec<TrialScore> = trials
            .iter()
            .map(|events| score(events, &ScoringConfig::default()))
            .collect();
        // The scorer agrees with the seed harness's outcome, which the import wrote as the status.
        for trial_score in &scores {
            let expected = match trial_score.trial_status.unwrap() {
                TrialStatus::Succeeded => Outcome::Success,
                TrialStatus::Failed => Outcome::Failure,
                TrialStatus::TimedOut => Outcome::Timeout,
                TrialStatus::Errored => Outcome::Errored,
            };
            assert_eq!(trial_score.outcome, expected, "{trial_score}");
        }
        let ours = seed_figures(&scores, &trials);
        let theirs = seed_cli(&format!("analyze {} --json", campaign.legacy_id));
        for key in [
            "trial_count",
            "success_count",
            "failure_count",
            "timeout_count",
            "win_rate",
            "avg_time_to_detect_sec",
            "avg_time_to_resolve_sec",
            "total_commands",
            "total_unique_commands",
        ] {
            assert_close(
                &ours[key],
                &theirs[key],
                &format!("campaign {} {key}", campaign.legacy_id),
            );
        }
    }
}

#[test]
fn health_is_the_seed_harness_rule() {
    let healthy = |state: &str, subject| legacy::seed_state_healthy(Some(state), subject);
    let stores = |states: &[&str]| {
        let stores: Vec<Value> = states
            .iter()
            .map(|state| serde_json::json!({"id": 1, "state_name": state}))
            .collect();
        serde_json::json!({"store_count": stores.len(), "stores": stores}).to_string()
    };
    assert!(healthy(&stores(&["Up", "Up", "Up"]), SubjectKind::Tikv));
    assert!(!healthy(
        &stores(&["Up", "Disconnected", "Up"]),
        SubjectKind::Tikv
    ));
    assert!(!healthy(&stores(&["Up", "Offline"]), SubjectKind::Tikv));
    assert!(!healthy(&stores(&[]), SubjectKind::Tikv), "no stores");
    assert!(!healthy(r#"{"healthy": true}"#, SubjectKind::Tikv));
    assert!(!healthy("not json", SubjectKind::Tikv));
    assert!(!legacy::seed_state_healthy(None, SubjectKind::Tikv));
    assert!(healthy(r#"{"members": 3}"#, SubjectKind::Etcd));
    assert!(!healthy("{}", SubjectKind::Etcd));

    assert_eq!(legacy::seed_outcome(true, true), TrialStatus::Succeeded);
    assert_eq!(legacy::seed_outcome(true, false), TrialStatus::Failed);
    assert_eq!(legacy::seed_outcome(false, true), TrialStatus::Failed);
    assert_eq!(legacy::seed_outcome(false, false), TrialStatus::TimedOut);
}

#[test]
fn a_file_from_before_the_variant_migration_reads_as_the_default_variant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eval.db");
    std::fs::copy(seed_db(), &path).unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP INDEX idx_campaigns_variant;
             ALTER TABLE campaigns DROP COLUMN variant_name;
             UPDATE trials SET chaos_metadata = '{}' WHERE id = 13;",
        )
        .unwrap();
    let plan = plan_of(&path);
    let variants: Vec<String> = plan
        .campaigns
        .iter()
        .flat_map(|campaign| campaign.events.iter())
        .filter_map(|event| match &event.data {
            EventData::TrialRequested(requested) => Some(format!(
                "{}/{}",
                requested.trial.chaos.chaos_type(),
                requested.trial.variant.as_deref().unwrap_or("baseline")
            )),
            _ => None,
        })
        .collect();
    expect![[r#"["latency/default", "latency/default", "latency/default", "latency/default", "latency/default", "latency/baseline", "latency/baseline", "latency/baseline", "latency/default", "latency/default", "latency/default", "latency/default", "node_kill/default", "node_kill/default"]"#]]
        .assert_eq(&format!("{variants:?}"));
    expect![[r#"
        [
            "campaign 4 trial 13: its chaos_metadata names no known chaos type (none); taken as the campaign's first, node_kill",
        ]
    "#]]
    .assert_debug_eq(&plan.problems);
}

async fn read_all(log: &EventLog) -> Vec<Event> {
    log.read(&EventFilter::default(), false)
        .await
        .unwrap()
        .map(|stored| stored.unwrap().event.unwrap())
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_file_is_imported_once_and_rescored_as_the_seed_harness_graded_it() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();

    let report = legacy::import(&log, &seed_db()).await.unwrap();
    let ids: Vec<(&str, u32)> = report
        .campaigns
        .iter()
        .map(|campaign| (campaign.legacy_id.as_str(), campaign.n_trials))
        .collect();
    assert_eq!(ids, [("1", 5), ("2", 3), ("3", 4), ("4", 2)]);
    assert_eq!(report.summary.stored, report.n_events);
    assert_eq!(report.already_stored, 0);
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(read_all(&log).await.len() as u64, report.n_events);

    let graded = scoring::rescore(
        &log,
        &scoring::RescoreFilter::All,
        &ScoringConfig::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((graded.n_finished, graded.n_published), (14, 14));
    let mut by_campaign: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for event in read_all(&log).await {
        if let EventData::TrialScored(scored) = event.data {
            *by_campaign
                .entry(event.campaign_id)
                .or_default()
                .entry(format!("{:?}", scored.outcome))
                .or_default() += 1;
        }
    }
    for campaign in &report.campaigns {
        let theirs = seed_cli(&format!("analyze {} --json", campaign.legacy_id));
        let ours = &by_campaign[&campaign.campaign_id];
        for (outcome, key) in [
            ("Success", "success_count"),
            ("Failure", "failure_count"),
            ("Timeout", "timeout_count"),
        ] {
            assert_eq!(
                u64::from(ours.get(outcome).copied().unwrap_or(0)),
                theirs[key].as_u64().unwrap(),
                "campaign {} {key}",
                campaign.legacy_id
            );
        }
    }

    // The same file again: every event is there already, nothing is sent.
    let again = legacy::import(&log, &seed_db()).await.unwrap();
    assert_eq!(again.summary.stored, 0);
    assert_eq!(again.already_stored, report.n_events);
    assert_eq!(read_all(&log).await.len() as u64, report.n_events + 14);
}

fn error_text(error: LegacyError, dir: &Path) -> String {
    error
        .to_string()
        .replace(&dir.display().to_string(), "<dir>")
}

#[tokio::test]
async fn a_file_that_is_not_a_legacy_database_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let read = |path: &Path| legacy::read_legacy(path).unwrap_err();

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just some text long enough to look like a header\n".repeat(20),
    )
    .unwrap();
    expect!["<dir>/notes.txt is not an SQLite database (file is not a database)"]
        .assert_eq(&error_text(read(&text), dir.path()));

    expect!["cannot open <dir>/missing.db: no such file"].assert_eq(&error_text(
        read(&dir.path().join("missing.db")),
        dir.path(),
    ));

    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE runs (id INTEGER PRIMARY KEY);")
        .unwrap();
    expect![[r#"<dir>/other.db is not a legacy eval.db: no table "campaigns" (it has runs); no table "trials" (it has runs)"#]].assert_eq(&error_text(read(&other), dir.path()));

    // Subject and chaos type on the trials instead of the campaign: not the seed harness's schema.
    let partial = dir.path().join("partial.db");
    Connection::open(&partial)
        .unwrap()
        .execute_batch(
            "CREATE TABLE campaigns (id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE trials (id INTEGER PRIMARY KEY, campaign_id INTEGER, subject TEXT, chaos_type TEXT, started_at TEXT);",
        )
        .unwrap();
    expect!["<dir>/partial.db is not a legacy eval.db: table campaigns lacks columns subject_name, chaos_type (it has id, name); table trials lacks columns chaos_injected_at, ended_at (it has id, campaign_id, subject, chaos_type, started_at)"].assert_eq(&error_text(read(&partial), dir.path()));
}
