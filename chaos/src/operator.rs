//! Managed operators: the variant's `command`, started by the worker for one trial with the
//! trial's environment (and without the harness's NATS settings), its output kept as the trial's
//! artifacts, in a process group of its own that is stopped whole at the trial's end (SIGTERM,
//! then SIGKILL after a grace period): nothing it started outlives the trial. Its operator.db is
//! followed by the capture.
//!
//! A worker that runs as root runs its operators as an unprivileged user ([`RunAs`]: `nobody`
//! unless `--operator-user` names another, without root's supplementary groups), in a place that
//! user can reach whatever the data dir's parents allow ([`OperatorPlace`]), and with the lab
//! broker (`broker.rs`) for the `evalctl lab` commands that need root.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::broker::{BROKER_VARIABLE, Broker};
use crate::error::{Error, Result};
use crate::lab;

/// How long a managed operator may take to stop after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The user a root worker runs operators as unless told otherwise.
pub const DEFAULT_OPERATOR_USER: &str = "nobody";

/// Where the operators of a root worker that run as another user keep their files: each trial
/// in `<this>/<data dir's tag>/<trial id>/`, root's (its output, the broker's socket) with a
/// `work/` of the operator's user (its home, its operator.db).
pub const OPERATOR_BASE: &str = "/var/lib/eval/operators";

/// The unprivileged user a managed operator runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// Who runs a worker's operators: for a root worker, `name` (by default `nobody`), or root
    /// itself (`None`) when `name` is `root`; a worker that is not root runs them as itself, and
    /// refuses to name another user.
    pub fn resolve(name: Option<&str>) -> std::result::Result<Option<RunAs>, String> {
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|user| user.name);
        if !lab::sys::is_root() {
            return match name {
                Some(name) if Some(name) != me.as_deref() => Err(format!(
                    "--operator-user {name}: only a worker that runs as root can run operators as another user"
                )),
                _ => Ok(None),
            };
        }
        let name = name.unwrap_or(DEFAULT_OPERATOR_USER);
        let user = nix::unistd::User::from_name(name)
            .map_err(|error| format!("--operator-user {name}: {error}"))?
            .ok_or_else(|| {
                format!(
                    "--operator-user {name}: no such user on this host; create it (useradd --system {name}) or name another"
                )
            })?;
        if user.uid.is_root() {
            return Ok(None);
        }
        Ok(Some(RunAs {
            user: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }))
    }
}

/// Where one trial's managed operator works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorPlace {
    /// Its output (`operator.stdout`, `operator.stderr`) and, when it runs as another user, the
    /// broker's socket: the worker's.
    pub dir: PathBuf,
    /// Its working directory and home: its own.
    pub work: PathBuf,
    /// `EVAL_OPERATOR_DB`, in `work`.
    pub operator_db: PathBuf,
}

impl OperatorPlace {
    /// The place of `trial_id`'s operator, made: `<data dir>/trials/<trial id>/` when it runs as
    /// the worker's user; under [`OPERATOR_BASE`] when it runs as `run_as`, its `work/` that
    /// user's alone.
    pub fn make(data_dir: &Path, trial_id: &str, run_as: Option<&RunAs>) -> Result<OperatorPlace> {
        // The id comes from the log: it names one directory, never a path.
        if trial_id.is_empty() || matches!(trial_id, "." | "..") || trial_id.contains(['/', '\0']) {
            return Err(Error::Refused(format!(
                "trial id {trial_id:?} cannot name a directory"
            )));
        }
        let Some(run_as) = run_as else {
            let dir = data_dir.join("trials").join(trial_id);
            std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
            return Ok(OperatorPlace {
                work: dir.clone(),
                operator_db: dir.join("operator.db"),
                dir,
            });
        };
        let operators = operators_dir(data_dir).ok_or_else(|| {
            Error::Lab(format!(
                "the data dir {} cannot be read",
                data_dir.display()
            ))
        })?;
        let dir = operators.join(trial_id);
        // From /var/lib/eval down, every directory root's alone.
        let var_lib = Path::new("/var/lib");
        std::fs::create_dir_all(var_lib).map_err(Error::io(var_lib))?;
        let owned: Vec<&Path> = dir
            .ancestors()
            .take_while(|ancestor| *ancestor != var_lib)
            .collect();
        for ancestor in owned.into_iter().rev() {
            root_dir(ancestor)?;
        }
        let work = dir.join("work");
        match std::fs::create_dir(&work) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(Error::io(&work)(source)),
        }
        let meta = std::fs::symlink_metadata(&work).map_err(Error::io(&work))?;
        if !meta.is_dir() {
            return Err(Error::Refused(format!(
                "{} is not a directory",
                work.display()
            )));
        }
        std::os::unix::fs::lchown(&work, Some(run_as.uid), Some(run_as.gid))
            .map_err(Error::io(&work))?;
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o700))
            .map_err(Error::io(&work))?;
        Ok(OperatorPlace {
            operator_db: work.join("operator.db"),
            work,
            dir,
        })
    }
}

