//! The read commands over the DuckDB tables: `list`, `show`, `analyze`, `compare`,
//! `compare-baseline`, `compare-variants`, `list-variants`. Answers come from the running
//! `evalctl up` (or `evalctl project`) when there is one, else from the file opened read-only.

use std::path::PathBuf;
use viewer::table::{Column, TextTable};

use clap::Args;
use viewer::reader::Reader;
use viewer::views::{View, ViewError};

use super::{Failure, Outcome};
use crate::Global;

/// Options every read command takes.
#[derive(Debug, Clone, Args)]
pub struct ReadOptions {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The DuckDB file (default: <data-dir>/eval.duckdb).
    #[arg(long)]
    db: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// At most this many campaigns, newest first.
    #[arg(short = 'n', long, default_value_t = 20)]
    limit: usize,
    /// Skip this many first.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    #[command(flatten)]
    read: ReadOptions,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A campaign id (or any unique prefix); with --trial, a trial id.
    id: String,
    /// ID is a trial: show its timeline.
    #[arg(short, long)]
    trial: bool,
    #[command(flatten)]
    read: ReadOptions,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A campaign id (or any unique prefix).
    campaign: String,
    /// Also list the commands run, most frequent first, with their category and rule.
    #[arg(long)]
    include_commands: bool,
    #[command(flatten)]
    read: ReadOptions,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Campaign A (id or prefix).
    a: String,
    /// Campaign B (id or prefix).
    b: String,
    #[command(flatten)]
    read: ReadOptions,
}

#[derive(Debug, Args)]
pub struct CompareBaselineArgs {
    /// A campaign id (or any unique prefix).
    campaign: String,
    /// The campaign whose baseline trials to compare against (default: the campaign's own
    /// baseline trials, else any campaign's with the same subject and chaos type).
    #[arg(short, long)]
    baseline_id: Option<String>,
    #[command(flatten)]
    read: ReadOptions,
}

#[derive(Debug, Args)]
pub struct CompareVariantsArgs {
    /// The subject, such as `etcd`.
    subject: String,
    /// The chaos type, such as `node_kill`.
    chaos: String,
    /// Only these variants (comma-separated or repeated; default: every variant that ran).
    #[arg(short, long, value_delimiter = ',')]
    variants: Vec<String>,
    #[command(flatten)]
    read: ReadOptions,
}

#[derive(Debug, Args)]
pub struct ListVariantsArgs {
    /// List the variant files of this directory (name, model, valid, first error) instead of
    /// the variants that ran.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    read: ReadOptions,
}

/// Opens the reader and runs `view` on a blocking thread, then prints its answer.
async fn answer<T: serde::Serialize + Send + 'static>(
    global: &Global,
    read: ReadOptions,
    view: impl FnOnce(&Reader) -> Result<View<T>, ViewError> + Send + 'static,
) -> Outcome {
    let path = super::project::db_path(global, read.db.as_deref());
    let result = tokio::task::spawn_blocking(move || {
        let reader = Reader::open(&path)?;
        view(&reader)
    })
    .await?;
    let view = match result {
        Ok(view) => view,
        Err(ViewError::Invalid(message)) => {
            eprintln!("error: {message}");
            return Err(Failure::Invalid);
        }
        Err(error) => return Err(error.into()),
    };
    if read.json {
        println!("{}", serde_json::to_string_pretty(&view.data)?);
    } else {
        // Agents wrote much of it: no control sequence of theirs reaches the terminal.
        print!("{}", viewer::escape::terminal(&view.text));
    }
    Ok(())
}

pub async fn list(global: &Global, args: ListArgs) -> Outcome {
    let (limit, offset) = (args.limit, args.offset);
    answer(global, args.read, move |reader| {
        viewer::views::list(reader, None, limit, offset)
    })
    .await
}

