//! The trial worker: a durable JetStream pull consumer on `TrialRequested` (workers compete for
//! trials), running trials each on a lab of its own, publishing every lifecycle event, and
//! cleaning up every fault it injected, whatever happens.
//!
//! Durability rules: `ChaosInjected`, with the cleanup record, is acknowledged by JetStream
//! before the fault is applied; the `TrialRequested` message is acknowledged only after
//! `TrialFinished` is; an interrupted trial is cleaned up and handed back (NAK), never
//! acknowledged. A worker restarted after a crash first cleans up what it had injected.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use schemas::campaign::{ChaosSpec, ChaosType, Runtime, SubjectKind, TrialSpec};
use schemas::event::{
    CampaignPublished, CapturePhase, ChaosCleanedUp, ChaosCleanupFailed, ChaosInjected, Event,
    EventData, Producer, ResolvedVariant, StateCaptured, SubjectHealthy, SubjectReset,
    TrialFinished, TrialStarted, TrialStatus, WatchHealth,
};
use schemas::log::{EventFilter, EventLog, STREAM_NAME};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::etcd::EtcdLab;
use crate::faults::{self, CleanupRecord};
use crate::lab::{Isolation, Lab};
use crate::operator::{ManagedOperator, OperatorEnv, STOP_GRACE};
use crate::subject::Subject;

/// The durable consumer all workers share.
pub const CONSUMER: &str = "eval-worker";
/// How long the subject may take to become healthy after a reset.
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a running trial tells JetStream it is still being worked on.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// How often the subject is checked while a trial is watched.
const WATCH_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub data_dir: PathBuf,
    /// Names this worker's labs and marks the faults it owns; stable across restarts.
    pub worker_id: String,
    /// Trials at once (each on its own lab).
    pub concurrency: usize,
    pub isolation: Isolation,
    /// Only this campaign's trials (`evalctl run`), through a consumer of its own
    /// (`eval-run-<campaign id>`, removed when the worker stops); `None` takes every pending
    /// trial through the shared consumer. A trial finished here is skipped by the shared
    /// consumer later, because its `TrialFinished` is in the log.
    pub campaign: Option<String>,
}

struct Shared {
    log: EventLog,
    config: WorkerConfig,
    producer: Producer,
    /// Free lab slots.
    slots: Mutex<Vec<usize>>,
    /// Running trials per campaign, against the campaign's `parallel`.
    running: Mutex<HashMap<String, u32>>,
    /// Each campaign's `CampaignPublished` (variants, operator time zone), read once.
    campaigns: Mutex<HashMap<String, Arc<CampaignPublished>>>,
}

/// Runs the worker until `shutdown`: recovers faults left by an earlier run of this worker, then
/// takes trials. On shutdown the running trials are cleaned up and handed back, and the labs
/// are removed.
pub async fn run(log: EventLog, config: WorkerConfig, shutdown: CancellationToken) -> Result<()> {
    let recovered = recover(&log, &config.data_dir, Some(&config.worker_id)).await?;
    if recovered > 0 {
        info!(recovered, "cleaned up faults left by an earlier run");
    }
    let stream = log.ensure_stream().await?;
    let (name, filter) = match &config.campaign {
        Some(campaign_id) => (
            format!("{CONSUMER}-run-{campaign_id}"),
            format!("eval.{campaign_id}.*.TrialRequested"),
        ),
        None => (CONSUMER.to_string(), "eval.*.*.TrialRequested".to_string()),
    };
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: filter,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_deliver: 10,
                ..Default::default()
            },
        )
        .await
        .map_err(|error| Error::Other(format!("consumer {name}: {error}")))?;

    let shared = Arc::new(Shared {
        producer: Producer::here("worker"),
        slots: Mutex::new((0..config.concurrency.max(1)).rev().collect()),
        running: Mutex::new(HashMap::new()),
        campaigns: Mutex::new(HashMap::new()),
        log,
        config,
    });
    let tracker = TaskTracker::new();
    while !shutdown.is_cancelled() {
        let Some(slot) = shared.slots.lock().expect("slots").pop() else {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                () = shutdown.cancelled() => break,
            }
        };
        let message = tokio::select! {
            message = schemas::log::next_message(&consumer, "a trial") => message,
            () = shutdown.cancelled() => None,
        };
        let Some(message) = message else {
            shared.slots.lock().expect("slots").push(slot);
            continue;
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            handle(&shared, slot, message, &shutdown).await;
            shared.slots.lock().expect("slots").push(slot);
        });
    }
    tracker.close();
    tracker.wait().await;
    if shared.config.campaign.is_some()
        && let Err(error) = stream.delete_consumer(&name).await
    {
        warn!(consumer = %name, %error, "the campaign's own consumer was not removed");
    }
    for lab in Lab::list(&shared.config.data_dir)? {
        if lab
            .state
            .name
            .starts_with(&lab_prefix(&shared.config.worker_id))
        {
            let name = lab.state.name.clone();
            if let Err(error) = lab.destroy().await {
                warn!(lab = %name, %error, "lab not fully removed");
            }
        }
    }
    Ok(())
}

