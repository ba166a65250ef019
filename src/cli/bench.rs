//! `eval bench …`: benchmarks that print their figures.

use clap::{Args, Subcommand};

use super::Outcome;
use crate::Global;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// `eval publish` of a large campaign to a fresh stream, beside a plain async-nats
    /// JetStream publish loop of as many same-size messages.
    Publish(PublishBenchArgs),
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
                    "eval publish: {} trials, {} events of {} bytes on average, in {:.2} s = {:.0} events/s",
                    bench.trials,
                    bench.events,
                    bench.avg_event_bytes,
                    bench.publish_seconds,
                    bench.publish_events_per_second
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
