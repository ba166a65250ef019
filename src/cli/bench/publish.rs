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

use anyhow::Context;
use ingest::{campaign_files, publish};

use super::PublishBenchArgs;
use super::cpu::{CpuFigures, Stopwatch};
use crate::cli::Outcome;

#[derive(Debug, Clone, Serialize)]
struct PublishBench {
    trials: u32,
    events: u64,
    avg_event_bytes: u64,
    /// The server's version, and whether it synced every acknowledged write (`sync_interval:
    /// always`, as `evalctl up` starts it where the version allows).
    server_version: Option<String>,
    syncs_always: bool,
    publish_seconds: f64,
    publish_events_per_second: f64,
    plain_seconds: f64,
    plain_messages_per_second: f64,
    /// `evalctl publish`'s rate over the plain loop's.
    ratio: f64,
    /// The CPU time `evalctl publish` and the plain loop cost, this process's and the server's.
    publish_cpu: Option<CpuFigures>,
    plain_cpu: Option<CpuFigures>,
    /// Of `publish_seconds`, reading and expanding the campaign file (on this process alone).
    prepare_seconds: f64,
    /// The same, on a server left to its default (a sync every 2 minutes), when the first one
    /// synced always: what the sync costs.
    unsynced: Option<Box<PublishBench>>,
}

pub(super) async fn run(args: PublishBenchArgs) -> Outcome {
    let work_dir = tempfile::tempdir()?;
    let progress = |phase: &str| eprintln!("bench: {phase}");
    let mut bench =
        publish_bench(&work_dir.path().join("synced"), args.trials, true, progress).await?;
    if bench.syncs_always {
        let unsynced = publish_bench(
            &work_dir.path().join("unsynced"),
            args.trials,
            false,
            progress,
        )
        .await?;
        bench.unsynced = Some(Box::new(unsynced));
    }
    if args.json {
        println!("{}", serde_json::to_string(&bench)?);
        return Ok(());
    }
    print_rates(&bench);
    if let Some(unsynced) = &bench.unsynced {
        print_rates(unsynced);
        println!(
            "the sync costs: publish at {:.2}x and the plain loop at {:.2}x of their rates without it",
            bench.publish_events_per_second / unsynced.publish_events_per_second,
            bench.plain_messages_per_second / unsynced.plain_messages_per_second
        );
    }
    Ok(())
}

fn print_rates(bench: &PublishBench) {
    println!(
        "nats-server {}, {}:",
        bench
            .server_version
            .as_deref()
            .unwrap_or("(version unknown)"),
        if bench.syncs_always {
            "every acknowledged write synced (sync_interval: always)"
        } else {
            "synced every 2 minutes (its default)"
        }
    );
    println!(
        "  {program} publish: {} trials, {} events of {} bytes on average, in {:.2} s (of which {:.2} s reading and expanding the campaign) = {:.0} events/s",
        bench.trials,
        bench.events,
        bench.avg_event_bytes,
        bench.publish_seconds,
        bench.prepare_seconds,
        bench.publish_events_per_second,
        program = schemas::program::name()
    );
    println!(
        "  plain async-nats JetStream publish loop: {} messages of {} bytes in {:.2} s = {:.0} msgs/s",
        bench.events, bench.avg_event_bytes, bench.plain_seconds, bench.plain_messages_per_second
    );
    println!("  ratio: {:.2} (aim: at least 0.8)", bench.ratio);
    if let (Some(publish), Some(plain)) = (bench.publish_cpu, bench.plain_cpu) {
        println!(
            "  CPU per event: {program} publish {:.1} µs ({:.2} s here, {:.2} s in nats-server), plain loop {:.1} µs ({:.2} s here, {:.2} s in nats-server)",
            publish.micros_per_event,
            publish.eval_seconds,
            publish.nats_server_seconds,
            plain.micros_per_event,
            plain.eval_seconds,
            plain.nats_server_seconds,
            program = schemas::program::name()
        );
    }
}

/// Runs the benchmark in `work_dir` (a fresh nats-server's store goes there) and reports both
/// rates. `progress` receives one line per phase.
async fn publish_bench(
    work_dir: &Path,
    trials: u32,
    sync: bool,
    progress: impl Fn(&str),
) -> anyhow::Result<PublishBench> {
    std::fs::create_dir_all(work_dir)?;
    progress(if sync {
        "starting a fresh nats-server that syncs every acknowledged write"
    } else {
        "starting a fresh nats-server left to its default sync (every 2 minutes)"
    });
    let server = LocalNats::start_with(&work_dir.join("nats"), None, &[], sync).await?;
    let (server_version, syncs_always) =
        (server.version().map(str::to_string), server.syncs_always());
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
    let timing = Stopwatch::start(server.pid());
    let preparing = Stopwatch::start(None);
    let prepared = campaign_files::prepare(&campaign_file, None, None)?;
    let prepare_seconds = preparing.stop().wall.as_secs_f64();
    let report = publish::publish(&log, &prepared, DEFAULT_IN_FLIGHT, |_| {}).await?;
    let publish_part = timing.stop();
    let publish_seconds = publish_part.wall.as_secs_f64();
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
        "plain loop: {events} messages of the events' sizes (average {avg_event_bytes} bytes)"
    ));
    let timing = Stopwatch::start(server.pid());
    let plain = plain_publish(&log, subjects_and_sizes).await?;
    let plain_part = timing.stop();
    let plain_seconds = plain.as_secs_f64();
    drop(log);
    server.stop(std::time::Duration::from_secs(5)).await;

    let publish_events_per_second = events as f64 / publish_seconds;
    let plain_messages_per_second = events as f64 / plain_seconds;
    Ok(PublishBench {
        trials,
        events,
        avg_event_bytes,
        server_version,
        syncs_always,
        unsynced: None,
        publish_seconds,
        publish_events_per_second,
        plain_seconds,
        plain_messages_per_second,
        ratio: publish_events_per_second / plain_messages_per_second,
        publish_cpu: publish_part.figures(events),
        prepare_seconds,
        plain_cpu: plain_part.figures(events),
    })
}

/// Publishes a message of each size on each subject (under `bench.>`, to a fresh stream of its
/// own), with the same acknowledgements in flight as `evalctl publish` and nothing else: no
/// events built or serialized, no id header. How long it took.
pub(super) async fn plain_publish(
    log: &EventLog,
    subjects_and_sizes: impl IntoIterator<Item = (String, usize)>,
) -> anyhow::Result<std::time::Duration> {
    let subjects_and_sizes: Vec<(String, usize)> = subjects_and_sizes.into_iter().collect();
    let largest = subjects_and_sizes
        .iter()
        .map(|(_, size)| *size)
        .max()
        .unwrap_or(0);
    let jetstream = log.jetstream().clone();
    jetstream
        .create_stream(async_nats_stream_config())
        .await
        .context("plain publish failed")?;
    let payload = Bytes::from(vec![b'x'; largest]);
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    for (subject, size) in subjects_and_sizes {
        let ack = jetstream
            .publish(subject, payload.slice(..size))
            .await
            .context("plain publish failed")?;
        pending.push(ack.into_future());
        if pending.len() >= DEFAULT_IN_FLIGHT
            && let Some(ack) = pending.next().await
        {
            ack.context("plain publish failed")?;
        }
    }
    while let Some(ack) = pending.next().await {
        ack.context("plain publish failed")?;
    }
    Ok(started.elapsed())
}

fn async_nats_stream_config() -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: "BENCH".to_string(),
        subjects: vec!["bench.>".to_string()],
        ..EventLog::stream_config()
    }
}
