//! Builders of trials as the log holds them, for tests and benchmarks:
//! `TrialFixture::test().detected_after(1_500).resolved_after(40_000).events()`.
//!
//! Times are given in milliseconds from the injection (harness clock); operator times (ticket
//! and log timestamps) are shifted by [`TrialFixture::operator_clock_skew_ms`]. Everything is
//! deterministic: fixed start times and ids derived from the campaign and trial index.

use chrono::{DateTime, Duration as ChronoDuration};
use schemas::campaign::{ChaosSpec, ChaosType, SubjectKind, SubjectSettings, TrialSpec};
use schemas::event::{
    AgentLogEntryType, AgentLogRecorded, AgentSessionStarted, CapturePhase, ChaosCleanedUp,
    ChaosInjected, Event, EventData, Producer, SCHEMA_VERSION, StateCaptured, SubjectHealthy,
    SubjectReset, TicketOpened, TicketResolved, Timestamp, TrialFinished, TrialRequested,
    TrialStarted, TrialStatus, WatchHealth,
};
use serde_json::{Value, json};

/// The campaign id fixtures use unless told otherwise.
pub const FIXTURE_CAMPAIGN: &str = "fixture";
/// The operator.db path fixtures' operator events name.
pub const FIXTURE_OPERATOR_DB: &str = "/var/lib/operator/operator.db";
/// The instance name of the fixtures' `SubjectReset`.
pub const FIXTURE_INSTANCE: &str = "lab-1";

/// A chaos spec of `kind` with every default filled in.
pub fn chaos(kind: ChaosType) -> ChaosSpec {
    serde_json::from_value(json!({"type": kind.as_str(), "params": {}}))
        .expect("every chaos type has defaults")
}

#[derive(Debug, Clone)]
struct TicketFixture {
    ticket_id: i64,
    subject: Option<String>,
    first_seen_ms: i64,
    resolved_ms: Option<i64>,
}

#[derive(Debug, Clone)]
struct CallFixture {
    at_ms: i64,
    tool: String,
    params: Value,
}

/// One trial, built up step by step; [`TrialFixture::events`] writes its events in log order.
#[derive(Debug, Clone)]
pub struct TrialFixture {
    campaign_id: String,
    spec: TrialSpec,
    /// Harness time of the injection; `None` for a trial whose fault never hit.
    injected: bool,
    operator_skew_ms: i64,
    tickets: Vec<TicketFixture>,
    calls: Vec<CallFixture>,
    verbose_log: bool,
    healthy_after_ms: Option<i64>,
    final_healthy: Option<bool>,
    finished: Option<(TrialStatus, i64, Option<String>)>,
    retried: bool,
    /// Unhealthy checks of a control trial's watch.
    unhealthy_checks: u32,
}

impl TrialFixture {
    /// An etcd `node_kill` trial of variant `careful` with a 300 s timeout: injected 5 s after it
    /// started, no operator activity, healthy at the final capture, finished `succeeded` 120 s
    /// after the injection.
    pub fn test() -> TrialFixture {
        TrialFixture {
            campaign_id: FIXTURE_CAMPAIGN.to_string(),
            spec: TrialSpec {
                trial_index: 0,
                subject: SubjectKind::Etcd,
                subject_settings: SubjectSettings::default(),
                chaos_index: 0,
                chaos: chaos(ChaosType::NodeKill),
                variant: Some("careful".to_string()),
                baseline: false,
                repetition: 0,
                seed: 7,
                timeout_seconds: 300,
                cooldown_seconds: 0,
            },
            injected: true,
            operator_skew_ms: 0,
            tickets: Vec::new(),
            calls: Vec::new(),
            verbose_log: false,
            healthy_after_ms: None,
            final_healthy: Some(true),
            finished: Some((TrialStatus::Succeeded, 120_000, None)),
            retried: false,
            unhealthy_checks: 0,
        }
    }

