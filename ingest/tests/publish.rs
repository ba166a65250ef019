//! `evalctl publish` against a real nats-server: events in order with the right subjects and ids,
//! re-publishing adds nothing, a different campaign under a taken id is refused, an
//! incompatible stream is refused, and events this build does not know survive a read.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use ingest::campaign_files::{self, PreparedCampaign};
use ingest::publish::{self, PublishError};
use schemas::event::{Event, EventData};
use schemas::log::{EventFilter, EventLog, StoredEvent};
use testkit::TemporaryNats;

const CAMPAIGN: &str = "\
name: publish test
subjects: [etcd, tikv]
chaos_types:
  - type: node_kill
  - type: latency
    params: {min_ms: 10, max_ms: 20}
trials_per_combination: 2
include_baseline: true
variants: [careful, hasty]
seed: 7
";

fn write_campaign(dir: &Path, text: &str) -> PathBuf {
    let variants = dir.join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    std::fs::write(variants.join("careful.yaml"), "name: careful\nmodel: m1\n").unwrap();
    std::fs::write(variants.join("hasty.yaml"), "name: hasty\nmodel: m2\n").unwrap();
    let file = dir.join("campaign.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

async fn read_all(log: &EventLog, filter: &EventFilter) -> Vec<StoredEvent> {
    let events = log.read(filter, false).await.unwrap();
    events.map(|event| event.unwrap()).collect().await
}

async fn prepared(dir: &Path, campaign_id: Option<&str>) -> PreparedCampaign {
    campaign_files::prepare(&write_campaign(dir, CAMPAIGN), None, campaign_id).unwrap()
}

#[tokio::test]
async fn publish_then_read_back_every_event_in_order() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let campaign = prepared(dir.path(), None).await;
    // 2 subjects × 2 chaos × 2 variants × 2 trials, plus 2 × 2 × 2 baselines.
    assert_eq!(campaign.trials.len(), 24);

    let mut acks = 0;
    let report = publish::publish(&log, &campaign, 4, |n| acks = n)
        .await
        .unwrap();
    assert_eq!(report.summary.stored, 25);
    assert_eq!(report.summary.duplicates, 0);
    assert_eq!(acks, 25);

    let stored = read_all(&log, &EventFilter::default()).await;
    assert_eq!(stored.len(), 25);
    let events: Vec<&Event> = stored.iter().map(|s| s.event.as_ref().unwrap()).collect();
    match &events[0].data {
        EventData::CampaignPublished(data) => {
            assert_eq!(data.name, "publish test");
            assert_eq!(data.file_text, CAMPAIGN);
            assert_eq!(data.seed, 7);
            assert_eq!(data.n_trials, 24);
            assert_eq!(data.n_baseline_trials, 8);
            let names: Vec<&str> = data
                .variants
                .iter()
                .map(|v| v.variant.name.as_str())
                .collect();
            assert_eq!(names, ["careful", "hasty"]);
        }
        other => panic!("first event is {other:?}"),
    }
    for (position, (stored, event)) in stored.iter().zip(&events).enumerate() {
        assert_eq!(stored.sequence, position as u64 + 1);
        assert_eq!(stored.subject, event.subject());
        assert_eq!(
            stored.msg_id.as_deref(),
            Some(event.id.to_string().as_str())
        );
        assert_eq!(event.campaign_id, campaign.campaign_id);
        assert_eq!(event.id.get_version_num(), 7);
        if position == 0 {
            assert_eq!(
                stored.subject,
                format!("eval.{}._.CampaignPublished", campaign.campaign_id)
            );
            continue;
        }
        let EventData::TrialRequested(requested) = &event.data else {
            panic!("event {position} is {:?}", event.data);
        };
        assert_eq!(requested.trial.trial_index, position as u32 - 1);
        let trial_id = schemas::ids::trial_id(&campaign.campaign_id, requested.trial.trial_index);
        assert_eq!(event.trial_id.as_deref(), Some(trial_id.as_str()));
        assert_eq!(
            stored.subject,
            format!("eval.{}.{trial_id}.TrialRequested", campaign.campaign_id)
        );
    }

    let filter = EventFilter {
        campaign_id: Some(campaign.campaign_id.clone()),
        trial_id: events[3].trial_id.clone(),
        event_type: None,
    };
    let one_trial = read_all(&log, &filter).await;
    assert_eq!(one_trial.len(), 1);
    assert_eq!(one_trial[0].sequence, 4);
}

#[tokio::test]
async fn publishing_again_under_the_same_campaign_id_adds_nothing() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = prepared(dir.path(), Some("rerun-1")).await;
    publish::publish(&log, &first, 16, |_| {}).await.unwrap();

    // The publisher skips what the stream holds, however long ago it was stored.
    let again = prepared(dir.path(), Some("rerun-1")).await;
    let report = publish::publish(&log, &again, 16, |_| {}).await.unwrap();
    assert_eq!(report.already_stored, 25);
    assert_eq!(report.summary.stored, 0);

    // Within the duplicate window JetStream itself drops re-sent ids.
    let producer = schemas::event::Producer::here("test");
    let events: Vec<Event> = publish::campaign_events(&again, &producer).collect();
    let summary = log.publish_all(events, 8, |_| {}).await.unwrap();
    assert_eq!(summary.duplicates, 25);
    assert_eq!(summary.stored, 0);

    assert_eq!(read_all(&log, &EventFilter::default()).await.len(), 25);
}