fn lab_prefix(worker_id: &str) -> String {
    format!("w-{worker_id}-")
}

/// One `TrialRequested` message: run it, then acknowledge, hand back or drop it.
async fn handle(
    shared: &Shared,
    slot: usize,
    message: jetstream::Message,
    shutdown: &CancellationToken,
) {
    let attempt = message.info().map(|info| info.delivered).unwrap_or(1) as u32;
    let event = match Event::from_json(&message.payload) {
        Ok(Event {
            data: EventData::TrialRequested(requested),
            campaign_id,
            trial_id: Some(trial_id),
            ..
        }) => (campaign_id, trial_id, requested),
        other => {
            warn!(subject = %message.subject, ?other, "not a readable TrialRequested; dropped");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let (campaign_id, trial_id, requested) = event;
    let admitted = {
        let mut running = shared.running.lock().expect("running");
        let count = running.entry(campaign_id.clone()).or_default();
        let admitted = *count < requested.parallel.max(1);
        if admitted {
            *count += 1;
        }
        admitted
    };
    if !admitted {
        let _ = message
            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
            .await;
        return;
    }
    let progress = CancellationToken::new();
    let ticker = {
        let progress = progress.clone();
        let message = message.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(PROGRESS_EVERY) => {
                        let _ = message.ack_with(AckKind::Progress).await;
                    }
                    () = progress.cancelled() => return,
                }
            }
        })
    };
    let trial = TrialContext {
        recorder: Recorder {
            log: &shared.log,
            producer: &shared.producer,
            campaign_id: &campaign_id,
            trial_id: &trial_id,
        },
        worker_id: &shared.config.worker_id,
        spec: &requested.trial,
    };
    let outcome = run_trial(&trial, shared, slot, attempt, shutdown).await;
    progress.cancel();
    let _ = ticker.await;
    *shared
        .running
        .lock()
        .expect("running")
        .entry(campaign_id.clone())
        .or_default() -= 1;
    match outcome {
        Ok(TrialEnd::Finished) => {
            if let Err(error) = message.double_ack().await {
                warn!(%trial_id, %error, "acknowledging a finished trial failed");
            }
            let cooldown = requested.trial.cooldown_seconds;
            if cooldown > 0 {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(cooldown.into())) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
        Ok(TrialEnd::Interrupted) => {
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
        Err(error) => {
            warn!(%trial_id, %error, "trial could not be recorded; handing it back");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await;
        }
    }
}

/// Publishes the events of one trial.
struct Recorder<'a> {
    log: &'a EventLog,
    producer: &'a Producer,
    campaign_id: &'a str,
    trial_id: &'a str,
}

/// What the worker knows of the trial it runs.
struct TrialContext<'a> {
    recorder: Recorder<'a>,
    worker_id: &'a str,
    spec: &'a TrialSpec,
}

impl Recorder<'_> {
    /// Publishes one event and waits until it is durable.
    async fn publish(&self, data: impl Into<EventData>) -> Result<Event> {
        let event = Event::new(self.producer, self.campaign_id, Some(self.trial_id), data);
        self.log.publish(&event).await?;
        Ok(event)
    }

    async fn finish(&self, status: TrialStatus, reason: Option<String>) -> Result<TrialEnd> {
        info!(trial_id = %self.trial_id, ?status, reason = reason.as_deref().unwrap_or(""), "trial finished");
        self.publish(TrialFinished { status, reason }).await?;
        Ok(TrialEnd::Finished)
    }
}

