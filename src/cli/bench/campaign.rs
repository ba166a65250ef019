//! `evalctl bench campaign`: a campaign of short trials run by 1, 2, then 4 worker processes
//! competing on one JetStream cluster (three nats-servers on loopback, the stream kept in three
//! copies), each worker with its own data dir and labs as on its own host: trials per minute for
//! each count, so that scaling is visible.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use schemas::event::EventData;
use schemas::log::cluster::LocalCluster;
use schemas::log::{EventFilter, EventLog};
use serde::Serialize;
use viewer::table::{Column, TextTable};

use super::CampaignBenchArgs;
use crate::cli::Outcome;

#[derive(Debug, Clone, Serialize)]
struct Scaling {
    workers: usize,
    trials: u32,
    /// From the workers' start to the last trial's end.
    seconds: f64,
    trials_per_minute: f64,
    /// Against one worker's rate.
    speedup: f64,
    /// Median of each trial's TrialStarted → TrialFinished.
    median_trial_seconds: f64,
}

pub(super) async fn run(args: CampaignBenchArgs) -> Outcome {
    if args.workers.is_empty() || args.workers.contains(&0) || args.trials == 0 {
        return Err(anyhow::anyhow!(
            "--workers needs counts of at least 1 (for example 1,2,4) and --trials at least 1"
        )
        .into());
    }
    let work = tempfile::tempdir()?;
    eprintln!("bench: starting a 3-member nats-server cluster on loopback");
    let cluster = LocalCluster::start(&work.path().join("cluster"), 3).await?;
    let mut results: Vec<Scaling> = Vec::new();
    for &workers in &args.workers {
        let dir = work.path().join(format!("workers-{workers}"));
        std::fs::create_dir_all(&dir)?;
        eprintln!(
            "bench: {} trials of process_pause (1 s) with {workers} worker process(es)",
            args.trials
        );
        let mut scaling = run_one(&cluster, &dir, workers, args.trials).await?;
        let base = results
            .first()
            .map_or(scaling.trials_per_minute, |one| one.trials_per_minute);
        scaling.speedup = scaling.trials_per_minute / base;
        eprintln!(
            "bench: {workers} worker(s): {:.1} trials/min ({:.1} s)",
            scaling.trials_per_minute, scaling.seconds
        );
        results.push(scaling);
    }
    cluster.stop().await;
    if args.json {
        println!("{}", serde_json::to_string(&results)?);
        return Ok(());
    }
    let mut table = TextTable::new(&[
        Column::right("workers", 7),
        Column::right("trials", 6),
        Column::right("seconds", 8),
        Column::right("trials/min", 10),
        Column::right("speedup", 7),
        Column::right("median trial (s)", 16),
    ]);
    for result in &results {
        table.row([
            result.workers.to_string(),
            result.trials.to_string(),
            format!("{:.1}", result.seconds),
            format!("{:.1}", result.trials_per_minute),
            format!("{:.2}x", result.speedup),
            format!("{:.1}", result.median_trial_seconds),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

/// Workers stopped with SIGTERM (they remove their labs) when dropped.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

async fn run_one(
    cluster: &LocalCluster,
    dir: &Path,
    workers: usize,
    trials: u32,
) -> anyhow::Result<Scaling> {
    let program = std::env::current_exe()?;
    let urls = cluster.urls();
    let file = dir.join("campaign.yaml");
    std::fs::write(
        &file,
        format!(
            "name: bench-{workers}-workers\nsubjects: [etcd]\nchaos_types:\n  - type: process_pause\n    params: {{target: random, duration_seconds: 1}}\ntrials_per_combination: {trials}\nparallel: {workers}\ncooldown_seconds: 0\ntrial_timeout_seconds: 60\nseed: 7\n"
        ),
    )?;
    let published = Command::new(&program)
        .args([
            "publish",
            "--json",
            "--replicas",
            "3",
            "--nats",
            &urls,
            "--data-dir",
        ])
        .arg(dir.join("publisher"))
        .arg(&file)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .output()
        .context("publishing the benchmark's campaign")?;
    if !published.status.success() {
        bail!("publishing the benchmark's campaign failed");
    }
    let report: serde_json::Value = serde_json::from_slice(&published.stdout)?;
    let campaign_id = report["campaign_id"]
        .as_str()
        .context("publish printed no campaign id")?
        .to_string();
    let log = EventLog::connect(&urls).await?;

    let started = Instant::now();
    let mut running = Workers(Vec::new());
    for number in 0..workers {
        let child = Command::new(&program)
            .args(["worker", "--concurrency", "1", "--worker-id"])
            .arg(format!("bench{number}"))
            .args(["--nats", &urls, "--data-dir"])
            .arg(dir.join(format!("worker{number}")))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a worker")?;
        running.0.push(child);
    }
    let (seconds, durations) = loop {
        let (finished, durations) = trial_durations(&log, &campaign_id).await?;
        if finished >= trials as usize {
            break (started.elapsed().as_secs_f64(), durations);
        }
        if started.elapsed() > Duration::from_secs(60 * u64::from(trials.max(1))) {
            bail!("the benchmark's campaign did not finish: {finished} of {trials} trials");
        }
        if let Some(position) = running
            .0
            .iter_mut()
            .position(|child| matches!(child.try_wait(), Ok(Some(_))))
        {
            bail!("worker {position} exited before the campaign's end");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    drop(running);
    let mut durations = durations;
    durations.sort_by(f64::total_cmp);
    let median = durations.get(durations.len() / 2).copied().unwrap_or(0.0);
    Ok(Scaling {
        workers,
        trials,
        seconds,
        trials_per_minute: f64::from(trials) / (seconds / 60.0),
        speedup: 1.0,
        median_trial_seconds: median,
    })
}

/// How many trials of the campaign have finished, and each finished one's last start → end.
async fn trial_durations(log: &EventLog, campaign_id: &str) -> anyhow::Result<(usize, Vec<f64>)> {
    let filter = EventFilter {
        campaign_id: Some(campaign_id.to_string()),
        ..EventFilter::default()
    };
    let mut started = std::collections::HashMap::new();
    let mut durations = Vec::new();
    let events = log.read(&filter, false).await?;
    futures::pin_mut!(events);
    while let Some(stored) = events.next().await {
        let Ok(event) = stored?.event else { continue };
        let Some(trial) = event.trial_id.clone() else {
            continue;
        };
        match event.data {
            EventData::TrialStarted(_) => {
                started.insert(trial, event.occurred_at);
            }
            EventData::TrialFinished(_) => {
                if let Some(at) = started.get(&trial) {
                    durations
                        .push((event.occurred_at.unix_micros() - at.unix_micros()) as f64 / 1e6);
                }
            }
            _ => {}
        }
    }
    Ok((durations.len(), durations))
}
