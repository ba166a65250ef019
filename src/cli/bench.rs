//! `evalctl bench …`: benchmarks that print their figures.

use clap::{Args, Subcommand};
use viewer::table::{Column, TextTable};

use super::Outcome;
use crate::Global;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// `evalctl publish` of a large campaign to a fresh stream, beside a plain async-nats
    /// JetStream publish loop of as many same-size messages.
    Publish(PublishBenchArgs),
    /// For each fault on a real etcd lab: the trial overhead (reset → healthy → injected) and
    /// the cleanup time.
    Trial(TrialBenchArgs),
    /// Re-scoring by replay of a synthetic log (about 30 events per trial), beside the raw read
    /// rate of the same stream.
    Rescore(RescoreBenchArgs),
    /// A full rebuild of the DuckDB file from a synthetic log (about 30 events per trial),
    /// beside DuckDB's own Arrow append of the same rows.
    Project(RescoreBenchArgs),
    /// Every page and API route of the web viewer over a synthetic campaign set (campaigns of
    /// 1,000 trials): p50/p95/p99 of real HTTP requests, served as `evalctl viewer` serves a file.
    Viewer(ViewerBenchArgs),
}

#[derive(Debug, Args)]
pub struct ViewerBenchArgs {
    /// Trials in the database.
    #[arg(long, default_value_t = 100_000)]
    trials: u32,
    /// Timed requests per page.
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// Fill this DuckDB file and keep it; a file an earlier run filled with as many trials is
    /// reused as it is (default: a temporary file).
    #[arg(long)]
    db: Option<std::path::PathBuf>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct RescoreBenchArgs {
    /// Trials in the synthetic log.
    #[arg(long, default_value_t = 100_000)]
    trials: u32,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct TrialBenchArgs {
    /// Measurements per fault (the median is printed).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct PublishBenchArgs {
    /// Trials in the benchmark campaign.
    #[arg(long, default_value_t = 100_000)]
    trials: u32,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

pub async fn run(_global: &Global, command: BenchCommand) -> Outcome {
    match command {
        BenchCommand::Viewer(args) => {
            let work_dir = tempfile::tempdir()?;
            eprintln!(
                "bench: writing {} synthetic trials into DuckDB, then timing every page",
                args.trials
            );
            let db = args
                .db
                .clone()
                .unwrap_or_else(|| work_dir.path().join("viewer.duckdb"));
            let bench = viewer::bench::viewer_bench(
                &db,
                args.trials.max(1),
                args.requests.max(1),
                |line| eprintln!("bench: {line}"),
            )
            .await
            .map_err(|error| anyhow::anyhow!("bench viewer: {error}"))?;
            if args.json {
                println!("{}", serde_json::to_string(&bench)?);
                return Ok(());
            }
            println!(
                "{} trials in {} campaigns ({} events, {:.0} MB of DuckDB), {} requests per page:",
                bench.trials,
                bench.campaigns,
                bench.events,
                bench.database_bytes as f64 / 1e6,
                args.requests.max(1)
            );
            // Two header lines: which series, then which figure.
            let mut table = TextTable::new(&[
                Column::left("", 22),
                Column::right("", 10),
                Column::right("uncached", 9),
                Column::right("", 9),
                Column::right("", 9),
                Column::right("cached", 9),
                Column::right("", 9),
                Column::right("", 9),
            ]);
            table.row([
                "page", "bytes", "p50 ms", "p95 ms", "p99 ms", "p50 ms", "p95 ms", "p99 ms",
            ]);
            for page in &bench.pages {
                table.row([
                    page.page.to_string(),
                    page.mean_bytes.to_string(),
                    format!("{:.1}", page.uncached.p50_ms),
                    format!("{:.1}", page.uncached.p95_ms),
                    format!("{:.1}", page.uncached.p99_ms),
                    format!("{:.1}", page.cached.p50_ms),
                    format!("{:.1}", page.cached.p95_ms),
                    format!("{:.1}", page.cached.p99_ms),
                ]);
            }
            print!("{}", table.render());
            let slowest = |pick: fn(&viewer::bench::PageTiming) -> f64| {
                bench.pages.iter().map(pick).fold(0.0, f64::max)
            };
            println!(
                "slowest p95: uncached {:.1} ms, cached {:.1} ms (aim: under 100 ms for every page)",
                slowest(|page| page.uncached.p95_ms),
                slowest(|page| page.cached.p95_ms)
            );
            Ok(())
        }
        BenchCommand::Project(args) => {
            let work_dir = tempfile::tempdir()?;
            eprintln!(
                "bench: writing {} synthetic trials, then rebuilding DuckDB from them",
                args.trials
            );
            let bench = projector::bench::project_bench(work_dir.path(), args.trials, |line| {
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
            } else {
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
            }
            Ok(())
        }
        BenchCommand::Rescore(args) => {
            let work_dir = tempfile::tempdir()?;
            eprintln!(
                "bench: writing {} synthetic trials, then reading and re-scoring them",
                args.trials
            );
            let bench = scoring::bench::rescore_bench(work_dir.path(), args.trials).await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "trials": bench.trials,
                        "events": bench.events,
                        "raw_read_seconds": bench.raw_read.as_secs_f64(),
                        "raw_events_per_second": bench.raw_events_per_second(),
                        "raw_trials_per_second": bench.raw_trials_per_second(),
                        "rescore_seconds": bench.rescore.as_secs_f64(),
                        "rescore_trials_per_second": bench.rescore_trials_per_second(),
                        "published": bench.published,
                        "ratio": bench.ratio(),
                    })
                );
            } else {
                println!(
                    "raw read: {} events ({} trials) in {:.2} s = {:.0} events/s = {:.0} trials/s",
                    bench.events,
                    bench.trials,
                    bench.raw_read.as_secs_f64(),
                    bench.raw_events_per_second(),
                    bench.raw_trials_per_second()
                );
                println!(
                    "rescore: {} trials in {:.2} s = {:.0} trials/s ({} TrialScored published)",
                    bench.trials,
                    bench.rescore.as_secs_f64(),
                    bench.rescore_trials_per_second(),
                    bench.published
                );
                println!("ratio: {:.2} (aim: at least 0.7)", bench.ratio());
            }
            Ok(())
        }
        BenchCommand::Trial(args) => {
            let work_dir = tempfile::tempdir()?;
            let isolation = chaos::lab::Isolation::available();
            let timings = chaos::bench::trial_bench(
                work_dir.path(),
                isolation,
                args.repeat.max(1),
                |fault| {
                    eprintln!("bench: {fault}");
                },
            )
            .await?;
            if args.json {
                println!("{}", serde_json::to_string(&timings)?);
                return Ok(());
            }
            let mut table = TextTable::new(&[
                Column::left("fault", 18),
                Column::right("repeats", 7),
                Column::right("reset→healthy→injected (ms)", 28),
                Column::right("cleanup (ms)", 12),
            ]);
            let mut skipped = String::new();
            for timing in &timings {
                match &timing.skipped {
                    Some(reason) => {
                        skipped.push_str(&format!("{} skipped: {reason}\n", timing.chaos_type));
                    }
                    None => {
                        table.row([
                            timing.chaos_type.to_string(),
                            timing.repeats.to_string(),
                            format!("{:.0}", timing.overhead_ms),
                            format!("{:.1}", timing.cleanup_ms),
                        ]);
                    }
                }
            }
            print!("{}{skipped}", table.render());
            println!("aim: overhead under 5000 ms, cleanup under 1000 ms");
            Ok(())
        }
        BenchCommand::Publish(args) => {
            let work_dir = tempfile::tempdir()?;
            let bench = ingest::bench::publish_bench(work_dir.path(), args.trials, |phase| {
                eprintln!("bench: {phase}");
            })
            .await?;
            if args.json {
                println!("{}", serde_json::to_string(&bench)?);
            } else {
                println!(
                    "{program} publish: {} trials, {} events of {} bytes on average, in {:.2} s = {:.0} events/s",
                    bench.trials,
                    bench.events,
                    bench.avg_event_bytes,
                    bench.publish_seconds,
                    bench.publish_events_per_second,
                    program = schemas::program::name()
                );
                println!(
                    "plain async-nats JetStream publish loop: {} messages of {} bytes in {:.2} s = {:.0} msgs/s",
                    bench.events,
                    bench.avg_event_bytes,
                    bench.plain_seconds,
                    bench.plain_messages_per_second
                );
                println!("ratio: {:.2} (aim: at least 0.5)", bench.ratio);
            }
            Ok(())
        }
    }
}
