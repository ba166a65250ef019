//! The capture stage against a real `nats-server` and real operator.db files written by a fake
//! operator: it follows a running trial beside the worker's own capture (no event twice), stops at
//! the trial's end, a restarted stage publishes neither duplicates nor gaps, and a trial already
//! over when the stage starts is caught up once and not followed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use futures::StreamExt;
use ingest::campaign_files::{self, PreparedCampaign};
use ingest::capture::stage::{self, CaptureOutcome, StageConfig, StageReport, TrialCaptured};
use ingest::capture::{self, CaptureReport, CaptureTarget};
use schemas::event::{
    ChaosInjected, Event, EventData, OperatorCaptureFinished, OperatorDbStatus, Producer,
    Timestamp, TrialFinished, TrialStarted, TrialStatus,
};
use schemas::log::{EventFilter, EventLog};
use testkit::TemporaryNats;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

mod operator_db;
use operator_db::{create_db, entry, prepared_db, resolve, session, ticket, variants_of};

const CAMPAIGN: &str = "capture-stage-test";
/// When the fake worker injects (the fake operator's rows are around it).
const INJECTED_AT: &str = "2026-03-01T10:00:00Z";
/// The events the capture publishes.
const CAPTURE_TYPES: &[&str] = &[
    "TicketOpened",
    "AgentSessionStarted",
    "AgentLogRecorded",
    "TicketResolved",
];
/// Generous: only a hung stage takes this long.
const DEADLINE: Duration = Duration::from_secs(120);

struct Setup {
    _nats: TemporaryNats,
    log: EventLog,
    dir: tempfile::TempDir,
    campaign: PreparedCampaign,
}

/// A server, and a campaign of `n_trials` trials of the `careful` variant, published.
async fn setup(n_trials: u32) -> Setup {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let variants = dir.path().join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    std::fs::write(
        variants.join("careful.yaml"),
        "name: careful\nmodel: model-a\nsystem_prompt: Be careful.\n",
    )
    .unwrap();
    let file = dir.path().join("campaign.yaml");
    std::fs::write(
        &file,
        format!(
            "name: capture stage test\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\n\
             trials_per_combination: {n_trials}\nvariant: careful\n"
        ),
    )
    .unwrap();
    let campaign = campaign_files::prepare(&file, None, Some(CAMPAIGN)).unwrap();
    ingest::publish::publish(&log, &campaign, 16, |_| {})
        .await
        .unwrap();
    Setup {
        _nats: nats,
        log,
        dir,
        campaign,
    }
}

impl Setup {
    fn trial_id(&self, trial_index: u32) -> String {
        schemas::ids::trial_id(CAMPAIGN, trial_index)
    }

    /// Where the worker keeps a trial's operator.db (absolute, as the worker names it).
    fn db_path(&self, trial_id: &str) -> PathBuf {
        let dir = self.dir.path().join("trials").join(trial_id);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("operator.db")
    }

    /// What the worker publishes for a trial up to its injection.
    async fn inject(&self, trial_id: &str, operator_db: Option<&Path>) -> Event {
        self.worker_publishes(
            trial_id,
            TrialStarted {
                worker: "w".to_string(),
                attempt: 1,
            },
        )
        .await;
        let mut injected = Event::new(
            &worker(),
            CAMPAIGN,
            Some(trial_id),
            ChaosInjected {
                worker: "w".to_string(),
                chaos: self.campaign.trials[0].chaos.clone(),
                target: Some("2".to_string()),
                cleanup: serde_json::json!({}).into(),
                operator_db: operator_db.map(|path| path.display().to_string()),
                operator_host: operator_db.map(|_| schemas::event::host_name()),
            },
        );
        injected.occurred_at = injected_at();
        self.log.publish(&injected).await.unwrap();
        injected
    }

    async fn finish(&self, trial_id: &str) {
        self.worker_publishes(
            trial_id,
            TrialFinished {
                status: TrialStatus::Succeeded,
                reason: None,
            },
        )
        .await;
    }

    async fn worker_publishes(&self, trial_id: &str, data: impl Into<EventData>) {
        let event = Event::new(&worker(), CAMPAIGN, Some(trial_id), data);
        self.log.publish(&event).await.unwrap();
    }

