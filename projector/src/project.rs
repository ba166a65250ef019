//! Events → rows. A pure, in-memory fold: [`Projection::apply`] takes each stored message in
//! stream order; the rows it yields wait in buffers until the writer commits them together with
//! the stream sequence they reach.

use std::collections::{BTreeSet, HashMap};

use duckdb::arrow::record_batch::RecordBatch;
use schemas::event::{
    AgentLogEntryType, AgentLogRecorded, CapturePhase, Event, EventData, OperatorCaptureFinished,
    OperatorRow, Timestamp, TrialScored,
};
use schemas::log::StoredMessage;
use scoring::commands::CommandId;
use scoring::rules::Category;

use crate::buffer::TableBuffer;
use crate::rows::{campaign_row, trial_row};
use crate::schema;

/// A trial's row in `trials`, as the fold knows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrialRow {
    pub trial_id: String,
    pub campaign_id: String,
    pub trial_index: Option<i32>,
    pub subject: Option<String>,
    pub chaos_type: Option<String>,
    pub chaos_index: Option<i32>,
    pub chaos_json: Option<String>,
    pub variant: Option<String>,
    pub baseline: Option<bool>,
    pub control: Option<bool>,
    pub repetition: Option<i32>,
    pub seed: Option<u64>,
    pub timeout_seconds: Option<i32>,
    pub state: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub worker: Option<String>,
    pub attempt: Option<i32>,
    pub requested_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub reset_at: Option<Timestamp>,
    pub healthy_at: Option<Timestamp>,
    pub injected_at: Option<Timestamp>,
    pub target: Option<String>,
    pub ticket_first_seen_at: Option<Timestamp>,
    pub ticket_opened_at: Option<Timestamp>,
    pub session_started_at: Option<Timestamp>,
    pub ticket_resolved_at: Option<Timestamp>,
    pub cleaned_up_at: Option<Timestamp>,
    pub cleanup_error: Option<String>,
    pub finished_at: Option<Timestamp>,
    pub duration_ms: Option<i64>,
    pub initial_healthy: Option<bool>,
    pub final_healthy: Option<bool>,
    pub initial_state_json: Option<String>,
    pub final_state_json: Option<String>,
    pub operator_db: Option<String>,
    pub n_log_entries: Option<i32>,
    pub n_tool_calls: Option<i32>,
    pub last_event_at: Option<Timestamp>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The latest score's figures (`score_*`).
    pub score: Option<TrialScore>,
    /// The row is in the table already (a commit must replace it, not only append it).
    pub in_table: bool,
}

/// The figures of a trial's latest score that `trials` carries, so that scorecards read one
/// table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrialScore {
    pub outcome: Option<String>,
    pub detected: Option<bool>,
    pub time_to_detect_ms: Option<i64>,
    pub time_to_resolve_ms: Option<i64>,
    pub time_to_heal_ms: Option<i64>,
    pub n_commands: Option<i32>,
    pub n_unique_commands: Option<i32>,
    pub n_destructive: Option<i32>,
    pub n_thrashing: Option<i32>,
    pub n_false_alarms: Option<i32>,
    pub stayed_healthy: Option<bool>,
}

/// A campaign's row in `campaigns`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CampaignRow {
    pub campaign_id: String,
    pub name: Option<String>,
    pub file_name: Option<String>,
    pub published_at: Option<Timestamp>,
    pub seed: Option<u64>,
    pub n_trials: Option<i32>,
    pub n_baseline_trials: Option<i32>,
    pub subjects_json: Option<String>,
    pub chaos_types_json: Option<String>,
    pub variants_json: Option<String>,
    pub campaign_json: Option<String>,
    pub file_text: Option<String>,
    pub n_started: i32,
    pub n_finished: i32,
    pub finished_at: Option<Timestamp>,
    pub status: Option<String>,
    pub by_status_json: Option<String>,
}

