//! The scorer: a pure function from one trial's events to its grade, and its settings.
//!
//! Which events count:
//! - A trial may have run more than once (a worker died and another took it over). Harness events
//!   (`SubjectReset`, `SubjectHealthy`, `StateCaptured`, `ChaosInjected`, `TrialFinished`) are
//!   read from the last attempt on, the events after the last `TrialStarted`. The injection is the
//!   first `ChaosInjected` of that attempt; its `occurred_at` is the injection time.
//! - Operator events (`TicketOpened`, `TicketResolved`, `AgentLogRecorded`) are read wherever they
//!   are, each once (keyed by operator.db and ticket or entry id), and judged by their times.
//!
//! Clock skew: `first_seen_at`, `resolved_at` and the agent's log timestamps come from the
//! operator's clock, the injection time from the harness's. A ticket first seen up to
//! [`ScoringConfig::clock_skew_tolerance_ms`] (default 500 ms) *before* the injection still counts
//! as detecting it, with a time to detect of 0: the two clocks cannot order events that close, and
//! a ticket about an earlier problem would have been opened well before. The tolerance is applied
//! only where an operator time is compared with a harness time (detection, resolution against the
//! timeout), never between two harness times (self-heal), and it never makes a time negative.
//!
//! Outcome of an operator trial: `errored` when the harness failed (`TrialFinished` errored, no
//! injection, not finished): never counted against the operator. `success` when the detecting
//! ticket was resolved within the timeout and the final capture is healthy; `timeout` when it was
//! resolved after the timeout, or not resolved and the trial ran into its timeout; `failure`
//! otherwise, including a resolution while the subject is unhealthy. A baseline trial succeeds when
//! the subject became healthy again within the timeout and is healthy at the final capture.
//!
//! A control trial (`chaos: none`) breaks nothing: its `ChaosInjected` marks the start of the
//! watch. It is graded for false alarms: every ticket about its subject first seen from the start
//! of the watch on (less the clock tolerance) is one. It succeeds when it raised no false alarm,
//! ran no destructive command and its subject stayed healthy (every check of the watch, as the
//! final capture's `watch_health` records them, and the final capture itself); it fails
//! otherwise, and is errored on the same harness failures as any trial. Detection, resolution and
//! self-heal do not apply to it and stay empty.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use schemas::campaign::TrialSpec;
use schemas::event::{
    CapturePhase, Event, EventData, Outcome, Producer, TicketOpened, Timestamp, TrialScored,
    TrialStatus, WatchHealth,
};
use schemas::log::EncodedEvent;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::SCORER_VERSION;
use crate::commands::{self, CommandSummary, ThrashingEpisode};
use crate::rules::{Category, Rules};

/// What the scorer needs besides the events: the rules and the thresholds. Anything here that
/// differs from the defaults gives a different [`ScoringConfig::version`].
#[derive(Debug, Clone)]
pub struct ScoringConfig {
    /// Command classification rules: the built-in set, plus a user's file in front.
    pub rules: Rules,
    /// How far an operator's timestamp may lie before the injection and still count as after it.
    pub clock_skew_tolerance_ms: i64,
    /// The same command this many times within the window is thrashing.
    pub thrashing_min_repeats: u32,
    pub thrashing_window_ms: i64,
}

pub const DEFAULT_CLOCK_SKEW_TOLERANCE_MS: i64 = 500;
pub const DEFAULT_THRASHING_MIN_REPEATS: u32 = 3;
pub const DEFAULT_THRASHING_WINDOW_MS: i64 = 60_000;

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig::with_rules(Rules::builtin())
    }
}

impl ScoringConfig {
    /// The default thresholds with `rules`.
    pub fn with_rules(rules: Rules) -> ScoringConfig {
        ScoringConfig {
            rules,
            clock_skew_tolerance_ms: DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
            thrashing_min_repeats: DEFAULT_THRASHING_MIN_REPEATS,
            thrashing_window_ms: DEFAULT_THRASHING_WINDOW_MS,
        }
    }

    fn canonical(&self) -> String {
        format!(
            "rules {}\nclock_skew_tolerance_ms {}\nthrashing_min_repeats {}\nthrashing_window_ms {}\n",
            self.rules.fingerprint(),
            self.clock_skew_tolerance_ms,
            self.thrashing_min_repeats,
            self.thrashing_window_ms
        )
    }

