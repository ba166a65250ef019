//! The capture stage (`evalctl capture`; `evalctl up` and `evalctl run` run it too): the only
//! reader of operator.db, and its only writer (the trial's variant, into the ticket). A durable
//! JetStream pull consumer of `ChaosInjected` events per host (`capture-<host>`) follows each
//! trial injected on its host (`operator_host`) with [`follow`](super::follow) until the trial is over, then
//! publishes `OperatorCaptureFinished`, which scoring waits for.
//!
//! What a trial's capture needs comes from the log: the operator.db from the injection's
//! `operator_db` (written by the worker; an injection without one has no operator and is
//! acknowledged at once), the injection time from its envelope, the subject and variant name
//! from the trial's `TrialRequested`, the operator's time zone and the variant itself from the
//! campaign's `CampaignPublished`. The trial is over at its `TrialFinished`, or when another
//! attempt of it starts (a `TrialStarted` or `ChaosInjected` after this injection). A trial that
//! is already over when its injection is delivered (a stage started late, or restarted) is read
//! once, to catch up, and not followed.
//!
//! Delivery, as in the scoring stage: an injection is acknowledged only after its trial is over,
//! the rows read last are published and `OperatorCaptureFinished` is durable; while the trial
//! runs, the stage tells JetStream it is still at work (AckProgress); on shutdown it reads once
//! more, publishes, and hands the injection back (NAK) to the next capture stage; a failure that
//! may pass (the log, a locked file) comes back after a pause, one that will not (a missing or
//! corrupt file, a bad row) ends the capture with `OperatorCaptureFinished` saying why and is
//! terminated. Every event id derives from the trial, the file and the row, so a second stage or
//! a restarted one publishes only duplicates, which JetStream drops; beyond its duplicate window
//! [`follow`](super::follow) starts from the cursor the log implies.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use futures::StreamExt;
use schemas::campaign::TrialSpec;
use schemas::event::{
    ChaosInjected, Event, EventData, OperatorCaptureFinished, OperatorDbStatus, Producer, Timestamp,
};
use schemas::log::{CampaignCache, Delivery, DurableSpec, EventFilter, EventLog, next_delivery};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::{CaptureError, CaptureReport, CaptureTarget, Result, follow_seeded};

/// The durable consumer of the capture stages on `host`: they compete for its trials, and the
/// stages of another host have a consumer of their own (each sees every injection and takes only
/// those whose operator.db is on its host).
pub fn consumer_name(host: &str) -> String {
    let safe: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("capture-{safe}")
}
/// What the consumer receives: every `ChaosInjected`.
pub const FILTER_SUBJECT: &str = "eval.*.*.ChaosInjected";
/// How long the server waits for an acknowledgement (or a progress note) before redelivering.
pub const ACK_WAIT: Duration = Duration::from_secs(60);
/// How often a followed trial's injection is reported as still in progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(20);
/// How long a capture that failed for a passing reason waits before it is delivered again.
pub const RETRY_DELAY: Duration = Duration::from_secs(5);
/// How long after the trial's timeout its operator.db may still appear.
const FILE_WAIT_SLACK: Duration = Duration::from_secs(60);

/// The capture stage's settings.
#[derive(Debug, Clone)]
pub struct StageConfig {
    /// Trials this stage follows at once; further injections wait in the consumer.
    pub max_trials: usize,
    /// Receives a report when a trial's capture starts and when it ends (for `evalctl capture`'s
    /// lines).
    pub reports: Option<UnboundedSender<StageReport>>,
    /// This host's name ([`schemas::event::host_name`]): the trials whose
    /// `ChaosInjected.operator_host` names it are captured here.
    pub host: String,
    /// The directories whose operator.db files this stage opens (the data dir, and those of
    /// external operators the user named); any other path an injection names is refused.
    pub allowed_dirs: Vec<PathBuf>,
}

