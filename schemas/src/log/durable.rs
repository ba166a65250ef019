//! The stages' durable consumers, set up in one place: created on first use, reused when their
//! filter is the one asked for, and brought to it (the server updates a consumer's filter in
//! place, keeping its position) when an older version of the stage left another one.

use std::time::Duration;

use async_nats::jetstream::consumer::{self, PullConsumer};

use super::{Error, EventLog, Result};

/// What a stage's durable consumer is.
#[derive(Debug, Clone)]
pub struct DurableSpec {
    /// Shared by every instance of the stage that competes for the same messages.
    pub name: String,
    pub description: String,
    /// The subjects it receives (one or more; every one under `eval.>`).
    pub filter_subjects: Vec<String>,
    /// How long the server waits for an acknowledgement (or a progress note) before redelivering.
    pub ack_wait: Duration,
    /// Deliveries of one message before the server gives up on it; `None` for no limit.
    pub max_deliver: Option<i64>,
}

impl DurableSpec {
    fn config(&self) -> consumer::pull::Config {
        let (filter_subject, filter_subjects) = match self.filter_subjects.as_slice() {
            [one] => (one.clone(), Vec::new()),
            many => (String::new(), many.to_vec()),
        };
        consumer::pull::Config {
            durable_name: Some(self.name.clone()),
            description: Some(self.description.clone()),
            filter_subject,
            filter_subjects,
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            ack_wait: self.ack_wait,
            max_deliver: self.max_deliver.unwrap_or(-1),
            ..Default::default()
        }
    }
}

/// The filter of an existing consumer, as a sorted list whichever field holds it.
fn filters(config: &consumer::Config) -> Vec<String> {
    let mut filters: Vec<String> = if config.filter_subjects.is_empty() {
        vec![config.filter_subject.clone()]
    } else {
        config.filter_subjects.clone()
    };
    filters.retain(|subject| !subject.is_empty());
    filters.sort();
    filters
}

impl EventLog {
    /// The stage's durable pull consumer on the stream (created with the stream when missing).
    /// An existing one with another filter is updated to `spec`'s, keeping its position; the
    /// error names the consumer and how to remove it when the server refuses.
    pub async fn durable_consumer(&self, spec: &DurableSpec) -> Result<PullConsumer> {
        let problem = |reason: String| Error::Consumer {
            consumer: spec.name.clone(),
            reason,
        };
        let stream = self.ensure_stream().await?;
        let mut consumer: PullConsumer = stream
            .get_or_create_consumer(&spec.name, spec.config())
            .await
            .map_err(|error| problem(error.to_string()))?;
        let info = consumer
            .info()
            .await
            .map_err(|error| problem(error.to_string()))?;
        let mut wanted = spec.filter_subjects.clone();
        wanted.sort();
        let have = filters(&info.config);
        if have == wanted {
            return Ok(consumer);
        }
        tracing::info!(consumer = %spec.name, from = ?have, to = ?wanted, "updating the consumer's filter");
        stream
            .update_consumer(spec.config())
            .await
            .map_err(|error| {
                problem(format!(
                    "exists with filter {have:?} and could not be changed to {wanted:?} ({error}); remove it (`nats consumer rm EVAL {}`) and restart",
                    spec.name
                ))
            })
    }
}
