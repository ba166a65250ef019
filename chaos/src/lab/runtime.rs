//! The lab as a [`Runtime`]: node processes as detached processes (in the node's namespace when
//! isolated), network rules as nftables chains in the node's namespace, latency through the
//! node's delay proxy, disk pressure as a fill file on the node's own tmpfs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use schemas::cleanup::DelaySettings;

use super::{Isolation, Lab, NodeState, sys};
use crate::error::{Error, Result};
use crate::nft::{self, DropChain};
use crate::proxy;
use crate::runtime::{NodeEndpoints, Runtime};

impl NodeState {
    pub fn endpoints(&self) -> NodeEndpoints {
        NodeEndpoints {
            number: self.number,
            name: self.name.clone(),
            client_addr: self.client_addr,
            peer_addr: self.peer_addr,
            listen_client_addr: self.internal_client_addr,
            listen_peer_addr: self.internal_peer_addr,
            data_dir: self.data_dir.clone(),
        }
    }
}

impl Lab {
    /// Network and disk faults need a namespace and a tmpfs per node.
    fn needs_namespaces(&self, fault: &str) -> Result<()> {
        if self.state.isolation == Isolation::Namespaces {
            return Ok(());
        }
        let reason = Isolation::Loopback
            .unsupported_faults()
            .iter()
            .find(|(name, _)| *name == fault)
            .map_or("needs root", |(_, reason)| reason);
        Err(Error::Unsupported(format!(
            "{fault} cannot be injected in lab {} (loopback): {reason}",
            self.state.name
        )))
    }
}

/// Waits up to five seconds for `done`.
async fn wait_until(done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl Runtime for Lab {
    fn instance(&self) -> String {
        self.state.name.clone()
    }

    fn home(&self) -> PathBuf {
        self.state.dir.clone()
    }

    fn adopt_operator(&self, pid: u32) -> Result<()> {
        self.record_operator(pid)
    }

    fn nodes(&self) -> Vec<NodeEndpoints> {
        self.state.nodes.iter().map(NodeState::endpoints).collect()
    }

    fn node_endpoints(&self, number: u32) -> Result<NodeEndpoints> {
        Ok(Lab::node(self, number)?.endpoints())
    }

    fn generation(&self) -> String {
        self.state.cluster_token.clone()
    }

    fn reload(&mut self) -> Result<()> {
        Lab::reload(self)
    }

    async fn reset(&mut self) -> Result<()> {
        self.wipe().await
    }

    async fn start_process(&mut self, number: u32, argv: &[String]) -> Result<u32> {
        Lab::start_process(self, number, argv).await
    }

    async fn stop_process(&mut self, number: u32, grace: Duration) -> Result<()> {
        self.stop_node(number, grace).await
    }

    fn running_pid(&self, number: u32) -> Option<u32> {
        Lab::node(self, number).ok()?.live_pid()
    }

    fn recorded_pid(&self, number: u32) -> Option<u32> {
        Lab::node(self, number).ok()?.pid
    }

    fn process_status(&self, number: u32) -> &'static str {
        Lab::node(self, number).map_or("down", NodeState::process_status)
    }

    async fn kill_process(&self, pid: u32) -> Result<()> {
        sys::signal(pid, Signal::SIGKILL)?;
        wait_until(|| !sys::process_alive(pid)).await;
        Ok(())
    }

    async fn pause_process(&self, pid: u32) -> Result<()> {
        sys::signal(pid, Signal::SIGSTOP)?;
        // The signal is delivered asynchronously; the fault is on once the process stopped.
        wait_until(|| self.is_paused(pid)).await;
        Ok(())
    }

    fn resume_process(&self, pid: u32) -> Result<()> {
        if sys::process_alive(pid) {
            sys::signal(pid, Signal::SIGCONT)?;
        }
        Ok(())
    }

    fn is_paused(&self, pid: u32) -> bool {
        matches!(sys::process_state(pid), Some('T' | 't'))
    }

    fn check_network_faults(&self, fault: &str) -> Result<()> {
        self.needs_namespaces(fault)
    }

    fn network_handle(&self, number: u32) -> Result<String> {
        Lab::node(self, number)?.netns.clone().ok_or_else(|| {
            Error::Lab(format!(
                "node {number} of lab {} has no network namespace",
                self.state.name
            ))
        })
    }

    async fn add_drop_chains(&self, handle: &str, chains: &[DropChain]) -> Result<()> {
        nft::add_chains(handle, chains).await
    }

    async fn delete_chains(&self, handle: &str, chains: &[String]) -> Result<()> {
        nft::delete_chains(handle, chains).await
    }

    async fn list_chains(&self, handle: &str) -> Result<Vec<String>> {
        nft::list_chains(handle).await
    }

    fn delay_control(&self, number: u32) -> Result<PathBuf> {
        Ok(Lab::node(self, number)?.delay_control.clone())
    }

    fn set_delay(&self, control: &Path, settings: &DelaySettings) -> Result<()> {
        proxy::write_control(control, settings).map_err(Error::io(control))
    }

    fn clear_delay(&self, control: &Path) -> Result<()> {
        proxy::clear_control(control).map_err(Error::io(control))
    }

    fn delay_on(&self, control: &Path) -> bool {
        control.exists()
    }

    fn check_disk_faults(&self, fault: &str) -> Result<()> {
        self.needs_namespaces(fault)
    }

    fn disk_usage(&self, number: u32) -> Result<(u64, u64)> {
        Lab::disk_usage(self, number)
    }

    fn fill_file(&self, number: u32) -> Result<PathBuf> {
        Ok(Lab::node(self, number)?.data_dir.join(FILL_FILE))
    }

    fn fill_disk(&self, number: u32, file: &Path, bytes: u64) -> Result<()> {
        let node = Lab::node(self, number)?;
        // Never fill a filesystem the lab did not create.
        if !node.mounted || file.parent() != Some(node.data_dir.as_path()) {
            return Err(Error::Lab(format!(
                "refusing to fill {}: not the lab's own filesystem",
                file.display()
            )));
        }
        fill(file, bytes)
    }

    fn remove_fill(&self, file: &Path) -> Result<()> {
        match std::fs::remove_file(file) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                path: file.to_path_buf(),
                source,
            }),
        }
    }

    fn fill_exists(&self, file: &Path) -> bool {
        file.exists()
    }
}

/// The fill file of `disk_pressure`; the fault only ever writes or removes this file.
pub const FILL_FILE: &str = "eval-disk-pressure.fill";

fn fill(path: &Path, bytes: u64) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(Error::io(path))?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let size = left.min(chunk.len() as u64) as usize;
        match file.write_all(&chunk[..size]) {
            Ok(()) => left -= size as u64,
            // A full filesystem is what the fault wants: stop there.
            Err(error) if error.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    file.sync_all().map_err(Error::io(path))
}
