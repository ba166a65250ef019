//! Poison on the wire: messages a stage cannot act on, published straight to the stream next to
//! a real campaign. Each is recorded as an `EventRejected` (with its subject, sequence and
//! reason), acknowledged so that it is never delivered again, and the stages go on: the real
//! campaign's trial still runs, is captured and scored. The stages run as their own processes
//! against a real nats-server; the trial on a real etcd lab.

mod support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use schemas::event::EventData;
use schemas::log::{EventFilter, EventLog};
use serde_json::{Value, json};
use support::text;

fn eval(nats: &str, data: &std::path::Path, args: &[&str]) -> std::process::Command {
    support::evalctl(nats, data, args)
}

async fn all_events(log: &EventLog) -> Vec<schemas::event::Event> {
    log.read(&EventFilter::default(), false)
        .await
        .unwrap()
        .filter_map(|stored| async move { stored.unwrap().event.ok() })
        .collect()
        .await
}

/// Publishes `payload` raw on `subject` with a fresh message id.
async fn publish_raw(log: &EventLog, subject: &str, payload: Vec<u8>) {
    let message = async_nats::jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .message_id(schemas::ids::new_campaign_id());
    log.jetstream()
        .send_publish(subject.to_string(), message)
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_messages_are_recorded_acknowledged_and_the_stages_go_on() {
    let nats = testkit::TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("campaign.yaml");
    std::fs::write(
        &file,
        "name: poison\nsubjects: [etcd]\nchaos_types:\n  - type: process_pause\n    params: {target: 2, duration_seconds: 1}\ntrials_per_combination: 1\ntrial_timeout_seconds: 60\n",
    )
    .unwrap();
    let published = eval(
        nats.url(),
        &data,
        &["publish", file.to_str().unwrap(), "--json"],
    )
    .output()
    .unwrap();
    assert!(published.status.success(), "{}", text(&published.stderr));
    let log = EventLog::connect(nats.url()).await.unwrap();

    // A real TrialRequested, as the poison's template.
    let requested = all_events(&log)
        .await
        .into_iter()
        .find(|event| event.event_type() == "TrialRequested")
        .unwrap();
    let template: Value = serde_json::from_slice(&requested.to_json()).unwrap();
    let variant = |trial: &str, change: &dyn Fn(&mut Value)| {
        let mut event = template.clone();
        event["campaign_id"] = json!("poison");
        event["trial_id"] = json!(trial);
        event["id"] = json!(schemas::ids::new_campaign_id());
        change(&mut event);
        serde_json::to_vec(&event).unwrap()
    };
    let poison: Vec<(String, Vec<u8>)> = vec![
        (
            "eval.poison.t-unparsable.TrialRequested".into(),
            b"{\"this is\": not json".to_vec(),
        ),
        (
            "eval.poison.t-newer.TrialRequested".into(),
            variant("t-newer", &|event| event["schema_version"] = json!(2)),
        ),
        (
            "eval.poison.t-subject.TrialRequested".into(),
            variant("t-subject", &|event| {
                event["data"]["trial"]["subject"] = json!("cassandra")
            }),
        ),
        (
            "eval.poison.t-runtime.TrialRequested".into(),
            variant("t-runtime", &|event| {
                event["data"]["trial"]["subject_settings"]["runtime"] = json!("nomad")
            }),
        ),
        (
            "eval.poison.t-finished.TrialFinished".into(),
            b"\x00\x01 not an event".to_vec(),
        ),
    ];
    for (subject, payload) in &poison {
        publish_raw(&log, subject, payload.clone()).await;
    }

    let stage = |args: &[&str]| {
        support::Spawned::new(
            eval(nats.url(), &data, args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let stages = [stage(&["worker"]), stage(&["capture"]), stage(&["score"])];

    // The real trial runs to its score, past the poison.
    let started = Instant::now();
    loop {
        let events = all_events(&log).await;
        if events
            .iter()
            .any(|event| event.event_type() == "TrialScored")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the real trial was not scored: {:?}",
            events.iter().map(|e| e.event_type()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The capture's poison: an injection naming a file outside what it may read, on this host.
    let injected = all_events(&log)
        .await
        .into_iter()
        .find(|event| event.event_type() == "ChaosInjected")
        .unwrap();
    let mut outside: Value = serde_json::from_slice(&injected.to_json()).unwrap();
    outside["trial_id"] = json!("t-outside");
    outside["id"] = json!(schemas::ids::new_campaign_id());
    outside["data"]["operator_db"] = json!("/etc/passwd");
    outside["data"]["operator_host"] = json!(schemas::event::host_name());
    let campaign_id = injected.campaign_id.clone();
    publish_raw(
        &log,
        &format!("eval.{campaign_id}.t-outside.ChaosInjected"),
        serde_json::to_vec(&outside).unwrap(),
    )
    .await;

    // Every poison message rejected exactly once, with its reason.
    let expected: BTreeMap<String, &str> = poison
        .iter()
        .map(|(subject, _)| subject.clone())
        .chain([format!("eval.{campaign_id}.t-outside.ChaosInjected")])
        .zip([
            "not a readable TrialRequested",
            "schema version 2 is newer than this build's (1)",
            "not a TrialRequested this build can run",
            "not a TrialRequested this build can run",
            "unreadable event",
            "/etc/passwd",
        ])
        .collect();
    let started = Instant::now();
    let rejected = loop {
        let rejected: Vec<_> = all_events(&log)
            .await
            .into_iter()
            .filter_map(|event| match &event.data {
                EventData::EventRejected(rejected) => Some((event.clone(), rejected.clone())),
                _ => None,
            })
            .collect();
        if rejected.len() >= expected.len() {
            break rejected;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "rejected so far: {rejected:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Long enough for a message handed back to come round again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = all_events(&log)
        .await
        .iter()
        .filter(|event| event.event_type() == "EventRejected")
        .count();
    assert_eq!(again, expected.len(), "a rejection repeated: {rejected:?}");
    for (subject, reason) in &expected {
        let (event, record) = rejected
            .iter()
            .find(|(_, record)| &record.subject == subject)
            .unwrap_or_else(|| panic!("{subject} was not rejected: {rejected:?}"));
        assert!(
            record.reason.contains(reason),
            "{subject}: {}",
            record.reason
        );
        assert!(record.stream_sequence.is_some());
        // Recorded under the poison's own campaign and trial.
        let mut tokens = subject.split('.').skip(1);
        assert_eq!(Some(event.campaign_id.as_str()), tokens.next());
        assert_eq!(event.trial_id.as_deref(), tokens.next());
    }
    for process in stages {
        assert!(process.stop_after(Duration::from_secs(3)).success());
    }
}
