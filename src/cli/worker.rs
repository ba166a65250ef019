//! `evalctl worker` and `evalctl chaos cleanup`: the trial worker on its own, and the cleanup of faults
//! that a dead worker left behind.

use std::path::PathBuf;

use anyhow::Context;
use chaos::worker::AllowedVariants;
use clap::{Args, Subcommand};

use super::Outcome;
use crate::Global;

/// The variants whose operator commands this host runs.
#[derive(Debug, Clone, Default, Args)]
pub struct AllowVariantsArgs {
    /// A directory of variant files whose `command` this host may run; repeat it for several. A
    /// trial whose variant (from the log) is not one of them, byte for byte, ends `errored`
    /// without running its command. Without it, no managed operator runs here (`evalctl run`
    /// allows the variant files it read itself).
    #[arg(long = "allow-variants", value_name = "DIR")]
    pub allow_variants: Vec<PathBuf>,
}

impl AllowVariantsArgs {
    /// The variants of these directories; refuses a directory with a file that does not parse.
    pub fn allowed(&self) -> anyhow::Result<AllowedVariants> {
        let mut allowed = AllowedVariants::none();
        for dir in &self.allow_variants {
            let variants = ingest::campaign_files::read_variant_dir(dir)
                .with_context(|| format!("--allow-variants {}", dir.display()))?;
            allowed.add(&dir.display().to_string(), variants);
        }
        Ok(allowed)
    }
}

/// Who runs the managed operators.
#[derive(Debug, Clone, Default, Args)]
pub struct OperatorUserArgs {
    /// The user a root worker runs each managed operator as (default: nobody), in its own
    /// directory under /var/lib/eval/operators, with a lab broker for `evalctl lab status|node`;
    /// `root` runs them as root. A worker that is not root runs them as itself.
    #[arg(long, value_name = "USER")]
    pub operator_user: Option<String>,
}

impl OperatorUserArgs {
    /// The user to switch to, checked now (before anything is published or started).
    pub fn resolve(&self) -> anyhow::Result<Option<chaos::operator::RunAs>> {
        chaos::operator::RunAs::resolve(self.operator_user.as_deref()).map_err(anyhow::Error::msg)
    }
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Trials at once, each on its own lab.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Names this worker's labs and the faults it owns; keep it stable across restarts so that a
    /// restarted worker cleans up after itself. Workers sharing a data dir need distinct ids.
    #[arg(long, default_value = "local")]
    worker_id: String,
    #[command(flatten)]
    allow: AllowVariantsArgs,
    #[command(flatten)]
    operator_user: OperatorUserArgs,
}

#[derive(Debug, Subcommand)]
pub enum ChaosCommand {
    /// Clean up the faults in the log that were injected on this host and never cleaned up.
    Cleanup(CleanupArgs),
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Those of every worker, not only of --worker-id (make sure none is running); and on the
    /// Kubernetes cluster of --context (or the kubeconfig's current one), every Chaos Mesh
    /// object the harness made, in every namespace it may list.
    #[arg(long)]
    all: bool,
    /// The worker whose faults to clean up.
    #[arg(long, default_value = "local")]
    worker_id: String,
}

/// The worker's configuration from the command line.
pub fn config(
    global: &Global,
    concurrency: usize,
    worker_id: &str,
    campaign: Option<&str>,
    allowed: AllowedVariants,
    operator_user: Option<chaos::operator::RunAs>,
) -> chaos::worker::WorkerConfig {
    chaos::worker::WorkerConfig {
        data_dir: global.data_dir.clone(),
        worker_id: worker_id.to_string(),
        concurrency: concurrency.clamp(1, 10),
        isolation: chaos::lab::Isolation::available(),
        campaign: campaign.map(str::to_string),
        allowed,
        operator_user,
        kube_context: global.context.clone(),
    }
}

pub async fn run(global: &Global, args: WorkerArgs) -> Outcome {
    let allowed = args.allow.allowed()?;
    let operator_user = args.operator_user.resolve()?;
    let log = global.connect_as(schemas::log::Role::Worker).await?;
    let shutdown = super::shutdown_on_signal();
    eprintln!(
        "{program} worker {}: taking trials from {} ({} at once); Ctrl-C stops",
        args.worker_id,
        global.nats_shown(),
        args.concurrency,
        program = schemas::program::name()
    );
    chaos::worker::run(
        log,
        config(
            global,
            args.concurrency,
            &args.worker_id,
            None,
            allowed,
            operator_user,
        ),
        shutdown,
    )
    .await?;
    Ok(())
}

pub async fn chaos(global: &Global, command: ChaosCommand) -> Outcome {
    match command {
        ChaosCommand::Cleanup(args) => {
            let log = global.connect().await?;
            let worker = (!args.all).then_some(args.worker_id.as_str());
            let recovery = chaos::worker::recover(&log, &global.data_dir, worker).await?;
            println!("cleaned up {} fault(s)", recovery.cleaned);
            for (trial_id, reason) in &recovery.refused {
                println!("trial {trial_id}: {reason}");
            }
            if args.all {
                sweep_kubernetes(global).await?;
            }
            if recovery.refused.is_empty() {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "refused {} cleanup record(s) that name something outside this host's labs; \
                     nothing was done for them",
                    recovery.refused.len()
                )
                .into())
            }
        }
    }
}

/// `chaos cleanup --all` on the Kubernetes cluster the configuration names, if any.
async fn sweep_kubernetes(global: &Global) -> Outcome {
    use chaos::kubernetes::{client, faults};
    let connection = match client::connect(global.context.as_deref()).await {
        Ok(connection) => connection,
        Err(error) if global.context.is_none() => {
            println!("kubernetes: skipped ({error})");
            return Ok(());
        }
        Err(error) => return Err(anyhow::Error::from(error).into()),
    };
    let swept = faults::sweep(&connection.client)
        .await
        .map_err(anyhow::Error::from)?;
    println!(
        "kubernetes ({}): deleted {} object(s) the harness made",
        connection.place,
        swept.deleted.len()
    );
    for object in &swept.deleted {
        println!("  {object}");
    }
    if !swept.unreadable.is_empty() {
        println!(
            "  not allowed to list {}; clean those up with a context that may",
            swept.unreadable.join(", ")
        );
    }
    Ok(())
}