    /// The scorer version these settings grade with: [`SCORER_VERSION`] with the built-in rules
    /// and default thresholds, else `v1+<first 8 hex digits of SHA-256 of the settings>`, so that
    /// re-scoring with other rules publishes beside the old scores instead of colliding with them.
    pub fn version(&self) -> String {
        static DEFAULT_CANONICAL: OnceLock<String> = OnceLock::new();
        let canonical = self.canonical();
        if &canonical == DEFAULT_CANONICAL.get_or_init(|| ScoringConfig::default().canonical()) {
            return SCORER_VERSION.to_string();
        }
        let digest = Sha256::digest(canonical.as_bytes());
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        format!("{SCORER_VERSION}+{hex}")
    }
}

/// What the scorer made of one ticket of the trial.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketVerdict {
    pub operator_db: String,
    pub ticket_id: i64,
    pub subject: Option<String>,
    pub first_seen_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// Whether it is about this trial's fault.
    pub counted: bool,
    pub note: String,
}

/// The grade of one trial.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialScore {
    pub scorer_version: String,
    pub campaign_id: String,
    pub trial_id: Option<String>,
    pub outcome: Outcome,
    /// The status the harness reported in `TrialFinished`.
    pub trial_status: Option<TrialStatus>,
    pub baseline: bool,
    /// A control trial (`chaos: none`), graded for false alarms.
    pub control: bool,
    /// A control trial's false alarms: tickets about its subject opened during the watch.
    pub n_false_alarms: Option<u32>,
    /// A control trial's subject was healthy at every check of the watch and at the end.
    pub stayed_healthy: Option<bool>,
    /// The start of the watch for a control trial.
    pub injected_at: Option<Timestamp>,
    pub detected: bool,
    pub time_to_detect_ms: Option<i64>,
    pub resolved: bool,
    pub time_to_resolve_ms: Option<i64>,
    /// Injection → the first healthy answer after it; for a baseline, the self-heal time.
    pub time_to_heal_ms: Option<i64>,
    pub healed_within_timeout: bool,
    pub final_healthy: Option<bool>,
    pub tickets: Vec<TicketVerdict>,
    pub commands: CommandSummary,
    pub thrashing: Vec<ThrashingEpisode>,
    /// Why: one line per decision, in the order they were made.
    pub explanation: Vec<String>,
    /// The thresholds used, for the record.
    pub clock_skew_tolerance_ms: i64,
    pub thrashing_min_repeats: u32,
    pub thrashing_window_ms: i64,
}

fn millis_between(from: Timestamp, to: Timestamp) -> i64 {
    (to.unix_micros() - from.unix_micros()).div_euclid(1000)
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03} s", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// The harness's view of the trial's last attempt.
#[derive(Default)]
struct Attempt<'a> {
    instance: Option<&'a str>,
    injected_at: Option<Timestamp>,
    healthy_after_injection: Option<Timestamp>,
    final_capture: Option<(Timestamp, bool)>,
    watch_health: Option<&'a WatchHealth>,
}

fn last_attempt(events: &[Event]) -> Attempt<'_> {
    let start = events
        .iter()
        .rposition(|event| matches!(event.data, EventData::TrialStarted(_)))
        .unwrap_or(0);
    let mut attempt = Attempt::default();
    for event in &events[start..] {
        match &event.data {
            EventData::SubjectReset(reset) => attempt.instance = Some(&reset.instance),
            EventData::ChaosInjected(_) if attempt.injected_at.is_none() => {
                attempt.injected_at = Some(event.occurred_at);
            }
            EventData::SubjectHealthy(_)
                if attempt.injected_at.is_some() && attempt.healthy_after_injection.is_none() =>
            {
                attempt.healthy_after_injection = Some(event.occurred_at);
            }
            EventData::StateCaptured(capture) if capture.phase == CapturePhase::Final => {
                attempt.final_capture = Some((event.occurred_at, capture.healthy));
                attempt.watch_health = capture.watch_health.as_ref();
            }
            _ => {}
        }
    }
    attempt
}