    /// The capture target the worker builds for the trial's own capture.
    fn worker_target(&self, trial_id: &str, operator_db: &Path) -> CaptureTarget {
        CaptureTarget {
            campaign_id: CAMPAIGN.to_string(),
            trial_id: trial_id.to_string(),
            operator_db: operator_db.to_path_buf(),
            subject: self.campaign.trials[0].subject,
            injected_at: injected_at(),
            operator_timezone: self.campaign.campaign.operator_timezone.clone(),
            variant: Some(self.campaign.variants[0].variant.clone()),
        }
    }

    /// The trial's capture events in log order.
    async fn captured(&self, trial_id: &str) -> Vec<Event> {
        let filter = EventFilter {
            campaign_id: Some(CAMPAIGN.to_string()),
            trial_id: Some(trial_id.to_string()),
            event_type: None,
        };
        let stream = self.log.read(&filter, false).await.unwrap();
        stream
            .map(|stored| stored.unwrap().event.unwrap())
            .filter(|event| std::future::ready(CAPTURE_TYPES.contains(&event.event_type())))
            .collect()
            .await
    }

    /// Waits until the trial's capture events satisfy `done` (a wait for progress, not a timing
    /// check).
    async fn wait_captured(&self, trial_id: &str, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let events = self.captured(trial_id).await;
            if done(&events) {
                return events;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the capture never got there; the log holds:\n{}",
                types(&events).join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The capture stage's consumer: (messages not yet delivered, delivered and not acknowledged).
    async fn consumer_backlog(&self) -> (u64, usize) {
        let stream = self.log.stream().await.unwrap();
        let mut consumer = stream
            .get_consumer::<pull::Config>(&stage::consumer_name(&schemas::event::host_name()))
            .await
            .unwrap();
        let info = consumer.info().await.unwrap();
        (info.num_pending, info.num_ack_pending)
    }

    /// Waits until the stage's consumer has delivered and seen acknowledged every injection.
    async fn wait_all_acknowledged(&self) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let backlog = self.consumer_backlog().await;
            if backlog == (0, 0) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "injections left (pending, unacknowledged): {backlog:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn worker() -> Producer {
    Producer {
        stage: "worker".to_string(),
        host: "test".to_string(),
    }
}

fn injected_at() -> Timestamp {
    Timestamp(INJECTED_AT.parse().unwrap())
}

fn types(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|event| event.event_type().to_string())
        .collect()
}

fn entry_ids(events: &[Event]) -> Vec<i64> {
    events
        .iter()
        .filter_map(|event| match &event.data {
            EventData::AgentLogRecorded(entry) => Some(entry.entry_id),
            _ => None,
        })
        .collect()
}

fn assert_no_event_twice(events: &[Event]) {
    let ids: HashSet<_> = events.iter().map(|event| event.id).collect();
    assert_eq!(ids.len(), events.len(), "{:?}", types(events));
    let rows: HashSet<String> = events
        .iter()
        .map(|event| match &event.data {
            EventData::TicketOpened(ticket) => format!("ticket {}", ticket.ticket_id),
            EventData::AgentSessionStarted(session) => format!("session {}", session.session_id),
            EventData::AgentLogRecorded(entry) => format!("entry {}", entry.entry_id),
            EventData::TicketResolved(resolved) => format!("resolved {}", resolved.ticket_id),
            other => panic!("not a capture event: {other:?}"),
        })
        .collect();
    assert_eq!(rows.len(), events.len(), "{:?}", types(events));
}

/// A capture stage running in this process, and what it reports.
struct RunningStage {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<ingest::capture::Result<()>>,
    reports: UnboundedReceiver<StageReport>,
}

/// A stage that may open the operator.db files of every test (their temporary directories).
fn start_stage(log: &EventLog) -> RunningStage {
    start_stage_allowing(log, vec![std::env::temp_dir()])
}

fn start_stage_allowing(log: &EventLog, allowed_dirs: Vec<PathBuf>) -> RunningStage {
    let (sender, reports) = tokio::sync::mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let config = StageConfig {
        reports: Some(sender),
        allowed_dirs,
        ..StageConfig::default()
    };
    let task = tokio::spawn(stage::run(log.clone(), config, stop.clone()));
    RunningStage {
        stop,
        task,
        reports,
    }
}

impl RunningStage {
    /// The next trial whose capture ended.
    async fn next_end(&mut self) -> TrialCaptured {
        loop {
            let report = tokio::time::timeout(DEADLINE, self.reports.recv())
                .await
                .expect("no capture ended")
                .expect("the stage stopped");
            if let StageReport::Ended(captured) = report {
                return captured;
            }
        }
    }

