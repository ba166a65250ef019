//! One trial's lifecycle on a subject and a runtime: reset, healthy, initial state, the fault
//! planned, recorded and applied, the managed operator and the following of its operator.db, the
//! watch, the final state, the cleanup and `TrialFinished`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use schemas::campaign::{ChaosSpec, Runtime as RuntimeKind, SubjectKind, TrialSpec};
use schemas::event::{
    CampaignPublished, CapturePhase, ChaosInjected, Event, EventData, Producer, ResolvedVariant,
    StateCaptured, SubjectHealthy, SubjectReset, TrialFinished, TrialStarted, TrialStatus,
    WatchHealth,
};
use schemas::log::{EventFilter, EventLog};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::recover::{cleanup_and_record, cleanup_on, trial_history};
use super::{LabShape, Shared, slot_lab};
use crate::error::{Error, Result};
use crate::faults::{self, CleanupRecord};
use crate::kubernetes::faults::{Owner, Ways};
use crate::kubernetes::pods::PodSettings;
use crate::kubernetes::runtime::{KubePlace, KubeRuntime};
use crate::operator::{ManagedOperator, OperatorEnv, OperatorPlace, STOP_GRACE};
use crate::runtime::Runtime;
use crate::subject::{LabSubject, Subject};
use crate::tikv::binaries::SearchPlaces;

/// How long the subject may take to become healthy after a reset: etcd's members elect in
/// seconds; a fresh TiKV cluster elects PD's leader, then its stores register and bootstrap the
/// first region, six processes on a shared host.
fn healthy_timeout(subject: SubjectKind) -> Duration {
    match subject {
        SubjectKind::Etcd => Duration::from_secs(60),
        SubjectKind::Tikv => Duration::from_secs(120),
    }
}
/// How often the subject is checked while a trial is watched.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Publishes the events of one trial.
pub(super) struct Recorder<'a> {
    pub(super) log: &'a EventLog,
    pub(super) producer: &'a Producer,
    pub(super) campaign_id: &'a str,
    pub(super) trial_id: &'a str,
}

/// What the worker knows of the trial it runs.
pub(super) struct TrialContext<'a> {
    pub(super) recorder: Recorder<'a>,
    pub(super) worker_id: &'a str,
    pub(super) spec: &'a TrialSpec,
}

impl Recorder<'_> {
    /// Publishes one event and waits until it is durable.
    pub(super) async fn publish(&self, data: impl Into<EventData>) -> Result<Event> {
        let event = Event::new(self.producer, self.campaign_id, Some(self.trial_id), data);
        self.log.publish(&event).await?;
        Ok(event)
    }

    pub(super) async fn finish(
        &self,
        status: TrialStatus,
        reason: Option<String>,
    ) -> Result<TrialEnd> {
        info!(trial_id = %self.trial_id, ?status, reason = reason.as_deref().unwrap_or(""), "trial finished");
        self.publish(TrialFinished { status, reason }).await?;
        Ok(TrialEnd::Finished)
    }
}

/// How many times a trial is started before it ends `errored`: a trial that kills its worker
/// every time does not loop for ever.
pub(super) const MAX_STARTS: u32 = 5;

pub(super) enum TrialEnd {
    Finished,
    /// Shutdown came first: cleaned up, to be run again.
    Interrupted,
}

