//! The projector against a real nats-server and real DuckDB files: the rows of a scripted
//! campaign, resuming after a stop, rebuild equality, unknown events, and the operator's rows,
//! which come from the capture's events alone.

use std::path::{Path, PathBuf};

use duckdb::Connection;
use expect_test::expect;
use projector::stage::{Options, Report};
use schemas::event::{
    Event, EventData, OperatorCaptureFinished, OperatorDbStatus, OperatorRow, OtherEvent, Producer,
    TrialStatus,
};
use schemas::log::EventLog;
use scoring::fixtures::TrialFixture;
use scoring::score::{ScoringConfig, score};
use testkit::TemporaryNats;
use tokio_util::sync::CancellationToken;

const CAMPAIGN: &str = "projtest";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A campaign's events: the quickstart's `CampaignPublished`, five trials of different fates,
/// each scored, and one event of a type this build does not know. The first trial's capture
/// ended with `status` (its ticket and session as the operator last wrote them when `read`).
fn campaign_events(operator_db: &Path, status: OperatorDbStatus) -> Vec<Event> {
    let prepared = ingest::campaign_files::prepare(
        &repo_root().join("campaigns/quickstart.yaml"),
        None,
        Some(CAMPAIGN),
    )
    .expect("the quickstart campaign is valid");
    let producer = Producer::here("test");
    let mut events: Vec<Event> = ingest::publish::campaign_events(&prepared, &producer)
        .take(1)
        .collect();
    let trials = [
        TrialFixture::test()
            .detected_after(1_500)
            .command_at(3_000, "etcdctl endpoint status --cluster")
            .command_at(6_000, "eval lab node start 2")
            .resolved_after(9_000),
        TrialFixture::test()
            .with_variant("hasty")
            .detected_after(2_000)
            .command_at(3_000, "etcdctl member remove 8e9e05c52164694d")
            .command_at(4_000, "systemctl restart etcd")
            .command_at(5_000, "systemctl restart etcd")
            .command_at(6_000, "systemctl restart etcd")
            .finished(TrialStatus::TimedOut, 300_000),
        TrialFixture::test().baseline().healthy_after(40_000),
        TrialFixture::test().errored("the lab did not start"),
        TrialFixture::test().unfinished(),
    ];
    for (index, trial) in trials.into_iter().enumerate() {
        let trial = trial
            .in_campaign(CAMPAIGN)
            .with_trial_index(u32::try_from(index).unwrap());
        let mut trial_events = trial.events();
        for event in &mut trial_events {
            retarget_operator_db(event, operator_db);
        }
        if index == 0 {
            trial_events.push(capture_end(&trial_events, operator_db, status));
        }
        if trial_events
            .iter()
            .any(|event| event.event_type() == "TrialFinished")
        {
            let scored = score(&trial_events, &ScoringConfig::default()).to_event(&producer);
            trial_events.push(scored);
        }
        events.extend(trial_events);
    }
    events.push(Event::new(
        &producer,
        CAMPAIGN,
        None,
        schemas::event::EventData::Other(OtherEvent {
            type_name: "SomethingNew".to_string(),
            data: serde_json::json!({"from": "a newer build"}),
            read_error: None,
        }),
    ));
    events
}

/// The fixtures name a made-up operator.db; point them at the test's file.
fn retarget_operator_db(event: &mut Event, path: &Path) {
    let path = path.display().to_string();
    match &mut event.data {
        schemas::event::EventData::TicketOpened(data) => data.operator_db = path,
        schemas::event::EventData::AgentSessionStarted(data) => data.operator_db = path,
        schemas::event::EventData::AgentLogRecorded(data) => data.operator_db = path,
        schemas::event::EventData::TicketResolved(data) => data.operator_db = path,
        _ => {}
    }
}

fn written(cells: &[(&str, serde_json::Value)]) -> OperatorRow {
    cells
        .iter()
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect()
}

