//! `evalctl publish FILE`: validate, expand, print the matrix, publish.

use std::path::PathBuf;
use viewer::table::{Column, TextTable};

use anyhow::Context;
use clap::Args;
use ingest::campaign_files::{self, PrepareError, PreparedCampaign};
use schemas::log::DEFAULT_IN_FLIGHT;

use super::{Failure, Outcome};
use crate::Global;

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The campaign file.
    file: PathBuf,
    /// Validate, expand and print the matrix; publish nothing.
    #[arg(long)]
    dry_run: bool,
    /// Publish under this campaign id instead of a new one. Publishing the same file again with
    /// the same id (after an interruption, say) adds only what is missing.
    #[arg(long)]
    campaign_id: Option<String>,
    /// Where variant files are looked up (default: `variants/` next to the campaign file).
    #[arg(long)]
    variants_dir: Option<PathBuf>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// Publish even when this host could not run the trials (for workers on other hosts):
    /// skips the check of subjects, runtimes and programs.
    #[arg(long)]
    no_preflight: bool,
}

pub async fn run(global: &Global, args: PublishArgs) -> Outcome {
    let prepared = match campaign_files::prepare(
        &args.file,
        args.variants_dir.as_deref(),
        args.campaign_id.as_deref(),
    ) {
        Ok(prepared) => prepared,
        Err(PrepareError::Invalid(diagnostics)) => {
            eprintln!("{diagnostics}");
            return Err(Failure::Invalid);
        }
        Err(error) => return Err(error.into()),
    };
    if !args.no_preflight {
        super::preflight(global, &prepared.trials).await?;
    }
    let cells = schemas::campaign::matrix_counts(&prepared.trials);
    if !args.json {
        print_matrix(&prepared, &cells);
    }
    let mut report_json = serde_json::json!({
        "campaign_id": prepared.campaign_id,
        "name": prepared.campaign.name,
        "file": prepared.file_name,
        "seed": prepared.seed,
        "trials": prepared.trials.len(),
        "baseline_trials": prepared.n_baseline_trials(),
        "matrix": cells.iter().map(|cell| serde_json::json!({
            "subject": cell.subject, "chaos_type": cell.chaos_type,
            "variant": cell.variant_label(), "baseline": cell.variant.is_none(), "trials": cell.n_trials,
        })).collect::<Vec<_>>(),
        "dry_run": args.dry_run,
    });
    if !args.dry_run {
        let log = global.connect().await?;
        let total = prepared.trials.len() as u64 + 1;
        let bar = super::progress_bar(total, "publishing");
        let report = ingest::publish::publish(&log, &prepared, DEFAULT_IN_FLIGHT, |acked| {
            if let Some(bar) = &bar {
                bar.set_position(acked);
            }
        })
        .await
        .with_context(|| format!("publishing {}", prepared.file_name))?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        report_json["stored"] = report.summary.stored.into();
        report_json["duplicates"] = report.summary.duplicates.into();
        report_json["already_stored"] = report.already_stored.into();
        if !args.json {
            println!(
                "published {} events to {} ({} already in the log, {} dropped as duplicates)",
                report.summary.stored,
                global.nats_shown(),
                report.already_stored,
                report.summary.duplicates
            );
        }
    }
    if args.json {
        println!("{report_json}");
    } else if args.dry_run {
        println!("dry run: nothing published");
    } else {
        println!("campaign id: {}", prepared.campaign_id);
    }
    Ok(())
}

fn print_matrix(prepared: &PreparedCampaign, cells: &[schemas::campaign::MatrixCell]) {
    println!(
        "campaign {:?} from {}: {} trials ({} baseline), seed {}",
        prepared.campaign.name,
        prepared.file_name,
        prepared.trials.len(),
        prepared.n_baseline_trials(),
        prepared.seed
    );
    let rows: Vec<[String; 4]> = cells
        .iter()
        .map(|cell| {
            [
                cell.subject.to_string(),
                cell.chaos_type.to_string(),
                cell.variant_label().to_string(),
                cell.n_trials.to_string(),
            ]
        })
        .collect();
    let mut table = TextTable::new(&[
        Column::left("subject", 0).after(2),
        Column::left("chaos", 0).after(2),
        Column::left("variant", 0).after(2),
        Column::right("trials", 0).after(2),
    ]);
    for row in rows {
        table.row(row);
    }
    print!("{}", table.render());
}
