//! The commands: each turns its arguments into calls of the stages' libraries and prints the
//! outcome for a person (or as JSON for scripts).

pub mod bench;
pub mod capture;
pub mod events;
pub mod lab;
pub mod nats;
pub mod operator;
pub mod project;
pub mod publish;
pub mod run;
pub mod score;
pub mod sql;
pub mod stages;
pub mod up;
pub mod validate;
pub mod viewer;
pub mod views;
pub mod worker;

use std::io::IsTerminal;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

/// How a command ended, when not well.
#[derive(Debug)]
pub enum Failure {
    /// The user's input is invalid (or cannot run on this host); the problems are already
    /// printed. Exit code 2.
    Invalid,
    /// The campaign ran to its end, but some of its trials ended `errored`; the summary says
    /// which. Exit code 3.
    TrialsErrored,
    /// Anything else, printed as one `error:` line. Exit code 1.
    Error(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::Error(error.into())
    }
}

pub type Outcome = Result<(), Failure>;

pub fn exit(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid) => ExitCode::from(2),
        Err(Failure::TrialsErrored) => ExitCode::from(3),
        Err(Failure::Error(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Refuses, before anything is published, trials that this host and build cannot run, and
/// trials on Kubernetes whose cluster lacks what they need: one `error:` line per problem with
/// its fix, and exit code 2.
pub async fn preflight(global: &crate::Global, trials: &[schemas::campaign::TrialSpec]) -> Outcome {
    let mut problems: Vec<String> =
        chaos::preflight::check(trials, &chaos::preflight::Host::here())
            .into_iter()
            .map(|problem| problem.0)
            .collect();
    problems.extend(
        chaos::kubernetes::preflight::check_trials(trials, global.context.as_deref()).await,
    );
    if problems.is_empty() {
        return Ok(());
    }
    for problem in &problems {
        eprintln!("error: {problem}");
    }
    eprintln!("nothing was published");
    Err(Failure::Invalid)
}

/// Every crate of the workspace, whose `info` lines the default log filter shows.
pub const WORKSPACE_CRATES: &[&str] = &[
    "evalctl",
    "schemas",
    "ingest",
    "chaos",
    "scoring",
    "projector",
    "viewer",
    "agents",
    "testkit",
];

/// The default log filter: warnings from everything, and `info` from every crate of the
/// workspace ("chaos injected", "scoring stage started", ...).
pub fn default_log_filter() -> String {
    let mut filter = String::from("warn");
    for name in WORKSPACE_CRATES {
        filter.push_str(&format!(",{name}=info"));
    }
    filter
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: [`default_log_filter`]).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_filter()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// A token cancelled on the first Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        cancel.cancel();
    });
    token
}

/// A progress bar on a terminal; `None` when stderr is not one (logs and CI get plain lines).
pub fn progress_bar(length: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(length);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    Some(bar)
}

#[cfg(test)]
mod tests {
    /// The default log filter names every crate of the workspace, so a new crate's `info` lines
    /// are not hidden by accident.
    #[test]
    fn default_log_filter_covers_every_workspace_crate() {
        let manifest = include_str!("../../Cargo.toml");
        let members_line = manifest
            .lines()
            .find(|line| line.starts_with("members"))
            .expect("the workspace lists its members");
        let filter = super::default_log_filter();
        for member in members_line.split('"').skip(1).step_by(2) {
            assert!(
                filter.contains(&format!(",{member}=info")),
                "{member} missing from {filter}"
            );
        }
        assert!(filter.contains(",evalctl=info"), "{filter}");
    }
}
