//! `evalctl bench rescore`: how fast a replay scores trials, beside how fast the same stream can be
//! read at all. A fresh local nats-server gets a synthetic campaign (about 30 events per trial);
//! the stream is read once raw (messages only, nothing parsed), then re-scored, in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer;
use futures::StreamExt;
use schemas::log::local::LocalNats;
use schemas::log::{EventFilter, EventLog};

use crate::fixtures::synthetic_trial;
use crate::rescore::{RescoreFilter, rescore};
use crate::score::ScoringConfig;
use crate::{Error, Result};

/// The campaign id of the synthetic log.
pub const BENCH_CAMPAIGN: &str = "bench-rescore";

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RescoreBench {
    pub trials: u32,
    pub events: u64,
    pub raw_read: Duration,
    pub rescore: Duration,
    /// New `TrialScored` events the re-score published (one per trial).
    pub published: u64,
}

impl RescoreBench {
    pub fn raw_events_per_second(&self) -> f64 {
        self.events as f64 / self.raw_read.as_secs_f64()
    }

    /// Trials whose events the raw read went through per second.
    pub fn raw_trials_per_second(&self) -> f64 {
        f64::from(self.trials) / self.raw_read.as_secs_f64()
    }

    pub fn rescore_trials_per_second(&self) -> f64 {
        f64::from(self.trials) / self.rescore.as_secs_f64()
    }

    /// Re-score rate over raw read rate; the aim is 0.7 or more.
    pub fn ratio(&self) -> f64 {
        self.rescore_trials_per_second() / self.raw_trials_per_second()
    }
}

/// Starts a nats-server under `work_dir`, publishes `trials` synthetic trials, then times a raw
/// read and a re-score of them. The server is stopped before returning.
pub async fn rescore_bench(work_dir: &Path, trials: u32) -> Result<RescoreBench> {
    let server = LocalNats::start(&work_dir.join("nats"), None).await?;
    let outcome = run_bench(server.url(), trials).await;
    server.stop(Duration::from_secs(5)).await;
    outcome
}

async fn run_bench(url: &str, trials: u32) -> Result<RescoreBench> {
    let log = EventLog::connect(url).await?;
    log.ensure_stream().await?;
    let events = (0..trials).flat_map(|index| synthetic_trial(BENCH_CAMPAIGN, index).events());
    let summary = log.publish_all(events, 1024, |_| {}).await?;
    let events = summary.stored;

    let started = Instant::now();
    let read = raw_read(&log).await?;
    let raw_read = started.elapsed();
    if read != events {
        return Err(Error::Bench(format!(
            "the raw read saw {read} events, {events} were published"
        )));
    }

    let started = Instant::now();
    let report = rescore(
        &log,
        &RescoreFilter::Campaign(BENCH_CAMPAIGN.to_string()),
        &ScoringConfig::default(),
        |_| {},
    )
    .await?;
    let rescore = started.elapsed();
    Ok(RescoreBench {
        trials,
        events,
        raw_read,
        rescore,
        published: report.n_published,
    })
}

/// Reads the campaign's messages through the same kind of ordered consumer as every reader,
/// without parsing them: the floor of what a replay costs.
async fn raw_read(log: &EventLog) -> Result<u64> {
    let filter = EventFilter {
        campaign_id: Some(BENCH_CAMPAIGN.to_string()),
        ..EventFilter::default()
    };
    let stream = log.stream().await?;
    let bench_error = |error: String| Error::Bench(format!("raw read: {error}"));
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.subject(),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|error| bench_error(error.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| bench_error(error.to_string()))?;
    let mut count = 0;
    let mut bytes = 0;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|error| bench_error(error.to_string()))?;
        count += 1;
        bytes += message.payload.len();
        let pending = message
            .info()
            .map_err(|error| bench_error(error.to_string()))?
            .pending;
        if pending == 0 {
            break;
        }
    }
    std::hint::black_box(bytes);
    Ok(count)
}