/// The directory under [`OPERATOR_BASE`] of `data_dir`'s operators (whether or not it exists).
pub fn operators_dir(data_dir: &Path) -> Option<PathBuf> {
    let canonical = std::fs::canonicalize(data_dir)
        .or_else(|_| std::path::absolute(data_dir))
        .ok()?;
    Some(Path::new(OPERATOR_BASE).join(tag(&canonical)))
}

/// A directory root owns and nobody else may write, made when missing (mode 0755); anything
/// else there (a link, another's directory) is refused.
fn root_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(Error::io(dir))?,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(Error::io(dir)(source)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(Error::io(dir))?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(Error::Refused(format!(
            "{} must be a directory of root's that nobody else may write",
            dir.display()
        )));
    }
    Ok(())
}

/// A short stable name for a data dir (FNV-1a of its canonical path), so that the operators of
/// two data dirs never share a directory.
fn tag(canonical: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let hash = canonical
        .as_os_str()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{hash:016x}")
}

/// What a managed operator is told about its trial, as environment variables.
#[derive(Debug, Clone)]
pub struct OperatorEnv {
    pub trial_id: String,
    pub operator_db: PathBuf,
    pub subject: String,
    pub endpoints: Vec<String>,
    /// TiKV: the PD members' endpoints (`EVAL_PD_ENDPOINTS`); empty for etcd.
    pub pd_endpoints: Vec<String>,
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
    /// Its lab broker, when it runs as another user: served while it runs.
    _broker: Option<Broker>,
}

impl ManagedOperator {
    /// Starts `argv` (arguments passed as arguments, never through a shell) in `place` with the
    /// trial's environment, its stdout and stderr into `place.dir`, as `run_as` when given. A
    /// command whose program is `eval` or `evalctl` runs this very binary.
    pub fn start(
        argv: &[String],
        env: &OperatorEnv,
        place: &OperatorPlace,
        run_as: Option<&RunAs>,
    ) -> Result<ManagedOperator> {
        let Some((word, args)) = argv.split_first() else {
            return Err(Error::Lab("the variant's command is empty".into()));
        };
        let program = if matches!(word.as_str(), "eval" | "evalctl") {
            lab::eval_program()
        } else {
            PathBuf::from(word)
        };
        let artifacts = &place.dir;
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
        let broker = match run_as {
            Some(run_as) => {
                let broker = Broker::start(
                    &artifacts.join("lab.sock"),
                    &env.data_dir,
                    &env.lab,
                    run_as.uid,
                    run_as.gid,
                )?;
                command
                    .uid(run_as.uid)
                    .gid(run_as.gid)
                    .env("HOME", &place.work)
                    .env("USER", &run_as.user)
                    .env("LOGNAME", &run_as.user)
                    .env(BROKER_VARIABLE, broker.socket())
                    .current_dir(&place.work);
                Some(broker)
            }
            None => {
                command.env_remove(BROKER_VARIABLE);
                None
            }
        };
        // TiKV's PD members; never an empty list, which would read as one empty endpoint.
        if env.pd_endpoints.is_empty() {
            command.env_remove("EVAL_PD_ENDPOINTS");
        } else {
            command.env("EVAL_PD_ENDPOINTS", env.pd_endpoints.join(","));
        }
        let child = command
            .arg0(word)
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
        Ok(ManagedOperator {
            pid,
            child,
            _broker: broker,
        })
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

    /// A trial id from the log names one directory under the data dir, never a path.
    #[test]
    fn a_trial_id_never_names_a_path() {
        let dir = tempfile::tempdir().unwrap();
        for id in ["/etc", "../../etc", "a/b", "..", ".", ""] {
            let refused = OperatorPlace::make(dir.path(), id, None).unwrap_err();
            assert!(matches!(refused, Error::Refused(_)), "{id:?}: {refused}");
        }
        assert!(!dir.path().join("trials").exists());
        let place = OperatorPlace::make(dir.path(), "019abf1e-0000", None).unwrap();
        assert_eq!(place.dir, dir.path().join("trials/019abf1e-0000"));
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
            pd_endpoints: vec![],
            lab: "l".to_string(),
            data_dir: dir.path().to_path_buf(),
        };
        let argv = ["sh".to_string(), "-c".to_string(), script];
        let place = OperatorPlace::make(dir.path(), "t", None).unwrap();
        let operator = ManagedOperator::start(&argv, &env, &place, None).unwrap();
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