    /// A control trial (`chaos: none`, watched 30 s): nothing broken, finished `succeeded` 30 s
    /// after the watch started, with 120 healthy checks at the final capture.
    pub fn control() -> TrialFixture {
        TrialFixture::test()
            .with_chaos(chaos(ChaosType::None))
            .finished(TrialStatus::Succeeded, 30_000)
    }

    /// `n` of a control trial's watch checks found the subject unhealthy.
    pub fn unhealthy_checks(mut self, n: u32) -> Self {
        self.unhealthy_checks = n;
        self
    }

    pub fn in_campaign(mut self, campaign_id: &str) -> Self {
        self.campaign_id = campaign_id.to_string();
        self
    }

    pub fn with_trial_index(mut self, trial_index: u32) -> Self {
        self.spec.trial_index = trial_index;
        self
    }

    pub fn with_subject(mut self, subject: SubjectKind) -> Self {
        self.spec.subject = subject;
        self
    }

    pub fn with_chaos(mut self, chaos: ChaosSpec) -> Self {
        self.spec.chaos = chaos;
        self
    }

    pub fn with_variant(mut self, variant: &str) -> Self {
        self.spec.variant = Some(variant.to_string());
        self.spec.baseline = false;
        self
    }

    pub fn with_repetition(mut self, repetition: u32) -> Self {
        self.spec.repetition = repetition;
        self
    }

    pub fn with_timeout_seconds(mut self, seconds: u32) -> Self {
        self.spec.timeout_seconds = seconds;
        self
    }

    /// No operator: the same chaos, to see the subject heal by itself.
    pub fn baseline(mut self) -> Self {
        self.spec.variant = None;
        self.spec.baseline = true;
        self
    }

    /// Ticket 1 about the subject, first seen `ms` after the injection (operator clock).
    pub fn detected_after(self, ms: i64) -> Self {
        self.ticket(1, ms, None)
    }

    /// A ticket first seen `ms` after the injection (negative: before), naming `subject` if given.
    pub fn ticket(mut self, ticket_id: i64, first_seen_ms: i64, subject: Option<&str>) -> Self {
        self.tickets.push(TicketFixture {
            ticket_id,
            subject: subject.map(str::to_string),
            first_seen_ms,
            resolved_ms: None,
        });
        self
    }

    /// The last ticket added is resolved `ms` after the injection (operator clock).
    pub fn resolved_after(mut self, ms: i64) -> Self {
        let ticket = self
            .tickets
            .last_mut()
            .expect("resolved_after needs a ticket: call detected_after first");
        ticket.resolved_ms = Some(ms);
        self
    }

    /// A shell tool call `{"command": line, "reasoning": …}` at `ms` after the injection.
    pub fn command_at(self, ms: i64, line: &str) -> Self {
        self.tool_call_at(
            ms,
            "shell",
            json!({"command": line, "reasoning": format!("checking at {ms} ms")}),
        )
    }

    pub fn tool_call_at(mut self, ms: i64, tool: &str, params: Value) -> Self {
        self.calls.push(CallFixture {
            at_ms: ms,
            tool: tool.to_string(),
            params,
        });
        self
    }

    /// Writes a reasoning entry before and a tool result after every tool call, as agents do.
    pub fn with_full_agent_log(mut self) -> Self {
        self.verbose_log = true;
        self
    }

    /// A `SubjectHealthy` `ms` after the injection (the subject healed).
    pub fn healthy_after(mut self, ms: i64) -> Self {
        self.healthy_after_ms = Some(ms);
        self
    }

    pub fn final_healthy(mut self, healthy: bool) -> Self {
        self.final_healthy = Some(healthy);
        self
    }

    pub fn without_final_capture(mut self) -> Self {
        self.final_healthy = None;
        self
    }

    /// `TrialFinished` with `status`, `ms` after the injection.
    pub fn finished(mut self, status: TrialStatus, ms: i64) -> Self {
        self.finished = Some((status, ms, None));
        self
    }

