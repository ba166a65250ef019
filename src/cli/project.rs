//! `evalctl project`: the projector stage alone; and what `evalctl up` and `evalctl run` share to run it:
//! opening the DuckDB file as its one writer, and serving the read API beside it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use projector::stage::{Options, Progress};
use tokio_util::sync::CancellationToken;
use viewer::api::Database;
use viewer::reader::ApiAnnouncement;
use viewer::web::{Access, Source};

use super::Outcome;
use crate::Global;

#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// Delete the DuckDB file and replay the whole stream into a new one.
    #[arg(long)]
    rebuild: bool,
    /// Stop once every event stored at start is in the tables (default: keep following).
    #[arg(long)]
    until_caught_up: bool,
    /// The DuckDB file (default: <data-dir>/eval.duckdb).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Where to serve the read API while running, so that `evalctl sql`, `evalctl list`, … work
    /// meanwhile (port 0: any free port; the address is written beside the database).
    #[arg(long, default_value = "127.0.0.1:0")]
    api: SocketAddr,
    #[command(flatten)]
    access: super::viewer::AccessArgs,
    /// Print a JSON summary at the end.
    #[arg(long)]
    json: bool,
    /// Commit after at most this many events (tests use small batches to have many commits).
    #[arg(long, default_value_t = projector::stage::Options::default().batch_events, hide = true)]
    batch_events: usize,
}

/// The DuckDB file of `global`, or the one given.
pub fn db_path(global: &Global, given: Option<&Path>) -> PathBuf {
    given.map_or_else(
        || global.data_dir.join(projector::FILE_NAME),
        Path::to_path_buf,
    )
}

pub async fn run(global: &Global, args: ProjectArgs) -> Outcome {
    let access = args.access.access(args.api.ip())?;
    let shutdown = super::shutdown_on_signal();
    let log = global.connect_as(schemas::log::Role::Reader).await?;
    log.ensure_stream().await?;
    let path = db_path(global, args.db.as_deref());
    if args.rebuild {
        projector::stage::delete_file(&path)?;
        eprintln!(
            "{program} project: rebuilding {} from the log",
            path.display(),
            program = schemas::program::name()
        );
    }
    let (writer, projection) = open_writer(&path).await?;
    let database = Database::new(writer.reader()?);
    let api = serve_api(&path, database, args.api, access, shutdown.clone()).await?;
    let options = Options {
        until_caught_up: args.until_caught_up,
        batch_events: args.batch_events.max(1),
        ..Options::default()
    };
    let progress = progress_printer(!args.json);
    let report = projector::stage::run(
        &log,
        writer,
        projection,
        &options,
        progress,
        shutdown.clone(),
    )
    .await?;
    shutdown.cancel();
    drop(api);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "db": path,
                "applied": report.applied,
                "commits": report.commits,
                "last_sequence": report.last_sequence,
            })
        );
    } else {
        eprintln!(
            "{program} project: {} events applied in {} commits; {} holds the log up to sequence {}",
            report.applied,
            report.commits,
            path.display(),
            report.last_sequence,
            program = schemas::program::name()
        );
    }
    Ok(())
}

/// Opens the file for writing; a file of another projector version, or one a newer DuckDB
/// wrote, is rebuilt from the log (the file is derived from it). On a blocking thread: the open
/// may wait up to ten seconds for a standalone viewer to let go of the file.
pub async fn open_writer(
    path: &Path,
) -> anyhow::Result<(projector::Writer, projector::project::Projection)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || open_writer_now(&path))
        .await
        .map_err(|error| anyhow::anyhow!("opening the DuckDB file failed: {error}"))?
}

fn open_writer_now(
    path: &Path,
) -> anyhow::Result<(projector::Writer, projector::project::Projection)> {
    let why = match projector::Writer::open(path) {
        Err(projector::Error::Version { found, .. }) => {
            format!("was built by projector version {found}")
        }
        Err(projector::Error::NewerDuckdb { .. }) => format!(
            "was written by a newer DuckDB than this build's ({})",
            projector::db::DUCKDB_VERSION
        ),
        other => return Ok(other?),
    };
    eprintln!(
        "{program}: {} {why}; rebuilding it from the log",
        path.display(),
        program = schemas::program::name()
    );
    projector::stage::delete_file(path)?;
    Ok(projector::Writer::open(path)?)
}

/// Progress lines on stderr: a line per commit that moved at least 1% (or 10 s) forward.
pub fn progress_printer(enabled: bool) -> impl FnMut(Progress) + Send + 'static {
    let mut last_percent = None;
    let mut last_print = std::time::Instant::now();
    move |progress: Progress| {
        if !enabled || progress.stream_last_sequence == 0 {
            return;
        }
        let percent = (progress.last_sequence.min(progress.stream_last_sequence) * 100)
            / progress.stream_last_sequence;
        if last_percent != Some(percent) || last_print.elapsed().as_secs() >= 10 {
            if progress.last_sequence <= progress.stream_last_sequence {
                eprintln!(
                    "{program} project: sequence {}/{} ({percent}%), {} events applied",
                    progress.last_sequence,
                    progress.stream_last_sequence,
                    progress.applied,
                    program = schemas::program::name()
                );
            }
            last_percent = Some(percent);
            last_print = std::time::Instant::now();
        }
    }
}

/// A served API: stops and removes its announcement when dropped.
#[derive(Debug)]
pub struct ServedApi {
    _announcement: ApiAnnouncement,
    stop: CancellationToken,
    pub url: String,
}

impl Drop for ServedApi {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves the read API on `address` behind `access` (a busy port falls back to any free one) and
/// announces it beside the database, with its token.
pub async fn serve_api(
    db_path: &Path,
    database: Database,
    address: SocketAddr,
    access: Access,
    shutdown: CancellationToken,
) -> anyhow::Result<ServedApi> {
    let bound = match viewer::serve::bind(address).await {
        Ok(bound) => bound,
        Err(error) if address.port() != 0 => {
            eprintln!(
                "{program}: cannot listen on {address} ({error}); using any free port",
                program = schemas::program::name()
            );
            viewer::serve::bind(SocketAddr::new(address.ip(), 0))
                .await
                .with_context(|| format!("cannot listen on {}", address.ip()))?
        }
        Err(error) => return Err(error).with_context(|| format!("cannot listen on {address}")),
    };
    let url = format!("http://{}", bound.local_addr()?);
    let stop = shutdown.child_token();
    let served = stop.clone();
    let token = access.token().map(str::to_string);
    tokio::spawn(async move {
        if let Err(error) = bound.serve(Source::shared(database), access, served).await {
            eprintln!(
                "{program}: the read API stopped: {error}",
                program = schemas::program::name()
            );
        }
    });
    let announcement = ApiAnnouncement::write(db_path, &url, token.as_deref())
        .with_context(|| format!("cannot write the API file beside {}", db_path.display()))?;
    Ok(ServedApi {
        _announcement: announcement,
        stop,
        url,
    })
}
