//! `evalctl import-legacy` and `evalctl rescore` as a user runs them, on the seed harness's real
//! `eval.db` (`ingest/testdata/seed-harness/`) and a real nats-server.

use std::path::Path;
use std::process::{Command, Output};

use testkit::TemporaryNats;

fn eval(nats: &str, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(args)
        .args(["--nats", nats])
        .env("RUST_LOG", "off")
        .output()
        .expect("eval runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// A copy of the seed harness's `eval.db` in `dir`.
fn legacy_db(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("eval.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ingest/testdata/seed-harness/eval.db"),
        &db,
    )
    .unwrap();
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_results_are_imported_once_and_rescored_beside_the_old_scores() {
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_db(dir.path());
    let db = db.to_str().unwrap();

    let first = json(&eval(nats.url(), &["import-legacy", db, "--json"]));
    let trials: Vec<u64> = first["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|campaign| campaign["trials"].as_u64().unwrap())
        .collect();
    assert_eq!(trials, [5, 3, 4, 2], "{first}");
    assert_eq!(
        first["campaigns"][0]["name"],
        "eval.db #1: tikv/latency default"
    );
    assert!(first["stored"].as_u64().unwrap() > 10, "{first}");
    let again = json(&eval(nats.url(), &["import-legacy", db, "--json"]));
    assert_eq!(again["stored"], 0, "{again}");

    let scored = json(&eval(nats.url(), &["rescore", "--all", "--json"]));
    assert_eq!(scored["scorer_version"], "v3");
    assert_eq!(scored["finished"], 14);
    assert_eq!(scored["published"], 14);
    // The seed harness's grades: 3 + 1 + 3 + 1 successes, 1 + 1 failures, 1 + 2 + 1 timeouts.
    assert_eq!(scored["by_outcome"]["success"], 8, "{scored}");
    assert_eq!(scored["by_outcome"]["failure"], 2, "{scored}");
    assert_eq!(scored["by_outcome"]["timeout"], 4, "{scored}");
    let rerun = json(&eval(nats.url(), &["rescore", "--all", "--json"]));
    assert_eq!(rerun["published"], 0);
    assert_eq!(rerun["already_scored"], 14);

    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: metrics-are-destructive\n    category: destructive\n    argv: [tikv-ctl]\n",
    )
    .unwrap();
    let campaign = first["campaigns"][0]["campaign_id"].as_str().unwrap();
    let custom = json(&eval(
        nats.url(),
        &[
            "rescore",
            "--campaign",
            &campaign[..10],
            "--rules",
            rules.to_str().unwrap(),
            "--json",
        ],
    ));
    assert!(
        custom["scorer_version"]
            .as_str()
            .unwrap()
            .starts_with("v3+"),
        "{custom}"
    );
    assert_eq!(custom["published"], 5);

    let events = eval(nats.url(), &["events", "--type", "TrialScored", "--json"]);
    let scores: Vec<serde_json::Value> = String::from_utf8_lossy(&events.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(scores.len(), 19, "the old scores stay beside the new ones");
    // Campaign 1's destructive calls: 2 by the built-in rules (`pd-ctl store delete 2` in two
    // trials), 7 when the user's rule adds its five `tikv-ctl` calls.
    let destructive = |custom: bool| -> u64 {
        scores
            .iter()
            .filter(|score| score["campaign_id"] == campaign)
            .filter(|score| (score["data"]["scorer_version"] != "v3") == custom)
            .map(|score| score["data"]["n_destructive"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(destructive(false), 2);
    assert_eq!(destructive(true), 7, "the user rule reclassified tikv-ctl");
}

#[test]
fn a_file_that_is_not_a_legacy_database_gets_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let not_db = dir.path().join("eval.db");
    std::fs::write(&not_db, "hello").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let nats = runtime.block_on(TemporaryNats::start()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args([
            "import-legacy",
            not_db.to_str().unwrap(),
            "--nats",
            nats.url(),
        ])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not an SQLite database"), "{stderr}");
}
