//! The JetStream stream `EVAL`, the one source of truth: its configuration and subjects, and a
//! thin client that every stage uses to connect, publish events and read them back in order.
//!
//! This lives beside the wire types because the stream's name, subjects, headers and
//! configuration are as much a contract between the stages as the events are.

pub mod auth;
mod campaigns;
pub mod cluster;
pub mod durability;
mod durable;
mod read;
pub use read::ConsumerRelease;
pub mod local;
pub mod ports;
pub mod roles;

pub use auth::NatsAuth;
pub use campaigns::CampaignCache;
pub use durable::{Delivery, DurableSpec, next_delivery};
pub use roles::Role;

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::event::Event;

/// The stream's name.
pub const STREAM_NAME: &str = "EVAL";
/// Every event's subject starts with `eval.`.
pub const STREAM_SUBJECTS: &str = "eval.>";
/// The log target of one `debug` line per event the stream acknowledged (`id=… subject=…
/// duplicate=…`): `RUST_LOG=eval_published=debug` lists every event a process published, which
/// the crash tests compare with the stream.
pub const PUBLISHED_LOG: &str = "eval_published";
/// Most copies of the stream `--replicas` may ask for (JetStream's own limit).
pub const MAX_REPLICAS: usize = 5;
/// How long JetStream remembers message ids to drop duplicate publishes.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// The shortest duplicate window an existing stream may have.
pub const MIN_DUPLICATE_WINDOW: Duration = Duration::from_secs(2 * 60);
/// Default URL of the NATS server.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// How long a connection attempt may take before the server counts as absent.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Publishes awaiting their acknowledgement at once.
pub const DEFAULT_IN_FLIGHT: usize = 1024;
/// The largest message a nats-server accepts unless configured otherwise (`max_payload`, 1 MiB);
/// an event must fit in one, headers included.
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
/// Room kept for the message's headers (the event id) under `max_payload`.
pub const HEADER_ROOM: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no NATS server answers at {url} ({reason}); start one with `{program} up`, or point --nats / EVAL_NATS_URL at a running server"
    , program = crate::program::name())]
    Unreachable { url: String, reason: String },
    #[error(
        "the NATS server at {url} has no JetStream ({reason}); start it with `-js`, or let `{program} up` start one"
    , program = crate::program::name())]
    NoJetStream { url: String, reason: String },
    #[error(
        "the NATS server at {url} refused to let us in ({reason}); give its credentials with --nats-user and --nats-password, --nats-token, --nats-nkey or --nats-creds (or their EVAL_NATS_* variables), or, for the server `{program} up` started, run from its data dir (--data-dir)"
    , program = crate::program::name())]
    Refused { url: String, reason: String },
    #[error("cannot connect to the NATS server at {url}: {reason}")]
    Settings { url: String, reason: String },
    #[error("stream {STREAM_NAME} on {url} has an incompatible configuration:\n{}\nfix it, or remove the stream (`nats stream rm {STREAM_NAME}`, losing its events), or use another server", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    IncompatibleStream { url: String, problems: Vec<String> },
    #[error(
        "stream {STREAM_NAME} does not exist on {url}; publish a campaign first (`{program} publish FILE`)"
    , program = crate::program::name())]
    NoStream { url: String },
    #[error("publish to {subject} failed: {reason}")]
    Publish { subject: String, reason: String },
    #[error("reading stream {STREAM_NAME} failed: {0}")]
    Read(String),
    #[error("consumer {consumer}: {reason}")]
    Consumer { consumer: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The server answered that the stream does not exist (JetStream's error code, not its text).
fn stream_not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(
        error.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(error)
            if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// [`read_event`] for a stage about to act on the event: one of a newer schema version than
/// this build's is refused (readers keep such events raw; a stage cannot know what they ask).
pub fn read_event_to_act_on(subject: &str, payload: &[u8]) -> std::result::Result<Event, String> {
    let event = read_event(subject, payload)?;
    if event.schema_version > crate::event::SCHEMA_VERSION {
        return Err(format!(
            "schema version {} is newer than this build's ({}): upgrade {} to act on it",
            event.schema_version,
            crate::event::SCHEMA_VERSION,
            crate::program::name()
        ));
    }
    Ok(event)
}

/// The subject of an event: `eval.<campaign_id>.<trial_id or _>.<EventType>`.
pub fn event_subject(campaign_id: &str, trial_id: Option<&str>, event_type: &str) -> String {
    format!(
        "eval.{campaign_id}.{}.{event_type}",
        trial_id.unwrap_or("_")
    )
}

/// The event a stored message holds, if it is the event its subject says
/// ([`Event::check_subject`]): every reader takes events from the stream through this, so that
/// one publisher cannot pass its event off as a type it may not publish.
pub fn read_event(subject: &str, payload: &[u8]) -> std::result::Result<Event, String> {
    let event = Event::from_json(payload).map_err(|error| error.to_string())?;
    event.check_subject(subject)?;
    Ok(event)
}

/// Which events to read; `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub campaign_id: Option<String>,
    pub trial_id: Option<String>,
    pub event_type: Option<String>,
}

impl EventFilter {
    /// The one subject filter that selects these events.
    pub fn subject(&self) -> String {
        let token = |value: &Option<String>| value.clone().unwrap_or_else(|| "*".to_string());
        let subject = format!(
            "eval.{}.{}.{}",
            token(&self.campaign_id),
            token(&self.trial_id),
            token(&self.event_type)
        );
        if subject == "eval.*.*.*" {
            STREAM_SUBJECTS.to_string()
        } else {
            subject
        }
    }
}

/// One event as stored in the stream.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub sequence: u64,
    pub subject: String,
    /// The `Nats-Msg-Id` header: the event id the publisher sent.
    pub msg_id: Option<String>,
    /// The message exactly as stored, unknown fields included.
    pub payload: Bytes,
    /// The envelope read from `payload`, or why it could not be read.
    pub event: std::result::Result<Event, String>,
}

/// One message as stored in the stream, its payload not read yet: for readers that read it
/// their own way (the projector, which also keeps the `data` exactly as written).
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub sequence: u64,
    pub subject: String,
    /// The `Nats-Msg-Id` header: the event id the publisher sent.
    pub msg_id: Option<String>,
    /// The message exactly as stored.
    pub payload: Bytes,
}