enum TrialEnd {
    Finished,
    /// Shutdown came first: cleaned up, to be run again.
    Interrupted,
}

async fn run_trial(
    trial: &TrialContext<'_>,
    shared: &Shared,
    slot: usize,
    attempt: u32,
    shutdown: &CancellationToken,
) -> Result<TrialEnd> {
    let recorder = &trial.recorder;
    let chaos_type = trial.spec.chaos.chaos_type();
    let history = trial_history(recorder.log, recorder.campaign_id, recorder.trial_id).await?;
    if history.finished {
        return Ok(TrialEnd::Finished);
    }
    // A previous attempt (of a worker that died) may have left its fault behind.
    for record in history.uncleaned {
        cleanup_and_record(recorder, &record, chaos_type).await?;
    }
    recorder
        .publish(TrialStarted {
            worker: trial.worker_id.to_string(),
            attempt,
        })
        .await?;

    let spec = trial.spec;
    if spec.subject != SubjectKind::Etcd || spec.subject_settings.runtime != Runtime::Lab {
        let reason = match (spec.subject, spec.subject_settings.runtime) {
            (SubjectKind::Tikv, Runtime::Lab) => "a TiKV lab needs pd-server and tikv-server binaries, which this host does not have; run TiKV on Kubernetes (subject_settings.tikv.runtime: kubernetes)".to_string(),
            (_, Runtime::Kubernetes) => "the kubernetes runtime is not built yet: its subjects can be reached only through the lab runtime for now".to_string(),
            _ => "unsupported subject".to_string(),
        };
        return recorder.finish(TrialStatus::Errored, Some(reason)).await;
    }
    let mut subject = match slot_lab(&shared.config, slot, spec.subject_settings.nodes).await {
        Ok(subject) => subject,
        Err(error) => {
            return recorder
                .finish(TrialStatus::Errored, Some(format!("lab: {error}")))
                .await;
        }
    };

    let reset_started = Instant::now();
    if let Err(error) = subject.reset().await {
        return recorder
            .finish(TrialStatus::Errored, Some(format!("reset: {error}")))
            .await;
    }
    recorder
        .publish(SubjectReset {
            subject: spec.subject,
            instance: subject.instance(),
            endpoints: subject.endpoints(),
            duration_ms: reset_started.elapsed().as_millis() as u64,
        })
        .await?;
    match subject.wait_healthy(HEALTHY_TIMEOUT).await {
        Ok(after) => {
            recorder
                .publish(SubjectHealthy {
                    after_ms: after.as_millis() as u64,
                })
                .await?;
        }
        Err(error) => {
            return recorder
                .finish(TrialStatus::Errored, Some(error.to_string()))
                .await;
        }
    }
    recorder
        .publish(StateCaptured {
            phase: CapturePhase::Initial,
            healthy: true,
            state: subject.capture_state().await,
            watch_health: None,
        })
        .await?;

    let record = match subject.plan(&spec.chaos, spec.seed).await {
        Ok(record) => record,
        Err(error) => {
            return recorder
                .finish(TrialStatus::Errored, Some(format!("chaos: {error}")))
                .await;
        }
    };
    // A managed operator runs from before the fault, so that its monitor knows the healthy state.
    let operator = match start_operator(shared, trial, &subject).await {
        Ok(operator) => operator,
        Err(error) => {
            return recorder
                .finish(TrialStatus::Errored, Some(format!("operator: {error}")))
                .await;
        }
    };
    recorder
        .publish(ChaosInjected {
            worker: trial.worker_id.to_string(),
            chaos: spec.chaos.clone(),
            target: record.target(),
            cleanup: serde_json::to_value(&record).expect("records serialize"),
            operator_db: operator
                .as_ref()
                .map(|operator| operator.operator_db.display().to_string()),
            // The capture stage on this host takes the trial.
            operator_host: operator.as_ref().map(|_| schemas::event::host_name()),
        })
        .await?;
    let injected_at = Instant::now();
    if let Err(error) = subject.inject(&record).await {
        if let Some(operator) = operator {
            operator.stop().await;
        }
        cleanup_on(recorder, &mut subject, &record, chaos_type).await?;
        return recorder
            .finish(
                TrialStatus::Errored,
                Some(format!("injection failed: {error}")),
            )
            .await;
    }
    info!(trial_id = %recorder.trial_id, chaos = %spec.chaos.chaos_type(), target = record.target().unwrap_or_default(), "chaos injected");

    let operator = operator.map(|operator| operator.follow(recorder));
    let resolved = operator.as_ref().map(|operator| operator.resolved.clone());
    let watched = watch(
        &mut subject,
        &record,
        spec,
        injected_at,
        resolved.as_deref(),
        shutdown,
    )
    .await;
    if let Some(operator) = operator {
        operator.finish().await;
    }
    let mut watch_health = None;
    let (status, reason) = match watched {
        // The harness's hint only: the scorer grades the false alarms from the events.
        Watched::Controlled(health) => {
            watch_health = Some(health);
            (TrialStatus::Succeeded, None)
        }
        Watched::Healed(after) => {
            recorder
                .publish(SubjectHealthy {
                    after_ms: after.as_millis() as u64,
                })
                .await?;
            (TrialStatus::Succeeded, None)
        }
        Watched::Resolved => (TrialStatus::Succeeded, None),
        Watched::TimedOut => (
            TrialStatus::TimedOut,
            Some(format!(
                "not {} within {}s of injection",
                if resolved.is_some() {
                    "resolved"
                } else {
                    "healthy"
                },
                spec.timeout_seconds
            )),
        ),
        Watched::Interrupted => {
            cleanup_on(recorder, &mut subject, &record, chaos_type).await?;
            return Ok(TrialEnd::Interrupted);
        }
    };
    // The operator may have restarted nodes from its own process: take their pids from disk.
    subject.lab.reload()?;
    let (healthy, _) = subject.is_healthy().await;
    recorder
        .publish(StateCaptured {
            phase: CapturePhase::Final,
            healthy,
            state: subject.capture_state().await,
            watch_health,
        })
        .await?;
    cleanup_on(recorder, &mut subject, &record, chaos_type).await?;
    recorder.finish(status, reason).await
}

