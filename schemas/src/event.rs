//! The event envelope and the one closed enum of lifecycle events, each with typed `data`.
//!
//! Readers ignore fields they do not know (no `deny_unknown_fields` here, unlike the files a user
//! writes) and keep events of types they do not know, or whose data they cannot read, as raw JSON
//! in [`EventData::Other`], so that nothing read from the log is ever dropped.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::campaign::{CampaignFile, ChaosSpec, ChaosType, SubjectKind, TrialSpec, VariantFile};

/// Version of the envelope and event data layout written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// A UTC instant with microsecond precision, written as RFC 3339 (`2026-11-25T16:15:39.123456Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[schemars(transparent)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp::from_datetime(Utc::now())
    }

    /// Truncates to microseconds, the precision of the log.
    pub fn from_datetime(instant: DateTime<Utc>) -> Timestamp {
        let micros = instant.timestamp_micros();
        Timestamp(DateTime::from_timestamp_micros(micros).unwrap_or(instant))
    }

    pub fn from_unix_micros(micros: i64) -> Option<Timestamp> {
        DateTime::from_timestamp_micros(micros).map(Timestamp)
    }

    pub fn unix_micros(self) -> i64 {
        self.0.timestamp_micros()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor of `&str`, so that the text is read where it is, without a copy.
        struct TimestampVisitor;
        impl serde::de::Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an RFC 3339 time")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
                DateTime::parse_from_rfc3339(text)
                    .map(|instant| Timestamp::from_datetime(instant.with_timezone(&Utc)))
                    .map_err(|error| E::custom(format!("bad timestamp {text:?}: {error}")))
            }
        }
        deserializer.deserialize_str(TimestampVisitor)
    }
}

/// Which stage on which host wrote an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Producer {
    /// `publish`, `worker`, `capture`, `score`, `import`, …
    pub stage: String,
    pub host: String,
}

impl Producer {
    /// The producer for `stage` on this host.
    pub fn here(stage: &str) -> Producer {
        Producer {
            stage: stage.to_string(),
            host: host_name(),
        }
    }
}

/// The name of this host as events name it: `$EVAL_HOST` when set (several harness hosts
/// simulated on one machine, or a name that outlives the machine's), else the system's host
/// name. `ChaosInjected.operator_host` and the capture stage that takes a trial compare these.
pub fn host_name() -> String {
    std::env::var("EVAL_HOST")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|name| name.into_string().ok())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// One event of the log: the envelope and its typed data.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// UUIDv7; also the `Nats-Msg-Id` header, so duplicate publishes are dropped.
    pub id: Uuid,
    pub schema_version: u32,
    pub campaign_id: String,
    /// `None` for campaign-wide events (`_` in the subject).
    pub trial_id: Option<String>,
    pub occurred_at: Timestamp,
    pub producer: Producer,
    pub data: EventData,
}

/// The envelope as it is written, borrowing every field.
#[derive(Serialize)]
struct WireEnvelope<Text, Who, Data> {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: Text,
    #[serde(default = "default_schema_version")]
    schema_version: u32,
    campaign_id: Text,
    #[serde(default)]
    trial_id: Option<Text>,
    occurred_at: Timestamp,
    producer: Who,
    data: Data,
}

/// The envelope as it is read: its text borrowed from the message where it has no escapes, and
/// its data raw.
#[derive(Deserialize)]
struct WireEnvelopeIn<'a> {
    id: Uuid,
    #[serde(rename = "type", borrow)]
    event_type: Cow<'a, str>,
    #[serde(default = "default_schema_version")]
    schema_version: u32,
    #[serde(borrow)]
    campaign_id: Cow<'a, str>,
    #[serde(default, borrow)]
    trial_id: Option<Cow<'a, str>>,
    occurred_at: Timestamp,
    producer: Producer,
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

/// An event read in one pass when its `type` comes before its `data`; fails on anything else.
struct OnePass(Event);

/// A string borrowed from the message when it has no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum EnvelopeField {
    Id,
    #[serde(rename = "type")]
    Type,
    SchemaVersion,
    CampaignId,
    TrialId,
    OccurredAt,
    Producer,
    Data,
    #[serde(other)]
    Unknown,
}

