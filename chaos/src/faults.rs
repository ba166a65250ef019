//! The six faults on a lab, and `none` (a control trial: a record that undoes nothing): planned first (target and every handle resolved into a
//! [`CleanupRecord`] that can be made durable), then applied, and cleaned up from the record
//! alone, idempotently, by this process or any other one on this host.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use schemas::campaign::{ChaosSpec, Target, TargetChoice};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::etcd::EtcdLab;
use crate::lab::{Isolation, Lab, sys};
use crate::nft::{self, DropChain, DropRule, Hook};
use crate::proxy::{self, DelaySettings};

/// The fill file of `disk_pressure`; the fault only ever writes or removes this file.
pub const FILL_FILE: &str = "eval-disk-pressure.fill";

/// Everything the cleanup of one fault needs. Serialized into `ChaosInjected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum CleanupRecord {
    NodeKill {
        lab_dir: PathBuf,
        node: u32,
        pid: u32,
    },
    ProcessPause {
        lab_dir: PathBuf,
        node: u32,
        pid: u32,
    },
    Latency {
        lab_dir: PathBuf,
        node: u32,
        control: PathBuf,
        settings: DelaySettings,
    },
    PacketLoss {
        lab_dir: PathBuf,
        node: u32,
        netns: String,
        percent: u32,
        chains: Vec<String>,
    },
    NetworkPartition {
        lab_dir: PathBuf,
        groups: Vec<Vec<u32>>,
        asymmetric: bool,
        /// (namespace, chains) of every node that got rules.
        rules: Vec<(String, Vec<String>)>,
    },
    DiskPressure {
        lab_dir: PathBuf,
        node: u32,
        fill_file: PathBuf,
        bytes: u64,
    },
    /// A control trial: nothing was broken, so its cleanup undoes nothing.
    None { lab_dir: PathBuf },
}

impl CleanupRecord {
    pub fn lab_dir(&self) -> &Path {
        match self {
            CleanupRecord::NodeKill { lab_dir, .. }
            | CleanupRecord::ProcessPause { lab_dir, .. }
            | CleanupRecord::Latency { lab_dir, .. }
            | CleanupRecord::PacketLoss { lab_dir, .. }
            | CleanupRecord::NetworkPartition { lab_dir, .. }
            | CleanupRecord::DiskPressure { lab_dir, .. }
            | CleanupRecord::None { lab_dir } => lab_dir,
        }
    }

    /// The node the fault hit, as a name (`n2`), or the groups of a partition; `None` for a
    /// control trial, which hits nothing.
    pub fn target(&self) -> Option<String> {
        match self {
            CleanupRecord::NodeKill { node, .. }
            | CleanupRecord::ProcessPause { node, .. }
            | CleanupRecord::Latency { node, .. }
            | CleanupRecord::PacketLoss { node, .. }
            | CleanupRecord::DiskPressure { node, .. } => Some(format!("n{node}")),
            CleanupRecord::NetworkPartition { groups, .. } => Some(format!("{groups:?}")),
            CleanupRecord::None { .. } => None,
        }
    }
}

/// A deterministic generator for a trial's random choices (splitmix64).
#[derive(Debug, Clone)]
pub struct TrialRng(u64);