/// The trial's variant, as its campaign resolved it; `None` for a baseline.
async fn trial_variant(
    shared: &Shared,
    trial: &TrialContext<'_>,
) -> Result<Option<(Arc<CampaignPublished>, ResolvedVariant)>> {
    let Some(name) = trial
        .spec
        .variant
        .as_deref()
        .filter(|_| !trial.spec.baseline)
    else {
        return Ok(None);
    };
    let campaign_id = trial.recorder.campaign_id;
    let cached = shared
        .campaigns
        .lock()
        .expect("campaigns")
        .get(campaign_id)
        .cloned();
    let campaign = match cached {
        Some(campaign) => campaign,
        None => {
            let subject = schemas::log::event_subject(campaign_id, None, "CampaignPublished");
            let stored = shared
                .log
                .stream()
                .await?
                .get_last_raw_message_by_subject(&subject)
                .await
                .map_err(|error| Error::Other(format!("{subject}: {error}")))?;
            let Ok(Event {
                data: EventData::CampaignPublished(published),
                ..
            }) = Event::from_json(&stored.payload)
            else {
                return Err(Error::Other(format!("{subject}: unreadable")));
            };
            let published = Arc::new(published);
            shared
                .campaigns
                .lock()
                .expect("campaigns")
                .insert(campaign_id.to_string(), published.clone());
            published
        }
    };
    let variant = campaign
        .variants
        .iter()
        .find(|resolved| resolved.variant.name == name)
        .or_else(|| (campaign.variants.len() == 1).then(|| &campaign.variants[0]))
        .cloned();
    Ok(variant.map(|variant| (campaign, variant)))
}

