//! The reference operator that runs without any model: a monitor that opens tickets when an etcd
//! or TiKV invariant breaks and a runbook agent that repairs the lab, both writing a real operator.db
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
    #[error("subject {0:?} is not supported by the reference operator (etcd and tikv are)")]
    UnsupportedSubject(String),
    #[error("no endpoints given")]
    NoEndpoints,
    #[error(
        "tikv needs the PD members' endpoints (--pd-endpoints, or EVAL_PD_ENDPOINTS as the worker sets it)"
    )]
    NoPdEndpoints,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the operator watches and where it writes.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// operator.db, created when missing.
    pub db: PathBuf,
    /// `etcd` or `tikv`.
    pub subject: String,
    /// Client URLs (`http://ip:port`); node `i` is `endpoints[i - 1]`.
    pub endpoints: Vec<String>,
    /// TiKV: the PD members' client URLs (some of `endpoints`; the others are the stores'
    /// status addresses).
    pub pd_endpoints: Vec<String>,
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
            pd_endpoints: Vec::new(),
            eval_binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("eval")),
            lab: None,
            data_dir: None,
            monitor_every: Duration::from_secs(1),
        }
    }
}

impl OperatorConfig {
    /// Where the operator's commands point.
    pub fn target(&self) -> runbook::Target {
        runbook::Target {
            endpoints: self.endpoints.clone(),
            pd_endpoints: self.pd_endpoints.clone(),
            lab: self.lab.clone(),
            data_dir: self.data_dir.clone(),
        }
    }
}

/// One look at the subject and the invariants it breaks: etcd's through `etcdctl`, TiKV's
/// through PD's API and the stores' status addresses.
pub(crate) async fn look(
    runner: &Arc<dyn CommandRunner>,
    target: &runbook::Target,
) -> Vec<probe::Violation> {
    if target.is_tikv() {
        let nodes = target.nodes();
        let observation = pd_probe::observe(runner, &nodes).await;
        pd_probe::evaluate_on(&observation, &nodes)
    } else {
        probe::evaluate(&probe::observe(runner, &target.endpoints).await)
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
    match config.subject.as_str() {
        "etcd" => {}
        "tikv" if config.pd_endpoints.is_empty() => return Err(Error::NoPdEndpoints),
        "tikv" => {}
        _ => return Err(Error::UnsupportedSubject(config.subject.clone())),
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