pub(super) async fn run_trial(
    trial: &TrialContext<'_>,
    shared: &Shared,
    slot: usize,
    shutdown: &CancellationToken,
) -> Result<TrialEnd> {
    let recorder = &trial.recorder;
    let chaos_type = trial.spec.chaos.chaos_type();
    let history = trial_history(recorder.log, recorder.campaign_id, recorder.trial_id).await?;
    if history.finished {
        return Ok(TrialEnd::Finished);
    }
    // A previous attempt (of a worker that died) may have left its fault behind, and its lab.
    super::sweep_stale_labs().await;
    for record in history.uncleaned {
        cleanup_and_record(recorder, &shared.config.data_dir, &record, chaos_type).await?;
    }
    // Counted from the log, not from deliveries: a trial handed back while its campaign is at
    // its `parallel` is delivered again without being started.
    let attempt = history.started + 1;
    if history.started >= MAX_STARTS {
        return recorder
            .finish(
                TrialStatus::Errored,
                Some(format!(
                    "started {} times without finishing (each time its worker died or was stopped); not tried again",
                    history.started
                )),
            )
            .await;
    }
    recorder
        .publish(TrialStarted {
            worker: trial.worker_id.to_string(),
            attempt,
        })
        .await?;

    // The subject and the runtime the trial's settings name; every pair this build cannot
    // drive ends the trial here, before anything starts.
    let spec = trial.spec;
    match (spec.subject, spec.subject_settings.runtime) {
        (subject, RuntimeKind::Lab) => {
            // TiKV's programs, where this host has them: the preflight refused the campaign
            // on a host without them, but this worker may run on another host.
            let binaries = match subject {
                SubjectKind::Etcd => None,
                SubjectKind::Tikv => {
                    match SearchPlaces::here(spec.subject_settings.binaries.as_deref()).binaries() {
                        Ok(binaries) => Some(binaries),
                        Err(missing) => {
                            return recorder
                                .finish(
                                    TrialStatus::Errored,
                                    Some(format!(
                                        "tikv on the lab runtime on this worker's host: {missing}"
                                    )),
                                )
                                .await;
                        }
                    }
                }
            };
            let shape = LabShape {
                subject,
                nodes: spec.subject_settings.lab_nodes(subject),
                pd_members: spec.subject_settings.pd_members_of(subject),
                tikv_binaries: binaries,
            };
            let lab = match slot_lab(&shared.config, slot, shape).await {
                Ok(lab) => lab,
                Err(error) => {
                    return recorder
                        .finish(TrialStatus::Errored, Some(format!("lab: {error}")))
                        .await;
                }
            };
            match LabSubject::of(&lab.state) {
                Ok(subject) => run_on(trial, shared, &subject, lab, shutdown).await,
                Err(error) => {
                    recorder
                        .finish(TrialStatus::Errored, Some(format!("lab: {error}")))
                        .await
                }
            }
        }
        (subject, RuntimeKind::Kubernetes) => match open_cluster(trial, shared, subject).await {
            Ok((subject, runtime, _turn)) => {
                run_on(trial, shared, &subject, runtime, shutdown).await
            }
            Err(error) => {
                recorder
                    .finish(TrialStatus::Errored, Some(format!("kubernetes: {error}")))
                    .await
            }
        },
    }
}

/// One trial at a time per cluster namespace in this worker: two trials' faults in one namespace
/// would land in each other's.
static NAMESPACE_TURNS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

/// The trial's subject in its cluster: the client of the context (`--context` over the
/// campaign's), the pods of its namespace and selectors, a port-forward to each; and the
/// namespace's turn, held for the trial.
async fn open_cluster(
    trial: &TrialContext<'_>,
    shared: &Shared,
    subject: SubjectKind,
) -> Result<(LabSubject, KubeRuntime, tokio::sync::OwnedMutexGuard<()>)> {
    let settings = &trial.spec.subject_settings;
    let context = shared
        .config
        .kube_context
        .clone()
        .or_else(|| settings.context.clone());
    let connection = crate::kubernetes::client::connect(context.as_deref()).await?;
    let place = KubePlace {
        subject,
        namespace: settings
            .namespace
            .clone()
            .unwrap_or_else(|| connection.default_namespace.clone()),
        pods: PodSettings {
            selector: settings.selector.clone(),
            pd_selector: settings.pd_selector.clone(),
            cluster: settings.cluster.clone(),
        },
        owner: Owner {
            campaign_id: trial.recorder.campaign_id.to_string(),
            trial_id: trial.recorder.trial_id.to_string(),
            context,
        },
        endpoints: settings.endpoints.clone(),
        ways: Ways::of(settings),
    };
    let turn = {
        let key = format!("{} {}", connection.place, place.namespace);
        let mut turns = NAMESPACE_TURNS.lock().expect("namespace turns");
        turns.entry(key).or_default().clone()
    };
    let turn = turn.lock_owned().await;
    let runtime = KubeRuntime::open(connection, place).await?;
    let subject = match subject {
        SubjectKind::Etcd => LabSubject::Etcd(crate::etcd::EtcdSubject),
        SubjectKind::Tikv => {
            let (stores, pd_members) = runtime.counts();
            LabSubject::Tikv(crate::tikv::TikvSubject {
                stores,
                pd_members,
                binaries: None,
            })
        }
    };
    Ok((subject, runtime, turn))
}