#[tokio::test]
async fn an_interrupted_publish_is_completed() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let campaign = prepared(dir.path(), Some("interrupted")).await;
    let producer = schemas::event::Producer::here("test");
    let first_ten: Vec<Event> = publish::campaign_events(&campaign, &producer)
        .take(10)
        .collect();
    log.publish_all(first_ten, 8, |_| {}).await.unwrap();

    let report = publish::publish(&log, &campaign, 8, |_| {}).await.unwrap();
    assert_eq!(report.already_stored, 10);
    assert_eq!(report.summary.stored, 15);
    let stored = read_all(&log, &EventFilter::default()).await;
    let mut indices: Vec<u32> = stored
        .iter()
        .filter_map(|s| match &s.event.as_ref().unwrap().data {
            EventData::TrialRequested(requested) => Some(requested.trial.trial_index),
            _ => None,
        })
        .collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..24).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_different_campaign_under_a_taken_id_is_refused() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = prepared(dir.path(), Some("taken")).await;
    publish::publish(&log, &first, 16, |_| {}).await.unwrap();

    let other_dir = tempfile::tempdir().unwrap();
    let other_file = write_campaign(other_dir.path(), &CAMPAIGN.replace("seed: 7", "seed: 8"));
    let other = campaign_files::prepare(&other_file, None, Some("taken")).unwrap();
    let error = publish::publish(&log, &other, 16, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(error, PublishError::Conflict { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("campaign id taken already holds a different campaign")
    );
    assert_eq!(read_all(&log, &EventFilter::default()).await.len(), 25);
}

#[tokio::test]
async fn an_incompatible_stream_is_refused_with_every_problem() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.jetstream()
        .create_stream(async_nats::jetstream::stream::Config {
            name: "EVAL".to_string(),
            subjects: vec!["eval.>".to_string()],
            storage: async_nats::jetstream::stream::StorageType::Memory,
            max_age: std::time::Duration::from_secs(3600),
            retention: async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await
        .unwrap();
    let error = log.ensure_stream().await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(
        error,
        schemas::log::Error::IncompatibleStream { .. }
    ));
    for expected in [
        "storage is memory",
        "max age is 3600s",
        "retention is WorkQueue",
    ] {
        assert!(
            message.contains(expected),
            "{expected:?} missing from: {message}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let campaign = prepared(dir.path(), None).await;
    let refused = publish::publish(&log, &campaign, 16, |_| {})
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("incompatible configuration"));
}

#[tokio::test]
async fn unknown_event_types_and_unknown_fields_survive_a_read() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    let future_event = r#"{"id":"0193a0f0-0000-7000-8000-000000000001","type":"OperatorRebooted","schema_version":9,"campaign_id":"c1","trial_id":"t1","occurred_at":"2026-11-25T10:00:00.000001Z","producer":{"stage":"future","host":"h"},"data":{"why":"upgrade"},"new_envelope_field":true}"#;
    let known_with_extras = r#"{"id":"0193a0f0-0000-7000-8000-000000000002","type":"TrialFinished","schema_version":1,"campaign_id":"c1","trial_id":"t1","occurred_at":"2026-11-25T10:00:01Z","producer":{"stage":"worker","host":"h"},"data":{"status":"succeeded","flavour":"extra"},"shard":3}"#;
    let known_but_bad = r#"{"id":"0193a0f0-0000-7000-8000-000000000003","type":"TrialFinished","schema_version":1,"campaign_id":"c1","trial_id":"t1","occurred_at":"2026-11-25T10:00:02Z","producer":{"stage":"worker","host":"h"},"data":{"status":"exploded"}}"#;
    for (subject, payload) in [
        ("eval.c1.t1.OperatorRebooted", future_event),
        ("eval.c1.t1.TrialFinished", known_with_extras),
        ("eval.c1.t1.TrialFinished", known_but_bad),
    ] {
        log.jetstream()
            .publish(subject, payload.as_bytes().to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let stored = read_all(&log, &EventFilter::default()).await;
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0].payload.as_ref(), future_event.as_bytes());
    let event = stored[0].event.as_ref().unwrap();
    let EventData::Other(other) = &event.data else {
        panic!("unknown type read as {:?}", event.data);
    };
    assert_eq!(other.type_name, "OperatorRebooted");
    assert_eq!(other.data, serde_json::json!({"why": "upgrade"}));
    assert_eq!(other.read_error, None);
    assert_eq!(event.schema_version, 9);
    // Written back, an unknown event keeps its type and data.
    let rewritten: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
    assert_eq!(rewritten["type"], "OperatorRebooted");
    assert_eq!(rewritten["data"]["why"], "upgrade");

    let event = stored[1].event.as_ref().unwrap();
    assert!(
        matches!(&event.data, EventData::TrialFinished(data) if data.status == schemas::event::TrialStatus::Succeeded)
    );
    assert_eq!(stored[1].payload.as_ref(), known_with_extras.as_bytes());

    let EventData::Other(bad) = &stored[2].event.as_ref().unwrap().data else {
        panic!("unreadable data must be kept raw");
    };
    assert_eq!(bad.type_name, "TrialFinished");
    assert!(bad.read_error.as_deref().unwrap().contains("exploded"));
}

/// Variant files that together make a `CampaignPublished` over one NATS message are refused when
/// the campaign is prepared (so at `validate`), naming the size and the way out; and a server
/// configured with a smaller `max_payload` refuses one that fits the default, before anything is
/// published.
#[tokio::test]
async fn a_campaign_too_large_for_one_message_is_refused_before_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let variants = dir.path().join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    let prompt = "p".repeat(250_000);
    let names: Vec<String> = (0..5).map(|index| format!("v{index}")).collect();
    for name in &names {
        std::fs::write(
            variants.join(format!("{name}.yaml")),
            format!("name: {name}\nsystem_prompt: \"{prompt}\"\n"),
        )
        .unwrap();
    }
    let file = dir.path().join("campaign.yaml");
    let campaign = |variants: &[String]| {
        format!(
            "name: large\nchaos_types: [{{type: node_kill}}]\nvariants: [{}]\n",
            variants.join(", ")
        )
    };
    std::fs::write(&file, campaign(&names)).unwrap();
    let error = campaign_files::prepare(&file, None, None)
        .unwrap_err()
        .to_string();
    assert!(
        error
            .contains("with its 5 variant file(s) the campaign makes a CampaignPublished event of")
            && error.contains("shorten the variant files' system prompts"),
        "{error}"
    );

    // One variant fits the default limit, not a server that takes 64 KiB.
    std::fs::write(&file, campaign(&names[..1])).unwrap();
    let prepared = campaign_files::prepare(&file, None, None).unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = dir.path().join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nmax_payload: 65536\njetstream {{ store_dir: \"{}\" }}\n",
            dir.path().join("store").display()
        ),
    )
    .unwrap();
    let mut server = std::process::Command::new(schemas::log::local::nats_server_program())
        .arg("-c")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    let mut log = None;
    for _ in 0..100 {
        if let Ok(connected) = EventLog::connect(&url).await {
            log = Some(connected);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = log.expect("the server answers");
    let outcome = publish::publish(&log, &prepared, 16, |_| {}).await;
    let stored = read_all(&log, &EventFilter::default()).await.len();
    let _ = server.kill();
    let _ = server.wait();
    match outcome {
        Err(PublishError::TooLarge {
            size, max_payload, ..
        }) => {
            assert_eq!(max_payload, 65536);
            assert!(size > 250_000, "{size}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(stored, 0, "something was published");
}
