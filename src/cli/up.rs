//! `evalctl up`: the embedded default. Uses the NATS server at `--nats` when one answers, else
//! starts `nats-server -js` on that local port with its store under the data dir; creates the
//! stream; runs every stage until Ctrl-C or SIGTERM; then stops the stages and the server it
//! started (only that one, by its pid).

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use schemas::log::auth::LocalCredential;
use schemas::log::local::LocalNats;
use schemas::log::{EventLog, Role};

use super::Outcome;
use super::stages::StageName;
use crate::Global;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The stages to run, comma-separated (default: all): worker, capture, score, project (the
    /// projector and its read API, which serves the web viewer too), viewer (without project,
    /// the web viewer on the DuckDB file). Run the others elsewhere against the same NATS.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = StageName::ALL)]
    stages: Vec<StageName>,
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
    #[command(flatten)]
    allow: super::worker::AllowVariantsArgs,
    #[command(flatten)]
    operator_user: super::worker::OperatorUserArgs,
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
    let runs = |stage: StageName| args.stages.contains(&stage);
    let operator_user = if runs(StageName::Worker) {
        args.operator_user.resolve()?
    } else {
        None
    };
    let shutdown = super::shutdown_on_signal();
    let (log, server) = connect_or_start(global).await?;
    log.ensure_stream().await?;

    // The trial pipeline, as `evalctl run` starts it; the projector and the viewer join it.
    let pipeline = super::stages::Pipeline {
        worker: super::worker::config(
            global,
            args.concurrency,
            &args.worker_id,
            None,
            args.allow.allowed()?,
            operator_user,
        ),
        capture: super::capture::config(
            args.max_captured_trials,
            None,
            args.operator_db_dirs.allowed(global),
        ),
        scoring: super::score::config(args.rules.as_deref())?,
    };
    let mut stages =
        super::stages::Stages::start_some("up", global, pipeline, &args.stages, &shutdown).await?;
    // The projector owns the DuckDB file; the read API shares its database instance.
    let mut _api = None;
    let writer = if runs(StageName::Project) {
        Some(super::project::open_writer(&super::project::db_path(global, None)).await)
    } else {
        None
    };
    match writer {
        None if runs(StageName::Viewer) => {
            let path = super::project::db_path(global, None);
            let address = std::net::SocketAddr::new(args.host, args.port);
            let bound = viewer::serve::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address}"))?;
            eprintln!(
                "{program} up: viewer at http://{}/ (database {}, which another process projects)",
                bound.local_addr()?,
                path.display(),
                program = schemas::program::name()
            );
            let shutdown = shutdown.clone();
            stages.spawn("viewer", async move {
                bound
                    .serve(viewer::web::Source::file(path), access, shutdown)
                    .await
            });
        }
        None => {}
        Some(opened) => match opened {
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
                let log = global.connect_as(Role::Reader).await?;
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
        },
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
    let program = schemas::program::name();
    let shown = global.nats_shown();
    match global.connect().await {
        Ok(log) => {
            let open = !log.client().server_info().auth_required;
            adopt(open, global.nats_named(), &shown)?;
            eprintln!("{program}: using the NATS server at {shown}");
            Ok((log, None))
        }
        Err(schemas::log::Error::Unreachable { .. }) => {
            let port = local_port(&shown)?;
            let dir = global.nats_dir();
            let credentials = LocalCredential::load_or_create_all(&dir).with_context(|| {
                format!("cannot keep the server's credentials in {}", dir.display())
            })?;
            eprintln!(
                "{program}: no server at {shown}; starting nats-server -js on 127.0.0.1:{port} (store {}; only the users {}, whose passwords are in {}*, mode 0600, which commands with this --data-dir use)",
                dir.display(),
                Role::ALL.map(Role::user).join(", "),
                LocalCredential::file(&dir, Role::Harness).display(),
            );
            let server = LocalNats::start_secured(&dir, Some(port), &credentials).await?;
            let log = EventLog::connect_with(server.url(), server.auth())
                .await?
                .with_replicas(global.replicas());
            Ok((log, Some(server)))
        }
        Err(error) => Err(error.into()),
    }
}

/// Whether `evalctl up` may use a server it did not start that answers without asking for
/// credentials (`open`): only when the user named it (`named`), and then with a warning. Anyone
/// who can publish to it can make this host's worker run commands; a server that asks for
/// credentials and let us in is used as it is.
fn adopt(open: bool, named: bool, shown: &str) -> anyhow::Result<()> {
    let program = schemas::program::name();
    match (open, named) {
        (false, _) => Ok(()),
        (true, true) => {
            eprintln!(
                "{program}: warning: the NATS server at {shown} asks for no credentials: anyone who reaches it can publish trials that this host's worker runs"
            );
            Ok(())
        }
        (true, false) => bail!(
            "a NATS server that {program} did not start answers at {shown} and asks for no credentials: anyone who reaches it could make this host's worker run commands. Stop it (and let {program} start its own, secured), or name it on purpose with --nats or EVAL_NATS_URL"
        ),
    }
}

/// The port of a local URL such as `nats://127.0.0.1:4222`; `evalctl up` starts a server only on
/// this host.
fn local_port(url: &str) -> anyhow::Result<u16> {
    let first = url.split(',').next().unwrap_or(url);
    let (host, port) = super::nats::host_and_port(first);
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .with_context(|| format!("bad port in --nats {url:?}"))?,
        None => 4222,
    };
    if !super::nats::is_loopback(host) {
        bail!(
            "no NATS server answers at {url}, and {program} up starts one only on this host (127.0.0.1); start the remote server, or use --nats nats://127.0.0.1:4222",
            program = schemas::program::name()
        );
    }
    Ok(port)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::adopt;

    /// `up` takes both directory lists of the stages it runs, each to its own stage (clap checks
    /// flattened groups for clashing names only in debug builds).
    #[test]
    fn up_passes_each_directory_list_to_its_stage() {
        let cli = crate::Cli::try_parse_from([
            "evalctl",
            "up",
            "--allow-variants",
            "variants",
            "--operator-db-dir",
            "external",
            "--allow-variants",
            "more",
        ])
        .unwrap();
        let crate::Command::Up(args) = cli.command else {
            panic!("not up")
        };
        let paths = |dirs: &[std::path::PathBuf]| {
            dirs.iter()
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(paths(&args.allow.allow_variants), ["variants", "more"]);
        assert_eq!(paths(&args.operator_db_dirs.operator_db_dirs), ["external"]);
    }

    #[test]
    fn an_open_server_is_adopted_only_when_named() {
        assert!(adopt(false, false, "nats://127.0.0.1:4222").is_ok());
        assert!(adopt(false, true, "nats://127.0.0.1:4222").is_ok());
        assert!(adopt(true, true, "nats://127.0.0.1:4222").is_ok());
        let refused = adopt(true, false, "nats://127.0.0.1:4222")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("asks for no credentials"), "{refused}");
        assert!(refused.contains("--nats or EVAL_NATS_URL"), "{refused}");
    }
}
