//! `evalctl run`: publish a campaign (built from flags, or a file) and run it to the end in this
//! process with the stages of `evalctl up`, showing progress and a summary.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;
use viewer::table::{Column, TextTable};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use futures::StreamExt;
use ingest::campaign_files::{self, PrepareError};
use schemas::event::EventData;
use schemas::log::{DEFAULT_IN_FLIGHT, EventFilter, EventLog};
use tokio_util::sync::CancellationToken;

use super::{Failure, Outcome};
use crate::Global;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunArgs {
    #[command(subcommand)]
    file: Option<RunFile>,
    /// The subject to break.
    #[arg(short, long, default_value = "etcd")]
    subject: String,
    /// The fault: node_kill, process_pause, latency, packet_loss, network_partition,
    /// disk_pressure, none; on tikv also pd_leader_kill, leader_evict, region_unavailable.
    #[arg(short, long)]
    chaos: Option<String>,
    /// A parameter of the fault, such as `target=leader` or `duration_seconds=5`; repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Trials to run.
    #[arg(short = 'n', long, default_value_t = 1)]
    trials: u32,
    /// Also run as many baseline trials (the same chaos, no operator).
    #[arg(short, long)]
    baseline: bool,
    /// The operator variant.
    #[arg(long)]
    variant: Option<String>,
    /// Seconds after which a trial ends as timed out.
    #[arg(long, default_value_t = 300)]
    timeout: u32,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Subcommand)]
enum RunFile {
    /// Run a campaign file (the seed harness's `evalctl run campaign FILE`).
    Campaign {
        file: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Clone, Args)]