/// The capture stage's `OperatorCaptureFinished` for a trial's events: the ticket and its
/// session as the operator last wrote them (zone-less times, an integer `held`).
fn capture_end(trial: &[Event], operator_db: &Path, status: OperatorDbStatus) -> Event {
    let injection = trial
        .iter()
        .find(|event| event.event_type() == "ChaosInjected")
        .expect("the trial was injected");
    let read = status == OperatorDbStatus::Read;
    let finished = OperatorCaptureFinished {
        injection_id: injection.id,
        operator_db: operator_db.display().to_string(),
        status,
        error: (!read).then(|| "operator.db did not appear within 90s".to_string()),
        size_bytes: read.then_some(24_576),
        modified_at: None,
        ticket: read.then(|| {
            written(&[
                ("id", 1.into()),
                ("violation_key", "etcd-unhealthy".into()),
                ("invariant_name", "member_reachable".into()),
                ("status", "resolved".into()),
                ("held", 0.into()),
                ("occurrence_count", 3.into()),
                ("first_seen_at", "2026-03-01 10:00:06".into()),
                ("severity", "critical".into()),
            ])
        }),
        sessions: if read {
            vec![written(&[
                ("id", 1.into()),
                ("session_id", "s-1".into()),
                ("ticket_id", 1.into()),
                ("status", "completed".into()),
                ("started_at", "2026-03-01 10:00:07".into()),
            ])]
        } else {
            Vec::new()
        },
        n_log_entries: if read { 2 } else { 0 },
    };
    Event::new(
        &Producer::here("capture"),
        &injection.campaign_id,
        injection.trial_id.as_deref(),
        EventData::OperatorCaptureFinished(finished),
    )
}

async fn project(log: &EventLog, path: &Path) -> Report {
    let (writer, projection) = projector::Writer::open(path).expect("the file opens");
    projector::stage::catch_up(log, writer, projection)
        .await
        .expect("the projector runs")
}

/// `sql`'s rows, one line each, values in DuckDB's debug form.
fn rows(path: &Path, sql: &str) -> String {
    let connection = Connection::open(path).unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    let mut rows = statement.query([]).unwrap();
    let mut out = String::new();
    while let Some(row) = rows.next().unwrap() {
        let n = row.as_ref().column_count();
        let cells: Vec<String> = (0..n)
            .map(|i| {
                use duckdb::types::Value;
                match row.get::<_, Value>(i).unwrap() {
                    Value::Null => "NULL".to_string(),
                    Value::Text(text) => text,
                    Value::Boolean(b) => b.to_string(),
                    Value::Int(n) => n.to_string(),
                    Value::BigInt(n) => n.to_string(),
                    Value::UBigInt(n) => n.to_string(),
                    other => format!("{other:?}"),
                }
            })
            .collect();
        out.push_str(&cells.join(" | "));
        out.push('\n');
    }
    out
}

/// Every table's whole content, for equality checks (the projector's own progress row aside).
fn dump(path: &Path) -> String {
    let mut out = String::new();
    for table in projector::schema::TABLES {
        let columns: Vec<&str> = table.columns.iter().map(|column| column.name).collect();
        let order = if table.name == "operator_db_files" {
            "operator_db".to_string()
        } else {
            columns.join(", ")
        };
        // Read times differ between runs; everything else must not.
        let select = columns
            .join(", ")
            .replace("modified_at", "modified_at IS NOT NULL");
        out.push_str(&format!("== {}\n", table.name));
        out.push_str(&rows(
            path,
            &format!("SELECT {select} FROM {} ORDER BY {order}", table.name),
        ));
    }
    out
}

