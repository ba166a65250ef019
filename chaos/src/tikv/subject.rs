//! The TiKV subject: PD members and TiKV stores from `pd-server` and `tikv-server` (their command
//! lines from the runtime's endpoints), topology, health and state through PD's HTTP API
//! (`pd.rs`), on any [`Runtime`].
//!
//! Nodes `1..=stores` are the stores and the PD members follow them, so that a node number means
//! the same in a campaign's targets, in `evalctl lab node` and in the lab's state.

use std::time::{Duration, Instant};

use schemas::campaign::SubjectKind;

use super::binaries::TikvBinaries;
use super::pd::{Pd, PdView};
use crate::error::{Error, Result};
use crate::http::{Method, call};
use crate::lab::LabState;
use crate::runtime::{NodeEndpoints, Runtime};
use crate::subject::{Health, Subject};

/// Per-request deadline of the health probes: a paused node must not stall them.
const PROBE_TIMEOUT: Duration = Duration::from_millis(700);
/// Deadline of PD's own answers. `/pd/api/v1/health` asks every member in turn, each within 3 s
/// (PD's `clientTimeout`), so a paused member makes it slow, not wrong.
const PD_TIMEOUT: Duration = Duration::from_secs(8);
/// A node answering slower than this, twice in a row, counts as unhealthy (how `latency` shows).
pub const SLOW_ANSWER: Duration = crate::etcd::SLOW_ANSWER;

/// A TiKV cluster of `stores` stores and `pd_members` PD members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TikvSubject {
    pub stores: u32,
    pub pd_members: u32,
    /// The programs; `None` where the cluster is only observed, never started (a test against
    /// recorded answers, or a cleanup that only talks to PD).
    pub binaries: Option<TikvBinaries>,
}

/// What a node is, and the address its API answers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Store,
    Pd(u32),
}

impl TikvSubject {
    /// The TiKV subject of a lab made for it.
    pub fn of_lab(state: &LabState) -> Result<TikvSubject> {
        if state.subject != SubjectKind::Tikv {
            return Err(Error::Lab(format!(
                "lab {} runs {}, not tikv",
                state.name, state.subject
            )));
        }
        Ok(TikvSubject {
            stores: state.data_nodes(),
            pd_members: state.pd_members,
            binaries: state.tikv_binaries.clone(),
        })
    }

    fn part(&self, number: u32) -> Part {
        if number > self.stores {
            Part::Pd(number - self.stores)
        } else {
            Part::Store
        }
    }

    /// PD member `k`'s name (`pd1`), as the lab names the node and PD the member.
    pub fn pd_name(&self, k: u32) -> String {
        format!("pd{k}")
    }

    /// The node of PD member `member`: the one whose client URL it advertises, else the one
    /// its name names (`pd2`).
    pub fn pd_node(&self, runtime: &impl Runtime, member: &super::pd::Member) -> Option<u32> {
        let by_url = self.pd_nodes().into_iter().find(|number| {
            runtime
                .node_endpoints(*number)
                .is_ok_and(|node| member.client_urls.contains(&node.client_url()))
        });
        // On Kubernetes a member advertises its service name, and is named as its pod.
        let by_name = || {
            self.pd_nodes().into_iter().find(|number| {
                runtime
                    .node_endpoints(*number)
                    .is_ok_and(|node| node.name == member.name)
            })
        };
        by_url.or_else(by_name).or_else(|| {
            let k: u32 = member.name.strip_prefix("pd")?.parse().ok()?;
            (1..=self.pd_members)
                .contains(&k)
                .then_some(self.stores + k)
        })
    }

    /// PD's API on each PD member, by node.
    pub fn pds(&self, runtime: &impl Runtime) -> Vec<(u32, Pd)> {
        self.pd_nodes()
            .into_iter()
            .filter_map(|number| {
                let node = runtime.node_endpoints(number).ok()?;
                Some((
                    number,
                    Pd {
                        addr: node.client_addr,
                        timeout: PD_TIMEOUT,
                    },
                ))
            })
            .collect()
    }

    /// The whole PD view, asked of each member in turn until one answers (a follower forwards
    /// to its leader); every member's error when none does.
    pub async fn view(&self, runtime: &impl Runtime) -> std::result::Result<PdView, String> {
        self.first_answer(runtime, |pd| async move { pd.view().await })
            .await
    }

    /// Asks `request` of each PD member in turn until one answers.
    async fn ask<T, F, Fut>(&self, runtime: &impl Runtime, request: F) -> Result<T>
    where
        F: Fn(Pd) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, super::pd::PdError>>,
    {
        self.first_answer(runtime, request)
            .await
            .map_err(|errors| Error::Lab(format!("no PD member answered: {errors}")))
    }