impl StoredMessage {
    /// `event` as the stream would store it at `sequence` (for folds fed without a server:
    /// benchmarks and tests).
    pub fn from_event(sequence: u64, event: &Event) -> StoredMessage {
        let encoded = event.encode();
        StoredMessage {
            sequence,
            subject: encoded.subject,
            msg_id: Some(encoded.id.to_string()),
            payload: encoded.payload,
        }
    }

    /// The message with its envelope read.
    pub fn into_event(self) -> StoredEvent {
        let event = read_event(&self.subject, &self.payload);
        StoredEvent {
            sequence: self.sequence,
            subject: self.subject,
            msg_id: self.msg_id,
            payload: self.payload,
            event,
        }
    }
}

/// An event as it is published: its subject, its id (the `Nats-Msg-Id`) and its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    pub subject: String,
    pub id: uuid::Uuid,
    pub payload: Bytes,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishSummary {
    /// Events stored by this publish.
    pub stored: u64,
    /// Events the stream already had (same id), dropped as duplicates.
    pub duplicates: u64,
}

/// A connection to NATS with JetStream, and the stream `EVAL`.
#[derive(Clone)]
pub struct EventLog {
    url: String,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    /// How many copies of the stream a cluster keeps, when asked (`--replicas`): the stream is
    /// created with it, and an existing one with another count is refused.
    replicas: Option<usize>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").field("url", &self.url).finish()
    }
}

impl EventLog {
    /// Connects to the server at `url`; fails within [`CONNECT_TIMEOUT`] with one line naming the
    /// URL when nothing answers there.
    pub async fn connect(url: &str) -> Result<EventLog> {
        EventLog::connect_with(url, &NatsAuth::default()).await
    }

