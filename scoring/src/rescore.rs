//! Re-scoring is a replay: read a campaign's events (or every campaign's) from the stream, score
//! every finished trial with the current scorer and rules, and publish new `TrialScored` events
//! beside the old ones. Nothing is rewritten.
//!
//! Resumable: the new events' ids derive from campaign, trial and scorer version, and a trial
//! whose `TrialScored` of this version is already in the log is skipped, so a rerun, or a run
//! after an interrupted one, publishes only what is missing.
//!
//! A replay reads the stream once, to its end: one campaign's subjects, or every campaign's in
//! one pass (a consumer per campaign would cost the server a search of the whole stream each).
//! One task pulls the messages and picks those the scorer reads; another parses them, scores
//! each trial as soon as it is complete (its `TrialFinished` and, for an operator trial, its
//! `OperatorCaptureFinished`: every captured event comes before it), encodes its `TrialScored`
//! and drops the trial's events. Scores are published once the read is done. A trial finished
//! without the end of its capture (a log written before captures announced their end, or no
//! capture stage ran) is scored at the end of the read from the events kept; one that still gets
//! an event after it was scored (which the harness does not write) is read again from the stream
//! before the publish, because a published score cannot be taken back.
//! Memory holds the events of the trials not finished yet (without the bulky fields the scorer
//! never reads) and the encoded scores.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use async_nats::jetstream::consumer;
use bytes::Bytes;
use futures::StreamExt;
use schemas::event::{Event, EventData, Outcome, Producer};
use schemas::log::{EncodedEvent, EventFilter, EventLog};
use tokio::sync::mpsc;
use tracing::warn;
use uuid::Uuid;

use crate::score::{Completeness, ScoringConfig, outcome_name, score, scored_event_id};
use crate::{Error, Result};

/// Which campaigns to re-score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RescoreFilter {
    All,
    Campaign(String),
}

/// Where a re-score is, for progress bars.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescoreProgress {
    pub campaign_id: String,
    pub n_campaigns: u64,
    pub n_campaigns_done: u64,
    /// Events the read will go through (those stored when it began).
    pub n_events_total: u64,
    pub n_events_read: u64,
    pub n_trials_scored: u64,
    pub n_published: u64,
}

/// What a re-score did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescoreReport {
    pub scorer_version: String,
    pub n_campaigns: u64,
    pub n_events_read: u64,
    /// Trials with at least one event.
    pub n_trials: u64,
    /// Trials with a `TrialFinished`: the ones scored.
    pub n_finished: u64,
    /// New `TrialScored` events stored.
    pub n_published: u64,
    /// Finished trials that already had a `TrialScored` of this version.
    pub n_already_scored: u64,
    /// Operator trials scored without the end of their capture in the log (older logs, or no
    /// capture stage ran for them): graded from what was captured.
    pub n_without_capture_end: u64,
    /// Newly scored trials by outcome (`success`, `failure`, `timeout`, `errored`).
    pub by_outcome: BTreeMap<String, u64>,
}

/// Scores waiting for their acknowledgement at once.
const PUBLISH_IN_FLIGHT: usize = 1024;
/// Progress is reported every this many events read.
const PROGRESS_EVERY: u64 = 5_000;
/// Messages are handed from the reading task to the scoring one in batches of this many.
const BATCH: usize = 256;

