//! The `eval` binary: argument parsing and dispatch to the stages' libraries.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// A harness that measures autonomous SRE agents under chaos: it breaks a database cluster on
/// purpose, watches the operator repair it, scores the work, and keeps every trial as events
/// on NATS JetStream.
#[derive(Debug, Parser)]
#[command(name = "eval", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// URL of the NATS server with JetStream.
    #[arg(long, global = true, env = "EVAL_NATS_URL", default_value = schemas::log::DEFAULT_NATS_URL)]
    nats: String,
    /// Directory for local state: the embedded nats-server's store, DuckDB, trial artifacts.
    #[arg(long, global = true, env = "EVAL_DATA_DIR", default_value = ".eval")]
    data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check campaign files and the variant files they name; print every problem with its
    /// file:line:col (exit code 2 when any file is invalid).
    Validate(cli::validate::ValidateArgs),
    /// Validate and expand a campaign file, print its matrix, and publish its trials.
    Publish(cli::publish::PublishArgs),
    /// Run everything on this machine: start a local nats-server with JetStream when none
    /// answers at --nats, create the stream, run every stage, until Ctrl-C or SIGTERM.
    Up(cli::up::UpArgs),
    /// Read the log in order, one line per event (or JSON lines).
    Events(cli::events::EventsArgs),
    /// Publish a campaign and run it to the end in this process: `eval run --subject etcd
    /// --chaos node_kill`, or `eval run campaign FILE`.
    Run(cli::run::RunArgs),
    /// The trial worker alone: takes trials from the log and runs them on labs of its own.
    Worker(cli::worker::WorkerArgs),
    /// Chaos housekeeping.
    #[command(subcommand)]
    Chaos(cli::worker::ChaosCommand),
    /// The capture stage alone: follows the operator.db of every injected trial and publishes
    /// its tickets, sessions and agent log as events, until Ctrl-C.
    Capture(cli::capture::CaptureArgs),
    /// The scoring stage alone: scores every finished trial (TrialScored), until Ctrl-C.
    Score(cli::score::ScoreArgs),
    /// Re-score finished trials by replaying the log with the current scorer and rules; new
    /// TrialScored events are published beside the old ones.
    Rescore(cli::score::RescoreArgs),
    /// Import the seed harness's SQLite eval.db into the log (importing twice adds nothing).
    ImportLegacy(cli::score::ImportArgs),
    /// The reference operator: a monitor and a runbook agent that need no model.
    #[command(subcommand)]
    Operator(cli::operator::OperatorCommand),
    /// Labs: subjects as real processes on this host.
    #[command(subcommand)]
    Lab(cli::lab::LabCommand),
    /// Measure throughput and latency; prints the figures.
    #[command(subcommand)]
    Bench(cli::bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let global = cli.global;
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Validate(args) => cli::validate::run(&global, args),
            Command::Publish(args) => cli::publish::run(&global, args).await,
            Command::Up(args) => cli::up::run(&global, args).await,
            Command::Events(args) => cli::events::run(&global, args).await,
            Command::Run(args) => cli::run::run(&global, args).await,
            Command::Worker(args) => cli::worker::run(&global, args).await,
            Command::Chaos(command) => cli::worker::chaos(&global, command).await,
            Command::Capture(args) => cli::capture::run(&global, args).await,
            Command::Score(args) => cli::score::score(&global, args).await,
            Command::Rescore(args) => cli::score::rescore(&global, args).await,
            Command::ImportLegacy(args) => cli::score::import_legacy(&global, args).await,
            Command::Operator(command) => cli::operator::run(&global, command).await,
            Command::Lab(command) => cli::lab::run(&global, command).await,
            Command::Bench(command) => cli::bench::run(&global, command).await,
        }
    });
    cli::exit(outcome)
}