/// The trial's managed operator, started, when its variant has a `command`.
async fn start_operator(
    shared: &Shared,
    trial: &TrialContext<'_>,
    subject: &EtcdLab,
) -> Result<Option<StartedOperator>> {
    let Some((campaign, resolved)) = trial_variant(shared, trial).await? else {
        return Ok(None);
    };
    let (process, operator_db) = match (&resolved.variant.command, &campaign.campaign.operator_db) {
        (Some(command), _) => {
            let artifacts = shared
                .config
                .data_dir
                .join("trials")
                .join(trial.recorder.trial_id);
            let operator_db = artifacts.join("operator.db");
            let env = OperatorEnv {
                trial_id: trial.recorder.trial_id.to_string(),
                operator_db: operator_db.clone(),
                subject: trial.spec.subject.to_string(),
                endpoints: subject.endpoints(),
                lab: subject.lab.state.name.clone(),
                data_dir: shared.config.data_dir.clone(),
            };
            let process = ManagedOperator::start(command, &env, &artifacts)?;
            info!(trial_id = %trial.recorder.trial_id, pid = process.pid(), "operator started");
            (Some(process), operator_db)
        }
        // An external operator: already running, its operator.db named by the campaign.
        (None, Some(operator_db)) => (None, PathBuf::from(operator_db)),
        (None, None) => return Ok(None),
    };
    // Absolute, so that the capture stage (another process, maybe started elsewhere) finds the
    // same file under the same name, and its events are the worker's byte for byte.
    let operator_db = std::path::absolute(&operator_db).unwrap_or(operator_db);
    Ok(Some(StartedOperator {
        process,
        operator_db,
    }))
}

struct StartedOperator {
    /// `None` for an external operator, which the worker neither starts nor stops.
    process: Option<ManagedOperator>,
    operator_db: PathBuf,
}

impl StartedOperator {
    async fn stop(self) {
        if let Some(process) = self.process {
            process.stop(STOP_GRACE).await;
        }
    }

    /// Starts watching the log for the trial's `TicketResolved`, which the capture stage (the
    /// only reader of operator.db) publishes: one consumer of that one subject, not a replay of
    /// the trial.
    fn follow(self, recorder: &Recorder<'_>) -> FollowedOperator {
        let resolved = Arc::new(AtomicBool::new(false));
        let watcher = {
            let log = recorder.log.clone();
            let filter = EventFilter {
                campaign_id: Some(recorder.campaign_id.to_string()),
                trial_id: Some(recorder.trial_id.to_string()),
                event_type: Some("TicketResolved".to_string()),
            };
            let resolved = resolved.clone();
            tokio::spawn(async move {
                let Ok(events) = log.read(&filter, true).await else {
                    return;
                };
                futures::pin_mut!(events);
                if let Some(Ok(_)) = events.next().await {
                    resolved.store(true, Ordering::SeqCst);
                }
            })
        };
        FollowedOperator {
            process: self.process,
            watcher,
            resolved,
        }
    }
}

struct FollowedOperator {
    process: Option<ManagedOperator>,
    watcher: tokio::task::JoinHandle<()>,
    resolved: Arc<AtomicBool>,
}

impl FollowedOperator {
    /// Stops watching and stops the operator.
    async fn finish(self) {
        self.watcher.abort();
        if let Some(process) = self.process {
            process.stop(STOP_GRACE).await;
        }
    }
}

enum Watched {
    /// A control trial watched for its whole duration, with its health checks.
    Controlled(WatchHealth),
    /// Healthy again without an operator.
    Healed(Duration),
    /// The operator resolved its ticket and the subject is healthy.
    Resolved,
    TimedOut,
    Interrupted,
}