    /// Stops the stage; returns the trials whose capture ended meanwhile.
    async fn stop(mut self) -> Vec<TrialCaptured> {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        let mut ended = Vec::new();
        while let Some(report) = self.reports.recv().await {
            if let StageReport::Ended(captured) = report {
                ended.push(captured);
            }
        }
        ended
    }
}

fn done(captured: &TrialCaptured) -> &CaptureReport {
    match &captured.outcome {
        CaptureOutcome::Done(report) => report,
        other => panic!("the capture did not end with the trial: {other:?}"),
    }
}

#[tokio::test]
async fn the_stage_follows_a_running_trial_beside_the_worker_and_stops_at_its_end() {
    let setup = setup(1).await;
    let trial_id = setup.trial_id(0);
    let path = setup.db_path(&trial_id);
    let mut running = start_stage(&setup.log);
    // The file does not exist yet at the injection: the operator creates it later.
    setup.inject(&trial_id, Some(&path)).await;
    // The worker follows the same file meanwhile, as it does for its trials.
    let worker_stop = CancellationToken::new();
    let worker_capture = tokio::spawn({
        let (log, target, stop) = (
            setup.log.clone(),
            setup.worker_target(&trial_id, &path),
            worker_stop.clone(),
        );
        async move { capture::follow(&log, target, DEADLINE, stop).await }
    });

    const N_ENTRIES: i64 = 50;
    let db = tokio::task::spawn_blocking({
        let path = path.clone();
        move || {
            let db = create_db(&path, true);
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
            }
            db
        }
    })
    .await
    .unwrap();
    setup
        .wait_captured(&trial_id, |events| {
            entry_ids(events).len() == N_ENTRIES as usize
        })
        .await;
    resolve(&db, 1, "2026-03-01T10:01:00Z");
    setup
        .wait_captured(&trial_id, |events| {
            types(events).iter().any(|t| t == "TicketResolved")
        })
        .await;

    setup.finish(&trial_id).await;
    let captured = running.next_end().await;
    assert_eq!(captured.trial_id, trial_id);
    assert_eq!(captured.operator_db, path);
    assert!(!captured.caught_up);
    let report = done(&captured);
    assert_eq!(report.ticket_id, Some(1));
    assert!(report.resolved);
    worker_stop.cancel();
    let worker_report = worker_capture.await.unwrap().unwrap();
    // Between them, each row was stored once: what one published, the other found there.
    let n_rows = 1 + 1 + N_ENTRIES as u64 + 1;
    assert_eq!(
        report.n_published + worker_report.n_published,
        n_rows,
        "stage {report:?}, worker {worker_report:?}"
    );

    // A row written after the trial's end is not captured: the stage follows the trial no more.
    entry(
        &db,
        "s",
        "reasoning",
        "after the end",
        None,
        None,
        "2026-03-01T10:02:00Z",
    );
    assert_eq!(running.stop().await, Vec::new());
    let events = setup.captured(&trial_id).await;
    assert_eq!(events.len() as u64, n_rows);
    assert_no_event_twice(&events);
    assert_eq!(entry_ids(&events), (1..=N_ENTRIES).collect::<Vec<_>>());
    setup.wait_all_acknowledged().await;
    // The variant reached the trial's ticket.
    assert_eq!(variants_of(&db)[0].1.as_deref(), Some("model-a"));
}