impl<'de> Deserialize<'de> for OnePass {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OnePassVisitor;
        impl<'de> serde::de::Visitor<'de> for OnePassVisitor {
            type Value = OnePass;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an event envelope")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OnePass, A::Error> {
                use serde::de::Error;
                fn once<T, E: Error>(
                    slot: &mut Option<T>,
                    value: T,
                    name: &'static str,
                ) -> Result<(), E> {
                    match slot.replace(value) {
                        Some(_) => Err(E::duplicate_field(name)),
                        None => Ok(()),
                    }
                }
                let (mut id, mut event_type, mut schema_version) = (None, None::<Text<'de>>, None);
                let (mut campaign_id, mut trial_id, mut occurred_at) = (None, None, None);
                let (mut producer, mut data) = (None, None);
                while let Some(field) = map.next_key::<EnvelopeField>()? {
                    match field {
                        EnvelopeField::Id => once(&mut id, map.next_value::<Uuid>()?, "id")?,
                        EnvelopeField::Type => once(&mut event_type, map.next_value()?, "type")?,
                        EnvelopeField::SchemaVersion => once(
                            &mut schema_version,
                            map.next_value::<u32>()?,
                            "schema_version",
                        )?,
                        EnvelopeField::CampaignId => once(
                            &mut campaign_id,
                            map.next_value::<Text<'de>>()?,
                            "campaign_id",
                        )?,
                        EnvelopeField::TrialId => once(
                            &mut trial_id,
                            map.next_value::<Option<Text<'de>>>()?,
                            "trial_id",
                        )?,
                        EnvelopeField::OccurredAt => once(
                            &mut occurred_at,
                            map.next_value::<Timestamp>()?,
                            "occurred_at",
                        )?,
                        EnvelopeField::Producer => {
                            once(&mut producer, map.next_value::<Producer>()?, "producer")?
                        }
                        EnvelopeField::Data => {
                            let Some(Text(type_name)) = &event_type else {
                                return Err(A::Error::custom("data before type"));
                            };
                            let parsed = EventData::next_typed(type_name, &mut map)?;
                            once(&mut data, parsed, "data")?;
                        }
                        EnvelopeField::Unknown => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(OnePass(Event {
                    id: id.ok_or_else(|| A::Error::missing_field("id"))?,
                    schema_version: schema_version.unwrap_or(SCHEMA_VERSION),
                    campaign_id: campaign_id
                        .ok_or_else(|| A::Error::missing_field("campaign_id"))?
                        .0
                        .into_owned(),
                    trial_id: trial_id.flatten().map(|text| text.0.into_owned()),
                    occurred_at: occurred_at
                        .ok_or_else(|| A::Error::missing_field("occurred_at"))?,
                    producer: producer.ok_or_else(|| A::Error::missing_field("producer"))?,
                    data: data.ok_or_else(|| A::Error::missing_field("data"))?,
                }))
            }
        }
        deserializer.deserialize_map(OnePassVisitor)
    }
}

fn default_schema_version() -> u32 {
    SCHEMA_VERSION
}

impl Event {
    /// A new event with a fresh UUIDv7 id, occurring now.
    pub fn new(
        producer: &Producer,
        campaign_id: &str,
        trial_id: Option<&str>,
        data: impl Into<EventData>,
    ) -> Event {
        let occurred_at = Timestamp::now();
        Event {
            id: Uuid::now_v7(),
            schema_version: SCHEMA_VERSION,
            campaign_id: campaign_id.to_string(),
            trial_id: trial_id.map(str::to_string),
            occurred_at,
            producer: producer.clone(),
            data: data.into(),
        }
    }

    /// Replaces the id, for events whose id is derived so that a re-publish is dropped.
    pub fn with_id(mut self, id: Uuid) -> Event {
        self.id = id;
        self
    }

    pub fn event_type(&self) -> &str {
        self.data.type_name()
    }

