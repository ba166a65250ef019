//! `evalctl bench project`: a full rebuild of the DuckDB file from a synthetic log (about 30 events
//! per trial, every trial scored), beside its two parts alone in the same run: the raw ordered
//! read of the stream (nothing parsed), and DuckDB's own Arrow append of the same rows (the rows
//! the rebuild produced, read back as Arrow batches, appended to a fresh file). Each with its
//! wall time and the CPU time this process and the nats-server used meanwhile, from `/proc`; and
//! the rebuild's CPU split by thread: reading, folding, writing (the stage's own threads, and
//! DuckDB's workers), each beside its part alone.

use std::path::Path;
use std::time::Duration;

use duckdb::Connection;
use duckdb::arrow::record_batch::RecordBatch;
use schemas::event::{Event, Producer};
use schemas::log::local::LocalNats;
use schemas::log::{EventFilter, EventLog};
use scoring::fixtures::synthetic_trial;
use scoring::score::{ScoringConfig, score};
use viewer::table::{Column, TextTable};

use anyhow::{Context, Result, bail};
use projector::{Writer, schema};

use super::RescoreBenchArgs;
use super::cpu::{Part, Stopwatch, live_threads, used_since};
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
    /// The raw ordered read of the whole stream, nothing parsed: the rebuild's first part alone.
    raw_read: Part,
    /// DuckDB's own Arrow append of the rows the rebuild wrote: its second part alone.
    raw_append: Part,
    /// The full rebuild from the stream.
    rebuild: Part,
    /// The rebuild's CPU time in this process, by thread; `None` where `/proc` cannot tell.
    rebuild_threads: Option<Threads>,
}

/// The rebuild's CPU time in this process, by the threads that spent it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Threads {
    /// The runtime's threads, alive throughout: the stage's read loop and the NATS client (what
    /// the raw read does alone).
    runtime: Duration,
    /// [`projector::stage::FOLD_THREAD`]: events parsed and folded into rows (what neither part
    /// does).
    fold: Duration,
    /// [`projector::stage::COMMIT_THREAD`]: DuckDB's appends and commits as far as they run on
    /// the calling thread.
    commit: Duration,
    /// The rest of this process's CPU time: DuckDB's own worker threads (ended with the file's
    /// close, so measured as what no other thread accounts for).
    duckdb_workers: Duration,
}

/// The stage's own threads, which end before the rebuild's after-snapshot (their CPU time comes
/// from the stage's report).
const STAGE_THREADS: [&str; 2] = [
    projector::stage::FOLD_THREAD,
    projector::stage::COMMIT_THREAD,
];

/// The rebuild's CPU per event over that of its two parts alone; the aim is 1.2 or less.
const CPU_AIM: f64 = 1.2;
/// The rebuild's time over the raw append's alone; the aim is 1.3 or less.
const TIME_AIM: f64 = 1.3;

pub(super) async fn run(args: RescoreBenchArgs) -> Outcome {
    let work_dir = tempfile::tempdir()?;
    eprintln!(
        "bench: writing {} synthetic trials, then reading the stream, appending its rows to DuckDB, and rebuilding DuckDB from it",
        args.trials
    );
    let bench = project_bench(work_dir.path(), args.trials, args.sync, |line| {
        eprintln!("bench: {line}");
    })
    .await?;
    let parts = [
        ("raw read", &bench.raw_read),
        ("raw append", &bench.raw_append),
        ("rebuild", &bench.rebuild),
    ];
    if args.json {
        let part = |part: &Part| {
            serde_json::json!({
                "seconds": part.wall.as_secs_f64(),
                "events_per_second": bench.events as f64 / part.wall.as_secs_f64(),
                "eval_cpu_seconds": part.cpu.map(|cpu| cpu.eval.as_secs_f64()),
                "nats_server_cpu_seconds": part.cpu.map(|cpu| cpu.nats_server.as_secs_f64()),
                "cpu_micros_per_event": bench.micros_per_event(part),
            })
        };
        println!(
            "{}",
            serde_json::json!({
                "trials": bench.trials,
                "events": bench.events,
                "rows": bench.rows,
                "cores": cores(),
                "raw_read": part(&bench.raw_read),
                "raw_append": part(&bench.raw_append),
                "rebuild": part(&bench.rebuild),
                "time_ratio": bench.time_ratio(),
                "cpu_ratio": bench.cpu_ratio(),
                "rebuild_threads_cpu_seconds": bench.rebuild_threads.map(|threads| serde_json::json!({
                    "runtime": threads.runtime.as_secs_f64(),
                    "fold": threads.fold.as_secs_f64(),
                    "commit": threads.commit.as_secs_f64(),
                    "duckdb_workers": threads.duckdb_workers.as_secs_f64(),
                })),
            })
        );
        return Ok(());
    }
    println!(
        "{} events ({} trials, {} rows), {} cores:",
        bench.events,
        bench.trials,
        bench.rows,
        cores()
    );
    let mut table = TextTable::new(&[
        Column::left("part", 12),
        Column::right("seconds", 8),
        Column::right("events/s", 9),
        Column::right("eval CPU s", 10),
        Column::right("nats-server CPU s", 17),
        Column::right("CPU µs/event", 12),
    ]);
    let seconds = |duration: Option<Duration>| {
        duration.map_or("-".to_string(), |d| format!("{:.1}", d.as_secs_f64()))
    };
    for (name, part) in parts {
        table.row([
            name.to_string(),
            format!("{:.2}", part.wall.as_secs_f64()),
            format!("{:.0}", bench.events as f64 / part.wall.as_secs_f64()),
            seconds(part.cpu.map(|cpu| cpu.eval)),
            seconds(part.cpu.map(|cpu| cpu.nats_server)),
            bench
                .micros_per_event(part)
                .map_or("-".to_string(), |micros| format!("{micros:.1}")),
        ]);
    }
    print!("{}", table.render());
    println!(
        "rebuild / raw append, time: {:.2}x (aim: {TIME_AIM}x or less)",
        bench.time_ratio()
    );
    if let Some(ratio) = bench.cpu_ratio() {
        println!(
            "rebuild / (raw read + raw append), CPU per event: {ratio:.2}x (aim: {CPU_AIM}x or less)"
        );
    }
    if let Some(threads) = bench.rebuild_threads {
        print!("{}", bench.threads_table(&threads));
    }
    Ok(())
}

