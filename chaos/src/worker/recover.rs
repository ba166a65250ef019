//! Faults left behind: what the log says of a trial (finished, a fault injected and not cleaned
//! up), the cleanup of a fault from its record on the lab it names, and `recover`, which cleans
//! up what a dead worker left, from the log alone.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use futures::StreamExt;
use schemas::campaign::ChaosType;
use schemas::event::{
    ChaosCleanedUp, ChaosCleanupFailed, ChaosInjected, Event, EventData, Producer,
};
use schemas::log::{EventFilter, EventLog, STREAM_NAME};
use tracing::warn;

use super::trial::Recorder;
use crate::error::Result;
use crate::faults::{self, CleanupRecord};
use crate::lab::Lab;
use crate::runtime::Runtime;
use crate::subject::LabSubject;
use crate::subject::Subject;

/// Cleans up `record` on `runtime` and publishes how it went.
pub(super) async fn cleanup_on<R: Runtime>(
    recorder: &Recorder<'_>,
    subject: &impl Subject,
    runtime: &mut R,
    record: &CleanupRecord,
    chaos_type: ChaosType,
) -> Result<()> {
    let started = Instant::now();
    let done = faults::cleanup(subject, runtime, record).await;
    publish_cleanup(recorder, done, started, record, chaos_type).await
}

/// Publishes how a cleanup begun at `started` went: `ChaosCleanedUp`, or `ChaosCleanupFailed`
/// with the record, for a later cleanup to take up.
async fn publish_cleanup(
    recorder: &Recorder<'_>,
    done: Result<()>,
    started: Instant,
    record: &CleanupRecord,
    chaos_type: ChaosType,
) -> Result<()> {
    match done {
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
                    cleanup: record.clone().into(),
                })
                .await?;
        }
    }
    Ok(())
}

/// Cleans up a fault of an earlier attempt from its record, on the lab of `data_dir` it names.
/// A record naming anything else (another directory, a file or process its lab did not make) is
/// refused: nothing is done, and the refusal is published as the cleanup's failure. Returns the
/// refusal.
pub(super) async fn cleanup_and_record(
    recorder: &Recorder<'_>,
    data_dir: &Path,
    record: &CleanupRecord,
    chaos_type: ChaosType,
) -> Result<Option<String>> {
    if let CleanupRecord::Kubernetes(kube_record) = record {
        return cleanup_in_cluster(recorder, record, kube_record, chaos_type).await;
    }
    let refused = match Lab::open_dir(data_dir, record.lab_dir().unwrap_or(Path::new(""))) {
        Ok(Some(mut lab)) => match LabSubject::of(&lab.state)
            .and_then(|subject| faults::check_record(&subject, &lab, record).map(|()| subject))
        {
            Ok(subject) => {
                cleanup_on(recorder, &subject, &mut lab, record, chaos_type).await?;
                return Ok(None);
            }
            Err(error) => error.to_string(),
        },
        // The lab is gone, and every fault went with it.
        Ok(None) => {
            recorder
                .publish(ChaosCleanedUp {
                    chaos_type,
                    duration_ms: 0,
                })
                .await?;
            return Ok(None);
        }
        Err(error) => error.to_string(),
    };
    warn!(trial_id = %recorder.trial_id, reason = %refused, "cleanup record refused");
    recorder
        .publish(ChaosCleanupFailed {
            chaos_type,
            error: refused.clone(),
            cleanup: record.clone().into(),
        })
        .await?;
    Ok(Some(refused))
}

/// Cleans up a fault in a Kubernetes cluster from its record alone (the context and namespace it
/// names, the trial's label), with a client of its own, and publishes how it went. A record that
/// is not one this harness plans for the trial is refused before any request; returns the
/// refusal.
async fn cleanup_in_cluster(
    recorder: &Recorder<'_>,
    record: &CleanupRecord,
    kube_record: &schemas::cleanup::KubeRecord,
    chaos_type: ChaosType,
) -> Result<Option<String>> {
    let started = Instant::now();
    if let Err(refusal) = crate::kubernetes::faults::check_record(kube_record, recorder.trial_id) {
        let refused = refusal.to_string();
        warn!(trial_id = %recorder.trial_id, reason = %refused, "cleanup record refused");
        publish_cleanup(recorder, Err(refusal), started, record, chaos_type).await?;
        return Ok(Some(refused));
    }
    let done = async {
        let connection = crate::kubernetes::client::connect(kube_record.context.as_deref()).await?;
        crate::kubernetes::faults::cleanup(&connection.client, kube_record).await
    }
    .await;
    publish_cleanup(recorder, done, started, record, chaos_type).await?;
    Ok(None)
}

/// Whether `cleanup` is of a fault in a Kubernetes cluster, which any worker that reaches the
/// cluster may undo (it is on no host's lab).
fn in_cluster(cleanup: &schemas::cleanup::Cleanup) -> bool {
    matches!(cleanup.record(), Some(CleanupRecord::Kubernetes(_)))
}

