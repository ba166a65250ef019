//! The chaos stage's errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Lab(String),
    #[error("{0}")]
    Unsupported(String),
    /// A lab's file or a cleanup record names something the lab did not make: nothing was done.
    #[error("refused: {0}")]
    Refused(String),
    #[error("subject not healthy after {seconds}s: {reason}")]
    NotHealthy { seconds: u64, reason: String },
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    #[error(transparent)]
    Log(#[from] schemas::log::Error),
    /// The Kubernetes API refused or failed a request; the message names the request.
    #[error("{0}")]
    Kube(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