    /// The harness failed: `TrialFinished` errored with `reason`.
    pub fn errored(mut self, reason: &str) -> Self {
        let at = self.finished.as_ref().map_or(60_000, |(_, at, _)| *at);
        self.finished = Some((TrialStatus::Errored, at, Some(reason.to_string())));
        self
    }

    pub fn unfinished(mut self) -> Self {
        self.finished = None;
        self
    }

    pub fn without_injection(mut self) -> Self {
        self.injected = false;
        self
    }

    /// The operator's clock runs `ms` ahead of the harness's (negative: behind).
    pub fn operator_clock_skew_ms(mut self, ms: i64) -> Self {
        self.operator_skew_ms = ms;
        self
    }

    /// A first attempt that died after injecting its fault, before this one.
    pub fn retried(mut self) -> Self {
        self.retried = true;
        self
    }

    pub fn spec(&self) -> &TrialSpec {
        &self.spec
    }

    pub fn campaign_id(&self) -> &str {
        &self.campaign_id
    }

    pub fn trial_id(&self) -> String {
        schemas::ids::trial_id(&self.campaign_id, self.spec.trial_index)
    }

    /// The trial's events in log order.
    pub fn events(&self) -> Vec<Event> {
        let trial_id = self.trial_id();
        let start = DateTime::from_timestamp(1_772_359_200, 0).expect("a valid instant")
            + ChronoDuration::minutes(10 * i64::from(self.spec.trial_index));
        let start = Timestamp::from_datetime(start);
        let mut builder = EventsBuilder {
            campaign_id: &self.campaign_id,
            trial_id: &trial_id,
            trial_index: self.spec.trial_index,
            events: Vec::new(),
        };
        let at = |ms: i64| offset(start, ms);
        // The injection is 5 s after the attempt starts; a retried trial's first attempt starts
        // 10 minutes earlier and dies after injecting.
        let injection_ms = 5_000;
        let (first_ms, attempt_ms) = if self.retried { (-600_000, 0) } else { (0, 0) };
        builder.push(
            at(first_ms - 1_000),
            TrialRequested {
                trial: self.spec.clone(),
                parallel: 1,
            },
        );
        if self.retried {
            builder.push(
                at(first_ms),
                TrialStarted {
                    worker: "worker-a".to_string(),
                    attempt: 1,
                },
            );
            builder.push(at(first_ms + 1_000), self.reset());
            builder.push(at(first_ms + injection_ms), self.injected());
        }
        builder.push(
            at(attempt_ms),
            TrialStarted {
                worker: "worker-b".to_string(),
                attempt: if self.retried { 2 } else { 1 },
            },
        );
        builder.push(at(attempt_ms + 1_000), self.reset());
        builder.push(at(attempt_ms + 2_000), SubjectHealthy { after_ms: 1_000 });
        builder.push(
            at(attempt_ms + 3_000),
            StateCaptured {
                phase: CapturePhase::Initial,
                healthy: true,
                state: json!({"members": 3, "leader": "node-1"}),
                watch_health: None,
            },
        );
        if !self.injected {
            if let Some((status, ms, reason)) = &self.finished {
                builder.push(
                    at(attempt_ms + injection_ms + ms),
                    TrialFinished {
                        status: *status,
                        reason: reason.clone(),
                    },
                );
            }
            return builder.events;
        }
        let injected_at = attempt_ms + injection_ms;
        builder.push(at(injected_at), self.injected());

        // Events after the injection, each at its harness time, then sorted into log order. The
        // capture stage publishes operator rows about 1 s after the operator wrote them.
        let mut later: Vec<(i64, EventData)> = Vec::new();
        let operator = |ms: i64| at(injected_at + ms + self.operator_skew_ms);
        let capture_lag = 1_000;
        for ticket in &self.tickets {
            later.push((
                ticket.first_seen_ms + capture_lag,
                TicketOpened {
                    operator_db: FIXTURE_OPERATOR_DB.to_string(),
                    ticket_id: ticket.ticket_id,
                    subject: ticket.subject.clone(),
                    violation_key: Some(format!("{}-unhealthy", self.spec.subject)),
                    invariant_name: Some("members_healthy".to_string()),
                    store_id: None,
                    severity: Some("critical".to_string()),
                    message: Some("a member does not answer".to_string()),
                    first_seen_at: operator(ticket.first_seen_ms),
                }
                .into(),
            ));
            if let Some(resolved_ms) = ticket.resolved_ms {
                later.push((
                    resolved_ms + capture_lag,
                    TicketResolved {
                        operator_db: FIXTURE_OPERATOR_DB.to_string(),
                        ticket_id: ticket.ticket_id,
                        resolved_at: operator(resolved_ms),
                    }
                    .into(),
                ));
            }
        }
        if let Some(first_call) = self.calls.iter().map(|call| call.at_ms).min() {
            later.push((
                first_call - 500 + capture_lag,
                AgentSessionStarted {
                    operator_db: FIXTURE_OPERATOR_DB.to_string(),
                    session_id: "session-1".to_string(),
                    ticket_id: self.tickets.first().map(|t| t.ticket_id),
                    started_at: operator(first_call - 500),
                }
                .into(),
            ));
        }
        let mut entry_id = 0;
        for call in &self.calls {
            let mut entry = |entry_type, ms: i64, content: Option<String>, tool: bool| {
                entry_id += 1;
                later.push((
                    ms + capture_lag,
                    AgentLogRecorded {
                        operator_db: FIXTURE_OPERATOR_DB.to_string(),
                        session_id: "session-1".to_string(),
                        entry_id,
                        entry_type,
                        content,
                        tool_name: tool.then(|| call.tool.clone()),
                        tool_params: (tool && entry_type == AgentLogEntryType::ToolCall)
                            .then(|| call.params.clone()),
                        tool_params_raw: None,
                        exit_code: (entry_type == AgentLogEntryType::ToolResult).then_some(0),
                        timestamp: operator(ms),
                        row: None,
                    }
                    .into(),
                ));
            };
            if self.verbose_log {
                entry(
                    AgentLogEntryType::Reasoning,
                    call.at_ms - 200,
                    Some("the member is down; look at the cluster".to_string()),
                    false,
                );
            }
            entry(AgentLogEntryType::ToolCall, call.at_ms, None, true);
            if self.verbose_log {
                entry(
                    AgentLogEntryType::ToolResult,
                    call.at_ms + 300,
                    Some("ok".to_string()),
                    true,
                );
            }
        }
        if let Some(ms) = self.healthy_after_ms {
            later.push((ms, SubjectHealthy { after_ms: 0 }.into()));
        }
        let end_ms = self.finished.as_ref().map_or(600_000, |(_, ms, _)| *ms);
        if let Some(healthy) = self.final_healthy {
            later.push((
                end_ms - 2_000,
                StateCaptured {
                    phase: CapturePhase::Final,
                    healthy,
                    state: json!({"members": 3, "healthy": healthy}),
                    watch_health: self.spec.is_control().then(|| WatchHealth {
                        n_checks: 120,
                        n_unhealthy: self.unhealthy_checks,
                        first_unhealthy_reason: (self.unhealthy_checks > 0)
                            .then(|| "member n2 does not answer".to_string()),
                    }),
                }
                .into(),
            ));
        }
        later.push((
            end_ms - 1_000,
            ChaosCleanedUp {
                chaos_type: self.spec.chaos.chaos_type(),
                duration_ms: 250,
            }
            .into(),
        ));
        if let Some((status, ms, reason)) = &self.finished {
            later.push((
                *ms,
                TrialFinished {
                    status: *status,
                    reason: reason.clone(),
                }
                .into(),
            ));
        }
        later.sort_by_key(|(ms, _)| *ms);
        for (ms, data) in later {
            builder.push(at(injected_at + ms), data);
        }
        builder.events
    }

