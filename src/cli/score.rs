//! `evalctl score`, `evalctl rescore` and `evalctl import-legacy`: the scoring stage on its own,
//! re-scoring by replay, and old results brought into the log.

use std::path::PathBuf;

use clap::Args;
use schemas::ids::resolve_prefix;
use scoring::{RescoreFilter, Rules, ScoringConfig};

use super::Outcome;
use crate::Global;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// A YAML file of command classification rules, in front of the built-in ones.
    #[arg(long)]
    rules: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RescoreArgs {
    /// Only this campaign (an id or any unique prefix of one).
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    campaign: Option<String>,
    /// Every campaign in the log.
    #[arg(long)]
    all: bool,
    /// A YAML file of command classification rules, in front of the built-in ones; other rules
    /// give another scorer version (`v1+<hash>`), published beside the old scores.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The seed harness's SQLite `eval.db`.
    path: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// The scoring settings: the built-in rules, with the user's file in front.
pub fn config(rules: Option<&std::path::Path>) -> anyhow::Result<ScoringConfig> {
    Ok(ScoringConfig::with_rules(Rules::load(rules)?))
}

pub async fn score(global: &Global, args: ScoreArgs) -> Outcome {
    let config = config(args.rules.as_deref())?;
    let log = global.connect_as(schemas::log::Role::Scoring).await?;
    let shutdown = super::shutdown_on_signal();
    eprintln!(
        "{program} score: scoring finished trials with {} from {}; Ctrl-C stops",
        config.version(),
        global.nats_shown(),
        program = schemas::program::name()
    );
    scoring::stage::run(log, config, shutdown).await?;
    Ok(())
}

pub async fn rescore(global: &Global, args: RescoreArgs) -> Outcome {
    let config = config(args.rules.as_deref())?;
    let log = global.connect().await?;
    let filter = match &args.campaign {
        Some(prefix) => {
            let ids = log.campaign_ids().await?;
            let id = resolve_prefix("campaign", prefix, ids.iter().map(String::as_str))
                .map_err(anyhow::Error::msg)?;
            RescoreFilter::Campaign(id.to_string())
        }
        None => RescoreFilter::All,
    };
    let bar = super::progress_bar(0, "re-scoring");
    let report = scoring::rescore(&log, &filter, &config, |progress| {
        if let Some(bar) = &bar {
            bar.set_length(progress.n_events_total);
            bar.set_position(progress.n_events_read.min(progress.n_events_total));
            bar.set_message(format!(
                "re-scoring: {} events read, {} trials scored",
                progress.n_events_read, progress.n_trials_scored
            ));
        }
    })
    .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "scorer_version": report.scorer_version,
                "campaigns": report.n_campaigns,
                "events_read": report.n_events_read,
                "trials": report.n_trials,
                "finished": report.n_finished,
                "published": report.n_published,
                "already_scored": report.n_already_scored,
                "without_capture_end": report.n_without_capture_end,
                "by_outcome": report.by_outcome,
            })
        );
    } else {
        println!(
            "re-scored with {}: {} campaign(s), {} finished trial(s): {} new TrialScored, {} already scored with this version",
            report.scorer_version,
            report.n_campaigns,
            report.n_finished,
            report.n_published,
            report.n_already_scored
        );
        for (outcome, n) in &report.by_outcome {
            println!("  {outcome}: {n}");
        }
        if report.n_without_capture_end > 0 {
            println!(
                "  {} operator trial(s) graded without the end of their operator.db capture in the log (no capture stage ran for them, or the log predates it)",
                report.n_without_capture_end
            );
        }
    }
    Ok(())
}

pub async fn import_legacy(global: &Global, args: ImportArgs) -> Outcome {
    let log = global.connect().await?;
    let report = ingest::legacy::import(&log, &args.path).await?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "campaigns": report.campaigns.iter().map(|campaign| serde_json::json!({
                    "legacy_id": campaign.legacy_id, "campaign_id": campaign.campaign_id,
                    "name": campaign.name, "trials": campaign.n_trials,
                })).collect::<Vec<_>>(),
                "events": report.n_events,
                "stored": report.summary.stored,
                "duplicates": report.summary.duplicates,
                "already_stored": report.already_stored,
                "problems": report.problems,
            })
        );
        return Ok(());
    }
    for campaign in &report.campaigns {
        println!(
            "legacy campaign {} ({:?}, {} trials) → campaign {}",
            campaign.legacy_id, campaign.name, campaign.n_trials, campaign.campaign_id
        );
    }
    println!(
        "imported {}: {} events stored, {} already in the log",
        args.path.display(),
        report.summary.stored,
        report.already_stored
    );
    for problem in &report.problems {
        eprintln!("left out: {problem}");
    }
    Ok(())
}
