//! The `evalctl` program (also installed as `eval`): argument parsing and dispatch to the
//! stages' libraries. The binaries are thin `main`s over [`main`].

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// A harness that measures autonomous SRE agents under chaos: it breaks a database cluster on
/// purpose, watches the operator repair it, scores the work, and keeps every trial as events
/// on NATS JetStream.
#[derive(Debug, Parser)]
#[command(name = "evalctl", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// URL of the NATS server with JetStream [default: nats://127.0.0.1:4222]; several,
    /// comma-separated, for a cluster; `nats://USER:PASSWORD@HOST:PORT` carries a user and
    /// password, `tls://…` asks for TLS. Shown without its secrets.
    // The variable's value may hold a password: `--help` does not show it.
    #[arg(
        long,
        global = true,
        env = "EVAL_NATS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    nats: Option<String>,
    /// How many copies of the stream a JetStream cluster keeps (1 to 5): the stream is created
    /// with that many, and an existing stream with another count is refused [default: 1 when
    /// creating the stream, any count when using one].
    #[arg(
        long,
        global = true,
        env = "EVAL_REPLICAS",
        value_name = "N",
        value_parser = clap::value_parser!(u8).range(1..=5)
    )]
    replicas: Option<u8>,
    /// Directory for local state: the embedded nats-server's store and credential, DuckDB, trial
    /// artifacts.
    #[arg(long, global = true, env = "EVAL_DATA_DIR", default_value = ".eval")]
    data_dir: PathBuf,
    /// NATS user (with --nats-password).
    #[arg(
        long,
        global = true,
        env = "EVAL_NATS_USER",
        value_name = "USER",
        help_heading = "NATS credentials"
    )]
    nats_user: Option<String>,
    /// NATS password (prefer the variable: a flag shows in `ps`).
    #[arg(
        long,
        global = true,
        env = "EVAL_NATS_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD",
        help_heading = "NATS credentials"
    )]
    nats_password: Option<String>,
    /// NATS token (prefer the variable: a flag shows in `ps`).
    #[arg(
        long,
        global = true,
        env = "EVAL_NATS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "NATS credentials"
    )]
    nats_token: Option<String>,
    /// A file holding an NKey seed.
    #[arg(
        long,
        global = true,
        env = "EVAL_NATS_NKEY",
        value_name = "SEED_FILE",
        help_heading = "NATS credentials"
    )]
    nats_nkey: Option<PathBuf>,
    /// A NATS `.creds` file (a user JWT and its seed).
    #[arg(
        long,
        global = true,
        env = "EVAL_NATS_CREDS",
        value_name = "FILE",
        help_heading = "NATS credentials"
    )]
    nats_creds: Option<PathBuf>,
    /// CA certificates (PEM) the server's certificate must chain to.
    #[arg(
        long,
        global = true,
        env = "EVAL_NATS_CA",
        value_name = "PEM",
        help_heading = "NATS credentials"
    )]
    nats_ca: Option<PathBuf>,
    /// A client certificate (PEM), with --nats-key, for servers that verify clients.
    #[arg(
        long,
        global = true,
        env = "EVAL_NATS_CERT",
        value_name = "PEM",
        help_heading = "NATS credentials"
    )]
    nats_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(
        long,
        global = true,
        env = "EVAL_NATS_KEY",
        value_name = "PEM",
        help_heading = "NATS credentials"
    )]
    nats_key: Option<PathBuf>,
    /// Refuse to talk to NATS without TLS.
    #[arg(
        long,
        global = true,
        env = "EVAL_NATS_TLS",
        help_heading = "NATS credentials"
    )]
    nats_tls: bool,
    /// The kubeconfig context for subjects on `runtime: kubernetes` (wins over a campaign's
    /// `subject_settings.<subject>.context`) [default: the kubeconfig's current context].
    #[arg(
        long,
        global = true,
        env = "EVAL_KUBE_CONTEXT",
        value_name = "CONTEXT",
        help_heading = "Kubernetes"
    )]
    context: Option<String>,
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
    /// Publish a campaign and run it to the end in this process: `evalctl run --subject etcd
    /// --chaos node_kill`, or `evalctl run campaign FILE`.
    Run(cli::run::RunArgs),
    /// The trial worker alone: takes trials from the log and runs them on labs of its own, or on
    /// the pods of the Kubernetes cluster a campaign names.
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
    /// The projector stage alone: keeps <data-dir>/eval.duckdb in step with the log (exactly
    /// once; resumable); `--rebuild` replays the whole log into a new file.
    Project(cli::project::ProjectArgs),
    /// Read-only SQL over the DuckDB tables (see the README for tables and columns).
    Sql(cli::sql::SqlArgs),
    /// The web viewer: campaigns, trial timelines, variant scorecards, SQL, on 127.0.0.1:8000
    /// (`evalctl up` serves the same pages on its own port).
    Viewer(cli::viewer::ViewerArgs),
    /// Campaigns, newest first, with progress and success rate.
    List(cli::views::ListArgs),
    /// A campaign and its trials, or (--trial) one trial's timeline: phases, the agent's
    /// reasoning and commands, the state diff, every score.
    Show(cli::views::ShowArgs),
    /// A campaign's statistics per subject × chaos × variant: success rate, TTD and TTR with
    /// 95% intervals, commands.
    Analyze(cli::views::AnalyzeArgs),
    /// Two campaigns' operator trials side by side, with significance tests.
    Compare(cli::views::CompareArgs),
    /// A campaign's operator against baseline trials (no operator) of the same subject and chaos.
    CompareBaseline(cli::views::CompareBaselineArgs),
    /// The balanced scorecard of every variant for one subject and chaos type, with a verdict.
    CompareVariants(cli::views::CompareVariantsArgs),
    /// Every variant that ran, with the subjects and faults it faced.
    ListVariants(cli::views::ListVariantsArgs),
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

/// Parses the arguments and runs the command; `--help`, `--version` and error messages name the
/// program as it was invoked (`evalctl` or `eval`).
pub fn main() -> ExitCode {
    let invoked = schemas::program::set_name_from_argv0(std::env::args_os().next().as_deref());
    let matches = Cli::command().name(invoked).bin_name(invoked).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    if let Command::Lab(cli::lab::LabCommand::Child(args)) = cli.command {
        return cli::lab::child(args);
    }
    // The servers this process starts die with it, through `lab child` of this very binary.
    schemas::log::local::set_child_wrapper("/proc/self/exe");
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
            Command::Project(args) => cli::project::run(&global, args).await,
            Command::Sql(args) => cli::sql::run(&global, args).await,
            Command::Viewer(args) => cli::viewer::run(&global, args).await,
            Command::List(args) => cli::views::list(&global, args).await,
            Command::Show(args) => cli::views::show(&global, args).await,
            Command::Analyze(args) => cli::views::analyze(&global, args).await,
            Command::Compare(args) => cli::views::compare(&global, args).await,
            Command::CompareBaseline(args) => cli::views::compare_baseline(&global, args).await,
            Command::CompareVariants(args) => cli::views::compare_variants(&global, args).await,
            Command::ListVariants(args) => cli::views::list_variants(&global, args).await,
            Command::Operator(command) => cli::operator::run(&global, command).await,
            Command::Lab(command) => cli::lab::run(&global, command).await,
            Command::Bench(command) => cli::bench::run(&global, command).await,
        }
    });
    cli::exit(outcome)
}
