//! `evalctl lab …`: start, inspect and stop labs by hand, and the delay proxy the lab runs in front
//! of every node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chaos::broker;
use chaos::lab::{Isolation, Lab, LabOptions};
use chaos::runtime::Runtime;
use chaos::subject::{LabSubject, Subject};
use chaos::tikv::binaries::{BIN_DIR_VARIABLE, SearchPlaces};
use clap::{Args, Subcommand, ValueEnum};
use schemas::campaign::SubjectKind;
use viewer::table::{Column, TextTable};

use super::Outcome;
use crate::Global;

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start a lab: a fresh cluster of real processes on this host, healthy when this returns.
    Up(UpArgs),
    /// Stop a lab and remove everything it made (processes, namespaces, filesystems, rules).
    Down(DownArgs),
    /// Show the labs, their nodes and health.
    Status(StatusArgs),
    /// Stop, start, pause or resume one node. An operator run without root asks its trial's
    /// lab broker (EVAL_LAB_BROKER), which does it for that lab only.
    Node(NodeArgs),
    /// (internal) The delay proxy in front of a node's ports.
    #[command(hide = true)]
    Proxy(ProxyArgs),
    /// (internal) Runs a command that dies with the process that started it (see `child`).
    #[command(hide = true)]
    Child(ChildArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SubjectArg {
    Etcd,
    Tikv,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The subject to run.
    #[arg(long, value_enum, default_value = "etcd")]
    subject: SubjectArg,
    /// Number of nodes (etcd members, or TiKV stores).
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// TiKV: the PD members started beside the stores, 1 or 3.
    #[arg(long, default_value_t = schemas::campaign::DEFAULT_PD_MEMBERS, value_parser = clap::value_parser!(u32).range(1..=3))]
    pd_members: u32,
    /// TiKV: the directory holding pd-server and tikv-server (otherwise EVAL_TIKV_BIN_DIR, PATH,
    /// then ~/.tiup/components).
    #[arg(long)]
    binaries: Option<String>,
    /// The lab's name (default: lab<index>).
    #[arg(long)]
    name: Option<String>,
    /// Run on loopback addresses even as root (no network or disk faults).
    #[arg(long)]
    loopback: bool,
    /// Print the lab as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The lab to stop (default: the only one).
    #[arg(long)]
    name: Option<String>,
    /// Stop every lab of the data dir.
    #[arg(long, conflicts_with = "name")]
    all: bool,
    /// Remove what killed workers left on this host, whatever their data dir (even deleted):
    /// every lab of this user whose directory is gone or whose worker is dead, with its
    /// processes, operator, namespaces, rules and filesystems. Labs of `lab up` whose directory
    /// is still there are kept.
    #[arg(long, conflicts_with_all = ["name", "all"])]
    stale: bool,
    /// With --stale: print what was removed as JSON.
    #[arg(long, requires = "stale")]
    json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this lab.
    #[arg(long)]
    name: Option<String>,
    /// Print the labs as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum NodeAction {
    Stop,
    Start,
    Pause,
    Resume,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    #[arg(value_enum)]
    action: NodeAction,
    /// The node number, from 1.
    node: u32,
    /// The lab (default: the only one).
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The control file holding the delay settings, absent for no delay.
    #[arg(long)]
    control: PathBuf,
    /// LISTEN=UPSTREAM address pairs.
    #[arg(long, required = true)]
    route: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ChildArgs {
    /// The process that started this one: if it is gone already, the command is not run.
    #[arg(long)]
    parent: u32,
    /// The command and its arguments, run in place of this process (the same pid).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<std::ffi::OsString>,
}

/// `lab child`: sets the parent-death signal (SIGKILL), then execs the command, unless the parent
/// died before the signal was set (this process then has another parent, and nothing would ever
/// stop the command). Run before the async runtime: the exec replaces this process.
pub fn child(args: ChildArgs) -> std::process::ExitCode {
    use std::os::unix::process::CommandExt;
    if let Err(error) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        eprintln!("error: cannot set the parent-death signal: {error}");
        return std::process::ExitCode::from(126);
    }
    let parent = nix::unistd::getppid().as_raw();
    if i64::from(parent) != i64::from(args.parent) {
        eprintln!(
            "error: process {} that started this one is gone (the parent is now {parent}); not running {:?}",
            args.parent, args.command[0]
        );
        return std::process::ExitCode::from(125);
    }
    let error = std::process::Command::new(&args.command[0])
        .args(&args.command[1..])
        .exec();
    eprintln!("error: cannot run {:?}: {error}", args.command[0]);
    std::process::ExitCode::from(127)
}

pub async fn run(global: &Global, command: LabCommand) -> Outcome {
    match command {
        LabCommand::Up(args) => up(global, args).await,
        LabCommand::Down(args) => down(global, args).await,
        LabCommand::Status(args) => status(global, args).await,
        LabCommand::Node(args) => node(global, args).await,
        LabCommand::Proxy(args) => proxy(args).await,
        LabCommand::Child(_) => unreachable!("`lab child` is run before the async runtime starts"),
    }
}

async fn up(global: &Global, args: UpArgs) -> Outcome {
    let (subject, pd_members, tikv_binaries) = match args.subject {
        SubjectArg::Etcd => (SubjectKind::Etcd, 0, None),
        SubjectArg::Tikv => {
            if args.pd_members == 2 {
                return Err(anyhow::anyhow!(
                    "--pd-members must be 1 or 3: two PD members lose their quorum when either stops"
                )
                .into());
            }
            let binaries = SearchPlaces::here(args.binaries.as_deref())
                .binaries()
                .map_err(|missing| anyhow::anyhow!("a TiKV lab: {missing}; install them with TiUP (`tiup install pd tikv`), or name their directory with --binaries or {BIN_DIR_VARIABLE}"))?;
            (SubjectKind::Tikv, args.pd_members, Some(binaries))
        }
    };
    let isolation = if args.loopback {
        Isolation::Loopback
    } else {
        Isolation::available()
    };
    if isolation == Isolation::Loopback {
        for (fault, reason) in isolation.unsupported_faults() {
            eprintln!(
                "{program} lab: loopback lab: {fault} unavailable ({reason})",
                program = schemas::program::name()
            );
        }
    }
    let mut lab = Lab::create(LabOptions {
        data_dir: global.data_dir.clone(),
        name: args.name,
        subject,
        nodes: args.nodes + pd_members,
        isolation,
        pd_members,
        tikv_binaries,
        held: false,
    })
    .await?;
    let started = std::time::Instant::now();
    let healthy_within = match subject {
        SubjectKind::Etcd => Duration::from_secs(30),
        SubjectKind::Tikv => Duration::from_secs(90),
    };
    let ready = async {
        let lab_subject = LabSubject::of(&lab.state)?;
        lab_subject.reset(&mut lab).await?;
        lab_subject.wait_healthy(&lab, healthy_within).await
    };
    if let Err(error) = ready.await {
        let name = lab.state.name.clone();
        let _ = lab.destroy().await;
        return Err(anyhow::Error::from(error)
            .context(format!("lab {name} did not start"))
            .into());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&lab.state)?);
    } else {
        println!(
            "lab {} up: {subject}, {} nodes, {:?}, healthy in {:.1}s",
            lab.state.name,
            lab.state.nodes.len(),
            lab.state.isolation,
            started.elapsed().as_secs_f64()
        );
        println!("endpoints: {}", lab.endpoints().join(","));
    }
    Ok(())
}