impl TrialRng {
    pub fn new(seed: u64) -> TrialRng {
        TrialRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Resolves a target to a node number: `random` and `follower` from the trial's seed,
/// `leader` from the cluster.
pub async fn resolve_target(subject: &EtcdLab, target: &Target, rng: &mut TrialRng) -> Result<u32> {
    let nodes = subject.lab.state.nodes.len() as u32;
    match target {
        Target::Node(number) if (1..=nodes).contains(number) => Ok(*number),
        Target::Node(number) => Err(Error::Lab(format!(
            "target node {number} is not in the lab (nodes 1 to {nodes})"
        ))),
        Target::Choice(TargetChoice::Random) => Ok(1 + rng.below(u64::from(nodes)) as u32),
        Target::Choice(TargetChoice::Leader) => subject
            .health()
            .await
            .leader
            .ok_or_else(|| Error::Lab("no leader to target".into())),
        Target::Choice(TargetChoice::Follower) => {
            let leader = subject.health().await.leader;
            let followers: Vec<u32> = (1..=nodes).filter(|n| Some(*n) != leader).collect();
            if followers.is_empty() {
                return Err(Error::Lab("no follower to target".into()));
            }
            Ok(followers[rng.below(followers.len() as u64) as usize])
        }
    }
}

fn needs_namespaces(lab: &Lab, fault: &str) -> Result<()> {
    if lab.state.isolation == Isolation::Namespaces {
        return Ok(());
    }
    let reason = Isolation::Loopback
        .unsupported_faults()
        .iter()
        .find(|(name, _)| *name == fault)
        .map_or("needs root", |(_, reason)| reason);
    Err(Error::Unsupported(format!(
        "{fault} cannot be injected in lab {} (loopback): {reason}",
        lab.state.name
    )))
}

/// Resolves the fault's target and handles without changing anything.
pub async fn plan(subject: &EtcdLab, chaos: &ChaosSpec, seed: u64) -> Result<CleanupRecord> {
    let lab = &subject.lab;
    let lab_dir = lab.state.dir.clone();
    let mut rng = TrialRng::new(seed);
    let running_pid = |node: u32| -> Result<u32> {
        lab.node(node)?
            .pid
            .filter(|pid| sys::process_alive(*pid))
            .ok_or_else(|| Error::Lab(format!("node {node} is not running")))
    };
    Ok(match chaos {
        ChaosSpec::NodeKill(params) => {
            let node = resolve_target(subject, &params.target, &mut rng).await?;
            CleanupRecord::NodeKill {
                lab_dir,
                node,
                pid: running_pid(node)?,
            }
        }
        ChaosSpec::ProcessPause(params) => {
            let node = resolve_target(subject, &params.target, &mut rng).await?;
            CleanupRecord::ProcessPause {
                lab_dir,
                node,
                pid: running_pid(node)?,
            }
        }
        ChaosSpec::Latency(params) => {
            let node = resolve_target(subject, &params.target, &mut rng).await?;
            CleanupRecord::Latency {
                lab_dir,
                node,
                control: lab.node(node)?.delay_control.clone(),
                settings: DelaySettings {
                    min_ms: params.min_ms,
                    max_ms: params.max_ms.max(params.min_ms),
                    seed: rng.next_u64(),
                },
            }
        }
        ChaosSpec::PacketLoss(params) => {
            needs_namespaces(lab, "packet_loss")?;
            let node = resolve_target(subject, &params.target, &mut rng).await?;
            CleanupRecord::PacketLoss {
                lab_dir,
                node,
                netns: lab.node(node)?.netns.clone().expect("isolated node"),
                percent: params.percent,
                chains: vec!["loss_in".into(), "loss_out".into()],
            }
        }
        ChaosSpec::NetworkPartition(params) => {
            needs_namespaces(lab, "network_partition")?;
            let groups = match &params.groups {
                Some(groups) => groups.clone(),
                None => {
                    let node = resolve_target(subject, &params.target, &mut rng).await?;
                    let rest = (1..=lab.state.nodes.len() as u32)
                        .filter(|n| *n != node)
                        .collect();
                    vec![vec![node], rest]
                }
            };
            let mut rules = Vec::new();
            for (position, group) in groups.iter().enumerate() {
                if params.asymmetric && position > 0 {
                    break;
                }
                let chains: Vec<String> = if params.asymmetric {
                    vec!["partition_out".into()]
                } else {
                    vec!["partition_in".into(), "partition_out".into()]
                };
                for node in group {
                    rules.push((
                        lab.node(*node)?.netns.clone().expect("isolated node"),
                        chains.clone(),
                    ));
                }
            }
            CleanupRecord::NetworkPartition {
                lab_dir,
                groups,
                asymmetric: params.asymmetric,
                rules,
            }
        }
        ChaosSpec::DiskPressure(params) => {
            needs_namespaces(lab, "disk_pressure")?;
            let node = resolve_target(subject, &params.target, &mut rng).await?;
            let (total, used) = lab.disk_usage(node)?;
            let goal = total / 100 * u64::from(params.fill_percent);
            CleanupRecord::DiskPressure {
                lab_dir,
                node,
                fill_file: lab.node(node)?.data_dir.join(FILL_FILE),
                bytes: goal.saturating_sub(used),
            }
        }
        ChaosSpec::None(_) => CleanupRecord::None { lab_dir },
    })
}

/// Applies a planned fault.
pub async fn apply(subject: &EtcdLab, record: &CleanupRecord) -> Result<()> {
    let lab = &subject.lab;
    match record {
        CleanupRecord::NodeKill { pid, .. } => {
            sys::signal(*pid, Signal::SIGKILL)?;
            let started = std::time::Instant::now();
            while sys::process_alive(*pid) && started.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(())
        }
        CleanupRecord::ProcessPause { pid, .. } => {
            sys::signal(*pid, Signal::SIGSTOP)?;
            // The signal is delivered asynchronously; the fault is on once the process stopped.
            let started = std::time::Instant::now();
            while !matches!(sys::process_state(*pid), Some('T' | 't'))
                && started.elapsed() < Duration::from_secs(5)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(())
        }
        CleanupRecord::Latency {
            control, settings, ..
        } => proxy::write_control(control, settings).map_err(Error::io(control)),
        CleanupRecord::PacketLoss { netns, percent, .. } => {
            let chains = [Hook::Input, Hook::Output].map(|hook| DropChain {
                name: if hook == Hook::Input {
                    "loss_in"
                } else {
                    "loss_out"
                }
                .to_string(),
                hook,
                rule: DropRule::Random { percent: *percent },
            });
            nft::add_chains(netns, &chains).await
        }
        CleanupRecord::NetworkPartition {
            groups, asymmetric, ..
        } => {
            let address = |node: u32| -> Result<IpAddr> { Ok(lab.node(node)?.client_addr.ip()) };
            for (position, group) in groups.iter().enumerate() {
                if *asymmetric && position > 0 {
                    break;
                }
                let others: Vec<IpAddr> = groups
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != position)
                    .flat_map(|(_, nodes)| nodes.iter().copied())
                    .map(address)
                    .collect::<Result<_>>()?;
                for node in group {
                    let netns = lab.node(*node)?.netns.clone().expect("isolated node");
                    let mut chains = vec![DropChain {
                        name: "partition_out".into(),
                        hook: Hook::Output,
                        rule: DropRule::Peers(others.clone()),
                    }];
                    if !asymmetric {
                        chains.push(DropChain {
                            name: "partition_in".into(),
                            hook: Hook::Input,
                            rule: DropRule::Peers(others.clone()),
                        });
                    }
                    nft::add_chains(&netns, &chains).await?;
                }
            }
            Ok(())
        }
        CleanupRecord::DiskPressure {
            node,
            fill_file,
            bytes,
            ..
        } => {
            let node_state = lab.node(*node)?;
            // Never fill a filesystem the lab did not create.
            if !node_state.mounted || fill_file.parent() != Some(node_state.data_dir.as_path()) {
                return Err(Error::Lab(format!(
                    "refusing to fill {}: not the lab's own filesystem",
                    fill_file.display()
                )));
            }
            fill(fill_file, *bytes)
        }
        CleanupRecord::None { .. } => Ok(()),
    }
}

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

/// Undoes a fault from its record alone. Idempotent: what is already undone is skipped, so it
/// can run early (at the end of `duration_seconds`), at the trial's end, and again after a crash.
pub async fn cleanup(subject: &mut EtcdLab, record: &CleanupRecord) -> Result<()> {
    subject.lab.reload()?;
    match record {
        CleanupRecord::NodeKill { node, .. } => {
            if !subject.lab.node(*node)?.running() {
                subject.start_member(*node).await?;
            }
            Ok(())
        }
        CleanupRecord::ProcessPause { pid, .. } => {
            if sys::process_alive(*pid) {
                sys::signal(*pid, Signal::SIGCONT)?;
            }
            Ok(())
        }
        CleanupRecord::Latency { control, .. } => {
            proxy::clear_control(control).map_err(Error::io(control))
        }
        CleanupRecord::PacketLoss { netns, chains, .. } => nft::delete_chains(netns, chains).await,
        CleanupRecord::NetworkPartition { rules, .. } => {
            for (netns, chains) in rules {
                nft::delete_chains(netns, chains).await?;
            }
            Ok(())
        }
        CleanupRecord::DiskPressure {
            node, fill_file, ..
        } => {
            match std::fs::remove_file(fill_file) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        path: fill_file.clone(),
                        source,
                    });
                }
            }
            // etcd exits when a write meets a full disk; put the member back as it was.
            if !subject.lab.node(*node)?.running() {
                subject.start_member(*node).await?;
            }
            Ok(())
        }
        // Nothing was broken; what the operator did to the subject is the operator's to answer.
        CleanupRecord::None { .. } => Ok(()),
    }
}

