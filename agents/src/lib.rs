//! The reference operator that runs without any model: a monitor that opens tickets when an etcd
//! invariant breaks and a runbook agent that repairs the lab, both writing a real operator.db
//! (DESIGN.md, "operator.db contract").
//!
//! [`run`] is the whole operator; [`run_with`] takes the [`CommandRunner`] that executes commands,
//! so a test can serve `evalctl lab …` in process.

pub(crate) mod agent;
pub mod db;
pub mod monitor;
pub mod pd_probe;
pub mod probe;
pub mod runbook;
pub mod runner;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use runner::{CommandOutput, CommandRunner, ProcessRunner};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("operator.db {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("operator.db {path}: {reason}")]
    Database { path: PathBuf, reason: String },
    #[error("subject {0:?} is not supported by the reference operator (only etcd)")]
    UnsupportedSubject(String),
    #[error("no endpoints given")]
    NoEndpoints,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the operator watches and where it writes.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// operator.db, created when missing.
    pub db: PathBuf,
    /// `etcd`.
    pub subject: String,
    /// Client URLs (`http://ip:port`); node `i` is `endpoints[i - 1]`.
    pub endpoints: Vec<String>,
    /// The program run for commands that start with `eval`.
    pub eval_binary: PathBuf,
    /// The lab, for `evalctl lab node … --name LAB`.
    pub lab: Option<String>,
    /// The lab's data dir, for `evalctl lab node … --data-dir DIR`.
    pub data_dir: Option<PathBuf>,
    /// How often the monitor checks the invariants (1 s).
    pub monitor_every: Duration,
}

impl OperatorConfig {
    /// The defaults for everything but the database and the endpoints.
    pub fn etcd(db: PathBuf, endpoints: Vec<String>) -> OperatorConfig {
        OperatorConfig {
            db,
            subject: "etcd".into(),
            endpoints,
            eval_binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("eval")),
            lab: None,
            data_dir: None,
            monitor_every: Duration::from_secs(1),
        }
    }
}

/// Runs the monitor and the agent until `shutdown`, commands run as processes (arguments as
/// arguments, never a shell; `eval` is `config.eval_binary`).
pub async fn run(config: OperatorConfig, shutdown: CancellationToken) -> Result<()> {
    let runner = Arc::new(ProcessRunner::new(config.eval_binary.clone()));
    run_with(config, runner, shutdown).await
}

/// [`run`] with another command runner.
pub async fn run_with(
    config: OperatorConfig,
    runner: Arc<dyn CommandRunner>,
    shutdown: CancellationToken,
) -> Result<()> {
    if config.subject != "etcd" {
        return Err(Error::UnsupportedSubject(config.subject.clone()));
    }
    if config.endpoints.is_empty() {
        return Err(Error::NoEndpoints);
    }
    let db = db::OperatorDb::open(&config.db)?;
    tracing::info!(db = %config.db.display(), endpoints = ?config.endpoints, "operator started");
    let monitor = tokio::spawn(monitor::run(
        config.clone(),
        db.clone(),
        runner.clone(),
        shutdown.clone(),
    ));
    let agent = tokio::spawn(agent::run(config, db, runner, shutdown.clone()));
    let (monitor, agent) = tokio::join!(monitor, agent);
    for (stage, outcome) in [("monitor", monitor), ("agent", agent)] {
        if let Err(error) = outcome {
            tracing::error!(stage, %error, "operator task ended abnormally");
        }
    }
    Ok(())
}
