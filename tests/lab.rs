//! `evalctl lab` as a user runs it: up, status, node stop/start/pause/resume, down. Needs root for
//! the namespaced lab; the loopback lab runs anywhere.

use std::path::Path;
use std::process::{Command, Output};

fn eval(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "off")
        .output()
        .expect("eval runs")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn status(data_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(eval(data_dir, &["lab", "status", "--json"]))).unwrap()
}

fn check_lab_commands(loopback: bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let mut up = vec!["lab", "up", "--nodes", "3", "--name", "t1"];
    if loopback {
        up.push("--loopback");
    }
    let printed = ok(eval(data, &up));
    assert!(printed.contains("lab t1 up: etcd, 3 nodes"), "{printed}");

    let labs = status(data);
    assert_eq!(labs[0]["health"]["healthy"], true, "{labs}");
    assert_eq!(labs[0]["nodes"].as_array().unwrap().len(), 3);

    ok(eval(data, &["lab", "node", "pause", "2"]));
    assert_eq!(status(data)[0]["nodes"][1]["process"], "paused");
    ok(eval(data, &["lab", "node", "resume", "2"]));
    ok(eval(data, &["lab", "node", "stop", "3"]));
    let labs = status(data);
    assert_eq!(labs[0]["nodes"][2]["process"], "down");
    assert_eq!(labs[0]["health"]["healthy"], false);
    ok(eval(data, &["lab", "node", "start", "3"]));

    let error = eval(data, &["lab", "node", "stop", "7"]);
    assert!(!error.status.success());
    assert!(String::from_utf8_lossy(&error.stderr).contains("nodes 1 to 3, not 7"));

    let printed = ok(eval(data, &["lab", "down"]));
    assert_eq!(printed, "lab t1 down\n");
    assert_eq!(status(data), serde_json::json!([]));
    assert!(!data.join("labs/t1").exists());
}

#[test]
fn lab_commands_on_a_loopback_lab() {
    check_lab_commands(true);
}

#[test]
fn lab_commands_on_a_namespaced_lab() {
    if !chaos::lab::sys::is_root() {
        eprintln!("skipped lab_commands_on_a_namespaced_lab: needs root for network namespaces");
        return;
    }
    check_lab_commands(false);
}

/// Whether `pid` is gone (or a zombie nobody has reaped yet).
fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

/// `lab child`, which starts every process of a worker's lab: the command dies with the process
/// that started it, even by SIGKILL, and is not run at all when that process is already gone (a
/// worker killed in between would otherwise leave it running for good).
#[test]
fn a_lab_child_dies_with_its_parent_and_never_outlives_it() {
    let dir = tempfile::tempdir().unwrap();
    let evalctl = env!("CARGO_BIN_EXE_evalctl");

    // Its parent is not the one named: the command is not run.
    let marker = dir.path().join("ran");
    let output = Command::new(evalctl)
        .args(["lab", "child", "--parent", "1", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(125), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("process 1 that started this one is gone"),
        "{stderr}"
    );
    assert!(!marker.exists());

    // Its parent is killed: the command goes with it.
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" lab child --parent $$ -- sleep 300 & echo $!; wait")
        .arg(evalctl)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(shell.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let sleeper: u32 = line.trim().parse().unwrap();
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(format!("/proc/{sleeper}/cmdline"))
        .is_ok_and(|line| line.starts_with("sleep"))
    {
        assert!(started.elapsed().as_secs() < 10, "the command never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    shell.kill().unwrap();
    shell.wait().unwrap();
    while !gone(sleeper) {
        assert!(
            started.elapsed().as_secs() < 10,
            "process {sleeper} outlived the process that started it"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
