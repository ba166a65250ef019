//! A local `nats-server -js` that this process starts, owns, and stops by its pid: the embedded
//! default of `evalctl up`, and the server every test starts for itself. It syncs acknowledged
//! events to disk where its version allows (`durability.rs`), and serves `/varz` on a free port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::auth::{LocalCredential, NatsAuth, write_private};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The program started; found on `PATH` unless `EVAL_NATS_SERVER` names another.
pub fn nats_server_program() -> PathBuf {
    std::env::var_os("EVAL_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

#[derive(Debug, thiserror::Error)]
pub enum LocalServerError {
    #[error(
        "cannot start {program}: {source}; install it with `scripts/setup` (Debian package nats-server)"
    )]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("nats-server exited before it was ready ({status}); its log is {log}")]
    Exited { status: String, log: PathBuf },
    #[error("nats-server did not become ready within {seconds}s; its log is {log}")]
    NotReady { seconds: u64, log: PathBuf },
}

/// The `eval` binary, which serves `lab child` (see [`die_with_parent_prefix`]); set by the
/// program at start, unset in a test process.
static CHILD_WRAPPER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Names the binary that serves `lab child` for the servers this process starts.
pub fn set_child_wrapper(program: impl Into<PathBuf>) {
    let _ = CHILD_WRAPPER.set(program.into());
}

/// What makes a child die with the process that started it, however that one dies: a prefix that
/// sets the parent-death signal (SIGKILL) and execs the rest of the command line (the same pid).
/// This workspace writes no `unsafe`, which setting it between fork and exec would take.
///
/// With `wrapper` (the `eval` binary) it is `eval lab child --parent <this pid> --`, which sets the
/// signal and then checks that its parent is still this process: a parent killed in between
/// would otherwise leave the child running for good. Without it, util-linux's `setpriv`, which
/// has no such check. `None` where neither is at hand: the child then outlives a killed parent.
pub fn die_with_parent_prefix(wrapper: Option<&Path>) -> Option<Vec<String>> {
    const SETPRIV: &str = "/usr/bin/setpriv";
    if let Some(wrapper) = wrapper.or(CHILD_WRAPPER.get().map(PathBuf::as_path)) {
        return Some(vec![
            wrapper.display().to_string(),
            "lab".into(),
            "child".into(),
            "--parent".into(),
            std::process::id().to_string(),
            "--".into(),
        ]);
    }
    Path::new(SETPRIV).exists().then(|| {
        [SETPRIV, "--pdeathsig", "KILL", "--"]
            .map(String::from)
            .to_vec()
    })
}