    /// [`EventLog::connect`], presenting `auth` (and the user information of the URL, for what
    /// `auth` does not set). The log keeps, and errors show, the URL without its secrets.
    pub async fn connect_with(url: &str, auth: &NatsAuth) -> Result<EventLog> {
        let (servers, from_url) = auth::split_url(url);
        let url = servers.as_str();
        let unreachable = |reason: String| Error::Unreachable {
            url: url.to_string(),
            reason,
        };
        let options = auth
            .clone()
            .or(from_url)
            .options()
            .await
            .map_err(|reason| Error::Settings {
                url: url.to_string(),
                reason,
            })?;
        // Several servers, comma-separated, for a cluster: async-nats parses a string as one.
        let addresses = url
            .split(',')
            .map(str::trim)
            .filter(|server| !server.is_empty())
            .map(|server| {
                server
                    .parse::<async_nats::ServerAddr>()
                    .map_err(|error| Error::Settings {
                        url: url.to_string(),
                        reason: format!("{server:?} is not a NATS URL: {error}"),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let connecting = options
            .connection_timeout(CONNECT_TIMEOUT)
            .connect(addresses);
        let client = tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(1), connecting)
            .await
            .map_err(|_| unreachable("timed out".to_string()))?
            .map_err(|error| {
                use async_nats::ConnectErrorKind;
                match error.kind() {
                    ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
                        Error::Refused {
                            url: url.to_string(),
                            reason: "authorization violation".to_string(),
                        }
                    }
                    ConnectErrorKind::Tls => Error::Settings {
                        url: url.to_string(),
                        reason: format!("TLS: {error}"),
                    },
                    _ => unreachable(connect_reason(&error)),
                }
            })?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(10))
            .max_ack_inflight(DEFAULT_IN_FLIGHT * 4)
            .backpressure_on_inflight(true)
            .build(client.clone());
        durability::check_once(&client, url).await;
        Ok(EventLog {
            url: url.to_string(),
            client,
            jetstream,
            replicas: None,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// This log, creating the stream with `replicas` copies (1 to [`MAX_REPLICAS`]) and
    /// refusing an existing stream with another count; `None` creates one copy and accepts any.
    pub fn with_replicas(mut self, replicas: Option<usize>) -> EventLog {
        self.replicas = replicas;
        self
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The configuration the stream is created with, with one copy.
    pub fn stream_config() -> stream::Config {
        stream::Config {
            name: STREAM_NAME.to_string(),
            description: Some("eval: every trial's events, the one source of truth".to_string()),
            subjects: vec![STREAM_SUBJECTS.to_string()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            duplicate_window: DUPLICATE_WINDOW,
            allow_direct: true,
            ..Default::default()
        }
    }

    /// Creates the stream when it is missing; refuses, naming every difference, when a stream of
    /// that name exists with a configuration that would lose or misroute events.
    pub async fn ensure_stream(&self) -> Result<stream::Stream> {
        match self.jetstream.get_stream(STREAM_NAME).await {
            Ok(mut existing) => {
                let info = existing
                    .info()
                    .await
                    .map_err(|error| self.jetstream_error(error.to_string()))?;
                let mut problems = stream_config_problems(&info.config);
                if let Some(asked) = self.replicas
                    && info.config.num_replicas.max(1) != asked
                {
                    problems.push(format!(
                        "it keeps {} replicas, --replicas asks {asked} (change it with `nats stream edit {STREAM_NAME} --replicas {asked}`, or leave --replicas out to use it as it is)",
                        info.config.num_replicas.max(1)
                    ));
                }
                if problems.is_empty() {
                    Ok(existing)
                } else {
                    Err(Error::IncompatibleStream {
                        url: self.url.clone(),
                        problems,
                    })
                }
            }
            Err(error) if stream_not_found(&error) => {
                let replicas = self.replicas.unwrap_or(1);
                let config = stream::Config {
                    num_replicas: replicas,
                    ..Self::stream_config()
                };
                self.jetstream.create_stream(config).await.map_err(|error| {
                    let reason = error.to_string();
                    if replicas > 1 && reason.contains("replicas") {
                        Error::Read(format!(
                            "cannot create stream {STREAM_NAME} with {replicas} replicas on {}: {reason}; replicas need a JetStream cluster of at least {replicas} servers (see the README's \"Running on many machines\")",
                            self.url
                        ))
                    } else {
                        self.jetstream_error(reason)
                    }
                })
            }
            Err(error) => Err(self.jetstream_error(error.to_string())),
        }
    }

    /// The last event on one subject (`eval.<campaign>.<trial or _>.<type>`), straight from the
    /// server's subject index, without reading the stream; `None` when there is none. An
    /// unreadable event is an error.
    pub async fn last_event(
        &self,
        campaign_id: &str,
        trial_id: Option<&str>,
        event_type: &str,
    ) -> Result<Option<Event>> {
        let subject = event_subject(campaign_id, trial_id, event_type);
        let stored = match self
            .stream()
            .await?
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(stored) => stored,
            Err(error)
                if matches!(
                    error.kind(),
                    jetstream::stream::LastRawMessageErrorKind::NoMessageFound
                ) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(Error::Read(format!("{subject}: {error}"))),
        };
        read_event(&stored.subject, &stored.payload)
            .map(Some)
            .map_err(|error| Error::Read(format!("{subject}: {error}")))
    }

    /// The stream, which must exist already.
    pub async fn stream(&self) -> Result<stream::Stream> {
        match self.jetstream.get_stream(STREAM_NAME).await {
            Ok(stream) => Ok(stream),
            Err(error) if stream_not_found(&error) => Err(Error::NoStream {
                url: self.url.clone(),
            }),
            Err(error) => Err(self.jetstream_error(error.to_string())),
        }
    }

    fn jetstream_error(&self, reason: String) -> Error {
        if reason.contains("no responders") || reason.contains("timed out") {
            Error::NoJetStream {
                url: self.url.clone(),
                reason,
            }
        } else {
            Error::Read(reason)
        }
    }

    /// Publishes `events` in order with their ids as `Nats-Msg-Id`, keeping up to `in_flight`
    /// acknowledgements outstanding, and returns once every one is acknowledged. `on_ack` runs
    /// after each acknowledgement (for progress bars).
    pub async fn publish_all(
        &self,
        events: impl IntoIterator<Item = Event>,
        in_flight: usize,
        on_ack: impl FnMut(u64),
    ) -> Result<PublishSummary> {
        self.publish_encoded(
            events.into_iter().map(|event| event.encode()),
            in_flight,
            on_ack,
        )
        .await
    }

    /// [`EventLog::publish_all`] for events already encoded, so that a stage can encode them
    /// while it does other work and keep only their bytes.
    pub async fn publish_encoded(
        &self,
        events: impl IntoIterator<Item = EncodedEvent>,
        in_flight: usize,
        mut on_ack: impl FnMut(u64),
    ) -> Result<PublishSummary> {
        let mut summary = PublishSummary::default();
        let mut pending = FuturesUnordered::new();
        let mut acked = 0u64;
        for event in events {
            while pending.len() >= in_flight.max(1) {
                let next = pending.next().await.expect("pending is not empty");
                summary.record(next)?;
                acked += 1;
                on_ack(acked);
            }
            let EncodedEvent {
                subject,
                id,
                payload,
            } = event;
            let ack = self
                .send(&subject, id, payload)
                .await
                .map_err(|reason| Error::Publish {
                    subject: subject.clone(),
                    reason,
                })?;
            pending.push(async move {
                let acked = ack.await.map(|ack| ack.duplicate);
                match acked {
                    Ok(duplicate) => {
                        tracing::debug!(target: PUBLISHED_LOG, %id, %subject, duplicate, "stored");
                        Ok(duplicate)
                    }
                    Err(error) => Err(Error::Publish {
                        subject,
                        reason: error.to_string(),
                    }),
                }
            });
        }
        while let Some(next) = pending.next().await {
            summary.record(next)?;
            acked += 1;
            on_ack(acked);
        }
        Ok(summary)
    }

    /// Publishes one event and waits for its acknowledgement: it is durable when this returns.
    pub async fn publish(&self, event: &Event) -> Result<PublishSummary> {
        self.publish_all([event.clone()], 1, |_| {}).await
    }

    async fn send(
        &self,
        subject: &str,
        id: uuid::Uuid,
        payload: Bytes,
    ) -> std::result::Result<jetstream::context::PublishAckFuture, String> {
        let message = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(id.to_string());
        self.jetstream
            .send_publish(subject.to_string(), message)
            .await
            .map_err(|error| error.to_string())
    }

    /// The distinct values of one subject token among the stored subjects matching `filter`,
    /// read from the server's subject index without reading any message. `token` counts from 0
    /// (`eval`), so 1 is the campaign id and 2 the trial id.
    pub async fn subject_tokens(&self, filter: &str, token: usize) -> Result<Vec<String>> {
        let stream = self.stream().await?;
        let mut subjects = stream
            .info_with_subjects(filter)
            .await
            .map_err(|error| Error::Read(error.to_string()))?;
        let mut values = std::collections::BTreeSet::new();
        while let Some(entry) = subjects.next().await {
            let (subject, _count) = entry.map_err(|error| Error::Read(error.to_string()))?;
            if let Some(value) = subject.split('.').nth(token) {
                values.insert(value.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }

    /// Every campaign id in the log (the server matches every subject of the stream: costly on
    /// a log of millions of events).
    pub async fn campaign_ids(&self) -> Result<Vec<String>> {
        self.subject_tokens("eval.*.*.*", 1).await
    }

    /// Every trial id in the log, of one campaign or of all.
    pub async fn trial_ids(&self, campaign_id: Option<&str>) -> Result<Vec<String>> {
        let filter = format!("eval.{}.*.*", campaign_id.unwrap_or("*"));
        let mut ids = self.subject_tokens(&filter, 2).await?;
        ids.retain(|id| id != "_");
        Ok(ids)
    }
}

impl PublishSummary {
    fn record(&mut self, acked: Result<bool>) -> Result<()> {
        if acked? {
            self.duplicates += 1;
        } else {
            self.stored += 1;
        }
        Ok(())
    }
}

fn connect_reason(error: &async_nats::ConnectError) -> String {
    use async_nats::ConnectErrorKind;
    match error.kind() {
        ConnectErrorKind::Io => {
            let text = error.to_string();
            if text.contains("refused") {
                "connection refused".to_string()
            } else {
                text
            }
        }
        ConnectErrorKind::TimedOut => "timed out".to_string(),
        _ => error.to_string(),
    }
}

/// What in an existing stream's configuration would lose or misroute events.
pub fn stream_config_problems(config: &stream::Config) -> Vec<String> {
    let mut problems = Vec::new();
    if !config
        .subjects
        .iter()
        .any(|s| s == STREAM_SUBJECTS || s == ">")
    {
        problems.push(format!(
            "subjects are {:?}, must include {STREAM_SUBJECTS:?}",
            config.subjects
        ));
    }
    if config.storage != stream::StorageType::File {
        problems.push("storage is memory, must be file (events must survive a restart)".into());
    }
    if config.retention != stream::RetentionPolicy::Limits {
        problems.push(format!(
            "retention is {:?}, must be limits (work-queue or interest retention deletes events once read)",
            config.retention
        ));
    }
    if config.duplicate_window < MIN_DUPLICATE_WINDOW {
        problems.push(format!(
            "duplicate window is {}s, must be at least {}s",
            config.duplicate_window.as_secs(),
            MIN_DUPLICATE_WINDOW.as_secs()
        ));
    }
    if !config.max_age.is_zero() {
        problems.push(format!(
            "max age is {}s, must be unlimited (the log is the only copy of the trials)",
            config.max_age.as_secs()
        ));
    }
    for (what, limit) in [
        ("max messages", config.max_messages),
        ("max bytes", config.max_bytes),
        ("max messages per subject", config.max_messages_per_subject),
    ] {
        if limit > 0 {
            problems.push(format!(
                "{what} is {limit}, must be unlimited (old events would be deleted)"
            ));
        }
    }
    if config.sealed {
        problems.push("the stream is sealed: nothing can be published".to_string());
    }
    problems
}

/// The next message of a durable pull consumer, one at a time (so that no message waits
/// unacknowledged in a local buffer while the stage is busy), waiting at most a second; `None` when there is
/// none yet or the fetch failed (logged, naming `what` was fetched; after a failure it waits a
/// second so that a loop around it does not spin).
pub async fn next_message(
    consumer: &consumer::PullConsumer,
    what: &str,
) -> Option<jetstream::Message> {
    let batch = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(1))
        .messages()
        .await;
    match batch {
        Ok(mut batch) => match batch.next().await {
            Some(Ok(message)) => Some(message),
            // A failed fetch (`503`: no server answers for the stream while a cluster elects
            // its leader) comes back at once: wait before the next, or a loop around this spins.
            Some(Err(error)) => {
                tracing::warn!(%error, "fetching {what} failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                None
            }
            None => None,
        },
        Err(error) => {
            tracing::warn!(%error, "fetching {what} failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}
