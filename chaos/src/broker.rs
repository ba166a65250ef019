//! What `evalctl lab status` and `evalctl lab node` do, in one place, and the lab broker through
//! which an operator that does not run as root asks them of its trial's lab.
//!
//! A root worker runs each managed operator as an unprivileged user (see `operator.rs`). Stopping
//! or starting a node needs root (namespaces, signals to root's processes), so the worker serves
//! these two requests, and nothing else, on a Unix socket in the operator's own directory
//! (`EVAL_LAB_BROKER`), for that trial's lab only and for the operator's user only (its socket is
//! that user's, mode 0600, and the peer's uid is checked). `evalctl lab status|node` run without
//! root and with `EVAL_LAB_BROKER` set ask the broker instead of opening the lab.
//!
//! One request and one answer per connection, each one line of JSON.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::lab::{Lab, LabState};
use crate::subject::{Health, LabSubject, Subject};

/// The variable that names the broker's socket to an operator.
pub const BROKER_VARIABLE: &str = "EVAL_LAB_BROKER";

/// The longest request the broker reads.
const MAX_REQUEST_BYTES: u64 = 4096;

/// What `evalctl lab node` does to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeAction {
    Stop,
    Start,
    Pause,
    Resume,
}

/// What an operator may ask of its lab. `lab` is the name it gives (`--name`); the broker
/// answers only for its own lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub enum Request {
    Status {
        lab: Option<String>,
    },
    Node {
        lab: Option<String>,
        action: NodeAction,
        node: u32,
    },
}

/// One lab as `evalctl lab status --json` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabReport {
    pub lab: LabState,
    pub health: Health,
    pub nodes: Vec<NodeReport>,
}

/// One node of a [`LabReport`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeReport {
    pub node: u32,
    /// `n1` (etcd), `tikv1` or `pd1` (TiKV).
    #[serde(default)]
    pub name: String,
    /// `running`, `paused` or `down`.
    pub process: String,
    pub pid: Option<u32>,
    pub endpoint: String,
}

/// What a node action left.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeOutcome {
    pub lab: String,
    pub node: u32,
    pub process: String,
}

/// The broker's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Status(Vec<LabReport>),
    Node(NodeOutcome),
    Refused(String),
}

/// The status of `labs`, with each one's health.
pub async fn status(labs: Vec<Lab>) -> Result<Vec<LabReport>> {
    let mut reports = Vec::new();
    for lab in labs {
        let health = LabSubject::of(&lab.state)?.health(&lab).await;
        let nodes = lab
            .state
            .nodes
            .iter()
            .map(|node| NodeReport {
                node: node.number,
                name: node.name.clone(),
                process: node.process_status().to_string(),
                pid: node.pid,
                endpoint: node.client_url(),
            })
            .collect();
        reports.push(LabReport {
            lab: lab.state,
            health,
            nodes,
        });
    }
    Ok(reports)
}

/// Stops, starts, pauses or resumes node `number` of `lab`.
pub async fn node_action(mut lab: Lab, action: NodeAction, number: u32) -> Result<NodeOutcome> {
    let subject = LabSubject::of(&lab.state)?;
    match action {
        NodeAction::Stop => lab.stop_node(number, Duration::from_secs(5)).await?,
        NodeAction::Start => {
            subject.start_member(&mut lab, number).await?;
        }
        NodeAction::Pause => {
            lab.signal_node(number, Signal::SIGSTOP)?;
        }
        NodeAction::Resume => {
            lab.signal_node(number, Signal::SIGCONT)?;
        }
    }
    Ok(NodeOutcome {
        lab: lab.state.name.clone(),
        node: number,
        process: lab.node(number)?.process_status().to_string(),
    })
}

/// The broker of one trial: its socket, served until dropped (the socket file goes with it).
#[derive(Debug)]
pub struct Broker {
    socket: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Broker {
    /// Serves `lab` of `data_dir` on a socket at `socket`, to processes of `uid` (and root)
    /// alone: the socket is made `uid`'s, mode 0600.
    pub fn start(socket: &Path, data_dir: &Path, lab: &str, uid: u32, gid: u32) -> Result<Broker> {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::remove_file(socket);
        let listener = tokio::net::UnixListener::bind(socket).map_err(Error::io(socket))?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
            .map_err(Error::io(socket))?;
        std::os::unix::fs::lchown(socket, Some(uid), Some(gid)).map_err(Error::io(socket))?;
        let (data_dir, lab) = (data_dir.to_path_buf(), lab.to_string());
        // Requests run in a set owned by the serving task: when the broker goes (its trial's
        // operator stopped), a request still running goes with it.
        let task = tokio::spawn(async move {
            let mut requests = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { break };
                        let (data_dir, lab) = (data_dir.clone(), lab.clone());
                        requests.spawn(async move {
                            if let Err(error) = serve_one(stream, &data_dir, &lab, uid).await {
                                tracing::debug!(%error, lab, "lab broker: a request failed");
                            }
                        });
                    }
                    Some(_) = requests.join_next() => {}
                }
            }
        });
        Ok(Broker {
            socket: socket.to_path_buf(),
            task,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Answers one connection.
async fn serve_one(
    stream: tokio::net::UnixStream,
    data_dir: &Path,
    lab: &str,
    uid: u32,
) -> std::io::Result<()> {
    let peer = stream.peer_cred()?.uid();
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    tokio::io::AsyncReadExt::take(tokio::io::BufReader::new(reader), MAX_REQUEST_BYTES)
        .read_line(&mut line)
        .await?;
    let answer = if peer != uid && peer != 0 {
        Answer::Refused(format!("uid {peer} is not this trial's operator"))
    } else {
        match serde_json::from_str::<Request>(&line) {
            Ok(request) => answer(request, data_dir, lab).await,
            Err(error) => Answer::Refused(format!("not a request: {error}")),
        }
    };
    let mut text = serde_json::to_string(&answer).map_err(std::io::Error::other)?;
    text.push('\n');
    writer.write_all(text.as_bytes()).await?;
    writer.shutdown().await
}

/// What the broker of `lab` answers to `request`.
async fn answer(request: Request, data_dir: &Path, lab: &str) -> Answer {
    let named = match &request {
        Request::Status { lab } | Request::Node { lab, .. } => lab.as_deref(),
    };
    if named.is_some_and(|named| named != lab) {
        return Answer::Refused(format!(
            "this trial's lab is {lab}; an operator may not touch another lab"
        ));
    }
    let opened = match Lab::open(data_dir, lab) {
        Ok(opened) => opened,
        Err(error) => return Answer::Refused(error.to_string()),
    };
    let result = match request {
        Request::Status { .. } => status(vec![opened]).await.map(Answer::Status),
        Request::Node { action, node, .. } => {
            node_action(opened, action, node).await.map(Answer::Node)
        }
    };
    result.unwrap_or_else(|error| Answer::Refused(error.to_string()))
}

/// Asks the broker at `socket` (from a process that is not root).
pub fn ask(socket: &Path, request: &Request) -> std::result::Result<Answer, String> {
    let failed = |error: std::io::Error| format!("the lab broker at {}: {error}", socket.display());
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(failed)?;
    // A node's start waits for the member to come up.
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(failed)?;
    let mut text = serde_json::to_string(request).map_err(|error| error.to_string())?;
    text.push('\n');
    stream.write_all(text.as_bytes()).map_err(failed)?;
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .map_err(failed)?;
    serde_json::from_str(&line).map_err(|error| {
        format!(
            "the lab broker at {} answered {line:?}: {error}",
            socket.display()
        )
    })
}