impl CampaignRow {
    fn refresh_status(&mut self) {
        let all_finished = self.n_trials.is_some_and(|n| n > 0 && self.n_finished >= n);
        let status = if self.finished_at.is_some() || all_finished {
            "finished"
        } else if self.n_started > 0 {
            "running"
        } else {
            "published"
        };
        self.status = Some(status.to_string());
    }
}

/// What one commit writes, taken out of the projection by [`Projection::take_batch`].
#[derive(Debug)]
pub struct Batch {
    /// New rows of the append-only tables (`events`, `scores`, `tool_calls`, `agent_log`, the
    /// `operator_*` tables, …).
    pub appended: Vec<(&'static schema::Table, RecordBatch)>,
    /// The rows of the trials that changed, and the keys of those to delete first.
    pub trials: (Vec<String>, RecordBatch),
    /// The same for campaigns.
    pub campaigns: (Vec<String>, RecordBatch),
    /// Events applied into this batch.
    pub events: usize,
    /// The last stream sequence applied into it.
    pub last_sequence: u64,
}

/// The fold's state and its pending rows.
#[derive(Debug)]
pub struct Projection {
    pub trials: HashMap<String, TrialRow>,
    pub campaigns: HashMap<String, CampaignRow>,
    /// Trials and campaigns whose row changed since the last commit.
    pub dirty_trials: BTreeSet<String>,
    pub dirty_campaigns: BTreeSet<String>,
    pub events: TableBuffer,
    pub scores: TableBuffer,
    pub tool_calls: TableBuffer,
    pub score_commands: TableBuffer,
    pub agent_log: TableBuffer,
    pub operator_db_files: TableBuffer,
    pub operator_tickets: TableBuffer,
    pub operator_sessions: TableBuffer,
    pub operator_log_entries: TableBuffer,
    /// The last stream sequence applied.
    pub last_sequence: u64,
    /// Events applied since the last commit.
    pub uncommitted: usize,
}

impl Projection {
    pub fn new(last_sequence: u64) -> Projection {
        Projection {
            trials: HashMap::new(),
            campaigns: HashMap::new(),
            dirty_trials: BTreeSet::new(),
            dirty_campaigns: BTreeSet::new(),
            events: TableBuffer::new(&schema::EVENTS),
            scores: TableBuffer::new(&schema::SCORES),
            tool_calls: TableBuffer::new(&schema::TOOL_CALLS),
            score_commands: TableBuffer::new(&schema::SCORE_COMMANDS),
            agent_log: TableBuffer::new(&schema::AGENT_LOG),
            operator_db_files: TableBuffer::new(&schema::OPERATOR_DB_FILES),
            operator_tickets: TableBuffer::new(&schema::OPERATOR_TICKETS),
            operator_sessions: TableBuffer::new(&schema::OPERATOR_SESSIONS),
            operator_log_entries: TableBuffer::new(&schema::OPERATOR_LOG_ENTRIES),
            last_sequence,
            uncommitted: 0,
        }
    }

    /// Applies one stored message. Nothing read from the log stops the fold: an envelope that
    /// cannot be read is kept in `events` with its error.
    pub fn apply(&mut self, stored: &StoredMessage) {
        self.last_sequence = stored.sequence;
        self.uncommitted += 1;
        // An event under another event's subject is kept as unreadable: its subject is what its
        // publisher was allowed to publish.
        let read = Event::from_json_with_data(&stored.payload)
            .map_err(|error| format!("unreadable envelope: {error}"))
            .and_then(|(event, data)| {
                event.check_subject(&stored.subject)?;
                Ok((event, data))
            });
        match read {
            Ok((event, data)) => {
                let read_error = match &event.data {
                    EventData::Other(other) => other.read_error.clone(),
                    _ => None,
                };
                self.events
                    .row()
                    .ubigint(Some(stored.sequence))
                    .text(Some(event.id.hyphenated().encode_lower(&mut [0; 36])))
                    .text(Some(event.event_type()))
                    .text(Some(&event.campaign_id))
                    .text(event.trial_id.as_deref())
                    .time(Some(event.occurred_at))
                    .text(Some(&event.producer.stage))
                    .text(Some(&event.producer.host))
                    .int(i32::try_from(event.schema_version).ok())
                    .text(Some(data.get()))
                    .text(read_error.as_deref())
                    .end();
                self.apply_event(stored.sequence, &event);
            }
            Err(error) => {
                // The subject still says which campaign, trial and type the message was meant as.
                let tokens: Vec<&str> = stored.subject.split('.').collect();
                let token = |index: usize| tokens.get(index).copied();
                self.events
                    .row()
                    .ubigint(Some(stored.sequence))
                    .text(stored.msg_id.as_deref())
                    .text(token(3))
                    .text(token(1))
                    .text(token(2).filter(|trial| *trial != "_"))
                    .time(None)
                    .text(None)
                    .text(None)
                    .int(None)
                    .text(Some(&String::from_utf8_lossy(&stored.payload)))
                    .text(Some(&error))
                    .end();
                // A known trial's range of sequences covers it, so that its timeline shows it.
                if let Some(trial_id) = token(2)
                    && let Some(trial) = self.trials.get_mut(trial_id)
                {
                    trial.first_seq.get_or_insert(stored.sequence);
                    trial.last_seq = Some(stored.sequence);
                    self.dirty_trials.insert(trial_id.to_string());
                }
            }
        }
    }

