//! A local `nats-server -js` that this process starts, owns, and stops by its pid: the embedded
//! default of `evalctl up`, and the server every test starts for itself.

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

/// A running `nats-server -js`, bound to 127.0.0.1.
#[derive(Debug)]
pub struct LocalNats {
    child: Option<Child>,
    url: String,
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
    /// client presents the first credential.
    pub async fn start_secured(
        dir: &Path,
        port: Option<u16>,
        credentials: &[LocalCredential],
    ) -> Result<LocalNats, LocalServerError> {
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
        let mut command = Command::new(&program);
        let auth = match credentials.first() {
            Some(first) => {
                let config = dir.join("auth.conf");
                let passwords: Vec<(super::Role, &str)> = credentials
                    .iter()
                    .map(|credential| (credential.role, credential.password.as_str()))
                    .collect();
                write_private(&config, &super::roles::authorization(&passwords)).map_err(
                    |source| LocalServerError::Io {
                        path: config.clone(),
                        source,
                    },
                )?;
                command.arg("-c").arg(&config);
                first.auth()
            }
            None => NatsAuth::default(),
        };
        let child = command
            .arg("-js")
            .args(["-a", "127.0.0.1", "-p", &port_arg])
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
        let mut server = LocalNats {
            child: Some(child),
            url: String::new(),
            auth,
            store_dir,
            log_file,
        };
        server
            .wait_ready(&ports_file, Duration::from_secs(20))
            .await?;
        Ok(server)
    }

    async fn wait_ready(
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
                && let Some(url) = read_client_url(ports_file)
            {
                self.url = url;
            }
            if !self.url.is_empty() && jetstream_answers(&self.url, &self.auth).await {
                let _ = std::fs::remove_file(ports_file);
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

    fn kill_now(&mut self) {
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

fn read_client_url(ports_file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(ports_file).ok()?;
    let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
    ports["nats"]
        .as_array()
        .or_else(|| ports["client"].as_array())?
        .first()?
        .as_str()
        .map(str::to_string)
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
