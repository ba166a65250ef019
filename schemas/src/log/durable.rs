//! The stages' durable consumers, in one place: set up (created on first use, reused when their
//! filter is the one asked for, and brought to it — the server updates a consumer's filter in
//! place, keeping its position — when an older version of the stage left another one), messages
//! taken one at a time for free slots ([`next_delivery`]), and the answers ([`Delivery`]: ack,
//! nak with a delay, term, the AckProgress ticker), each failure logged.

use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{self, PullConsumer};

use super::{Error, EventLog, Result};
use crate::event::{Event, Producer};

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
        let max_deliver = spec.max_deliver.unwrap_or(-1);
        // The server reports "unlimited" as -1 or 0.
        let same_limit = info.config.max_deliver == max_deliver
            || (max_deliver < 0 && info.config.max_deliver <= 0);
        if have == wanted && same_limit {
            return Ok(consumer);
        }
        tracing::info!(consumer = %spec.name, from = ?have, to = ?wanted, max_deliver, "updating the consumer");
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

/// One message taken from a stage's durable consumer, and what the stage answers: every reply is
/// logged when it fails (the server then redelivers, and stages are idempotent).
#[derive(Debug)]
pub struct Delivery {
    message: async_nats::jetstream::Message,
    /// The AckProgress ticker, while the stage works on it.
    progress: Option<(
        tokio_util::sync::CancellationToken,
        tokio::task::JoinHandle<()>,
    )>,
}

impl Delivery {
    pub fn message(&self) -> &async_nats::jetstream::Message {
        &self.message
    }

    /// How many times the server delivered it (1 the first time).
    pub fn attempt(&self) -> u64 {
        self.message.info().map_or(1, |info| info.delivered as u64)
    }

    /// The message's stream sequence, when the server said it.
    pub fn stream_sequence(&self) -> Option<u64> {
        self.message.info().ok().map(|info| info.stream_sequence)
    }

    /// Tells the server every `every` that the stage is still at work on it (AckProgress), until
    /// the answer.
    pub fn keep_alive(&mut self, every: std::time::Duration) {
        let stop = tokio_util::sync::CancellationToken::new();
        let (message, stopped) = (self.message.clone(), stop.clone());
        let ticker = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => reply(&message, AckKind::Progress, "progress").await,
                    () = stopped.cancelled() => return,
                }
            }
        });
        self.progress = Some((stop, ticker));
    }

    async fn answer(mut self, kind: AckKind, what: &str) {
        if let Some((stop, ticker)) = self.progress.take() {
            stop.cancel();
            let _ = ticker.await;
        }
        reply(&self.message, kind, what).await;
    }

    /// Done with it.
    pub async fn ack(self) {
        self.answer(AckKind::Ack, "acknowledgement").await;
    }

    /// Done with it, once the server confirms the acknowledgement (for work that must not run
    /// twice once reported done).
    pub async fn double_ack(mut self) {
        if let Some((stop, ticker)) = self.progress.take() {
            stop.cancel();
            let _ = ticker.await;
        }
        if let Err(error) = self.message.double_ack().await {
            tracing::warn!(subject = %self.message.subject, %error, "acknowledgement failed");
        }
    }

    /// Hands it back, to be delivered again after `delay` (at once with `None`).
    pub async fn nak(self, delay: Option<std::time::Duration>) {
        self.answer(AckKind::Nak(delay), "negative acknowledgement")
            .await;
    }

    /// Never to be delivered again: a message the stage (`producer`, reading through the
    /// consumer `consumer`) cannot act on. `why` is logged and recorded in the log as an
    /// [`EventRejected`](crate::event::EventRejected) under the message's own campaign and trial
    /// (its id derived from the consumer and the message's sequence, so that a rejection made
    /// twice is stored once), then the message is terminated, so that it does not loop.
    pub async fn reject(self, log: &EventLog, producer: &Producer, consumer: &str, why: &str) {
        tracing::warn!(subject = %self.message.subject, why, "message rejected");
        let subject = self.message.subject.to_string();
        let sequence = self.stream_sequence();
        let mut tokens = subject.split('.').skip(1);
        let campaign = tokens
            .next()
            .filter(|token| !token.is_empty())
            .unwrap_or("_");
        let trial = tokens.next().filter(|token| *token != "_");
        let rejected = crate::event::EventRejected {
            consumer: consumer.to_string(),
            subject: subject.clone(),
            stream_sequence: sequence,
            reason: why.to_string(),
        };
        let id = crate::ids::derived_event_id(
            campaign,
            &format!("EventRejected:{consumer}"),
            sequence.unwrap_or_default(),
        );
        let event = Event::new(producer, campaign, trial, rejected).with_id(id);
        if let Err(error) = log.publish(&event).await {
            tracing::warn!(%subject, %error, "the rejection could not be recorded");
        }
        self.answer(AckKind::Term, "termination").await;
    }
}

async fn reply(message: &async_nats::jetstream::Message, kind: AckKind, what: &str) {
    if let Err(error) = message.ack_with(kind).await {
        tracing::warn!(subject = %message.subject, %error, "{what} failed");
    }
}

/// Takes the next message for a free slot: waits for one of `slots` without polling, then
/// fetches a single message (so a busy stage leaves the rest to its peers). `None` on shutdown;
/// a fetch that found nothing or failed (logged) tries again.
pub async fn next_delivery(
    consumer: &PullConsumer,
    slots: &std::sync::Arc<tokio::sync::Semaphore>,
    shutdown: &tokio_util::sync::CancellationToken,
    what: &str,
) -> Option<(Delivery, tokio::sync::OwnedSemaphorePermit)> {
    let permit = tokio::select! {
        biased;
        () = shutdown.cancelled() => return None,
        permit = slots.clone().acquire_owned() => permit.ok()?,
    };
    loop {
        let message = tokio::select! {
            biased;
            () = shutdown.cancelled() => return None,
            message = super::next_message(consumer, what) => message,
        };
        if let Some(message) = message {
            let delivery = Delivery {
                message,
                progress: None,
            };
            return Some((delivery, permit));
        }
    }
}