/// Watches the subject after injection until it is healthy again (twice in a row) — and, with an
/// operator, its ticket resolved — the trial's timeout, or shutdown. A fault with `duration_seconds` is undone when that time is up.
/// A control trial (`chaos: none`) is watched for its whole `duration_seconds`, whatever the
/// operator does, counting the checks that find the subject unhealthy.
async fn watch(
    subject: &mut EtcdLab,
    record: &CleanupRecord,
    spec: &TrialSpec,
    injected_at: Instant,
    resolved: Option<&AtomicBool>,
    shutdown: &CancellationToken,
) -> Watched {
    let timeout = Duration::from_secs(spec.timeout_seconds.into());
    let revert_after =
        chaos_duration(&spec.chaos).map(|seconds| Duration::from_secs(seconds.into()));
    let mut reverted = false;
    let mut healthy_in_a_row = 0;
    let control_for = match &spec.chaos {
        ChaosSpec::None(params) => Some(Duration::from_secs(params.duration_seconds.into())),
        _ => None,
    };
    let mut health = WatchHealth {
        n_checks: 0,
        n_unhealthy: 0,
        first_unhealthy_reason: None,
    };
    loop {
        if shutdown.is_cancelled() {
            return Watched::Interrupted;
        }
        let elapsed = injected_at.elapsed();
        if elapsed >= timeout {
            return Watched::TimedOut;
        }
        if let Some(duration) = control_for {
            if elapsed >= duration {
                return Watched::Controlled(health);
            }
            let (healthy, reason) = subject.is_healthy().await;
            health.n_checks += 1;
            if !healthy {
                health.n_unhealthy += 1;
                if health.first_unhealthy_reason.is_none() {
                    health.first_unhealthy_reason =
                        Some(reason.unwrap_or_else(|| "unhealthy".to_string()));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(WATCH_EVERY) => {}
                () = shutdown.cancelled() => return Watched::Interrupted,
            }
            continue;
        }
        if let Some(after) = revert_after
            && !reverted
            && elapsed >= after
        {
            reverted = true;
            if let Err(error) = faults::cleanup(subject, record).await {
                warn!(%error, "ending the fault after its duration failed");
            }
        }
        let (healthy, _) = subject.is_healthy().await;
        healthy_in_a_row = if healthy { healthy_in_a_row + 1 } else { 0 };
        if healthy_in_a_row >= 2 {
            match resolved {
                None => return Watched::Healed(injected_at.elapsed()),
                Some(resolved) if resolved.load(Ordering::SeqCst) => return Watched::Resolved,
                Some(_) => {}
            }
        }
        tokio::select! {
            () = tokio::time::sleep(WATCH_EVERY) => {}
            () = shutdown.cancelled() => return Watched::Interrupted,
        }
    }
}

fn chaos_duration(chaos: &ChaosSpec) -> Option<u32> {
    match chaos {
        // Nothing to undo: its duration is how long it is watched.
        ChaosSpec::None(_) => None,
        ChaosSpec::NodeKill(_) => None,
        ChaosSpec::ProcessPause(params) => params.duration_seconds,
        ChaosSpec::Latency(params) => params.duration_seconds,
        ChaosSpec::PacketLoss(params) => params.duration_seconds,
        ChaosSpec::NetworkPartition(params) => params.duration_seconds,
        ChaosSpec::DiskPressure(params) => params.duration_seconds,
    }
}

async fn cleanup_on(
    recorder: &Recorder<'_>,
    subject: &mut EtcdLab,
    record: &CleanupRecord,
    chaos_type: ChaosType,
) -> Result<()> {
    let started = Instant::now();
    match subject.cleanup(record).await {
        Ok(()) => {
            recorder
                .publish(ChaosCleanedUp {
                    chaos_type,
                    duration_ms: started.elapsed().as_millis() as u64,
                })
                .await?;
        }
        Err(error) => {
            warn!(trial_id = %recorder.trial_id, %error, "cleanup failed");
            recorder
                .publish(ChaosCleanupFailed {
                    chaos_type,
                    error: error.to_string(),
                    cleanup: serde_json::to_value(record).expect("records serialize"),
                })
                .await?;
        }
    }
    Ok(())
}

/// Cleans up a fault of an earlier attempt from its record, on whatever lab it names.
async fn cleanup_and_record(
    recorder: &Recorder<'_>,
    record: &CleanupRecord,
    chaos_type: ChaosType,
) -> Result<()> {
    match Lab::open_dir(record.lab_dir()).and_then(EtcdLab::from_lab) {
        Ok(mut subject) => cleanup_on(recorder, &mut subject, record, chaos_type).await,
        // The lab is gone, and every fault went with it.
        Err(_) => {
            recorder
                .publish(ChaosCleanedUp {
                    chaos_type,
                    duration_ms: 0,
                })
                .await?;
            Ok(())
        }
    }
}

/// The lab of `slot`, created on first use (or when the node count changes).
async fn slot_lab(config: &WorkerConfig, slot: usize, nodes: u32) -> Result<EtcdLab> {
    let name = format!("{}{slot}", lab_prefix(&config.worker_id));
    if let Ok(lab) = Lab::open(&config.data_dir, &name) {
        if lab.state.nodes.len() as u32 == nodes
            && lab.state.isolation == config.isolation
            && lab.is_intact()
        {
            return EtcdLab::from_lab(lab);
        }
        // Another shape, or what a reboot or a crash left of it: start over.
        lab.destroy().await?;
    }
    EtcdLab::create(&config.data_dir, Some(name), nodes, config.isolation).await
}

/// What the log says of one trial so far.
struct TrialHistory {
    finished: bool,
    /// Faults injected and not cleaned up, with their records.
    uncleaned: Vec<CleanupRecord>,
}

async fn trial_history(log: &EventLog, campaign_id: &str, trial_id: &str) -> Result<TrialHistory> {
    let filter = EventFilter {
        campaign_id: Some(campaign_id.to_string()),
        trial_id: Some(trial_id.to_string()),
        event_type: None,
    };
    let events = log.read(&filter, false).await?;
    futures::pin_mut!(events);
    let mut finished = false;
    let mut open: Option<CleanupRecord> = None;
    while let Some(stored) = events.next().await {
        let Ok(event) = stored?.event else { continue };
        match event.data {
            EventData::TrialFinished(_) => finished = true,
            EventData::ChaosInjected(injected) => {
                open = serde_json::from_value(injected.cleanup).ok();
            }
            EventData::ChaosCleanedUp(_) => open = None,
            _ => {}
        }
    }
    Ok(TrialHistory {
        finished,
        uncleaned: open.into_iter().collect(),
    })
}

/// Cleans up every fault in the log that was injected and never cleaned up, by the worker
/// `worker_id` (or by any, when `None`), on this host's labs. Returns how many it cleaned.
pub async fn recover(
    log: &EventLog,
    data_dir: &std::path::Path,
    worker_id: Option<&str>,
) -> Result<usize> {
    let stream = log.jetstream().get_stream(STREAM_NAME).await;
    if stream.is_err() {
        return Ok(0);
    }
    // Only the two event types matter: the latest injection of each trial, and whether a
    // cleanup came after it (stream order), read without touching the rest of the log.
    let mut open: HashMap<(String, String), (u64, ChaosInjected)> = HashMap::new();
    for_each_of_type(log, "ChaosInjected", |sequence, event| {
        if let (Some(trial_id), EventData::ChaosInjected(injected)) = (event.trial_id, event.data) {
            open.insert((event.campaign_id, trial_id), (sequence, injected));
        }
    })
    .await?;
    for_each_of_type(log, "ChaosCleanedUp", |sequence, event| {
        if let Some(trial_id) = event.trial_id {
            let key = (event.campaign_id, trial_id);
            if open
                .get(&key)
                .is_some_and(|(injected_at, _)| *injected_at < sequence)
            {
                open.remove(&key);
            }
        }
    })
    .await?;
    let producer = Producer::here("worker");
    let mut cleaned = 0;
    for ((campaign_id, trial_id), (_, injected)) in open {
        if worker_id.is_some_and(|id| id != injected.worker) {
            continue;
        }
        let Ok(record) = serde_json::from_value::<CleanupRecord>(injected.cleanup.clone()) else {
            continue;
        };
        if !record
            .lab_dir()
            .starts_with(data_dir.canonicalize().unwrap_or(data_dir.to_path_buf()))
        {
            continue;
        }
        let recorder = Recorder {
            log,
            producer: &producer,
            campaign_id: &campaign_id,
            trial_id: &trial_id,
        };
        cleanup_and_record(&recorder, &record, injected.chaos.chaos_type()).await?;
        cleaned += 1;
    }
    Ok(cleaned)
}

/// Calls `each` with the stream sequence and event of every stored event of `event_type`.
async fn for_each_of_type(
    log: &EventLog,
    event_type: &str,
    mut each: impl FnMut(u64, Event),
) -> Result<()> {
    let filter = EventFilter {
        event_type: Some(event_type.to_string()),
        ..EventFilter::default()
    };
    let events = log.read(&filter, false).await?;
    futures::pin_mut!(events);
    while let Some(stored) = events.next().await {
        let stored = stored?;
        if let Ok(event) = stored.event {
            each(stored.sequence, event);
        }
    }
    Ok(())
}