    fn campaign(&mut self, campaign_id: &str) -> &mut CampaignRow {
        self.dirty_campaigns.insert(campaign_id.to_string());
        self.campaigns
            .entry(campaign_id.to_string())
            .or_insert_with(|| CampaignRow {
                campaign_id: campaign_id.to_string(),
                ..CampaignRow::default()
            })
    }

    fn apply_event(&mut self, sequence: u64, event: &Event) {
        let at = event.occurred_at;
        if let EventData::CampaignPublished(published) = &event.data {
            let campaign = self.campaign(&event.campaign_id);
            let json = |value: serde_json::Value| Some(value.to_string());
            campaign.name = Some(published.name.clone());
            campaign.file_name = Some(published.file_name.clone());
            campaign.published_at = Some(at);
            campaign.seed = Some(published.seed);
            campaign.n_trials = i32::try_from(published.n_trials).ok();
            campaign.n_baseline_trials = i32::try_from(published.n_baseline_trials).ok();
            let file = &published.campaign;
            campaign.subjects_json = serde_json::to_value(&file.subjects).ok().and_then(json);
            campaign.chaos_types_json = json(serde_json::Value::Array(
                file.chaos_types
                    .iter()
                    .map(|chaos| chaos.chaos_type().as_str().into())
                    .collect(),
            ));
            campaign.variants_json = json(serde_json::Value::Array(
                published
                    .variants
                    .iter()
                    .map(|variant| variant.variant.name.clone().into())
                    .collect(),
            ));
            campaign.campaign_json = serde_json::to_string(file).ok();
            campaign.file_text = Some(published.file_text.clone());
            campaign.refresh_status();
            return;
        }
        if let EventData::CampaignFinished(finished) = &event.data {
            let campaign = self.campaign(&event.campaign_id);
            campaign.finished_at = Some(at);
            campaign.by_status_json = serde_json::to_string(&finished.by_status).ok();
            campaign.refresh_status();
            return;
        }
        let Some(trial_id) = event.trial_id.as_deref() else {
            return;
        };
        if let EventData::TrialScored(scored) = &event.data {
            self.score_row(sequence, event, trial_id, scored);
            self.score_command_rows(sequence, event, trial_id, scored);
        }
        if let EventData::AgentLogRecorded(entry) = &event.data {
            self.log_rows(sequence, event, trial_id, entry);
        }
        if let EventData::OperatorCaptureFinished(finished) = &event.data {
            self.capture_rows(sequence, event, trial_id, finished);
        }

        let mut started = false;
        let mut finished = false;
        // Most events belong to a known trial that is already dirty: no key to allocate.
        if !self.trials.contains_key(trial_id) {
            self.trials.insert(
                trial_id.to_string(),
                TrialRow {
                    trial_id: trial_id.to_string(),
                    campaign_id: event.campaign_id.clone(),
                    ..TrialRow::default()
                },
            );
        }
        if !self.dirty_trials.contains(trial_id) {
            self.dirty_trials.insert(trial_id.to_string());
        }
        let trial = self
            .trials
            .get_mut(trial_id)
            .expect("the trial was inserted above");
        trial.last_event_at = Some(trial.last_event_at.map_or(at, |last| last.max(at)));
        trial.first_seq.get_or_insert(sequence);
        trial.last_seq = Some(sequence);
        let state = |trial: &mut TrialRow, state: &str| trial.state = Some(state.to_string());
        match &event.data {
            EventData::TrialRequested(requested) => {
                let spec = &requested.trial;
                trial.trial_index = i32::try_from(spec.trial_index).ok();
                trial.subject = Some(spec.subject.as_str().to_string());
                trial.chaos_type = Some(spec.chaos.chaos_type().as_str().to_string());
                trial.chaos_index = i32::try_from(spec.chaos_index).ok();
                trial.chaos_json = serde_json::to_string(&spec.chaos).ok();
                trial.variant.clone_from(&spec.variant);
                trial.baseline = Some(spec.baseline);
                trial.control = Some(spec.is_control());
                trial.repetition = i32::try_from(spec.repetition).ok();
                trial.seed = Some(spec.seed);
                trial.timeout_seconds = i32::try_from(spec.timeout_seconds).ok();
                trial.requested_at = Some(at);
                if trial.state.is_none() {
                    state(trial, "requested");
                }
            }
            EventData::TrialStarted(worker) => {
                started = trial.started_at.is_none();
                trial.worker = Some(worker.worker.clone());
                trial.attempt = i32::try_from(worker.attempt).ok();
                trial.started_at = Some(at);
                state(trial, "started");
            }
            EventData::SubjectReset(_) => {
                trial.reset_at = Some(at);
                state(trial, "reset");
            }
            // Healthy after the injection is the subject healing, not a phase of the trial.
            EventData::SubjectHealthy(_) if trial.injected_at.is_none() => {
                trial.healthy_at = Some(at);
                state(trial, "healthy");
            }
            EventData::StateCaptured(captured) => {
                let text = Some(captured.state.to_string());
                match captured.phase {
                    CapturePhase::Initial => {
                        trial.initial_healthy = Some(captured.healthy);
                        trial.initial_state_json = text;
                    }
                    CapturePhase::Final => {
                        trial.final_healthy = Some(captured.healthy);
                        trial.final_state_json = text;
                    }
                }
            }
            EventData::ChaosInjected(injected) => {
                trial.injected_at = Some(at);
                trial.target.clone_from(&injected.target);
                state(trial, "injected");
            }
            EventData::TicketOpened(ticket) => {
                trial
                    .ticket_first_seen_at
                    .get_or_insert(ticket.first_seen_at);
                trial.ticket_opened_at.get_or_insert(at);
                trial
                    .operator_db
                    .get_or_insert_with(|| ticket.operator_db.clone());
                state(trial, "ticket_opened");
            }
            EventData::AgentSessionStarted(session) => {
                trial.session_started_at.get_or_insert(session.started_at);
                trial
                    .operator_db
                    .get_or_insert_with(|| session.operator_db.clone());
                state(trial, "session_started");
            }
            EventData::AgentLogRecorded(entry) => {
                *trial.n_log_entries.get_or_insert(0) += 1;
                if entry.entry_type == AgentLogEntryType::ToolCall {
                    *trial.n_tool_calls.get_or_insert(0) += 1;
                }
                trial
                    .operator_db
                    .get_or_insert_with(|| entry.operator_db.clone());
            }
            EventData::TicketResolved(resolved) => {
                trial.ticket_resolved_at.get_or_insert(resolved.resolved_at);
                state(trial, "ticket_resolved");
            }
            EventData::ChaosCleanedUp(_) => {
                trial.cleaned_up_at = Some(at);
                state(trial, "cleaned_up");
            }
            EventData::ChaosCleanupFailed(failed) => {
                trial.cleanup_error = Some(failed.error.clone());
                state(trial, "cleanup_failed");
            }
            // The stream's order is the scores' order: the last applied is the latest.
            EventData::TrialScored(scored) => {
                trial.score = Some(TrialScore {
                    outcome: Some(outcome_name(scored).to_string()),
                    detected: Some(scored.detected),
                    time_to_detect_ms: scored.time_to_detect_ms,
                    time_to_resolve_ms: scored.time_to_resolve_ms,
                    time_to_heal_ms: scored.time_to_heal_ms,
                    n_commands: i32::try_from(scored.n_commands).ok(),
                    n_unique_commands: i32::try_from(scored.n_unique_commands).ok(),
                    n_destructive: i32::try_from(scored.n_destructive).ok(),
                    n_thrashing: i32::try_from(scored.n_thrashing).ok(),
                    n_false_alarms: scored.n_false_alarms.and_then(|n| i32::try_from(n).ok()),
                    stayed_healthy: scored.stayed_healthy,
                });
            }
            EventData::TrialFinished(done) => {
                finished = trial.finished_at.is_none();
                trial.status = Some(done.status.as_str().to_string());
                trial.reason.clone_from(&done.reason);
                trial.finished_at = Some(at);
                trial.duration_ms = trial
                    .started_at
                    .map(|started| (at.unix_micros() - started.unix_micros()) / 1000);
                state(trial, "finished");
            }
            _ => {}
        }
        let campaign_id = trial.campaign_id.clone();
        if started || finished {
            let campaign = self.campaign(&campaign_id);
            campaign.n_started += i32::from(started);
            campaign.n_finished += i32::from(finished);
            campaign.refresh_status();
        }
    }