#[tokio::test]
async fn a_scripted_campaign_gives_the_expected_rows() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // No operator.db file exists: the operator's rows come from the events alone.
    let operator_db = dir.path().join("operator.db");
    let events = campaign_events(&operator_db, OperatorDbStatus::Read);
    let n_events = events.len() as u64;
    log.publish_all(events, 64, |_| {}).await.unwrap();

    let db = dir.path().join("eval.duckdb");
    let report = project(&log, &db).await;
    assert_eq!(report.applied, n_events);
    assert_eq!(report.last_sequence, n_events);

    expect![[r#"
        projtest | quickstart | campaigns/quickstart.yaml | 12 | 4 | 5 | 4 | running | ["etcd"] | ["node_kill","process_pause"] | ["careful","hasty"]
    "#]]
    .assert_eq(&rows(
        &db,
        "SELECT campaign_id, name, replace(file_name, '\\', '/').regexp_replace('.*/campaigns', 'campaigns'), n_trials, n_baseline_trials, n_started, n_finished, status, subjects_json, chaos_types_json, variants_json FROM campaigns",
    ));
    expect![[r#"
        0 | etcd | node_kill | careful | false | finished | succeeded | worker-b | 1 | true | true | 2 | 2
        1 | etcd | node_kill | hasty | false | finished | timed_out | worker-b | 1 | true | true | 4 | 4
        2 | etcd | node_kill | NULL | true | finished | succeeded | worker-b | 1 | true | true | NULL | NULL
        3 | etcd | node_kill | careful | false | finished | errored | worker-b | 1 | true | true | NULL | NULL
        4 | etcd | node_kill | careful | false | cleaned_up | NULL | worker-b | 1 | true | NULL | NULL | NULL
    "#]]
    .assert_eq(&rows(
        &db,
        "SELECT trial_index, subject, chaos_type, variant, baseline, state, status, worker, attempt, injected_at > started_at, finished_at > injected_at, n_log_entries, n_tool_calls FROM trials ORDER BY trial_index",
    ));
    expect![[r#"
        0 | v3 | success | true | 1500 | true | 9000 | 2 | 1 | 0 | 0
        1 | v3 | timeout | true | 2000 | false | NULL | 4 | 0 | 1 | 1
        2 | v3 | success | false | NULL | false | NULL | 0 | 0 | 0 | 0
        3 | v3 | errored | false | NULL | false | NULL | 0 | 0 | 0 | 0
    "#]]
    .assert_eq(&rows(
        &db,
        "SELECT t.trial_index, s.scorer_version, s.outcome, s.detected, s.time_to_detect_ms, s.resolved, s.time_to_resolve_ms, s.n_commands, s.n_diagnostic, s.n_destructive, s.n_thrashing FROM latest_scores s JOIN trials t USING (trial_id) ORDER BY t.trial_index",
    ));
    // Each trial's row carries its latest score's figures, and its range of sequences holds
    // every row of the trial.
    expect![[r#"
        0 | 0 | 4 | 0
    "#]]
    .assert_eq(&rows(
        &db,
        "SELECT
            (SELECT count(*) FROM trials t JOIN latest_scores s USING (trial_id)
             WHERE (t.score_outcome, t.score_detected, t.score_time_to_detect_ms,
                    t.score_time_to_resolve_ms, t.score_time_to_heal_ms, t.score_n_commands,
                    t.score_n_destructive, t.score_n_thrashing)
                   IS DISTINCT FROM
                   (s.outcome, s.detected, s.time_to_detect_ms, s.time_to_resolve_ms,
                    s.time_to_heal_ms, s.n_commands, s.n_destructive, s.n_thrashing)),
            (SELECT count(*) FROM trials t LEFT JOIN latest_scores s USING (trial_id)
             WHERE (s.trial_id IS NULL) <> (t.score_outcome IS NULL)),
            (SELECT count(*) FROM trials WHERE score_outcome IS NOT NULL),
            (SELECT count(*) FROM events e JOIN trials t USING (trial_id)
             WHERE e.seq NOT BETWEEN t.first_seq AND t.last_seq)",
    ));
    expect![[r#"
        0 | etcdctl endpoint status --cluster | diagnostic | etcdctl-read
        0 | eval lab node start 2 | remediation | eval-lab-node-start
        1 | etcdctl member remove 8e9e05c52164694d | destructive | etcdctl-member-remove
        1 | systemctl restart etcd | remediation | systemctl-start
        1 | systemctl restart etcd | remediation | systemctl-start
        1 | systemctl restart etcd | remediation | systemctl-start
    "#]]
    .assert_eq(&rows(
        &db,
        "SELECT t.trial_index, c.command, c.category, c.rule FROM commands c JOIN trials t USING (trial_id) ORDER BY t.trial_index, c.seq",
    ));
    expect![[r#"
        SomethingNew | NULL | {"from":"a newer build"}
    "#]]
    .assert_eq(&rows(
        &db,
        "SELECT type, read_error, data FROM events WHERE type NOT IN (SELECT unnest(['CampaignPublished','TrialRequested','TrialStarted','SubjectReset','SubjectHealthy','StateCaptured','ChaosInjected','TicketOpened','AgentSessionStarted','AgentLogRecorded','TicketResolved','OperatorCaptureFinished','ChaosCleanedUp','TrialFinished','TrialScored']))",
    ));
    expect![[r#"
        read | 1 | 1 | 2
    "#]]
    .assert_eq(&rows(
        &db,
        "SELECT status, n_tickets, n_sessions, n_log_entries FROM operator_db_files",
    ));
    expect![[r#"
        member_reachable | resolved | 3 | 2026-03-01 10:00:06
        session-1 | tool_call | shell | {"command":"etcdctl endpoint status --cluster","reasoning":"checking at 3000 ms"}
        session-1 | tool_call | shell | {"command":"eval lab node start 2","reasoning":"checking at 6000 ms"}
        session-1 | tool_call | shell | {"command":"etcdctl member remove 8e9e05c52164694d","reasoning":"checking at 3000 ms"}
        session-1 | tool_call | shell | {"command":"systemctl restart etcd","reasoning":"checking at 4000 ms"}
        session-1 | tool_call | shell | {"command":"systemctl restart etcd","reasoning":"checking at 5000 ms"}
        session-1 | tool_call | shell | {"command":"systemctl restart etcd","reasoning":"checking at 6000 ms"}
    "#]]
    .assert_eq(&rows(
        &db,
        "SELECT invariant_name, status, occurrence_count::VARCHAR, first_seen_at FROM operator_tickets
         UNION ALL SELECT session_id, entry_type, tool_name, tool_params FROM operator_log_entries WHERE entry_type = 'tool_call'",
    ));
}

#[tokio::test]
async fn resumed_runs_equal_a_rebuild_and_apply_nothing_twice() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let operator_db = dir.path().join("operator.db");
    let events = campaign_events(&operator_db, OperatorDbStatus::Read);
    let incremental = dir.path().join("incremental.duckdb");

    // The log grows in three parts; the projector catches up after each, one event per commit
    // in the middle part.
    let third = events.len() / 3;
    let mut parts = events.chunks(third);
    log.publish_all(parts.next().unwrap().to_vec(), 64, |_| {})
        .await
        .unwrap();
    project(&log, &incremental).await;
    log.publish_all(parts.next().unwrap().to_vec(), 64, |_| {})
        .await
        .unwrap();
    {
        let (writer, projection) = projector::Writer::open(&incremental).unwrap();
        let options = Options {
            until_caught_up: true,
            batch_events: 1,
            ..Options::default()
        };
        projector::stage::run(
            &log,
            writer,
            projection,
            &options,
            |_| {},
            CancellationToken::new(),
        )
        .await
        .unwrap();
    }
    for part in parts {
        log.publish_all(part.to_vec(), 64, |_| {}).await.unwrap();
    }
    project(&log, &incremental).await;
    // Caught up: another run applies nothing.
    let again = project(&log, &incremental).await;
    assert_eq!(again.applied, 0);

    let rebuilt = dir.path().join("rebuilt.duckdb");
    let report = project(&log, &rebuilt).await;
    assert_eq!(report.applied, events.len() as u64);
    let (a, b) = (dump(&incremental), dump(&rebuilt));
    assert!(a.contains("SomethingNew"));
    assert_eq!(a, b);

    // --rebuild: delete and replay gives the same tables again.
    projector::stage::delete_file(&incremental).unwrap();
    project(&log, &incremental).await;
    assert_eq!(dump(&incremental), b);
}

#[tokio::test]
async fn a_capture_that_found_no_file_is_recorded() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone/operator.db");
    log.publish_all(
        campaign_events(&missing, OperatorDbStatus::Missing),
        64,
        |_| {},
    )
    .await
    .unwrap();
    let db = dir.path().join("eval.duckdb");
    project(&log, &db).await;
    let files = rows(
        &db,
        "SELECT status, error IS NOT NULL, n_tickets FROM operator_db_files",
    );
    assert_eq!(files, "missing | true | 0\n");
    assert_eq!(rows(&db, "SELECT count(*) FROM operator_tickets"), "0\n");
    assert_eq!(rows(&db, "SELECT count(*) FROM trials"), "5\n");
}

/// The README documents every table and view, between two markers; `UPDATE_EXPECT=1` rewrites
/// that part from the definitions.
#[test]
fn the_readme_documents_every_table() {
    let path = repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- tables:start -->\n", "<!-- tables:end -->");
    let from = readme
        .find(start)
        .expect("the README has the tables start marker")
        + start.len();
    let to = readme
        .find(end)
        .expect("the README has the tables end marker");
    let wanted = projector::schema::markdown();
    if readme[from..to] != wanted {
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            let updated = format!("{}{wanted}{}", &readme[..from], &readme[to..]);
            std::fs::write(&path, updated).unwrap();
        } else {
            panic!(
                "the README's table documentation is out of date: run UPDATE_EXPECT=1 cargo test -p projector"
            );
        }
    }
}

/// A trial scored again is represented by its newest score in `latest_scores`, whether the
/// scores arrive in one commit or in several, and across a reopening of the file.
#[test]
fn a_trial_scored_again_has_only_its_newest_score_as_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eval.duckdb");
    let producer = Producer::here("test");
    let trial = |index: u32| {
        TrialFixture::test()
            .in_campaign(CAMPAIGN)
            .with_trial_index(index)
            .detected_after(1_000)
            .resolved_after(5_000)
    };
    let mut sequence = 0;
    let mut stored = |event: Event| {
        sequence += 1;
        schemas::log::StoredMessage::from_event(sequence, &event)
    };
    // Each score counts a different number of commands, to tell them apart.
    let scored = |events: &[Event], n_commands: u32| {
        let mut result = score(events, &ScoringConfig::default());
        result.commands.n_calls = n_commands;
        result.to_event(&producer)
    };
    let (first, second) = (trial(0).events(), trial(1).events());
    // Commit 1: both trials and a score each. Commit 2, after reopening the file: trial 0
    // scored again, trial 1 twice.
    let batches = vec![
        first
            .iter()
            .chain(&second)
            .cloned()
            .chain([scored(&first, 1), scored(&second, 2)])
            .collect::<Vec<_>>(),
        vec![scored(&first, 3), scored(&second, 4), scored(&second, 5)],
    ];
    for batch in batches {
        let (mut writer, mut projection) = projector::Writer::open(&path).unwrap();
        for event in batch {
            projection.apply(&stored(event));
        }
        writer.commit(&mut projection).unwrap();
    }
    let connection = Connection::open(&path).unwrap();
    let rows: Vec<(u32, u64, bool)> = connection
        .prepare(
            "SELECT t.trial_index, s.seq, s.latest FROM scores s JOIN trials t USING (trial_id) ORDER BY s.seq",
        )
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let newest = |index: u32| {
        rows.iter()
            .filter(|row| row.0 == index)
            .map(|row| row.1)
            .max()
    };
    for (index, seq, latest) in &rows {
        assert_eq!(*latest, Some(*seq) == newest(*index), "{rows:?}");
    }
    assert_eq!(rows.len(), 5, "every score is kept: {rows:?}");
    let latest: Vec<(u32, u64)> = connection
        .prepare(
            "SELECT t.trial_index, s.seq FROM latest_scores s JOIN trials t USING (trial_id) ORDER BY 1",
        )
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        latest,
        vec![(0, newest(0).unwrap()), (1, newest(1).unwrap())]
    );
    // The trial's row carries its latest score's figures, and its range of sequences ends at it.
    let carried: Vec<(u32, String, i32, u64)> = connection
        .prepare(
            "SELECT trial_index, score_outcome, score_n_commands, last_seq FROM trials ORDER BY 1",
        )
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        carried,
        vec![
            (0, "success".to_string(), 3, newest(0).unwrap()),
            (1, "success".to_string(), 5, newest(1).unwrap()),
        ]
    );
}

/// Under a user's rules the `commands` view classifies each call as the trial's latest score did:
/// the projector stores what the scores say, it never classifies on its own. Re-scored with rules
/// that call `systemctl restart` destructive, the same log's commands follow the new scores.
#[tokio::test]
async fn under_user_rules_the_commands_agree_with_the_scores() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = campaign_events(&dir.path().join("operator.db"), OperatorDbStatus::Read);
    log.publish_all(events.clone(), 64, |_| {}).await.unwrap();
    let user = scoring::rules::Rules::parse(
        "team.yaml",
        "rules:\n  - name: restart-is-destructive\n    category: destructive\n    argv: [systemctl, restart]\n",
    )
    .unwrap();
    let config = ScoringConfig {
        rules: scoring::rules::Rules::builtin().with_overrides(user),
        ..ScoringConfig::default()
    };
    let producer = Producer::here("rescore");
    let mut trials: Vec<String> = events.iter().filter_map(|e| e.trial_id.clone()).collect();
    trials.dedup();
    for trial_id in trials {
        let of_trial: Vec<Event> = events
            .iter()
            .filter(|event| {
                event.trial_id.as_deref() == Some(&trial_id) && event.event_type() != "TrialScored"
            })
            .cloned()
            .collect();
        if of_trial.iter().any(|e| e.event_type() == "TrialFinished") {
            log.publish(&score(&of_trial, &config).to_event(&producer))
                .await
                .unwrap();
        }
    }
    let db = dir.path().join("eval.duckdb");
    project(&log, &db).await;
    expect![[r#"
        1 | etcdctl member remove 8e9e05c52164694d | destructive | etcdctl-member-remove | v3+
        1 | systemctl restart etcd | destructive | restart-is-destructive | v3+
        1 | systemctl restart etcd | destructive | restart-is-destructive | v3+
        1 | systemctl restart etcd | destructive | restart-is-destructive | v3+
    "#]]
    .assert_eq(&rows(
        &db,
        "SELECT t.trial_index, c.command, c.category, c.rule, left(s.scorer_version, 3)
         FROM commands c JOIN trials t USING (trial_id) JOIN latest_scores s USING (trial_id)
         WHERE t.trial_index = 1 ORDER BY c.seq",
    ));
    // Every trial's counts by category in `commands` are its latest score's.
    assert_eq!(
        rows(
            &db,
            "SELECT count(*) FROM latest_scores s
             LEFT JOIN (SELECT trial_id,
                               count(*) FILTER (WHERE category = 'destructive') AS destructive,
                               count(*) FILTER (WHERE category = 'remediation') AS remediation,
                               count(*) FILTER (WHERE category = 'diagnostic') AS diagnostic,
                               count(*) AS calls
                        FROM commands GROUP BY trial_id) c USING (trial_id)
             WHERE (coalesce(c.destructive, 0), coalesce(c.remediation, 0), coalesce(c.diagnostic, 0), coalesce(c.calls, 0))
                   IS DISTINCT FROM (s.n_destructive, s.n_remediation, s.n_diagnostic, s.n_commands)",
        ),
        "0\n"
    );
    assert_eq!(
        rows(&db, "SELECT count(*) FROM commands WHERE category IS NULL"),
        "0\n"
    );
}

/// A `TrialScored` stored under the subject of another type (which its publisher was allowed to
/// publish) is kept in `events` as unreadable, under what its subject says, and counts as no
/// score.
#[test]
fn an_event_under_another_type_s_subject_is_kept_and_not_believed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eval.duckdb");
    let trial = TrialFixture::test()
        .in_campaign(CAMPAIGN)
        .detected_after(1_000);
    let events = trial.events();
    let forged = score(&events, &ScoringConfig::default()).to_event(&Producer::here("forger"));
    let (mut writer, mut projection) = projector::Writer::open(&path).unwrap();
    let mut sequence = 0;
    for event in &events {
        sequence += 1;
        projection.apply(&schemas::log::StoredMessage::from_event(sequence, event));
    }
    let mut smuggled = schemas::log::StoredMessage::from_event(sequence + 1, &forged);
    smuggled.subject = smuggled.subject.replace("TrialScored", "StateCaptured");
    projection.apply(&smuggled);
    writer.commit(&mut projection).unwrap();
    let connection = Connection::open(&path).unwrap();
    let n_scores: i64 = connection
        .query_row("SELECT count(*) FROM scores", [], |row| row.get(0))
        .unwrap();
    assert_eq!(n_scores, 0);
    let (event_type, read_error): (String, String) = connection
        .query_row(
            "SELECT type, read_error FROM events WHERE seq = ?",
            [sequence + 1],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(event_type, "StateCaptured");
    assert!(
        read_error.contains("not the subject of this TrialScored"),
        "{read_error}"
    );
}
