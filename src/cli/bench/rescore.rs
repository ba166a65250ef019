//! `evalctl bench rescore`: how fast a replay scores trials, beside how fast the same stream can be
//! read at all. A fresh local nats-server gets a synthetic campaign (about 30 events per trial);
//! the stream is read once raw (messages only, nothing parsed), then re-scored, in the same run.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::consumer;
use futures::StreamExt;
use schemas::log::local::LocalNats;
use schemas::log::{EventFilter, EventLog};

use anyhow::{Context, Result, bail};
use scoring::fixtures::synthetic_trial;
use scoring::{RescoreFilter, ScoringConfig, rescore};

use super::RescoreBenchArgs;
use super::cpu::{Part, Stopwatch};
use crate::cli::Outcome;

/// The campaign id of the synthetic log.
const BENCH_CAMPAIGN: &str = "bench-rescore";

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
struct RescoreBench {
    trials: u32,
    events: u64,
    /// The raw read's and the re-score's wall and CPU time (this process's and the server's).
    raw_read: Part,
    rescore: Part,
    /// New `TrialScored` events the re-score published (one per trial).
    published: u64,
}

pub(super) async fn run(args: RescoreBenchArgs) -> Outcome {
    let work_dir = tempfile::tempdir()?;
    eprintln!(
        "bench: writing {} synthetic trials, then reading and re-scoring them",
        args.trials
    );
    let bench = rescore_bench(work_dir.path(), args.trials, args.sync).await?;
    if bench.published != u64::from(bench.trials) {
        return Err(anyhow::anyhow!(
            "the re-score published {} scores for {} trials",
            bench.published,
            bench.trials
        )
        .into());
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "trials": bench.trials,
                "events": bench.events,
                "raw_read_seconds": bench.raw_read.wall.as_secs_f64(),
                "raw_read_cpu": bench.raw_read.figures(bench.events),
                "raw_events_per_second": bench.raw_events_per_second(),
                "raw_trials_per_second": bench.raw_trials_per_second(),
                "rescore_seconds": bench.rescore.wall.as_secs_f64(),
                "rescore_cpu": bench.rescore.figures(bench.events),
                "rescore_trials_per_second": bench.rescore_trials_per_second(),
                "published": bench.published,
                "ratio": bench.ratio(),
            })
        );
        return Ok(());
    }
    println!(
        "raw read: {} events ({} trials) in {:.2} s = {:.0} events/s = {:.0} trials/s",
        bench.events,
        bench.trials,
        bench.raw_read.wall.as_secs_f64(),
        bench.raw_events_per_second(),
        bench.raw_trials_per_second()
    );
    println!(
        "rescore: {} trials in {:.2} s = {:.0} trials/s ({} TrialScored published)",
        bench.trials,
        bench.rescore.wall.as_secs_f64(),
        bench.rescore_trials_per_second(),
        bench.published
    );
    for (name, part) in [("raw read", &bench.raw_read), ("rescore", &bench.rescore)] {
        if let Some(cpu) = part.figures(bench.events) {
            println!(
                "{name} CPU: {:.2} s here, {:.2} s in nats-server, {:.1} µs per event",
                cpu.eval_seconds, cpu.nats_server_seconds, cpu.micros_per_event
            );
        }
    }
    println!(
        "ratio: {:.2} (aim: at least 0.8, and 100,000 trials re-scored in 20 s or less)",
        bench.ratio()
    );
    Ok(())
}

impl RescoreBench {
    fn raw_events_per_second(&self) -> f64 {
        self.events as f64 / self.raw_read.wall.as_secs_f64()
    }

    /// Trials whose events the raw read went through per second.
    fn raw_trials_per_second(&self) -> f64 {
        f64::from(self.trials) / self.raw_read.wall.as_secs_f64()
    }

    fn rescore_trials_per_second(&self) -> f64 {
        f64::from(self.trials) / self.rescore.wall.as_secs_f64()
    }

    /// Re-score rate over raw read rate; the aim is 0.8 or more.
    fn ratio(&self) -> f64 {
        self.rescore_trials_per_second() / self.raw_trials_per_second()
    }
}

/// Starts a nats-server under `work_dir`, publishes `trials` synthetic trials, then times a raw
/// read and a re-score of them. The server is stopped before returning.
async fn rescore_bench(work_dir: &Path, trials: u32, sync: bool) -> Result<RescoreBench> {
    let server = LocalNats::start_with(&work_dir.join("nats"), None, &[], sync).await?;
    let outcome = run_bench(server.url(), server.pid(), trials).await;
    server.stop(Duration::from_secs(5)).await;
    outcome
}

async fn run_bench(url: &str, server_pid: Option<u32>, trials: u32) -> Result<RescoreBench> {
    let log = EventLog::connect(url).await?;
    log.ensure_stream().await?;
    let events = (0..trials).flat_map(|index| synthetic_trial(BENCH_CAMPAIGN, index).events());
    let summary = log.publish_all(events, 1024, |_| {}).await?;
    let events = summary.stored;

    let timing = Stopwatch::start(server_pid);
    let read = raw_read(
        &log,
        &EventFilter {
            campaign_id: Some(BENCH_CAMPAIGN.to_string()),
            ..EventFilter::default()
        },
    )
    .await?;
    let raw_read = timing.stop();
    if read != events {
        bail!("the raw read saw {read} events, {events} were published");
    }

    let timing = Stopwatch::start(server_pid);
    let report = rescore(
        &log,
        &RescoreFilter::Campaign(BENCH_CAMPAIGN.to_string()),
        &ScoringConfig::default(),
        |_| {},
    )
    .await?;
    let rescore = timing.stop();
    Ok(RescoreBench {
        trials,
        events,
        raw_read,
        rescore,
        published: report.n_published,
    })
}

/// Reads the messages `filter` picks through the same kind of ordered consumer as every reader,
/// without parsing them: the floor of what a replay costs. How many there were.
pub(super) async fn raw_read(log: &EventLog, filter: &EventFilter) -> Result<u64> {
    let (consumer, _release) = log
        .ordered_consumer(filter.subject(), consumer::DeliverPolicy::All)
        .await?;
    let mut messages = consumer.messages().await.context("raw read")?;
    let mut count = 0;
    let mut bytes = 0;
    while let Some(message) = messages.next().await {
        let message = message.context("raw read")?;
        count += 1;
        bytes += message.payload.len();
        let pending = message
            .info()
            .map_err(|error| anyhow::anyhow!("raw read: {error}"))?
            .pending;
        if pending == 0 {
            break;
        }
    }
    std::hint::black_box(bytes);
    Ok(count)
}