    /// The first answer of `request`, asked of each PD member in turn, or every member's error
    /// (`pd1: …; pd2: …`).
    async fn first_answer<T, F, Fut>(
        &self,
        runtime: &impl Runtime,
        request: F,
    ) -> std::result::Result<T, String>
    where
        F: Fn(Pd) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, super::pd::PdError>>,
    {
        let mut errors = Vec::new();
        for (number, pd) in self.pds(runtime) {
            match request(pd).await {
                Ok(answer) => return Ok(answer),
                Err(error) => errors.push(format!("{}: {error}", node_name(runtime, number))),
            }
        }
        Err(if errors.is_empty() {
            "no PD member".to_string()
        } else {
            errors.join("; ")
        })
    }

    /// One direct probe of node `number`: a store's status address (`GET /status`) or a PD
    /// member's `GET /pd/api/v1/ping` (answered by the member itself; `/health` would wait for
    /// the other members); how long it took, or why it failed.
    pub async fn probe(
        &self,
        node: &NodeEndpoints,
    ) -> std::result::Result<Duration, crate::http::HttpError> {
        let path = match self.part(node.number) {
            Part::Store => "/status",
            Part::Pd(_) => "/pd/api/v1/ping",
        };
        let started = Instant::now();
        match call(Method::Get, node.client_addr, path, None, PROBE_TIMEOUT).await {
            Ok(_) => Ok(started.elapsed()),
            // A PD before 6.0 has no `/ping`: its 404 still says it answers.
            Err(crate::http::HttpError::Status { status: 404, .. }) if path.ends_with("ping") => {
                Ok(started.elapsed())
            }
            Err(error) => Err(error),
        }
    }

    /// Node `number` if it answers slower than [`SLOW_ANSWER`] when asked again.
    async fn slow_answer(&self, node: &NodeEndpoints) -> Option<Duration> {
        self.probe(node)
            .await
            .ok()
            .filter(|elapsed| *elapsed > SLOW_ANSWER)
    }

    /// The command line of node `node`, and the configuration file it reads (path, text).
    pub fn member_argv(
        &self,
        runtime: &impl Runtime,
        node: &NodeEndpoints,
    ) -> Result<(Vec<String>, std::path::PathBuf, String)> {
        let binaries = self.binaries.as_ref().ok_or_else(|| {
            Error::Unsupported(
                "this TiKV lab has no pd-server and tikv-server to start its nodes with".into(),
            )
        })?;
        let data = &node.data_dir;
        Ok(match self.part(node.number) {
            Part::Pd(k) => {
                let initial_cluster = (1..=self.pd_members)
                    .filter_map(|k| {
                        let member = runtime.node_endpoints(self.stores + k).ok()?;
                        Some(format!("{}={}", self.pd_name(k), member.peer_url()))
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                let config = data.join("pd.toml");
                let text = pd_config(&runtime.generation());
                let argv = vec![
                    binaries.pd_server.display().to_string(),
                    "--name".into(),
                    self.pd_name(k),
                    "--data-dir".into(),
                    data.join("pd").display().to_string(),
                    "--client-urls".into(),
                    format!("http://{}", node.listen_client_addr),
                    "--advertise-client-urls".into(),
                    node.client_url(),
                    "--peer-urls".into(),
                    format!("http://{}", node.listen_peer_addr),
                    "--advertise-peer-urls".into(),
                    node.peer_url(),
                    "--initial-cluster".into(),
                    initial_cluster,
                    "--config".into(),
                    config.display().to_string(),
                ];
                (argv, config, text)
            }
            Part::Store => {
                let pd: Vec<String> = self
                    .pd_nodes()
                    .into_iter()
                    .filter_map(|number| runtime.node_endpoints(number).ok())
                    .map(|member| member.client_addr.to_string())
                    .collect();
                let config = data.join("tikv.toml");
                let argv = vec![
                    binaries.tikv_server.display().to_string(),
                    "--addr".into(),
                    node.listen_peer_addr.to_string(),
                    "--advertise-addr".into(),
                    node.peer_addr.to_string(),
                    "--status-addr".into(),
                    node.listen_client_addr.to_string(),
                    "--advertise-status-addr".into(),
                    node.client_addr.to_string(),
                    "--data-dir".into(),
                    data.join("tikv").display().to_string(),
                    "--pd".into(),
                    pd.join(","),
                    "--config".into(),
                    config.display().to_string(),
                ];
                (argv, config, TIKV_CONFIG.to_string())
            }
        })
    }
}

/// PD's configuration: the cluster token of this generation, so that a reset cluster never
/// joins an old one.
fn pd_config(token: &str) -> String {
    format!("initial-cluster-token = {}\n", toml_string(token))
}

/// A store's configuration, for a store on a small filesystem of a shared host: no space held
/// in reserve (its default is 5 GiB, more than the node's whole filesystem), a small block
/// cache, few threads, and few enough open files that common limits allow them.
pub const TIKV_CONFIG: &str = r#"[storage]
reserve-space = "0MB"

[storage.block-cache]
capacity = "128MB"

[server]
grpc-concurrency = 1

[readpool.unified]
max-thread-count = 2

[rocksdb]
max-background-jobs = 2
max-open-files = 4096

[raftdb]
max-background-jobs = 2
max-open-files = 4096
"#;

/// The open files a store with [`TIKV_CONFIG`] needs: TiKV refuses to start below its 1,000
/// reserved descriptors plus both databases' `max-open-files` (its defaults need 82,920).
pub const TIKV_OPEN_FILES: u64 = 1000 + 4096 + 4096;

/// Raises this process's soft limit of open files to its hard limit, which the stores it starts
/// inherit; says what is missing when even the hard limit is below [`TIKV_OPEN_FILES`].
fn allow_open_files() -> Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|errno| Error::Lab(format!("getrlimit(RLIMIT_NOFILE): {errno}")))?;
    if hard < TIKV_OPEN_FILES {
        return Err(Error::Unsupported(format!(
            "a TiKV store needs {TIKV_OPEN_FILES} open files, and this process may open at most {hard} (`ulimit -Hn`); raise the hard limit (LimitNOFILE= in a systemd unit, nofile in /etc/security/limits.conf)"
        )));
    }
    if soft < TIKV_OPEN_FILES {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            .map_err(|errno| Error::Lab(format!("setrlimit(RLIMIT_NOFILE, {hard}): {errno}")))?;
    }
    Ok(())
}

