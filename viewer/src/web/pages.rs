//! The pages, as `maud` markup: every value inserted with `(…)` is HTML-escaped, so whatever an
//! agent or a campaign file wrote is shown as text. Each page renders the fields of its data's
//! struct (the same struct its JSON is), so a page names only fields that exist.

use std::collections::{BTreeMap, BTreeSet};

use super::charts::{Series, strip_plot};
use super::data::{CampaignPage, VariantsPage};
use crate::query::{QueryResult, Truncation, display};
use crate::show::{CampaignTrial, TrialShown};
use crate::views::CampaignList;
use crate::views::scorecard::{ComparisonCard, GroupCard};
use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

// ---------------------------------------------------------------------------------------------
// small pieces

/// An optional value as text, empty when absent.
fn text<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map_or_else(String::new, ToString::to_string)
}

/// Percent-encoding for a query value or a path segment.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_string(), |rate| format!("{:.0}%", rate * 100.0))
}

fn interval_percent(interval: Option<[f64; 2]>) -> String {
    interval.map_or_else(String::new, |[low, high]| {
        format!("{:.0}–{:.0}%", low * 100.0, high * 100.0)
    })
}

/// Milliseconds (whole or not) as seconds.
fn seconds<T: Into<f64>>(ms: Option<T>) -> String {
    ms.map_or_else(
        || "–".to_string(),
        |ms| format!("{:.1} s", ms.into() / 1000.0),
    )
}

/// Whole milliseconds as seconds.
fn seconds_i(ms: Option<i64>) -> String {
    seconds(ms.map(|ms| ms as f64))
}

fn interval_seconds(interval: Option<[f64; 2]>) -> String {
    interval.map_or_else(String::new, |[low, high]| {
        format!("{:.1}–{:.1} s", low / 1000.0, high / 1000.0)
    })
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

fn outcome(value: Option<&str>) -> Markup {
    let outcome = value.unwrap_or("");
    let class = match outcome {
        "success" | "succeeded" => "success",
        "failure" | "failed" => "failure",
        "timeout" | "timed_out" => "timeout",
        "errored" => "errored",
        _ => "pending",
    };
    html! { span class={ "badge " (class) } { @if outcome.is_empty() { "pending" } @else { (outcome) } } }
}

fn status(value: Option<&str>) -> Markup {
    let status = value.unwrap_or("unknown");
    html! { span class={ "badge status-" (status) } { (status) } }
}

/// A success rate with its interval and n, as a table cell's content.
fn rate_cell(group: &GroupCard) -> Markup {
    html! {
        span.rate { (percent(group.success_rate)) }
        @let interval = interval_percent(group.success_interval);
        @if !interval.is_empty() { " " span.ci { "[" (interval) "]" } }
        " " span.n { "n=" (group.n_graded) }
    }
}

fn layout(title: &str, live: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · eval" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body data-live=[live.then_some("1")] {
                header.top {
                    a.brand href="/" { "eval" }
                    nav {
                        a href="/" { "Campaigns" }
                        a href="/variants" { "Variants" }
                        a href="/sql" { "SQL" }
                    }
                    @if live { span.live title="updates as the projector commits" { "live" } }
                }
                main { (body) }
            }
        }
    }
}