struct CommonArgs {
    /// Where variant files are looked up (default: `variants/` next to the campaign file; for a
    /// campaign built from flags, `campaigns/variants` under the current directory).
    #[arg(long)]
    variants_dir: Option<PathBuf>,
    /// The operator.db of an operator that is already running and watching the subject
    /// (external mode, the campaign file's `operator_db`): trials of variants without a
    /// `command` are captured from it.
    #[arg(long, value_name = "PATH")]
    operator_db: Option<PathBuf>,
    /// The operator is already running (the seed harness's flag): no variant's `command` is
    /// started, and every operator trial is captured from --operator-db (or the campaign's
    /// `operator_db`).
    #[arg(long)]
    operator_running: bool,
    /// Trials at once (default: the campaign's `parallel`).
    #[arg(long)]
    concurrency: Option<usize>,
    #[command(flatten)]
    operator_user: super::worker::OperatorUserArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(global: &Global, args: RunArgs) -> Outcome {
    let (file, common) = match args.file {
        Some(RunFile::Campaign { file, common }) => (file, common),
        None => {
            let Some(chaos) = &args.chaos else {
                return Err(anyhow::anyhow!(
                    "give --chaos TYPE (and --subject), or `{program} run campaign FILE`",
                    program = schemas::program::name()
                )
                .into());
            };
            let file = write_campaign(global, &args, chaos)?;
            (file, args.common)
        }
    };
    run_file(global, &file, &common).await
}

/// Writes the campaign that the flags describe into the data dir, so that it is validated and
/// recorded like any campaign file.
fn write_campaign(global: &Global, args: &RunArgs, chaos: &str) -> anyhow::Result<PathBuf> {
    let mut params = serde_json::Map::new();
    for param in &args.params {
        let (key, value) = param
            .split_once('=')
            .with_context(|| format!("--param {param:?} is not KEY=VALUE"))?;
        let value = serde_json::from_str::<serde_json::Value>(value)
            .ok()
            .filter(|value| !value.is_string() && !value.is_object())
            .unwrap_or_else(|| serde_json::Value::String(value.to_string()));
        params.insert(key.to_string(), value);
    }
    let mut campaign = serde_json::json!({
        "name": format!("run {} {chaos}", args.subject),
        "subjects": [args.subject],
        "chaos_types": [{"type": chaos, "params": params}],
        "trials_per_combination": args.trials,
        "include_baseline": args.baseline,
        "trial_timeout_seconds": args.timeout,
    });
    if let Some(variant) = &args.variant {
        campaign["variant"] = variant.clone().into();
    }
    let dir = global.data_dir.join("runs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join(format!("{}.yaml", schemas::ids::new_campaign_id()));
    // JSON is YAML; one field a line keeps diagnostics' line numbers useful.
    std::fs::write(&file, serde_json::to_string_pretty(&campaign)? + "\n")
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}

/// Where a campaign's variant files are: `--variants-dir`, else next to a campaign file, else
/// (a campaign built from flags) `campaigns/variants` under the current directory. A directory
/// that does not exist is an error naming where it was looked for, never an empty default.
fn variants_dir(
    global: &Global,
    file: &std::path::Path,
    common: &CommonArgs,
) -> Result<Option<PathBuf>, Failure> {
    let from_flags = file.starts_with(&global.data_dir);
    let dir = match &common.variants_dir {
        Some(dir) => dir.clone(),
        None if from_flags => PathBuf::from("campaigns/variants"),
        None => return Ok(None),
    };
    if dir.is_dir() {
        return Ok(Some(dir));
    }
    let looked = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
    eprintln!(
        "error: no variants directory at {}{}; give --variants-dir DIR (the directory of your variant files), or run from the directory that holds campaigns/variants",
        looked.display(),
        if common.variants_dir.is_none() {
            " (the default for a campaign built from flags: campaigns/variants under the current directory)"
        } else {
            ""
        }
    );
    Err(Failure::Invalid)
}

/// Applies `--operator-db` and `--operator-running` to the prepared campaign: the external
/// operator's file, and no managed command when the operator is already running.
fn external_operator(
    prepared: &mut campaign_files::PreparedCampaign,
    common: &CommonArgs,
) -> Result<(), Failure> {
    if let Some(path) = &common.operator_db {
        if !path.is_file() {
            eprintln!(
                "error: --operator-db {}: no such file; give the operator.db that the running operator writes",
                path.display()
            );
            return Err(Failure::Invalid);
        }
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        prepared.campaign.operator_db = Some(absolute.display().to_string());
    }
    if common.operator_running {
        if prepared.campaign.operator_db.is_none() {
            eprintln!(
                "error: --operator-running needs the running operator's operator.db: give --operator-db PATH (or operator_db in the campaign file)"
            );
            return Err(Failure::Invalid);
        }
        for resolved in &mut prepared.variants {
            resolved.variant.command = None;
        }
    }
    Ok(())
}

async fn run_file(global: &Global, file: &std::path::Path, common: &CommonArgs) -> Outcome {
    let variants_dir = variants_dir(global, file, common)?;
    let prepared = match campaign_files::prepare(file, variants_dir.as_deref(), None) {
        Ok(prepared) => prepared,
        Err(PrepareError::Invalid(diagnostics)) => {
            eprintln!("{diagnostics}");
            return Err(Failure::Invalid);
        }
        Err(error) => return Err(error.into()),
    };
    let mut prepared = prepared;
    external_operator(&mut prepared, common)?;
    super::preflight(global, &prepared.trials).await?;
    let operator_user = common.operator_user.resolve()?;
    let shutdown = super::shutdown_on_signal();
    let (log, server) = super::up::connect_or_start(global).await?;
    let n_trials = prepared.trials.len();
    match unfinished_trials_elsewhere(&log, &prepared.campaign_id).await {
        Ok(waiting) if !waiting.is_empty() => eprintln!(
            "{program} run: {} unfinished trials of {} other campaigns wait in the log; this run takes only its own (`{program} up` or `{program} worker` runs them)",
            waiting.values().sum::<usize>(),
            waiting.len(),
            program = schemas::program::name()
        ),
        Ok(_) => {}
        Err(error) => tracing::debug!(%error, "could not count the trials waiting in the log"),
    }
    ingest::publish::publish(&log, &prepared, DEFAULT_IN_FLIGHT, |_| {}).await?;
    eprintln!(
        "{program} run: campaign {} ({:?}): {n_trials} trials",
        prepared.campaign_id,
        prepared.campaign.name,
        program = schemas::program::name()
    );

    let worker_stop = CancellationToken::new();
    let concurrency = common
        .concurrency
        .unwrap_or(prepared.campaign.parallel as usize);
    // The trial pipeline, as `evalctl up` starts it, for this campaign's trials only.
    let pipeline = super::stages::Pipeline {
        // The variant files this run read itself are the ones whose commands it runs.
        worker: super::worker::config(
            global,
            concurrency,
            "run",
            Some(&prepared.campaign_id),
            {
                let mut allowed = chaos::worker::AllowedVariants::none();
                allowed.add(
                    &format!("the variant files of this run, {}", prepared.file_name),
                    prepared
                        .variants
                        .iter()
                        .map(|resolved| resolved.variant.clone()),
                );
                allowed
            },
            operator_user,
        ),
        // The data dir, and the external operator's file the user named (by flag or in the
        // campaign file given on this command line).
        capture: super::capture::config(
            64,
            None,
            super::capture::data_dirs(global)
                .into_iter()
                .chain(
                    prepared
                        .campaign
                        .operator_db
                        .as_deref()
                        .and_then(|path| std::path::Path::new(path).parent())
                        .map(std::path::Path::to_path_buf),
                )
                .collect(),
        ),
        scoring: super::score::config(None)?,
    };
    let stages = super::stages::Stages::start("run", global, pipeline, &worker_stop).await?;

    let finished = tokio::select! {
        finished = follow_trials(&log, &prepared.campaign_id, n_trials) => Some(finished),
        () = shutdown.cancelled() => None,
        () = stages.worker_ended.cancelled() => {
            eprintln!("{program} run: the worker stopped (see above)", program = schemas::program::name());
            None
        }
    };
    if matches!(finished, Some(Ok(()))) {
        // Let the scoring stage grade the last trials, so the log is complete on return. A trial
        // whose scoring failed is graded again after RETRY_DELAY, or after ACK_WAIT when even
        // the failure could not be told (a cluster member going down): wait for both, twice.
        let patience = scoring::stage::ACK_WAIT * 2 + scoring::stage::RETRY_DELAY;
        if tokio::time::timeout(patience, wait_scored(&log, &prepared.campaign_id, n_trials))
            .await
            .is_err()
        {
            eprintln!(
                "{program} run: some trials were not scored within {}s; `{program} score` (or `{program} up`) scores them",
                patience.as_secs(),
                program = schemas::program::name()
            );
        }
    }
    worker_stop.cancel();
    stages.wait().await;
    if matches!(finished, Some(Ok(()))) {
        project_campaign(global, &log).await;
    }
    let outcome = match finished {
        Some(Ok(())) => {
            let summary = summarize_retrying(&log, &prepared.campaign_id).await?;
            if common.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&summary.to_json(&prepared.campaign_id))?
                );
            } else {
                summary.print(&prepared.campaign_id);
            }
            if summary.n_errored() > 0 {
                eprintln!(
                    "{program} run: {} trials ended errored (the harness could not run them; see the reasons above)",
                    summary.n_errored(),
                    program = schemas::program::name()
                );
                Err(Failure::TrialsErrored)
            } else {
                Ok(())
            }
        }
        Some(Err(error)) => Err(error.into()),
        None => {
            eprintln!(
                "{program} run: interrupted; every fault was cleaned up, and the unfinished trials of campaign {} wait in the log (`{program} up` resumes them)",
                prepared.campaign_id,
                program = schemas::program::name()
            );
            Err(Failure::Error(anyhow::anyhow!("interrupted")))
        }
    };
    drop(log);
    if let Some(server) = server {
        server.stop(Duration::from_secs(5)).await;
    }
    outcome
}

