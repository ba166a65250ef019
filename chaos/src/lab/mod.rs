//! The lab runtime: a subject's nodes as real processes on this host. As root every node runs in
//! its own network namespace, joined by veth pairs to a bridge in a namespace the lab creates,
//! with its data dir on its own size-limited tmpfs; otherwise the nodes share loopback on ports
//! of their own. Every node's client and peer ports are served by a delay proxy (`evalctl lab
//! proxy`) in front of the real process, which is how `latency` works without `sch_netem`.
//!
//! A lab's state is a JSON file, `<data-dir>/labs/<name>/lab.json`, so that `evalctl lab …` in
//! another process, or a worker after a crash, can find and clean it. Labs claim an index under
//! `/run/eval-labs/` (root) that fixes their namespace names, addresses and ports, so several labs run
//! side by side without sharing any.

pub mod claim;
mod network;
mod process;
pub mod runtime;
pub mod sys;
mod trust;

use network::delete_netns;
pub use network::host_ip;
pub use process::terminate;
use process::{spawn_detached, wait_listening};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use schemas::campaign::SubjectKind;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Size of each node's data filesystem.
pub const NODE_FS_BYTES: u64 = 256 * 1024 * 1024;
/// Size of each node's data filesystem in a TiKV lab: a store's RocksDB and Raft Engine need
/// more room than an etcd member (tmpfs takes memory only as it is used).
pub const TIKV_NODE_FS_BYTES: u64 = 1024 * 1024 * 1024;

/// How the lab's nodes are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// A network namespace and a tmpfs per node (needs root).
    Namespaces,
    /// Loopback addresses and plain directories: no network or disk faults.
    Loopback,
}

impl Isolation {
    /// Namespaces when this process is root.
    pub fn available() -> Isolation {
        if sys::is_root() {
            Isolation::Namespaces
        } else {
            Isolation::Loopback
        }
    }

    /// Faults this isolation cannot inject, with the reason.
    pub fn unsupported_faults(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Isolation::Namespaces => &[],
            Isolation::Loopback => &[
                (
                    "network_partition",
                    "needs root: nftables rules in per-node network namespaces",
                ),
                (
                    "packet_loss",
                    "needs root: nftables rules in per-node network namespaces",
                ),
                (
                    "disk_pressure",
                    "needs root: a size-limited filesystem per node",
                ),
            ],
        }
    }
}

/// One node of a lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// From 1.
    pub number: u32,
    pub name: String,
    /// The node's network namespace, when isolated.
    pub netns: Option<String>,
    /// Where clients and peers reach the node (through its proxy).
    pub client_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    /// Where the node's process itself listens (inside its namespace).
    pub internal_client_addr: SocketAddr,
    pub internal_peer_addr: SocketAddr,
    pub dir: PathBuf,
    /// The data dir: a tmpfs of its own when isolated.
    pub data_dir: PathBuf,
    pub mounted: bool,
    /// The node's process, when started.
    pub pid: Option<u32>,
    /// When that process started (`/proc/PID/stat`), so that a recycled pid is never taken for
    /// it. Absent in labs made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_started: Option<u64>,
    pub proxy_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_started: Option<u64>,
    /// The delay proxy's control file; present while a latency fault is on.
    pub delay_control: PathBuf,
}

impl NodeState {
    pub fn client_url(&self) -> String {
        self.endpoints().client_url()
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// Whether the node's process runs (and is not a zombie).
    pub fn running(&self) -> bool {
        self.live_pid().is_some()
    }

    /// The node's process, when it runs and is the one the lab started.
    pub fn live_pid(&self) -> Option<u32> {
        self.pid
            .filter(|pid| trust::started_by_lab(*pid, self.pid_started, &self.data_dir))
    }

    /// The node's delay proxy, when it runs and is the one the lab started.
    pub fn live_proxy_pid(&self) -> Option<u32> {
        self.proxy_pid
            .filter(|pid| trust::started_by_lab(*pid, self.proxy_started, &self.delay_control))
    }

    /// `running`, `stopped` (paused), `down`.
    pub fn process_status(&self) -> &'static str {
        match self.live_pid().and_then(sys::process_state) {
            Some('T' | 't') => "paused",
            Some('Z' | 'X') | None => "down",
            Some(_) => "running",
        }
    }
}