/// An error page: what went wrong and where to go.
pub fn error(status: StatusCode, message: &str) -> Markup {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    layout(
        &title,
        false,
        html! {
            h1 { (title) }
            p.error { (message) }
            p { a href="/" { "All campaigns" } " · " a href="/sql" { "Query the tables" } }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// campaigns

pub fn campaigns(data: &CampaignList) -> Markup {
    let filter = data.filter.as_deref().unwrap_or("");
    let rows = &data.campaigns;
    layout(
        "Campaigns",
        true,
        html! {
            h1 { "Campaigns" }
            form.filter method="get" action="/" role="search" {
                input type="search" name="q" value=(filter) placeholder="Filter by name, id, status or file" aria-label="Filter campaigns";
                button type="submit" { "Filter" }
                @if !filter.is_empty() { a href="/" { "clear" } }
            }
            div #campaigns data-refresh {
                @if rows.is_empty() {
                    p.empty {
                        @if filter.is_empty() {
                            "No campaigns yet: `evalctl publish FILE` adds one, `evalctl project` (or `evalctl up`) fills the database."
                        } @else { "No campaign matches “" (filter) "”." }
                    }
                } @else {
                    div.scroll { table {
                        thead { tr {
                            th { "Campaign" } th { "Status" } th { "Published (UTC)" }
                            th { "Progress" } th.num { "Trials" } th.num { "Success (n)" }
                        } }
                        tbody {
                            @for row in rows {
                                @let id = &row.campaign_id;
                                @let n_trials = row.n_trials.unwrap_or(0).max(0);
                                @let n_finished = row.n_finished.unwrap_or(0).max(0);
                                tr {
                                    td {
                                        a href={ "/campaigns/" (encode(id)) } { (text(&row.name)) }
                                        br; code.id { (short(id)) }
                                    }
                                    td { (status(row.status.as_deref())) }
                                    td { (text(&row.published_at)) }
                                    td { progress value=(n_finished) max=(n_trials.max(1)) {} " " span.muted { (n_finished) "/" (n_trials) } }
                                    td.num { (row.n_started.unwrap_or(0).max(0)) " started" br; span.muted { (row.n_errored.max(0)) " errored" } }
                                    td.num {
                                        span.rate { (percent(row.success_rate)) }
                                        " " span.n { "n=" (row.n_graded.max(0)) }
                                    }
                                }
                            }
                        }
                    } }
                }
            }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// campaign

fn trial_flags(trial: &CampaignTrial) -> Markup {
    html! {
        @if trial.n_destructive.unwrap_or(0) > 0 { span.flag.destructive { "destructive" } " " }
        @if trial.n_thrashing.unwrap_or(0) > 0 { span.flag.thrashing { "thrashing" } }
    }
}

pub fn campaign(data: &CampaignPage) -> Markup {
    let campaign = &data.campaign;
    let id = &campaign.campaign_id;
    let name = text(&campaign.name);
    let trials = &data.trials;
    let running = campaign.status.as_deref() != Some("finished");

    // subject × chaos → variant label → group
    let mut grid: BTreeMap<(String, String), BTreeMap<String, &GroupCard>> = BTreeMap::new();
    let mut labels = BTreeSet::new();
    for group in &data.groups {
        labels.insert(group.group.clone());
        grid.entry((text(&group.subject), text(&group.chaos_type)))
            .or_default()
            .insert(group.group.clone(), group);
    }
    // subject × chaos → variant label → (TTD values, TTR values)
    type Times = (Vec<f64>, Vec<f64>);
    let mut times: BTreeMap<(String, String), BTreeMap<String, Times>> = BTreeMap::new();
    for trial in trials {
        let entry = times
            .entry((text(&trial.subject), text(&trial.chaos_type)))
            .or_default()
            .entry(text(&trial.variant))
            .or_default();
        if let Some(ms) = trial.time_to_detect_ms {
            entry.0.push(ms as f64);
        }
        if trial.outcome.as_deref() == Some("success")
            && let Some(ms) = trial.time_to_resolve_ms
        {
            entry.1.push(ms as f64);
        }
    }

    layout(
        &name,
        running,
        html! {
            p.crumbs { a href="/" { "Campaigns" } " / " code { (short(id)) } }
            h1 { (name) " " (status(campaign.status.as_deref())) }
            div #summary data-refresh {
                p.meta {
                    "File " code { (text(&campaign.file_name)) } ", published " (text(&campaign.published_at)) " UTC, seed " (text(&campaign.seed)) ". "
                    (text(&campaign.n_trials)) " trials (" (text(&campaign.n_baseline_trials)) " baseline): "
                    (text(&campaign.n_started)) " started, " (text(&campaign.n_finished)) " finished, "
                    (data.n_scored) " scored."
                }
                @if let (Some(finished), Some(all)) = (campaign.n_finished, campaign.n_trials) {
                    progress.wide value=(finished) max=(all.max(1)) {}
                }
            }
            section #grid data-refresh {
                h2 { "Success by subject × chaos × variant" }
                @if grid.is_empty() { p.empty { "No scored trials yet." } } @else {
                    p.muted { "Success rate with its 95% Wilson interval and the number of graded trials (errored trials are not graded)." }
                    div.scroll { table.grid {
                        thead { tr { th { "Subject × chaos" } @for label in &labels { th { (label) } } } }
                        tbody { @for ((subject, chaos), row) in &grid { tr {
                            th { (subject) " × " (chaos)
                                br; a.small href={ "/variants?subject=" (encode(subject)) "&chaos=" (encode(chaos)) } { "compare variants →" } }
                            @for label in &labels { td {
                                @if let Some(group) = row.get(label) {
                                    (rate_cell(group))
                                    @if let Some(control) = &group.control {
                                        br; span.muted.small { "false alarms " (control.n_with_false_alarm) "/" (group.n_graded) " (control)" }
                                    } @else {
                                        br; span.muted.small { "TTD " (seconds(group.median_time_to_detect_ms)) " · TTR " (seconds(group.median_time_to_recover_ms)) }
                                    }
                                } @else { span.muted { "–" } }
                            } }
                        } } }
                    } }
                }
            }
            section #charts data-refresh {
                h2 { "Time to detect and to recover" }
                @for ((subject, chaos), by_label) in &times {
                    h3 { (subject) " × " (chaos) }
                    div.charts {
                        figure {
                            figcaption { "Time to detect (detected trials)" }
                            (strip_plot("time to detect", &by_label.iter().map(|(label, (ttd, _))| Series { label: label.clone(), values_ms: ttd.clone() }).collect::<Vec<_>>()))
                        }
                        figure {
                            figcaption { "Time to resolve (successful trials)" }
                            (strip_plot("time to resolve", &by_label.iter().map(|(label, (_, ttr))| Series { label: label.clone(), values_ms: ttr.clone() }).collect::<Vec<_>>()))
                        }
                    }
                }
            }
            section #baseline data-refresh {
                h2 { "Against the baseline (no operator)" }
                @if data.baseline.is_empty() { p.empty { "No scored operator trials to compare yet." } }
                @for comparison in &data.baseline {
                    h3 { (comparison.subject) " × " (comparison.chaos_type) }
                    @if let Some(error) = &comparison.error {
                        p.muted { (error) ": run a campaign with include_baseline: true." }
                    }
                    @if let Some(compared) = &comparison.compared {
                        p.muted { "Baseline trials from " (comparison.baseline_source) "." }
                        (scorecard(&compared.groups))
                        (verdicts(&compared.comparison))
                    }
                }
            }
            section #trials data-refresh {
                h2 { "Trials" }
                div.scroll { table.trials {
                    thead { tr {
                        th.num { "#" } th { "Trial" } th { "Subject" } th { "Chaos" } th { "Variant" }
                        th { "Status" } th { "Outcome" } th.num { "TTD" } th.num { "TTR" } th.num { "Cmds" } th { "Flags" }
                    } }
                    tbody { @for trial in trials {
                        @let trial_id = &trial.trial_id;
                        tr {
                            td.num { (text(&trial.trial_index)) }
                            td { a href={ "/trials/" (encode(trial_id)) } { code { (trial_id.chars().take(10).collect::<String>()) } } }
                            td { (text(&trial.subject)) }
                            td { (text(&trial.chaos_type)) }
                            td { (text(&trial.variant)) }
                            td { @if trial.status.is_none() { (text(&trial.state)) } @else { (text(&trial.status)) } }
                            td { (outcome(trial.outcome.as_deref())) }
                            td.num { (seconds_i(trial.time_to_detect_ms)) }
                            td.num { (seconds_i(trial.time_to_resolve_ms)) }
                            td.num { (text(&trial.n_commands)) }
                            td { (trial_flags(trial)) }
                        }
                    } }
                } }
            }
            @if !data.variants.is_empty() {
                section {
                    h2 { "Variants" }
                    @for variant in &data.variants {
                        details.variant {
                            summary { strong { (text(&variant.name)) } @if let Some(model) = &variant.model { " · " (model) } span.muted { " " (text(&variant.file)) } }
                            @if let Some(prompt) = &variant.system_prompt { pre.prompt { (prompt) } } @else { p.muted { "No system prompt." } }
                        }
                    }
                }
            }
            details {
                summary { "Campaign file" }
                pre { (text(&data.file_text)) }
            }
            p.muted { "As JSON: " a href={ "/api/campaigns/" (encode(id)) } { "/api/campaigns/" (short(id)) } }
        },
    )
}