pub async fn show(global: &Global, args: ShowArgs) -> Outcome {
    let id = args.id;
    if args.trial {
        answer(global, args.read, move |reader| {
            viewer::show::show_trial(reader, &id)
        })
        .await
    } else {
        answer(global, args.read, move |reader| {
            viewer::show::show_campaign(reader, &id)
        })
        .await
    }
}

pub async fn analyze(global: &Global, args: AnalyzeArgs) -> Outcome {
    let (campaign, commands) = (args.campaign, args.include_commands);
    answer(global, args.read, move |reader| {
        viewer::views::analyze(reader, &campaign, commands)
    })
    .await
}

pub async fn compare(global: &Global, args: CompareArgs) -> Outcome {
    let (a, b) = (args.a, args.b);
    answer(global, args.read, move |reader| {
        viewer::views::compare_campaigns(reader, &a, &b)
    })
    .await
}

pub async fn compare_baseline(global: &Global, args: CompareBaselineArgs) -> Outcome {
    let (campaign, baseline) = (args.campaign, args.baseline_id);
    answer(global, args.read, move |reader| {
        viewer::views::compare_baseline(reader, &campaign, baseline.as_deref())
    })
    .await
}

pub async fn compare_variants(global: &Global, args: CompareVariantsArgs) -> Outcome {
    let (subject, chaos, variants) = (args.subject, args.chaos, args.variants);
    answer(global, args.read, move |reader| {
        viewer::views::compare_variants(reader, &subject, &chaos, &variants)
    })
    .await
}

pub async fn list_variants(global: &Global, args: ListVariantsArgs) -> Outcome {
    match args.dir {
        Some(dir) => list_variant_files(&dir, args.read.json),
        None => answer(global, args.read, viewer::views::list_variants).await,
    }
}

/// One variant file of a directory, as `list-variants --dir` shows it.
#[derive(Debug, serde::Serialize)]
struct VariantFileRow {
    file: String,
    /// The variant's `name:`, or the file's stem when the file is invalid.
    name: String,
    model: Option<String>,
    valid: bool,
    /// The first problem, as file:line:col: path: message.
    error: Option<String>,
}

/// `list-variants --dir DIR`: every `*.yaml`/`*.yml` file of `dir`, parsed as a variant file.
fn list_variant_files(dir: &std::path::Path, json: bool) -> Outcome {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            eprintln!(
                "error: cannot list variant files in {}: {error}",
                dir.display()
            );
            return Err(Failure::Invalid);
        }
    };
    let mut rows = Vec::new();
    for path in ingest::campaign_files::yaml_files(entries) {
        let file = path.display().to_string();
        let stem = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parsed = std::fs::read_to_string(&path)
            .map_err(|error| format!("{file}: cannot read: {error}"))
            .and_then(|text| {
                schemas::campaign::parse_variant(&file, &text).map_err(|diagnostics| {
                    diagnostics
                        .0
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| format!("{file}: invalid"))
                })
            });
        rows.push(match parsed {
            Ok(variant) => VariantFileRow {
                file,
                name: variant.name,
                model: variant.model,
                valid: true,
                error: None,
            },
            Err(error) => VariantFileRow {
                file,
                name: stem,
                model: None,
                valid: false,
                error: Some(error),
            },
        });
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "dir": dir.display().to_string(),
                "variants": rows,
            }))?
        );
        return Ok(());
    }
    if rows.is_empty() {
        println!("no variant files (*.yaml, *.yml) in {}", dir.display());
        return Ok(());
    }
    let mut table = TextTable::new(&[
        Column::left("name", 4),
        Column::left("model", 5).after(2),
        Column::left("valid", 0).after(2),
    ]);
    for row in &rows {
        table.row([
            row.name.clone(),
            row.model.clone().unwrap_or_else(|| "-".to_string()),
            match &row.error {
                None => "yes".to_string(),
                Some(error) => format!("no: {error}"),
            },
        ]);
    }
    print!("{}", table.render());
    Ok(())
}
