//! The trial worker: a durable JetStream pull consumer on `TrialRequested` (workers compete for
//! trials), running trials each on a lab of its own (`trial.rs`), publishing every lifecycle
//! event, and cleaning up every fault it injected, whatever happens (`recover.rs`).
//!
//! Durability rules: `ChaosInjected`, with the cleanup record, is acknowledged by JetStream
//! before the fault is applied; the `TrialRequested` message is acknowledged only after
//! `TrialFinished` is; an interrupted trial is cleaned up and handed back (NAK), never
//! acknowledged. A worker restarted after a crash first cleans up what it had injected.

mod allowed;
mod recover;
mod trial;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemas::event::{Event, EventData, Producer};
use schemas::log::{CampaignCache, Delivery, DurableSpec, EventLog, next_delivery};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::error::Result;
use crate::lab::{Isolation, Lab, LabOptions};
pub use allowed::AllowedVariants;
pub use recover::{Recovery, recover};
use trial::{Recorder, TrialContext, TrialEnd, run_trial};
/// The durable consumer all workers share.
pub const CONSUMER: &str = "eval-worker";
/// How often a running trial tells JetStream it is still being worked on.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

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
    /// The variants whose `command` this worker runs; any other managed operator's trial ends
    /// `errored` before anything starts.
    pub allowed: AllowedVariants,
    /// Who runs the managed operators, when not this worker's user (a root worker's
    /// `--operator-user`, by default `nobody`).
    pub operator_user: Option<crate::operator::RunAs>,
    /// The kubeconfig context for trials on `runtime: kubernetes` (`--context`), over the
    /// campaign's `context`.
    pub kube_context: Option<String>,
}

struct Shared {
    log: EventLog,
    /// The durable consumer's name, for the record of a rejected message.
    consumer: String,
    config: WorkerConfig,
    producer: Producer,
    /// Free lab slots.
    slots: Mutex<Vec<usize>>,
    /// Running trials per campaign, against the campaign's `parallel`.
    running: Mutex<HashMap<String, u32>>,
    /// Each campaign's `CampaignPublished` (variants, operator time zone), read once.
    campaigns: CampaignCache,
}

