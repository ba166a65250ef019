//! The import of a legacy `eval.db`, on real SQLite files built here: the events it becomes, the
//! grades the current scorer gives them, a second import adding nothing, and a clear error for a
//! file that is not such a database.

use std::path::{Path, PathBuf};

use expect_test::{Expect, expect};
use futures::StreamExt;
use ingest::legacy::{self, LegacyError};
use rusqlite::{Connection, params};
use schemas::event::{Event, EventData, Producer};
use schemas::log::local::TemporaryNats;
use schemas::log::{EventFilter, EventLog};

const CONFIG: &str = r#"{"name": "nightly etcd", "subjects": ["etcd"], "chaos_types": [{"type": "node_kill"}], "trial_timeout_seconds": 120, "variant": "careful"}"#;

/// A legacy database as the seed harness left it. `trials` has no `variant` or `initial_state`
/// column: optional columns may be missing.
fn legacy_db(dir: &Path) -> PathBuf {
    let path = dir.join("eval.db");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE campaigns (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TEXT, config_json TEXT);
         CREATE TABLE trials (
             id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL, subject TEXT, chaos_type TEXT,
             started_at, chaos_injected_at, ticket_created_at, resolved_at, ended_at,
             outcome TEXT, final_state TEXT, chaos_metadata TEXT, commands TEXT, is_baseline INTEGER);",
    )
    .unwrap();
    db.execute(
        "INSERT INTO campaigns VALUES (1, 'nightly etcd', '2025-06-01 02:00:00', ?1), (2, 'old tikv', 1748736000, NULL)",
        params![CONFIG],
    )
    .unwrap();
    let mut insert = db
        .prepare("INSERT INTO trials VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)")
        .unwrap();
    type Row<'a> = (
        i64,
        i64,
        &'a str,
        &'a str,
        rusqlite::types::Value,
        rusqlite::types::Value,
        rusqlite::types::Value,
        rusqlite::types::Value,
        rusqlite::types::Value,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        i64,
    );
    use rusqlite::types::Value::{Integer, Null, Text};
    let text = |value: &str| Text(value.to_string());
    let rows: Vec<Row> = vec![
        // Detected 2.5 s after injection, resolved after 50 s, healthy: a success.
        (
            1,
            1,
            "etcd",
            "node_kill",
            text("2025-06-01T02:00:00Z"),
            text("2025-06-01T02:00:10Z"),
            text("2025-06-01T02:00:12.5Z"),
            text("2025-06-01T02:01:00Z"),
            text("2025-06-01T02:01:30Z"),
            Some("success"),
            Some(r#"{"healthy": true}"#),
            None,
            Some(
                r#"[{"command": "etcdctl endpoint status", "timestamp": "2025-06-01T02:00:15Z"},
                     {"command": "systemctl restart etcd", "reasoning": "member down", "timestamp": "2025-06-01T02:00:40Z"}]"#,
            ),
            0,
        ),
        // The seed harness's alias `kill`; never resolved: a timeout. Untimed repeats thrash.
        (
            2,
            1,
            "etcd",
            "kill",
            text("2025-06-01 02:10:00"),
            text("2025-06-01 02:10:10"),
            text("2025-06-01 02:10:11"),
            Null,
            text("2025-06-01 02:12:10"),
            Some("timeout"),
            Some(r#"{"status": "degraded"}"#),
            None,
            Some(r#"["etcdctl member list", "etcdctl member list", "etcdctl member list"]"#),
            0,
        ),
        // A baseline that healed by itself after 30 s.
        (
            3,
            1,
            "etcd",
            "node_kill",
            text("2025-06-01T02:20:00Z"),
            text("2025-06-01T02:20:10Z"),
            Null,
            text("2025-06-01T02:20:40Z"),
            text("2025-06-01T02:21:00Z"),
            Some("success"),
            Some(r#"{"healthy": true}"#),
            None,
            None,
            1,
        ),
        // Unknown chaos and an unreadable start: skipped, and named in the report.
        (
            4,
            1,
            "etcd",
            "cpu_burn",
            text("yesterday"),
            Null,
            Null,
            Null,
            text("2025-06-01T02:25:00Z"),
            Some("failure"),
            None,
            None,
            None,
            0,
        ),
        // Resolved while the subject is unhealthy: a failure. Zone-less times are UTC.
        (
            6,
            1,
            "etcd",
            "node_kill",
            text("2025-06-01T02:30:00.250"),
            text("2025-06-01T02:30:01"),
            text("2025-06-01T02:30:05"),
            text("2025-06-01T02:31:00"),
            text("2025-06-01T02:31:30"),
            Some("failure"),
            Some(r#"{"healthy": false}"#),
            None,
            None,
            0,
        ),
        // Unix seconds; a latency fault with its parameters and target.
        (
            7,
            2,
            "tikv",
            "latency",
            Integer(1_748_736_000),
            Integer(1_748_736_010),
            Integer(1_748_736_013),
            Integer(1_748_736_100),
            Integer(1_748_736_200),
            Some("success"),
            Some(r#"{"healthy": true}"#),
            Some(r#"{"params": {"min_ms": 100, "max_ms": 200}, "target": "tikv-2"}"#),
            Some(
                r#"[{"tool": "shell", "params": {"command": "pd-ctl -u http://pd:2379 store", "reasoning": "look"}, "timestamp": 1748736020}]"#,
            ),
            0,
        ),
        // A trial of a campaign that is not there.
        (
            8,
            99,
            "etcd",
            "node_kill",
            text("2025-06-01T03:00:00Z"),
            Null,
            Null,
            Null,
            text("2025-06-01T03:01:00Z"),
            None,
            None,
            None,
            None,
            0,
        ),
    ];
    for row in rows {
        insert
            .execute(params![
                row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10,
                row.11, row.12, row.13
            ])
            .unwrap();
    }
    path
}

fn producer() -> Producer {
    Producer {
        stage: "import".to_string(),
        host: "test".to_string(),
    }
}

/// One line per event: campaign, trial (its index), type, time and what matters of its data.
fn check_plan(path: &Path, expected: Expect) {
    let db = legacy::read_legacy(path).unwrap();
    let plan = legacy::plan(&db, &producer());
    assert_eq!(plan, legacy::plan(&db, &producer()), "planning is pure");
    let mut out = String::new();
    for campaign in &plan.campaigns {
        out.push_str(&format!(
            "campaign {} ({}) as {}: {} trials\n",
            campaign.legacy_id, campaign.name, campaign.campaign_id, campaign.n_trials
        ));
        for event in &campaign.events {
            let trial = match &event.data {
                EventData::TrialRequested(requested) => format!(
                    " #{} {} {} {} rep {} timeout {}s",
                    requested.trial.trial_index,
                    requested.trial.subject,
                    serde_json::to_string(&requested.trial.chaos).unwrap(),
                    requested.trial.variant.as_deref().unwrap_or("baseline"),
                    requested.trial.repetition,
                    requested.trial.timeout_seconds
                ),
                EventData::StateCaptured(capture) => format!(" healthy={}", capture.healthy),
                EventData::AgentLogRecorded(entry) => format!(
                    " {} {}",
                    entry.tool_name.as_deref().unwrap_or("?"),
                    entry.tool_params.as_ref().unwrap()
                ),
                EventData::TrialFinished(finished) => format!(" {:?}", finished.status),
                EventData::ChaosInjected(injected) => {
                    format!(" target={}", injected.target.as_deref().unwrap_or("-"))
                }
                EventData::CampaignFinished(finished) => format!(" {:?}", finished.by_status),
                _ => String::new(),
            };
            out.push_str(&format!(
                "  {} {}{}\n",
                event.occurred_at,
                event.event_type(),
                trial
            ));
        }
    }
    for problem in &plan.problems {
        out.push_str(&format!("problem: {problem}\n"));
    }
    expected.assert_eq(&out);
}

#[test]
fn legacy_rows_become_the_events_of_a_trial() {
    let dir = tempfile::tempdir().unwrap();
    check_plan(
        &legacy_db(dir.path()),
        expect![[r#"
        campaign 1 (nightly etcd) as legacy-6b38587731101c8a: 4 trials
          2025-06-01T02:00:00.000000Z CampaignPublished
          2025-06-01T02:00:00.000000Z TrialRequested #0 etcd {"type":"node_kill","params":{"target":"random"}} careful rep 0 timeout 120s
          2025-06-01T02:00:00.000000Z TrialStarted
          2025-06-01T02:00:10.000000Z ChaosInjected target=-
          2025-06-01T02:00:12.500000Z TicketOpened
          2025-06-01T02:00:15.000000Z AgentLogRecorded shell {"command":"etcdctl endpoint status"}
          2025-06-01T02:00:40.000000Z AgentLogRecorded shell {"command":"systemctl restart etcd","reasoning":"member down"}
          2025-06-01T02:01:00.000000Z TicketResolved
          2025-06-01T02:01:30.000000Z StateCaptured healthy=true
          2025-06-01T02:01:30.000000Z ChaosCleanedUp
          2025-06-01T02:01:30.000000Z TrialFinished Succeeded
          2025-06-01T02:10:00.000000Z TrialRequested #1 etcd {"type":"node_kill","params":{"target":"random"}} careful rep 1 timeout 120s
          2025-06-01T02:10:00.000000Z TrialStarted
          2025-06-01T02:10:10.000000Z ChaosInjected target=-
          2025-06-01T02:10:11.000000Z TicketOpened
          2025-06-01T02:10:11.000000Z AgentLogRecorded shell {"command":"etcdctl member list"}
          2025-06-01T02:10:11.000000Z AgentLogRecorded shell {"command":"etcdctl member list"}
          2025-06-01T02:10:11.000000Z AgentLogRecorded shell {"command":"etcdctl member list"}
          2025-06-01T02:12:10.000000Z StateCaptured healthy=false
          2025-06-01T02:12:10.000000Z ChaosCleanedUp
          2025-06-01T02:12:10.000000Z TrialFinished TimedOut
          2025-06-01T02:20:00.000000Z TrialRequested #2 etcd {"type":"node_kill","params":{"target":"random"}} baseline rep 0 timeout 120s
          2025-06-01T02:20:00.000000Z TrialStarted
          2025-06-01T02:20:10.000000Z ChaosInjected target=-
          2025-06-01T02:20:40.000000Z SubjectHealthy
          2025-06-01T02:21:00.000000Z StateCaptured healthy=true
          2025-06-01T02:21:00.000000Z ChaosCleanedUp
          2025-06-01T02:21:00.000000Z TrialFinished Succeeded
          2025-06-01T02:30:00.250000Z TrialRequested #3 etcd {"type":"node_kill","params":{"target":"random"}} careful rep 2 timeout 120s
          2025-06-01T02:30:00.250000Z TrialStarted
          2025-06-01T02:30:01.000000Z ChaosInjected target=-
          2025-06-01T02:30:05.000000Z TicketOpened
          2025-06-01T02:31:00.000000Z TicketResolved
          2025-06-01T02:31:30.000000Z StateCaptured healthy=false
          2025-06-01T02:31:30.000000Z ChaosCleanedUp
          2025-06-01T02:31:30.000000Z TrialFinished Failed
          2025-06-01T02:31:30.000000Z CampaignFinished {"failed": 1, "succeeded": 2, "timed_out": 1}
        campaign 2 (old tikv) as legacy-b08b73b187899e98: 1 trials
          2025-06-01T00:00:00.000000Z CampaignPublished
          2025-06-01T00:00:00.000000Z TrialRequested #0 tikv {"type":"latency","params":{"target":"random","min_ms":100,"max_ms":200}} legacy rep 0 timeout 300s
          2025-06-01T00:00:00.000000Z TrialStarted
          2025-06-01T00:00:10.000000Z ChaosInjected target=tikv-2
          2025-06-01T00:00:13.000000Z TicketOpened
          2025-06-01T00:00:20.000000Z AgentLogRecorded shell {"command":"pd-ctl -u http://pd:2379 store","reasoning":"look"}
          2025-06-01T00:01:40.000000Z TicketResolved
          2025-06-01T00:03:20.000000Z StateCaptured healthy=true
          2025-06-01T00:03:20.000000Z ChaosCleanedUp
          2025-06-01T00:03:20.000000Z TrialFinished Succeeded
          2025-06-01T00:03:20.000000Z CampaignFinished {"succeeded": 1}
        problem: trial 8: campaign "99" is not in table campaigns; skipped
        problem: campaign 1 trial 4: unknown chaos type "cpu_burn", started_at: unreadable time "yesterday"; skipped
    "#]],
    );
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
async fn imported_trials_are_graded_by_the_current_scorer_and_a_second_import_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = legacy_db(dir.path());
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();

    let report = legacy::import(&log, &path).await.unwrap();
    assert_eq!(report.campaigns.len(), 2);
    assert_eq!(report.summary.stored, report.n_events);
    assert_eq!(report.already_stored, 0);
    assert_eq!(report.problems.len(), 2, "{:#?}", report.problems);
    let stored = read_all(&log).await;
    assert_eq!(stored.len() as u64, report.n_events);

    let graded = scoring::rescore(
        &log,
        &scoring::RescoreFilter::All,
        &scoring::ScoringConfig::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((graded.n_finished, graded.n_published), (5, 5));
    let mut lines: Vec<String> = read_all(&log)
        .await
        .into_iter()
        .filter_map(|event| match event.data {
            EventData::TrialScored(scored) => Some(format!(
                "{} {:?} baseline={} ttd={:?} ttr={:?} heal={:?} commands={} thrashing={:?}",
                event.campaign_id,
                scored.outcome,
                scored.baseline,
                scored.time_to_detect_ms,
                scored.time_to_resolve_ms,
                scored.time_to_heal_ms,
                scored.n_commands,
                scored.thrashing_commands,
            )),
            _ => None,
        })
        .collect();
    lines.sort();
    expect![[r#"
        legacy-6b38587731101c8a Failure baseline=false ttd=Some(4000) ttr=None heal=None commands=0 thrashing=[]
        legacy-6b38587731101c8a Success baseline=false ttd=Some(2500) ttr=Some(50000) heal=Some(80000) commands=2 thrashing=[]
        legacy-6b38587731101c8a Success baseline=true ttd=None ttr=None heal=Some(30000) commands=0 thrashing=[]
        legacy-6b38587731101c8a Timeout baseline=false ttd=Some(1000) ttr=None heal=None commands=3 thrashing=["shell: etcdctl member list"]
        legacy-b08b73b187899e98 Success baseline=false ttd=Some(3000) ttr=Some(90000) heal=Some(190000) commands=1 thrashing=[]"#]].assert_eq(&lines.join("\n"));

    // The same file again: every event is there already, nothing is sent.
    let again = legacy::import(&log, &path).await.unwrap();
    assert_eq!(again.summary.stored, 0);
    assert_eq!(again.already_stored, report.n_events);
    assert_eq!(read_all(&log).await.len() as u64, report.n_events + 5);
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

    let partial = dir.path().join("partial.db");
    Connection::open(&partial)
        .unwrap()
        .execute_batch(
            "CREATE TABLE campaigns (id INTEGER PRIMARY KEY, title TEXT);
             CREATE TABLE trials (id INTEGER PRIMARY KEY, campaign_id INTEGER, subject TEXT, started_at TEXT);",
        )
        .unwrap();
    expect!["<dir>/partial.db is not a legacy eval.db: table campaigns lacks column name (it has id, title); table trials lacks columns chaos_type, ended_at (it has id, campaign_id, subject, started_at)"].assert_eq(&error_text(read(&partial), dir.path()));
}