/// Node `number`'s name (`pd1`), for messages.
fn node_name(runtime: &impl Runtime, number: u32) -> String {
    runtime
        .node_endpoints(number)
        .map_or_else(|_| format!("node {number}"), |node| node.name)
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

impl Subject for TikvSubject {
    fn kind(&self) -> SubjectKind {
        SubjectKind::Tikv
    }

    async fn start_member<R: Runtime>(&self, runtime: &mut R, number: u32) -> Result<u32> {
        let node = runtime.node_endpoints(number)?;
        let (argv, config, text) = self.member_argv(runtime, &node)?;
        if self.part(number) == Part::Store {
            allow_open_files()?;
        }
        std::fs::write(&config, text).map_err(Error::io(&config))?;
        runtime.start_process(number, &argv).await
    }

    /// A fresh cluster: every node wiped, the PD members started first (the stores register
    /// with them), then the stores.
    async fn reset<R: Runtime>(&self, runtime: &mut R) -> Result<()> {
        runtime.reset().await?;
        if !runtime.starts_members() {
            return Ok(());
        }
        for number in self.pd_nodes().into_iter().chain(1..=self.stores) {
            self.start_member(runtime, number).await?;
        }
        Ok(())
    }

    /// Every node answers its own probe in time (a store's `/status`, a member's `/ping`), and
    /// PD's view is healthy: every member
    /// healthy, a leader, every store `Up`, no region missing or with a down peer, no store
    /// held by the evict-leader scheduler.
    async fn health<R: Runtime>(&self, runtime: &R) -> Health {
        let view = self.view(runtime).await;
        self.health_with(runtime, &view).await
    }

    /// Per node its role, process and data filesystem use; PD's view of the stores (state,
    /// capacity, available bytes, region and leader counts), the members, the leader and the
    /// region checks; and health.
    async fn capture_state<R: Runtime>(&self, runtime: &R) -> serde_json::Value {
        // One read of PD's view for both.
        let view = self.view(runtime).await;
        let health = self.health_with(runtime, &view).await;
        let nodes: Vec<serde_json::Value> = runtime
            .nodes()
            .iter()
            .map(|node| {
                let disk = runtime.disk_usage(node.number).ok();
                serde_json::json!({
                    "node": node.number,
                    "name": node.name,
                    "role": match self.part(node.number) { Part::Store => "tikv", Part::Pd(_) => "pd" },
                    "endpoint": node.client_url(),
                    "process": runtime.process_status(node.number),
                    "pid": runtime.recorded_pid(node.number),
                    "disk_total_bytes": disk.map(|(total, _)| total),
                    "disk_used_bytes": disk.map(|(_, used)| used),
                })
            })
            .collect();
        serde_json::json!({
            "subject": "tikv",
            "lab": runtime.instance(),
            "healthy": health.healthy,
            "reason": health.reason,
            "pd_leader_node": health.leader,
            "nodes": nodes,
            "pd": view.as_ref().ok().map(PdView::state),
            "pd_error": view.err(),
        })
    }

    /// The store holding the most region leaders (the lowest node on a tie).
    async fn leader<R: Runtime>(&self, runtime: &R) -> Option<u32> {
        let view = self.view(runtime).await.ok()?;
        let mut best: Option<(u64, u32)> = None;
        for info in view
            .live_stores()
            .filter(|info| info.store.state_name == "Up")
        {
            let Some(number) = self.store_node(runtime, &info.store.address) else {
                continue;
            };
            let leaders = info.status.leader_count.unwrap_or(0);
            if best.is_none_or(|(most, _)| leaders > most) {
                best = Some((leaders, number));
            }
        }
        best.map(|(_, number)| number)
    }

    fn data_nodes<R: Runtime>(&self, _runtime: &R) -> Vec<u32> {
        (1..=self.stores).collect()
    }

    fn pd_nodes(&self) -> Vec<u32> {
        (self.stores + 1..=self.stores + self.pd_members).collect()
    }

    async fn pd_leader<R: Runtime>(&self, runtime: &R) -> Option<u32> {
        let members = self
            .ask(runtime, |pd| async move { pd.members().await })
            .await;
        self.pd_node(runtime, &members.ok()?.leader?)
    }

    async fn store_id<R: Runtime>(&self, runtime: &R, number: u32) -> Result<u64> {
        let node = runtime.node_endpoints(number)?;
        if self.part(number) != Part::Store {
            return Err(Error::Lab(format!(
                "node {number} is a PD member, not a store"
            )));
        }
        let stores = self
            .ask(runtime, |pd| async move { pd.stores().await })
            .await?;
        stores
            .stores
            .iter()
            .find(|info| {
                runtime.is_advertised_as(number, &info.store.address)
                    && info.store.state_name != "Tombstone"
            })
            .map(|info| info.store.id)
            .ok_or_else(|| {
                Error::Lab(format!(
                    "PD knows no store at {} (node {number})",
                    node.peer_addr
                ))
            })
    }

    async fn evict_leaders<R: Runtime>(&self, runtime: &R, store_id: u64, on: bool) -> Result<()> {
        if on {
            self.ask(
                runtime,
                |pd| async move { pd.add_evict_leader(store_id).await },
            )
            .await
        } else {
            self.ask(runtime, |pd| async move {
                pd.remove_evict_leader(store_id).await
            })
            .await
        }
    }

    async fn evicted_leaders<R: Runtime>(&self, runtime: &R) -> Result<Vec<u64>> {
        self.ask(runtime, |pd| async move { pd.evict_leader_stores().await })
            .await
    }
}

impl TikvSubject {
    /// The store node whose advertised address is `address`.
    fn store_node(&self, runtime: &impl Runtime, address: &str) -> Option<u32> {
        (1..=self.stores).find(|number| runtime.is_advertised_as(*number, address))
    }

    /// Health from PD's `view` (read once by the caller) and every node's own probe.
    async fn health_with(
        &self,
        runtime: &impl Runtime,
        view: &std::result::Result<PdView, String>,
    ) -> Health {
        let nodes = runtime.nodes();
        let probes = futures::future::join_all(nodes.iter().map(|node| self.probe(node))).await;
        let mut down = Vec::new();
        let mut slow = Vec::new();
        for (node, probe) in nodes.iter().zip(probes) {
            match probe {
                Ok(elapsed) if elapsed > SLOW_ANSWER => {
                    if let Some(elapsed) = self.slow_answer(node).await {
                        slow.push(format!(
                            "{} answers in {}ms",
                            node.name,
                            elapsed.as_millis()
                        ));
                    }
                }
                Ok(_) => {}
                Err(error) => down.push(format!("{}: {error}", node.name)),
            }
        }
        let leader = view
            .as_ref()
            .ok()
            .and_then(|view| view.members.leader.as_ref())
            .and_then(|leader| self.pd_node(runtime, leader));
        let mut reasons = Vec::new();
        if !down.is_empty() {
            reasons.push(format!("not answering: {}", down.join("; ")));
        }
        match view {
            Ok(view) => {
                let health = view.health(self.pd_members as usize, self.stores as usize);
                reasons.extend(health.reasons);
                // Every store Up but kept from leading: PD's view of a `leader_evict`.
                if let Ok(evicted) = self.evicted_leaders(runtime).await
                    && !evicted.is_empty()
                {
                    reasons.push(format!(
                        "PD's evict-leader-scheduler keeps leaders off stores {evicted:?}"
                    ));
                }
            }
            Err(error) => reasons.push(format!("PD not answering: {error}")),
        }
        if !slow.is_empty() {
            reasons.push(format!("slow: {}", slow.join("; ")));
        }
        Health {
            healthy: reasons.is_empty(),
            reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            leader,
        }
    }
}