/// Brings the DuckDB file up to date with the log, so that `evalctl show`, `evalctl analyze`, … see
/// the campaign at once. A running `evalctl up` owns the file and projects it itself.
async fn project_campaign(global: &Global, log: &EventLog) {
    let path = super::project::db_path(global, None);
    let (writer, projection) = match super::project::open_writer(&path).await {
        Ok(opened) => opened,
        Err(error) => {
            eprintln!(
                "{program} run: the database is not updated here: {error:#}",
                program = schemas::program::name()
            );
            return;
        }
    };
    if let Err(error) = projector::stage::catch_up(log, writer, projection).await {
        eprintln!(
            "{program} run: projecting into {}: {error}",
            path.display(),
            program = schemas::program::name()
        );
    }
}

/// Trials requested and not finished, per campaign other than `campaign_id`, from the stream's
/// per-subject counts (no message is read).
async fn unfinished_trials_elsewhere(
    log: &EventLog,
    campaign_id: &str,
) -> anyhow::Result<BTreeMap<String, usize>> {
    let stream = log.ensure_stream().await?;
    let requested = trials_with_event(&stream, "TrialRequested").await?;
    let finished = trials_with_event(&stream, "TrialFinished").await?;
    let mut waiting = BTreeMap::new();
    for (campaign, _) in requested.difference(&finished) {
        if campaign != campaign_id {
            *waiting.entry(campaign.clone()).or_default() += 1;
        }
    }
    Ok(waiting)
}

