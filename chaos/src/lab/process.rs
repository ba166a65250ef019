//! The lab's processes: nodes and proxies started detached (their own process group, inside the
//! node's namespace when isolated), reaped by a task, and stopped with SIGTERM then SIGKILL.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::sys;
use crate::error::{Error, Result};

/// Starts `argv` in its own process group (so a terminal's Ctrl-C does not reach it), inside
/// `netns` when given, with its output appended to `log`; a task reaps it when it exits. With
/// `die_with_us` it is killed (SIGKILL) when this process dies, however it dies.
pub(super) fn spawn_detached(
    netns: Option<&str>,
    argv: &[String],
    log: &Path,
    die_with_us: bool,
) -> Result<u32> {
    let mut line: Vec<String> = Vec::new();
    if die_with_us {
        // `eval lab child`: it is this binary, always at hand.
        let prefix = schemas::log::local::die_with_parent_prefix(Some(&super::eval_program()));
        line.extend(prefix.unwrap_or_default());
    }
    if let Some(netns) = netns {
        line.extend(["ip", "netns", "exec", netns].map(String::from));
    }
    line.extend(argv.iter().cloned());
    let (program, args) = (line[0].clone(), line[1..].to_vec());
    let output = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(Error::io(log))?;
    let errors = output.try_clone().map_err(Error::io(log))?;
    let mut child = tokio::process::Command::new(&program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(output)
        .stderr(errors)
        .process_group(0)
        .spawn()
        .map_err(|source| Error::Spawn {
            program: program.clone(),
            source,
        })?;
    let pid = child
        .id()
        .ok_or_else(|| Error::Lab(format!("{program} exited at once")))?;
    let log = log.to_path_buf();
    tokio::spawn(async move {
        // Reaped here so that a dead node is not a zombie; its end goes into its log.
        if let Ok(status) = child.wait().await {
            use std::io::Write;
            if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(&log) {
                let _ = writeln!(file, "eval: process {pid} exited: {status}");
            }
        }
    });
    Ok(pid)
}

/// SIGCONT + SIGTERM, then SIGKILL after `grace`; returns when the process is gone.
pub async fn terminate(pid: u32, grace: Duration) {
    if !sys::process_alive(pid) {
        return;
    }
    let _ = sys::signal(pid, Signal::SIGCONT);
    let _ = sys::signal(pid, Signal::SIGTERM);
    let started = std::time::Instant::now();
    while sys::process_alive(pid) && started.elapsed() < grace {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if sys::process_alive(pid) {
        let _ = sys::signal(pid, Signal::SIGKILL);
        let started = std::time::Instant::now();
        while sys::process_alive(pid) && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub(super) async fn wait_listening(addr: SocketAddr, pid: u32, log: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if !sys::process_alive(pid) || started.elapsed() > Duration::from_secs(10) {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: String = tail.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            return Err(Error::Lab(format!(
                "proxy for {addr} did not start (log {}: {tail})",
                log.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