/// The trial from the reset on, on `subject` with `runtime`.
async fn run_on<S: Subject, R: Runtime>(
    trial: &TrialContext<'_>,
    shared: &Shared,
    subject: &S,
    mut runtime: R,
    shutdown: &CancellationToken,
) -> Result<TrialEnd> {
    let recorder = &trial.recorder;
    let spec = trial.spec;
    let chaos_type = spec.chaos.chaos_type();
    let runtime = &mut runtime;
    let reset_started = Instant::now();
    if let Err(error) = subject.reset(runtime).await {
        return recorder
            .finish(TrialStatus::Errored, Some(format!("reset: {error}")))
            .await;
    }
    recorder
        .publish(SubjectReset {
            subject: spec.subject,
            instance: runtime.instance(),
            endpoints: runtime.endpoints(),
            duration_ms: reset_started.elapsed().as_millis() as u64,
        })
        .await?;
    match subject
        .wait_healthy(runtime, healthy_timeout(subject.kind()))
        .await
    {
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
            state: subject.capture_state(runtime).await,
            watch_health: None,
        })
        .await?;

    let record = match faults::plan(subject, runtime, &spec.chaos, spec.seed).await {
        Ok(record) => record,
        Err(error) => {
            return recorder
                .finish(TrialStatus::Errored, Some(format!("chaos: {error}")))
                .await;
        }
    };
    // A managed operator runs from before the fault, so that its monitor knows the healthy state.
    let operator = match start_operator(shared, trial, subject, runtime).await {
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
            cleanup: record.clone().into(),
            operator_db: operator
                .as_ref()
                .map(|operator| operator.operator_db.display().to_string()),
            // The capture stage on this host takes the trial.
            operator_host: operator.as_ref().map(|_| schemas::event::host_name()),
        })
        .await?;
    let injected_at = Instant::now();
    if let Err(error) = faults::apply(subject, runtime, &record).await {
        if let Some(operator) = operator {
            operator.stop().await;
        }
        cleanup_on(recorder, subject, runtime, &record, chaos_type).await?;
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
        subject,
        runtime,
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
            cleanup_on(recorder, subject, runtime, &record, chaos_type).await?;
            return Ok(TrialEnd::Interrupted);
        }
    };
    // The operator may have restarted nodes from its own process: take their pids from disk.
    runtime.reload()?;
    let healthy = subject.health(runtime).await.healthy;
    recorder
        .publish(StateCaptured {
            phase: CapturePhase::Final,
            healthy,
            state: subject.capture_state(runtime).await,
            watch_health,
        })
        .await?;
    cleanup_on(recorder, subject, runtime, &record, chaos_type).await?;
    recorder.finish(status, reason).await
}

/// The trial's variant, as its campaign resolved it; `None` for a baseline.
async fn trial_variant(
    shared: &Shared,
    trial: &TrialContext<'_>,
) -> Result<Option<(Arc<CampaignPublished>, ResolvedVariant)>> {
    if trial.spec.variant.is_none() || trial.spec.baseline {
        return Ok(None);
    }
    let campaign = shared
        .campaigns
        .get(&shared.log, trial.recorder.campaign_id)
        .await?;
    let variant = campaign.variant_of(trial.spec).cloned();
    Ok(variant.map(|variant| (campaign, variant)))
}

/// The trial's managed operator, started, when its variant has a `command`.
async fn start_operator(
    shared: &Shared,
    trial: &TrialContext<'_>,
    subject: &impl Subject,
    runtime: &impl Runtime,
) -> Result<Option<StartedOperator>> {
    let Some((campaign, resolved)) = trial_variant(shared, trial).await? else {
        return Ok(None);
    };
    let (process, operator_db) = match (&resolved.variant.command, &campaign.campaign.operator_db) {
        (Some(command), _) => {
            // The command comes from the log: run only what this host allows.
            shared
                .config
                .allowed
                .check(&resolved.variant)
                .map_err(Error::Refused)?;
            let run_as = shared.config.operator_user.as_ref();
            let place =
                OperatorPlace::make(&shared.config.data_dir, trial.recorder.trial_id, run_as)?;
            let operator_db = place.operator_db.clone();
            let env = OperatorEnv {
                trial_id: trial.recorder.trial_id.to_string(),
                operator_db: operator_db.clone(),
                subject: trial.spec.subject.to_string(),
                endpoints: runtime.endpoints(),
                pd_endpoints: subject
                    .pd_nodes()
                    .into_iter()
                    .filter_map(|number| runtime.node_endpoints(number).ok())
                    .map(|node| node.client_url())
                    .collect(),
                lab: runtime.instance(),
                data_dir: shared.config.data_dir.clone(),
            };
            let process = ManagedOperator::start(command, &env, &place, run_as)?;
            if let Err(error) = runtime.adopt_operator(process.pid()) {
                warn!(trial_id = %trial.recorder.trial_id, %error, "the operator is not in the host's registry: a crash would leave it running");
            }
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
async fn watch<S: Subject, R: Runtime>(
    subject: &S,
    runtime: &mut R,
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
            let health_now = subject.health(runtime).await;
            let (healthy, reason) = (health_now.healthy, health_now.reason);
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
            if let Err(error) = faults::cleanup(subject, runtime, record).await {
                warn!(%error, "ending the fault after its duration failed");
            }
        }
        let healthy = subject.health(runtime).await.healthy;
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
        ChaosSpec::LeaderEvict(params) => params.duration_seconds,
        ChaosSpec::PdLeaderKill(_) | ChaosSpec::RegionUnavailable(_) => None,
    }
}
