//! `evalctl bench project`: a full rebuild of the DuckDB file from a synthetic log (about 30 events
//! per trial, every trial scored), beside DuckDB's own Arrow append of the same rows in the same
//! run: the rows the rebuild produced, read back as Arrow batches, appended to a fresh file.

use std::path::Path;
use std::time::{Duration, Instant};

use duckdb::Connection;
use duckdb::arrow::record_batch::RecordBatch;
use schemas::event::{Event, Producer};
use schemas::log::EventLog;
use schemas::log::local::LocalNats;
use scoring::fixtures::synthetic_trial;
use scoring::score::{ScoringConfig, score};

use anyhow::{Context, Result, bail};
use projector::{Writer, schema};

use super::RescoreBenchArgs;
use crate::cli::Outcome;

/// The campaign id of the synthetic log.
const BENCH_CAMPAIGN: &str = "bench-project";

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
struct ProjectBench {
    trials: u32,
    events: u64,
    /// Rows the rebuild wrote, over every table.
    rows: u64,
    rebuild: Duration,
    raw_append: Duration,
    /// CPU time (user and system, every thread) used during the rebuild by this process and by
    /// the nats-server; `None` where `/proc` cannot tell.
    rebuild_cpu: Option<RebuildCpu>,
}

/// Where the rebuild's CPU time went.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RebuildCpu {
    eval: Duration,
    nats_server: Duration,
    /// The cores this machine offers.
    cores: usize,
}

pub(super) async fn run(args: RescoreBenchArgs) -> Outcome {
    let work_dir = tempfile::tempdir()?;
    eprintln!(
        "bench: writing {} synthetic trials, then rebuilding DuckDB from them",
        args.trials
    );
    let bench = project_bench(work_dir.path(), args.trials, args.sync, |line| {
        eprintln!("bench: {line}");
    })
    .await?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "trials": bench.trials,
                "events": bench.events,
                "rows": bench.rows,
                "rebuild_seconds": bench.rebuild.as_secs_f64(),
                "rebuild_events_per_second": bench.rebuild_events_per_second(),
                "raw_append_seconds": bench.raw_append.as_secs_f64(),
                "raw_append_events_per_second": bench.raw_events_per_second(),
                "slowdown": bench.slowdown(),
                "rebuild_cpu": bench.rebuild_cpu.map(|cpu| serde_json::json!({
                    "eval_seconds": cpu.eval.as_secs_f64(),
                    "nats_server_seconds": cpu.nats_server.as_secs_f64(),
                    "cores": cpu.cores,
                    "micros_per_event": bench.cpu_micros_per_event(),
                    "cores_busy": bench.cores_busy(),
                })),
            })
        );
        return Ok(());
    }
    println!(
        "rebuild: {} events ({} trials, {} rows) in {:.2} s = {:.0} events/s",
        bench.events,
        bench.trials,
        bench.rows,
        bench.rebuild.as_secs_f64(),
        bench.rebuild_events_per_second()
    );
    println!(
        "DuckDB Arrow append of the same rows: {:.2} s = {:.0} events/s",
        bench.raw_append.as_secs_f64(),
        bench.raw_events_per_second()
    );
    println!(
        "rebuild / raw append: {:.2}x (aim: 3x or less; at least 200,000 events/s)",
        bench.slowdown()
    );
    if let (Some(cpu), Some(micros), Some(busy)) = (
        bench.rebuild_cpu,
        bench.cpu_micros_per_event(),
        bench.cores_busy(),
    ) {
        println!(
            "CPU during the rebuild: {:.1} s (eval {:.1} s, nats-server {:.1} s) = {micros:.1} µs per event; {:.0}% of {} cores busy",
            cpu.total().as_secs_f64(),
            cpu.eval.as_secs_f64(),
            cpu.nats_server.as_secs_f64(),
            busy * 100.0,
            cpu.cores
        );
    }
    Ok(())
}

impl RebuildCpu {
    fn total(&self) -> Duration {
        self.eval + self.nats_server
    }
}

impl ProjectBench {
    fn rebuild_events_per_second(&self) -> f64 {
        self.events as f64 / self.rebuild.as_secs_f64()
    }

    /// The raw append's rate, counted in the events those rows came from.
    fn raw_events_per_second(&self) -> f64 {
        self.events as f64 / self.raw_append.as_secs_f64()
    }

    /// Rebuild time over raw append time; the aim is 3 or less.
    fn slowdown(&self) -> f64 {
        self.rebuild.as_secs_f64() / self.raw_append.as_secs_f64()
    }

