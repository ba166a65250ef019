//! Events that fit in one NATS message. An operator writes rows of any size into operator.db
//! (a reasoning text, a tool's whole output), and an event over the server's `max_payload` can
//! never be published: a capture would retry it forever. So a captured event over the limit
//! keeps its shape with its longest texts cut, each ending with a marker that says how long it
//! was, and every reader sees that it was cut.

use serde_json::Value;

use crate::event::Event;

/// The largest event the capture publishes: well under NATS's default 1 MiB, and large enough
/// for any reasoning an operator writes in one row.
pub const MAX_CAPTURED_EVENT_BYTES: usize = 256 * 1024;

/// What a cut text ends with; `{n}` is its length in bytes before the cut.
pub const TRUNCATION_MARKER: &str = "…[truncated by eval: {n} bytes in all]";

/// The shortest a text is cut to: ids, names and timestamps are never cut.
const SHORTEST_CUT: usize = 256;

/// `event` with its longest texts cut (each to the same length, halved until it fits) so that it
/// serializes to at most `limit` bytes; unchanged when it fits already. Returns whether anything
/// was cut. An event that cannot be made to fit (its short fields alone are too long) is returned
/// as cut as it can be.
pub fn fit(event: Event, limit: usize) -> (Event, bool) {
    if event.to_json().len() <= limit {
        return (event, false);
    }
    let Ok(original) = serde_json::from_slice::<Value>(&event.to_json()) else {
        return (event, false);
    };
    let mut cut_to = limit / 2;
    loop {
        let mut value = original.clone();
        cut_strings(&mut value, cut_to);
        let fits = serde_json::to_vec(&value).is_ok_and(|bytes| bytes.len() <= limit);
        if fits || cut_to <= SHORTEST_CUT {
            let cut = serde_json::to_vec(&value)
                .ok()
                .and_then(|bytes| Event::from_json(&bytes).ok());
            return match cut {
                Some(cut) => (cut, true),
                None => (event, false),
            };
        }
        cut_to = (cut_to / 2).max(SHORTEST_CUT);
    }
}

/// Cuts every string of `value` longer than `cut_to` bytes (at a character boundary) and marks
/// it.
fn cut_strings(value: &mut Value, cut_to: usize) {
    match value {
        Value::String(text) if text.len() > cut_to => {
            let mut end = cut_to;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let marker = TRUNCATION_MARKER.replace("{n}", &text.len().to_string());
            text.truncate(end);
            text.push_str(&marker);
        }
        Value::Array(items) => items.iter_mut().for_each(|item| cut_strings(item, cut_to)),
        Value::Object(fields) => fields
            .values_mut()
            .for_each(|field| cut_strings(field, cut_to)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AgentLogEntryType, AgentLogRecorded, EventData, Producer, Timestamp};

    fn entry(content: String, params: Value) -> Event {
        Event::new(
            &Producer::here("capture"),
            "c",
            Some("t"),
            EventData::AgentLogRecorded(AgentLogRecorded {
                operator_db: "/data/operator.db".to_string(),
                session_id: "s1".to_string(),
                entry_id: 7,
                entry_type: AgentLogEntryType::ToolResult,
                content: Some(content),
                tool_name: Some("etcdctl".to_string()),
                tool_params: Some(params),
                tool_params_raw: None,
                exit_code: Some(0),
                timestamp: Timestamp::now(),
                row: None,
            }),
        )
    }

    #[test]
    fn a_small_event_is_left_alone() {
        let event = entry("ok".to_string(), serde_json::json!({"args": ["a"]}));
        let (same, cut) = fit(event.clone(), MAX_CAPTURED_EVENT_BYTES);
        assert!(!cut);
        assert_eq!(same, event);
    }

    #[test]
    fn long_texts_are_cut_with_a_marker_until_the_event_fits() {
        // Multibyte text, so that a cut must find a character boundary.
        let content = "é".repeat(3 * 1024 * 1024);
        let params = serde_json::json!({"stdin": "x".repeat(600_000), "flag": "--all"});
        let event = entry(content.clone(), params);
        let (cut, was_cut) = fit(event.clone(), MAX_CAPTURED_EVENT_BYTES);
        assert!(was_cut);
        assert!(cut.to_json().len() <= MAX_CAPTURED_EVENT_BYTES);
        assert_eq!((cut.id, cut.trial_id.as_deref()), (event.id, Some("t")));
        let EventData::AgentLogRecorded(data) = &cut.data else {
            panic!("{cut:?}")
        };
        let text = data.content.as_deref().unwrap();
        assert!(content.starts_with(text.split('…').next().unwrap()));
        assert!(
            text.ends_with(&format!(
                "…[truncated by eval: {} bytes in all]",
                content.len()
            )),
            "{}",
            &text[text.len() - 60..]
        );
        let params = data.tool_params.as_ref().unwrap();
        assert_eq!(params["flag"], "--all");
        assert!(
            params["stdin"]
                .as_str()
                .unwrap()
                .ends_with("[truncated by eval: 600000 bytes in all]")
        );
        assert_eq!(data.entry_id, 7);
        assert_eq!(data.session_id, "s1");
    }
}