/// What a fault left behind, for tests and `evalctl chaos cleanup`: empty when fully undone.
pub async fn leftovers(subject: &EtcdLab, record: &CleanupRecord) -> Result<Vec<String>> {
    let mut left = Vec::new();
    match record {
        CleanupRecord::NodeKill { node, .. } => {
            if !subject.lab.node(*node)?.running() {
                left.push(format!("node {node} is down"));
            }
        }
        CleanupRecord::ProcessPause { pid, .. } => {
            if matches!(sys::process_state(*pid), Some('T' | 't')) {
                left.push(format!("pid {pid} is stopped"));
            }
        }
        CleanupRecord::Latency { control, .. } => {
            if control.exists() {
                left.push(format!("delay control {} exists", control.display()));
            }
        }
        CleanupRecord::PacketLoss { netns, chains, .. } => {
            let present = nft::list_chains(netns).await?;
            left.extend(
                chains
                    .iter()
                    .filter(|c| present.contains(c))
                    .map(|c| format!("{netns}: chain {c}")),
            );
        }
        CleanupRecord::NetworkPartition { rules, .. } => {
            for (netns, chains) in rules {
                let present = nft::list_chains(netns).await?;
                left.extend(
                    chains
                        .iter()
                        .filter(|c| present.contains(c))
                        .map(|c| format!("{netns}: chain {c}")),
                );
            }
        }
        CleanupRecord::DiskPressure { fill_file, .. } => {
            if fill_file.exists() {
                left.push(format!("fill file {} exists", fill_file.display()));
            }
        }
        CleanupRecord::None { .. } => {}
    }
    Ok(left)
}
