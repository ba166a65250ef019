//! `evalctl viewer`: the web viewer on its own. It serves the file opened read-only for each
//! request (so that `evalctl up` or `evalctl project` can still take the file), and when the file's
//! owner is running, every query goes through the owner's API, which serves the same viewer
//! itself.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use viewer::reader::{ApiFile, api_file_path};
use viewer::web::Source;

use super::Outcome;
use crate::Global;

#[derive(Debug, Args)]
pub struct ViewerArgs {
    /// Address to listen on. The viewer has no authentication: anything but 127.0.0.1 lets
    /// whoever reaches it read every trial.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on.
    #[arg(short, long, default_value_t = 8000)]
    port: u16,
    /// The DuckDB file (default: <data-dir>/eval.duckdb).
    #[arg(long)]
    db: Option<PathBuf>,
}

pub async fn run(global: &Global, args: ViewerArgs) -> Outcome {
    let shutdown = super::shutdown_on_signal();
    let path = super::project::db_path(global, args.db.as_deref());
    if let Ok(bytes) = std::fs::read(api_file_path(&path))
        && let Ok(owner) = serde_json::from_slice::<ApiFile>(&bytes)
        && viewer::reader::Reader::open(&path)
            .is_ok_and(|reader| matches!(reader, viewer::reader::Reader::Remote { .. }))
    {
        eprintln!(
            "{program} viewer: process {} owns {} and serves the viewer itself at {}; this one reads through it",
            owner.pid,
            path.display(),
            owner.url,
            program = schemas::program::name()
        );
    } else if !path.exists() {
        eprintln!(
            "{program} viewer: no database at {} yet; pages will say so until `{program} project` (or `{program} up`) builds it",
            path.display(),
            program = schemas::program::name()
        );
    }
    let address = SocketAddr::new(args.host, args.port);
    let bound = viewer::serve::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let local = bound.local_addr()?;
    if !args.host.is_loopback() {
        eprintln!(
            "{program} viewer: warning: listening on {} without authentication; anyone who reaches it can read every trial and run read-only SQL",
            args.host,
            program = schemas::program::name()
        );
    }
    eprintln!(
        "{program} viewer: http://{local}/ (database {}); Ctrl-C stops it",
        path.display(),
        program = schemas::program::name()
    );
    bound
        .serve(Source::file(path), shutdown)
        .await
        .context("the viewer stopped")?;
    Ok(())
}
