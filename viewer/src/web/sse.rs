//! Live updates: `/api/events`, server-sent `progress` events carrying the projector's last
//! committed sequence; pages marked live reload their parts when it moves.

use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use serde_json::Value;

use super::source::Source;
use crate::query::Limits;
use crate::reader::Reader;
use crate::views::ViewError;

/// The projector's last committed sequence, or none before the first commit.
pub(super) fn last_sequence(reader: &Reader) -> Result<Option<u64>, ViewError> {
    let result = reader.view_query(
        "SELECT max(last_sequence) AS last_sequence FROM projector_progress",
        &[],
        Limits {
            max_rows: 1,
            max_bytes: 4096,
            timeout_ms: 5_000,
        },
    )?;
    Ok(result
        .rows
        .first()
        .and_then(|row| row.first())
        .and_then(Value::as_u64))
}

/// `progress` events: the projector's last sequence now, then each time a commit moves it
/// (polled every second: commits happen at most every 250 ms, and a reader in another process
/// has no other signal).
pub(super) async fn progress_events(
    State(source): State<Source>,
) -> Sse<impl futures::Stream<Item = Result<SseEvent, std::convert::Infallible>>> {
    let stream =
        futures::stream::unfold((source, None::<Option<u64>>), |(source, last)| async move {
            loop {
                if last.is_some() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let Ok(sequence) = source.read(last_sequence).await else {
                    if last.is_none() {
                        // Nothing readable yet: say so once, then keep polling.
                        let event = SseEvent::default()
                            .event("progress")
                            .data(r#"{"last_sequence":null}"#);
                        return Some((Ok(event), (source, Some(None))));
                    }
                    continue;
                };
                if last != Some(sequence) {
                    let event = SseEvent::default()
                        .event("progress")
                        .data(serde_json::json!({ "last_sequence": sequence }).to_string());
                    return Some((Ok(event), (source, Some(sequence))));
                }
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
