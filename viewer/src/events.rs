//! `evalctl events`: the log in order, one line per event or JSON lines, filtered by campaign, trial
//! (any unique id prefix) and type, optionally following new events.

use std::io::Write;

use futures::StreamExt;
use schemas::campaign::did_you_mean;
use schemas::event::{EVENT_TYPES, Event, EventData};
use schemas::ids::resolve_prefix;
use schemas::log::{EventFilter, EventLog, StoredEvent};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Log(#[from] schemas::log::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("cannot write: {0}")]
    Write(#[from] std::io::Error),
}

/// What the user asked to see.
#[derive(Debug, Clone, Default)]
pub struct EventsQuery {
    /// A campaign id or a unique prefix of one.
    pub campaign: Option<String>,
    /// A trial id or a unique prefix of one.
    pub trial: Option<String>,
    pub event_type: Option<String>,
    pub follow: bool,
    pub json: bool,
}

/// Turns prefixes into full ids and checks the type, so that a typo gets an answer instead of
/// an empty listing.
pub async fn resolve_filter(
    log: &EventLog,
    query: &EventsQuery,
) -> Result<EventFilter, EventsError> {
    let mut filter = EventFilter::default();
    if let Some(prefix) = &query.campaign {
        let ids = log.campaign_ids().await?;
        let id = resolve_prefix("campaign", prefix, ids.iter().map(String::as_str))
            .map_err(EventsError::NotFound)?;
        filter.campaign_id = Some(id.to_string());
    }
    if let Some(prefix) = &query.trial {
        let ids = log.trial_ids(filter.campaign_id.as_deref()).await?;
        let id = resolve_prefix("trial", prefix, ids.iter().map(String::as_str))
            .map_err(EventsError::NotFound)?;
        filter.trial_id = Some(id.to_string());
    }
    if let Some(event_type) = &query.event_type {
        if !EVENT_TYPES.contains(&event_type.as_str()) {
            let stored = log.subject_tokens("eval.*.*.*", 3).await?;
            if !stored.contains(event_type) {
                let known = EVENT_TYPES
                    .iter()
                    .copied()
                    .chain(stored.iter().map(String::as_str));
                return Err(EventsError::NotFound(
                    match did_you_mean(event_type, known) {
                        Some(close) => {
                            format!("unknown event type {event_type:?} (did you mean {close:?}?)")
                        }
                        None => format!(
                            "unknown event type {event_type:?}; known types: {}",
                            EVENT_TYPES.join(", ")
                        ),
                    },
                ));
            }
        }
        filter.event_type = Some(event_type.clone());
    }
    Ok(filter)
}

/// Writes the selected events to `out` until the end of the log (or, with `follow`, until
/// `shutdown`), and returns how many were written.
pub async fn write_events(
    log: &EventLog,
    query: &EventsQuery,
    out: &mut impl Write,
    shutdown: CancellationToken,
) -> Result<u64, EventsError> {
    let filter = resolve_filter(log, query).await?;
    let events = log.read(&filter, query.follow).await?;
    futures::pin_mut!(events);
    let mut written = 0;
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            () = shutdown.cancelled() => None,
        };
        let Some(stored) = next else { break };
        let stored = stored?;
        if query.json {
            out.write_all(&stored.payload)?;
            out.write_all(b"\n")?;
        } else {
            writeln!(out, "{}", crate::escape::terminal(&event_line(&stored)))?;
        }
        if query.follow {
            out.flush()?;
        }
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// One event as one line: sequence, time, campaign and trial (short), type, and a summary.
pub fn event_line(stored: &StoredEvent) -> String {
    match &stored.event {
        Ok(event) => format!(
            "{:>7}  {}  {:<8}  {:<8}  {:<19}  {}",
            stored.sequence,
            event.occurred_at,
            short(&event.campaign_id),
            event.trial_id.as_deref().map_or("-", short),
            event.event_type(),
            summary(event)
        ),
        Err(error) => format!(
            "{:>7}  unreadable event on {}: {error}",
            stored.sequence, stored.subject
        ),
    }
}

/// The few facts of an event that tell what happened.
pub fn summary(event: &Event) -> String {
    match &event.data {
        EventData::CampaignPublished(data) => format!(
            "{:?}: {} trials ({} baseline), variants {}, seed {}",
            data.name,
            data.n_trials,
            data.n_baseline_trials,
            data.variants
                .iter()
                .map(|v| v.variant.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
            data.seed
        ),
        EventData::TrialRequested(data) => {
            let trial = &data.trial;
            format!(
                "#{} {} {} {} rep {}",
                trial.trial_index,
                trial.subject,
                trial.chaos.chaos_type(),
                trial.variant.as_deref().unwrap_or("baseline"),
                trial.repetition
            )
        }
        EventData::TrialStarted(data) => format!("worker {} attempt {}", data.worker, data.attempt),
        EventData::SubjectReset(data) => {
            format!(
                "{} {} in {} ms",
                data.subject, data.instance, data.duration_ms
            )
        }
        EventData::SubjectHealthy(data) => format!("after {} ms", data.after_ms),
        EventData::StateCaptured(data) => {
            format!("{:?} healthy={}", data.phase, data.healthy).to_lowercase()
        }
        EventData::ChaosInjected(data) => format!(
            "{} on {}",
            data.chaos.chaos_type(),
            data.target.as_deref().unwrap_or("-")
        ),
        EventData::TicketOpened(data) => format!(
            "ticket {} {}",
            data.ticket_id,
            data.invariant_name.as_deref().unwrap_or("")
        ),
        EventData::AgentSessionStarted(data) => format!("session {}", data.session_id),
        EventData::AgentLogRecorded(data) => {
            let text = data
                .tool_params
                .as_ref()
                .and_then(|params| params.get("command"))
                .and_then(|command| command.as_str())
                .map(str::to_string)
                .or_else(|| data.content.clone())
                .unwrap_or_default();
            let text: String = text.chars().take(100).collect();
            format!("{:?} {}", data.entry_type, text.replace('\n', " "))
        }
        EventData::TicketResolved(data) => format!("ticket {}", data.ticket_id),
        EventData::OperatorCaptureFinished(data) => format!(
            "{} {}, ticket {}, {} log entries{}",
            data.operator_db,
            data.status.as_str(),
            data.ticket
                .as_ref()
                .and_then(|ticket| ticket.get("id"))
                .map_or("none".to_string(), |id| id.to_string()),
            data.n_log_entries,
            data.error
                .as_deref()
                .map_or(String::new(), |error| format!(": {error}"))
        ),
        EventData::ChaosCleanedUp(data) => {
            format!("{} in {} ms", data.chaos_type, data.duration_ms)
        }
        EventData::ChaosCleanupFailed(data) => format!("{}: {}", data.chaos_type, data.error),
        EventData::EventRejected(data) => format!(
            "{} refused {} (#{}): {}",
            data.consumer,
            data.subject,
            data.stream_sequence
                .map_or("-".to_string(), |sequence| sequence.to_string()),
            data.reason
        ),
        EventData::TrialFinished(data) => format!(
            "{}{}",
            data.status.as_str(),
            data.reason
                .as_deref()
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default()
        ),
        EventData::TrialScored(data) => format!(
            "{} {:?} ttd={} ttr={}",
            data.scorer_version,
            data.outcome,
            data.time_to_detect_ms
                .map_or("-".to_string(), |ms| format!("{ms}ms")),
            data.time_to_resolve_ms
                .map_or("-".to_string(), |ms| format!("{ms}ms"))
        ),
        EventData::CampaignFinished(data) => {
            format!("{} trials {:?}", data.n_trials, data.by_status)
        }
        EventData::Other(other) => {
            let data: String = other.data.to_string().chars().take(100).collect();
            match &other.read_error {
                Some(error) => format!("(unreadable data: {error}) {data}"),
                None => format!("(unknown type) {data}"),
            }
        }
    }
}
