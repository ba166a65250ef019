//! The trial pipeline as `evalctl up` and `evalctl run` start it, from one place: the worker, the
//! capture stage and the scoring stage, each its library's `run(log, config, shutdown)` on one
//! task tracker, each connected as its own NATS user ([`schemas::log::roles`]). A stage that stops with an error says so on stderr, named by the command.

use chaos::worker::WorkerConfig;
use ingest::capture::stage::StageConfig;
use schemas::log::Role;
use scoring::score::ScoringConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Global;

/// A stage `evalctl up --stages` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StageName {
    /// The trial worker (`evalctl worker`).
    Worker,
    /// The operator.db capture (`evalctl capture`).
    Capture,
    /// The scoring stage (`evalctl score`).
    Score,
    /// The projector and its read API, which serves the web viewer too (`evalctl project`).
    Project,
    /// The web viewer; without `project`, on the DuckDB file (`evalctl viewer`).
    Viewer,
}

impl StageName {
    pub const ALL: [StageName; 5] = [
        StageName::Worker,
        StageName::Capture,
        StageName::Score,
        StageName::Project,
        StageName::Viewer,
    ];
}

/// The settings of the pipeline's stages.
#[derive(Debug)]
pub struct Pipeline {
    pub worker: WorkerConfig,
    pub capture: StageConfig,
    pub scoring: ScoringConfig,
}

/// Running stages.
#[derive(Debug)]
pub struct Stages {
    tracker: TaskTracker,
    /// Their names, in the order started.
    pub names: Vec<&'static str>,
    /// Cancelled when the worker's task returns (on shutdown, or on its own after an error).
    pub worker_ended: CancellationToken,
    /// The command that runs them, for messages (`up`, `run`).
    command: &'static str,
}

impl Stages {
    /// Starts the worker, the capture stage and the scoring stage until `shutdown`, each
    /// connected to NATS as its own user (which may publish only its own events).
    pub async fn start(
        command: &'static str,
        global: &Global,
        pipeline: Pipeline,
        shutdown: &CancellationToken,
    ) -> schemas::log::Result<Stages> {
        Stages::start_some(command, global, pipeline, &StageName::ALL, shutdown).await
    }

    /// [`Stages::start`] for those of the worker, the capture and the scoring stage that
    /// `which` names.
    pub async fn start_some(
        command: &'static str,
        global: &Global,
        pipeline: Pipeline,
        which: &[StageName],
        shutdown: &CancellationToken,
    ) -> schemas::log::Result<Stages> {
        let mut stages = Stages {
            tracker: TaskTracker::new(),
            names: Vec::new(),
            worker_ended: CancellationToken::new(),
            command,
        };
        if which.contains(&StageName::Worker) {
            let worker_log = global.connect_as(Role::Worker).await?;
            let worker_ended = stages.worker_ended.clone();
            stages.spawn("worker", {
                let shutdown = shutdown.clone();
                async move {
                    let ended = chaos::worker::run(worker_log, pipeline.worker, shutdown).await;
                    worker_ended.cancel();
                    ended
                }
            });
        }
        if which.contains(&StageName::Capture) {
            let capture_log = global.connect_as(Role::Capture).await?;
            stages.spawn(
                "capture",
                ingest::capture::stage::run(capture_log, pipeline.capture, shutdown.clone()),
            );
        }
        if which.contains(&StageName::Score) {
            let scoring_log = global.connect_as(Role::Scoring).await?;
            stages.spawn(
                "score",
                scoring::stage::run(scoring_log, pipeline.scoring, shutdown.clone()),
            );
        }
        Ok(stages)
    }

    /// Runs one more stage with the others (the projector, in `evalctl up`).
    pub fn spawn<E: std::fmt::Display>(
        &mut self,
        name: &'static str,
        stage: impl Future<Output = Result<(), E>> + Send + 'static,
    ) {
        let command = self.command;
        self.tracker.spawn(async move {
            if let Err(error) = stage.await {
                eprintln!(
                    "{program} {command}: {name} stopped: {error}",
                    program = schemas::program::name()
                );
            }
        });
        self.names.push(name);
    }

    /// Waits until every stage has returned (after their shutdown was cancelled).
    pub async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}