/// Whether a ticket naming `named` is about the trial's subject: the subject kind (`etcd`) or the
/// instance of the trial's `SubjectReset`, ignoring case.
fn names_subject(named: &str, spec: Option<&TrialSpec>, instance: Option<&str>) -> bool {
    let named = named.trim();
    spec.is_some_and(|spec| named.eq_ignore_ascii_case(spec.subject.as_str()))
        || instance.is_some_and(|instance| named.eq_ignore_ascii_case(instance))
}

/// Whether a trial's events are all in the log, read in log order: its `TrialFinished`, and for
/// an attempt whose injection names an operator.db, that capture's `OperatorCaptureFinished`
/// (which the capture stage publishes after the trial's end, so every capture event comes before
/// it). Scoring grades a trial once it is complete.
#[derive(Debug, Clone, Default)]
pub struct Completeness {
    finished: bool,
    /// The injection of the latest attempt whose capture has not ended yet.
    awaiting_capture: Option<Uuid>,
    /// Injections whose capture ended.
    captured: Vec<Uuid>,
}

impl Completeness {
    /// The completeness of a trial's events.
    pub fn of(events: &[Event]) -> Completeness {
        let mut completeness = Completeness::default();
        for event in events {
            completeness.observe(event);
        }
        completeness
    }

    pub fn observe(&mut self, event: &Event) {
        match &event.data {
            // A new attempt: an earlier attempt's capture no longer holds the trial back.
            EventData::TrialStarted(_) => self.awaiting_capture = None,
            EventData::ChaosInjected(injected) => {
                self.awaiting_capture = injected
                    .operator_db
                    .as_ref()
                    .map(|_| event.id)
                    .filter(|id| !self.captured.contains(id));
            }
            EventData::OperatorCaptureFinished(finished) => {
                self.captured.push(finished.injection_id);
                if self.awaiting_capture == Some(finished.injection_id) {
                    self.awaiting_capture = None;
                }
            }
            EventData::TrialFinished(_) => self.finished = true,
            _ => {}
        }
    }

    /// The trial has its `TrialFinished`.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The trial is finished and its operator.db capture, if it has one, has ended.
    pub fn complete(&self) -> bool {
        self.finished && self.awaiting_capture.is_none()
    }
}

