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

    /// The leader's node number, when the members agree on one.
    fn leader<R: Runtime>(&self, runtime: &R) -> impl Future<Output = Option<u32>> + Send {
        async move { self.health(runtime).await.leader }
    }

    /// A fresh cluster: every node reset to fresh data by the runtime, every member started.
    fn reset<R: Runtime>(&self, runtime: &mut R) -> impl Future<Output = Result<()>> + Send {
        async move {
            runtime.reset().await?;
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
