//! The `Subject` trait (the seed harness's EvalSubject protocol): what the worker needs of a
//! system under test, whatever runtime it runs on.

use std::time::Duration;

use schemas::campaign::ChaosSpec;

use crate::error::Result;
use crate::etcd::EtcdLab;
use crate::faults::{self, CleanupRecord};

/// A system under test on some runtime. Injection is split in two, `plan` then `inject`, so that
/// the worker can make the cleanup record durable before the fault exists.
#[allow(async_fn_in_trait)]
pub trait Subject {
    /// A name for the instance, such as the lab's.
    fn instance(&self) -> String;
    /// Client endpoints, for the operator.
    fn endpoints(&self) -> Vec<String>;
    /// A fresh cluster, data wiped.
    async fn reset(&mut self) -> Result<()>;
    /// Waits until healthy; returns how long it took.
    async fn wait_healthy(&self, timeout: Duration) -> Result<Duration>;
    /// Healthy now, or why not.
    async fn is_healthy(&self) -> (bool, Option<String>);
    /// A serializable snapshot: members and their state, leader, key counts, disk use.
    async fn capture_state(&self) -> serde_json::Value;
    /// Resolves targets and handles of `chaos` into the record its cleanup needs.
    async fn plan(&self, chaos: &ChaosSpec, seed: u64) -> Result<CleanupRecord>;
    /// Applies a planned fault.
    async fn inject(&mut self, record: &CleanupRecord) -> Result<()>;
    /// Undoes a fault from its record; idempotent.
    async fn cleanup(&mut self, record: &CleanupRecord) -> Result<()>;
}

impl Subject for EtcdLab {
    fn instance(&self) -> String {
        self.lab.state.name.clone()
    }

    fn endpoints(&self) -> Vec<String> {
        EtcdLab::endpoints(self)
    }

    async fn reset(&mut self) -> Result<()> {
        EtcdLab::reset(self).await
    }

    async fn wait_healthy(&self, timeout: Duration) -> Result<Duration> {
        EtcdLab::wait_healthy(self, timeout).await
    }

    async fn is_healthy(&self) -> (bool, Option<String>) {
        let health = self.health().await;
        (health.healthy, health.reason)
    }

    async fn capture_state(&self) -> serde_json::Value {
        EtcdLab::capture_state(self).await
    }

    async fn plan(&self, chaos: &ChaosSpec, seed: u64) -> Result<CleanupRecord> {
        faults::plan(self, chaos, seed).await
    }

    async fn inject(&mut self, record: &CleanupRecord) -> Result<()> {
        faults::apply(self, record).await
    }

    async fn cleanup(&mut self, record: &CleanupRecord) -> Result<()> {
        faults::cleanup(self, record).await
    }
}
