//! The rows of the tables the fold keeps whole (`trials`, `campaigns`): one function each,
//! writing a [`TrialRow`] or [`CampaignRow`] column by column in the table's order.

use crate::buffer::TableBuffer;
use crate::project::{CampaignRow, TrialRow};

pub(crate) fn trial_row(buffer: &mut TableBuffer, t: &TrialRow) {
    let row = buffer
        .row()
        .text(Some(&t.trial_id))
        .text(Some(&t.campaign_id))
        .int(t.trial_index)
        .text(t.subject.as_deref())
        .text(t.chaos_type.as_deref())
        .int(t.chaos_index)
        .text(t.chaos_json.as_deref())
        .text(t.variant.as_deref())
        .bool(t.baseline)
        .bool(t.control)
        .int(t.repetition)
        .ubigint(t.seed)
        .int(t.timeout_seconds)
        .text(t.state.as_deref())
        .text(t.status.as_deref())
        .text(t.reason.as_deref())
        .text(t.worker.as_deref())
        .int(t.attempt)
        .time(t.requested_at)
        .time(t.started_at)
        .time(t.reset_at)
        .time(t.healthy_at)
        .time(t.injected_at)
        .text(t.target.as_deref())
        .time(t.ticket_first_seen_at)
        .time(t.ticket_opened_at)
        .time(t.session_started_at)
        .time(t.ticket_resolved_at)
        .time(t.cleaned_up_at)
        .text(t.cleanup_error.as_deref())
        .time(t.finished_at)
        .bigint(t.duration_ms)
        .bool(t.initial_healthy)
        .bool(t.final_healthy)
        .text(t.initial_state_json.as_deref())
        .text(t.final_state_json.as_deref())
        .text(t.operator_db.as_deref())
        .int(t.n_log_entries)
        .int(t.n_tool_calls)
        .time(t.last_event_at)
        .ubigint(t.first_seq)
        .ubigint(t.last_seq);
    let score = t.score.clone().unwrap_or_default();
    row.text(score.outcome.as_deref())
        .bool(score.detected)
        .bigint(score.time_to_detect_ms)
        .bigint(score.time_to_resolve_ms)
        .bigint(score.time_to_heal_ms)
        .int(score.n_commands)
        .int(score.n_unique_commands)
        .int(score.n_destructive)
        .int(score.n_thrashing)
        .int(score.n_false_alarms)
        .bool(score.stayed_healthy)
        .end();
}

pub(crate) fn campaign_row(buffer: &mut TableBuffer, c: &CampaignRow) {
    buffer
        .row()
        .text(Some(&c.campaign_id))
        .text(c.name.as_deref())
        .text(c.file_name.as_deref())
        .time(c.published_at)
        .ubigint(c.seed)
        .int(c.n_trials)
        .int(c.n_baseline_trials)
        .text(c.subjects_json.as_deref())
        .text(c.chaos_types_json.as_deref())
        .text(c.variants_json.as_deref())
        .text(c.campaign_json.as_deref())
        .text(c.file_text.as_deref())
        .int(Some(c.n_started))
        .int(Some(c.n_finished))
        .time(c.finished_at)
        .text(c.status.as_deref())
        .text(c.by_status_json.as_deref())
        .end();
}