    fn score_row(&mut self, sequence: u64, event: &Event, trial_id: &str, scored: &TrialScored) {
        let count = |category: Category| {
            scored
                .commands_by_category
                .get(category.as_str())
                .and_then(|n| i32::try_from(*n).ok())
                .or(Some(0))
        };
        let int = |n: u32| i32::try_from(n).ok();
        self.scores
            .row()
            .ubigint(Some(sequence))
            .text(Some(&event.campaign_id))
            .text(Some(trial_id))
            .time(Some(event.occurred_at))
            .text(Some(&scored.scorer_version))
            .text(Some(outcome_name(scored)))
            .bool(Some(scored.baseline))
            .bool(Some(scored.control))
            .bool(Some(scored.detected))
            .bigint(scored.time_to_detect_ms)
            .bool(Some(scored.resolved))
            .bigint(scored.time_to_resolve_ms)
            .bigint(scored.time_to_heal_ms)
            .bool(Some(scored.healed_within_timeout))
            .int(scored.n_false_alarms.and_then(int))
            .bool(scored.stayed_healthy)
            .int(int(scored.n_commands))
            .int(int(scored.n_unique_commands))
            .int(count(Category::Diagnostic))
            .int(count(Category::Remediation))
            .int(int(scored.n_destructive))
            .int(count(Category::Other))
            .int(int(scored.n_thrashing))
            .text(
                serde_json::to_string(&scored.thrashing_commands)
                    .ok()
                    .as_deref(),
            )
            .text(Some(&scored.details.to_string()))
            // Older scores of the trial lose the mark when this one is committed.
            .bool(Some(true))
            .end();
    }

