//! The scoring stage: a durable JetStream pull consumer of `TrialFinished` and
//! `OperatorCaptureFinished` events that reads the trial's events and, once the trial is
//! complete ([`Completeness`]: finished, and its operator.db capture ended when it has an
//! operator), scores them and publishes `TrialScored` with an id derived from the campaign, trial
//! and scorer version. Whichever of the two events comes second triggers the score, so every
//! event the capture read is in it.
//!
//! Delivery, as Vector's NATS source does it: a message is acknowledged only after its
//! `TrialScored` is acknowledged by the stream (or was already there, or the trial waits for the
//! other event); a failure is negatively acknowledged, so it comes back after a pause; an
//! envelope that can never be read is terminated, with an error logged. Redelivery is harmless:
//! the derived id makes JetStream drop a second publish within its duplicate window, and beyond
//! it the stage sees the stored `TrialScored` among the trial's events and publishes nothing.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use futures::StreamExt;
use schemas::event::{ChaosInjected, Event, EventData, Producer};
use schemas::log::{DurableSpec, EventFilter, EventLog, next_delivery};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::Result;
use crate::score::{Completeness, ScoringConfig, score, scored_event_id};

/// The durable consumer's name; every scoring stage shares it, so they compete for trials.
pub const CONSUMER_NAME: &str = "scoring";
/// What the consumer receives: every `TrialFinished` and `OperatorCaptureFinished`.
pub const FILTER_SUBJECTS: [&str; 2] =
    ["eval.*.*.TrialFinished", "eval.*.*.OperatorCaptureFinished"];
/// How long the server waits for an acknowledgement before redelivering.
pub const ACK_WAIT: Duration = Duration::from_secs(60);
/// How long a failed trial waits before it is delivered again.
pub const RETRY_DELAY: Duration = Duration::from_secs(5);

/// What handling one `TrialFinished` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Published,
    AlreadyScored,
    /// Finished, but its operator.db capture has not ended yet: its `OperatorCaptureFinished`
    /// triggers the score.
    AwaitingCapture,
    /// Its capture ended before the trial did: its `TrialFinished` triggers the score.
    NotFinished,
}

/// Runs the scoring stage until `shutdown` is cancelled; the trial being scored then is finished
/// first. Fails when the consumer cannot be created (a fetch that fails is logged and tried again).
pub async fn run(log: EventLog, config: ScoringConfig, shutdown: CancellationToken) -> Result<()> {
    let consumer = durable_consumer(&log).await?;
    let version = config.version();
    let producer = Producer::here("score");
    info!(%version, consumer = CONSUMER_NAME, "scoring stage started");
    // One trial at a time, each fetched when the previous one is answered.
    let slot = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
    while let Some((delivery, _permit)) =
        next_delivery(&consumer, &slot, &shutdown, "a finished trial").await
    {
        let message = delivery.message();
        let finished = match schemas::log::read_event_to_act_on(&message.subject, &message.payload)
        {
            Ok(event) => event,
            Err(error) => {
                delivery
                    .reject(
                        &log,
                        &producer,
                        CONSUMER_NAME,
                        &format!("unreadable event: {error}"),
                    )
                    .await;
                continue;
            }
        };
        let Some(trial_id) = finished.trial_id.clone() else {
            debug!(subject = %message.subject, "an event without a trial id; nothing to score");
            delivery.ack().await;
            continue;
        };
        match score_trial(
            &log,
            &config,
            &version,
            &producer,
            &finished.campaign_id,
            &trial_id,
        )
        .await
        {
            Ok(handled) => {
                debug!(campaign_id = %finished.campaign_id, %trial_id, ?handled, "trial handled");
                delivery.ack().await;
            }
            Err(error) => {
                warn!(campaign_id = %finished.campaign_id, %trial_id, %error, "scoring failed; it will be retried");
                delivery.nak(Some(RETRY_DELAY)).await;
            }
        }
    }
    info!("scoring stage stopped");
    Ok(())
}

/// The stage's durable consumer, created on first use (and brought to the current filter).
pub async fn durable_consumer(log: &EventLog) -> Result<PullConsumer> {
    Ok(log
        .durable_consumer(&DurableSpec {
            name: CONSUMER_NAME.to_string(),
            description: "eval scoring stage: scores every finished trial".to_string(),
            filter_subjects: FILTER_SUBJECTS.map(str::to_string).to_vec(),
            ack_wait: ACK_WAIT,
            max_deliver: None,
        })
        .await?)
}

/// Reads one trial's events in log order; envelopes that cannot be read are skipped.
pub async fn read_trial(log: &EventLog, campaign_id: &str, trial_id: &str) -> Result<Vec<Event>> {
    let filter = EventFilter {
        campaign_id: Some(campaign_id.to_string()),
        trial_id: Some(trial_id.to_string()),
        event_type: None,
    };
    let mut stored = std::pin::pin!(log.read(&filter, false).await?);
    let mut events = Vec::new();
    while let Some(next) = stored.next().await {
        let next = next?;
        match next.event {
            Ok(event) => events.push(event),
            Err(error) => {
                warn!(sequence = next.sequence, subject = %next.subject, %error, "unreadable event skipped")
            }
        }
    }
    Ok(events)
}

/// Whether the trial's latest injection names an operator.db whose capture has not ended, told
/// from the last event of two subjects (the server's index), without reading the trial: the
/// `TrialFinished` of an operator trial usually comes before its capture's end.
async fn awaits_capture(log: &EventLog, campaign_id: &str, trial_id: &str) -> Result<bool> {
    let Some(injected) = log
        .last_event(campaign_id, Some(trial_id), "ChaosInjected")
        .await?
    else {
        return Ok(false);
    };
    let EventData::ChaosInjected(ChaosInjected {
        operator_db: Some(_),
        ..
    }) = &injected.data
    else {
        return Ok(false);
    };
    let ended = log
        .last_event(campaign_id, Some(trial_id), "OperatorCaptureFinished")
        .await?;
    Ok(!matches!(
        ended.map(|event| event.data),
        Some(EventData::OperatorCaptureFinished(end)) if end.injection_id == injected.id
    ))
}

/// Scores one trial and publishes its `TrialScored` unless the log already holds it.
pub async fn score_trial(
    log: &EventLog,
    config: &ScoringConfig,
    version: &str,
    producer: &Producer,
    campaign_id: &str,
    trial_id: &str,
) -> Result<Handled> {
    if awaits_capture(log, campaign_id, trial_id).await? {
        return Ok(Handled::AwaitingCapture);
    }
    let events = read_trial(log, campaign_id, trial_id).await?;
    let id = scored_event_id(campaign_id, trial_id, version);
    if events.iter().any(|event| event.id == id) {
        return Ok(Handled::AlreadyScored);
    }
    let completeness = Completeness::of(&events);
    if !completeness.finished() {
        return Ok(Handled::NotFinished);
    }
    if !completeness.complete() {
        return Ok(Handled::AwaitingCapture);
    }
    let trial_score = score(&events, config);
    log.publish(&trial_score.to_event(producer)).await?;
    Ok(Handled::Published)
}