fn pick(global: &Global, name: Option<String>) -> anyhow::Result<Lab> {
    if let Some(name) = name {
        return Ok(Lab::open(&global.data_dir, &name)?);
    }
    let mut labs = Lab::list(&global.data_dir)?;
    match labs.len() {
        0 => bail!(
            "no lab in {}; start one with `{program} lab up`",
            global.data_dir.display(),
            program = schemas::program::name()
        ),
        1 => Ok(labs.remove(0)),
        _ => bail!(
            "several labs: {}; choose one with --name",
            labs.iter()
                .map(|lab| lab.state.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

async fn down(global: &Global, args: DownArgs) -> Outcome {
    if args.stale {
        return down_stale(args.json).await;
    }
    let labs = if args.all {
        Lab::list(&global.data_dir)?
    } else {
        vec![pick(global, args.name)?]
    };
    for lab in labs {
        let name = lab.state.name.clone();
        lab.destroy()
            .await
            .with_context(|| format!("stopping lab {name}"))?;
        println!("lab {name} down");
    }
    Ok(())
}

/// `lab down --stale`: one line (or JSON object) per stale lab removed, with why it was stale;
/// fails when any could not be fully removed.
async fn down_stale(json: bool) -> Outcome {
    let removed = Lab::remove_stale().await?;
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for (stale, result) in &removed {
        let state = &stale.state;
        let error = result.as_ref().err().map(|error| error.to_string());
        if !json {
            match &error {
                None => println!(
                    "lab {} ({}) removed: {}",
                    state.name,
                    state.dir.display(),
                    stale.reason
                ),
                Some(error) => eprintln!("lab {} ({}): {error}", state.name, state.dir.display()),
            }
        }
        if let Some(error) = &error {
            failed.push(format!("{}: {error}", state.name));
        }
        report.push(serde_json::json!({
            "name": state.name,
            "dir": state.dir,
            "index": state.index,
            "reason": stale.reason,
            "removed": error.is_none(),
            "error": error,
        }));
    }
    if json {
        println!("{}", serde_json::json!({ "labs": report }));
    } else if removed.is_empty() {
        println!("no stale lab on this host");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "{} stale lab(s) not fully removed: {}",
            failed.len(),
            failed.join("; ")
        )
        .into())
    }
}

/// The lab broker to ask instead of opening labs: an operator that the worker runs without root
/// is given one (`EVAL_LAB_BROKER`); root opens the lab itself.
fn broker() -> Option<PathBuf> {
    if chaos::lab::sys::is_root() {
        return None;
    }
    std::env::var_os(broker::BROKER_VARIABLE).map(PathBuf::from)
}

/// Asks the broker at `socket` and takes what it answers, or its refusal as the error.
fn ask(socket: &std::path::Path, request: &broker::Request) -> anyhow::Result<broker::Answer> {
    match broker::ask(socket, request).map_err(anyhow::Error::msg)? {
        broker::Answer::Refused(reason) => bail!("the lab broker refused: {reason}"),
        answer => Ok(answer),
    }
}

async fn status(global: &Global, args: StatusArgs) -> Outcome {
    let reports = match broker() {
        Some(socket) => match ask(&socket, &broker::Request::Status { lab: args.name })? {
            broker::Answer::Status(reports) => reports,
            other => {
                return Err(anyhow::anyhow!(
                    "the lab broker answered {other:?} to a status request"
                )
                .into());
            }
        },
        None => {
            let labs = match args.name {
                Some(name) => vec![Lab::open(&global.data_dir, &name)?],
                None => Lab::list(&global.data_dir)?,
            };
            broker::status(labs).await?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    if reports.is_empty() {
        println!("no lab in {}", global.data_dir.display());
    }
    for report in &reports {
        let (state, health) = (&report.lab, &report.health);
        println!(
            "lab {} ({}, {:?}): {}",
            state.name,
            state.subject,
            state.isolation,
            if health.healthy {
                "healthy".to_string()
            } else {
                format!("unhealthy: {}", health.reason.as_deref().unwrap_or(""))
            }
        );
        let mut nodes = TextTable::new(&[
            Column::left("node", 0).after(2),
            Column::left("status", 8).after(2),
            Column::left("pid", 12).after(2),
            Column::left("url", 0).after(2),
        ]);
        for node in &report.nodes {
            nodes.row([
                // TiKV's nodes are named by role (`tikv1`, `pd1`); etcd's only by number.
                if node.name.is_empty() || node.name == format!("n{}", node.node) {
                    format!("node {}", node.node)
                } else {
                    format!("node {} ({})", node.node, node.name)
                },
                node.process.clone(),
                format!(
                    "pid {}",
                    node.pid.map_or("-".to_string(), |pid| pid.to_string())
                ),
                format!(
                    "{}{}",
                    node.endpoint,
                    if health.leader == Some(node.node) {
                        "  leader"
                    } else {
                        ""
                    }
                ),
            ]);
        }
        print!("{}", nodes.render_rows());
    }
    Ok(())
}

async fn node(global: &Global, args: NodeArgs) -> Outcome {
    let action = match args.action {
        NodeAction::Stop => broker::NodeAction::Stop,
        NodeAction::Start => broker::NodeAction::Start,
        NodeAction::Pause => broker::NodeAction::Pause,
        NodeAction::Resume => broker::NodeAction::Resume,
    };
    let outcome = match broker() {
        Some(socket) => {
            let request = broker::Request::Node {
                lab: args.name,
                action,
                node: args.node,
            };
            match ask(&socket, &request)? {
                broker::Answer::Node(outcome) => outcome,
                other => {
                    return Err(anyhow::anyhow!(
                        "the lab broker answered {other:?} to a node request"
                    )
                    .into());
                }
            }
        }
        None => broker::node_action(pick(global, args.name)?, action, args.node).await?,
    };
    println!(
        "node {} of lab {}: {}",
        outcome.node, outcome.lab, outcome.process
    );
    Ok(())
}

async fn proxy(args: ProxyArgs) -> Outcome {
    let shutdown = super::shutdown_on_signal();
    let mut proxies = Vec::new();
    for route in &args.route {
        let (listen, upstream) = route
            .split_once('=')
            .with_context(|| format!("route {route:?} is not LISTEN=UPSTREAM"))?;
        let listen: SocketAddr = listen
            .parse()
            .with_context(|| format!("bad address {listen:?}"))?;
        let upstream: SocketAddr = upstream
            .parse()
            .with_context(|| format!("bad address {upstream:?}"))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        proxies.push(tokio::spawn(chaos::proxy::run_delay_proxy(
            listener,
            upstream,
            args.control.clone(),
            shutdown.clone(),
        )));
    }
    for proxy in proxies {
        proxy.await??;
    }
    Ok(())
}