    fn log_rows(
        &mut self,
        sequence: u64,
        event: &Event,
        trial_id: &str,
        entry: &schemas::event::AgentLogRecorded,
    ) {
        let params = entry.tool_params.as_ref().map(serde_json::Value::to_string);
        self.agent_log
            .row()
            .ubigint(Some(sequence))
            .text(Some(&event.campaign_id))
            .text(Some(trial_id))
            .time(Some(entry.timestamp))
            .text(Some(&entry.operator_db))
            .text(Some(&entry.session_id))
            .bigint(Some(entry.entry_id))
            .text(Some(entry_type_name(entry.entry_type)))
            .text(entry.content.as_deref())
            .text(entry.tool_name.as_deref())
            .text(params.as_deref())
            .text(entry.tool_params_raw.as_deref())
            .bigint(entry.exit_code)
            .end();
        self.operator_entry_row(sequence, event, trial_id, entry);
        if entry.entry_type != AgentLogEntryType::ToolCall {
            return;
        }
        let command = CommandId::of(
            entry.tool_name.as_deref(),
            entry.tool_params.as_ref(),
            entry.tool_params_raw.as_deref(),
        );
        self.tool_calls
            .row()
            .ubigint(Some(sequence))
            .text(Some(&event.campaign_id))
            .text(Some(trial_id))
            .time(Some(entry.timestamp))
            .text(Some(&entry.session_id))
            .bigint(Some(entry.entry_id))
            .text(Some(&command.tool))
            .text(Some(&command.text))
            .end();
    }