/// Grades one trial from its events, in log order. Pure: the same events and settings always give
/// the same score.
pub fn score(events: &[Event], config: &ScoringConfig) -> TrialScore {
    let tolerance = config.clock_skew_tolerance_ms.max(0);
    let mut why = Vec::new();
    let spec = events.iter().rev().find_map(|event| match &event.data {
        EventData::TrialRequested(requested) => Some(&requested.trial),
        _ => None,
    });
    let finished = events.iter().rev().find_map(|event| match &event.data {
        EventData::TrialFinished(finished) => Some((event.occurred_at, finished)),
        _ => None,
    });
    let attempt = last_attempt(events);
    let baseline = spec.is_some_and(|spec| spec.baseline);
    let control = spec.is_some_and(TrialSpec::is_control);
    let timeout_ms = spec.map(|spec| i64::from(spec.timeout_seconds) * 1000);
    if spec.is_none() {
        why.push(
            "no TrialRequested: the trial's subject, baseline flag and timeout are unknown"
                .to_string(),
        );
    }

    // Tickets, each once, with the first resolution of each.
    let mut opened: Vec<&TicketOpened> = Vec::new();
    let mut resolutions: HashMap<(&str, i64), Timestamp> = HashMap::new();
    for event in events {
        match &event.data {
            EventData::TicketOpened(ticket)
                if !opened.iter().any(|t| {
                    t.operator_db == ticket.operator_db && t.ticket_id == ticket.ticket_id
                }) =>
            {
                opened.push(ticket);
            }
            EventData::TicketResolved(resolved) => {
                resolutions
                    .entry((resolved.operator_db.as_str(), resolved.ticket_id))
                    .or_insert(resolved.resolved_at);
            }
            _ => {}
        }
    }

    let calls = commands::tool_calls(events);
    let command_summary = commands::summarize(&calls, &config.rules);
    let thrashing = commands::thrashing(
        &calls,
        config.thrashing_min_repeats,
        config.thrashing_window_ms,
    );

    let mut score = TrialScore {
        scorer_version: config.version(),
        campaign_id: events
            .first()
            .map(|event| event.campaign_id.clone())
            .unwrap_or_default(),
        trial_id: events.first().and_then(|event| event.trial_id.clone()),
        outcome: Outcome::Errored,
        trial_status: finished.map(|(_, finished)| finished.status),
        baseline,
        control,
        n_false_alarms: None,
        stayed_healthy: None,
        injected_at: attempt.injected_at,
        detected: false,
        time_to_detect_ms: None,
        resolved: false,
        time_to_resolve_ms: None,
        time_to_heal_ms: None,
        healed_within_timeout: false,
        final_healthy: attempt.final_capture.map(|(_, healthy)| healthy),
        tickets: Vec::new(),
        commands: command_summary,
        thrashing,
        explanation: Vec::new(),
        clock_skew_tolerance_ms: tolerance,
        thrashing_min_repeats: config.thrashing_min_repeats,
        thrashing_window_ms: config.thrashing_window_ms,
    };

    let Some(injected_at) = attempt.injected_at else {
        for ticket in &opened {
            score.tickets.push(verdict(
                ticket,
                &resolutions,
                false,
                "no injection to detect",
            ));
        }
        why.push(
            "no ChaosInjected in the last attempt: the fault never hit, nothing to grade (errored)"
                .to_string(),
        );
        if let Some((_, finished)) = finished {
            why.push(status_line(finished.status, finished.reason.as_deref()));
        }
        score.explanation = why;
        return score;
    };
    if control {
        why.push(format!(
            "control trial (chaos none): nothing broken; watched from {injected_at}"
        ));
    } else {
        why.push(format!("injected at {injected_at}"));
    }

    // Self-heal: the first healthy answer after the injection, both times from the harness.
    let heal = match (attempt.healthy_after_injection, attempt.final_capture) {
        _ if control => None,
        (Some(at), _) => {
            let ms = millis_between(injected_at, at);
            why.push(format!("healthy again {} after the injection", seconds(ms)));
            Some(ms)
        }
        (None, Some((at, true))) => {
            let ms = millis_between(injected_at, at);
            why.push(format!(
                "no SubjectHealthy after the injection; healthy at the final capture, {} after it (an upper bound)",
                seconds(ms)
            ));
            Some(ms)
        }
        _ => None,
    };
    score.time_to_heal_ms = heal;
    score.healed_within_timeout = match (heal, timeout_ms) {
        (Some(heal), Some(timeout)) => heal <= timeout,
        (Some(_), None) => true,
        _ => false,
    };

    // Detection: the earliest ticket about this subject first seen at or after the injection,
    // less the clock-skew tolerance.
    let mut detecting: Option<&TicketOpened> = None;
    for ticket in &opened {
        let before_ms = millis_between(ticket.first_seen_at, injected_at);
        let (counted, note) = match &ticket.subject {
            Some(named) if !names_subject(named, spec, attempt.instance) => (
                false,
                format!(
                    "about {named:?}, not this trial's subject ({})",
                    subject_label(spec, attempt.instance)
                ),
            ),
            _ if before_ms > tolerance => (
                false,
                format!(
                    "first seen {} before the injection, beyond the {tolerance} ms clock tolerance",
                    seconds(before_ms)
                ),
            ),
            _ if before_ms > 0 => (
                true,
                format!(
                    "first seen {} before the injection, within the {tolerance} ms clock tolerance: counted at 0 ms",
                    seconds(before_ms)
                ),
            ),
            _ => (
                true,
                format!("first seen {} after the injection", seconds(-before_ms)),
            ),
        };
        if counted && detecting.is_none_or(|best| ticket.first_seen_at < best.first_seen_at) {
            detecting = Some(ticket);
        }
        score
            .tickets
            .push(verdict(ticket, &resolutions, counted, &note));
    }
    for ticket in &score.tickets {
        why.push(format!(
            "ticket {} ({}): {}{}",
            ticket.ticket_id,
            ticket.operator_db,
            ticket.note,
            if ticket.counted { "" } else { ", ignored" }
        ));
    }

    if control {
        return grade_control(score, why, &attempt, finished);
    }

    let mut ticket_resolution = None;
    if baseline {
        if !opened.is_empty() {
            why.push("a baseline trial has no operator: its tickets do not count".to_string());
        }
    } else if let Some(ticket) = detecting {
        score.detected = true;
        score.time_to_detect_ms = Some(millis_between(injected_at, ticket.first_seen_at).max(0));
        why.push(format!(
            "detected by ticket {} after {}",
            ticket.ticket_id,
            seconds(score.time_to_detect_ms.unwrap_or(0))
        ));
        ticket_resolution = resolutions
            .get(&(ticket.operator_db.as_str(), ticket.ticket_id))
            .copied();
        match ticket_resolution {
            Some(at) => why.push(format!(
                "ticket {} resolved {} after the injection",
                ticket.ticket_id,
                seconds(millis_between(injected_at, at).max(0))
            )),
            None => why.push(format!("ticket {} never resolved", ticket.ticket_id)),
        }
    } else {
        why.push(
            "not detected: no ticket about this subject opened after the injection".to_string(),
        );
    }

    match attempt.final_capture {
        Some((_, healthy)) => why.push(format!(
            "final capture: {}",
            if healthy { "healthy" } else { "unhealthy" }
        )),
        None => why.push("no final capture: the subject's final health is unknown".to_string()),
    }
    let final_healthy = score.final_healthy == Some(true);
    let ran_ms = finished.map(|(at, _)| millis_between(injected_at, at));
    let ran_into_timeout = finished.is_some_and(|(_, f)| f.status == TrialStatus::TimedOut)
        || matches!((ran_ms, timeout_ms), (Some(ran), Some(timeout)) if ran >= timeout);

    score.outcome = match finished {
        None => {
            why.push("the trial has not finished (no TrialFinished): errored".to_string());
            Outcome::Errored
        }
        Some((_, finished)) if finished.status == TrialStatus::Errored => {
            why.push(status_line(finished.status, finished.reason.as_deref()));
            why.push("the harness failed: errored, not counted against the operator".to_string());
            Outcome::Errored
        }
        Some(_) if baseline => {
            if score.healed_within_timeout && final_healthy {
                why.push("healed by itself within the timeout: success".to_string());
                Outcome::Success
            } else if heal.is_some() && final_healthy {
                why.push("healed by itself, after the timeout: timeout".to_string());
                Outcome::Timeout
            } else if ran_into_timeout {
                why.push("not healthy by itself within the timeout: timeout".to_string());
                Outcome::Timeout
            } else {
                why.push("ended unhealthy before the timeout: failure".to_string());
                Outcome::Failure
            }
        }
        Some(_) => match ticket_resolution {
            Some(at) if final_healthy => {
                let ttr = millis_between(injected_at, at).max(0);
                score.resolved = true;
                score.time_to_resolve_ms = Some(ttr);
                match timeout_ms {
                    Some(timeout) if ttr > timeout + tolerance => {
                        why.push(format!(
                            "resolved after the {} timeout: timeout",
                            seconds(timeout)
                        ));
                        Outcome::Timeout
                    }
                    _ => {
                        why.push("resolved, and healthy at the final capture: success".to_string());
                        Outcome::Success
                    }
                }
            }
            Some(_) => {
                why.push("resolved the ticket but the subject is not healthy at the final capture: failure".to_string());
                Outcome::Failure
            }
            None if ran_into_timeout => {
                why.push("not resolved before the timeout: timeout".to_string());
                Outcome::Timeout
            }
            None => {
                why.push(
                    "not resolved, and the trial ended before its timeout: failure".to_string(),
                );
                Outcome::Failure
            }
        },
    };
    if let Some((_, finished)) = finished {
        let agrees = matches!(
            (finished.status, score.outcome),
            (TrialStatus::Succeeded, Outcome::Success)
                | (TrialStatus::Failed, Outcome::Failure)
                | (TrialStatus::TimedOut, Outcome::Timeout)
                | (TrialStatus::Errored, Outcome::Errored)
        );
        if !agrees {
            why.push(format!(
                "the harness reported {}; the scorer grades from the events",
                status_line(finished.status, finished.reason.as_deref())
            ));
        }
    }
    for episode in &score.thrashing {
        why.push(format!(
            "thrashing: {} ran {} times in {}",
            episode.command,
            episode.n_calls,
            seconds(millis_between(episode.first_at, episode.last_at))
        ));
    }
    score.explanation = why;
    score
}