/// A scorecard table of groups.
fn scorecard(groups: &[GroupCard]) -> Markup {
    html! {
        div.scroll { table.scorecard {
            thead { tr {
                th { "" } th.num { "n" } th { "Success [95% CI]" } th { "Median TTD [95% CI] (n)" } th { "Median TTR [95% CI] (n)" }
                th.num { "Cmds" } th.num { "Destructive" } th.num { "Thrashing" }
            } }
            tbody { @for group in groups {
                @let n = group.n_graded;
                tr {
                    th { (group.group) }
                    td.num { (group.n_trials) }
                    td { (rate_cell(group)) }
                    td { (seconds(group.median_time_to_detect_ms)) " " span.ci { (interval_seconds(group.time_to_detect_interval_ms)) } " " span.n { "(" (group.n_detected) ")" } }
                    td { (seconds(group.median_time_to_recover_ms)) " " span.ci { (interval_seconds(group.time_to_recover_interval_ms)) } " " span.n { "(" (group.n_recovered) ")" } }
                    td.num { (group.mean_commands.map_or_else(|| "–".to_string(), |x| format!("{x:.1}"))) }
                    td.num { (group.n_with_destructive) "/" (n) }
                    td.num { (group.n_with_thrashing) "/" (n) }
                }
            } }
        } }
    }
}

