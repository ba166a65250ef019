//! Managed operators: the variant's `command`, started by the worker for one trial with the
//! trial's environment, its output kept as the trial's artifacts, stopped at the trial's end
//! (SIGTERM, then SIGKILL after a grace period). Its operator.db is followed by the capture.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::lab::{self, sys};

/// How long a managed operator may take to stop after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a managed operator is told about its trial, as environment variables.
#[derive(Debug, Clone)]
pub struct OperatorEnv {
    pub trial_id: String,
    pub operator_db: PathBuf,
    pub subject: String,
    pub endpoints: Vec<String>,
    /// The lab the trial runs on, and its data dir, for `evalctl lab node …`.
    pub lab: String,
    pub data_dir: PathBuf,
}

/// A running managed operator.
#[derive(Debug)]
pub struct ManagedOperator {
    pid: u32,
    child: tokio::process::Child,
}

impl ManagedOperator {
    /// Starts `argv` (arguments passed as arguments, never through a shell) with the trial's
    /// environment, its stdout and stderr into `artifacts`. A command whose program is `eval` or `evalctl`
    /// runs this very binary.
    pub fn start(argv: &[String], env: &OperatorEnv, artifacts: &Path) -> Result<ManagedOperator> {
        let Some((program, args)) = argv.split_first() else {
            return Err(Error::Lab("the variant's command is empty".into()));
        };
        let program = if matches!(program.as_str(), "eval" | "evalctl") {
            lab::eval_binary()
        } else {
            PathBuf::from(program)
        };
        std::fs::create_dir_all(artifacts).map_err(Error::io(artifacts))?;
        let file = |name: &str| {
            let path = artifacts.join(name);
            std::fs::File::create(&path).map_err(Error::io(&path))
        };
        let child = tokio::process::Command::new(&program)
            .args(args)
            .env("EVAL_TRIAL_ID", &env.trial_id)
            .env("EVAL_OPERATOR_DB", &env.operator_db)
            .env("EVAL_SUBJECT", &env.subject)
            .env("EVAL_ENDPOINTS", env.endpoints.join(","))
            .env("EVAL_LAB", &env.lab)
            .env("EVAL_DATA_DIR", &env.data_dir)
            .stdin(std::process::Stdio::null())
            .stdout(file("operator.stdout")?)
            .stderr(file("operator.stderr")?)
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: program.display().to_string(),
                source,
            })?;
        let pid = child
            .id()
            .ok_or_else(|| Error::Lab(format!("{} exited at once", program.display())))?;
        Ok(ManagedOperator { pid, child })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGTERM, then SIGKILL after `grace`; returns once the process is gone.
    pub async fn stop(mut self, grace: Duration) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = sys::signal(self.pid, nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}