/// Everything about a lab that another process needs to use or clean it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabState {
    pub name: String,
    pub index: u32,
    pub subject: SubjectKind,
    pub isolation: Isolation,
    pub dir: PathBuf,
    /// The namespace holding the bridge, when isolated.
    pub bridge_netns: Option<String>,
    /// The host's veth into the bridge, when isolated.
    pub host_veth: Option<String>,
    /// Changes on every reset, so that a reset cluster never mixes with an old one.
    pub cluster_token: String,
    pub nodes: Vec<NodeState>,
    /// TiKV: how many of the nodes are PD members (the last ones; the stores come first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pd_members: u32,
    /// TiKV: the `pd-server` and `tikv-server` the lab's nodes run, found when the lab was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tikv_binaries: Option<crate::tikv::binaries::TikvBinaries>,
}

fn is_zero(number: &u32) -> bool {
    *number == 0
}

/// What a lab node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// An etcd member.
    Member,
    /// A TiKV store.
    Store,
    /// A PD member.
    Pd,
}

impl LabState {
    /// The TiKV stores (or etcd members) of the lab: the nodes before its PD members.
    pub fn data_nodes(&self) -> u32 {
        self.nodes.len() as u32 - self.pd_members
    }

    /// What node `number` runs.
    pub fn role(&self, number: u32) -> NodeRole {
        role_of(
            self.subject,
            self.nodes.len() as u32,
            self.pd_members,
            number,
        )
    }
}

fn role_of(subject: SubjectKind, nodes: u32, pd_members: u32, number: u32) -> NodeRole {
    match subject {
        SubjectKind::Etcd => NodeRole::Member,
        SubjectKind::Tikv if number > nodes - pd_members.min(nodes) => NodeRole::Pd,
        SubjectKind::Tikv => NodeRole::Store,
    }
}

/// Node `number`'s name: `n1` in an etcd lab, `tikv1` or `pd1` in a TiKV lab.
fn node_name(subject: SubjectKind, nodes: u32, pd_members: u32, number: u32) -> String {
    let stores = nodes - pd_members.min(nodes);
    match role_of(subject, nodes, pd_members, number) {
        NodeRole::Member => format!("n{number}"),
        NodeRole::Store => format!("tikv{number}"),
        NodeRole::Pd => format!("pd{}", number - stores),
    }
}

/// Options of a new lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub data_dir: PathBuf,
    /// Default: `lab<index>`.
    pub name: Option<String>,
    pub subject: SubjectKind,
    /// Every node: for TiKV, the stores and then the PD members.
    pub nodes: u32,
    pub isolation: Isolation,
    /// TiKV: how many of `nodes` are PD members.
    pub pd_members: u32,
    /// TiKV: the programs its nodes run.
    pub tikv_binaries: Option<crate::tikv::binaries::TikvBinaries>,
    /// Whether the lab lives only as long as this process (a worker's labs): the registry
    /// records the process, the lab is stale once it is gone, and the processes this one starts
    /// in the lab die with it. `false` for a lab that outlives its maker (`lab up`).
    pub held: bool,
}

/// A lab on this host.
#[derive(Debug, Clone)]
pub struct Lab {
    pub state: LabState,
}

fn labs_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("labs")
}

static EVAL_BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Names the `eval` binary for a process that is not it (a test).
pub fn set_eval_binary(path: impl Into<PathBuf>) {
    let _ = EVAL_BINARY.set(path.into());
}

/// The `eval` binary, which serves `evalctl lab proxy`: `EVAL_BIN` when set, else the one named by
/// [`set_eval_binary`], else this process's own.
pub fn eval_binary() -> PathBuf {
    std::env::var_os("EVAL_BIN")
        .map(PathBuf::from)
        .or_else(|| EVAL_BINARY.get().cloned())
        .or_else(|| std::env::current_exe().ok())
        .unwrap_or_else(|| PathBuf::from("eval"))
}