fn verdicts(comparison: &ComparisonCard) -> Markup {
    html! {
        ul.verdicts { @for verdict in &comparison.verdicts {
            li class=(if verdict.winner.is_none() { "no-winner" } else { "winner" }) { (verdict.text) }
        } }
        p.muted.small { @if comparison.paired { "Paired tests: the trials ran on the same seeds." } @else { "Independent samples." } }
    }
}

// ---------------------------------------------------------------------------------------------
// trial

fn fold_threshold(text: &str) -> bool {
    text.lines().count() > 12 || text.len() > 1_500
}

fn folded(text: &str) -> Markup {
    html! {
        @if fold_threshold(text) {
            details.output {
                summary { (text.lines().count()) " lines · " (text.lines().next().unwrap_or("")) }
                pre { (text) }
            }
        } @else { pre.output { (text) } }
    }
}

fn relative_time(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "?".to_string(),
        |ms| format!("{:+.1} s", ms as f64 / 1000.0),
    )
}

pub fn trial(data: &TrialShown) -> Markup {
    let trial = &data.trial;
    let trial_id = &trial.trial_id;
    let campaign_id = &trial.campaign_id;
    let timeline = &data.timeline;
    let scores = &data.scores;
    let live = trial.state.as_deref() != Some("finished");
    let initial = crate::show::flatten_state(&text(&trial.initial_state_json));
    let final_state = crate::show::flatten_state(&text(&trial.final_state_json));
    let paths: BTreeSet<&String> = initial.keys().chain(final_state.keys()).collect();
    let chaos_events: Vec<_> = timeline
        .iter()
        .filter(|event| {
            matches!(
                event.kind.as_str(),
                "ChaosInjected" | "ChaosCleanedUp" | "ChaosCleanupFailed"
            )
        })
        .collect();
    layout(
        &format!("Trial {}", short(trial_id)),
        live,
        html! {
            p.crumbs {
                a href="/" { "Campaigns" } " / "
                a href={ "/campaigns/" (encode(campaign_id)) } { (text(&trial.campaign_name)) } " / "
                "trial #" (text(&trial.trial_index))
            }
            h1 { "Trial " code { (short(trial_id)) } " " (outcome(scores.last().and_then(|score| score.outcome.as_deref()))) }
            div #header data-refresh {
                p.meta {
                    (text(&trial.subject)) " × " (text(&trial.chaos_type)) " on " (text(&trial.target)) ", "
                    @if let Some(variant) = &trial.variant { "variant " strong { (variant) } } @else { "baseline (no operator)" }
                    ". State " (text(&trial.state)) ", status " (text(&trial.status))
                    @if let Some(reason) = &trial.reason { " (" (reason) ")" } "."
                }
            }
            section #timeline data-refresh {
                h2 { "Timeline" }
                p.muted { "Seconds from the injection; the agent's entries at the operator's clock." }
                ol.timeline { @for event in timeline {
                    @let kind = &event.kind;
                    @let entry = event.entry_type.as_deref().unwrap_or("");
                    @let class = if kind == "AgentLogRecorded" { format!("agent {entry}") } else { "lifecycle".to_string() };
                    li class=(class) {
                        span.at { (relative_time(event.at_ms_from_injection)) }
                        div.body {
                            @match (kind.as_str(), entry) {
                                ("AgentLogRecorded", "reasoning") => {
                                    span.kind { "reasoning" }
                                    p.reasoning { (text(&event.content)) }
                                }
                                ("AgentLogRecorded", "tool_call") => {
                                    span.kind { "tool call" } " " span.muted { (text(&event.tool_name)) }
                                    pre.command { (text(&event.command)) }
                                    span class={ "category " (text(&event.category)) } { (text(&event.category)) }
                                    " " span.muted.small { "rule " (event.rule.as_deref().unwrap_or("none")) }
                                }
                                ("AgentLogRecorded", "tool_result") => {
                                    span.kind { "tool result" } " "
                                    span class=(if event.exit_code == Some(0) { "exit ok" } else { "exit bad" }) { "exit " (text(&event.exit_code)) }
                                    (folded(&text(&event.content)))
                                }
                                ("AgentLogRecorded", _) => {
                                    span.kind { (entry) }
                                    (folded(&text(&event.content)))
                                }
                                _ => {
                                    span.kind { (kind) } " " span { (event.summary) }
                                }
                            }
                        }
                    }
                } }
            }
            section #state data-refresh {
                h2 { "State: initial and final" }
                @if paths.is_empty() { p.empty { "No state captured." } } @else {
                    div.scroll { table.state {
                        thead { tr { th { "Path" } th { "Initial" } th { "Final" } } }
                        tbody { @for path in &paths {
                            @let (before, after) = (initial.get(*path), final_state.get(*path));
                            tr class=[(before != after).then_some("changed")] {
                                td { code { (path) } }
                                td { @if let Some(value) = before { (value) } @else { span.muted { "(absent)" } } }
                                td { @if let Some(value) = after { (value) } @else { span.muted { "(absent)" } } }
                            }
                        } }
                    } }
                    p.muted.small { (data.state_diff.len()) " values differ (marked)." }
                }
            }
            section #scores data-refresh {
                h2 { "Scores" }
                @if scores.is_empty() { p.empty { "Not scored yet." } }
                @for score in scores {
                    div.score {
                        h3 { code { (text(&score.scorer_version)) } " " (outcome(score.outcome.as_deref())) }
                        p {
                            "Detected " (text(&score.detected)) " (TTD " (seconds_i(score.time_to_detect_ms)) "), resolved "
                            (text(&score.resolved)) " (TTR " (seconds_i(score.time_to_resolve_ms)) "), healed in "
                            (seconds_i(score.time_to_heal_ms)) ". "
                            (text(&score.n_commands)) " commands: " (text(&score.n_diagnostic)) " diagnostic, "
                            (text(&score.n_remediation)) " remediation, " (text(&score.n_destructive)) " destructive, "
                            (text(&score.n_thrashing)) " thrashing."
                        }
                        @let lines = score.explanation();
                        @if !lines.is_empty() {
                            ul.explanation { @for line in &lines { li { (line) } } }
                        }
                    }
                }
            }
            section #chaos data-refresh {
                h2 { "Chaos and its cleanup" }
                @if chaos_events.is_empty() { p.empty { "No fault was injected." } }
                @for event in &chaos_events {
                    details open {
                        summary { (event.kind) " at " (relative_time(event.at_ms_from_injection)) ": " (event.summary) }
                        pre { (serde_json::to_string_pretty(&event.data).unwrap_or_default()) }
                    }
                }
            }
            p.muted { "As JSON: " a href={ "/api/trials/" (encode(trial_id)) } { "/api/trials/" (short(trial_id)) } }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// variants

