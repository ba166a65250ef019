//! The six generic faults, written once against a [`Runtime`] (and the [`Subject`] where they
//! need its topology: the leader), and `none` (a control trial: a record that undoes nothing).
//! On a Kubernetes runtime ([`Runtime::kubernetes`]) every fault is the cluster's own instead
//! (`crate::kubernetes::faults`), planned with the topology the subject reads through that
//! runtime.
//! Planned first (target and every handle resolved into a [`CleanupRecord`] that can be made
//! durable), then applied, and cleaned up from the record alone, idempotently, by this process
//! or any other one on this host.

use std::net::IpAddr;
use std::path::Path;

use rand::{Rng, RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use schemas::campaign::{ChaosSpec, Target, TargetChoice};
pub use schemas::cleanup::{CleanupRecord, DelaySettings};

use crate::error::{Error, Result};
pub use crate::lab::runtime::FILL_FILE;
use crate::nft::{DropChain, DropRule, Hook};
use crate::runtime::Runtime;
use crate::subject::Subject;

/// The chains `packet_loss` adds to a node's `inet eval` table (in, out).
const LOSS_CHAINS: [&str; 2] = ["loss_in", "loss_out"];
/// The chains `network_partition` adds.
const PARTITION_IN: &str = "partition_in";
const PARTITION_OUT: &str = "partition_out";

/// A deterministic generator for a trial's random choices: xoshiro256++ seeded from the trial's
/// seed, so a trial drawn again with the same seed makes the same choices.
#[derive(Debug, Clone)]
pub struct TrialRng(Xoshiro256PlusPlus);

impl TrialRng {
    pub fn new(seed: u64) -> TrialRng {
        TrialRng(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (n > 0), without bias.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }
}

/// Resolves a target to a node number: `random` and `follower` from the trial's seed, `leader`
/// from the subject's topology; among the subject's data nodes (etcd's members, TiKV's stores),
/// or for the `pd_` choices among its PD members.
pub async fn resolve_target(
    subject: &impl Subject,
    runtime: &impl Runtime,
    target: &Target,
    rng: &mut TrialRng,
) -> Result<u32> {
    let nodes = runtime.nodes().len() as u32;
    let choice = match target {
        Target::Node(number) if (1..=nodes).contains(number) => return Ok(*number),
        Target::Node(number) => {
            return Err(Error::Lab(format!(
                "target node {number} is not in the lab (nodes 1 to {nodes})"
            )));
        }
        Target::Choice(choice) => *choice,
    };
    let (candidates, leader, what) = match choice {
        TargetChoice::Random | TargetChoice::Leader | TargetChoice::Follower => {
            let leader = if choice == TargetChoice::Random {
                None
            } else {
                subject.leader(runtime).await
            };
            (subject.data_nodes(runtime), leader, "")
        }
        TargetChoice::PdRandom | TargetChoice::PdLeader | TargetChoice::PdFollower => {
            let pd = subject.pd_nodes();
            if pd.is_empty() {
                return Err(Error::Unsupported(format!(
                    "{} has no PD members to target",
                    subject.kind()
                )));
            }
            let leader = if choice == TargetChoice::PdRandom {
                None
            } else {
                subject.pd_leader(runtime).await
            };
            (pd, leader, "PD ")
        }
    };
    choose(choice, candidates, leader, what, rng)
}

/// The node `choice` picks among `candidates` (non-empty): a seeded draw for `random`, `leader`
/// itself, or a seeded draw among the others for `follower`; `what` names them in messages
/// (`""`, `"PD "`).
pub fn choose(
    choice: TargetChoice,
    candidates: Vec<u32>,
    leader: Option<u32>,
    what: &str,
    rng: &mut TrialRng,
) -> Result<u32> {
    match choice {
        TargetChoice::Random | TargetChoice::PdRandom => {
            Ok(candidates[rng.below(candidates.len() as u64) as usize])
        }
        TargetChoice::Leader | TargetChoice::PdLeader => {
            leader.ok_or_else(|| Error::Lab(format!("no {what}leader to target")))
        }
        TargetChoice::Follower | TargetChoice::PdFollower => {
            let followers: Vec<u32> = candidates
                .into_iter()
                .filter(|n| Some(*n) != leader)
                .collect();
            if followers.is_empty() {
                return Err(Error::Lab(format!("no {what}follower to target")));
            }
            Ok(followers[rng.below(followers.len() as u64) as usize])
        }
    }
}

/// Resolves the fault's target and handles without changing anything.
pub async fn plan(
    subject: &impl Subject,
    runtime: &impl Runtime,
    chaos: &ChaosSpec,
    seed: u64,
) -> Result<CleanupRecord> {
    if let Some(kube) = runtime.kubernetes() {
        let topology = kube_topology(subject, runtime, chaos).await;
        let place = kube.place();
        return crate::kubernetes::faults::plan(
            kube.selection(),
            &topology,
            chaos,
            seed,
            &place.owner,
            place.ways,
        )
        .map(|record| CleanupRecord::Kubernetes(Box::new(record)));
    }
    let lab_dir = runtime.home();
    let mut rng = TrialRng::new(seed);
    let running_pid = |node: u32| -> Result<u32> {
        runtime.node_endpoints(node)?;
        runtime
            .running_pid(node)
            .ok_or_else(|| Error::Lab(format!("node {node} is not running")))
    };
    Ok(match chaos {
        ChaosSpec::NodeKill(params) => {
            let node = resolve_target(subject, runtime, &params.target, &mut rng).await?;
            CleanupRecord::NodeKill {
                lab_dir,
                node,
                pid: running_pid(node)?,
            }
        }
        ChaosSpec::ProcessPause(params) => {
            let node = resolve_target(subject, runtime, &params.target, &mut rng).await?;
            CleanupRecord::ProcessPause {
                lab_dir,
                node,
                pid: running_pid(node)?,
            }
        }
        ChaosSpec::Latency(params) => {
            let node = resolve_target(subject, runtime, &params.target, &mut rng).await?;
            CleanupRecord::Latency {
                lab_dir,
                node,
                control: runtime.delay_control(node)?,
                settings: DelaySettings {
                    min_ms: params.min_ms,
                    max_ms: params.max_ms.max(params.min_ms),
                    seed: rng.next_u64(),
                },
            }
        }
        ChaosSpec::PacketLoss(params) => {
            runtime.check_network_faults("packet_loss")?;
            let node = resolve_target(subject, runtime, &params.target, &mut rng).await?;
            CleanupRecord::PacketLoss {
                lab_dir,
                node,
                netns: runtime.network_handle(node)?,
                percent: params.percent,
                chains: LOSS_CHAINS.map(String::from).to_vec(),
            }
        }
        ChaosSpec::NetworkPartition(params) => {
            runtime.check_network_faults("network_partition")?;
            let groups = match &params.groups {
                Some(groups) => groups.clone(),
                None => {
                    let node = resolve_target(subject, runtime, &params.target, &mut rng).await?;
                    let rest = (1..=runtime.nodes().len() as u32)
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
                    vec![PARTITION_OUT.into()]
                } else {
                    vec![PARTITION_IN.into(), PARTITION_OUT.into()]
                };
                for node in group {
                    rules.push((runtime.network_handle(*node)?, chains.clone()));
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
            runtime.check_disk_faults("disk_pressure")?;
            let node = resolve_target(subject, runtime, &params.target, &mut rng).await?;
            let (total, used) = runtime.disk_usage(node)?;
            let goal = total / 100 * u64::from(params.fill_percent);
            CleanupRecord::DiskPressure {
                lab_dir,
                node,
                fill_file: runtime.fill_file(node)?,
                bytes: goal.saturating_sub(used),
            }
        }
        ChaosSpec::PdLeaderKill(_) => {
            let node = subject
                .pd_leader(runtime)
                .await
                .ok_or_else(|| Error::Lab("no PD leader to kill".into()))?;
            CleanupRecord::PdLeaderKill {
                lab_dir,
                node,
                member: runtime.node_endpoints(node)?.name,
                pid: running_pid(node)?,
            }
        }
        ChaosSpec::LeaderEvict(params) => {
            let node = resolve_target(subject, runtime, &params.target, &mut rng).await?;
            CleanupRecord::LeaderEvict {
                lab_dir,
                node,
                store_id: subject.store_id(runtime, node).await?,
            }
        }
        ChaosSpec::RegionUnavailable(params) => {
            let mut stores = subject.data_nodes(runtime);
            let count = params.stores.unwrap_or(stores.len() as u32 / 2 + 1) as usize;
            if count > stores.len() {
                return Err(Error::Lab(format!(
                    "cannot stop {count} of {} stores",
                    stores.len()
                )));
            }
            // A seeded draw of `count` stores, in node order.
            let mut chosen = Vec::new();
            for _ in 0..count {
                chosen.push(stores.remove(rng.below(stores.len() as u64) as usize));
            }
            chosen.sort_unstable();
            CleanupRecord::RegionUnavailable {
                lab_dir,
                stores: chosen
                    .into_iter()
                    .map(|node| Ok((node, running_pid(node)?)))
                    .collect::<Result<_>>()?,
            }
        }
        ChaosSpec::None(_) => CleanupRecord::None { lab_dir },
    })
}

/// What the subject's API says of its topology (through the runtime's port-forwards), for a
/// fault planned on Kubernetes: the leaders where a target or the fault needs them, the stores'
/// ids for `leader_evict`.
async fn kube_topology(
    subject: &impl Subject,
    runtime: &impl Runtime,
    chaos: &ChaosSpec,
) -> crate::kubernetes::faults::Topology {
    let mut topology = crate::kubernetes::faults::Topology::default();
    if matches!(chaos, ChaosSpec::None(_)) {
        return topology;
    }
    topology.leader = subject.leader(runtime).await;
    if !subject.pd_nodes().is_empty() {
        topology.pd_leader = subject.pd_leader(runtime).await;
    }
    if matches!(chaos, ChaosSpec::LeaderEvict(_)) {
        for node in subject.data_nodes(runtime) {
            if let Ok(id) = subject.store_id(runtime, node).await {
                topology.store_ids.insert(node, id);
            }
        }
    }
    topology
}

/// The Kubernetes runtime a Kubernetes record is undone on.
fn kube_of<'r>(
    runtime: &'r impl Runtime,
    record: &CleanupRecord,
) -> Result<&'r crate::kubernetes::runtime::KubeRuntime> {
    runtime.kubernetes().ok_or_else(|| {
        Error::Refused(format!(
            "the {} cleanup record is of a Kubernetes cluster, and this is the lab {}",
            record.fault_name(),
            runtime.home().display()
        ))
    })
}

/// Applies a planned fault.
pub async fn apply(
    subject: &impl Subject,
    runtime: &impl Runtime,
    record: &CleanupRecord,
) -> Result<()> {
    match record {
        CleanupRecord::Kubernetes(kube_record) => {
            crate::kubernetes::faults::apply(kube_of(runtime, record)?.client(), kube_record).await
        }
        CleanupRecord::NodeKill { pid, .. } | CleanupRecord::PdLeaderKill { pid, .. } => {
            runtime.kill_process(*pid).await
        }
        CleanupRecord::LeaderEvict { store_id, .. } => {
            subject.evict_leaders(runtime, *store_id, true).await
        }
        CleanupRecord::RegionUnavailable { stores, .. } => {
            for (_, pid) in stores {
                runtime.kill_process(*pid).await?;
            }
            Ok(())
        }
        CleanupRecord::ProcessPause { pid, .. } => runtime.pause_process(*pid).await,
        CleanupRecord::Latency {
            control, settings, ..
        } => runtime.set_delay(control, settings),
        CleanupRecord::PacketLoss { netns, percent, .. } => {
            let chains = [
                (LOSS_CHAINS[0], Hook::Input),
                (LOSS_CHAINS[1], Hook::Output),
            ]
            .map(|(name, hook)| DropChain {
                name: name.to_string(),
                hook,
                rule: DropRule::Random { percent: *percent },
            });
            runtime.add_drop_chains(netns, &chains).await
        }
        CleanupRecord::NetworkPartition {
            groups, asymmetric, ..
        } => {
            let address = |node: u32| -> Result<IpAddr> {
                Ok(runtime.node_endpoints(node)?.client_addr.ip())
            };
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
                    let mut chains = vec![DropChain {
                        name: PARTITION_OUT.into(),
                        hook: Hook::Output,
                        rule: DropRule::Peers(others.clone()),
                    }];
                    if !asymmetric {
                        chains.push(DropChain {
                            name: PARTITION_IN.into(),
                            hook: Hook::Input,
                            rule: DropRule::Peers(others.clone()),
                        });
                    }
                    runtime
                        .add_drop_chains(&runtime.network_handle(*node)?, &chains)
                        .await?;
                }
            }
            Ok(())
        }
        CleanupRecord::DiskPressure {
            node,
            fill_file,
            bytes,
            ..
        } => runtime.fill_disk(*node, fill_file, *bytes),
        CleanupRecord::None { .. } => Ok(()),
    }
}