impl Default for StageConfig {
    fn default() -> StageConfig {
        StageConfig {
            max_trials: 64,
            reports: None,
            host: schemas::event::host_name(),
            allowed_dirs: Vec::new(),
        }
    }
}

/// What the stage tells its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageReport {
    /// A trial's capture starts (before its events are read).
    Capturing {
        campaign_id: String,
        trial_id: String,
        operator_db: PathBuf,
    },
    Ended(TrialCaptured),
}

/// The end of one trial's capture by the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialCaptured {
    pub campaign_id: String,
    pub trial_id: String,
    pub operator_db: PathBuf,
    /// The trial was over when its injection was delivered: read once, not followed.
    pub caught_up: bool,
    pub outcome: CaptureOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureOutcome {
    /// The trial is over and every row read is in the log; the injection is acknowledged.
    Done(CaptureReport),
    /// The stage stopped first; the injection is handed back to the next capture stage.
    HandedBack(CaptureReport),
    /// It failed and will be tried again after [`RETRY_DELAY`].
    Retried(String),
    /// It failed for good (the file, not the harness); what was published stays.
    Failed(String),
}

struct Shared {
    log: EventLog,
    config: StageConfig,
    /// Each campaign's `CampaignPublished` (variants, operator time zone), read once.
    campaigns: CampaignCache,
    /// Stream sequences of the injections followed here now: a redelivery of one is not
    /// followed twice.
    following: Mutex<HashSet<u64>>,
    /// `config.allowed_dirs`, canonical.
    allowed_dirs: Vec<PathBuf>,
}

