//! The `Runtime` trait: what controls a subject's nodes, whatever the subject is. It starts,
//! stops, kills and pauses a node's process, puts network rules between nodes and switches the
//! delay proxy, fills a node's disk, names a node's endpoints, and resets to fresh data. The lab
//! (`lab/`) is today's runtime; a subject (`subject.rs`) talks to its database through the
//! endpoints a runtime gives it, and the generic faults (`faults.rs`) are written against this
//! trait alone.
//!
//! The handles of a fault (pids, namespaces and chains, control and fill files) go into its
//! [`CleanupRecord`](schemas::cleanup::CleanupRecord), so a cleanup works from the record and a
//! runtime opened again from it, in any process.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use schemas::cleanup::DelaySettings;

use crate::error::Result;
use crate::nft::DropChain;

/// Where a node is reached and keeps its data: what a subject needs to run a member there.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEndpoints {
    /// From 1.
    pub number: u32,
    pub name: String,
    /// Where clients and peers reach the node (through its delay proxy).
    pub client_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    /// Where the node's own process listens.
    pub listen_client_addr: SocketAddr,
    pub listen_peer_addr: SocketAddr,
    pub data_dir: PathBuf,
}

impl NodeEndpoints {
    pub fn client_url(&self) -> String {
        format!("http://{}", self.client_addr)
    }

    pub fn peer_url(&self) -> String {
        format!("http://{}", self.peer_addr)
    }
}

/// Controls the nodes of one instance of a subject.
pub trait Runtime: Send + Sync {
    /// The instance's name (the lab's).
    fn instance(&self) -> String;
    /// Where a fault's record points back to this instance (the lab's directory).
    fn home(&self) -> PathBuf;
    /// Every node, in order of number.
    fn nodes(&self) -> Vec<NodeEndpoints>;
    /// Node `number`, or why there is none.
    fn node_endpoints(&self, number: u32) -> Result<NodeEndpoints>;
    /// Notes the trial's managed operator (`pid`, leading its own process group) as running on
    /// this instance, so that whoever removes the instance after a crash stops it too.
    fn adopt_operator(&self, _pid: u32) -> Result<()> {
        Ok(())
    }
    /// Whether [`Runtime::reset`] leaves the members to be started by the subject (the lab), or
    /// finds them running, started by the cluster's own controllers (Kubernetes).
    fn starts_members(&self) -> bool {
        true
    }
    /// The Kubernetes cluster this runtime is, whose faults are the cluster's own (pods deleted,
    /// Chaos Mesh objects) rather than this trait's processes, rules and files.
    fn kubernetes(&self) -> Option<&crate::kubernetes::runtime::KubeRuntime> {
        None
    }
    /// Whether `address`, as the subject advertises a node to its peers (a TiKV store's address
    /// in PD), is node `number`'s.
    fn is_advertised_as(&self, number: u32, address: &str) -> bool {
        self.node_endpoints(number)
            .is_ok_and(|node| node.peer_addr.to_string() == address)
    }
    /// Client endpoints as URLs, for the operator.
    fn endpoints(&self) -> Vec<String> {
        self.nodes().iter().map(NodeEndpoints::client_url).collect()
    }
    /// Changes on every [`Runtime::reset`], so a reset cluster never mixes with an old one.
    fn generation(&self) -> String;
    /// Reads the instance's state again: another process (an operator restarting a node) may
    /// have changed it.
    fn reload(&mut self) -> Result<()>;
    /// Stops every node and wipes its data, undoing any fault left in place.
    fn reset(&mut self) -> impl Future<Output = Result<()>> + Send;

    /// Starts node `number`'s process with `argv`; returns its pid.
    fn start_process(
        &mut self,
        number: u32,
        argv: &[String],
    ) -> impl Future<Output = Result<u32>> + Send;
    /// Stops node `number`'s process: gracefully, forcibly after `grace`.
    fn stop_process(
        &mut self,
        number: u32,
        grace: Duration,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Node `number`'s process when it runs (paused counts as running).
    fn running_pid(&self, number: u32) -> Option<u32>;
    /// Node `number`'s process as last started, running or not.
    fn recorded_pid(&self, number: u32) -> Option<u32>;
    /// `running`, `paused` or `down`.
    fn process_status(&self, number: u32) -> &'static str;
    /// Kills process `pid` at once and waits (a few seconds at most) until it is gone.
    fn kill_process(&self, pid: u32) -> impl Future<Output = Result<()>> + Send;
    /// Pauses process `pid` and waits (a few seconds at most) until it is stopped.
    fn pause_process(&self, pid: u32) -> impl Future<Output = Result<()>> + Send;
    /// Continues process `pid` if it still exists.
    fn resume_process(&self, pid: u32) -> Result<()>;
    /// Whether process `pid` is paused.
    fn is_paused(&self, pid: u32) -> bool;

    /// Why network faults (`fault`) cannot be injected here, when they cannot.
    fn check_network_faults(&self, fault: &str) -> Result<()>;
    /// The handle network rules of node `number` are put under (its network namespace).
    fn network_handle(&self, number: u32) -> Result<String>;
    /// Adds drop chains under `handle`.
    fn add_drop_chains(
        &self,
        handle: &str,
        chains: &[DropChain],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Deletes chains under `handle`; chains already gone are skipped.
    fn delete_chains(
        &self,
        handle: &str,
        chains: &[String],
    ) -> impl Future<Output = Result<()>> + Send;
    /// The chains under `handle`.
    fn list_chains(&self, handle: &str) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Node `number`'s delay proxy control.
    fn delay_control(&self, number: u32) -> Result<PathBuf>;
    /// Switches the delay on at `control`.
    fn set_delay(&self, control: &std::path::Path, settings: &DelaySettings) -> Result<()>;
    /// Switches the delay off at `control`; succeeds when it is off already.
    fn clear_delay(&self, control: &std::path::Path) -> Result<()>;
    /// Whether the delay at `control` is on.
    fn delay_on(&self, control: &std::path::Path) -> bool;

    /// Why node `number`'s disk cannot be filled, when it cannot.
    fn check_disk_faults(&self, fault: &str) -> Result<()>;
    /// The size and use of node `number`'s data filesystem, in bytes.
    fn disk_usage(&self, number: u32) -> Result<(u64, u64)>;
    /// Where a fill file of node `number` goes.
    fn fill_file(&self, number: u32) -> Result<PathBuf>;
    /// Writes `bytes` into `file` on node `number`'s data filesystem (stopping when it is full).
    fn fill_disk(&self, number: u32, file: &std::path::Path, bytes: u64) -> Result<()>;
    /// Removes a fill file; succeeds when it is gone already.
    fn remove_fill(&self, file: &std::path::Path) -> Result<()>;
    /// Whether a fill file is still there.
    fn fill_exists(&self, file: &std::path::Path) -> bool;
}