/// Whether `program` names a file that exists, itself or on `PATH` (checked before it is run
/// through the prefix of [`die_with_parent_prefix`], which would only exit 127).
fn runnable(program: &Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The version `program --version` prints (`nats-server: v2.15.1`).
pub fn program_version(program: &Path) -> Option<(u32, u32, u32)> {
    let output = Command::new(program).arg("--version").output().ok()?;
    super::durability::parse_version(&String::from_utf8_lossy(&output.stdout))
}

/// A running `nats-server -js`, bound to 127.0.0.1.
#[derive(Debug)]
pub struct LocalNats {
    child: Option<Child>,
    url: String,
    /// Its monitoring endpoint (`http://127.0.0.1:PORT`, for `/varz`).
    monitor_url: Option<String>,
    /// Whether it was configured with `sync_interval: always` (its version allows it).
    syncs_always: bool,
    /// Its version, as `--version` printed it.
    version: Option<String>,
    /// What a client presents: nothing, or the user and password the server was started with.
    auth: NatsAuth,
    store_dir: PathBuf,
    log_file: PathBuf,
}

impl LocalNats {
    /// Starts `nats-server -js` on 127.0.0.1 with its store (and log) under `dir`, on `port` or,
    /// when `None`, on a free port, and waits until JetStream answers.
    pub async fn start(dir: &Path, port: Option<u16>) -> Result<LocalNats, LocalServerError> {
        LocalNats::start_secured(dir, port, &[]).await
    }

    /// [`LocalNats::start`], letting in only the harness's users with `credentials` when there
    /// are any, each to what its role may do ([`super::roles::authorization`]; the
    /// configuration, which holds the passwords, is written mode 0600 under `dir`). Its own
    /// client presents the first credential. Where the server's version allows it (2.10 and
    /// later), its JetStream syncs every acknowledged write to disk (`sync_interval: always`).
    pub async fn start_secured(
        dir: &Path,
        port: Option<u16>,
        credentials: &[LocalCredential],
    ) -> Result<LocalNats, LocalServerError> {
        LocalNats::start_with(dir, port, credentials, true).await
    }

    /// [`LocalNats::start_secured`], syncing every acknowledged write only when `sync` asks
    /// (and the server allows it): `false` leaves nats-server's default, a sync every 2 minutes,
    /// which `evalctl bench publish` measures against.
    pub async fn start_with(
        dir: &Path,
        port: Option<u16>,
        credentials: &[LocalCredential],
        sync: bool,
    ) -> Result<LocalNats, LocalServerError> {
        let (mut server, ports_file) = LocalNats::spawn(dir, port, credentials, sync, "")?;
        server
            .wait_ready(&ports_file, Duration::from_secs(20))
            .await?;
        Ok(server)
    }

    /// Starts the server without waiting for it: [`LocalNats::start_with`], with `extra` added
    /// to its configuration (a cluster member's name and routes). Returns the file where the
    /// server writes its ports, for [`LocalNats::wait_ready`].
    pub(super) fn spawn(
        dir: &Path,
        port: Option<u16>,
        credentials: &[LocalCredential],
        sync: bool,
        extra: &str,
    ) -> Result<(LocalNats, PathBuf), LocalServerError> {
        let store_dir = dir.join("jetstream");
        let ports_dir = dir.join("ports");
        for path in [&store_dir, &ports_dir] {
            std::fs::create_dir_all(path).map_err(|source| LocalServerError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let log_file = dir.join("nats-server.log");
        let program = nats_server_program();
        let port_arg = port.map_or_else(|| "-1".to_string(), |port| port.to_string());
        if !runnable(&program) {
            return Err(LocalServerError::Spawn {
                program: program.display().to_string(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        // The server dies with this process: a killed `evalctl run` leaves no server behind, and
        // a killed `evalctl up` finds its store again when restarted.
        let mut command = match die_with_parent_prefix(None).as_deref() {
            Some([wrapper, rest @ ..]) => {
                let mut command = Command::new(wrapper);
                command.args(rest).arg(&program);
                command
            }
            _ => Command::new(&program),
        };
        let version = program_version(&program);
        let syncs_always =
            sync && version.is_some_and(|version| version >= super::durability::SYNC_SINCE);
        let mut configuration = extra.to_string();
        let auth = match credentials.first() {
            Some(first) => {
                let passwords: Vec<(super::Role, &str)> = credentials
                    .iter()
                    .map(|credential| (credential.role, credential.password.as_str()))
                    .collect();
                configuration.push_str(&super::roles::authorization(&passwords));
                first.auth()
            }
            None => NatsAuth::default(),
        };
        if syncs_always {
            configuration.push_str("\njetstream {\n  sync_interval: always\n}\n");
        }
        if !configuration.is_empty() {
            // Mode 0600: it may hold the users' passwords.
            let config = dir.join("server.conf");
            write_private(&config, &configuration).map_err(|source| LocalServerError::Io {
                path: config.clone(),
                source,
            })?;
            command.arg("-c").arg(&config);
        }
        let child = command
            .arg("-js")
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-m", "-1"])
            .arg("-sd")
            .arg(&store_dir)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("-l")
            .arg(&log_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| LocalServerError::Spawn {
                program: program.display().to_string(),
                source,
            })?;
        let ports_file = ports_dir.join(format!(
            "{}_{}.ports",
            program
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| "nats-server".to_string()),
            child.id()
        ));
        let server = LocalNats {
            child: Some(child),
            url: String::new(),
            monitor_url: None,
            syncs_always,
            version: version.map(|(major, minor, patch)| format!("{major}.{minor}.{patch}")),
            auth,
            store_dir,
            log_file,
        };
        Ok((server, ports_file))
    }

    pub(super) async fn wait_ready(
        &mut self,
        ports_file: &Path,
        limit: Duration,
    ) -> Result<(), LocalServerError> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(LocalServerError::Exited {
                    status: status.to_string(),
                    log: self.log_file.clone(),
                });
            }
            if self.url.is_empty()
                && let Some((url, monitor)) = read_urls(ports_file)
            {
                self.url = url;
                self.monitor_url = monitor;
            }
            if !self.url.is_empty() && jetstream_answers(&self.url, &self.auth).await {
                let _ = std::fs::remove_file(ports_file);
                if let Some(monitor) = &self.monitor_url {
                    super::durability::register_monitor(&self.url, monitor);
                }
                return Ok(());
            }
            if started.elapsed() > limit {
                self.kill_now();
                return Err(LocalServerError::NotReady {
                    seconds: limit.as_secs(),
                    log: self.log_file.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its monitoring endpoint, for `/varz`.
    pub fn monitor_url(&self) -> Option<&str> {
        self.monitor_url.as_deref()
    }

    /// Whether it was started with `sync_interval: always`.
    pub fn syncs_always(&self) -> bool {
        self.syncs_always
    }

    /// Its version (`2.15.1`), when `--version` said.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// What a client presents to this server.
    pub fn auth(&self) -> &NatsAuth {
        &self.auth
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after `grace`) and waits for it.
    pub async fn stop(mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let started = Instant::now();
        while started.elapsed() < grace {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server at once (SIGKILL), as a crash would, and waits for it.
    pub fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// The client URL, and the monitoring URL when there is one, from the server's ports file.
fn read_urls(ports_file: &Path) -> Option<(String, Option<String>)> {
    let text = std::fs::read_to_string(ports_file).ok()?;
    let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
    let first = |key: &str| ports[key].as_array()?.first()?.as_str().map(str::to_string);
    let client = first("nats").or_else(|| first("client"))?;
    Some((client, first("monitoring")))
}

async fn jetstream_answers(url: &str, auth: &NatsAuth) -> bool {
    let Ok(options) = auth.options().await else {
        return false;
    };
    let Ok(client) = options
        .connection_timeout(Duration::from_millis(500))
        .connect(url)
        .await
    else {
        return false;
    };
    // A raw request: the typed account info of some client versions does not parse the answer
    // of older servers, and readiness needs only an answer without an error.
    let Ok(Ok(answer)) = tokio::time::timeout(
        Duration::from_secs(1),
        client.request("$JS.API.INFO", Bytes::new()),
    )
    .await
    else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&answer.payload)
        .is_ok_and(|info| info.get("error").is_none())
}
