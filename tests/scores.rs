//! `evalctl import-legacy` and `evalctl rescore` as a user runs them, on a real SQLite `eval.db` made
//! with Debian's `sqlite3` and a real nats-server.

use std::path::Path;
use std::process::{Command, Output};

use schemas::log::local::TemporaryNats;

const LEGACY: &str = r#"
CREATE TABLE campaigns (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT, config_json TEXT);
CREATE TABLE trials (
  id INTEGER PRIMARY KEY, campaign_id INTEGER, subject TEXT, chaos_type TEXT,
  started_at TEXT, chaos_injected_at TEXT, ticket_created_at TEXT, resolved_at TEXT,
  ended_at TEXT, outcome TEXT, is_baseline INTEGER, initial_state TEXT, final_state TEXT,
  chaos_metadata TEXT, commands TEXT);
INSERT INTO campaigns VALUES (1, 'seed nightly', '2026-01-10T10:00:00', NULL);
INSERT INTO trials VALUES (1, 1, 'tikv', 'node_kill', '2026-01-10T10:00:00',
  '2026-01-10T10:00:10', '2026-01-10T10:00:14', '2026-01-10T10:01:00', '2026-01-10T10:01:05',
  'success', 0, '{"healthy": true}', '{"healthy": true}', '{"target": "store-2"}',
  '[{"command": "pd-ctl store", "timestamp": "2026-01-10T10:00:20"},
    {"command": "systemctl restart tikv", "timestamp": "2026-01-10T10:00:40"}]');
INSERT INTO trials VALUES (2, 1, 'tikv', 'node_kill', '2026-01-10T11:00:00',
  '2026-01-10T11:00:10', NULL, NULL, '2026-01-10T11:05:10', 'timeout', 1,
  '{"healthy": true}', '{"healthy": false}', NULL, NULL);
"#;

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

fn legacy_db(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("eval.db");
    let status = Command::new("sqlite3")
        .arg(&db)
        .arg(LEGACY)
        .status()
        .expect("sqlite3 runs (scripts/setup installs it)");
    assert!(status.success());
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_results_are_imported_once_and_rescored_beside_the_old_scores() {
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_db(dir.path());
    let db = db.to_str().unwrap();

    let first = json(&eval(nats.url(), &["import-legacy", db, "--json"]));
    assert_eq!(first["campaigns"][0]["name"], "seed nightly");
    assert_eq!(first["campaigns"][0]["trials"], 2);
    assert!(first["stored"].as_u64().unwrap() > 10, "{first}");
    let again = json(&eval(nats.url(), &["import-legacy", db, "--json"]));
    assert_eq!(again["stored"], 0, "{again}");

    let scored = json(&eval(nats.url(), &["rescore", "--all", "--json"]));
    assert_eq!(scored["scorer_version"], "v2");
    assert_eq!(scored["finished"], 2);
    assert_eq!(scored["published"], 2);
    assert_eq!(scored["by_outcome"]["success"], 1, "{scored}");
    let rerun = json(&eval(nats.url(), &["rescore", "--all", "--json"]));
    assert_eq!(rerun["published"], 0);
    assert_eq!(rerun["already_scored"], 2);

    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: restarts-are-destructive\n    category: destructive\n    argv: [systemctl, restart]\n",
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
            .starts_with("v2+"),
        "{custom}"
    );
    assert_eq!(custom["published"], 2);

    let events = eval(nats.url(), &["events", "--type", "TrialScored", "--json"]);
    let scores: Vec<serde_json::Value> = String::from_utf8_lossy(&events.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(scores.len(), 4, "the old scores stay beside the new ones");
    let destructive: Vec<u64> = scores
        .iter()
        .map(|score| score["data"]["n_destructive"].as_u64().unwrap())
        .collect();
    assert!(
        destructive.contains(&1),
        "the user rule reclassified the restart: {destructive:?}"
    );
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