/// [`eval_binary`] as this process can start it: `/proc/self/exe` when it is this very binary,
/// which runs even for a user who cannot enter its directory (an operator started as `nobody`
/// by a root worker whose build is under /root).
pub fn eval_program() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let binary = eval_binary();
    let own = std::env::current_exe().ok();
    let same_path = own.as_deref() == Some(binary.as_path());
    let same_file = match (
        std::fs::metadata(&binary),
        std::fs::metadata("/proc/self/exe"),
    ) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    };
    if same_path || same_file {
        PathBuf::from("/proc/self/exe")
    } else {
        binary
    }
}

impl Lab {
    /// Creates the lab's namespaces, filesystems and proxies; its nodes are not started yet.
    pub async fn create(options: LabOptions) -> Result<Lab> {
        if options.nodes == 0 || options.nodes > 9 {
            return Err(Error::Lab(format!(
                "a lab has 1 to 9 nodes, not {}",
                options.nodes
            )));
        }
        if options.isolation == Isolation::Namespaces && !sys::is_root() {
            return Err(Error::Unsupported(
                "network namespaces need root; run as root or use loopback isolation".into(),
            ));
        }
        let (index, claim) = claim::claim_index()?;
        let name = options
            .name
            .clone()
            .unwrap_or_else(|| format!("lab{index}"));
        if let Err(error) = trust::check_name(&name) {
            let _ = std::fs::remove_dir_all(&claim);
            return Err(error);
        }
        let dir = labs_dir(&options.data_dir).join(&name);
        if dir.join("lab.json").exists() {
            let _ = std::fs::remove_dir_all(&claim);
            return Err(Error::Lab(format!(
                "lab {name} exists already ({}); `{program} lab down --name {name}` first",
                dir.display(),
                program = schemas::program::name()
            )));
        }
        // Not writable by the group or others, whatever the umask: a lab is opened again only
        // from files nobody else can change.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(Error::io(&dir))?;
        let dir = dir.canonicalize().map_err(Error::io(&dir))?;
        std::fs::write(claim.join("owner"), dir.display().to_string())
            .map_err(Error::io(&claim))?;
        if options.held {
            claim::hold(&claim)?;
        }

        let isolated = options.isolation == Isolation::Namespaces;
        let nodes = (1..=options.nodes)
            .map(|number| {
                let name = node_name(options.subject, options.nodes, options.pd_members, number);
                node_layout(index, number, &dir, isolated, name)
            })
            .collect();
        let mut lab = Lab {
            state: LabState {
                name,
                index,
                subject: options.subject,
                isolation: options.isolation,
                dir,
                bridge_netns: isolated.then(|| format!("eval-l{index}-br")),
                host_veth: isolated.then(|| format!("el{index}h")),
                cluster_token: format!("eval-l{index}-0"),
                nodes,
                pd_members: options.pd_members,
                tikv_binaries: options.tikv_binaries.clone(),
            },
        };
        lab.save()?;
        if let Err(error) = lab.build().await {
            let _ = lab.clone().destroy().await;
            return Err(error);
        }
        Ok(lab)
    }

    async fn build(&mut self) -> Result<()> {
        for node in &self.state.nodes {
            std::fs::create_dir_all(&node.data_dir).map_err(Error::io(&node.data_dir))?;
        }
        if self.state.isolation == Isolation::Namespaces {
            self.build_network().await?;
            let size = match self.state.subject {
                SubjectKind::Etcd => NODE_FS_BYTES,
                SubjectKind::Tikv => TIKV_NODE_FS_BYTES,
            };
            for position in 0..self.state.nodes.len() {
                mount_tmpfs(&self.state.nodes[position].data_dir, size)?;
                self.state.nodes[position].mounted = true;
                self.save()?;
            }
        }
        for position in 0..self.state.nodes.len() {
            self.start_proxy(position).await?;
        }
        self.save()
    }

