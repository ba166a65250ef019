//! The `Subject` trait (the seed harness's EvalSubject protocol): what talks to the database's
//! own API, on whatever [`Runtime`] runs its nodes. A subject knows how to run a member on a
//! node, the cluster's topology (its members and leader), its health and a snapshot of its state;
//! the runtime does everything to the nodes themselves.

use std::future::Future;
use std::time::{Duration, Instant};

use schemas::campaign::SubjectKind;

use crate::error::{Error, Result};
use crate::runtime::Runtime;

/// The cluster's health, with the reason when unhealthy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    pub healthy: bool,
    pub reason: Option<String>,
    /// The leader's node number, when the members agree on one.
    pub leader: Option<u32>,
}

/// A database, reached through the endpoints of the runtime passed to each call.
pub trait Subject: Send + Sync {
    fn kind(&self) -> SubjectKind;

    /// Starts node `number`'s member (again: with its data kept, it rejoins its cluster);
    /// returns its pid.
    fn start_member<R: Runtime>(
        &self,
        runtime: &mut R,
        number: u32,
    ) -> impl Future<Output = Result<u32>> + Send;

    /// Health now: every member answers, they agree on a leader, nothing alarms.
    fn health<R: Runtime>(&self, runtime: &R) -> impl Future<Output = Health> + Send;

    /// A serializable snapshot: members and their state, leader, key counts, disk use.
    fn capture_state<R: Runtime>(
        &self,
        runtime: &R,
    ) -> impl Future<Output = serde_json::Value> + Send;

    /// The node that `leader` targets aim at: for etcd the leader; for TiKV the store holding
    /// the most region leaders.
    fn leader<R: Runtime>(&self, runtime: &R) -> impl Future<Output = Option<u32>> + Send {
        async move { self.health(runtime).await.leader }
    }

    /// The nodes that `random`, `leader` and `follower` targets choose among: the members of
    /// etcd, the stores of TiKV (not its PD members).
    fn data_nodes<R: Runtime>(&self, runtime: &R) -> Vec<u32> {
        runtime.nodes().iter().map(|node| node.number).collect()
    }

    /// The PD members' nodes; none but TiKV has PD.
    fn pd_nodes(&self) -> Vec<u32> {
        Vec::new()
    }

    /// The PD leader's node.
    fn pd_leader<R: Runtime>(&self, _runtime: &R) -> impl Future<Output = Option<u32>> + Send {
        async { None }
    }

    /// The id PD gave the store on node `number`.
    fn store_id<R: Runtime>(
        &self,
        _runtime: &R,
        _number: u32,
    ) -> impl Future<Output = Result<u64>> + Send {
        async move { Err(Error::Unsupported(format!("{} has no stores", self.kind()))) }
    }

    /// Puts store `store_id` into PD's evict-leader scheduler (`on`) or takes it out.
    fn evict_leaders<R: Runtime>(
        &self,
        _runtime: &R,
        _store_id: u64,
        _on: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            Err(Error::Unsupported(format!(
                "{} has no leader scheduler",
                self.kind()
            )))
        }
    }

    /// The stores PD's evict-leader scheduler holds.
    fn evicted_leaders<R: Runtime>(
        &self,
        _runtime: &R,
    ) -> impl Future<Output = Result<Vec<u64>>> + Send {
        async { Ok(Vec::new()) }
    }

    /// A fresh cluster: every node reset to fresh data by the runtime, every member started
    /// (where the runtime leaves that to the subject).
    fn reset<R: Runtime>(&self, runtime: &mut R) -> impl Future<Output = Result<()>> + Send {
        async move {
            runtime.reset().await?;
            if !runtime.starts_members() {
                return Ok(());
            }
            for number in runtime.nodes().iter().map(|node| node.number) {
                self.start_member(runtime, number).await?;
            }
            Ok(())
        }
    }

    /// Polls [`Subject::health`] until healthy; returns how long it took.
    fn wait_healthy<R: Runtime>(
        &self,
        runtime: &R,
        timeout: Duration,
    ) -> impl Future<Output = Result<Duration>> + Send {
        async move {
            let started = Instant::now();
            loop {
                let health = self.health(runtime).await;
                if health.healthy {
                    return Ok(started.elapsed());
                }
                if started.elapsed() >= timeout {
                    return Err(Error::NotHealthy {
                        seconds: timeout.as_secs(),
                        reason: health.reason.unwrap_or_default(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The subject of a lab, as its state names it: what a cleanup, `evalctl lab` and the lab broker
/// work with, whatever the lab runs.
#[derive(Debug, Clone)]
pub enum LabSubject {
    Etcd(crate::etcd::EtcdSubject),
    Tikv(crate::tikv::TikvSubject),
}

impl LabSubject {
    pub fn of(state: &crate::lab::LabState) -> Result<LabSubject> {
        Ok(match state.subject {
            SubjectKind::Etcd => LabSubject::Etcd(crate::etcd::EtcdSubject),
            SubjectKind::Tikv => LabSubject::Tikv(crate::tikv::TikvSubject::of_lab(state)?),
        })
    }
}

/// Calls `$call` on the subject inside a [`LabSubject`].
macro_rules! each {
    ($self:expr, $subject:ident => $call:expr) => {
        match $self {
            LabSubject::Etcd($subject) => $call,
            LabSubject::Tikv($subject) => $call,
        }
    };
}

impl Subject for LabSubject {
    fn kind(&self) -> SubjectKind {
        each!(self, s => s.kind())
    }

    async fn start_member<R: Runtime>(&self, runtime: &mut R, number: u32) -> Result<u32> {
        each!(self, s => s.start_member(runtime, number).await)
    }

    async fn health<R: Runtime>(&self, runtime: &R) -> Health {
        each!(self, s => s.health(runtime).await)
    }

    async fn capture_state<R: Runtime>(&self, runtime: &R) -> serde_json::Value {
        each!(self, s => s.capture_state(runtime).await)
    }

    async fn leader<R: Runtime>(&self, runtime: &R) -> Option<u32> {
        each!(self, s => s.leader(runtime).await)
    }

    async fn reset<R: Runtime>(&self, runtime: &mut R) -> Result<()> {
        each!(self, s => s.reset(runtime).await)
    }

    fn data_nodes<R: Runtime>(&self, runtime: &R) -> Vec<u32> {
        each!(self, s => s.data_nodes(runtime))
    }

    fn pd_nodes(&self) -> Vec<u32> {
        each!(self, s => s.pd_nodes())
    }

    async fn pd_leader<R: Runtime>(&self, runtime: &R) -> Option<u32> {
        each!(self, s => s.pd_leader(runtime).await)
    }

    async fn store_id<R: Runtime>(&self, runtime: &R, number: u32) -> Result<u64> {
        each!(self, s => s.store_id(runtime, number).await)
    }

    async fn evict_leaders<R: Runtime>(&self, runtime: &R, store_id: u64, on: bool) -> Result<()> {
        each!(self, s => s.evict_leaders(runtime, store_id, on).await)
    }

    async fn evicted_leaders<R: Runtime>(&self, runtime: &R) -> Result<Vec<u64>> {
        each!(self, s => s.evicted_leaders(runtime).await)
    }
}