/// What the log says of one trial so far.
pub(super) struct TrialHistory {
    pub(super) finished: bool,
    /// How many times a worker started it (its `TrialStarted` events).
    pub(super) started: u32,
    /// Faults injected and not cleaned up, with their records.
    pub(super) uncleaned: Vec<CleanupRecord>,
}

pub(super) async fn trial_history(
    log: &EventLog,
    campaign_id: &str,
    trial_id: &str,
) -> Result<TrialHistory> {
    let filter = EventFilter {
        campaign_id: Some(campaign_id.to_string()),
        trial_id: Some(trial_id.to_string()),
        event_type: None,
    };
    let events = log.read(&filter, false).await?;
    futures::pin_mut!(events);
    let mut finished = false;
    let mut started = 0;
    let mut open: Option<CleanupRecord> = None;
    let here = schemas::event::host_name();
    while let Some(stored) = events.next().await {
        let Ok(event) = stored?.event else { continue };
        let made_here = event.producer.host == here;
        match event.data {
            EventData::TrialFinished(_) => finished = true,
            EventData::TrialStarted(_) => started += 1,
            // Another host's fault is that host's worker's to clean up (see `for_each_made_here`).
            EventData::ChaosInjected(injected) if made_here || in_cluster(&injected.cleanup) => {
                open = injected.cleanup.record().cloned();
            }
            EventData::ChaosCleanedUp(_)
                if made_here || matches!(open, Some(CleanupRecord::Kubernetes(_))) =>
            {
                open = None
            }
            _ => {}
        }
    }
    Ok(TrialHistory {
        finished,
        started,
        uncleaned: open.into_iter().collect(),
    })
}

/// What `recover` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Faults cleaned up (or found gone with their lab).
    pub cleaned: usize,
    /// Records refused, each with its trial and why: they named something outside this host's
    /// labs, and nothing was done.
    pub refused: Vec<(String, String)>,
}

/// Cleans up every fault in the log that was injected and never cleaned up, by the worker
/// `worker_id` (or by any, when `None`), on the labs of `data_dir`. A fault injected on another
/// host (the injection's producer), or whose lab is not under `data_dir/labs`, is another
/// worker's and left alone; a record that names anything there its lab did not make is refused.
pub async fn recover(log: &EventLog, data_dir: &Path, worker_id: Option<&str>) -> Result<Recovery> {
    let mut recovery = Recovery::default();
    let stream = log.jetstream().get_stream(STREAM_NAME).await;
    if stream.is_err() {
        return Ok(recovery);
    }
    // Only the two event types matter: the latest injection of each trial, and whether a
    // cleanup came after it (stream order), read without touching the rest of the log.
    let mut open: HashMap<(String, String), (u64, ChaosInjected)> = HashMap::new();
    for_each_made_here(log, "ChaosInjected", |sequence, event| {
        if let (Some(trial_id), EventData::ChaosInjected(injected)) = (event.trial_id, event.data) {
            open.insert((event.campaign_id, trial_id), (sequence, injected));
        }
    })
    .await?;
    for_each_made_here(log, "ChaosCleanedUp", |sequence, event| {
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
    let labs = data_dir.join("labs");
    for ((campaign_id, trial_id), (_, injected)) in open {
        if worker_id.is_some_and(|id| id != injected.worker) {
            continue;
        }
        let Some(record) = injected.cleanup.record().cloned() else {
            continue;
        };
        // Another host's lab (its own data dir) is its own worker's to clean; a path that
        // only looks like ours (`labs/../..`) is not skipped here but refused below.
        let ours = match record.lab_dir() {
            Some(lab_dir) => {
                lab_dir.starts_with(&labs)
                    || data_dir
                        .canonicalize()
                        .is_ok_and(|dir| lab_dir.starts_with(dir.join("labs")))
            }
            // A cluster's fault: the worker that injected it (this host's) undoes it.
            None => true,
        };
        if !ours {
            continue;
        }
        let recorder = Recorder {
            log,
            producer: &producer,
            campaign_id: &campaign_id,
            trial_id: &trial_id,
        };
        match cleanup_and_record(&recorder, data_dir, &record, injected.chaos.chaos_type()).await? {
            None => recovery.cleaned += 1,
            Some(reason) => recovery.refused.push((trial_id, reason)),
        }
    }
    Ok(recovery)
}

/// Calls `each` with the stream sequence and event of every stored event of `event_type` that a
/// process on this host published: a fault injected on another host is on that host's lab (a lab
/// here under the same path is another lab), and its own worker cleans it up.
async fn for_each_made_here(
    log: &EventLog,
    event_type: &str,
    mut each: impl FnMut(u64, Event),
) -> Result<()> {
    let here = schemas::event::host_name();
    let filter = EventFilter {
        event_type: Some(event_type.to_string()),
        ..EventFilter::default()
    };
    let events = log.read(&filter, false).await?;
    futures::pin_mut!(events);
    while let Some(stored) = events.next().await {
        let stored = stored?;
        if let Ok(event) = stored.event
            && event.producer.host == here
        {
            each(stored.sequence, event);
        }
    }
    Ok(())
}