/// The grade of a control trial, once its tickets are judged: false alarms, destructive
/// commands, and whether the subject stayed healthy.
fn grade_control(
    mut score: TrialScore,
    mut why: Vec<String>,
    attempt: &Attempt<'_>,
    finished: Option<(Timestamp, &schemas::event::TrialFinished)>,
) -> TrialScore {
    let false_alarms: Vec<i64> = score
        .tickets
        .iter()
        .filter(|ticket| ticket.counted)
        .map(|ticket| ticket.ticket_id)
        .collect();
    let n_false_alarms = u32::try_from(false_alarms.len()).unwrap_or(u32::MAX);
    if false_alarms.is_empty() {
        why.push("no false alarm: no ticket about this subject opened".to_string());
    } else {
        let ids: Vec<String> = false_alarms.iter().map(i64::to_string).collect();
        why.push(format!(
            "{n_false_alarms} false alarm(s): ticket(s) {} opened while nothing was broken",
            ids.join(", ")
        ));
    }
    let n_destructive = score.commands.count(Category::Destructive);
    if n_destructive > 0 {
        why.push(format!(
            "{n_destructive} destructive command(s) run while nothing was broken"
        ));
    }
    let checks_healthy = match attempt.watch_health {
        Some(watch) if watch.n_unhealthy > 0 => {
            why.push(format!(
                "{} of {} checks of the watch found the subject unhealthy{}",
                watch.n_unhealthy,
                watch.n_checks,
                watch
                    .first_unhealthy_reason
                    .as_deref()
                    .map(|reason| format!(" (first: {reason})"))
                    .unwrap_or_default()
            ));
            false
        }
        Some(watch) => {
            why.push(format!(
                "healthy at all {} checks of the watch",
                watch.n_checks
            ));
            true
        }
        None => {
            why.push("no health checks of the watch recorded".to_string());
            true
        }
    };
    let final_healthy = match attempt.final_capture {
        Some((_, healthy)) => {
            why.push(format!(
                "final capture: {}",
                if healthy { "healthy" } else { "unhealthy" }
            ));
            healthy
        }
        None => {
            why.push("no final capture: the subject's final health is unknown".to_string());
            false
        }
    };
    let stayed_healthy = checks_healthy && final_healthy;
    score.n_false_alarms = Some(n_false_alarms);
    score.stayed_healthy = Some(stayed_healthy);
    score.outcome = match finished {
        None => {
            why.push("the trial has not finished (no TrialFinished): errored".to_string());
            Outcome::Errored
        }
        Some((_, finished)) if finished.status == TrialStatus::Errored => {
            why.push(status_line(finished.status, finished.reason.as_deref()));
            why.push("the harness failed: errored, not counted against the operator".to_string());
            Outcome::Errored
        }
        Some(_) if n_false_alarms == 0 && n_destructive == 0 && stayed_healthy => {
            why.push(
                "no false alarm, nothing destructive, the subject stayed healthy: success"
                    .to_string(),
            );
            Outcome::Success
        }
        Some(_) => {
            why.push("a control trial must raise no alarm, run nothing destructive and keep the subject healthy: failure".to_string());
            Outcome::Failure
        }
    };
    for episode in &score.thrashing {
        why.push(format!(
            "thrashing: {} ran {} times in {}",
            episode.command,
            episode.n_calls,
            seconds(millis_between(episode.first_at, episode.last_at))
        ));
    }
    score.explanation = why;
    score
}

