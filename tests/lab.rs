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
