//! [`follow`]: one trial's operator.db polled until told to stop, each batch published before
//! the cursor moves past it; [`seed_cursor`]: where a restarted capture starts, from the log.

use std::time::Duration;

use futures::StreamExt;
use schemas::event::{Event, EventData, Producer};
use schemas::log::{EventFilter, EventLog};
use tokio_util::sync::CancellationToken;

use super::time::OperatorZone;
use super::{
    CaptureError, CaptureReport, CaptureTarget, Cursor, IN_FLIGHT, POLL_INTERVAL, Result,
    capture_event_id, db_identity, poll,
};

/// Follows `target` until `stop` is cancelled: waits up to `wait_for_file` for the file (and
/// for its tables, which an operator creates just after the file), polls every
/// [`POLL_INTERVAL`], publishes each batch before moving the cursor past it, and after `stop`
/// reads one last time so that rows written up to then are published.
pub async fn follow(
    log: &EventLog,
    target: CaptureTarget,
    wait_for_file: Duration,
    stop: CancellationToken,
) -> Result<CaptureReport> {
    follow_seeded(log, target, wait_for_file, stop, None).await
}

/// [`follow`], with the trial's events already read (`known`, in log order) instead of a read of
/// the log for the cursor: the capture stage has just read them.
pub async fn follow_seeded(
    log: &EventLog,
    target: CaptureTarget,
    wait_for_file: Duration,
    stop: CancellationToken,
    known: Option<Vec<Event>>,
) -> Result<CaptureReport> {
    let producer = Producer::here("capture");
    let deadline = tokio::time::Instant::now() + wait_for_file;
    let mut report = CaptureReport {
        operator_db: target.operator_db.clone(),
        ..CaptureReport::default()
    };
    OperatorZone::parse(&target.operator_timezone)?;
    while !target.operator_db.is_file() {
        if tokio::time::Instant::now() >= deadline {
            return Err(CaptureError::MissingFile {
                path: target.operator_db.clone(),
                waited: wait_for_file,
            });
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(report),
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
    let identity = db_identity(&target.operator_db)?;
    let (mut cursor, n_already_in_log) = match known {
        Some(events) => cursor_from(&events, &target, &identity),
        None => seed_cursor(log, &target, &identity).await?,
    };
    report.n_already_in_log = n_already_in_log;

    let target = std::sync::Arc::new(target);
    let mut schema_seen = false;
    loop {
        let stopping = stop.is_cancelled();
        let polled = {
            let reading = target.clone();
            let producer = producer.clone();
            let mut next = cursor.clone();
            tokio::task::spawn_blocking(move || {
                let events = poll(&reading, &mut next, &producer);
                events.map(|events| (events, next))
            })
            .await
            .map_err(|error| CaptureError::Read {
                path: target.operator_db.clone(),
                reason: format!("the reading task failed: {error}"),
            })?
        };
        report.n_polls += 1;
        match polled {
            Ok((events, next)) => {
                schema_seen = true;
                report.n_malformed_tool_params += events
                    .iter()
                    .filter(|event| {
                        matches!(&event.data, EventData::AgentLogRecorded(entry) if entry.tool_params_raw.is_some())
                    })
                    .count() as u64;
                if !events.is_empty() {
                    let summary = log.publish_all(events, IN_FLIGHT, |_| {}).await?;
                    report.n_published += summary.stored;
                    report.n_duplicates += summary.duplicates;
                }
                cursor = next;
            }
            Err(CaptureError::MissingTable { .. } | CaptureError::MissingColumn { .. })
                if !schema_seen && !stopping && tokio::time::Instant::now() < deadline => {}
            Err(CaptureError::Busy { path, reason }) if !stopping => {
                tracing::debug!(path = %path.display(), %reason, "operator.db busy, retrying");
            }
            Err(error) => return Err(error),
        }
        report.ticket_id = cursor.ticket_id;
        report.resolved = cursor.resolved;
        report.n_log_entries = cursor.n_entries;
        if stopping {
            return Ok(report);
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

/// The cursor that the trial's capture events already in the log imply, and how many there are.
pub async fn seed_cursor(
    log: &EventLog,
    target: &CaptureTarget,
    identity: &str,
) -> Result<(Cursor, u64)> {
    let filter = EventFilter {
        campaign_id: Some(target.campaign_id.clone()),
        trial_id: Some(target.trial_id.clone()),
        event_type: None,
    };
    let mut events = Vec::new();
    let mut stored = std::pin::pin!(log.read(&filter, false).await?);
    while let Some(stored) = stored.next().await {
        if let Ok(event) = stored?.event {
            events.push(event);
        }
    }
    Ok(cursor_from(&events, target, identity))
}

/// The cursor that a trial's capture events (`events`, in log order) imply, and how many of
/// them are this file's.
pub fn cursor_from(events: &[Event], target: &CaptureTarget, identity: &str) -> (Cursor, u64) {
    let db_name = target.operator_db.display().to_string();
    let mut cursor = Cursor::default();
    let mut n_events = 0;
    for event in events {
        // Only this file's events: a capture of another file for the same trial keeps its own.
        let ours = |key: String| event.id == capture_event_id(target, identity, &key);
        match &event.data {
            EventData::TicketOpened(ticket) if ours(format!("tickets/{}", ticket.ticket_id)) => {
                cursor.ticket_id = Some(ticket.ticket_id);
                cursor.last_ticket_row = cursor.last_ticket_row.max(ticket.ticket_id);
                cursor.variant_written = target.variant.is_some();
            }
            // A session's id derives from its row id, which the event does not carry: its file
            // name tells it apart instead.
            EventData::AgentSessionStarted(session) if session.operator_db == db_name => {
                cursor.sessions.insert(session.session_id.clone());
            }
            EventData::AgentLogRecorded(entry)
                if ours(format!("agent_log_entries/{}", entry.entry_id)) =>
            {
                cursor.last_entry_row = cursor.last_entry_row.max(entry.entry_id);
                cursor.n_entries += 1;
            }
            EventData::TicketResolved(resolved)
                if ours(format!("tickets/{}/resolved", resolved.ticket_id)) =>
            {
                cursor.resolved = true;
            }
            _ => continue,
        }
        n_events += 1;
    }
    (cursor, n_events)
}