    /// CPU time per event of the rebuild, both processes together, in microseconds.
    fn cpu_micros_per_event(&self) -> Option<f64> {
        let cpu = self.rebuild_cpu?;
        Some(cpu.total().as_secs_f64() * 1e6 / self.events as f64)
    }

    /// The share of the machine's cores the rebuild kept busy.
    fn cores_busy(&self) -> Option<f64> {
        let cpu = self.rebuild_cpu?;
        Some(cpu.total().as_secs_f64() / (self.rebuild.as_secs_f64() * cpu.cores as f64))
    }
}

/// The synthetic trial `index`'s events, with its score.
fn synthetic_events(index: u32, producer: &Producer) -> Vec<Event> {
    let mut events = synthetic_trial(BENCH_CAMPAIGN, index).events();
    let scored = score(&events, &ScoringConfig::default()).to_event(producer);
    events.push(scored);
    events
}

/// Starts a nats-server under `work_dir`, publishes `trials` synthetic trials, then times a full
/// rebuild and the raw append. The server is stopped before returning.
async fn project_bench(
    work_dir: &Path,
    trials: u32,
    sync: bool,
    progress: impl Fn(&str),
) -> Result<ProjectBench> {
    let server = LocalNats::start_with(&work_dir.join("nats"), None, &[], sync)
        .await
        .context("cannot start nats-server")?;
    let outcome = run_bench(server.url(), server.pid(), work_dir, trials, progress).await;
    server.stop(Duration::from_secs(5)).await;
    outcome
}

async fn run_bench(
    url: &str,
    server_pid: Option<u32>,
    work_dir: &Path,
    trials: u32,
    progress: impl Fn(&str),
) -> Result<ProjectBench> {
    let log = EventLog::connect(url).await?;
    log.ensure_stream().await?;
    let producer = Producer::here("bench");
    let events = (0..trials).flat_map(|index| synthetic_events(index, &producer));
    let summary = log.publish_all(events, 1024, |_| {}).await?;
    let events = summary.stored;
    progress(&format!("published {events} events; rebuilding"));

    let path = work_dir.join("rebuilt.duckdb");
    let cpu = || Some((cpu_time(std::process::id())?, cpu_time(server_pid?)?));
    let cpu_before = cpu();
    let started = Instant::now();
    let (writer, projection) = Writer::open(&path)?;
    let report = projector::stage::catch_up(&log, writer, projection).await?;
    let rebuild = started.elapsed();
    let rebuild_cpu = cpu_before
        .zip(cpu())
        .map(|((eval, server), (eval_after, server_after))| RebuildCpu {
            eval: eval_after.saturating_sub(eval),
            nats_server: server_after.saturating_sub(server),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
        });
    if report.applied != events {
        bail!(
            "the rebuild applied {} events, {events} were published",
            report.applied
        );
    }
    progress("rebuilt; appending the same rows to a fresh file");

    // The same rows, as Arrow batches, kept in memory.
    let source = Connection::open(&path)?;
    let mut tables: Vec<(&str, Vec<RecordBatch>)> = Vec::new();
    let mut rows = 0;
    for table in schema::TABLES {
        let mut statement = source.prepare(&format!("SELECT * FROM {}", table.name))?;
        let batches: Vec<RecordBatch> = statement.query_arrow([])?.collect();
        rows += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        tables.push((table.name, batches));
    }
    drop(source);

    let raw_path = work_dir.join("raw.duckdb");
    let raw = Connection::open(&raw_path)?;
    let mut ddl = String::new();
    for table in schema::TABLES {
        ddl.push_str(&table.create_sql());
    }
    raw.execute_batch(&ddl)?;
    // Each table in its own transaction (one large transaction over every table meets a DuckDB
    // internal error on optimistic writes).
    let started = Instant::now();
    for (name, batches) in tables {
        let mut appender = raw.appender(name)?;
        for batch in batches {
            appender.append_record_batch(batch)?;
        }
        appender.flush()?;
    }
    raw.execute_batch("CHECKPOINT;")?;
    let raw_append = started.elapsed();
    Ok(ProjectBench {
        trials,
        events,
        rows,
        rebuild,
        raw_append,
        rebuild_cpu,
    })
}

/// The CPU time (user and system, every thread) process `pid` has used so far, from
/// `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces, within parentheses), from the
    // third: utime and stime are the 14th and 15th, in clock ticks.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}