/// Undoes a fault from its record alone. Idempotent: what is already undone is skipped, so it
/// can run early (at the end of `duration_seconds`), at the trial's end, and again after a crash.
pub async fn cleanup<R: Runtime>(
    subject: &impl Subject,
    runtime: &mut R,
    record: &CleanupRecord,
) -> Result<()> {
    runtime.reload()?;
    check_record(subject, runtime, record)?;
    match record {
        CleanupRecord::Kubernetes(kube_record) => {
            crate::kubernetes::faults::cleanup(kube_of(runtime, record)?.client(), kube_record)
                .await
        }
        CleanupRecord::NodeKill { node, .. } | CleanupRecord::PdLeaderKill { node, .. } => {
            if runtime.running_pid(*node).is_none() {
                subject.start_member(runtime, *node).await?;
            }
            Ok(())
        }
        CleanupRecord::RegionUnavailable { stores, .. } => {
            for (node, _) in stores {
                if runtime.running_pid(*node).is_none() {
                    subject.start_member(runtime, *node).await?;
                }
            }
            Ok(())
        }
        CleanupRecord::LeaderEvict { store_id, .. } => {
            subject.evict_leaders(runtime, *store_id, false).await
        }
        // Continued only while it is still the node's own process: gone, it needs nothing.
        CleanupRecord::ProcessPause { node, pid, .. } => {
            if runtime.running_pid(*node) == Some(*pid) {
                runtime.resume_process(*pid)?;
            }
            Ok(())
        }
        CleanupRecord::Latency { control, .. } => runtime.clear_delay(control),
        CleanupRecord::PacketLoss { netns, chains, .. } => {
            runtime.delete_chains(netns, chains).await
        }
        CleanupRecord::NetworkPartition { rules, .. } => {
            for (netns, chains) in rules {
                runtime.delete_chains(netns, chains).await?;
            }
            Ok(())
        }
        CleanupRecord::DiskPressure {
            node, fill_file, ..
        } => {
            runtime.remove_fill(fill_file)?;
            // etcd exits when a write meets a full disk; put the member back as it was.
            if runtime.running_pid(*node).is_none() {
                subject.start_member(runtime, *node).await?;
            }
            Ok(())
        }
        // Nothing was broken; what the operator did to the subject is the operator's to answer.
        CleanupRecord::None { .. } => Ok(()),
    }
}