    fn reset(&self) -> SubjectReset {
        SubjectReset {
            subject: self.spec.subject,
            instance: FIXTURE_INSTANCE.to_string(),
            endpoints: vec!["http://127.0.0.1:2379".to_string()],
            duration_ms: 900,
        }
    }

    fn injected(&self) -> ChaosInjected {
        ChaosInjected {
            worker: "worker-b".to_string(),
            chaos: self.spec.chaos.clone(),
            target: (!self.spec.is_control()).then(|| "node-2".to_string()),
            cleanup: if self.spec.is_control() {
                json!({"fault": "none"})
            } else {
                json!({"pid": 4242})
            }
            .into(),
            operator_db: None,
            operator_host: None,
        }
    }
}

fn offset(start: Timestamp, ms: i64) -> Timestamp {
    Timestamp::from_datetime(start.0 + ChronoDuration::milliseconds(ms))
}

struct EventsBuilder<'a> {
    campaign_id: &'a str,
    trial_id: &'a str,
    trial_index: u32,
    events: Vec<Event>,
}

impl EventsBuilder<'_> {
    fn push(&mut self, occurred_at: Timestamp, data: impl Into<EventData>) {
        let index = u64::from(self.trial_index) << 16 | self.events.len() as u64;
        self.events.push(Event {
            id: schemas::ids::derived_event_id(self.campaign_id, "fixture", index),
            schema_version: SCHEMA_VERSION,
            campaign_id: self.campaign_id.to_string(),
            trial_id: Some(self.trial_id.to_string()),
            occurred_at,
            producer: Producer {
                stage: "fixture".to_string(),
                host: "test".to_string(),
            },
            data: data.into(),
        });
    }
}