pub fn variants(data: &VariantsPage) -> Markup {
    let chosen = (
        data.subject.as_deref().unwrap_or(""),
        data.chaos_type.as_deref().unwrap_or(""),
    );
    let choices = &data.choices;
    let cards: &[GroupCard] = data
        .scorecard
        .as_ref()
        .map_or(&[], |scorecard| &scorecard.variants);
    let series = |detect: bool| -> Vec<Series> {
        cards
            .iter()
            .map(|card| Series {
                label: card.group.clone(),
                values_ms: card
                    .times
                    .as_ref()
                    .map(|times| {
                        if detect {
                            &times.times_to_detect_ms
                        } else {
                            &times.times_to_recover_ms
                        }
                    })
                    .into_iter()
                    .flatten()
                    .map(|&ms| ms as f64)
                    .collect(),
            })
            .collect()
    };
    layout(
        "Variants",
        false,
        html! {
            h1 { "Compare variants" }
            @if choices.is_empty() {
                p.empty { "No variant has run yet." }
            } @else {
                nav.choices aria-label="Subject × chaos" {
                    ul { @for choice in choices {
                        @let (subject, chaos) = (&choice.subject, &choice.chaos_type);
                        li { a class=[(subject == chosen.0 && chaos == chosen.1).then_some("chosen")] href={ "/variants?subject=" (encode(subject)) "&chaos=" (encode(chaos)) } { (subject) " × " (chaos) } }
                    } }
                }
            }
            @if let Some(scorecard_data) = &data.scorecard {
                h2 { (chosen.0) " × " (chosen.1) }
                p.muted { "Every scored operator trial of these over all campaigns; best: " strong { (text(&scorecard_data.best)) } "." }
                (scorecard(cards))
                div.charts {
                    figure { figcaption { "Time to detect" } (strip_plot("time to detect", &series(true))) }
                    figure { figcaption { "Time to recover" } (strip_plot("time to recover", &series(false))) }
                }
                @for comparison in &scorecard_data.comparisons {
                    h3 { (comparison.a) " vs " (comparison.b) }
                    (verdicts(comparison))
                }
            } @else if !choices.is_empty() {
                p { "Choose a subject and chaos type above." }
            }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// SQL

pub fn sql(query: &str, answer: Option<Result<&QueryResult, &str>>) -> Markup {
    let tables = super::data::tables();
    layout(
        "SQL",
        false,
        html! {
            h1 { "SQL" }
            p.muted { "One read-only SELECT over the DuckDB tables, with the protections of `evalctl sql`: no writes, files, settings or extensions; at most 1,000 rows here (100,000 in the CSV) and 30 seconds." }
            form.sql method="get" action="/sql" {
                textarea name="q" rows="6" spellcheck="false" aria-label="SQL query" placeholder="SELECT subject, chaos_type, outcome, count(*) FROM trial_summary GROUP BY ALL" { (query) }
                div { button type="submit" { "Run" } span.muted.small { " Ctrl+Enter runs it" } }
            }
            @match answer {
                Some(Ok(result)) => {
                    p.meta {
                        (result.rows.len()) " rows" @if result.truncated_by == Some(Truncation::Bytes) { " (truncated: the answer reached its size limit)" } @else if result.truncated { " (more were left off)" } " in " (result.elapsed_ms) " ms · "
                        a href={ "/sql.csv?q=" (encode(query)) } download="query.csv" { "Download CSV" }
                    }
                    div.scroll { table.results {
                        thead { tr { @for (column, kind) in result.columns.iter().zip(&result.types) { th title=(kind) { (column) } } } }
                        tbody { @for row in &result.rows { tr { @for value in row {
                            td class=[value.is_number().then_some("num")] { @if value.is_null() { span.muted { "NULL" } } @else { (display(value)) } }
                        } } } }
                    } }
                }
                Some(Err(message)) => { p.error { (message) } }
                None => {}
            }
            h2 { "Tables" }
            @for table in &tables.tables {
                details.table {
                    summary { code { (table.name) } " " span.muted { (table.doc) } }
                    table.columns { tbody { @for column in &table.columns {
                        tr { td { code { (column.name) } } td.muted { (column.kind) } td { (column.doc) } }
                    } } }
                }
            }
            h3 { "Views" }
            ul { @for view in &tables.views { li { code { (view.name) } ": " (view.doc) } } }
        },
    )
}