    /// The `operator_log_entries` row of an entry: as written when the capture sent the row,
    /// else (events captured before rows travelled, legacy imports) from the typed fields.
    fn operator_entry_row(
        &mut self,
        sequence: u64,
        event: &Event,
        trial_id: &str,
        entry: &AgentLogRecorded,
    ) {
        let typed = || {
            let mut row = OperatorRow::new();
            row.insert("id".to_string(), entry.entry_id.into());
            row.insert("session_id".to_string(), entry.session_id.clone().into());
            row.insert(
                "entry_type".to_string(),
                entry_type_name(entry.entry_type).into(),
            );
            row.insert("tool_name".to_string(), entry.tool_name.clone().into());
            row.insert(
                "tool_params".to_string(),
                entry
                    .tool_params_raw
                    .clone()
                    .or_else(|| entry.tool_params.as_ref().map(|params| params.to_string()))
                    .into(),
            );
            row.insert("exit_code".to_string(), entry.exit_code.into());
            row.insert("timestamp".to_string(), entry.timestamp.to_string().into());
            row
        };
        let mut written = entry.row.clone().unwrap_or_else(typed);
        written.insert("content".to_string(), entry.content.clone().into());
        operator_row(
            &mut self.operator_log_entries,
            sequence,
            event,
            trial_id,
            &entry.operator_db,
            &written,
        );
    }

    /// The rows of a capture's end: the file, the trial's ticket and its sessions.
    fn capture_rows(
        &mut self,
        sequence: u64,
        event: &Event,
        trial_id: &str,
        finished: &OperatorCaptureFinished,
    ) {
        let count = |n: usize| i32::try_from(n).ok();
        self.operator_db_files
            .row()
            .ubigint(Some(sequence))
            .text(Some(&event.campaign_id))
            .text(Some(trial_id))
            .text(Some(&finished.operator_db))
            .text(Some(&event.producer.host))
            .text(Some(finished.status.as_str()))
            .text(finished.error.as_deref())
            .ubigint(finished.size_bytes)
            .time(finished.modified_at)
            .int(count(usize::from(finished.ticket.is_some())))
            .int(count(finished.sessions.len()))
            .int(i32::try_from(finished.n_log_entries).ok())
            .end();
        if let Some(ticket) = &finished.ticket {
            operator_row(
                &mut self.operator_tickets,
                sequence,
                event,
                trial_id,
                &finished.operator_db,
                ticket,
            );
        }
        for session in &finished.sessions {
            operator_row(
                &mut self.operator_sessions,
                sequence,
                event,
                trial_id,
                &finished.operator_db,
                session,
            );
        }
    }

    /// The `score_commands` rows of a score: each distinct command with the category, rule and
    /// match the scorer gave it (its `details.commands`).
    fn score_command_rows(
        &mut self,
        sequence: u64,
        event: &Event,
        trial_id: &str,
        scored: &TrialScored,
    ) {
        let Some(commands) = scored.details.get("commands").and_then(|c| c.as_array()) else {
            return;
        };
        for command in commands {
            let text = |key: &str| command.get(key).and_then(|value| value.as_str());
            let rule = text("rule");
            // The scorer leaves out `matched` when it is the whole command.
            let matched = text("matched").or(rule.and(text("command")));
            self.score_commands
                .row()
                .ubigint(Some(sequence))
                .text(Some(&event.campaign_id))
                .text(Some(trial_id))
                .text(Some(&scored.scorer_version))
                .text(text("tool"))
                .text(text("command"))
                .text(text("category"))
                .text(rule)
                .text(matched)
                .int(
                    command
                        .get("n_calls")
                        .and_then(|n| n.as_u64())
                        .and_then(|n| i32::try_from(n).ok()),
                )
                .end();
        }
    }

