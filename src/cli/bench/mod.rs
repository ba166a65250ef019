//! `evalctl bench …`: benchmarks that print their figures.

mod campaign;
mod cpu;
mod legacy;
mod project;
mod publish;
mod rescore;
mod trial;
mod viewer;

use clap::{Args, Subcommand};

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
    /// A seed harness eval.db (its real rows, copied into many campaigns): `import-legacy` beside
    /// a plain publish loop of as many same-size messages, and `rescore --all` beside the raw
    /// read of the same stream.
    Legacy(LegacyBenchArgs),
    /// A full rebuild of the DuckDB file from a synthetic log (about 30 events per trial),
    /// beside DuckDB's own Arrow append of the same rows.
    Project(RescoreBenchArgs),
    /// A campaign of short trials (process_pause for 1 s) run by 1, 2, then 4 worker processes
    /// competing on one 3-member nats-server cluster: trials per minute for each count.
    Campaign(CampaignBenchArgs),
    /// Every page and API route of the web viewer over a synthetic campaign set (campaigns of
    /// 1,000 trials): p50/p95/p99 of real HTTP requests, served as `evalctl viewer` serves a file.
    Viewer(ViewerBenchArgs),
}

#[derive(Debug, Args)]
pub struct CampaignBenchArgs {
    /// The worker counts to run the campaign with, one after another, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4])]
    pub(super) workers: Vec<usize>,
    /// Trials in each campaign.
    #[arg(long, default_value_t = 12)]
    pub(super) trials: u32,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub struct ViewerBenchArgs {
    /// Trials in the database.
    #[arg(long, default_value_t = 100_000)]
    pub(super) trials: u32,
    /// Timed requests per page.
    #[arg(long, default_value_t = 100)]
    pub(super) requests: usize,
    /// Fill this DuckDB file and keep it; a file an earlier run filled with as many trials is
    /// reused as it is (default: a temporary file).
    #[arg(long)]
    pub(super) db: Option<std::path::PathBuf>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub struct RescoreBenchArgs {
    /// Trials in the synthetic log.
    #[arg(long, default_value_t = 100_000)]
    pub(super) trials: u32,
    /// Start the benchmark's nats-server with `sync_interval: always`, as `evalctl up` does. By
    /// default it syncs every 2 minutes: the benchmark times reads, and syncing each of the
    /// millions of writes of its setup would make the setup many times longer.
    #[arg(long)]
    pub(super) sync: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub struct LegacyBenchArgs {
    /// Trials in the eval.db.
    #[arg(long, default_value_t = 100_000)]
    pub(super) trials: u64,
    /// Campaigns the trials are spread over.
    #[arg(long, default_value_t = 100)]
    pub(super) campaigns: u64,
    /// Start the benchmark's nats-server with `sync_interval: always`, as `evalctl up` does.
    #[arg(long)]
    pub(super) sync: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub struct TrialBenchArgs {
    /// Measurements per fault (the median is printed).
    #[arg(long, default_value_t = 3)]
    pub(super) repeat: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub struct PublishBenchArgs {
    /// Trials in the benchmark campaign.
    #[arg(long, default_value_t = 100_000)]
    pub(super) trials: u32,
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub(super) json: bool,
}

pub async fn run(_global: &Global, command: BenchCommand) -> Outcome {
    match command {
        BenchCommand::Publish(args) => publish::run(args).await,
        BenchCommand::Trial(args) => trial::run(args).await,
        BenchCommand::Rescore(args) => rescore::run(args).await,
        BenchCommand::Legacy(args) => legacy::run(args).await,
        BenchCommand::Project(args) => project::run(args).await,
        BenchCommand::Viewer(args) => viewer::run(args).await,
        BenchCommand::Campaign(args) => campaign::run(args).await,
    }
}