/// Runs the worker until `shutdown`: recovers faults left by an earlier run of this worker, then
/// takes trials. On shutdown the running trials are cleaned up and handed back, and the labs
/// are removed.
pub async fn run(log: EventLog, config: WorkerConfig, shutdown: CancellationToken) -> Result<()> {
    let recovery = recover(&log, &config.data_dir, Some(&config.worker_id)).await?;
    if recovery.cleaned > 0 {
        info!(
            recovered = recovery.cleaned,
            "cleaned up faults left by an earlier run"
        );
    }
    for (trial_id, reason) in &recovery.refused {
        warn!(%trial_id, %reason, "refused a cleanup record");
    }
    sweep_stale_labs().await;
    let (name, filter) = match &config.campaign {
        Some(campaign_id) => (
            format!("{CONSUMER}-run-{campaign_id}"),
            format!("eval.{campaign_id}.*.TrialRequested"),
        ),
        None => (CONSUMER.to_string(), "eval.*.*.TrialRequested".to_string()),
    };
    let consumer = log
        .durable_consumer(&DurableSpec {
            name: name.clone(),
            description: "evalctl workers: run every requested trial".to_string(),
            filter_subjects: vec![filter],
            ack_wait: Duration::from_secs(30),
            // Unlimited: a trial waiting for its campaign's `parallel` is handed back every
            // second, and each time counts as a delivery. The trial's own starts, from the log,
            // bound how often it is tried (`MAX_STARTS`).
            max_deliver: None,
        })
        .await?;
    let stream = log.stream().await?;

    let shared = Arc::new(Shared {
        producer: Producer::here("worker"),
        consumer: name.clone(),
        slots: Mutex::new((0..config.concurrency.max(1)).rev().collect()),
        running: Mutex::new(HashMap::new()),
        campaigns: CampaignCache::default(),
        log,
        config,
    });
    let tracker = TaskTracker::new();
    // One permit per free slot: a trial is fetched only when a lab is free, without polling.
    let free = Arc::new(tokio::sync::Semaphore::new(
        shared.config.concurrency.max(1),
    ));
    while let Some((delivery, permit)) = next_delivery(&consumer, &free, &shutdown, "a trial").await
    {
        let slot = shared
            .slots
            .lock()
            .expect("slots")
            .pop()
            .expect("a permit is a free slot");
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            handle(&shared, slot, delivery, &shutdown).await;
            shared.slots.lock().expect("slots").push(slot);
            drop(permit);
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
    sweep_stale_labs().await;
    Ok(())
}

/// Removes what killed workers left on this host, whatever their data dir (see
/// [`Lab::remove_stale`]): when a worker starts, before each trial (a worker may die while
/// another runs), and when it stops. A failure is logged; the worker goes on.
pub(super) async fn sweep_stale_labs() {
    match Lab::remove_stale().await {
        Ok(removed) => {
            for (stale, result) in removed {
                match result {
                    Ok(()) => {
                        info!(lab = %stale.state.name, dir = %stale.state.dir.display(), reason = %stale.reason, "removed a stale lab")
                    }
                    Err(error) => {
                        warn!(lab = %stale.state.name, %error, "a stale lab was not fully removed")
                    }
                }
            }
        }
        Err(error) => warn!(%error, "cannot read this host's lab registry"),
    }
}

fn lab_prefix(worker_id: &str) -> String {
    format!("w-{worker_id}-")
}

/// One `TrialRequested` message: run it, then acknowledge, hand back or drop it.
async fn handle(
    shared: &Shared,
    slot: usize,
    mut delivery: Delivery,
    shutdown: &CancellationToken,
) {
    let message = delivery.message();
    let event = match schemas::log::read_event_to_act_on(&message.subject, &message.payload) {
        Ok(Event {
            data: EventData::TrialRequested(requested),
            campaign_id,
            trial_id: Some(trial_id),
            ..
        }) => (campaign_id, trial_id, requested),
        other => {
            let why = match other {
                Err(error) => format!("not a readable TrialRequested: {error}"),
                Ok(event) => format!(
                    "not a TrialRequested this build can run (a {} whose data is not a trial this build knows: an unknown subject, runtime or field)",
                    event.event_type()
                ),
            };
            delivery
                .reject(&shared.log, &shared.producer, &shared.consumer, &why)
                .await;
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
        delivery.nak(Some(Duration::from_secs(1))).await;
        return;
    }
    delivery.keep_alive(PROGRESS_EVERY);
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
    let outcome = run_trial(&trial, shared, slot, shutdown).await;
    *shared
        .running
        .lock()
        .expect("running")
        .entry(campaign_id.clone())
        .or_default() -= 1;
    match outcome {
        Ok(TrialEnd::Finished) => {
            delivery.double_ack().await;
            let cooldown = requested.trial.cooldown_seconds;
            if cooldown > 0 {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(cooldown.into())) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
        Ok(TrialEnd::Interrupted) => delivery.nak(None).await,
        Err(error) => {
            warn!(%trial_id, %error, "trial could not be recorded; handing it back");
            delivery.nak(Some(Duration::from_secs(5))).await;
        }
    }
}

/// The lab of `slot` for `subject`, created on first use (or when its shape changes).
/// What a trial's lab must be.
pub(super) struct LabShape {
    pub(super) subject: schemas::campaign::SubjectKind,
    /// Every node, PD members included.
    pub(super) nodes: u32,
    pub(super) pd_members: u32,
    pub(super) tikv_binaries: Option<crate::tikv::binaries::TikvBinaries>,
}

async fn slot_lab(config: &WorkerConfig, slot: usize, shape: LabShape) -> Result<Lab> {
    let LabShape {
        subject,
        nodes,
        pd_members,
        tikv_binaries,
    } = shape;
    let name = format!("{}{slot}", lab_prefix(&config.worker_id));
    if let Ok(lab) = Lab::open(&config.data_dir, &name) {
        if lab.state.nodes.len() as u32 == nodes
            && lab.state.subject == subject
            && lab.state.pd_members == pd_members
            && lab.state.tikv_binaries == tikv_binaries
            && lab.state.isolation == config.isolation
            && lab.is_intact()
        {
            return Ok(lab);
        }
        // Another shape, or what a reboot or a crash left of it: start over.
        lab.destroy().await?;
    }
    Lab::create(LabOptions {
        data_dir: config.data_dir.clone(),
        name: Some(name),
        subject,
        nodes,
        isolation: config.isolation,
        pd_members,
        tikv_binaries,
        held: true,
    })
    .await
}