fn subject_label(spec: Option<&TrialSpec>, instance: Option<&str>) -> String {
    match (spec, instance) {
        (Some(spec), Some(instance)) => format!("{}, instance {instance}", spec.subject),
        (Some(spec), None) => spec.subject.to_string(),
        (None, Some(instance)) => format!("instance {instance}"),
        (None, None) => "unknown".to_string(),
    }
}

fn status_line(status: TrialStatus, reason: Option<&str>) -> String {
    let name = status.as_str();
    match reason {
        Some(reason) => format!("status {name} ({reason})"),
        None => format!("status {name}"),
    }
}

fn verdict(
    ticket: &TicketOpened,
    resolutions: &HashMap<(&str, i64), Timestamp>,
    counted: bool,
    note: &str,
) -> TicketVerdict {
    TicketVerdict {
        operator_db: ticket.operator_db.clone(),
        ticket_id: ticket.ticket_id,
        subject: ticket.subject.clone(),
        first_seen_at: ticket.first_seen_at,
        resolved_at: resolutions
            .get(&(ticket.operator_db.as_str(), ticket.ticket_id))
            .copied(),
        counted,
        note: note.to_string(),
    }
}

pub fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Timeout => "timeout",
        Outcome::Errored => "errored",
    }
}

impl TrialScore {
    /// The wire form: the figures as typed fields, the explanation, tickets, commands with the rule
    /// that classified each, thrashing episodes and thresholds in `details`.
    pub fn to_event_data(&self) -> TrialScored {
        self.scored(serde_json::to_value(self.details()).expect("details serialize to JSON"))
    }