#[tokio::test]
async fn a_restarted_stage_publishes_no_duplicates_and_no_gaps() {
    let setup = setup(1).await;
    let trial_id = setup.trial_id(0);
    let path = setup.db_path(&trial_id);
    let db = prepared_db(&path);
    setup.inject(&trial_id, Some(&path)).await;

    let first = start_stage(&setup.log);
    let before = setup
        .wait_captured(&trial_id, |events| {
            types(events).iter().any(|t| t == "TicketResolved")
        })
        .await;
    // Stopped while the trial runs: the injection goes back to the log for the next stage.
    let ended = first.stop().await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    let CaptureOutcome::HandedBack(report) = &ended[0].outcome else {
        panic!("not handed back: {ended:?}");
    };
    assert_eq!(report.n_published, before.len() as u64);

    // The operator goes on writing while no stage runs.
    let last_entry = *entry_ids(&before).last().unwrap();
    for step in ["rechecking", "done"] {
        entry(
            &db,
            "s-trial",
            "reasoning",
            step,
            None,
            None,
            "2026-03-01T10:00:31Z",
        );
    }
    let mut second = start_stage(&setup.log);
    setup
        .wait_captured(&trial_id, |events| events.len() == before.len() + 2)
        .await;
    setup.finish(&trial_id).await;
    let captured = second.next_end().await;
    let report = done(&captured);
    assert_eq!(report.n_already_in_log, before.len() as u64);
    assert_eq!(report.n_published, 2);
    assert_eq!(report.n_duplicates, 0);
    second.stop().await;

    let events = setup.captured(&trial_id).await;
    assert_eq!(events.len(), before.len() + 2);
    assert_no_event_twice(&events);
    let entries = entry_ids(&events);
    let new_entries = &entries[entries.len() - 2..];
    assert!(new_entries[0] > last_entry, "{entries:?}");
    assert_eq!(new_entries[1], new_entries[0] + 1, "{entries:?}");
    setup.wait_all_acknowledged().await;
}

#[tokio::test]
async fn a_trial_over_before_the_stage_starts_is_caught_up_once() {
    let setup = setup(2).await;
    let (over, without_operator) = (setup.trial_id(0), setup.trial_id(1));
    let path = setup.db_path(&over);
    let _db = prepared_db(&path);
    setup.inject(&over, Some(&path)).await;
    setup.finish(&over).await;
    // A trial without an operator: its injection names no operator.db.
    setup.inject(&without_operator, None).await;

    let mut running = start_stage(&setup.log);
    let captured = running.next_end().await;
    assert_eq!(captured.trial_id, over);
    assert!(captured.caught_up);
    let report = done(&captured);
    assert!(report.resolved);
    assert_eq!(report.n_polls, 1);

    // Both injections are acknowledged: nothing is followed any more.
    setup.wait_all_acknowledged().await;
    assert_eq!(running.stop().await, Vec::new());
    let events = setup.captured(&over).await;
    assert_eq!(events.len() as u64, report.n_published);
    assert_no_event_twice(&events);
    assert_eq!(setup.captured(&without_operator).await.len(), 0);
}

/// The trial's `OperatorCaptureFinished`, when the log holds one.
async fn capture_end(setup: &Setup, trial_id: &str) -> Option<OperatorCaptureFinished> {
    let filter = EventFilter {
        campaign_id: Some(CAMPAIGN.to_string()),
        trial_id: Some(trial_id.to_string()),
        event_type: Some("OperatorCaptureFinished".to_string()),
    };
    let events: Vec<Event> = setup
        .log
        .read(&filter, false)
        .await
        .unwrap()
        .map(|stored| stored.unwrap().event.unwrap())
        .collect()
        .await;
    events.into_iter().find_map(|event| match event.data {
        EventData::OperatorCaptureFinished(end) => Some(end),
        _ => None,
    })
}

