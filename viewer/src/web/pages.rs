//! The pages, as `maud` markup: every value inserted with `(…)` is HTML-escaped, so whatever an
//! agent or a campaign file wrote is shown as text. Each page renders its JSON data.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::charts::{Series, strip_plot};
use crate::query::{QueryResult, display};

// ---------------------------------------------------------------------------------------------
// small pieces

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        other => display(other),
    }
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

fn percent(rate: &Value) -> String {
    rate.as_f64()
        .map_or_else(|| "–".to_string(), |rate| format!("{:.0}%", rate * 100.0))
}

fn interval_percent(interval: &Value) -> String {
    match (interval[0].as_f64(), interval[1].as_f64()) {
        (Some(low), Some(high)) => format!("{:.0}–{:.0}%", low * 100.0, high * 100.0),
        _ => String::new(),
    }
}

fn seconds(ms: &Value) -> String {
    ms.as_f64()
        .map_or_else(|| "–".to_string(), |ms| format!("{:.1} s", ms / 1000.0))
}

fn interval_seconds(interval: &Value) -> String {
    match (interval[0].as_f64(), interval[1].as_f64()) {
        (Some(low), Some(high)) => format!("{:.1}–{:.1} s", low / 1000.0, high / 1000.0),
        _ => String::new(),
    }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

fn outcome(value: &Value) -> Markup {
    let outcome = value.as_str().unwrap_or("");
    let class = match outcome {
        "success" | "succeeded" => "success",
        "failure" | "failed" => "failure",
        "timeout" | "timed_out" => "timeout",
        "errored" => "errored",
        _ => "pending",
    };
    html! { span class={ "badge " (class) } { @if outcome.is_empty() { "pending" } @else { (outcome) } } }
}

fn status(value: &Value) -> Markup {
    let status = value.as_str().unwrap_or("unknown");
    html! { span class={ "badge status-" (status) } { (status) } }
}

/// A success rate with its interval and n, as a table cell's content.
fn rate_cell(group: &Value) -> Markup {
    html! {
        span.rate { (percent(&group["success_rate"])) }
        @let interval = interval_percent(&group["success_interval"]);
        @if !interval.is_empty() { " " span.ci { "[" (interval) "]" } }
        " " span.n { "n=" (group["n_graded"].as_u64().unwrap_or(0)) }
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

pub fn campaigns(data: &Value) -> Markup {
    let filter = data["filter"].as_str().unwrap_or("");
    let rows = data["campaigns"].as_array().cloned().unwrap_or_default();
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
                            @for row in &rows {
                                @let id = text(&row["campaign_id"]);
                                @let n_trials = row["n_trials"].as_u64().unwrap_or(0);
                                @let n_finished = row["n_finished"].as_u64().unwrap_or(0);
                                tr {
                                    td {
                                        a href={ "/campaigns/" (encode(&id)) } { (text(&row["name"])) }
                                        br; code.id { (short(&id)) }
                                    }
                                    td { (status(&row["status"])) }
                                    td { (text(&row["published_at"])) }
                                    td { progress value=(n_finished) max=(n_trials.max(1)) {} " " span.muted { (n_finished) "/" (n_trials) } }
                                    td.num { (row["n_started"].as_u64().unwrap_or(0)) " started" br; span.muted { (row["n_errored"].as_u64().unwrap_or(0)) " errored" } }
                                    td.num {
                                        span.rate { (percent(&row["success_rate"])) }
                                        " " span.n { "n=" (row["n_graded"].as_u64().unwrap_or(0)) }
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

fn trial_flags(trial: &Value) -> Markup {
    html! {
        @if trial["n_destructive"].as_i64().unwrap_or(0) > 0 { span.flag.destructive { "destructive" } " " }
        @if trial["n_thrashing"].as_i64().unwrap_or(0) > 0 { span.flag.thrashing { "thrashing" } }
    }
}

pub fn campaign(data: &Value) -> Markup {
    let campaign = &data["campaign"];
    let id = text(&campaign["campaign_id"]);
    let name = text(&campaign["name"]);
    let trials = data["trials"].as_array().cloned().unwrap_or_default();
    let groups = data["groups"].as_array().cloned().unwrap_or_default();
    let running = campaign["status"].as_str() != Some("finished");

    // subject × chaos → variant label → group
    let mut grid: BTreeMap<(String, String), BTreeMap<String, &Value>> = BTreeMap::new();
    let mut labels = BTreeSet::new();
    for group in &groups {
        let label = text(&group["group"]);
        labels.insert(label.clone());
        grid.entry((text(&group["subject"]), text(&group["chaos_type"])))
            .or_default()
            .insert(label, group);
    }
    // subject × chaos → variant label → (TTD values, TTR values)
    type Times = (Vec<f64>, Vec<f64>);
    let mut times: BTreeMap<(String, String), BTreeMap<String, Times>> = BTreeMap::new();
    for trial in &trials {
        let label = text(&trial["variant"]);
        let entry = times
            .entry((text(&trial["subject"]), text(&trial["chaos_type"])))
            .or_default()
            .entry(label)
            .or_default();
        if let Some(ms) = trial["time_to_detect_ms"].as_f64() {
            entry.0.push(ms);
        }
        if trial["outcome"].as_str() == Some("success")
            && let Some(ms) = trial["time_to_resolve_ms"].as_f64()
        {
            entry.1.push(ms);
        }
    }

    layout(
        &name,
        running,
        html! {
            p.crumbs { a href="/" { "Campaigns" } " / " code { (short(&id)) } }
            h1 { (name) " " (status(&campaign["status"])) }
            div #summary data-refresh {
                p.meta {
                    "File " code { (text(&campaign["file_name"])) } ", published " (text(&campaign["published_at"])) " UTC, seed " (text(&campaign["seed"])) ". "
                    (text(&campaign["n_trials"])) " trials (" (text(&campaign["n_baseline_trials"])) " baseline): "
                    (text(&campaign["n_started"])) " started, " (text(&campaign["n_finished"])) " finished, "
                    (data["n_scored"].as_u64().unwrap_or(0)) " scored."
                }
                @if let (Some(finished), Some(all)) = (campaign["n_finished"].as_u64(), campaign["n_trials"].as_u64()) {
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
                                    @if group["control"].as_bool() == Some(true) {
                                        br; span.muted.small { "false alarms " (group["n_with_false_alarm"].as_u64().unwrap_or(0)) "/" (group["n_graded"].as_u64().unwrap_or(0)) " (control)" }
                                    } @else {
                                        br; span.muted.small { "TTD " (seconds(&group["median_time_to_detect_ms"])) " · TTR " (seconds(&group["median_time_to_recover_ms"])) }
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
                @let comparisons = data["baseline"].as_array().cloned().unwrap_or_default();
                @if comparisons.is_empty() { p.empty { "No scored operator trials to compare yet." } }
                @for comparison in &comparisons {
                    h3 { (text(&comparison["subject"])) " × " (text(&comparison["chaos_type"])) }
                    @if let Some(error) = comparison["error"].as_str() {
                        p.muted { (error) ": run a campaign with include_baseline: true." }
                    } @else {
                        p.muted { "Baseline trials from " (text(&comparison["baseline_source"])) "." }
                        (scorecard(comparison["groups"].as_array().map(Vec::as_slice).unwrap_or_default()))
                        (verdicts(&comparison["comparison"]))
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
                    tbody { @for trial in &trials {
                        @let trial_id = text(&trial["trial_id"]);
                        tr {
                            td.num { (text(&trial["trial_index"])) }
                            td { a href={ "/trials/" (encode(&trial_id)) } { code { (trial_id.chars().take(10).collect::<String>()) } } }
                            td { (text(&trial["subject"])) }
                            td { (text(&trial["chaos_type"])) }
                            td { (text(&trial["variant"])) }
                            td { @if trial["status"].is_null() { (text(&trial["state"])) } @else { (text(&trial["status"])) } }
                            td { (outcome(&trial["outcome"])) }
                            td.num { (seconds(&trial["time_to_detect_ms"])) }
                            td.num { (seconds(&trial["time_to_resolve_ms"])) }
                            td.num { (text(&trial["n_commands"])) }
                            td { (trial_flags(trial)) }
                        }
                    } }
                } }
            }
            @let variants = data["variants"].as_array().cloned().unwrap_or_default();
            @if !variants.is_empty() {
                section {
                    h2 { "Variants" }
                    @for variant in &variants {
                        details.variant {
                            summary { strong { (text(&variant["name"])) } @if !variant["model"].is_null() { " · " (text(&variant["model"])) } span.muted { " " (text(&variant["file"])) } }
                            @if let Some(prompt) = variant["system_prompt"].as_str() { pre.prompt { (prompt) } } @else { p.muted { "No system prompt." } }
                        }
                    }
                }
            }
            details {
                summary { "Campaign file" }
                pre { (text(&campaign["file_text"])) }
            }
            p.muted { "As JSON: " a href={ "/api/campaigns/" (encode(&id)) } { "/api/campaigns/" (short(&id)) } }
        },
    )
}

/// A scorecard table of groups (`group_json` of the views).
fn scorecard(groups: &[Value]) -> Markup {
    html! {
        div.scroll { table.scorecard {
            thead { tr {
                th { "" } th.num { "n" } th { "Success [95% CI]" } th { "Median TTD [95% CI] (n)" } th { "Median TTR [95% CI] (n)" }
                th.num { "Cmds" } th.num { "Destructive" } th.num { "Thrashing" }
            } }
            tbody { @for group in groups {
                @let n = group["n_graded"].as_u64().unwrap_or(0);
                tr {
                    th { (text(&group["group"])) }
                    td.num { (group["n_trials"].as_u64().unwrap_or(0)) }
                    td { (rate_cell(group)) }
                    td { (seconds(&group["median_time_to_detect_ms"])) " " span.ci { (interval_seconds(&group["time_to_detect_interval_ms"])) } " " span.n { "(" (group["n_detected"].as_u64().unwrap_or(0)) ")" } }
                    td { (seconds(&group["median_time_to_recover_ms"])) " " span.ci { (interval_seconds(&group["time_to_recover_interval_ms"])) } " " span.n { "(" (group["n_recovered"].as_u64().unwrap_or(0)) ")" } }
                    td.num { (group["mean_commands"].as_f64().map_or_else(|| "–".to_string(), |x| format!("{x:.1}"))) }
                    td.num { (group["n_with_destructive"].as_u64().unwrap_or(0)) "/" (n) }
                    td.num { (group["n_with_thrashing"].as_u64().unwrap_or(0)) "/" (n) }
                }
            } }
        } }
    }
}

fn verdicts(comparison: &Value) -> Markup {
    html! {
        ul.verdicts { @for verdict in comparison["verdicts"].as_array().into_iter().flatten() {
            li class=(if verdict["winner"].is_null() { "no-winner" } else { "winner" }) { (text(&verdict["text"])) }
        } }
        p.muted.small { @if comparison["paired"].as_bool() == Some(true) { "Paired tests: the trials ran on the same seeds." } @else { "Independent samples." } }
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

fn relative_time(ms: &Value) -> String {
    ms.as_i64().map_or_else(
        || "?".to_string(),
        |ms| format!("{:+.1} s", ms as f64 / 1000.0),
    )
}

pub fn trial(data: &Value) -> Markup {
    let trial = &data["trial"];
    let trial_id = text(&trial["trial_id"]);
    let campaign_id = text(&trial["campaign_id"]);
    let timeline = data["timeline"].as_array().cloned().unwrap_or_default();
    let scores = data["scores"].as_array().cloned().unwrap_or_default();
    let live = trial["state"].as_str() != Some("finished");
    let initial = crate::show::flatten_state(&text(&trial["initial_state_json"]));
    let final_state = crate::show::flatten_state(&text(&trial["final_state_json"]));
    let paths: BTreeSet<&String> = initial.keys().chain(final_state.keys()).collect();
    let chaos_events: Vec<&Value> = timeline
        .iter()
        .filter(|event| {
            matches!(
                event["type"].as_str(),
                Some("ChaosInjected" | "ChaosCleanedUp" | "ChaosCleanupFailed")
            )
        })
        .collect();
    layout(
        &format!("Trial {}", short(&trial_id)),
        live,
        html! {
            p.crumbs {
                a href="/" { "Campaigns" } " / "
                a href={ "/campaigns/" (encode(&campaign_id)) } { (text(&trial["campaign_name"])) } " / "
                "trial #" (text(&trial["trial_index"]))
            }
            h1 { "Trial " code { (short(&trial_id)) } " " (outcome(&scores.last().map_or(Value::Null, |s| s["outcome"].clone()))) }
            div #header data-refresh {
                p.meta {
                    (text(&trial["subject"])) " × " (text(&trial["chaos_type"])) " on " (text(&trial["target"])) ", "
                    @if let Some(variant) = trial["variant"].as_str() { "variant " strong { (variant) } } @else { "baseline (no operator)" }
                    ". State " (text(&trial["state"])) ", status " (text(&trial["status"]))
                    @if let Some(reason) = trial["reason"].as_str() { " (" (reason) ")" } "."
                }
            }
            section #timeline data-refresh {
                h2 { "Timeline" }
                p.muted { "Seconds from the injection; the agent's entries at the operator's clock." }
                ol.timeline { @for event in &timeline {
                    @let kind = text(&event["type"]);
                    @let entry = event["entry_type"].as_str().unwrap_or("");
                    @let class = if kind == "AgentLogRecorded" { format!("agent {entry}") } else { "lifecycle".to_string() };
                    li class=(class) {
                        span.at { (relative_time(&event["at_ms_from_injection"])) }
                        div.body {
                            @match (kind.as_str(), entry) {
                                ("AgentLogRecorded", "reasoning") => {
                                    span.kind { "reasoning" }
                                    p.reasoning { (text(&event["content"])) }
                                }
                                ("AgentLogRecorded", "tool_call") => {
                                    span.kind { "tool call" } " " span.muted { (text(&event["tool_name"])) }
                                    pre.command { (text(&event["command"])) }
                                    span class={ "category " (text(&event["category"])) } { (text(&event["category"])) }
                                    " " span.muted.small { "rule " (event["rule"].as_str().unwrap_or("none")) }
                                }
                                ("AgentLogRecorded", "tool_result") => {
                                    span.kind { "tool result" } " "
                                    span class=(if event["exit_code"].as_i64() == Some(0) { "exit ok" } else { "exit bad" }) { "exit " (text(&event["exit_code"])) }
                                    (folded(&text(&event["content"])))
                                }
                                ("AgentLogRecorded", _) => {
                                    span.kind { (entry) }
                                    (folded(&text(&event["content"])))
                                }
                                _ => {
                                    span.kind { (kind) } " " span { (text(&event["summary"])) }
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
                    p.muted.small { (data["state_diff"].as_array().map_or(0, Vec::len)) " values differ (marked)." }
                }
            }
            section #scores data-refresh {
                h2 { "Scores" }
                @if scores.is_empty() { p.empty { "Not scored yet." } }
                @for score in &scores {
                    div.score {
                        h3 { code { (text(&score["scorer_version"])) } " " (outcome(&score["outcome"])) }
                        p {
                            "Detected " (text(&score["detected"])) " (TTD " (seconds(&score["time_to_detect_ms"])) "), resolved "
                            (text(&score["resolved"])) " (TTR " (seconds(&score["time_to_resolve_ms"])) "), healed in "
                            (seconds(&score["time_to_heal_ms"])) ". "
                            (text(&score["n_commands"])) " commands: " (text(&score["n_diagnostic"])) " diagnostic, "
                            (text(&score["n_remediation"])) " remediation, " (text(&score["n_destructive"])) " destructive, "
                            (text(&score["n_thrashing"])) " thrashing."
                        }
                        @let details = serde_json::from_str::<Value>(&text(&score["details_json"])).unwrap_or(Value::Null);
                        @if let Some(lines) = details["explanation"].as_array() {
                            ul.explanation { @for line in lines { li { (text(line)) } } }
                        }
                    }
                }
            }
            section #chaos data-refresh {
                h2 { "Chaos and its cleanup" }
                @if chaos_events.is_empty() { p.empty { "No fault was injected." } }
                @for event in &chaos_events {
                    details open {
                        summary { (text(&event["type"])) " at " (relative_time(&event["at_ms_from_injection"])) ": " (text(&event["summary"])) }
                        pre { (serde_json::to_string_pretty(&event["data"]).unwrap_or_default()) }
                    }
                }
            }
            p.muted { "As JSON: " a href={ "/api/trials/" (encode(&trial_id)) } { "/api/trials/" (short(&trial_id)) } }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// variants

pub fn variants(data: &Value) -> Markup {
    let chosen = (
        data["subject"].as_str().unwrap_or(""),
        data["chaos_type"].as_str().unwrap_or(""),
    );
    let choices = data["choices"].as_array().cloned().unwrap_or_default();
    let scorecard_data = &data["scorecard"];
    let cards = scorecard_data["variants"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let series = |key: &str| -> Vec<Series> {
        cards
            .iter()
            .map(|card| Series {
                label: text(&card["group"]),
                values_ms: card[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_f64)
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
                    ul { @for choice in &choices {
                        @let (subject, chaos) = (text(&choice["subject"]), text(&choice["chaos_type"]));
                        li { a class=[(subject == chosen.0 && chaos == chosen.1).then_some("chosen")] href={ "/variants?subject=" (encode(&subject)) "&chaos=" (encode(&chaos)) } { (subject) " × " (chaos) } }
                    } }
                }
            }
            @if !scorecard_data.is_null() {
                h2 { (chosen.0) " × " (chosen.1) }
                p.muted { "Every scored operator trial of these over all campaigns; best: " strong { (text(&scorecard_data["best"])) } "." }
                (scorecard(&cards))
                div.charts {
                    figure { figcaption { "Time to detect" } (strip_plot("time to detect", &series("times_to_detect_ms"))) }
                    figure { figcaption { "Time to recover" } (strip_plot("time to recover", &series("times_to_recover_ms"))) }
                }
                @for comparison in scorecard_data["comparisons"].as_array().into_iter().flatten() {
                    h3 { (text(&comparison["a"])) " vs " (text(&comparison["b"])) }
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
                        (result.rows.len()) " rows" @if result.truncated { " (more were left off)" } " in " (result.elapsed_ms) " ms · "
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
            @for table in tables["tables"].as_array().into_iter().flatten() {
                details.table {
                    summary { code { (text(&table["name"])) } " " span.muted { (text(&table["doc"])) } }
                    table.columns { tbody { @for column in table["columns"].as_array().into_iter().flatten() {
                        tr { td { code { (text(&column["name"])) } } td.muted { (text(&column["type"])) } td { (text(&column["doc"])) } }
                    } } }
                }
            }
            h3 { "Views" }
            ul { @for view in tables["views"].as_array().into_iter().flatten() { li { code { (text(&view["name"])) } ": " (text(&view["doc"])) } } }
        },
    )
}
