//! Managed operators: the variant's `command`, started by the worker for one trial with the
//! trial's environment (and without the harness's NATS settings), its output kept as the trial's
//! artifacts, in a process group of its own that is stopped whole at the trial's end (SIGTERM,
//! then SIGKILL after a grace period): nothing it started outlives the trial. Its operator.db is
//! followed by the capture.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::lab;

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

/// Whether an environment variable of the worker is the harness's alone: how to reach its NATS
/// (`EVAL_NATS_URL`, credentials), or a NATS client's own settings.
fn harness_only(name: &str) -> bool {
    name.starts_with("EVAL_NATS") || name.starts_with("NATS_")
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
        let mut command = tokio::process::Command::new(&program);
        // The log is the harness's, not the operator's: it gets no way to reach it from us.
        for (name, _) in std::env::vars_os() {
            if harness_only(&name.to_string_lossy()) {
                command.env_remove(&name);
            }
        }
        let child = command
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

    /// SIGTERM to its whole process group, then SIGKILL after `grace`; returns once the operator
    /// is gone, and nothing of its group is left (a child it left behind is killed too).
    pub async fn stop(mut self, grace: Duration) {
        use nix::sys::signal::{Signal, killpg};
        let group = nix::unistd::Pid::from_raw(self.pid as i32);
        if let Ok(None) = self.child.try_wait() {
            let _ = killpg(group, Signal::SIGTERM);
            let _ = tokio::time::timeout(grace, self.child.wait()).await;
        }
        // Whatever the leader did, its group ends with the trial. The group cannot be another's
        // yet: a pid is not given out again while a group of that id has members.
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        crate::lab::sys::process_alive(pid as u32)
    }

    #[test]
    fn the_harness_keeps_its_nats_settings_to_itself() {
        for name in ["EVAL_NATS_URL", "EVAL_NATS_CREDS", "NATS_URL", "NATS_CREDS"] {
            assert!(harness_only(name), "{name}");
        }
        for name in [
            "EVAL_TRIAL_ID",
            "EVAL_ENDPOINTS",
            "PATH",
            "HOME",
            "MY_NATS_URL",
        ] {
            assert!(!harness_only(name), "{name}");
        }
    }

    /// An operator that leaves a child behind and ignores SIGTERM: at the trial's end its whole
    /// group is gone.
    #[tokio::test]
    async fn stopping_an_operator_stops_everything_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("child.pid");
        let script = format!(
            "trap '' TERM; sleep 600 & echo $! > {}; env > {}; wait",
            pid_file.display(),
            dir.path().join("env").display()
        );
        let env = OperatorEnv {
            trial_id: "t".to_string(),
            operator_db: dir.path().join("operator.db"),
            subject: "etcd".to_string(),
            endpoints: vec![],
            lab: "l".to_string(),
            data_dir: dir.path().to_path_buf(),
        };
        let argv = ["sh".to_string(), "-c".to_string(), script];
        let operator = ManagedOperator::start(&argv, &env, &dir.path().join("artifacts")).unwrap();
        let started = std::time::Instant::now();
        let child = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok())
            {
                break pid;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no child");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(alive(child));
        operator.stop(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        while alive(child) && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(child), "the operator's child outlived it");
        let seen = std::fs::read_to_string(dir.path().join("env")).unwrap();
        assert!(seen.contains("EVAL_TRIAL_ID=t"), "{seen}");
    }
}