    /// Opens the lab `name` of `data_dir`, refusing one whose files are not this user's alone or
    /// whose state names anything the lab would not have made (see `trust`).
    pub fn open(data_dir: &Path, name: &str) -> Result<Lab> {
        trust::check_name(name)?;
        let labs = labs_dir(data_dir);
        let dir = labs.join(name);
        if !dir.join("lab.json").exists() {
            return Err(Error::Lab(format!(
                "no lab named {name} in {} (see `{program} lab status`)",
                labs.display(),
                program = schemas::program::name()
            )));
        }
        let dir = trust::canonical_lab_dir(&labs, &dir)?;
        Ok(Lab {
            state: trust::read_state(&dir)?,
        })
    }

    /// Opens the lab whose directory is `dir`, as a cleanup record names it: `None` when it is
    /// gone; refused unless it is a lab directory of `data_dir`.
    pub fn open_dir(data_dir: &Path, dir: &Path) -> Result<Option<Lab>> {
        let name = trust::lab_name_in(&labs_dir(data_dir), dir)?;
        if !dir.join("lab.json").exists() {
            return Ok(None);
        }
        Lab::open(data_dir, &name).map(Some)
    }

    /// Every lab of `data_dir`.
    pub fn list(data_dir: &Path) -> Result<Vec<Lab>> {
        let dir = labs_dir(data_dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::Io { path: dir, source }),
        };
        let mut labs = Vec::new();
        for entry in entries.flatten() {
            if entry.path().join("lab.json").exists()
                && let Some(name) = entry.file_name().to_str()
            {
                labs.push(Lab::open(data_dir, name)?);
            }
        }
        labs.sort_by(|a, b| a.state.name.cmp(&b.state.name));
        Ok(labs)
    }

    /// Reads the lab's state again from `lab.json`: another process (an operator running `eval
    /// lab node start`) may have restarted a node and recorded its new pid there.
    pub fn reload(&mut self) -> Result<()> {
        self.state = trust::read_state(&self.state.dir)?;
        Ok(())
    }

    pub fn save(&self) -> Result<()> {
        let file = self.state.dir.join("lab.json");
        let temporary = self.state.dir.join("lab.json.tmp");
        let text = serde_json::to_string_pretty(&self.state).expect("lab state serializes");
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&temporary)
            .and_then(|mut file| std::io::Write::write_all(&mut file, text.as_bytes()))
            .map_err(Error::io(&temporary))?;
        // An existing file keeps its mode: make it the lab's own again.
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o644))
            .map_err(Error::io(&temporary))?;
        std::fs::rename(&temporary, &file).map_err(Error::io(&file))?;
        claim::record_state(self.state.index, &self.state.dir, &text)
    }

    pub fn node(&self, number: u32) -> Result<&NodeState> {
        self.state
            .nodes
            .iter()
            .find(|node| node.number == number)
            .ok_or_else(|| {
                Error::Lab(format!(
                    "lab {} has nodes 1 to {}, not {number}",
                    self.state.name,
                    self.state.nodes.len()
                ))
            })
    }

    fn position(&self, number: u32) -> Result<usize> {
        self.node(number)?;
        Ok(number as usize - 1)
    }

    /// Starts node `number` with `argv` (inside its namespace when isolated), logging to its
    /// log file, and records its pid.
    pub async fn start_process(&mut self, number: u32, argv: &[String]) -> Result<u32> {
        let position = self.position(number)?;
        let node = &self.state.nodes[position];
        if node.running() {
            return Err(Error::Lab(format!(
                "node {number} of lab {} runs already (pid {})",
                self.state.name,
                node.pid.unwrap_or_default()
            )));
        }
        let pid = spawn_detached(
            node.netns.as_deref(),
            argv,
            &node.log_file(),
            claim::held_here(self.state.index),
        )?;
        self.state.nodes[position].pid = Some(pid);
        self.state.nodes[position].pid_started = sys::start_time(pid);
        self.save()?;
        Ok(pid)
    }

    async fn start_proxy(&mut self, position: usize) -> Result<()> {
        let node = self.state.nodes[position].clone();
        let binary = eval_binary();
        let argv = vec![
            binary.display().to_string(),
            "lab".to_string(),
            "proxy".to_string(),
            "--control".to_string(),
            node.delay_control.display().to_string(),
            "--route".to_string(),
            format!("{}={}", node.client_addr, node.internal_client_addr),
            "--route".to_string(),
            format!("{}={}", node.peer_addr, node.internal_peer_addr),
        ];
        let log = node.dir.join("proxy.log");
        let pid = spawn_detached(
            node.netns.as_deref(),
            &argv,
            &log,
            claim::held_here(self.state.index),
        )?;
        self.state.nodes[position].proxy_pid = Some(pid);
        self.state.nodes[position].proxy_started = sys::start_time(pid);
        self.save()?;
        wait_listening(node.client_addr, pid, &log).await
    }

    /// Whether everything the lab made is still there: namespaces, filesystems, proxies. A lab
    /// whose host rebooted, or whose proxies were killed, is not.
    pub fn is_intact(&self) -> bool {
        let namespaces = self
            .state
            .nodes
            .iter()
            .filter_map(|node| node.netns.as_deref())
            .chain(self.state.bridge_netns.as_deref());
        let namespaces_ok = namespaces
            .into_iter()
            .all(|netns| Path::new("/run/netns").join(netns).exists());
        let nodes_ok = self.state.nodes.iter().all(|node| {
            node.live_proxy_pid().is_some() && (!node.mounted || is_mount_point(&node.data_dir))
        });
        namespaces_ok && nodes_ok
    }

    /// Sends `signal` to node `number`'s process.
    pub fn signal_node(&self, number: u32, signal: Signal) -> Result<u32> {
        let node = self.node(number)?;
        let pid = node.live_pid().ok_or_else(|| {
            Error::Lab(format!(
                "node {number} of lab {} is not running",
                self.state.name
            ))
        })?;
        sys::signal(pid, signal)?;
        Ok(pid)
    }

    /// Stops node `number`: SIGTERM (after SIGCONT, should it be paused), SIGKILL after `grace`.
    pub async fn stop_node(&mut self, number: u32, grace: Duration) -> Result<()> {
        let position = self.position(number)?;
        if let Some(pid) = self.state.nodes[position].live_pid() {
            terminate(pid, grace).await;
        }
        self.state.nodes[position].pid = None;
        self.state.nodes[position].pid_started = None;
        self.save()
    }

    /// Stops every node and wipes its data, keeping namespaces, filesystems and proxies.
    pub async fn wipe(&mut self) -> Result<()> {
        self.reload()?;
        for number in 1..=self.state.nodes.len() as u32 {
            self.stop_node(number, Duration::from_secs(2)).await?;
        }
        for node in &self.state.nodes {
            let _ = crate::proxy::clear_control(&node.delay_control);
            remove_dir_contents(&node.data_dir)?;
            if let Some(netns) = &node.netns {
                crate::nft::delete_table(netns).await?;
            }
        }
        let generation = self
            .state
            .cluster_token
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        self.state.cluster_token = format!("eval-l{}-{}", self.state.index, generation + 1);
        self.save()
    }

    /// Removes everything the lab made: processes, namespaces (and the nftables rules in them),
    /// filesystems, its directory and its index claim.
    pub async fn destroy(mut self) -> Result<()> {
        // The pids on disk are the latest, whoever started the nodes.
        let _ = self.reload();
        let mut problems = Vec::new();
        for node in &self.state.nodes {
            // Only processes the lab started: a pid recorded here and since recycled is left
            // alone.
            for pid in [node.live_pid(), node.live_proxy_pid()]
                .into_iter()
                .flatten()
            {
                terminate(pid, Duration::from_secs(2)).await;
            }
        }
        for node in &self.state.nodes {
            if is_mount_point(&node.data_dir)
                && let Err(error) =
                    nix::mount::umount2(&node.data_dir, nix::mount::MntFlags::MNT_DETACH)
            {
                problems.push(format!("umount {}: {error}", node.data_dir.display()));
            }
            if let Some(netns) = &node.netns {
                delete_netns(netns, &mut problems).await;
            }
        }
        if let Some(bridge) = &self.state.bridge_netns {
            delete_netns(bridge, &mut problems).await;
        }
        if let Some(host_veth) = &self.state.host_veth
            && std::path::Path::new(&format!("/sys/class/net/{host_veth}")).exists()
            && let Err(error) = sys::run("ip", ["link", "del", host_veth], None).await
        {
            problems.push(error.to_string());
        }
        // A build killed between making a node's veth pair and moving it into the namespaces
        // leaves the pair on the host, where it would stop the next lab of this index.
        if self.state.isolation == Isolation::Namespaces {
            for veth in network::node_veths(&self.state) {
                if let Err(error) = network::delete_host_link(&veth).await {
                    problems.push(error.to_string());
                }
            }
        }
        if problems.is_empty() {
            // The claim first, while the state file still marks it as in use, and only if it
            // is still this lab's.
            claim::release(self.state.index, &self.state.dir);
            match std::fs::remove_dir_all(&self.state.dir) {
                // A stale lab's directory may have gone with its data dir.
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    problems.push(format!("remove {}: {error}", self.state.dir.display()));
                }
                _ => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Lab(format!(
                "lab {} not fully removed: {}",
                self.state.name,
                problems.join("; ")
            )))
        }
    }

    /// Records the managed operator `pid` (the leader of its own process group) as this lab's,
    /// so that the lab's removal as stale stops it too.
    pub fn record_operator(&self, pid: u32) -> Result<()> {
        claim::record_operator(self.state.index, &self.state.dir, pid)
    }

    /// Removes every stale lab of this host's registry, whichever data dir it was made in: a lab
    /// whose directory is gone, or whose worker died (see [`claim::StaleLab`]). Each comes back
    /// with why it was stale and how its removal went.
    pub async fn remove_stale() -> Result<Vec<(claim::StaleLab, Result<()>)>> {
        // One sweep at a time in this process (a worker's trials each sweep before they start).
        static SWEEPING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _sweeping = SWEEPING.lock().await;
        let mut removed = Vec::new();
        for stale in claim::stale_labs()? {
            if let Some(pid) = claim::live_operator(stale.state.index) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    Signal::SIGKILL,
                );
            }
            let lab = Lab {
                state: stale.state.clone(),
            };
            let result = lab.destroy().await;
            removed.push((stale, result));
        }
        Ok(removed)
    }

    /// The data filesystem's size and use of node `number`, in bytes.
    pub fn disk_usage(&self, number: u32) -> Result<(u64, u64)> {
        let node = self.node(number)?;
        let stat = nix::sys::statvfs::statvfs(&node.data_dir)
            .map_err(|errno| Error::Lab(format!("statvfs {}: {errno}", node.data_dir.display())))?;
        let block = stat.fragment_size() as u64;
        let total = stat.blocks() as u64 * block;
        let free = stat.blocks_available() as u64 * block;
        Ok((total, total.saturating_sub(free)))
    }
}

