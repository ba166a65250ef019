//! `evalctl validate FILE...`: every problem of every campaign file and the variant files it names.

use std::path::PathBuf;

use clap::Args;
use ingest::campaign_files::{self, PrepareError};

use super::{Failure, Outcome};
use crate::Global;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Campaign files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where variant files are looked up (default: `variants/` next to each campaign file).
    #[arg(long)]
    variants_dir: Option<PathBuf>,
    /// Print one JSON object per file: {file, valid, trials, errors: [{file, line, col, path, message}]}.
    #[arg(long)]
    json: bool,
}

pub fn run(_global: &Global, args: ValidateArgs) -> Outcome {
    let mut any_invalid = false;
    for file in &args.files {
        let prepared = campaign_files::prepare(file, args.variants_dir.as_deref(), None);
        let name = file.display().to_string();
        let errors: Vec<serde_json::Value> = match &prepared {
            Ok(_) => Vec::new(),
            Err(PrepareError::Invalid(diagnostics)) => diagnostics
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "file": d.file, "line": d.line, "col": d.col,
                        "path": d.path, "message": d.message,
                    })
                })
                .collect(),
            Err(other) => vec![serde_json::json!({
                "file": name, "line": null, "col": null, "path": "", "message": other.to_string(),
            })],
        };
        any_invalid |= prepared.is_err();
        if args.json {
            let trials = prepared.as_ref().ok().map(|p| p.trials.len());
            println!(
                "{}",
                serde_json::json!({
                    "file": name, "valid": prepared.is_ok(), "trials": trials, "errors": errors,
                })
            );
            continue;
        }
        match prepared {
            Ok(prepared) => println!(
                "{name}: ok ({} trials, {} of them baseline)",
                prepared.trials.len(),
                prepared.n_baseline_trials()
            ),
            Err(error) => eprintln!("{error}"),
        }
    }
    if any_invalid {
        return Err(Failure::Invalid);
    }
    Ok(())
}
