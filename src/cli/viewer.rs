//! `evalctl viewer`: the web viewer on its own. It serves the file held read-only between
//! requests until `evalctl up` or `evalctl project` claims it (see `viewer::web::Source::file`),
//! and when the file's owner is running, every query goes through the owner's API, which serves
//! the same viewer itself. [`AccessArgs`]: who may use a served viewer or read API (`--token`, `--allow-host`),
//! shared with `evalctl up` and `evalctl project`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use viewer::reader::{ApiFile, api_file_path};
use viewer::web::{Access, Source};

use super::Outcome;
use crate::Global;

/// Who may use a served viewer or read API.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// A token every request must carry (at least 16 characters; required when the address is
    /// not loopback): `Authorization: Bearer TOKEN`, or open any page once with `?token=TOKEN`
    /// (the browser keeps it as a cookie). Local commands read it from the API file.
    #[arg(long, env = "EVAL_VIEWER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Also answer requests whose Host is NAME (repeatable). IP addresses and localhost are
    /// always answered; any other name is refused, which stops DNS rebinding.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_host: Vec<String>,
}

impl AccessArgs {
    /// The access of a server listening on `host`: a token is required off loopback.
    pub fn access(&self, host: IpAddr) -> anyhow::Result<Access> {
        let mut access = Access::local();
        for name in &self.allow_host {
            access = access.allow_host(name);
        }
        match &self.token {
            Some(token) => access.with_token(token).map_err(anyhow::Error::msg),
            None if !host.is_loopback() => anyhow::bail!(
                "{host} is not a loopback address: give a token with --token or EVAL_VIEWER_TOKEN (at least {} characters), so that only those who have it can read the trials",
                viewer::web::MIN_TOKEN_LEN
            ),
            None => Ok(access),
        }
    }
}

#[derive(Debug, Args)]
pub struct ViewerArgs {
    /// Address to listen on; anything but loopback requires --token.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on.
    #[arg(short, long, default_value_t = 8000)]
    port: u16,
    /// The DuckDB file (default: <data-dir>/eval.duckdb).
    #[arg(long)]
    db: Option<PathBuf>,
    #[command(flatten)]
    access: AccessArgs,
}

pub async fn run(global: &Global, args: ViewerArgs) -> Outcome {
    let access = args.access.access(args.host)?;
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
            "{program} viewer: listening on {} with a token; plain HTTP, so use it only on a network you trust",
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
        .serve(Source::file(path), access, shutdown)
        .await
        .context("the viewer stopped")?;
    Ok(())
}