/// Re-scores the finished trials that `filter` selects with `config`; `progress` is called as the
/// replay goes.
pub async fn rescore(
    log: &EventLog,
    filter: &RescoreFilter,
    config: &ScoringConfig,
    mut progress: impl FnMut(&RescoreProgress),
) -> Result<RescoreReport> {
    let version = config.version();
    let scope = match filter {
        RescoreFilter::All => None,
        RescoreFilter::Campaign(id) => Some(id.as_str()),
    };
    let producer = Producer::here("rescore");
    let mut report = RescoreReport {
        scorer_version: version.clone(),
        ..RescoreReport::default()
    };
    let mut state = RescoreProgress {
        campaign_id: scope.unwrap_or("all").to_string(),
        n_campaigns: u64::from(scope.is_some()),
        ..RescoreProgress::default()
    };
    progress(&state);
    // One read of the stream (or of the campaign), whatever the number of campaigns: a consumer
    // per campaign costs the server a search of the whole stream for each.
    let mut replay = Replay {
        scope,
        version: &version,
        config,
        producer: &producer,
        trials: Vec::new(),
        index_of: HashMap::new(),
        state: &mut state,
    };
    // The campaigns are counted as the read meets them: listing them from the server's subject
    // index would make it walk every subject of the stream.
    let n_campaigns = replay.read(log, &mut progress).await?;
    let trials = std::mem::take(&mut replay.trials);
    report.n_campaigns = n_campaigns;
    state.n_campaigns = n_campaigns;
    report.n_trials += trials.len() as u64;
    // Trials with events after they were scored, to score again from the stream, by campaign.
    let mut again: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for trial in &trials {
        let id = scored_event_id(&trial.campaign_id, &trial.trial_id, &version);
        if trial.completeness.finished()
            && trial.scored.is_none()
            && trial.events.is_empty()
            && !trial.scored_ids.contains(&id)
        {
            again
                .entry(trial.campaign_id.as_str())
                .or_default()
                .insert(trial.trial_id.as_str());
        }
    }
    let mut read_again = HashMap::new();
    for (campaign_id, trial_ids) in &again {
        for (trial_id, events) in read_trials_again(log, campaign_id, trial_ids).await? {
            read_again.insert((campaign_id.to_string(), trial_id), events);
        }
    }
    let mut to_publish = Vec::new();
    for trial in trials {
        if !trial.completeness.finished() {
            continue;
        }
        report.n_finished += 1;
        let id = scored_event_id(&trial.campaign_id, &trial.trial_id, &version);
        if trial.scored_ids.contains(&id) {
            report.n_already_scored += 1;
            continue;
        }
        let (outcome, event) = match trial.scored {
            Some(scored) => scored,
            // Finished, its capture's end never came: graded from what the log holds.
            None if !trial.events.is_empty() => {
                report.n_without_capture_end += 1;
                let trial_score = score(&trial.events, config);
                (trial_score.outcome, trial_score.encode(&producer))
            }
            None => {
                let events = read_again
                    .remove(&(trial.campaign_id, trial.trial_id))
                    .unwrap_or_default();
                if events.iter().any(|event| event.id == id) {
                    report.n_already_scored += 1;
                    continue;
                }
                let events: Vec<Event> = events
                    .into_iter()
                    .filter(|event| !matches!(event.data, EventData::TrialScored(_)))
                    .collect();
                let trial_score = score(&events, config);
                (trial_score.outcome, trial_score.encode(&producer))
            }
        };
        *report
            .by_outcome
            .entry(outcome_name(outcome).to_string())
            .or_insert(0) += 1;
        to_publish.push(event);
        state.n_trials_scored += 1;
    }
    let summary = log
        .publish_encoded(to_publish, PUBLISH_IN_FLIGHT, |_| {})
        .await?;
    report.n_published += summary.stored;
    state.n_published += summary.stored;
    state.n_campaigns_done = n_campaigns;
    progress(&state);
    report.n_events_read = state.n_events_read;
    Ok(report)
}

/// One trial as the replay keeps it.
struct TrialEvents {
    campaign_id: String,
    trial_id: String,
    /// Its events so far, until it is scored.
    events: Vec<Event>,
    /// Ids of the trial's `TrialScored` events (the only ones a new score's id can equal).
    scored_ids: HashSet<Uuid>,
    completeness: Completeness,
    /// The outcome and encoded `TrialScored` made when the trial was complete, whereupon
    /// `events` was emptied. `None` for a finished trial with no events kept means it must be
    /// read again: its score of this version is there already, or an event followed its score.
    scored: Option<(Outcome, EncodedEvent)>,
}

struct Replay<'a, 'r> {
    /// The campaign read, or `None` for every campaign.
    scope: Option<&'a str>,
    version: &'a str,
    config: &'a ScoringConfig,
    producer: &'a Producer,
    trials: Vec<TrialEvents>,
    /// Each trial's index in `trials`, by campaign and trial id.
    index_of: HashMap<(String, String), usize>,
    state: &'r mut RescoreProgress,
}