    /// The NATS subject: `eval.<campaign_id>.<trial_id or _>.<EventType>`.
    pub fn subject(&self) -> String {
        crate::log::event_subject(
            &self.campaign_id,
            self.trial_id.as_deref(),
            self.event_type(),
        )
    }

    /// Whether `subject` is this event's own subject ([`Event::subject`]), checked without
    /// building it. Who may publish on which subject is what NATS permissions decide, so an event
    /// stored under another type's, trial's or campaign's subject is not that event.
    pub fn check_subject(&self, subject: &str) -> Result<(), String> {
        let own = subject
            .strip_prefix("eval.")
            .and_then(|rest| rest.strip_prefix(self.campaign_id.as_str()))
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_prefix(self.trial_id.as_deref().unwrap_or("_")))
            .and_then(|rest| rest.strip_prefix('.'))
            == Some(self.event_type());
        if own {
            Ok(())
        } else {
            Err(format!(
                "stored under {subject}, which is not the subject of this {} (campaign {}, trial {}): refused",
                self.event_type(),
                self.campaign_id,
                self.trial_id.as_deref().unwrap_or("none")
            ))
        }
    }

    /// The event as it is published: subject, id and JSON.
    pub fn encode(&self) -> crate::log::EncodedEvent {
        crate::log::EncodedEvent {
            subject: self.subject(),
            id: self.id,
            // Exactly as long as the JSON: encoded events may be held by the thousand.
            payload: {
                let mut json = self.to_json();
                json.shrink_to_fit();
                json.into()
            },
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let wire = WireEnvelope {
            id: self.id,
            event_type: self.event_type(),
            schema_version: self.schema_version,
            campaign_id: &self.campaign_id,
            trial_id: self.trial_id.as_deref(),
            occurred_at: self.occurred_at,
            producer: &self.producer,
            data: &self.data,
        };
        serde_json::to_vec(&wire).expect("events serialize to JSON")
    }

    /// Reads an envelope. Fails only when the envelope itself is unreadable; data of an unknown
    /// type, or data that does not match its type, is kept as [`EventData::Other`].
    pub fn from_json(bytes: &[u8]) -> Result<Event, serde_json::Error> {
        // This is the hot path of every reader. Writers put `type` before `data`, so the data is
        // usually parsed in the same pass, straight into its typed struct. Anything unusual
        // (data first, data that does not match its type, a broken envelope) is read again the
        // careful way, which keeps the data raw until its type is known.
        if let Ok(event) = serde_json::from_slice::<OnePass>(bytes) {
            return Ok(event.0);
        }
        Event::from_json_with_data(bytes).map(|(event, _)| event)
    }

    /// [`Event::from_json`] the careful way, also returning the `data` exactly as written (for
    /// readers that keep it raw, such as the projector's `events` table).
    pub fn from_json_with_data(
        bytes: &[u8],
    ) -> Result<(Event, &serde_json::value::RawValue), serde_json::Error> {
        let wire: WireEnvelopeIn<'_> = serde_json::from_slice(bytes)?;
        let event = Event {
            id: wire.id,
            schema_version: wire.schema_version,
            campaign_id: wire.campaign_id.into_owned(),
            trial_id: wire.trial_id.map(Cow::into_owned),
            occurred_at: wire.occurred_at,
            producer: wire.producer,
            data: EventData::from_parts(&wire.event_type, wire.data),
        };
        Ok((event, wire.data))
    }
}

/// An event whose type this build does not know, or whose data it could not read: kept whole.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherEvent {
    pub type_name: String,
    pub data: serde_json::Value,
    /// Why the data of a known type could not be read; `None` for an unknown type.
    pub read_error: Option<String>,
}

