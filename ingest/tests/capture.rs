//! The operator.db capture, on real SQLite files with the contract's schema and a real
//! `nats-server`: which rows become which events, restarts without duplicates or gaps, an
//! operator writing while the capture reads, the variant write, time zones, and bad files.

use std::path::Path;
use std::time::Duration;

use expect_test::{Expect, expect};
use futures::StreamExt;
use ingest::capture::{self, CaptureError, CaptureTarget, Cursor};
use rusqlite::Connection;
use schemas::campaign::{SubjectKind, VariantFile};
use schemas::event::{Event, EventData, Producer, Timestamp};
use schemas::log::{EventFilter, EventLog};
use testkit::TemporaryNats;
use tokio_util::sync::CancellationToken;

mod operator_db;
use operator_db::{create_db, entry, prepared_db, resolve, schema, session, ticket, variants_of};

const CAMPAIGN: &str = "capture-test";
const TRIAL: &str = "trial-1";

/// Injection of every trial here.
const INJECTED_AT: &str = "2026-03-01T10:00:00Z";

fn target(path: &Path, zone: &str, variant: Option<VariantFile>) -> CaptureTarget {
    CaptureTarget {
        campaign_id: CAMPAIGN.to_string(),
        trial_id: TRIAL.to_string(),
        operator_db: path.to_path_buf(),
        subject: SubjectKind::Etcd,
        injected_at: Timestamp(INJECTED_AT.parse().unwrap()),
        operator_timezone: zone.to_string(),
        variant,
    }
}

fn careful_variant() -> VariantFile {
    VariantFile {
        name: "careful".to_string(),
        model: Some("model-a".to_string()),
        system_prompt: Some("Be careful.".to_string()),
        tools_config: serde_json::json!({"shell": {"timeout": 30}})
            .as_object()
            .unwrap()
            .clone(),
        command: None,
    }
}

/// One line per event: its type, when it occurred, and its data's telling fields.
fn render(events: &[Event]) -> String {
    let mut out = String::new();
    for event in events {
        let line = match &event.data {
            EventData::TicketOpened(t) => format!(
                "ticket={} subject={:?} first_seen_at={} message={:?}",
                t.ticket_id, t.subject, t.first_seen_at, t.message
            ),
            EventData::AgentSessionStarted(s) => {
                format!(
                    "session={} ticket={:?} started_at={}",
                    s.session_id, s.ticket_id, s.started_at
                )
            }
            EventData::AgentLogRecorded(e) => format!(
                "entry={} session={} {:?} content={:?} tool={:?} params={} raw={:?} exit={:?} at={}",
                e.entry_id,
                e.session_id,
                e.entry_type,
                e.content,
                e.tool_name,
                e.tool_params
                    .as_ref()
                    .map_or("-".to_string(), |p| p.to_string()),
                e.tool_params_raw,
                e.exit_code,
                e.timestamp
            ),
            EventData::TicketResolved(r) => {
                format!("ticket={} resolved_at={}", r.ticket_id, r.resolved_at)
            }
            other => format!("{other:?}"),
        };
        out.push_str(&format!(
            "{} {} {line}\n",
            event.occurred_at,
            event.event_type()
        ));
    }
    out
}

fn check_events(events: &[Event], expect: Expect) {
    expect.assert_eq(&render(events));
}

fn producer() -> Producer {
    Producer {
        stage: "capture".to_string(),
        host: "test".to_string(),
    }
}

async fn start_log() -> (TemporaryNats, EventLog) {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    (nats, log)
}

async fn trial_events(log: &EventLog) -> Vec<Event> {
    let filter = EventFilter {
        campaign_id: Some(CAMPAIGN.to_string()),
        trial_id: Some(TRIAL.to_string()),
        event_type: None,
    };
    let stream = log.read(&filter, false).await.unwrap();
    stream
        .map(|stored| stored.unwrap().event.unwrap())
        .collect()
        .await
}

