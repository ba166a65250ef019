//! Reading the stream: every reader's ordered consumer, deleted as soon as it is read (see
//! [`EventLog::ordered_consumer`]), and the events or raw messages a filter selects, in stream
//! order, to the end or following.

use async_nats::jetstream::{consumer, stream};
use futures::Stream;
use futures::stream::StreamExt;

use super::{Error, EventFilter, EventLog, Result, STREAM_SUBJECTS, StoredEvent, StoredMessage};

impl EventLog {
    /// Reads the events that `filter` selects, in stream order. Without `follow` the stream ends
    /// at the last event stored when reading began; with it, it waits for new events.
    pub async fn read(
        &self,
        filter: &EventFilter,
        follow: bool,
    ) -> Result<impl Stream<Item = Result<StoredEvent>> + use<>> {
        self.read_from(filter, 1, follow).await
    }

    /// [`EventLog::read`] from stream sequence `start_sequence` on (1 is the first).
    pub async fn read_from(
        &self,
        filter: &EventFilter,
        start_sequence: u64,
        follow: bool,
    ) -> Result<impl Stream<Item = Result<StoredEvent>> + use<>> {
        let messages = self
            .read_messages_from(filter, start_sequence, follow)
            .await?;
        Ok(messages.map(|message| message.map(StoredMessage::into_event)))
    }

    /// An ordered consumer of the stream (`filter_subject` empty: every subject), deleted when
    /// the returned guard drops. An ephemeral consumer would otherwise stay for its inactive
    /// threshold (30 s) after its last read: a replay of thousands of campaigns, one consumer
    /// each, piles them up until the server refuses more, and each one lingering is matched
    /// against every message stored meanwhile.
    pub async fn ordered_consumer(
        &self,
        filter_subject: String,
        deliver_policy: consumer::DeliverPolicy,
    ) -> Result<(
        consumer::Consumer<consumer::pull::OrderedConfig>,
        ConsumerRelease,
    )> {
        let stream = self.stream().await?;
        let name = format!("eval-read-{}", uuid::Uuid::now_v7().simple());
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                name: Some(name.clone()),
                filter_subject,
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|error| Error::Read(error.to_string()))?;
        Ok((consumer, ConsumerRelease { stream, name }))
    }

    /// [`EventLog::read_from`] without reading the payloads.
    pub async fn read_messages_from(
        &self,
        filter: &EventFilter,
        start_sequence: u64,
        follow: bool,
    ) -> Result<impl Stream<Item = Result<StoredMessage>> + use<>> {
        let deliver_policy = if start_sequence <= 1 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence { start_sequence }
        };
        // The whole stream is read without a filter: nats-server 2.9 miscounts the pending
        // messages of a filter that starts past the first sequence.
        let subject = filter.subject();
        let filter_subject = if subject == STREAM_SUBJECTS {
            String::new()
        } else {
            subject
        };
        let (mut consumer, release) = self
            .ordered_consumer(filter_subject, deliver_policy)
            .await?;
        let initially_pending = consumer
            .info()
            .await
            .map_err(|error| Error::Read(error.to_string()))?
            .num_pending;
        let messages = consumer
            .messages()
            .await
            .map_err(|error| Error::Read(error.to_string()))?;
        // Without `follow`, the stream ends after the messages pending at creation: counted, as
        // the `pending` of each message is not reliable once the consumer starts past the first
        // sequence.
        let remaining = if follow { u64::MAX } else { initially_pending };
        Ok(futures::stream::unfold(
            (messages, remaining, release),
            move |(mut messages, remaining, release)| async move {
                if remaining == 0 {
                    return None;
                }
                let next = messages.next().await?;
                let item = next
                    .map_err(|error| Error::Read(error.to_string()))
                    .and_then(|message| {
                        let info = message
                            .info()
                            .map_err(|error| Error::Read(error.to_string()))?;
                        let stored = StoredMessage {
                            sequence: info.stream_sequence,
                            subject: message.subject.to_string(),
                            msg_id: message
                                .headers
                                .as_ref()
                                .and_then(|headers| headers.get("Nats-Msg-Id"))
                                .map(|id| id.to_string()),
                            payload: message.payload.clone(),
                        };
                        Ok(stored)
                    });
                match item {
                    Ok(stored) => {
                        Some((Ok(stored), (messages, remaining.saturating_sub(1), release)))
                    }
                    Err(error) => Some((Err(error), (messages, 0, release))),
                }
            },
        ))
    }
}

/// Deletes its ordered consumer when dropped (see [`EventLog::ordered_consumer`]); outside a
/// Tokio runtime the server removes it after its inactive threshold instead.
pub struct ConsumerRelease {
    stream: stream::Stream,
    name: String,
}

impl Drop for ConsumerRelease {
    fn drop(&mut self) {
        let (stream, name) = (self.stream.clone(), std::mem::take(&mut self.name));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // A consumer the server already removed (or a server gone) needs nothing more.
                let _ = stream.delete_consumer(&name).await;
            });
        }
    }
}
