//! The Kubernetes runtime: the subject's pods as its nodes, each reached from this host through
//! a port-forward of its API port (or at the address the campaign's `endpoints` give it), so that the subjects (etcd, TiKV) talk to them exactly as to a
//! lab's nodes. The cluster's own controllers run the members: a reset starts nothing, it waits
//! until every pod is Ready and no object of the harness is left in the namespace, then picks
//! the pods again. The faults are the cluster's own ([`super::faults`]); this trait's processes,
//! rules and files are refused with the reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use schemas::campaign::SubjectKind;
use schemas::cleanup::DelaySettings;

use super::client::Connection;
use super::faults::{Owner, PD_PORT};
use super::forward::Forward;
use super::pods::{self, PodSettings, Selection};
use crate::error::{Error, Result};
use crate::nft::DropChain;
use crate::runtime::{NodeEndpoints, Runtime};

/// etcd's client port in the charts' pods.
pub const ETCD_PORT: u16 = 2379;
/// A TiKV store's status port (TiDB Operator's default), which the store's probe asks.
pub const TIKV_STATUS_PORT: u16 = 20180;
/// How long a reset waits for every pod Ready and no object of the harness left.
pub const RESET_WAIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_secs(2);

/// Where a trial's subject runs in a cluster.
#[derive(Debug, Clone)]
pub struct KubePlace {
    pub subject: SubjectKind,
    pub namespace: String,
    pub pods: PodSettings,
    pub owner: Owner,
    /// Each node's API as `http://HOST:PORT`, in node order (`subject_settings.endpoints`);
    /// empty: a port-forward to each pod.
    pub endpoints: Vec<String>,
    /// How its faults are done, where there is more than one way.
    pub ways: super::faults::Ways,
}

/// How a node's API is reached from this process.
#[derive(Debug)]
enum Reach {
    Forward(Forward),
    Address(SocketAddr),
}

impl Reach {
    fn local(&self) -> SocketAddr {
        match self {
            Reach::Forward(forward) => forward.local,
            Reach::Address(address) => *address,
        }
    }
}

/// One trial's view of its subject's pods.
pub struct KubeRuntime {
    connection: Connection,
    place: KubePlace,
    selection: Selection,
    /// How each node is reached (a port-forward, or its own address), in order of number.
    reach: Vec<Reach>,
    resets: u64,
}

impl std::fmt::Debug for KubeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeRuntime")
            .field("place", &self.place)
            .field("selection", &self.selection)
            .finish()
    }
}

impl KubeRuntime {
    /// Picks the subject's pods and forwards a port to each (or resolves their endpoints).
    pub async fn open(connection: Connection, place: KubePlace) -> Result<KubeRuntime> {
        let selection = select(&connection, &place).await?;
        let reach = reach_all(&connection, &place, &selection).await?;
        Ok(KubeRuntime {
            connection,
            place,
            selection,
            reach,
            resets: 0,
        })
    }

    pub fn client(&self) -> &kube::Client {
        &self.connection.client
    }

    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    pub fn place(&self) -> &KubePlace {
        &self.place
    }

    /// The store pods and the PD pods, as a TiKV subject counts them.
    pub fn counts(&self) -> (u32, u32) {
        let pd = self.selection.nodes.iter().filter(|node| node.pd).count() as u32;
        (self.selection.nodes.len() as u32 - pd, pd)
    }

    fn unsupported<T>(&self, what: &str) -> Result<T> {
        Err(Error::Unsupported(format!(
            "{what} is not done this way on kubernetes: the pods' controllers run the members, and the faults are the cluster's own"
        )))
    }
}

/// The pods of `place`, every one of them Ready or not.
async fn select(connection: &Connection, place: &KubePlace) -> Result<Selection> {
    let api: Api<Pod> = Api::namespaced(connection.client.clone(), &place.namespace);
    pods::select(&api, &place.namespace, place.subject, &place.pods).await
}