/// Waits until the log holds `n` events of the trial (a wait for progress, not a timing check).
async fn wait_for_events(log: &EventLog, n: usize) -> Vec<Event> {
    for _ in 0..400 {
        let events = trial_events(log).await;
        if events.len() >= n {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the log never held {n} events");
}

#[test]
fn a_prepared_db_becomes_the_trial_events_and_the_variant_lands_in_its_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.db");
    let db = prepared_db(&path);
    let target = target(&path, "UTC", Some(careful_variant()));
    let mut cursor = Cursor::default();
    let events = capture::poll(&target, &mut cursor, &producer()).unwrap();
    check_events(
        &events,
        expect![[r#"
            2026-03-01T09:59:59.700000Z TicketOpened ticket=3 subject=Some("etcd") first_seen_at=2026-03-01T09:59:59.700000Z message=Some("member 2 is down")
            2026-03-01T10:00:05.000000Z AgentSessionStarted session=s-trial ticket=Some(3) started_at=2026-03-01T10:00:05.000000Z
            2026-03-01T10:00:06.000000Z AgentLogRecorded entry=2 session=s-trial Reasoning content=Some("member etcd-2 is down\n") tool=None params=- raw=None exit=None at=2026-03-01T10:00:06.000000Z
            2026-03-01T10:00:07.000000Z AgentLogRecorded entry=3 session=s-trial ToolCall content=Some("") tool=Some("shell") params={"command":"etcdctl endpoint status","reasoning":"look"} raw=None exit=None at=2026-03-01T10:00:07.000000Z
            2026-03-01T10:00:08.000000Z AgentLogRecorded entry=4 session=s-trial ToolResult content=Some("etcd-2: connection refused") tool=None params=- raw=None exit=Some(1) at=2026-03-01T10:00:08.000000Z
            2026-03-01T10:00:09.000000Z AgentLogRecorded entry=5 session=s-trial ToolCall content=Some("") tool=Some("shell") params=- raw=Some("{\"command\": \"systemctl restart etcd") exit=None at=2026-03-01T10:00:09.000000Z
            2026-03-01T10:00:10.000000Z AgentLogRecorded entry=6 session=s-trial ToolResult content=Some("") tool=None params=- raw=None exit=Some(0) at=2026-03-01T10:00:10.000000Z
            2026-03-01T10:00:30.000000Z TicketResolved ticket=3 resolved_at=2026-03-01T10:00:30.000000Z
        "#]],
    );
    for event in &events {
        assert_eq!(event.campaign_id, CAMPAIGN);
        assert_eq!(event.trial_id.as_deref(), Some(TRIAL));
    }
    // Nothing new: nothing more; a fresh cursor gives the same ids.
    assert!(
        capture::poll(&target, &mut cursor, &producer())
            .unwrap()
            .is_empty()
    );
    let again = capture::poll(&target, &mut Cursor::default(), &producer()).unwrap();
    assert_eq!(
        again.iter().map(|e| e.id).collect::<Vec<_>>(),
        events.iter().map(|e| e.id).collect::<Vec<_>>()
    );

    // The variant is in the trial's ticket only.
    let variants = variants_of(&db);
    assert_eq!(
        variants,
        vec![
            (1, None, None, None),
            (2, None, None, None),
            (
                3,
                Some("model-a".to_string()),
                Some("Be careful.".to_string()),
                Some(r#"{"shell":{"timeout":30}}"#.to_string())
            ),
            (4, None, None, None),
        ]
    );
}

#[test]
fn zone_less_times_are_read_in_the_operator_zone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.db");
    let db = create_db(&path, false);
    // 11:59:00 at +02:00 is 09:59:00Z, before the injection: not the trial's (in UTC it would be).
    ticket(&db, "2026-03-01 11:59:00", None);
    // 12:00:30 at +02:00 is 10:00:30Z.
    let trial = ticket(&db, "2026-03-01T12:00:30.250", None);
    session(&db, "s", trial, "2026-03-01T10:00:31+00:00");
    entry(
        &db,
        "s",
        "reasoning",
        "zoned",
        None,
        None,
        "2026-03-01T12:00:32+0200",
    );
    let events = capture::poll(
        &target(&path, "+02:00", None),
        &mut Cursor::default(),
        &producer(),
    )
    .unwrap();
    check_events(
        &events,
        expect![[r#"
            2026-03-01T10:00:30.250000Z TicketOpened ticket=2 subject=None first_seen_at=2026-03-01T10:00:30.250000Z message=Some("member 2 is down")
            2026-03-01T10:00:31.000000Z AgentSessionStarted session=s ticket=Some(2) started_at=2026-03-01T10:00:31.000000Z
            2026-03-01T10:00:32.000000Z AgentLogRecorded entry=1 session=s Reasoning content=Some("zoned") tool=None params=- raw=None exit=None at=2026-03-01T10:00:32.000000Z
        "#]],
    );

    // In UTC the first ticket counts.
    let events = capture::poll(
        &target(&path, "UTC", None),
        &mut Cursor::default(),
        &producer(),
    )
    .unwrap();
    assert!(matches!(&events[0].data, EventData::TicketOpened(t) if t.ticket_id == 1));

    // An IANA zone, from the system's zone files: Berlin is +01:00 in March 2026 (until the
    // 29th), +02:00 in July.
    if Path::new("/usr/share/zoneinfo/Europe/Berlin").exists()
        && std::env::var_os("TZDIR").is_none()
    {
        let zone = capture::OperatorZone::parse("Europe/Berlin").unwrap();
        let local = |text: &str| zone.to_utc(text.parse().unwrap()).to_string();
        assert_eq!(local("2026-03-01T12:00:00"), "2026-03-01T11:00:00.000000Z");
        assert_eq!(local("2026-07-01T12:00:00"), "2026-07-01T10:00:00.000000Z");
        // Clocks back: the earlier instant; clocks forward: the offset before the gap.
        assert_eq!(local("2026-10-25T02:30:00"), "2026-10-25T00:30:00.000000Z");
        assert_eq!(local("2026-03-29T02:30:00"), "2026-03-29T01:30:00.000000Z");
        // Beyond the file's transitions, its footer rule applies.
        assert_eq!(local("2090-07-01T12:00:00"), "2090-07-01T10:00:00.000000Z");
        assert_eq!(local("2090-12-01T12:00:00"), "2090-12-01T11:00:00.000000Z");
    }
    let error = capture::OperatorZone::parse("Mars/Olympus_Mons")
        .unwrap_err()
        .to_string();
    assert!(
        error
            .starts_with("operator time zone \"Mars/Olympus_Mons\" is not supported: no zone file"),
        "{error}"
    );
    let error = capture::OperatorZone::parse("+25:00")
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "operator time zone \"+25:00\" is not supported: expected an offset like +02:00, -0530 or +2"
    );
}

#[tokio::test]
async fn a_restarted_capture_publishes_no_duplicates_and_no_gaps() {
    let (_nats, log) = start_log().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.db");
    let db = create_db(&path, true);
    let trial = ticket(&db, "2026-03-01T10:00:02Z", Some("etcd"));
    session(&db, "s", trial, "2026-03-01T10:00:03Z");
    entry(
        &db,
        "s",
        "reasoning",
        "one",
        None,
        None,
        "2026-03-01T10:00:04Z",
    );
    entry(
        &db,
        "s",
        "reasoning",
        "two",
        None,
        None,
        "2026-03-01T10:00:05Z",
    );

    // First capture: reads the first half, then stops.
    let stop = CancellationToken::new();
    let first = tokio::spawn({
        let (log, target, stop) = (log.clone(), target(&path, "UTC", None), stop.clone());
        async move { capture::follow(&log, target, Duration::from_secs(10), stop).await }
    });
    wait_for_events(&log, 4).await;
    stop.cancel();
    let report = first.await.unwrap().unwrap();
    assert_eq!(
        (report.n_published, report.n_duplicates, report.ticket_id),
        (4, 0, Some(1))
    );

    // The operator goes on; a second capture (fresh process, fresh cursor) picks up from the log.
    entry(
        &db,
        "s",
        "tool_call",
        "",
        Some(("shell", r#"{"command": "etcdctl member list"}"#)),
        None,
        "2026-03-01T10:00:06Z",
    );
    entry(
        &db,
        "s",
        "tool_result",
        "3 members",
        None,
        Some(0),
        "2026-03-01T10:00:07Z",
    );
    resolve(&db, trial, "2026-03-01T10:00:08Z");
    let stop = CancellationToken::new();
    stop.cancel();
    let report = capture::follow(
        &log,
        target(&path, "UTC", None),
        Duration::from_secs(10),
        stop,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            report.n_already_in_log,
            report.n_published,
            report.n_duplicates,
            report.resolved
        ),
        (4, 3, 0, true)
    );

    // Even a capture that does not look at the log (a fresh cursor) adds nothing: its ids are
    // the same, so the stream drops them.
    let events = capture::poll(
        &target(&path, "UTC", None),
        &mut Cursor::default(),
        &producer(),
    )
    .unwrap();
    let summary = log.publish_all(events, 16, |_| {}).await.unwrap();
    assert_eq!((summary.stored, summary.duplicates), (0, 7));

    check_events(
        &trial_events(&log).await,
        expect![[r#"
            2026-03-01T10:00:02.000000Z TicketOpened ticket=1 subject=Some("etcd") first_seen_at=2026-03-01T10:00:02.000000Z message=Some("member 2 is down")
            2026-03-01T10:00:03.000000Z AgentSessionStarted session=s ticket=Some(1) started_at=2026-03-01T10:00:03.000000Z
            2026-03-01T10:00:04.000000Z AgentLogRecorded entry=1 session=s Reasoning content=Some("one") tool=None params=- raw=None exit=None at=2026-03-01T10:00:04.000000Z
            2026-03-01T10:00:05.000000Z AgentLogRecorded entry=2 session=s Reasoning content=Some("two") tool=None params=- raw=None exit=None at=2026-03-01T10:00:05.000000Z
            2026-03-01T10:00:06.000000Z AgentLogRecorded entry=3 session=s ToolCall content=Some("") tool=Some("shell") params={"command":"etcdctl member list"} raw=None exit=None at=2026-03-01T10:00:06.000000Z
            2026-03-01T10:00:07.000000Z AgentLogRecorded entry=4 session=s ToolResult content=Some("3 members") tool=None params=- raw=None exit=Some(0) at=2026-03-01T10:00:07.000000Z
            2026-03-01T10:00:08.000000Z TicketResolved ticket=1 resolved_at=2026-03-01T10:00:08.000000Z
        "#]],
    );
}

#[tokio::test]
async fn follow_captures_every_row_an_operator_writes_meanwhile() {
    let (_nats, log) = start_log().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.db");
    // The file does not exist yet when the capture starts: it waits for it.
    let stop = CancellationToken::new();
    let following = tokio::spawn({
        let (log, target, stop) = (
            log.clone(),
            target(&path, "UTC", Some(careful_variant())),
            stop.clone(),
        );
        async move { capture::follow(&log, target, Duration::from_secs(30), stop).await }
    });
    const N_ENTRIES: i64 = 200;
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let db = create_db(&writer_path, true);
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        let trial = ticket(&db, "2026-03-01T10:00:01Z", Some(r#"{"subject": "etcd"}"#));
        session(&db, "s", trial, "2026-03-01T10:00:02Z");
        for index in 0..N_ENTRIES {
            entry(
                &db,
                "s",
                "reasoning",
                &format!("step {index}"),
                None,
                None,
                "2026-03-01T10:00:03Z",
            );
            std::thread::sleep(Duration::from_millis(3));
        }
        resolve(&db, trial, "2026-03-01T10:01:00Z");
        db
    });
    let db = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    stop.cancel();
    let report = following.await.unwrap().unwrap();
    assert_eq!(report.n_published, 3 + N_ENTRIES as u64);
    assert!(report.resolved);

    let events = trial_events(&log).await;
    let entry_ids: Vec<i64> = events
        .iter()
        .filter_map(|event| match &event.data {
            EventData::AgentLogRecorded(entry) => Some(entry.entry_id),
            _ => None,
        })
        .collect();
    assert_eq!(entry_ids, (1..=N_ENTRIES).collect::<Vec<_>>());
    assert_eq!(events.first().unwrap().event_type(), "TicketOpened");
    assert_eq!(events.last().unwrap().event_type(), "TicketResolved");
    // The variant was written while the operator was writing too.
    assert_eq!(variants_of(&db)[0].1.as_deref(), Some("model-a"));
}

fn error_text(error: CaptureError, path: &Path) -> String {
    error
        .to_string()
        .replace(&path.display().to_string(), "$DB")
}

#[tokio::test]
async fn bad_files_get_clear_errors() {
    let (_nats, log) = start_log().await;
    let dir = tempfile::tempdir().unwrap();

    // A missing file: waited for, then named.
    let missing = dir.path().join("never.db");
    let error = capture::follow(
        &log,
        target(&missing, "UTC", None),
        Duration::from_millis(300),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    expect!["operator.db $DB did not appear within 0.3s"].assert_eq(&error_text(error, &missing));

    // A missing table: the capture waits for the schema as long as for the file, then names it.
    let no_entries = dir.path().join("no_entries.db");
    let db = Connection::open(&no_entries).unwrap();
    db.execute_batch(&schema().replace(
        "CREATE TABLE IF NOT EXISTS agent_log_entries",
        "CREATE TABLE agent_log",
    ))
    .unwrap();
    let error = capture::follow(
        &log,
        target(&no_entries, "UTC", None),
        Duration::from_millis(300),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    expect![[r#"$DB has no table "agent_log_entries" (see the operator.db contract)"#]]
        .assert_eq(&error_text(error, &no_entries));

    // A missing column.
    let no_context = dir.path().join("no_context.db");
    let db = Connection::open(&no_context).unwrap();
    db.execute_batch(&schema().replace("subject_context TEXT,", ""))
        .unwrap();
    let error = capture::poll(
        &target(&no_context, "UTC", None),
        &mut Cursor::default(),
        &producer(),
    )
    .unwrap_err();
    expect![[
        r#"$DB: table tickets has no column "subject_context" (see the operator.db contract)"#
    ]]
    .assert_eq(&error_text(error, &no_context));

    // A missing variant column, only when there is a variant to write.
    let no_variant = dir.path().join("no_variant.db");
    let db = Connection::open(&no_variant).unwrap();
    db.execute_batch(&schema().replace("variant_tools_config TEXT,", ""))
        .unwrap();
    assert!(
        capture::poll(
            &target(&no_variant, "UTC", None),
            &mut Cursor::default(),
            &producer()
        )
        .is_ok()
    );
    let error = capture::poll(
        &target(&no_variant, "UTC", Some(careful_variant())),
        &mut Cursor::default(),
        &producer(),
    )
    .unwrap_err();
    expect![[
        r#"$DB: table tickets has no column "variant_tools_config" (see the operator.db contract)"#
    ]]
    .assert_eq(&error_text(error, &no_variant));

    // An unreadable time names its row and column.
    let bad_time = dir.path().join("bad_time.db");
    let db = create_db(&bad_time, false);
    ticket(&db, "yesterday", Some("etcd"));
    let error = capture::poll(
        &target(&bad_time, "UTC", None),
        &mut Cursor::default(),
        &producer(),
    )
    .unwrap_err();
    expect![[r#"$DB: tickets row 1, column first_seen_at: unreadable time "yesterday""#]]
        .assert_eq(&error_text(error, &bad_time));
}

#[tokio::test]
async fn a_corrupt_file_stops_the_capture_and_keeps_what_was_published() {
    let (_nats, log) = start_log().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.db");
    let db = prepared_db(&path);
    drop(db);
    let stop = CancellationToken::new();
    let following = tokio::spawn({
        let (log, target) = (log.clone(), target(&path, "UTC", None));
        async move { capture::follow(&log, target, Duration::from_secs(10), stop).await }
    });
    wait_for_events(&log, 8).await;
    // Overwrite the header ("SQLite format 3\0").
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..16].copy_from_slice(b"garbage garbage!");
    std::fs::write(&path, bytes).unwrap();
    let error = following.await.unwrap().unwrap_err();
    assert!(matches!(error, CaptureError::Corrupt { .. }), "{error}");
    expect!["$DB is corrupt or not an sqlite database (file is not a database); the events already published stay in the log"]
        .assert_eq(&error_text(error, &path));
    assert_eq!(trial_events(&log).await.len(), 8);
}

/// A row too large for one NATS message (a 3 MB tool output) is published cut, with a marker
/// saying how long it was, and the rows after it follow: the capture never stalls on it.
#[tokio::test]
async fn a_row_over_the_message_limit_is_published_cut_and_the_capture_goes_on() {
    let (_nats, log) = start_log().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.db");
    let db = create_db(&path, false);
    let trial = ticket(&db, "2026-03-01T10:00:01Z", Some(r#"{"subject": "etcd"}"#));
    session(&db, "s", trial, "2026-03-01T10:00:02Z");
    let huge = "line of output\n".repeat(200_000);
    entry(
        &db,
        "s",
        "tool_result",
        &huge,
        None,
        Some(0),
        "2026-03-01T10:00:03Z",
    );
    entry(
        &db,
        "s",
        "reasoning",
        "after",
        None,
        None,
        "2026-03-01T10:00:04Z",
    );
    resolve(&db, trial, "2026-03-01T10:01:00Z");

    let stop = CancellationToken::new();
    stop.cancel();
    let report = capture::follow(
        &log,
        target(&path, "UTC", None),
        Duration::from_secs(5),
        stop,
    )
    .await
    .unwrap();
    assert_eq!(report.n_published, 5);
    let contents: Vec<String> = trial_events(&log)
        .await
        .into_iter()
        .filter_map(|event| match event.data {
            EventData::AgentLogRecorded(entry) => entry.content,
            _ => None,
        })
        .collect();
    assert_eq!(contents.len(), 2);
    assert!(contents[0].len() < schemas::fit::MAX_CAPTURED_EVENT_BYTES);
    assert!(huge.starts_with(contents[0].split('…').next().unwrap()));
    assert!(
        contents[0].ends_with(&format!(
            "…[truncated by eval: {} bytes in all]",
            huge.len()
        )),
        "{}",
        &contents[0][contents[0].len() - 80..]
    );
    assert_eq!(contents[1], "after");
}