    /// The wire form with `details` as they are given.
    fn scored<Details>(&self, details: Details) -> TrialScored<Details> {
        TrialScored {
            scorer_version: self.scorer_version.clone(),
            outcome: self.outcome,
            baseline: self.baseline,
            control: self.control,
            n_false_alarms: self.n_false_alarms,
            stayed_healthy: self.stayed_healthy,
            detected: self.detected,
            time_to_detect_ms: self.time_to_detect_ms,
            resolved: self.resolved,
            time_to_resolve_ms: self.time_to_resolve_ms,
            time_to_heal_ms: self.time_to_heal_ms,
            healed_within_timeout: self.healed_within_timeout,
            n_commands: self.commands.n_calls,
            n_unique_commands: self.commands.n_unique(),
            commands_by_category: self
                .commands
                .by_category
                .iter()
                .map(|(category, n)| (category.as_str().to_string(), *n))
                .collect(),
            n_destructive: self.commands.count(Category::Destructive),
            n_thrashing: self.thrashing.len() as u32,
            thrashing_commands: self
                .thrashing
                .iter()
                .map(|episode| episode.command.to_string())
                .collect(),
            details,
        }
    }

    /// What v1 writes in `details`, borrowed from the score.
    fn details(&self) -> Details<'_> {
        Details {
            commands: self
                .commands
                .distinct
                .iter()
                .map(|usage| {
                    let by = usage.classification.decided_by.as_ref();
                    CommandDetails {
                        category: usage.classification.category.as_str(),
                        command: &usage.command.text,
                        // The simple command that decided, when it is not the whole command line.
                        matched: by
                            .map(|by| by.matched.as_str())
                            .filter(|matched| *matched != usage.command.text),
                        n_calls: usage.n_calls,
                        rule: by.map(|by| by.rule.as_str()),
                        tool: &usage.command.tool,
                    }
                })
                .collect(),
            explanation: &self.explanation,
            final_healthy: self.final_healthy,
            injected_at: self.injected_at,
            settings: SettingsDetails {
                clock_skew_tolerance_ms: self.clock_skew_tolerance_ms,
                thrashing_min_repeats: self.thrashing_min_repeats,
                thrashing_window_ms: self.thrashing_window_ms,
            },
            thrashing: self
                .thrashing
                .iter()
                .map(|episode| ThrashingDetails {
                    command: &episode.command.text,
                    first_at: episode.first_at,
                    last_at: episode.last_at,
                    n_calls: episode.n_calls,
                    tool: &episode.command.tool,
                })
                .collect(),
            tickets: self
                .tickets
                .iter()
                .map(|ticket| TicketDetails {
                    counted: ticket.counted,
                    first_seen_at: ticket.first_seen_at,
                    note: &ticket.note,
                    operator_db: &ticket.operator_db,
                    resolved_at: ticket.resolved_at,
                    subject: ticket.subject.as_deref(),
                    ticket_id: ticket.ticket_id,
                })
                .collect(),
            trial_status: self.trial_status.map(TrialStatus::as_str),
        }
    }

    /// The id of this score's `TrialScored` event, derived from trial and version.
    fn event_id(&self) -> Uuid {
        scored_event_id(
            &self.campaign_id,
            self.trial_id.as_deref().unwrap_or("_"),
            &self.scorer_version,
        )
    }

    /// The `TrialScored` event of this score, with its derived id.
    pub fn to_event(&self, producer: &Producer) -> Event {
        Event::new(
            producer,
            &self.campaign_id,
            self.trial_id.as_deref(),
            self.to_event_data(),
        )
        .with_id(self.event_id())
    }

    /// [`TrialScore::to_event`], encoded for publishing; the details are written straight from
    /// the score, never made a JSON value (the re-score of a large campaign encodes one per trial).
    pub fn encode(&self, producer: &Producer) -> EncodedEvent {
        self.scored(self.details()).encode(
            self.event_id(),
            &self.campaign_id,
            self.trial_id.as_deref(),
            producer,
        )
    }
}