impl Replay<'_, '_> {
    /// Reads the events of the scope: one task pulls the messages, this one parses them and
    /// scores each trial when its `TrialFinished` arrives. How many campaigns the events were of.
    async fn read(
        &mut self,
        log: &EventLog,
        progress: &mut impl FnMut(&RescoreProgress),
    ) -> Result<u64> {
        let read_error = |error: String| Error::Log(schemas::log::Error::Read(error));
        let filter = EventFilter {
            campaign_id: self.scope.map(str::to_string),
            ..EventFilter::default()
        };
        let (mut consumer, _release) = log
            .ordered_consumer(filter.subject(), consumer::DeliverPolicy::All)
            .await?;
        let initially_pending = consumer
            .info()
            .await
            .map_err(|error| read_error(error.to_string()))?
            .num_pending;
        self.state.n_events_total = initially_pending;
        if initially_pending == 0 {
            return Ok(0);
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(|error| read_error(error.to_string()))?;
        // The reading task only pulls the messages and picks those the scorer reads, so that it
        // keeps the server busy; this task parses and scores them. Parsing here, where the events
        // are dropped once scored, keeps each allocation on the thread that frees it.
        let (sender, mut receiver) =
            mpsc::channel::<(u64, Vec<(u64, async_nats::Subject, Bytes)>)>(16);
        let reader = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            let mut n_messages: u64 = 0;
            let mut campaigns: HashSet<String> = HashSet::new();
            while let Some(next) = messages.next().await {
                let mut message = next.map_err(|error| error.to_string())?;
                let info = message.info().map_err(|error| error.to_string())?;
                let (sequence, pending) = (info.stream_sequence, info.pending);
                n_messages += 1;
                if let Some(campaign) = message.subject.split('.').nth(1)
                    && !campaigns.contains(campaign)
                {
                    campaigns.insert(campaign.to_string());
                }
                let event_type = message.subject.rsplit('.').next().unwrap_or_default();
                if needed_payload(event_type, &message.payload) {
                    batch.push((
                        sequence,
                        message.subject.clone(),
                        std::mem::take(&mut message.message.payload),
                    ));
                }
                if n_messages >= BATCH as u64 || pending == 0 {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if sender.send((n_messages, full)).await.is_err() {
                        break;
                    }
                    n_messages = 0;
                }
                if pending == 0 {
                    break;
                }
            }
            Ok::<u64, String>(campaigns.len() as u64)
        });
        while let Some((n_messages, payloads)) = receiver.recv().await {
            let before = self.state.n_events_read;
            self.state.n_events_read += n_messages;
            if before / PROGRESS_EVERY != self.state.n_events_read / PROGRESS_EVERY {
                progress(self.state);
            }
            for (sequence, subject, payload) in payloads {
                match schemas::log::read_event(&subject, &payload) {
                    Ok(mut event) => {
                        if event.trial_id.is_some() && keep_for_scoring(&mut event) {
                            self.on_event(event);
                        }
                    }
                    Err(error) => warn!(sequence, %error, "unreadable event skipped"),
                }
            }
        }
        reader
            .await
            .map_err(|error| read_error(error.to_string()))?
            .map_err(read_error)
    }

    /// The index of a trial in `trials`, added on its first event.
    fn trial_index(&mut self, campaign_id: &str, trial_id: &str) -> usize {
        // A trial's events mostly come one after the other.
        if let Some(last) = self.trials.last()
            && last.trial_id == trial_id
            && last.campaign_id == campaign_id
        {
            return self.trials.len() - 1;
        }
        let key = (campaign_id.to_string(), trial_id.to_string());
        if let Some(index) = self.index_of.get(&key) {
            return *index;
        }
        self.trials.push(TrialEvents {
            campaign_id: campaign_id.to_string(),
            trial_id: trial_id.to_string(),
            events: Vec::new(),
            scored_ids: HashSet::new(),
            completeness: Completeness::default(),
            scored: None,
        });
        self.index_of.insert(key, self.trials.len() - 1);
        self.trials.len() - 1
    }

    /// One event of a trial, already slimmed by [`keep_for_scoring`].
    fn on_event(&mut self, event: Event) {
        let Some(trial_id) = event.trial_id.as_deref() else {
            return;
        };
        let index = self.trial_index(&event.campaign_id, trial_id);
        let trial = &mut self.trials[index];
        match &event.data {
            EventData::TrialScored(_) => {
                trial.scored_ids.insert(event.id);
                return;
            }
            _ if trial.events.is_empty() && trial.completeness.complete() => {
                // Scored, and its events are gone: score it again from the stream at the end.
                trial.scored = None;
                return;
            }
            _ => {}
        }
        let was_complete = trial.completeness.complete();
        trial.completeness.observe(&event);
        trial.events.push(event);
        if !was_complete && trial.completeness.complete() {
            let events = std::mem::take(&mut trial.events);
            let id = scored_event_id(&trial.campaign_id, &trial.trial_id, self.version);
            if !trial.scored_ids.contains(&id) {
                let trial_score = score(&events, self.config);
                trial.scored = Some((trial_score.outcome, trial_score.encode(self.producer)));
            }
        }
    }
}

