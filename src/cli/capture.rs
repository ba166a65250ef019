//! `evalctl capture`: the capture stage on its own, printing a line for each trial whose capture
//! ended (or a JSON object per line with `--json`).

use clap::Args;
use ingest::capture::CaptureReport;
use ingest::capture::stage::{self, CaptureOutcome, StageConfig, StageReport, TrialCaptured};

use super::Outcome;
use crate::Global;

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Trials followed at once; further injections wait in the log.
    #[arg(long, default_value_t = 64)]
    max_trials: usize,
    /// Print one JSON object per captured trial on stdout instead of lines on stderr.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    dirs: OperatorDbDirs,
}

/// Where the capture may open operator.db files: the data dir, and these.
#[derive(Debug, Clone, Default, Args)]
pub struct OperatorDbDirs {
    /// A directory whose operator.db files the capture may read (an external operator's), besides
    /// the data dir; repeat it for several. An injection naming any other file is refused.
    #[arg(long = "operator-db-dir", value_name = "DIR")]
    pub operator_db_dirs: Vec<std::path::PathBuf>,
}

impl OperatorDbDirs {
    /// The data dir's own places and these directories.
    pub fn allowed(&self, global: &Global) -> Vec<std::path::PathBuf> {
        data_dirs(global)
            .into_iter()
            .chain(self.operator_db_dirs.iter().cloned())
            .collect()
    }
}

/// Where this data dir's managed operators keep their operator.db: the data dir, and, for those
/// a root worker runs as another user, their directory under /var/lib/eval/operators.
pub fn data_dirs(global: &Global) -> Vec<std::path::PathBuf> {
    std::iter::once(global.data_dir.clone())
        .chain(chaos::operator::operators_dir(&global.data_dir))
        .collect()
}

/// The stage's settings; `reports` receives a line's worth per trial.
pub fn config(
    max_trials: usize,
    reports: Option<tokio::sync::mpsc::UnboundedSender<StageReport>>,
    allowed_dirs: Vec<std::path::PathBuf>,
) -> StageConfig {
    StageConfig {
        max_trials: max_trials.max(1),
        reports,
        host: schemas::event::host_name(),
        allowed_dirs,
    }
}

pub async fn run(global: &Global, args: CaptureArgs) -> Outcome {
    let log = global.connect_as(schemas::log::Role::Capture).await?;
    let shutdown = super::shutdown_on_signal();
    let (sender, mut reports) = tokio::sync::mpsc::unbounded_channel();
    eprintln!(
        "{program} capture: following the operator.db of every trial injected on {} from {} ({} at once); Ctrl-C stops",
        schemas::event::host_name(),
        global.nats_shown(),
        args.max_trials,
        program = schemas::program::name()
    );
    let printer = tokio::spawn(async move {
        while let Some(report) = reports.recv().await {
            match report {
                StageReport::Capturing {
                    campaign_id,
                    trial_id,
                    operator_db,
                } if !args.json => eprintln!(
                    "{program} capture: trial {} (campaign {}): following {}",
                    short(&trial_id),
                    short(&campaign_id),
                    operator_db.display(),
                    program = schemas::program::name()
                ),
                StageReport::Capturing { .. } => {}
                StageReport::Ended(captured) if args.json => println!("{}", to_json(&captured)),
                StageReport::Ended(captured) => eprintln!("{}", line(&captured)),
            }
        }
    });
    let allowed = args.dirs.allowed(global);
    let stage = stage::run(
        log,
        config(args.max_trials, Some(sender), allowed),
        shutdown,
    )
    .await;
    // The stage dropped its sender: the printer ends after the last report.
    let _ = printer.await;
    stage?;
    Ok(())
}

/// `trial 6a1c0b2e (campaign 01a2139c): 14 events published, 3 already in the log, ticket 2 resolved`.
fn line(captured: &TrialCaptured) -> String {
    let what = |report: &CaptureReport| {
        let ticket = match (report.ticket_id, report.resolved) {
            (Some(id), true) => format!("ticket {id} resolved"),
            (Some(id), false) => format!("ticket {id} open"),
            (None, _) => "no ticket".to_string(),
        };
        format!(
            "{} events published, {} already in the log, {ticket}",
            report.n_published,
            report.n_already_in_log + report.n_duplicates
        )
    };
    let outcome = match &captured.outcome {
        CaptureOutcome::Done(report) if captured.caught_up => {
            format!("caught up (finished before): {}", what(report))
        }
        CaptureOutcome::Done(report) => what(report),
        CaptureOutcome::HandedBack(report) => {
            format!(
                "stopped before the trial's end, handed back: {}",
                what(report)
            )
        }
        CaptureOutcome::Retried(error) => format!("failed, retried later: {error}"),
        CaptureOutcome::Failed(error) => format!("failed: {error}"),
    };
    format!(
        "{program} capture: trial {} (campaign {}): {outcome}",
        short(&captured.trial_id),
        short(&captured.campaign_id),
        program = schemas::program::name()
    )
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn to_json(captured: &TrialCaptured) -> serde_json::Value {
    let (status, report, error) = match &captured.outcome {
        CaptureOutcome::Done(report) => ("done", Some(report), None),
        CaptureOutcome::HandedBack(report) => ("handed_back", Some(report), None),
        CaptureOutcome::Retried(error) => ("retried", None, Some(error)),
        CaptureOutcome::Failed(error) => ("failed", None, Some(error)),
    };
    serde_json::json!({
        "campaign_id": captured.campaign_id,
        "trial_id": captured.trial_id,
        "operator_db": captured.operator_db,
        "caught_up": captured.caught_up,
        "status": status,
        "published": report.map(|r| r.n_published),
        "duplicates": report.map(|r| r.n_duplicates),
        "already_in_log": report.map(|r| r.n_already_in_log),
        "ticket_id": report.and_then(|r| r.ticket_id),
        "resolved": report.map(|r| r.resolved),
        "malformed_tool_params": report.map(|r| r.n_malformed_tool_params),
        "error": error,
    })
}
