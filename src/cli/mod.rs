//! The commands: each turns its arguments into calls of the stages' libraries and prints the
//! outcome for a person (or as JSON for scripts).

pub mod bench;
pub mod capture;
pub mod events;
pub mod lab;
pub mod operator;
pub mod project;
pub mod publish;
pub mod run;
pub mod score;
pub mod sql;
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
    /// The user's input is invalid; the problems are already printed. Exit code 2.
    Invalid,
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
        Err(Failure::Error(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings, and this project's info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,eval=info,schemas=info,ingest=info,viewer=info")
    });
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