macro_rules! events {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// The data of an event, by type. The closed set of lifecycle events, plus the events
        /// this build cannot read, kept raw.
        #[derive(Debug, Clone, PartialEq)]
        pub enum EventData {
            $( $(#[$doc])* $name($name), )*
            Other(OtherEvent),
        }

        /// Every event type this build knows, in lifecycle order.
        pub const EVENT_TYPES: &[&str] = &[$( stringify!($name) ),*];

        impl EventData {
            pub fn type_name(&self) -> &str {
                match self {
                    $( EventData::$name(_) => stringify!($name), )*
                    EventData::Other(other) => &other.type_name,
                }
            }

            /// The next value of `map` as the data of an event of type `type_name`; an unknown
            /// type's data is kept raw.
            fn next_typed<'de, A: serde::de::MapAccess<'de>>(
                type_name: &str,
                map: &mut A,
            ) -> Result<EventData, A::Error> {
                match type_name {
                    $( stringify!($name) => map.next_value::<$name>().map(EventData::$name), )*
                    _ => Ok(EventData::Other(OtherEvent {
                        type_name: type_name.to_string(),
                        data: map.next_value()?,
                        read_error: None,
                    })),
                }
            }

            fn from_parts(type_name: &str, data: &serde_json::value::RawValue) -> EventData {
                let raw = || serde_json::from_str(data.get()).unwrap_or(serde_json::Value::Null);
                let parsed = match type_name {
                    $( stringify!($name) => serde_json::from_str::<$name>(data.get())
                        .map(EventData::$name), )*
                    _ => {
                        return EventData::Other(OtherEvent {
                            type_name: type_name.to_string(),
                            data: raw(),
                            read_error: None,
                        })
                    }
                };
                parsed.unwrap_or_else(|error| EventData::Other(OtherEvent {
                    type_name: type_name.to_string(),
                    data: raw(),
                    read_error: Some(error.to_string()),
                }))
            }
        }

        /// Serializes as the event's `data`, without an intermediate JSON value.
        impl Serialize for EventData {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( EventData::$name(data) => data.serialize(serializer), )*
                    EventData::Other(other) => other.data.serialize(serializer),
                }
            }
        }

        $( impl From<$name> for EventData {
            fn from(data: $name) -> EventData {
                EventData::$name(data)
            }
        } )*

        /// The shape of every known event on the wire, for the generated JSON Schema only.
        #[derive(JsonSchema)]
        #[serde(tag = "type", content = "data")]
        #[allow(dead_code)]
        enum KnownEventSchema {
            $( $(#[$doc])* $name($name), )*
        }
    };
}

events! {
    /// A campaign file was validated, expanded and published.
    CampaignPublished,
    /// One trial of a campaign's matrix, waiting for a worker.
    TrialRequested,
    /// A worker took the trial.
    TrialStarted,
    /// The subject was reset to a fresh cluster with its data wiped.
    SubjectReset,
    /// The subject answered as healthy.
    SubjectHealthy,
    /// A snapshot of the subject, before injection (`initial`) or at the end (`final`).
    StateCaptured,
    /// A fault was injected; carries everything its cleanup needs.
    ChaosInjected,
    /// The operator opened a ticket for the trial's subject.
    TicketOpened,
    /// The operator's agent started a session on a ticket.
    AgentSessionStarted,
    /// One entry of the agent's log: reasoning, a tool call or a tool result.
    AgentLogRecorded,
    /// The operator resolved the ticket.
    TicketResolved,
    /// The capture stage read a trial's operator.db for the last time, after the trial ended.
    OperatorCaptureFinished,
    /// The fault's cleanup ran and the subject is back to its configuration.
    ChaosCleanedUp,
    /// The fault's cleanup failed; the record says what is left behind.
    ChaosCleanupFailed,
    /// The trial ended.
    TrialFinished,
    /// A scorer graded a finished trial.
    TrialScored,
    /// Every trial of the campaign has finished.
    CampaignFinished,
    /// A stage refused a message it cannot act on (unreadable, of a newer schema version,
    /// naming a subject or runtime this build does not know, or a file it may not read), and
    /// acknowledged it so that it is not delivered again.
    EventRejected,
}

/// The JSON Schema of an event on the wire: the envelope with `type` and typed `data`.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct EventSchema {
    /// UUIDv7, also sent as the `Nats-Msg-Id` header.
    id: Uuid,
    schema_version: u32,
    campaign_id: String,
    /// Absent or null for campaign-wide events.
    trial_id: Option<String>,
    occurred_at: Timestamp,
    producer: Producer,
    #[serde(flatten)]
    body: KnownEventSchema,
}