/// Every capture ends with `OperatorCaptureFinished`, which scoring waits for: a finished trial's
/// carries its ticket and session as the operator last wrote them (variant included), and a
/// file that cannot be read ends its capture too, saying why, so no trial waits forever.
#[tokio::test]
async fn each_capture_ends_with_what_the_file_held_or_why_it_could_not_be_read() {
    let setup = setup(2).await;
    let (read, corrupt) = (setup.trial_id(0), setup.trial_id(1));
    let path = setup.db_path(&read);
    let _db = prepared_db(&path);
    let injected = setup.inject(&read, Some(&path)).await;
    setup.finish(&read).await;
    let garbage = setup.db_path(&corrupt);
    std::fs::write(&garbage, b"this is not an sqlite database, not even close").unwrap();
    setup.inject(&corrupt, Some(&garbage)).await;

    let mut running = start_stage(&setup.log);
    let mut ended = [running.next_end().await, running.next_end().await].map(|end| end.trial_id);
    ended.sort();
    let mut expected = [read.clone(), corrupt.clone()];
    expected.sort();
    assert_eq!(ended, expected);
    setup.wait_all_acknowledged().await;
    running.stop().await;

    let end = capture_end(&setup, &read)
        .await
        .expect("the read trial's end");
    assert_eq!(end.injection_id, injected.id);
    assert_eq!(end.status, OperatorDbStatus::Read);
    let ticket = end.ticket.expect("the trial's ticket");
    assert_eq!(
        ticket["subject_context"],
        r#"{"subject": "etcd", "member": "etcd-2"}"#
    );
    assert_eq!(
        ticket["variant_model"],
        serde_json::json!(setup.campaign.variants[0].variant.model)
    );
    assert_eq!(end.sessions.len(), 1);
    assert_eq!(end.sessions[0]["session_id"], "s-trial");
    let entries = setup
        .captured(&read)
        .await
        .into_iter()
        .filter(|event| event.event_type() == "AgentLogRecorded")
        .count();
    assert_eq!(end.n_log_entries, entries as u64);

    let end = capture_end(&setup, &corrupt)
        .await
        .expect("the corrupt file's end");
    assert_eq!(end.status, OperatorDbStatus::Unreadable);
    assert!(end.error.as_deref().unwrap().contains("corrupt"), "{end:?}");
    assert!(end.ticket.is_none());
}

/// An injection naming a file the stage may not open (another directory, a link out of its own,
/// a FIFO that would block the reader) ends its capture as `refused`: the file is neither read
/// nor written (the variant is not put into its ticket), and no reader hangs.
#[tokio::test]
async fn paths_outside_the_allowed_directories_are_refused_and_left_alone() {
    let setup = setup(3).await;
    let allowed = setup.dir.path().join("trials");
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("operator.db");
    let _db = prepared_db(&secret);
    let before = std::fs::read(&secret).unwrap();

    let (elsewhere, linked, fifo) = (setup.trial_id(0), setup.trial_id(1), setup.trial_id(2));
    setup.inject(&elsewhere, Some(&secret)).await;
    let link = setup.db_path(&linked);
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    setup.inject(&linked, Some(&link)).await;
    let pipe = setup.db_path(&fifo);
    nix::unistd::mkfifo(&pipe, nix::sys::stat::Mode::S_IRWXU).unwrap();
    setup.inject(&fifo, Some(&pipe)).await;
    for trial in [&elsewhere, &linked, &fifo] {
        setup.finish(trial).await;
    }

    let mut running = start_stage_allowing(&setup.log, vec![allowed]);
    for _ in 0..3 {
        running.next_end().await;
    }
    setup.wait_all_acknowledged().await;
    running.stop().await;

    for (trial, says) in [
        (&elsewhere, "outside the directories the capture may read"),
        (&linked, "a symbolic link"),
        (&fifo, "not a regular file"),
    ] {
        let end = capture_end(&setup, trial).await.expect("the capture's end");
        assert_eq!(end.status, OperatorDbStatus::Refused, "{end:?}");
        assert!(end.error.as_deref().unwrap().contains(says), "{end:?}");
        assert!(end.ticket.is_none() && end.size_bytes.is_none(), "{end:?}");
        assert!(
            setup.captured(trial).await.iter().all(|event| {
                !matches!(event.event_type(), "TicketOpened" | "AgentLogRecorded")
            })
        );
    }
    assert_eq!(
        std::fs::read(&secret).unwrap(),
        before,
        "the file was written"
    );
}