/// The cores this machine offers.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl ProjectBench {
    /// A part's CPU time per event, both processes together, in microseconds.
    fn micros_per_event(&self, part: &Part) -> Option<f64> {
        part.micros_per_event(self.events)
    }

    /// Rebuild time over raw append time.
    fn time_ratio(&self) -> f64 {
        self.rebuild.wall.as_secs_f64() / self.raw_append.wall.as_secs_f64()
    }

    /// The rebuild's CPU by thread, each beside what its part cost alone.
    fn threads_table(&self, threads: &Threads) -> String {
        let micros = |cpu: Duration| cpu.as_secs_f64() * 1e6 / self.events.max(1) as f64;
        let alone = |part: &Part, cpu: fn(&super::cpu::Cpu) -> Duration| {
            part.cpu.map_or("-".to_string(), |figures| {
                format!("{:.1}", micros(cpu(&figures)))
            })
        };
        let mut table = TextTable::new(&[
            Column::left("rebuild's CPU by thread", 40),
            Column::right("CPU s", 6),
            Column::right("µs/event", 8),
            Column::right("alone, µs/event", 15),
        ]);
        let writing = threads.commit + threads.duckdb_workers;
        let rows = [
            (
                "reading: the runtime (read loop, NATS client)",
                threads.runtime,
                alone(&self.raw_read, |cpu| cpu.eval),
            ),
            (
                "folding into rows (eval-fold)",
                threads.fold,
                "none".to_string(),
            ),
            ("writing: eval-commit", threads.commit, String::new()),
            (
                "writing: DuckDB's workers",
                threads.duckdb_workers,
                String::new(),
            ),
            (
                "writing in all",
                writing,
                alone(&self.raw_append, |cpu| cpu.eval),
            ),
        ];
        for (name, cpu, alone) in rows {
            table.row([
                name.to_string(),
                format!("{:.1}", cpu.as_secs_f64()),
                format!("{:.1}", micros(cpu)),
                alone,
            ]);
        }
        if let Some(cpu) = self.rebuild.cpu {
            table.row([
                "nats-server".to_string(),
                format!("{:.1}", cpu.nats_server.as_secs_f64()),
                format!("{:.1}", micros(cpu.nats_server)),
                alone(&self.raw_read, |cpu| cpu.nats_server),
            ]);
        }
        table.render()
    }

    /// The rebuild's CPU per event over the sum of its parts'.
    fn cpu_ratio(&self) -> Option<f64> {
        Some(
            self.micros_per_event(&self.rebuild)?
                / (self.micros_per_event(&self.raw_read)?
                    + self.micros_per_event(&self.raw_append)?),
        )
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

    let timing = Stopwatch::start(server_pid);
    let read = super::rescore::raw_read(&log, &EventFilter::default()).await?;
    let raw_read = timing.stop();
    if read != events {
        bail!("the raw read met {read} events, {events} were published");
    }
    progress("read; rebuilding");

    let path = work_dir.join("rebuilt.duckdb");
    let threads_before = live_threads(&STAGE_THREADS);
    let timing = Stopwatch::start(server_pid);
    let (writer, projection) = Writer::open(&path)?;
    let report = projector::stage::catch_up(&log, writer, projection).await?;
    let rebuild = timing.stop();
    let runtime = used_since(&threads_before, &live_threads(&STAGE_THREADS));
    let rebuild_threads = rebuild.cpu.map(|cpu| Threads {
        runtime,
        fold: report.fold_cpu,
        commit: report.commit_cpu,
        duckdb_workers: cpu
            .eval
            .saturating_sub(runtime + report.fold_cpu + report.commit_cpu),
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
    let timing = Stopwatch::start(server_pid);
    for (name, batches) in tables {
        let mut appender = raw.appender(name)?;
        for batch in batches {
            appender.append_record_batch(batch)?;
        }
        appender.flush()?;
    }
    raw.execute_batch("CHECKPOINT;")?;
    let raw_append = timing.stop();
    Ok(ProjectBench {
        trials,
        events,
        rows,
        raw_read,
        raw_append,
        rebuild,
        rebuild_threads,
    })
}
