//! `evalctl bench publish`: the rate of `evalctl publish` for a large campaign, beside a plain
//! async-nats JetStream publish loop of the same number of same-size messages, on a fresh local
//! server.

use std::future::IntoFuture;
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use schemas::log::local::LocalNats;
use schemas::log::{DEFAULT_IN_FLIGHT, EventLog};
use serde::Serialize;

use crate::campaign_files;
use crate::publish;

#[derive(Debug, Clone, Serialize)]
pub struct PublishBench {
    pub trials: u32,
    pub events: u64,
    pub avg_event_bytes: u64,
    pub publish_seconds: f64,
    pub publish_events_per_second: f64,
    pub plain_seconds: f64,
    pub plain_messages_per_second: f64,
    /// `evalctl publish`'s rate over the plain loop's.
    pub ratio: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Server(#[from] schemas::log::local::LocalServerError),
    #[error(transparent)]
    Log(#[from] schemas::log::Error),
    #[error(transparent)]
    Prepare(#[from] campaign_files::PrepareError),
    #[error(transparent)]
    Publish(#[from] publish::PublishError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("plain publish failed: {0}")]
    Plain(String),
}

/// Runs the benchmark in `work_dir` (a fresh nats-server's store goes there) and reports both
/// rates. `progress` receives one line per phase.
pub async fn publish_bench(
    work_dir: &Path,
    trials: u32,
    mut progress: impl FnMut(&str),
) -> Result<PublishBench, BenchError> {
    progress("starting a fresh nats-server");
    let server = LocalNats::start(&work_dir.join("nats"), None).await?;
    let log = EventLog::connect(server.url()).await?;

    let campaign_file = work_dir.join("bench-campaign.yaml");
    std::fs::write(
        &campaign_file,
        format!(
            "name: publish benchmark\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\ntrials_per_combination: {trials}\nseed: 1\n"
        ),
    )?;

    progress(&format!(
        "{program} publish: {trials} trials",
        program = schemas::program::name()
    ));
    let started = Instant::now();
    let prepared = campaign_files::prepare(&campaign_file, None, None)?;
    let report = publish::publish(&log, &prepared, DEFAULT_IN_FLIGHT, |_| {}).await?;
    let publish_seconds = started.elapsed().as_secs_f64();
    let events = report.summary.stored + report.summary.duplicates;

    // The plain loop sends payloads of the events' average size on the same subjects (one per
    // trial, as the design's subject layout has it), to a fresh stream of its own, without the
    // id header and without building or serializing events.
    let producer = schemas::event::Producer::here("publish");
    let subjects_and_sizes: Vec<(String, usize)> = publish::campaign_events(&prepared, &producer)
        .map(|event| {
            (
                event.subject().replacen("eval.", "bench.", 1),
                event.to_json().len(),
            )
        })
        .collect();
    let avg_event_bytes = subjects_and_sizes
        .iter()
        .map(|(_, size)| *size as u64)
        .sum::<u64>()
        / events.max(1);
    progress(&format!(
        "plain loop: {events} messages of {avg_event_bytes} bytes"
    ));
    let jetstream = log.jetstream().clone();
    jetstream
        .create_stream(async_nats_stream_config())
        .await
        .map_err(|e| BenchError::Plain(e.to_string()))?;
    let payload = Bytes::from(vec![b'x'; avg_event_bytes as usize]);
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    for (subject, _) in subjects_and_sizes {
        let ack = jetstream
            .publish(subject, payload.clone())
            .await
            .map_err(|e| BenchError::Plain(e.to_string()))?;
        pending.push(ack.into_future());
        if pending.len() >= DEFAULT_IN_FLIGHT
            && let Some(ack) = pending.next().await
        {
            ack.map_err(|e| BenchError::Plain(e.to_string()))?;
        }
    }
    while let Some(ack) = pending.next().await {
        ack.map_err(|e| BenchError::Plain(e.to_string()))?;
    }
    let plain_seconds = started.elapsed().as_secs_f64();
    drop(log);
    server.stop(std::time::Duration::from_secs(5)).await;

    let publish_events_per_second = events as f64 / publish_seconds;
    let plain_messages_per_second = events as f64 / plain_seconds;
    Ok(PublishBench {
        trials,
        events,
        avg_event_bytes,
        publish_seconds,
        publish_events_per_second,
        plain_seconds,
        plain_messages_per_second,
        ratio: publish_events_per_second / plain_messages_per_second,
    })
}

fn async_nats_stream_config() -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: "BENCH".to_string(),
        subjects: vec!["bench.>".to_string()],
        ..EventLog::stream_config()
    }
}
