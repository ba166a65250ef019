//! Events on the wire: fields added later stay optional, so events already in a log still read
//! as their type.

use schemas::event::{Event, EventData};

/// A `ChaosInjected` as the worker wrote it before injections named the trial's operator.db.
const OLD_INJECTION: &str = r#"{"id": "019abf1e-0000-7000-8000-000000000001", "type": "ChaosInjected",
  "schema_version": 1, "campaign_id": "c", "trial_id": "t",
  "occurred_at": "2026-03-01T10:00:00.000000Z", "producer": {"stage": "worker", "host": "h"},
  "data": {"worker": "local", "chaos": {"type": "node_kill", "params": {"target": "random"}},
           "target": "2", "cleanup": {"pid": 42}}}"#;

#[test]
fn an_injection_without_operator_db_reads_and_writes_without_it() {
    let event = Event::from_json(OLD_INJECTION.as_bytes()).unwrap();
    let EventData::ChaosInjected(injected) = &event.data else {
        panic!("not read as ChaosInjected: {:?}", event.data);
    };
    assert_eq!(injected.operator_db, None);
    let written = String::from_utf8(event.to_json()).unwrap();
    assert!(!written.contains("operator_db"), "{written}");

    let mut with_db = injected.clone();
    with_db.operator_db = Some("/data/trials/t/operator.db".to_string());
    let event = Event {
        data: EventData::ChaosInjected(with_db.clone()),
        ..event
    };
    let EventData::ChaosInjected(read) = Event::from_json(&event.to_json()).unwrap().data else {
        panic!("not read as ChaosInjected");
    };
    assert_eq!(read, with_db);
}