/// The trial `trial_index` of a synthetic campaign, about 30 events with a full agent log, its
/// outcome and commands varied by the index: most trials succeed, some time out, some fail, every
/// tenth is a baseline.
pub fn synthetic_trial(campaign_id: &str, trial_index: u32) -> TrialFixture {
    let kinds = [
        ChaosType::NodeKill,
        ChaosType::ProcessPause,
        ChaosType::Latency,
    ];
    let mut trial = TrialFixture::test()
        .in_campaign(campaign_id)
        .with_trial_index(trial_index)
        .with_chaos(chaos(kinds[trial_index as usize % kinds.len()]))
        .with_repetition(trial_index / 10)
        .with_full_agent_log();
    if trial_index % 10 == 9 {
        return trial
            .baseline()
            .healthy_after(30_000 + i64::from(trial_index % 7) * 5_000)
            .finished(TrialStatus::Succeeded, 120_000);
    }
    let detect_ms = 1_000 + i64::from(trial_index % 13) * 250;
    trial = trial.detected_after(detect_ms);
    let lines = [
        "etcdctl endpoint status --cluster -w table",
        "etcdctl member list",
        "journalctl -u etcd --since '5 min ago' | tail -n 50",
        "etcdctl alarm list",
        "systemctl restart etcd",
        "etcdctl endpoint health --cluster",
    ];
    for (step, line) in lines.iter().enumerate() {
        trial = trial.command_at(detect_ms + 2_000 + step as i64 * 4_000, line);
    }
    match trial_index % 10 {
        7 => trial.finished(TrialStatus::TimedOut, 300_000),
        8 => trial
            .resolved_after(40_000)
            .final_healthy(false)
            .finished(TrialStatus::Failed, 60_000),
        _ => trial
            .resolved_after(30_000 + i64::from(trial_index % 11) * 1_000)
            .healthy_after(25_000)
            .finished(TrialStatus::Succeeded, 60_000),
    }
}
