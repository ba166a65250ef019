//! The event log, and nothing else, projected into DuckDB tables through Arrow record batches:
//! what operators wrote arrives in the capture stage's events, how commands are classified in
//! the scores' details, so a projector on any host rebuilds the same tables. Exactly once: the last stream sequence applied is committed in the same
//! transaction as the rows it produced, so a restart resumes after it, and a rebuild (deleting the
//! file and replaying the stream) gives the same tables.

use std::path::PathBuf;

pub(crate) mod buffer;
pub mod db;
pub mod owner;
pub mod project;
mod rows;
pub mod schema;
pub mod stage;

pub use db::Writer;

/// The DuckDB file's name in the data directory.
pub const FILE_NAME: &str = "eval.duckdb";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{path} is in use by {holder} (DuckDB lets one process write a file, and others read it only while none writes); stop it, or read through it: `{program} up` serves every read command while it runs"
    , program = schemas::program::name())]
    Locked { path: PathBuf, holder: String },
    #[error("cannot open {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error(
        "{path} was written by a newer DuckDB than this build's ({linked}); the file is derived from the log: run `{program} project --rebuild` to rebuild it",
        linked = db::DUCKDB_VERSION,
        program = schemas::program::name()
    )]
    NewerDuckdb { path: PathBuf },
    #[error(
        "{path} was built by projector version {found}, this build writes version {}; run `{program} project --rebuild` to rebuild it from the log",
        schema::PROJECTOR_VERSION
    , program = schemas::program::name())]
    Version { path: PathBuf, found: i32 },
    #[error("DuckDB: {0}")]
    Duckdb(#[from] duckdb::Error),
    #[error(transparent)]
    Log(#[from] schemas::log::Error),
    #[error("{0}")]
    Stage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