fn node_layout(index: u32, number: u32, lab_dir: &Path, isolated: bool, name: String) -> NodeState {
    let dir = lab_dir.join(format!("n{number}"));
    let (public_ip, internal_ip, ports) = if isolated {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 250, index as u8, number as u8));
        (
            ip,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            [2379, 2380, 2379, 2380],
        )
    } else {
        let base = 20000 + index as u16 * 40 + number as u16 * 4;
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        (localhost, localhost, [base, base + 1, base + 2, base + 3])
    };
    NodeState {
        number,
        name,
        netns: isolated.then(|| format!("eval-l{index}-n{number}")),
        client_addr: SocketAddr::new(public_ip, ports[0]),
        peer_addr: SocketAddr::new(public_ip, ports[1]),
        internal_client_addr: SocketAddr::new(internal_ip, ports[2]),
        internal_peer_addr: SocketAddr::new(internal_ip, ports[3]),
        data_dir: dir.join("data"),
        delay_control: dir.join("delay.json"),
        dir,
        mounted: false,
        pid: None,
        pid_started: None,
        proxy_pid: None,
        proxy_started: None,
    }
}

fn mount_tmpfs(dir: &Path, size: u64) -> Result<()> {
    let options = format!("size={size},mode=0700");
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|errno| Error::Lab(format!("mount tmpfs on {}: {errno}", dir.display())))
}

fn is_mount_point(dir: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let dir = dir.display().to_string();
    mounts
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some(dir.as_str()))
}

fn remove_dir_contents(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(Error::io(&path))?;
    }
    Ok(())
}