/// Runs the capture stage until `shutdown` is cancelled; the trials followed then get a last
/// read and are handed back. Fails when the consumer cannot be created.
pub async fn run(log: EventLog, config: StageConfig, shutdown: CancellationToken) -> Result<()> {
    let consumer = durable_consumer(&log, &config.host).await?;
    debug!(consumer = %consumer_name(&config.host), "capture stage started");
    let permits = Arc::new(Semaphore::new(config.max_trials.max(1)));
    let shared = Arc::new(Shared {
        log,
        allowed_dirs: super::confine::canonical_dirs(&config.allowed_dirs),
        config,
        campaigns: CampaignCache::default(),
        following: Mutex::new(HashSet::new()),
    });
    let tracker = TaskTracker::new();
    while let Some((delivery, permit)) =
        next_delivery(&consumer, &permits, &shutdown, "an injection").await
    {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            handle(&shared, delivery, &shutdown).await;
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
    debug!("capture stage stopped");
    Ok(())
}

/// Terminates a message this stage cannot act on, recording why in the log.
async fn reject(shared: &Shared, delivery: Delivery, why: &str) {
    let consumer = consumer_name(&schemas::event::host_name());
    delivery
        .reject(&shared.log, &Producer::here("capture"), &consumer, why)
        .await;
}

/// The durable consumer of the stages on `host`, created on first use.
pub async fn durable_consumer(log: &EventLog, host: &str) -> Result<PullConsumer> {
    Ok(log
        .durable_consumer(&DurableSpec {
            name: consumer_name(host),
            description: format!(
                "evalctl capture stages on {host}: follow the operator.db of every trial injected there"
            ),
            filter_subjects: vec![FILTER_SUBJECT.to_string()],
            ack_wait: ACK_WAIT,
            max_deliver: None,
        })
        .await?)
}

/// One `ChaosInjected`: follow its trial's operator.db, then acknowledge, hand back, retry or
/// terminate it.
async fn handle(shared: &Shared, mut delivery: Delivery, shutdown: &CancellationToken) {
    let message = delivery.message();
    let injection = match schemas::log::read_event_to_act_on(&message.subject, &message.payload) {
        Ok(event) => event,
        Err(error) => {
            reject(
                shared,
                delivery,
                &format!("unreadable ChaosInjected: {error}"),
            )
            .await;
            return;
        }
    };
    let (
        Some(trial_id),
        EventData::ChaosInjected(ChaosInjected {
            operator_db: Some(operator_db),
            ..
        }),
    ) = (injection.trial_id.clone(), &injection.data)
    else {
        debug!(subject = %message.subject, "injection without an operator; nothing to capture");
        delivery.ack().await;
        return;
    };
    if let EventData::ChaosInjected(ChaosInjected {
        operator_host: Some(host),
        ..
    }) = &injection.data
        && *host != shared.config.host
    {
        debug!(%trial_id, %host, "the operator.db is on another host; its capture stage takes it");
        delivery.ack().await;
        return;
    }
    let operator_db = PathBuf::from(operator_db);
    let Some(sequence) = delivery.stream_sequence() else {
        warn!(subject = %message.subject, "injection without stream info; retried later");
        delivery.nak(Some(RETRY_DELAY)).await;
        return;
    };
    if !shared.following.lock().expect("following").insert(sequence) {
        debug!(%trial_id, sequence, "redelivered while followed here; the running capture acknowledges it");
        return;
    }

    delivery.keep_alive(PROGRESS_EVERY);
    let campaign_id = injection.campaign_id.clone();
    // With a receiver of reports, the caller tells what happened; the log need not say it too.
    let quiet = shared.config.reports.is_some();
    if let Some(reports) = &shared.config.reports {
        debug!(%campaign_id, %trial_id, operator_db = %operator_db.display(), "capturing a trial");
        let _ = reports.send(StageReport::Capturing {
            campaign_id: campaign_id.clone(),
            trial_id: trial_id.clone(),
            operator_db: operator_db.clone(),
        });
    } else {
        debug!(%campaign_id, %trial_id, operator_db = %operator_db.display(), "capturing a trial");
    }
    let captured = capture_trial(
        shared,
        &injection,
        &trial_id,
        operator_db.clone(),
        sequence,
        shutdown,
    )
    .await;
    shared
        .following
        .lock()
        .expect("following")
        .remove(&sequence);

    // The end of the capture goes into the log before the injection is acknowledged: a trial
    // whose capture ended (over, or failed for good) is graded once it is there.
    let ending = match &captured {
        Ok(Captured {
            report, over: true, ..
        }) => Some(Ok(report)),
        Err(error) if !passing(error) => Some(Err(error)),
        _ => None,
    };
    if let Some(ending) = ending {
        let event = finished_event(&injection, &trial_id, &operator_db, ending).await;
        if let Err(error) = shared.log.publish(&event).await {
            warn!(%campaign_id, %trial_id, %error, "publishing the end of a capture failed; it will be retried");
            delivery.nak(Some(RETRY_DELAY)).await;
            return;
        }
    }
    let (caught_up, outcome) = match captured {
        Ok(Captured {
            report,
            caught_up,
            over: true,
        }) => {
            if quiet {
                debug!(%campaign_id, %trial_id, published = report.n_published, duplicates = report.n_duplicates, ticket_id = ?report.ticket_id, resolved = report.resolved, caught_up, "trial captured");
            } else {
                debug!(%campaign_id, %trial_id, published = report.n_published, duplicates = report.n_duplicates, ticket_id = ?report.ticket_id, resolved = report.resolved, caught_up, "trial captured");
            }
            delivery.ack().await;
            (caught_up, CaptureOutcome::Done(report))
        }
        Ok(Captured {
            report, caught_up, ..
        }) => {
            info!(%campaign_id, %trial_id, published = report.n_published, "capture stopped before the trial's end; handed back");
            delivery.nak(None).await;
            (caught_up, CaptureOutcome::HandedBack(report))
        }
        Err(error) if passing(&error) => {
            warn!(%campaign_id, %trial_id, %error, "capture failed; it will be retried");
            delivery.nak(Some(RETRY_DELAY)).await;
            (false, CaptureOutcome::Retried(error.to_string()))
        }
        Err(error) => {
            warn!(%campaign_id, %trial_id, %error, "capture failed; the events already published stay");
            reject(shared, delivery, &error.to_string()).await;
            (false, CaptureOutcome::Failed(error.to_string()))
        }
    };
    if let Some(reports) = &shared.config.reports {
        let _ = reports.send(StageReport::Ended(TrialCaptured {
            campaign_id,
            trial_id,
            operator_db,
            caught_up,
            outcome,
        }));
    }
}

/// The `OperatorCaptureFinished` of a capture that ended: what the file held at the end (its
/// ticket and sessions as last written), or why it could not be read.
async fn finished_event(
    injection: &Event,
    trial_id: &str,
    operator_db: &Path,
    ending: std::result::Result<&CaptureReport, &CaptureError>,
) -> Event {
    // A refused path is not looked at, not even for its size.
    let refused = matches!(ending, Err(CaptureError::Refused { .. }));
    let metadata = (!refused)
        .then(|| std::fs::metadata(operator_db).ok())
        .flatten();
    let mut finished = OperatorCaptureFinished {
        injection_id: injection.id,
        operator_db: operator_db.display().to_string(),
        status: OperatorDbStatus::Read,
        error: None,
        size_bytes: metadata.as_ref().map(|metadata| metadata.len()),
        modified_at: metadata
            .and_then(|metadata| metadata.modified().ok())
            .map(|time| Timestamp::from_datetime(time.into())),
        ticket: None,
        sessions: Vec::new(),
        n_log_entries: 0,
    };
    match ending {
        Ok(report) => {
            finished.n_log_entries = report.n_log_entries;
            if let Some(ticket_id) = report.ticket_id {
                let path = operator_db.to_path_buf();
                let read =
                    tokio::task::spawn_blocking(move || super::final_rows(&path, ticket_id)).await;
                match read {
                    Ok(Ok((ticket, sessions))) => {
                        finished.ticket = ticket;
                        finished.sessions = sessions;
                    }
                    Ok(Err(error)) => {
                        finished.status = OperatorDbStatus::Unreadable;
                        finished.error = Some(error.to_string());
                    }
                    Err(error) => {
                        finished.status = OperatorDbStatus::Unreadable;
                        finished.error = Some(format!("the reading task failed: {error}"));
                    }
                }
            }
        }
        Err(error) => {
            finished.status = match error {
                CaptureError::MissingFile { .. } => OperatorDbStatus::Missing,
                CaptureError::Refused { .. } => OperatorDbStatus::Refused,
                _ => OperatorDbStatus::Unreadable,
            };
            finished.error = Some(error.to_string());
        }
    }
    let id = schemas::ids::derived_event_id(
        &injection.campaign_id,
        &format!("OperatorCaptureFinished/{trial_id}/{}", injection.id),
        0,
    );
    let event = Event::new(
        &Producer::here("capture"),
        &injection.campaign_id,
        Some(trial_id),
        finished,
    )
    .with_id(id);
    // A ticket with a huge field still ends its capture.
    schemas::fit::fit(event, schemas::fit::MAX_CAPTURED_EVENT_BYTES).0
}

/// A failure that a later attempt may not meet: the log, or the operator holding its lock.
fn passing(error: &CaptureError) -> bool {
    matches!(error, CaptureError::Log(_) | CaptureError::Busy { .. })
}

struct Captured {
    report: CaptureReport,
    /// The trial was over before the capture started.
    caught_up: bool,
    /// The trial is over (else the stage stopped first).
    over: bool,
}

/// Follows the trial's operator.db from this injection until the trial is over (or `shutdown`).
async fn capture_trial(
    shared: &Shared,
    injection: &Event,
    trial_id: &str,
    operator_db: PathBuf,
    sequence: u64,
    shutdown: &CancellationToken,
) -> Result<Captured> {
    super::confine::check(&operator_db, &shared.allowed_dirs)?;
    let campaign_id = injection.campaign_id.as_str();
    let trial_error = |reason: String| CaptureError::Trial {
        campaign_id: campaign_id.to_string(),
        trial_id: trial_id.to_string(),
        reason,
    };
    let filter = EventFilter {
        campaign_id: Some(campaign_id.to_string()),
        trial_id: Some(trial_id.to_string()),
        event_type: None,
    };
    let mut view = TrialView::new(sequence);
    // The capture events already in the log seed the cursor (one read of the trial, not two).
    let mut captured = Vec::new();
    {
        let mut stored = std::pin::pin!(shared.log.read(&filter, false).await?);
        while let Some(stored) = stored.next().await {
            let stored = stored?;
            if let Ok(event) = stored.event {
                view.observe(stored.sequence, &event.data);
                if matches!(
                    event.data,
                    EventData::TicketOpened(_)
                        | EventData::AgentSessionStarted(_)
                        | EventData::AgentLogRecorded(_)
                        | EventData::TicketResolved(_)
                ) {
                    captured.push(event);
                }
            }
        }
    }
    let Some(spec) = view.spec.clone() else {
        return Err(trial_error("no TrialRequested in the log".to_string()));
    };
    let campaign = shared
        .campaigns
        .get(&shared.log, campaign_id)
        .await
        .map_err(|error| trial_error(format!("reading its CampaignPublished: {error}")))?;
    let variant = campaign
        .variant_of(&spec)
        .map(|resolved| resolved.variant.clone());
    let target = CaptureTarget {
        campaign_id: campaign_id.to_string(),
        trial_id: trial_id.to_string(),
        operator_db,
        subject: spec.subject,
        injected_at: injection.occurred_at,
        operator_timezone: campaign.campaign.operator_timezone.clone(),
        variant,
    };

    let stop = shutdown.child_token();
    let caught_up = view.over;
    let over = Arc::new(AtomicBool::new(view.over));
    let watcher = if caught_up {
        stop.cancel();
        None
    } else {
        Some(tokio::spawn(watch_trial(
            shared.log.clone(),
            filter,
            view,
            over.clone(),
            stop.clone(),
        )))
    };
    let wait = Duration::from_secs(spec.timeout_seconds.into()) + FILE_WAIT_SLACK;
    let followed = follow_seeded(&shared.log, target, wait, stop, Some(captured)).await;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    Ok(Captured {
        report: followed?,
        caught_up,
        over: over.load(Ordering::SeqCst),
    })
}

/// Reads the trial's events as they come until they say it is over, then cancels `stop`.
async fn watch_trial(
    log: EventLog,
    filter: EventFilter,
    mut view: TrialView,
    over: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    loop {
        match log.read(&filter, true).await {
            Ok(events) => {
                futures::pin_mut!(events);
                while let Some(stored) = events.next().await {
                    let Ok(stored) = stored else { break };
                    if let Ok(event) = &stored.event {
                        view.observe(stored.sequence, &event.data);
                    }
                    if view.over {
                        over.store(true, Ordering::SeqCst);
                        stop.cancel();
                        return;
                    }
                }
            }
            Err(error) => warn!(%error, "reading a followed trial's events"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RETRY_DELAY) => {}
        }
    }
}

/// What a trial's events, read in stream order, say about one injection of it.
#[derive(Debug, Clone)]
struct TrialView {
    /// The injection's stream sequence.
    injection: u64,
    spec: Option<TrialSpec>,
    /// The trial finished, or another attempt of it started after this injection.
    over: bool,
}

impl TrialView {
    fn new(injection: u64) -> TrialView {
        TrialView {
            injection,
            spec: None,
            over: false,
        }
    }

    fn observe(&mut self, sequence: u64, data: &EventData) {
        match data {
            EventData::TrialRequested(requested) => self.spec = Some(requested.trial.clone()),
            EventData::TrialFinished(_) => self.over = true,
            EventData::TrialStarted(_) | EventData::ChaosInjected(_)
                if sequence > self.injection =>
            {
                self.over = true
            }
            _ => {}
        }
    }
}