/// A resolved variant, as the campaign used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResolvedVariant {
    /// The variant's file, relative to where `evalctl publish` ran.
    pub file: String,
    pub variant: VariantFile,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CampaignPublished {
    pub name: String,
    /// The campaign file's path as given to `evalctl publish`.
    pub file_name: String,
    /// The campaign file's text, byte for byte.
    pub file_text: String,
    /// The file's content after validation, with every default filled in.
    pub campaign: CampaignFile,
    /// The variants the trials use, in campaign order.
    pub variants: Vec<ResolvedVariant>,
    /// The campaign seed: the file's `seed`, or the one drawn at publish time.
    pub seed: u64,
    pub n_trials: u32,
    pub n_baseline_trials: u32,
}

impl CampaignPublished {
    /// The variant a trial of this campaign runs, as the campaign resolved it: its `variant` by
    /// name (or the campaign's only variant); `None` for a baseline.
    pub fn variant_of(&self, trial: &TrialSpec) -> Option<&ResolvedVariant> {
        let name = trial.variant.as_deref().filter(|_| !trial.baseline)?;
        self.variants
            .iter()
            .find(|resolved| resolved.variant.name == name)
            .or_else(|| (self.variants.len() == 1).then(|| &self.variants[0]))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrialRequested {
    pub trial: TrialSpec,
    /// How many trials of this campaign may run at once.
    pub parallel: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrialStarted {
    /// The worker that took the trial.
    pub worker: String,
    /// Delivery attempt of the `TrialRequested` message, from 1.
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubjectReset {
    pub subject: SubjectKind,
    /// The runtime's name for the instance, such as the lab's name.
    pub instance: String,
    /// Client endpoints of the fresh cluster.
    pub endpoints: Vec<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubjectHealthy {
    /// Time from the reset to the first healthy answer.
    pub after_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapturePhase {
    Initial,
    Final,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StateCaptured {
    pub phase: CapturePhase,
    /// Whether the subject was healthy when captured.
    pub healthy: bool,
    /// The subject's snapshot: members or stores and their state, leader, key counts or regions,
    /// data dir usage.
    pub state: serde_json::Value,
    /// At the final capture of a control trial (`chaos: none`): the health checks made while the
    /// operator was watched. Absent for other trials and captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_health: Option<WatchHealth>,
}

/// The health checks of a control trial's watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WatchHealth {
    /// Checks made, one every 250 ms or so.
    pub n_checks: u32,
    /// Checks that found the subject unhealthy.
    pub n_unhealthy: u32,
    /// Why the first unhealthy check said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_unhealthy_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChaosInjected {
    /// The worker that injected the fault and owns its cleanup.
    pub worker: String,
    pub chaos: ChaosSpec,
    /// The node the fault hit, after resolving `random`, `leader` or `follower`; `None` for a
    /// control trial (`chaos: none`), whose "injection" starts the watch and breaks nothing.
    pub target: Option<String>,
    /// Everything the cleanup needs (pids, rule handles, file paths), written before the fault is
    /// acknowledged so that another worker can clean up after a crash; an imported trial's
    /// metadata in its place is kept as it is.
    pub cleanup: crate::cleanup::Cleanup,
    /// The absolute path of the trial's operator.db on the worker's host, when the trial has an
    /// operator (managed or external): what the capture stage follows. Absent for baselines,
    /// trials without an operator, and events written before the capture stage existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_db: Option<String>,
    /// The host whose file system holds `operator_db` (the worker's host name): only a capture
    /// stage on that host takes the trial. Absent in events written before it was recorded, which
    /// any capture stage takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_host: Option<String>,
}

/// A row of an operator.db table as the operator wrote it, keyed by the contract's column names
/// (`schemas::operator_db`): SQLite integers and reals as JSON numbers, text as strings, NULL as
/// null (a blob as null: the contract has none).
pub type OperatorRow = std::collections::BTreeMap<String, serde_json::Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TicketOpened {
    /// The operator.db the ticket was read from.
    pub operator_db: String,
    pub ticket_id: i64,
    /// The subject the ticket is about, from its `subject_context`, when the operator says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub violation_key: Option<String>,
    pub invariant_name: Option<String>,
    pub store_id: Option<String>,
    pub severity: Option<String>,
    pub message: Option<String>,
    /// When the operator first saw the violation (the ticket's `first_seen_at`).
    pub first_seen_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentSessionStarted {
    pub operator_db: String,
    pub session_id: String,
    pub ticket_id: Option<i64>,
    pub started_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentLogEntryType {
    Reasoning,
    ToolCall,
    ToolResult,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentLogRecorded {
    pub operator_db: String,
    pub session_id: String,
    /// The row id in `agent_log_entries`.
    pub entry_id: i64,
    pub entry_type: AgentLogEntryType,
    pub content: Option<String>,
    pub tool_name: Option<String>,
    /// `tool_params` parsed as JSON; `None` when absent or malformed.
    pub tool_params: Option<serde_json::Value>,
    /// `tool_params` as written, kept when it is not valid JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_params_raw: Option<String>,
    pub exit_code: Option<i64>,
    pub timestamp: Timestamp,
    /// The row as written, every column of the contract's `agent_log_entries` but `content`
    /// (which is the field above): the projector's `operator_log_entries` comes from it. Absent in
    /// events captured before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<OperatorRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TicketResolved {
    pub operator_db: String,
    pub ticket_id: i64,
    pub resolved_at: Timestamp,
}

/// What the capture stage found of a trial's operator.db file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperatorDbStatus {
    /// Read to the end of the trial.
    Read,
    /// It never appeared.
    Missing,
    /// It could not be read (corrupt, not the contract's schema, a row the capture cannot read).
    Unreadable,
    /// Not opened: the path is outside the directories the capture stage may read, or not a
    /// regular file (a link, a FIFO). Nothing was read or written.
    Refused,
}

impl OperatorDbStatus {
    /// The name on the wire: `read`, `missing`, `unreadable`, `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorDbStatus::Read => "read",
            OperatorDbStatus::Missing => "missing",
            OperatorDbStatus::Unreadable => "unreadable",
            OperatorDbStatus::Refused => "refused",
        }
    }
}

/// The end of one trial's operator.db capture, published by the capture stage after the trial's
/// `TrialFinished` and a last read: every capture event of the trial is in the log before it.
/// Scoring grades an operator trial once both are in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OperatorCaptureFinished {
    /// The `ChaosInjected` whose capture this ends (each attempt of a trial has its own).
    pub injection_id: Uuid,
    pub operator_db: String,
    pub status: OperatorDbStatus,
    /// What went wrong, when not `read`; the events published before it stay in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub size_bytes: Option<u64>,
    pub modified_at: Option<Timestamp>,
    /// The trial's ticket as the operator last wrote it (every contract column); `None` when the
    /// operator opened none.
    pub ticket: Option<OperatorRow>,
    /// The ticket's `agent_sessions` rows as last written.
    #[serde(default)]
    pub sessions: Vec<OperatorRow>,
    /// `AgentLogRecorded` events of the trial from this file.
    pub n_log_entries: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChaosCleanedUp {
    pub chaos_type: ChaosType,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChaosCleanupFailed {
    pub chaos_type: ChaosType,
    pub error: String,
    /// What may be left behind, from the injection's cleanup record.
    pub cleanup: crate::cleanup::Cleanup,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventRejected {
    /// The durable consumer that refused it: `eval-worker`, `capture`, `scoring`, ….
    pub consumer: String,
    /// The subject it was stored under.
    pub subject: String,
    /// Its stream sequence, where the server said it.
    pub stream_sequence: Option<u64>,
    /// Why it was refused.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    Succeeded,
    Failed,
    TimedOut,
    /// The harness itself failed; never counted against the operator.
    Errored,
}

impl TrialStatus {
    /// The name on the wire: `succeeded`, `failed`, `timed_out`, `errored`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialStatus::Succeeded => "succeeded",
            TrialStatus::Failed => "failed",
            TrialStatus::TimedOut => "timed_out",
            TrialStatus::Errored => "errored",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrialFinished {
    pub status: TrialStatus,
    /// Why, in words, when not obvious from the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Timeout,
    Errored,
}

/// The grade of a finished trial by one scorer version. Several may exist for one trial, one per
/// version; re-scoring adds, never rewrites.
// `Details` is the type of `details`: a JSON value as read back, or a scorer's own borrowed,
// serializable view when it writes the event (see `TrialScored::encode`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    rename = "TrialScored",
    bound = "Details: JsonSchema + Default + Serialize"
)]
pub struct TrialScored<Details = serde_json::Value> {
    /// Such as `v1`, or `v1+<hash of rules and thresholds>` for user rules.
    pub scorer_version: String,
    /// `errored` when the harness failed: never counted against the operator.
    pub outcome: Outcome,
    pub baseline: bool,
    /// A control trial (`chaos: none`): nothing was broken; graded for false alarms.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub control: bool,
    /// A control trial's false alarms: tickets about its subject opened while nothing was broken.
    /// `None` for fault trials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_false_alarms: Option<u32>,
    /// A control trial's subject stayed healthy: every check of the watch and the final capture.
    /// `None` for fault trials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stayed_healthy: Option<bool>,
    /// A ticket about the trial's subject was first seen at or after the injection.
    pub detected: bool,
    /// Injection → the detecting ticket's `first_seen_at`.
    pub time_to_detect_ms: Option<i64>,
    /// The detecting ticket was resolved and the subject was healthy at the final capture.
    pub resolved: bool,
    /// Injection → the ticket's `resolved_at`, when resolved.
    pub time_to_resolve_ms: Option<i64>,
    /// Injection → the subject's first healthy answer after it: a baseline's self-heal time.
    #[serde(default)]
    pub time_to_heal_ms: Option<i64>,
    /// The subject was healthy again within the trial's timeout.
    #[serde(default)]
    pub healed_within_timeout: bool,
    /// Tool calls of the agent.
    pub n_commands: u32,
    /// Distinct commands (tool and `command`, or tool and parameters without `reasoning`).
    pub n_unique_commands: u32,
    /// Calls by category (`diagnostic`, `remediation`, `destructive`, `other`).
    pub commands_by_category: BTreeMap<String, u32>,
    pub n_destructive: u32,
    /// Thrashing episodes: the same command run 3 or more times within 60 s (by default).
    pub n_thrashing: u32,
    /// The command of each thrashing episode, as `tool: command`.
    #[serde(default)]
    pub thrashing_commands: Vec<String>,
    /// Further figures and the explanation of each, as the scorer version defines them: for v1
    /// `explanation` (one line per decision), `tickets`, `commands` (each with the rule that
    /// classified it), `thrashing`, `settings`.
    #[serde(default)]
    pub details: Details,
}

impl<Details: Serialize> TrialScored<Details> {
    /// The `TrialScored` event of a trial with this data, encoded for publishing, occurring now:
    /// the same bytes as an [`Event`] holding it would give, without making the details a JSON
    /// value first (re-scoring a large campaign encodes one per trial).
    pub fn encode(
        &self,
        id: Uuid,
        campaign_id: &str,
        trial_id: Option<&str>,
        producer: &Producer,
    ) -> crate::log::EncodedEvent {
        let wire = WireEnvelope {
            id,
            event_type: "TrialScored",
            schema_version: SCHEMA_VERSION,
            campaign_id,
            trial_id,
            occurred_at: Timestamp::now(),
            producer,
            data: self,
        };
        let mut json = serde_json::to_vec(&wire).expect("events serialize to JSON");
        json.shrink_to_fit();
        crate::log::EncodedEvent {
            subject: crate::log::event_subject(campaign_id, trial_id, "TrialScored"),
            id,
            payload: json.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CampaignFinished {
    pub n_trials: u32,
    /// Trials by final status.
    pub by_status: BTreeMap<String, u32>,
}