/// Up to this many trials are read again one by one; more, and the campaign is read once more.
const READ_AGAIN_ONE_BY_ONE: usize = 64;

/// The events that the scorer reads of the trials `trial_ids` of a campaign, in stream order and
/// slimmed like those of a replay: one read per trial when they are few, else one more read of
/// the campaign.
async fn read_trials_again(
    log: &EventLog,
    campaign_id: &str,
    trial_ids: &HashSet<&str>,
) -> Result<HashMap<String, Vec<Event>>> {
    let mut events: HashMap<String, Vec<Event>> = HashMap::new();
    if trial_ids.is_empty() {
        return Ok(events);
    }
    let filters: Vec<EventFilter> = if trial_ids.len() <= READ_AGAIN_ONE_BY_ONE {
        trial_ids
            .iter()
            .map(|trial_id| EventFilter {
                campaign_id: Some(campaign_id.to_string()),
                trial_id: Some(trial_id.to_string()),
                ..EventFilter::default()
            })
            .collect()
    } else {
        vec![EventFilter {
            campaign_id: Some(campaign_id.to_string()),
            ..EventFilter::default()
        }]
    };
    for filter in filters {
        let mut stored = std::pin::pin!(log.read(&filter, false).await?);
        while let Some(next) = stored.next().await {
            let next = next?;
            let mut tokens = next.subject.split('.').skip(2);
            let (Some(trial_id), Some(event_type)) = (tokens.next(), tokens.next()) else {
                continue;
            };
            if !trial_ids.contains(trial_id) || !needed_payload(event_type, &next.payload) {
                continue;
            }
            match next.event {
                Ok(mut event) => {
                    if keep_for_scoring(&mut event) {
                        events.entry(trial_id.to_string()).or_default().push(event);
                    }
                }
                Err(error) => warn!(sequence = next.sequence, %error, "unreadable event skipped"),
            }
        }
    }
    Ok(events)
}

/// Whether the scorer may read a message of `event_type`: not campaign-wide events, sessions or
/// cleanups, and of the agent's log only tool calls. A tool call's JSON holds the text `tool_call`
/// (its `entry_type`), unless its writer escaped letters with `\u`, so a payload with neither
/// is a reasoning or a tool result and is left unparsed (tool results can be large).
fn needed_payload(event_type: &str, payload: &[u8]) -> bool {
    static TOOL_CALL_OR_ESCAPE: OnceLock<regex::bytes::Regex> = OnceLock::new();
    match event_type {
        "CampaignPublished"
        | "CampaignFinished"
        | "AgentSessionStarted"
        | "ChaosCleanedUp"
        | "ChaosCleanupFailed" => false,
        "AgentLogRecorded" => TOOL_CALL_OR_ESCAPE
            .get_or_init(|| regex::bytes::Regex::new(r"tool_call|\\u").expect("a valid regex"))
            .is_match(payload),
        _ => true,
    }
}

/// Drops what the scorer never reads, to keep a whole campaign in memory: the details of earlier
/// scores, the captured state snapshots and the agent's texts. Returns whether to keep the event
/// at all.
fn keep_for_scoring(event: &mut Event) -> bool {
    match &mut event.data {
        EventData::CampaignPublished(_) => false,
        EventData::TrialScored(scored) => {
            // Only its id matters, to see that a trial is scored already.
            scored.details = serde_json::Value::Null;
            true
        }
        EventData::StateCaptured(capture) => {
            capture.state = serde_json::Value::Null;
            true
        }
        EventData::AgentLogRecorded(entry) => {
            entry.content = None;
            entry.row = None;
            true
        }
        EventData::OperatorCaptureFinished(finished) => {
            finished.ticket = None;
            finished.sessions = Vec::new();
            true
        }
        EventData::ChaosInjected(injected) => {
            injected.cleanup = serde_json::Value::Null.into();
            true
        }
        EventData::Other(other) => {
            other.data = serde_json::Value::Null;
            true
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::synthetic_trial;

    #[test]
    fn slimming_never_changes_a_score() {
        let config = ScoringConfig::default();
        for index in 0..20 {
            let events = synthetic_trial("c", index).events();
            let mut slim = events.clone();
            slim.retain(|event| needed_payload(event.event_type(), &event.to_json()));
            slim.retain_mut(keep_for_scoring);
            assert_eq!(
                score(&events, &config),
                score(&slim, &config),
                "trial {index}"
            );
        }
    }
}
