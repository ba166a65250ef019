//! Faults left behind: what the log says of a trial (finished, a fault injected and not cleaned
//! up), the cleanup of a fault from its record on the lab it names, and `recover`, which cleans
//! up what a dead worker left, from the log alone.

use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;
use schemas::campaign::{ChaosType, SubjectKind};
use schemas::event::{
    ChaosCleanedUp, ChaosCleanupFailed, ChaosInjected, Event, EventData, Producer,
};
use schemas::log::{EventFilter, EventLog, STREAM_NAME};
use tracing::warn;

use super::trial::Recorder;
use crate::error::Result;
use crate::etcd::EtcdSubject;
use crate::faults::{self, CleanupRecord};
use crate::lab::Lab;
use crate::runtime::Runtime;
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
    match faults::cleanup(subject, runtime, record).await {
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

/// Cleans up a fault of an earlier attempt from its record, on whatever lab it names.
pub(super) async fn cleanup_and_record(
    recorder: &Recorder<'_>,
    record: &CleanupRecord,
    chaos_type: ChaosType,
) -> Result<()> {
    match Lab::open_dir(record.lab_dir()) {
        Ok(mut lab) if lab.state.subject == SubjectKind::Etcd => {
            cleanup_on(recorder, &EtcdSubject, &mut lab, record, chaos_type).await
        }
        // The lab is gone, and every fault went with it (a lab of another subject is never
        // made by this build).
        _ => {
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

/// What the log says of one trial so far.
pub(super) struct TrialHistory {
    pub(super) finished: bool,
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
    let mut open: Option<CleanupRecord> = None;
    while let Some(stored) = events.next().await {
        let Ok(event) = stored?.event else { continue };
        match event.data {
            EventData::TrialFinished(_) => finished = true,
            EventData::ChaosInjected(injected) => {
                open = injected.cleanup.record().cloned();
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
        let Some(record) = injected.cleanup.record().cloned() else {
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