    /// Everything applied since the last commit, for the writer: the projection then starts the
    /// next batch while this one is written.
    pub fn take_batch(&mut self) -> Batch {
        let appended = [
            &mut self.events,
            &mut self.scores,
            &mut self.tool_calls,
            &mut self.score_commands,
            &mut self.agent_log,
            &mut self.operator_db_files,
            &mut self.operator_tickets,
            &mut self.operator_sessions,
            &mut self.operator_log_entries,
        ]
        .into_iter()
        .filter(|buffer| !buffer.is_empty())
        .map(|buffer| (buffer.table, buffer.take_batch()))
        .collect();
        let (replaced_trials, mut trials) = self.take_dirty_trials();
        let (replaced_campaigns, mut campaigns) = self.take_dirty_campaigns();
        let batch = Batch {
            appended,
            trials: (replaced_trials, trials.take_batch()),
            campaigns: (replaced_campaigns, campaigns.take_batch()),
            events: self.uncommitted,
            last_sequence: self.last_sequence,
        };
        self.uncommitted = 0;
        batch
    }

    /// The `trials` rows of the trials changed since the last commit, and the keys of those among
    /// them already in the table (to delete first). A rebuild mostly appends new trials, so it
    /// deletes little.
    fn take_dirty_trials(&mut self) -> (Vec<String>, TableBuffer) {
        let mut buffer = TableBuffer::new(&schema::TRIALS);
        let mut replaced = Vec::new();
        for key in std::mem::take(&mut self.dirty_trials) {
            if let Some(trial) = self.trials.get_mut(&key) {
                trial_row(&mut buffer, trial);
                if trial.in_table {
                    replaced.push(key);
                }
                trial.in_table = true;
            }
        }
        (replaced, buffer)
    }

    /// The `campaigns` rows of the campaigns changed since the last commit, and their keys.
    fn take_dirty_campaigns(&mut self) -> (Vec<String>, TableBuffer) {
        let mut buffer = TableBuffer::new(&schema::CAMPAIGNS);
        let keys: Vec<String> = std::mem::take(&mut self.dirty_campaigns)
            .into_iter()
            .collect();
        for key in &keys {
            if let Some(campaign) = self.campaigns.get(key) {
                campaign_row(&mut buffer, campaign);
            }
        }
        (keys, buffer)
    }
}

/// One row of an `operator_*` table: where it came from, then the contract's columns as written.
fn operator_row(
    buffer: &mut TableBuffer,
    sequence: u64,
    event: &Event,
    trial_id: &str,
    operator_db: &str,
    written: &OperatorRow,
) {
    let table = buffer.table;
    let mut row = buffer
        .row()
        .ubigint(Some(sequence))
        .text(Some(&event.campaign_id))
        .text(Some(trial_id))
        .text(Some(operator_db));
    for column in &table.columns[schema::OPERATOR_PREFIX..] {
        row = row.written(written.get(column.name));
    }
    row.end();
}

fn outcome_name(scored: &TrialScored) -> &'static str {
    match scored.outcome {
        schemas::event::Outcome::Success => "success",
        schemas::event::Outcome::Failure => "failure",
        schemas::event::Outcome::Timeout => "timeout",
        schemas::event::Outcome::Errored => "errored",
    }
}

fn entry_type_name(entry_type: AgentLogEntryType) -> &'static str {
    match entry_type {
        AgentLogEntryType::Reasoning => "reasoning",
        AgentLogEntryType::ToolCall => "tool_call",
        AgentLogEntryType::ToolResult => "tool_result",
    }
}
