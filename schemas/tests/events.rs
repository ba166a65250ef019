//! Events on the wire: fields added later stay optional, so events already in a log still read
//! as their type.

use std::path::PathBuf;

use schemas::cleanup::{Cleanup, CleanupRecord, DelaySettings};
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

/// Two `ChaosInjected` events as `evalctl run` wrote them (main at f653962, a latency and a
/// partition trial), when the cleanup record went onto the wire as untyped JSON.
const RECORDED_INJECTIONS: [&str; 2] = [
    r#"{"id":"01a2297f-c24d-76ba-8b15-8c8332edf5a0","type":"ChaosInjected","schema_version":1,"campaign_id":"01a2297f-beba-7291-bedc-b5fe1c53e517","trial_id":"cf535184-156c-8f0e-8cc6-ebfadb63fabe","occurred_at":"2026-11-29T22:49:28.397095Z","producer":{"stage":"worker","host":"vm"},"data":{"worker":"run","chaos":{"type":"latency","params":{"target":"leader","min_ms":50,"max_ms":150,"duration_seconds":2}},"target":"n1","cleanup":{"control":"/tmp/hchaos-run/data/labs/w-run-0/n1/delay.json","fault":"latency","lab_dir":"/tmp/hchaos-run/data/labs/w-run-0","node":1,"settings":{"max_ms":150,"min_ms":50,"seed":6894058847671387138}},"operator_db":"/tmp/hchaos-run/data/trials/cf535184-156c-8f0e-8cc6-ebfadb63fabe/operator.db"}}"#,
    r#"{"id":"01a2297f-e799-7452-a210-4229f9402ad9","type":"ChaosInjected","schema_version":1,"campaign_id":"01a2297f-e1c5-728f-8084-e5d7bc8a1c4f","trial_id":"36f09c59-fff7-88ba-9ba9-31dd6216b206","occurred_at":"2026-11-29T22:49:37.945612Z","producer":{"stage":"worker","host":"vm"},"data":{"worker":"run","chaos":{"type":"network_partition","params":{"target":"random","asymmetric":false,"duration_seconds":2}},"target":"[[1], [2, 3]]","cleanup":{"asymmetric":false,"fault":"network_partition","groups":[[1],[2,3]],"lab_dir":"/tmp/hchaos-run/data/labs/w-run-0","rules":[["eval-l0-n1",["partition_in","partition_out"]],["eval-l0-n2",["partition_in","partition_out"]],["eval-l0-n3",["partition_in","partition_out"]]]},"operator_db":"/tmp/hchaos-run/data/trials/36f09c59-fff7-88ba-9ba9-31dd6216b206/operator.db"}}"#,
];

fn cleanup_of(json: &str) -> Cleanup {
    let event = Event::from_json(json.as_bytes()).unwrap();
    let EventData::ChaosInjected(injected) = event.data else {
        panic!("not read as ChaosInjected: {:?}", event.data);
    };
    injected.cleanup
}

#[test]
fn cleanup_records_written_as_untyped_json_read_as_typed_records() {
    let lab_dir = PathBuf::from("/tmp/hchaos-run/data/labs/w-run-0");
    assert_eq!(
        cleanup_of(RECORDED_INJECTIONS[0]),
        Cleanup::Record(CleanupRecord::Latency {
            lab_dir: lab_dir.clone(),
            node: 1,
            control: lab_dir.join("n1/delay.json"),
            settings: DelaySettings {
                min_ms: 50,
                max_ms: 150,
                seed: 6894058847671387138,
            },
        })
    );
    assert_eq!(
        cleanup_of(RECORDED_INJECTIONS[1]),
        Cleanup::Record(CleanupRecord::NetworkPartition {
            lab_dir,
            groups: vec![vec![1], vec![2, 3]],
            asymmetric: false,
            rules: (1..=3)
                .map(|node| {
                    (
                        format!("eval-l0-n{node}"),
                        vec!["partition_in".to_string(), "partition_out".to_string()],
                    )
                })
                .collect(),
        })
    );
}