/// The (campaign, trial) pairs that have an event of `event_type`, from the subjects' names.
async fn trials_with_event(
    stream: &async_nats::jetstream::stream::Stream,
    event_type: &str,
) -> anyhow::Result<std::collections::HashSet<(String, String)>> {
    let mut subjects = stream
        .info_with_subjects(format!("eval.*.*.{event_type}"))
        .await?;
    let mut trials = std::collections::HashSet::new();
    while let Some(entry) = subjects.next().await {
        let (subject, _) = entry?;
        let mut parts = subject.split('.').skip(1);
        if let (Some(campaign), Some(trial)) = (parts.next(), parts.next()) {
            trials.insert((campaign.to_string(), trial.to_string()));
        }
    }
    Ok(trials)
}

async fn wait_scored(log: &EventLog, campaign_id: &str, n_trials: usize) {
    let filter = EventFilter {
        campaign_id: Some(campaign_id.to_string()),
        trial_id: None,
        event_type: Some("TrialScored".to_string()),
    };
    let mut scored = std::collections::HashSet::new();
    // A read that fails (a cluster member going down under it) is opened again: the caller
    // bounds the wait.
    while scored.len() < n_trials {
        if let Ok(events) = log.read(&filter, true).await {
            futures::pin_mut!(events);
            while scored.len() < n_trials {
                match events.next().await {
                    Some(Ok(stored)) => {
                        if let Ok(event) = stored.event {
                            scored.extend(event.trial_id);
                        }
                    }
                    _ => break,
                }
            }
        }
        if scored.len() < n_trials {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Follows the campaign's `TrialFinished` events until every trial has one, printing a line each.
async fn follow_trials(log: &EventLog, campaign_id: &str, n_trials: usize) -> anyhow::Result<()> {
    let filter = EventFilter {
        campaign_id: Some(campaign_id.to_string()),
        trial_id: None,
        event_type: Some("TrialFinished".to_string()),
    };
    let bar = super::progress_bar(n_trials as u64, "trials");
    let mut events = Box::pin(log.read_from(&filter, 1, true).await?);
    let mut done = std::collections::HashSet::new();
    // Where to read again from when the read fails under us (a cluster member going down).
    let mut next_sequence = 1;
    let mut failures = 0;
    loop {
        if done.len() >= n_trials {
            // An end read from a cluster member that went down before the others had it is not
            // in the log: its publish failed, so the worker runs the trial again. Only ends the
            // log keeps count.
            let kept = match finished_in_log(log, &filter).await {
                Ok(kept) => kept,
                Err(error) => {
                    failures += 1;
                    if failures > 20 {
                        return Err(error);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if kept.len() >= n_trials {
                break;
            }
            eprintln!(
                "{program} run: {} of the {} trial ends seen are in the log (a cluster member went down with the others); waiting for those trials to run again",
                kept.len(),
                done.len(),
                program = schemas::program::name()
            );
            done = kept;
            next_sequence = 1;
            // Read from the start again; should that fail, the failed read below reopens it.
            if let Ok(again) = log.read_from(&filter, next_sequence, true).await {
                events = Box::pin(again);
            }
        }
        let stored = match events.next().await {
            Some(Ok(stored)) => {
                failures = 0;
                stored
            }
            failure => {
                failures += 1;
                if failures > 20 {
                    match failure {
                        Some(Err(error)) => return Err(error.into()),
                        _ => bail!("the log ended"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Ok(again) = log.read_from(&filter, next_sequence, true).await {
                    events = Box::pin(again);
                }
                continue;
            }
        };
        next_sequence = stored.sequence + 1;
        let Ok(event) = stored.event else { continue };
        let (Some(trial_id), EventData::TrialFinished(finished)) = (&event.trial_id, &event.data)
        else {
            continue;
        };
        if !done.insert(trial_id.clone()) {
            continue;
        }
        let line = format!(
            "trial {}/{n_trials} {}: {}{}",
            done.len(),
            trial_id.get(..8).unwrap_or(trial_id),
            finished.status.as_str(),
            finished
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        match &bar {
            Some(bar) => {
                bar.set_position(done.len() as u64);
                bar.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

/// The trials whose `TrialFinished` the log holds now (`filter` picks those of one campaign).
async fn finished_in_log(
    log: &EventLog,
    filter: &EventFilter,
) -> anyhow::Result<std::collections::HashSet<String>> {
    let mut kept = std::collections::HashSet::new();
    let events = log.read(filter, false).await?;
    futures::pin_mut!(events);
    while let Some(stored) = events.next().await {
        if let Ok(event) = stored?.event {
            kept.extend(event.trial_id);
        }
    }
    Ok(kept)
}

#[derive(Debug, Default)]
struct Cell {
    /// The worker's `TrialFinished` statuses (its hint: whether the harness ran the trial).
    statuses: BTreeMap<&'static str, u32>,
    /// The scorer's outcomes (the latest `TrialScored` of each trial), `unscored` without one.
    outcomes: BTreeMap<&'static str, u32>,
    /// Injection to repair of the trials the scorer calls a success: its time to resolve (with an
    /// operator) or to heal (without).
    heal_seconds: Vec<f64>,
}

struct Summary {
    cells: BTreeMap<(u32, String, String, String), Cell>,
}

/// [`summarize`], read again for up to a minute after a failed read (a cluster member going
/// down under it).
async fn summarize_retrying(log: &EventLog, campaign_id: &str) -> anyhow::Result<Summary> {
    let started = std::time::Instant::now();
    loop {
        match summarize(log, campaign_id).await {
            Ok(summary) => return Ok(summary),
            Err(error) if started.elapsed() < Duration::from_secs(60) => {
                tracing::debug!(%error, "reading the campaign's summary failed; reading again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn summarize(log: &EventLog, campaign_id: &str) -> anyhow::Result<Summary> {
    let filter = EventFilter {
        campaign_id: Some(campaign_id.to_string()),
        ..Default::default()
    };
    let events = log.read(&filter, false).await?;
    futures::pin_mut!(events);
    let mut trials: HashMap<String, (u32, String, String, String)> = HashMap::new();
    let mut healed: HashMap<String, f64> = HashMap::new();
    let mut status: HashMap<String, &'static str> = HashMap::new();
    let mut outcome: HashMap<String, &'static str> = HashMap::new();
    while let Some(stored) = events.next().await {
        let Ok(event) = stored?.event else { continue };
        let Some(trial_id) = event.trial_id.clone() else {
            continue;
        };
        match &event.data {
            EventData::TrialRequested(requested) => {
                let trial = &requested.trial;
                let key = (
                    trial.chaos_index,
                    trial.subject.to_string(),
                    trial.chaos.chaos_type().to_string(),
                    trial
                        .variant
                        .clone()
                        .unwrap_or_else(|| "baseline".to_string()),
                );
                trials.insert(trial_id, key);
            }
            EventData::TrialFinished(data) => {
                status.insert(trial_id, data.status.as_str());
            }
            // The scorer's word, as everywhere else: the latest score of the trial counts.
            EventData::TrialScored(score) => {
                outcome.insert(
                    trial_id.clone(),
                    scoring::score::outcome_name(score.outcome),
                );
                match score.time_to_resolve_ms.or(score.time_to_heal_ms) {
                    Some(ms) if score.outcome == schemas::event::Outcome::Success => {
                        healed.insert(trial_id, ms as f64 / 1000.0);
                    }
                    _ => {
                        healed.remove(&trial_id);
                    }
                }
            }
            _ => {}
        }
    }
    let mut cells: BTreeMap<(u32, String, String, String), Cell> = BTreeMap::new();
    for (trial_id, key) in trials {
        let cell = cells.entry(key).or_default();
        *cell
            .statuses
            .entry(status.get(&trial_id).copied().unwrap_or("unfinished"))
            .or_default() += 1;
        *cell
            .outcomes
            .entry(outcome.get(&trial_id).copied().unwrap_or("unscored"))
            .or_default() += 1;
        if let Some(seconds) = healed.get(&trial_id) {
            cell.heal_seconds.push(*seconds);
        }
    }
    Ok(Summary { cells })
}

impl Summary {
    fn n_errored(&self) -> u32 {
        self.cells
            .values()
            .map(|cell| cell.statuses.get("errored").copied().unwrap_or(0))
            .sum()
    }

    fn print(&self, campaign_id: &str) {
        println!("campaign {campaign_id}");
        let mut table = TextTable::new(&[
            Column::left("subject", 8).after(2),
            Column::left("chaos", 18),
            Column::left("variant", 10),
            Column::right("n", 3),
            Column::right("success", 7),
            Column::right("failure", 7),
            Column::right("timeout", 7),
            Column::right("errored", 7),
            Column::left("median time to repair", 0).after(2),
        ]);
        for ((_, subject, chaos, variant), cell) in &self.cells {
            let n: u32 = cell.statuses.values().sum();
            let count = |outcome| cell.outcomes.get(outcome).copied().unwrap_or(0);
            table.row([
                subject.to_string(),
                chaos.to_string(),
                variant.to_string(),
                n.to_string(),
                count("success").to_string(),
                count("failure").to_string(),
                count("timeout").to_string(),
                count("errored").to_string(),
                scoring::stats::median(&cell.heal_seconds).map_or("-".to_string(), |s| {
                    format!("{s:.1}s (n={})", cell.heal_seconds.len())
                }),
            ]);
        }
        print!("{}", table.render());
        println!(
            "more: {program} analyze {campaign_id} · {program} show {campaign_id} · {program} compare-baseline {campaign_id}",
            program = schemas::program::name()
        );
    }

    fn to_json(&self, campaign_id: &str) -> serde_json::Value {
        serde_json::json!({
            "campaign_id": campaign_id,
            "cells": self.cells.iter().map(|((_, subject, chaos, variant), cell)| serde_json::json!({
                "subject": subject, "chaos_type": chaos, "variant": variant,
                "n": cell.statuses.values().sum::<u32>(),
                "statuses": cell.statuses,
                "outcomes": cell.outcomes,
                "median_repair_seconds": scoring::stats::median(&cell.heal_seconds),
                "n_repaired": cell.heal_seconds.len(),
            })).collect::<Vec<_>>(),
        })
    }
}