/// Refuses a cleanup record that names anything this runtime did not make: the record comes from
/// the log, which is data, and its cleanup removes files, deletes rules and signals processes.
/// Every handle must be the one `plan` takes from this runtime for the record's node: its lab,
/// the node's delay control or fill file, its network namespace, the fault's own chain names;
/// and a stopped pid must be the node's own process; a PD fault's node must be a PD member, a
/// store fault's a store.
pub fn check_record(
    subject: &impl Subject,
    runtime: &impl Runtime,
    record: &CleanupRecord,
) -> Result<()> {
    let refuse = |what: String| {
        Err(Error::Refused(format!(
            "the {} cleanup record names {what}",
            record.fault_name()
        )))
    };
    if let CleanupRecord::Kubernetes(kube_record) = record {
        let kube = kube_of(runtime, record)?;
        let place = kube.place();
        crate::kubernetes::faults::check_record(kube_record, &place.owner.trial_id)?;
        if kube_record.namespace != place.namespace {
            return refuse(format!(
                "the namespace {}, not {}",
                kube_record.namespace, place.namespace
            ));
        }
        if let Some(node) = kube_record
            .nodes
            .iter()
            .find(|node| kube.selection().node(**node).is_err())
        {
            return refuse(format!("node {node}, which is no pod of the subject"));
        }
        return Ok(());
    }
    match record.lab_dir() {
        Some(lab_dir) if lab_dir == runtime.home() && runtime.kubernetes().is_none() => {}
        lab_dir => {
            return refuse(format!(
                "the lab {}, not {}",
                lab_dir.unwrap_or(Path::new("")).display(),
                runtime.home().display()
            ));
        }
    }
    let only = |netns: &str, chains: &[String], allowed: &[&str], node: u32| -> Result<()> {
        if netns != runtime.network_handle(node)? {
            return refuse(format!("the namespace {netns}, not node {node}'s"));
        }
        if let Some(chain) = chains
            .iter()
            .find(|chain| !allowed.contains(&chain.as_str()))
        {
            return refuse(format!("the chain {chain:?}, which this fault never adds"));
        }
        Ok(())
    };
    match record {
        CleanupRecord::NodeKill { node, .. } => {
            runtime.node_endpoints(*node)?;
        }
        CleanupRecord::PdLeaderKill { node, .. } => {
            if !subject.pd_nodes().contains(node) {
                return refuse(format!("node {node}, which is no PD member"));
            }
        }
        CleanupRecord::LeaderEvict { node, .. } => {
            if !subject.data_nodes(runtime).contains(node) {
                return refuse(format!("node {node}, which is no store"));
            }
        }
        CleanupRecord::RegionUnavailable { stores, .. } => {
            let data_nodes = subject.data_nodes(runtime);
            if let Some((node, _)) = stores.iter().find(|(node, _)| !data_nodes.contains(node)) {
                return refuse(format!("node {node}, which is no store"));
            }
        }
        CleanupRecord::ProcessPause { node, pid, .. } => {
            runtime.node_endpoints(*node)?;
            if runtime.running_pid(*node) != Some(*pid) && runtime.is_paused(*pid) {
                return refuse(format!(
                    "the stopped process {pid}, which is not node {node}'s process"
                ));
            }
        }
        CleanupRecord::Latency { node, control, .. } => {
            if *control != runtime.delay_control(*node)? {
                return refuse(format!(
                    "the file {}, not node {node}'s delay control",
                    control.display()
                ));
            }
        }
        CleanupRecord::PacketLoss {
            node,
            netns,
            chains,
            ..
        } => only(netns, chains, &LOSS_CHAINS, *node)?,
        CleanupRecord::NetworkPartition { groups, rules, .. } => {
            for node in groups.iter().flatten() {
                runtime.node_endpoints(*node)?;
            }
            for (netns, chains) in rules {
                let node = (1..=runtime.nodes().len() as u32)
                    .find(|node| runtime.network_handle(*node).ok().as_deref() == Some(netns));
                match node {
                    Some(node) => only(netns, chains, &[PARTITION_IN, PARTITION_OUT], node)?,
                    None => return refuse(format!("the namespace {netns}, which is no node's")),
                }
            }
        }
        CleanupRecord::DiskPressure {
            node, fill_file, ..
        } => {
            if *fill_file != runtime.fill_file(*node)? {
                return refuse(format!(
                    "the file {}, not node {node}'s fill file",
                    fill_file.display()
                ));
            }
        }
        CleanupRecord::None { .. } | CleanupRecord::Kubernetes(_) => {}
    }
    Ok(())
}

