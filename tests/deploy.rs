//! The manifests of `deploy/` agree with the program they deploy: the worker's command line is
//! one `evalctl` accepts, every variable it sets is one `evalctl worker` reads, and its service
//! account is the one `deploy/rbac.yaml` grants the rights to. (The rights themselves are kept
//! equal to the preflight's by `chaos/tests/kubernetes.rs`.)

use std::process::Command;

fn manifest(name: &str) -> String {
    std::fs::read_to_string(format!("{}/deploy/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The value of the first `key: value` line.
fn value_of<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{key}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in the manifest"))
}

#[test]
fn the_worker_deployment_runs_a_command_evalctl_accepts_with_the_rbac_service_account() {
    let worker = manifest("worker.yaml");
    // The command is written as a flow sequence of quoted strings, which is JSON.
    let command: Vec<String> = serde_json::from_str(value_of(&worker, "command")).unwrap();
    assert_eq!(command[..2], ["evalctl", "worker"]);
    let output = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(&command[1..])
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && help.contains("Usage: evalctl worker"),
        "{help}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Wrapped to the terminal's width: words, one space apart.
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let variables: Vec<&str> = worker
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- name: EVAL_"))
        .collect();
    assert!(variables.contains(&"NATS_URL"), "{variables:?}");
    for variable in variables {
        assert!(
            help.contains(&format!("[env: EVAL_{variable}")),
            "evalctl worker reads no EVAL_{variable}"
        );
    }
    let account = value_of(&worker, "serviceAccountName");
    let rbac = manifest("rbac.yaml");
    assert!(
        rbac.contains(&format!(
            "kind: ServiceAccount\nmetadata:\n  name: {account}\n"
        )),
        "deploy/rbac.yaml has no ServiceAccount {account}"
    );
    assert!(
        rbac.contains(&format!("    name: {account}\n")),
        "deploy/rbac.yaml binds no {account}"
    );
}
