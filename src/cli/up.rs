//! `evalctl up`: the embedded default. Uses the NATS server at `--nats` when one answers, else
//! starts `nats-server -js` on that local port with its store under the data dir; creates the
//! stream; runs every stage until Ctrl-C or SIGTERM; then stops the stages and the server it
//! started (only that one, by its pid).

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use schemas::log::EventLog;
use schemas::log::local::LocalNats;

use super::Outcome;
use crate::Global;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Trials the worker runs at once, each on its own lab.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Names this worker's labs and the faults it owns; keep it stable across restarts.
    #[arg(long, default_value = "local")]
    worker_id: String,
    /// Trials the capture stage follows at once.
    #[arg(long, default_value_t = 64)]
    max_captured_trials: usize,
    #[command(flatten)]
    operator_db_dirs: super::capture::OperatorDbDirs,
    /// A YAML file of command classification rules for the scoring stage.
    #[arg(long)]
    rules: Option<std::path::PathBuf>,
    /// Address of the web viewer and the read API (`evalctl sql`, `evalctl list`, … reach the
    /// database through it while `evalctl up` owns the file); anything but loopback requires
    /// --token.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port of the web viewer and the read API (a busy port falls back to any free one).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    #[command(flatten)]
    access: super::viewer::AccessArgs,
}

/// How long stages may take to drain after a shutdown signal (the worker cleans up its running
/// trials and removes its labs in that time).
const DRAIN: Duration = Duration::from_secs(60);

pub async fn run(global: &Global, args: UpArgs) -> Outcome {
    let access = args.access.access(args.host)?;
    let shutdown = super::shutdown_on_signal();
    let (log, server) = connect_or_start(global).await?;
    log.ensure_stream().await?;

    // The trial pipeline, as `evalctl run` starts it; the projector and the viewer join it.
    let pipeline = super::stages::Pipeline {
        worker: super::worker::config(global, args.concurrency, &args.worker_id, None),
        capture: super::capture::config(
            args.max_captured_trials,
            None,
            args.operator_db_dirs.allowed(global),
        ),
        scoring: super::score::config(args.rules.as_deref())?,
    };
    let mut stages = super::stages::Stages::start("up", &log, pipeline, &shutdown);
    // The projector owns the DuckDB file; the read API shares its database instance.
    let mut _api = None;
    match super::project::open_writer(&super::project::db_path(global, None)) {
        Ok((writer, projection)) => {
            let path = writer.path().to_path_buf();
            let database = viewer::api::Database::new(writer.reader()?);
            let api = super::project::serve_api(
                &path,
                database,
                std::net::SocketAddr::new(args.host, args.port),
                access,
                shutdown.clone(),
            )
            .await?;
            eprintln!(
                "{program} up: viewer and read API at {} (database {})",
                api.url,
                path.display(),
                program = schemas::program::name()
            );
            _api = Some(api);
            let log = log.clone();
            let shutdown = shutdown.clone();
            stages.spawn("project", async move {
                let options = projector::stage::Options::default();
                projector::stage::run(&log, writer, projection, &options, |_| {}, shutdown)
                    .await
                    .map(drop)
            });
        }
        Err(error) => eprintln!(
            "{program} up: the projector does not run: {error:#}",
            program = schemas::program::name()
        ),
    }
    eprintln!(
        "{program} up: ready at {} (pid {}), stages running: {}; Ctrl-C or SIGTERM stops",
        log.url(),
        server
            .as_ref()
            .and_then(LocalNats::pid)
            .map_or_else(|| "external".to_string(), |pid| pid.to_string()),
        stages.names.join(", "),
        program = schemas::program::name(),
    );

    shutdown.cancelled().await;
    eprintln!("{program} up: stopping", program = schemas::program::name());
    if tokio::time::timeout(DRAIN, stages.wait()).await.is_err() {
        eprintln!(
            "{program} up: stages did not stop within {}s",
            DRAIN.as_secs(),
            program = schemas::program::name()
        );
    }
    drop(log);
    if let Some(server) = server {
        server.stop(Duration::from_secs(5)).await;
        eprintln!(
            "{program} up: nats-server stopped",
            program = schemas::program::name()
        );
    }
    Ok(())
}

/// The server at `--nats`, or, when none answers there and the URL is local, a `nats-server -js`
/// started on its port with its store under the data dir (returned, to be stopped by the caller).
pub async fn connect_or_start(global: &Global) -> anyhow::Result<(EventLog, Option<LocalNats>)> {
    match EventLog::connect(&global.nats).await {
        Ok(log) => {
            eprintln!(
                "{program}: using the NATS server at {}",
                global.nats,
                program = schemas::program::name()
            );
            Ok((log, None))
        }
        Err(schemas::log::Error::Unreachable { .. }) => {
            let port = local_port(&global.nats)?;
            let dir = global.data_dir.join("nats");
            eprintln!(
                "{program}: no server at {}; starting nats-server -js on 127.0.0.1:{port} (store {})",
                global.nats,
                dir.display(),
                program = schemas::program::name()
            );
            let server = LocalNats::start(&dir, Some(port)).await?;
            let log = EventLog::connect(server.url()).await?;
            Ok((log, Some(server)))
        }
        Err(error) => Err(error.into()),
    }
}

/// The port of a local URL such as `nats://127.0.0.1:4222`; `evalctl up` starts a server only on
/// this host.
fn local_port(url: &str) -> anyhow::Result<u16> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host_port = rest.split(['/', ',']).next().unwrap_or(rest);
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, hp)| hp);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .with_context(|| format!("bad port in --nats {url:?}"))?,
        ),
        None => (host_port, 4222),
    };
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        bail!(
            "no NATS server answers at {url}, and {program} up starts one only on this host (127.0.0.1); start the remote server, or use --nats nats://127.0.0.1:4222",
            program = schemas::program::name()
        );
    }
    Ok(port)
}