/// The port of a node's API the subject asks: etcd's client port, a store's status port, PD's
/// client port.
fn api_port(subject: SubjectKind, pd: bool) -> u16 {
    match (subject, pd) {
        (SubjectKind::Etcd, _) => ETCD_PORT,
        (SubjectKind::Tikv, false) => TIKV_STATUS_PORT,
        (SubjectKind::Tikv, true) => PD_PORT,
    }
}

/// A port-forward to each node's API port, or, where the campaign gives `endpoints`, each
/// endpoint resolved (again on every reset: a pod made again may have another address).
async fn reach_all(
    connection: &Connection,
    place: &KubePlace,
    selection: &Selection,
) -> Result<Vec<Reach>> {
    let mut reach = Vec::new();
    if place.endpoints.is_empty() {
        for node in &selection.nodes {
            let port = api_port(place.subject, node.pd);
            reach.push(Reach::Forward(
                Forward::start(&connection.client, &place.namespace, &node.pod, port).await?,
            ));
        }
        return Ok(reach);
    }
    if place.endpoints.len() != selection.nodes.len() {
        return Err(Error::Kube(format!(
            "subject_settings.{}.endpoints names {} addresses, and the selectors pick {} pods ({}); give one per pod, in this order",
            place.subject,
            place.endpoints.len(),
            selection.nodes.len(),
            selection
                .nodes
                .iter()
                .map(|node| node.pod.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for endpoint in &place.endpoints {
        let host_port = endpoint
            .strip_prefix("http://")
            .unwrap_or(endpoint)
            .trim_end_matches('/');
        let address = tokio::net::lookup_host(host_port)
            .await
            .ok()
            .and_then(|mut addresses| addresses.next())
            .ok_or_else(|| {
                Error::Kube(format!(
                    "endpoint {endpoint} of subject_settings.{}.endpoints does not resolve",
                    place.subject
                ))
            })?;
        reach.push(Reach::Address(address));
    }
    Ok(reach)
}

impl Runtime for KubeRuntime {
    fn instance(&self) -> String {
        format!(
            "kubernetes {} namespace {}",
            self.connection.place, self.place.namespace
        )
    }

    /// No directory: a cleanup record of this runtime names its cluster instead.
    fn home(&self) -> PathBuf {
        PathBuf::new()
    }

    fn nodes(&self) -> Vec<NodeEndpoints> {
        self.selection
            .nodes
            .iter()
            .zip(&self.reach)
            .map(|(node, reach)| NodeEndpoints {
                number: node.number,
                name: node.pod.clone(),
                client_addr: reach.local(),
                peer_addr: reach.local(),
                listen_client_addr: reach.local(),
                listen_peer_addr: reach.local(),
                data_dir: PathBuf::new(),
            })
            .collect()
    }

    fn node_endpoints(&self, number: u32) -> Result<NodeEndpoints> {
        self.selection.node(number)?;
        self.nodes()
            .into_iter()
            .find(|node| node.number == number)
            .ok_or_else(|| Error::Kube(format!("no way to node {number}")))
    }

    fn starts_members(&self) -> bool {
        false
    }

    fn kubernetes(&self) -> Option<&KubeRuntime> {
        Some(self)
    }

    /// A TiKV store advertises `<pod>.<peer service>.<namespace>…:<port>` (both TiDB Operator
    /// versions): its host is the pod's name, or starts with it and a dot.
    fn is_advertised_as(&self, number: u32, address: &str) -> bool {
        let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
        self.selection.node(number).is_ok_and(|node| {
            host == node.pod
                || host
                    .strip_prefix(node.pod.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    fn generation(&self) -> String {
        format!("{}-{}", self.place.namespace, self.resets)
    }

    fn reload(&mut self) -> Result<()> {
        Ok(())
    }

    /// Waits until the pods the selectors pick are as many as at the start and all Ready, and no
    /// object the harness made is left in the namespace (a crashed trial's is cleaned up from
    /// the log first); then picks the pods again and forwards to them anew.
    async fn reset(&mut self) -> Result<()> {
        self.resets += 1;
        let expected = self.selection.nodes.len();
        let started = tokio::time::Instant::now();
        loop {
            let selection = select(&self.connection, &self.place).await?;
            let left = super::faults::namespace_leftovers(
                &self.connection.client,
                &self.place.namespace,
                &super::harness_selector(),
            )
            .await?;
            let not_ready = selection.not_ready();
            let waiting = if selection.nodes.len() != expected {
                Some(format!(
                    "{} pods where there were {expected}",
                    selection.nodes.len()
                ))
            } else if !not_ready.is_empty() {
                Some(format!("not Ready: {}", not_ready.join(", ")))
            } else if !left.is_empty() {
                Some(format!("still there: {}", left.join(", ")))
            } else {
                None
            };
            match waiting {
                None => {
                    self.reach = reach_all(&self.connection, &self.place, &selection).await?;
                    self.selection = selection;
                    return Ok(());
                }
                Some(waiting) if started.elapsed() > RESET_WAIT => {
                    return Err(Error::Kube(format!(
                        "the {} pods of namespace {} are not ready for a trial after {}s: {waiting} (`evalctl chaos cleanup --all` deletes what the harness left)",
                        self.place.subject,
                        self.place.namespace,
                        RESET_WAIT.as_secs()
                    )));
                }
                Some(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    async fn start_process(&mut self, _number: u32, _argv: &[String]) -> Result<u32> {
        self.unsupported("starting a member's process")
    }

    async fn stop_process(&mut self, _number: u32, _grace: Duration) -> Result<()> {
        self.unsupported("stopping a member's process")
    }

    fn running_pid(&self, _number: u32) -> Option<u32> {
        None
    }

    fn recorded_pid(&self, _number: u32) -> Option<u32> {
        None
    }

    /// The pod's readiness when last picked.
    fn process_status(&self, number: u32) -> &'static str {
        match self.selection.node(number) {
            Ok(node) if node.ready => "ready",
            Ok(_) => "not ready",
            Err(_) => "down",
        }
    }

    async fn kill_process(&self, _pid: u32) -> Result<()> {
        self.unsupported("killing a process")
    }

    async fn pause_process(&self, _pid: u32) -> Result<()> {
        self.unsupported("pausing a process")
    }

    fn resume_process(&self, _pid: u32) -> Result<()> {
        self.unsupported("continuing a process")
    }

    fn is_paused(&self, _pid: u32) -> bool {
        false
    }

    /// Chaos Mesh injects them; the preflight checked that it is installed.
    fn check_network_faults(&self, _fault: &str) -> Result<()> {
        Ok(())
    }

    fn network_handle(&self, _number: u32) -> Result<String> {
        self.unsupported("an nftables namespace")
    }

    async fn add_drop_chains(&self, _handle: &str, _chains: &[DropChain]) -> Result<()> {
        self.unsupported("nftables")
    }

    async fn delete_chains(&self, _handle: &str, _chains: &[String]) -> Result<()> {
        self.unsupported("nftables")
    }

    async fn list_chains(&self, _handle: &str) -> Result<Vec<String>> {
        self.unsupported("nftables")
    }

    fn delay_control(&self, _number: u32) -> Result<PathBuf> {
        self.unsupported("a delay proxy")
    }

    fn set_delay(&self, _control: &Path, _settings: &DelaySettings) -> Result<()> {
        self.unsupported("a delay proxy")
    }

    fn clear_delay(&self, _control: &Path) -> Result<()> {
        self.unsupported("a delay proxy")
    }

    fn delay_on(&self, _control: &Path) -> bool {
        false
    }

    /// A command in the pod fills its data volume (`super::exec`).
    fn check_disk_faults(&self, _fault: &str) -> Result<()> {
        Ok(())
    }

    fn disk_usage(&self, _number: u32) -> Result<(u64, u64)> {
        self.unsupported("reading a pod's disk")
    }

    fn fill_file(&self, _number: u32) -> Result<PathBuf> {
        self.unsupported("a fill file")
    }

    fn fill_disk(&self, _number: u32, _file: &Path, _bytes: u64) -> Result<()> {
        self.unsupported("a fill file")
    }

    fn remove_fill(&self, _file: &Path) -> Result<()> {
        self.unsupported("a fill file")
    }

    fn fill_exists(&self, _file: &Path) -> bool {
        false
    }
}
