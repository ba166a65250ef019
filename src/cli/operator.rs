//! `evalctl operator run`: the reference operator (crate `agents`), a monitor and a runbook agent
//! that need no model. As a variant's managed `command: [eval, operator, run]`, every option
//! comes from the trial's environment. `evalctl operator schema`: the operator.db contract's
//! SQL, for operators (and test fixtures) that create their file from it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::Outcome;
use crate::Global;

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Run the reference operator against a subject until Ctrl-C or SIGTERM.
    Run(RunArgs),
    /// Print the operator.db contract as SQL (`CREATE TABLE IF NOT EXISTS …`): the tables the
    /// capture reads, for an operator to create its file with (`sqlite3 operator.db "$(evalctl
    /// operator schema)"`).
    Schema,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The operator.db to write (created with the contract's schema when missing).
    #[arg(long, env = "EVAL_OPERATOR_DB")]
    db: PathBuf,
    /// The subject it keeps healthy.
    #[arg(long, env = "EVAL_SUBJECT", default_value = "etcd")]
    subject: String,
    /// Client endpoints, comma-separated; node N is the Nth.
    #[arg(long, env = "EVAL_ENDPOINTS", value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    /// TiKV: the PD members' client endpoints, comma-separated (some of --endpoints; the others
    /// are the stores' status addresses).
    #[arg(long, env = "EVAL_PD_ENDPOINTS", value_delimiter = ',')]
    pd_endpoints: Vec<String>,
    /// The lab its repairs act on (`evalctl lab node … --name LAB`).
    #[arg(long, env = "EVAL_LAB")]
    lab: Option<String>,
    /// Seconds between two checks of the invariants.
    #[arg(long, default_value_t = 1.0)]
    monitor_every: f64,
}

pub async fn run(global: &Global, command: OperatorCommand) -> Outcome {
    match command {
        OperatorCommand::Run(args) => {
            let config = agents::OperatorConfig {
                db: args.db,
                subject: args.subject,
                endpoints: args.endpoints,
                pd_endpoints: args
                    .pd_endpoints
                    .into_iter()
                    .filter(|endpoint| !endpoint.trim().is_empty())
                    .collect(),
                eval_binary: chaos::lab::eval_program(),
                lab: args.lab,
                data_dir: Some(global.data_dir.clone()),
                monitor_every: Duration::from_secs_f64(args.monitor_every.max(0.1)),
            };
            agents::run(config, super::shutdown_on_signal()).await?;
            Ok(())
        }
        OperatorCommand::Schema => {
            print!("{}", schemas::operator_db::ddl());
            Ok(())
        }
    }
}