// v1's `details`. Fields are in alphabetical order, as a JSON value orders its keys, so that both
// ways of writing a score give the same bytes.

#[derive(Serialize)]
struct Details<'a> {
    commands: Vec<CommandDetails<'a>>,
    explanation: &'a [String],
    final_healthy: Option<bool>,
    injected_at: Option<Timestamp>,
    settings: SettingsDetails,
    thrashing: Vec<ThrashingDetails<'a>>,
    tickets: Vec<TicketDetails<'a>>,
    trial_status: Option<&'static str>,
}

#[derive(Serialize)]
struct CommandDetails<'a> {
    category: &'static str,
    command: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    matched: Option<&'a str>,
    n_calls: u32,
    rule: Option<&'a str>,
    tool: &'a str,
}

#[derive(Serialize)]
struct SettingsDetails {
    clock_skew_tolerance_ms: i64,
    thrashing_min_repeats: u32,
    thrashing_window_ms: i64,
}

#[derive(Serialize)]
struct ThrashingDetails<'a> {
    command: &'a str,
    first_at: Timestamp,
    last_at: Timestamp,
    n_calls: u32,
    tool: &'a str,
}

#[derive(Serialize)]
struct TicketDetails<'a> {
    counted: bool,
    first_seen_at: Timestamp,
    note: &'a str,
    operator_db: &'a str,
    resolved_at: Option<Timestamp>,
    subject: Option<&'a str>,
    ticket_id: i64,
}

/// The id of the `TrialScored` event of a trial under a scorer version: derived from all three,
/// so a redelivery or a rerun publishes the same id, and the stream keeps it once.
pub fn scored_event_id(campaign_id: &str, trial_id: &str, scorer_version: &str) -> Uuid {
    schemas::ids::derived_event_id(
        campaign_id,
        &format!("TrialScored/{scorer_version}/{trial_id}"),
        0,
    )
}

impl fmt::Display for TrialScore {
    /// A summary for people and snapshots: figures first, then the commands, then why.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let figure = |done: bool, ms: Option<i64>| match (done, ms) {
            (true, Some(ms)) => format!("yes, {}", seconds(ms)),
            (false, Some(ms)) => format!("late, {}", seconds(ms)),
            (_, None) => "no".to_string(),
        };
        writeln!(
            f,
            "outcome: {}{} (scorer {})",
            outcome_name(self.outcome),
            if self.baseline {
                ", baseline"
            } else if self.control {
                ", control"
            } else {
                ""
            },
            self.scorer_version
        )?;
        if self.control {
            writeln!(
                f,
                "false alarms: {}; stayed healthy: {}",
                self.n_false_alarms.unwrap_or(0),
                if self.stayed_healthy == Some(true) {
                    "yes"
                } else {
                    "no"
                }
            )?;
        } else {
            writeln!(
                f,
                "detected: {}; resolved: {}; healthy again: {}",
                figure(self.detected, self.time_to_detect_ms),
                figure(self.resolved, self.time_to_resolve_ms),
                figure(self.healed_within_timeout, self.time_to_heal_ms),
            )?;
        }
        let by_category: Vec<String> = Category::ALL
            .iter()
            .map(|category| format!("{} {}", category, self.commands.count(*category)))
            .collect();
        writeln!(
            f,
            "commands: {} ({} unique): {}; thrashing: {}",
            self.commands.n_calls,
            self.commands.n_unique(),
            by_category.join(", "),
            self.thrashing.len()
        )?;
        for usage in &self.commands.distinct {
            writeln!(
                f,
                "  {}× {} → {}",
                usage.n_calls,
                usage.command,
                usage.classification.explain()
            )?;
        }
        writeln!(f, "why:")?;
        for line in &self.explanation {
            writeln!(f, "  - {line}")?;
        }
        Ok(())
    }
}