/// What a fault left behind, for tests and `evalctl chaos cleanup`: empty when fully undone.
pub async fn leftovers(
    subject: &impl Subject,
    runtime: &impl Runtime,
    record: &CleanupRecord,
) -> Result<Vec<String>> {
    check_record(subject, runtime, record)?;
    let mut left = Vec::new();
    match record {
        CleanupRecord::Kubernetes(kube_record) => {
            let client = kube_of(runtime, record)?.client();
            left.extend(crate::kubernetes::faults::record_leftovers(client, kube_record).await?);
        }
        CleanupRecord::NodeKill { node, .. } | CleanupRecord::PdLeaderKill { node, .. } => {
            runtime.node_endpoints(*node)?;
            if runtime.running_pid(*node).is_none() {
                left.push(format!("node {node} is down"));
            }
        }
        CleanupRecord::RegionUnavailable { stores, .. } => {
            for (node, _) in stores {
                if runtime.running_pid(*node).is_none() {
                    left.push(format!("node {node} is down"));
                }
            }
        }
        CleanupRecord::LeaderEvict { store_id, .. } => {
            if subject.evicted_leaders(runtime).await?.contains(store_id) {
                left.push(format!(
                    "store {store_id} is in PD's evict-leader-scheduler"
                ));
            }
        }
        CleanupRecord::ProcessPause { node, pid, .. } => {
            if runtime.running_pid(*node) == Some(*pid) && runtime.is_paused(*pid) {
                left.push(format!("pid {pid} is stopped"));
            }
        }
        CleanupRecord::Latency { control, .. } => {
            if runtime.delay_on(control) {
                left.push(format!("delay control {} exists", control.display()));
            }
        }
        CleanupRecord::PacketLoss { netns, chains, .. } => {
            left.extend(chains_left(runtime, netns, chains).await?);
        }
        CleanupRecord::NetworkPartition { rules, .. } => {
            for (netns, chains) in rules {
                left.extend(chains_left(runtime, netns, chains).await?);
            }
        }
        CleanupRecord::DiskPressure { fill_file, .. } => {
            if runtime.fill_exists(fill_file) {
                left.push(format!("fill file {} exists", fill_file.display()));
            }
        }
        CleanupRecord::None { .. } => {}
    }
    Ok(left)
}

async fn chains_left(
    runtime: &impl Runtime,
    netns: &str,
    chains: &[String],
) -> Result<Vec<String>> {
    let present = runtime.list_chains(netns).await?;
    Ok(chains
        .iter()
        .filter(|chain| present.contains(chain))
        .map(|chain| format!("{netns}: chain {chain}"))
        .collect())
}