#[test]
fn typed_cleanup_records_write_the_same_json_as_before() {
    for json in RECORDED_INJECTIONS {
        let recorded: serde_json::Value = serde_json::from_str(json).unwrap();
        let event = Event::from_json(json.as_bytes()).unwrap();
        let written: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(written["data"]["cleanup"], recorded["data"]["cleanup"]);
    }
}

/// A fault in a Kubernetes cluster: the record is tagged `kubernetes`, names its fault, cluster and
/// trial, and reads back as it was written.
#[test]
fn a_kubernetes_record_says_where_whose_and_what() {
    use schemas::cleanup::{DeletedPod, KubeAction, KubeRecord};
    let record = CleanupRecord::Kubernetes(Box::new(KubeRecord {
        chaos: schemas::campaign::ChaosType::NodeKill,
        context: Some("kind-eval".into()),
        namespace: "etcd".into(),
        campaign_id: "019a6c1e-7d2b-7c3e-9f10-2a3b4c5d6e7f".into(),
        trial_id: "0b5f6a2e-9c1d-8e4f-a1b2-c3d4e5f60718".into(),
        nodes: vec![2],
        groups: Vec::new(),
        action: KubeAction::PodDelete {
            pods: vec![DeletedPod {
                node: 2,
                pod: "etcd-1".into(),
                uid: "5b1c8f4e-2a7d-4e3b-9c6f-0d8e1a2b3c4d".into(),
            }],
        },
    }));
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "fault": "kubernetes",
            "chaos": "node_kill",
            "context": "kind-eval",
            "namespace": "etcd",
            "campaign_id": "019a6c1e-7d2b-7c3e-9f10-2a3b4c5d6e7f",
            "trial_id": "0b5f6a2e-9c1d-8e4f-a1b2-c3d4e5f60718",
            "nodes": [2],
            "action": {"does": "pod_delete", "pods": [
                {"node": 2, "pod": "etcd-1", "uid": "5b1c8f4e-2a7d-4e3b-9c6f-0d8e1a2b3c4d"}
            ]}
        })
    );
    let read: Cleanup = serde_json::from_value(json).unwrap();
    assert_eq!(read, Cleanup::Record(record.clone()));
    assert_eq!(record.fault_name(), "node_kill");
    assert_eq!(record.target().as_deref(), Some("n2"));
    assert_eq!(record.lab_dir(), None);
}

#[test]
fn a_cleanup_that_is_no_record_is_kept_as_it_is() {
    // An imported trial's metadata, or a record dropped to `null` by a reader.
    let Cleanup::Foreign(foreign) = cleanup_of(OLD_INJECTION) else {
        panic!("{{\"pid\": 42}} is no record");
    };
    assert_eq!(foreign, serde_json::json!({"pid": 42}));
    let event = Event::from_json(OLD_INJECTION.as_bytes()).unwrap();
    let written: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
    assert_eq!(written["data"]["cleanup"], serde_json::json!({"pid": 42}));
}

/// An event is read only under its own subject: another type's, trial's or campaign's subject
/// (which a publisher may have been allowed where it was not allowed this one) is refused.
#[test]
fn an_event_is_read_only_under_its_own_subject() {
    let mut event = Event::from_json(OLD_INJECTION.as_bytes()).unwrap();
    event.campaign_id = "campaign-1".into();
    event.trial_id = Some("trial-1".into());
    let payload = event.to_json();
    let own = event.subject();
    assert_eq!(own, "eval.campaign-1.trial-1.ChaosInjected");
    assert_eq!(schemas::log::read_event(&own, &payload).unwrap(), event);
    let trial = event.trial_id.clone().unwrap();
    for other in [
        own.replace("ChaosInjected", "TrialStarted"),
        own.replace(&trial, "another-trial"),
        own.replace(&event.campaign_id, "another-campaign"),
        format!("{own}.more"),
        own.replacen("eval.", "evil.", 1),
    ] {
        let refused = schemas::log::read_event(&other, &payload).unwrap_err();
        assert!(
            refused.contains("not the subject of this ChaosInjected"),
            "{other}: {refused}"
        );
    }
}
