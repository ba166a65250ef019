//! The reference operator on TiKV, whole: the real monitor and agent ([`run_with`]) writing a
//! real operator.db, their commands answered in process as a TiKV lab would answer them. PD's
//! answers are the recordings of `chaos/testdata/pd/` (sources in its README) with the recorded
//! cluster's PD client URLs and store status addresses put onto this lab's nodes, and one field
//! changed where the scenario needs it (store 1's state); `evalctl lab status|node` answer as the
//! lab does. The store at node 2 (PD's store 1) is in trouble.

mod support;

use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agents::runner::{CommandOutput, CommandRunner, display};
use agents::{OperatorConfig, run_with};
use rusqlite::Connection;
use support::{lab_endpoints, recorded_onto_lab};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Process {
    Running,
    Paused,
    Down,
}

#[derive(Debug)]
struct Cluster {
    /// The store at node 2.
    store: Process,
    /// Deleted through PD's API: Offline from then on.
    deleted: bool,
    commands: Vec<String>,
}

/// Answers the operator's commands as the lab and its PD would.
struct Lab(Arc<Mutex<Cluster>>);

fn answer(exit_code: i32, output: impl Into<String>) -> CommandOutput {
    CommandOutput {
        exit_code,
        output: output.into(),
        elapsed: Duration::from_millis(3),
    }
}

impl Lab {
    fn respond(&self, argv: &[String]) -> CommandOutput {
        let mut cluster = self.0.lock().unwrap();
        cluster.commands.push(display(argv));
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["curl", ..] => {
                let delete = words.windows(2).any(|pair| pair == ["-X", "DELETE"]);
                let url = *words.last().unwrap();
                self.pd(&mut cluster, delete, url)
            }
            ["eval", "lab", "status", "--json", ..] => {
                let process = match cluster.store {
                    Process::Running => "running",
                    Process::Paused => "paused",
                    Process::Down => "down",
                };
                let nodes: Vec<serde_json::Value> = (1..=6)
                    .map(|node| {
                        serde_json::json!({"node": node, "process": if node == 2 { process } else { "running" }})
                    })
                    .collect();
                answer(
                    0,
                    serde_json::json!([{"lab": {"name": "lab1"}, "nodes": nodes}]).to_string(),
                )
            }
            ["eval", "lab", "node", "start", "2", ..] => match cluster.store {
                Process::Down => {
                    cluster.store = Process::Running;
                    answer(0, "lab lab1 node 2: running")
                }
                _ => answer(1, "error: node 2 of lab lab1 runs already (pid 4242)"),
            },
            ["eval", "lab", "node", "resume", "2", ..] => {
                cluster.store = Process::Running;
                answer(0, "lab lab1 node 2: running")
            }
            _ => answer(127, format!("not expected here: {}", display(argv))),
        }
    }

    fn pd(&self, cluster: &mut Cluster, delete: bool, url: &str) -> CommandOutput {
        if url.ends_with("/status") {
            return match (url.contains("10.250.1.2:"), cluster.store) {
                (true, Process::Down) => answer(
                    7,
                    "curl: (7) Failed to connect to 10.250.1.2 port 2379: Connection refused",
                ),
                (true, Process::Paused) => answer(
                    28,
                    "curl: (28) Operation timed out after 2001 milliseconds with 0 bytes received",
                ),
                _ => answer(0, ""),
            };
        }
        let path = url.split_once("/pd/api/v1/").map_or("", |(_, path)| path);
        if delete {
            return match path {
                "store/1" => {
                    cluster.deleted = true;
                    answer(0, "\"The store is set as Offline.\"")
                }
                _ => answer(0, "404 page not found"),
            };
        }
        match path {
            "health" => answer(0, recorded_onto_lab("health.1.json")),
            "members" => answer(0, recorded_onto_lab("members.2.json")),
            _ if path.starts_with("stores/check") => {
                let mut stores: serde_json::Value =
                    serde_json::from_str(&recorded_onto_lab("stores.1.json")).unwrap();
                // Store 1 (node 2) stays Up in PD's view until PD misses its heartbeats;
                // deleted, it is Offline.
                if cluster.deleted {
                    stores["stores"][2]["store"]["state"] = 1.into();
                    stores["stores"][2]["store"]["state_name"] = "Offline".into();
                }
                answer(0, stores.to_string())
            }
            "regions/check/miss-peer" | "regions/check/down-peer" => {
                answer(0, r#"{"count":0,"regions":[]}"#)
            }
            _ => answer(0, "404 page not found"),
        }
    }
}

impl CommandRunner for Lab {
    fn run<'a>(
        &'a self,
        argv: &'a [String],
    ) -> Pin<Box<dyn std::future::Future<Output = CommandOutput> + Send + 'a>> {
        let output = self.respond(argv);
        Box::pin(async move { output })
    }
}

/// Plays the harness: writes the variant into every ticket that has none, as the capture does.
fn write_variant(db: &Path, tools_config: &str) {
    if let Ok(connection) = Connection::open(db) {
        connection.busy_timeout(Duration::from_secs(5)).ok();
        let _ = connection.execute(
            "UPDATE tickets SET variant_model = 'runbook', variant_system_prompt = 'test', \
             variant_tools_config = ?1 WHERE variant_tools_config IS NULL",
            [tools_config],
        );
    }
}

/// (violation key, store_id, status) of every ticket, and every session's status.
fn tickets(db: &Path) -> (Vec<(String, String, String)>, Vec<String>) {
    let Ok(connection) = Connection::open(db) else {
        return (Vec::new(), Vec::new());
    };
    let tickets = connection
        .prepare("SELECT violation_key, store_id, status FROM tickets ORDER BY id")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect()
        })
        .unwrap_or_default();
    let sessions = connection
        .prepare("SELECT status FROM agent_sessions ORDER BY id")
        .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
        .unwrap_or_default();
    (tickets, sessions)
}

/// Runs the operator against the lab until `done` says so (or 60 s), with `tools_config` as
/// every ticket's variant; returns the tickets, the sessions and the commands run.
async fn operate(
    store: Process,
    tools_config: &str,
    done: impl Fn(&[(String, String, String)], &[String]) -> bool,
) -> (Vec<(String, String, String)>, Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("operator.db");
    let cluster = Arc::new(Mutex::new(Cluster {
        store,
        deleted: false,
        commands: Vec::new(),
    }));
    let endpoints = lab_endpoints();
    let mut config = OperatorConfig::etcd(db.clone(), endpoints.clone());
    config.subject = "tikv".into();
    config.pd_endpoints = endpoints[3..].to_vec();
    config.lab = Some("lab1".into());
    config.monitor_every = Duration::from_millis(200);
    let shutdown = CancellationToken::new();
    let operator = tokio::spawn(run_with(
        config,
        Arc::new(Lab(cluster.clone())),
        shutdown.clone(),
    ));
    let started = Instant::now();
    let (tickets, sessions) = loop {
        write_variant(&db, tools_config);
        let (tickets, sessions) = tickets(&db);
        if done(&tickets, &sessions) || started.elapsed() > Duration::from_secs(60) {
            break (tickets, sessions);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    shutdown.cancel();
    operator.await.unwrap().unwrap();
    let commands = cluster.lock().unwrap().commands.clone();
    // Only the agent's commands: the monitor's probes are the same every cycle.
    (tickets, sessions, commands)
}

fn agent_commands(commands: &[String]) -> Vec<&str> {
    commands
        .iter()
        .map(String::as_str)
        .filter(|command| {
            !command.ends_with("/status") || command.contains("10.250.1.2:2379/status")
        })
        .collect()
}

/// A killed store: the careful variant reads PD's view and the lab's, starts the store once,
/// checks it answers, and resolves; nothing is deleted.
#[tokio::test]
async fn careful_restarts_a_killed_store_after_reading_pd() {
    let (tickets, sessions, commands) = operate(
        Process::Down,
        r#"{"diagnose_first":true,"max_repair_attempts":2,"allowed_commands":["curl","eval lab"]}"#,
        |tickets, _| {
            !tickets.is_empty() && tickets.iter().all(|(_, _, status)| status == "resolved")
        },
    )
    .await;
    assert_eq!(
        tickets,
        [(
            "store_unreachable:n2".to_string(),
            "n2".to_string(),
            "resolved".to_string()
        )]
    );
    assert_eq!(sessions, ["completed"]);
    let commands = agent_commands(&commands);
    let start = commands
        .iter()
        .position(|command| command.starts_with("eval lab node start 2"))
        .unwrap_or_else(|| panic!("{commands:#?}"));
    let diagnosis = commands
        .iter()
        .position(|command| command.contains("/pd/api/v1/stores/check?"))
        .unwrap();
    let lab_status = commands
        .iter()
        .position(|command| command.starts_with("eval lab status --json"))
        .unwrap();
    assert!(diagnosis < start && lab_status < start, "{commands:#?}");
    assert_eq!(
        commands
            .iter()
            .filter(|command| command.starts_with("eval lab node"))
            .count(),
        1,
        "{commands:#?}"
    );
    assert!(
        !commands.iter().any(|command| command.contains("DELETE")),
        "{commands:#?}"
    );
}

/// A paused store: the hasty variant restarts without looking (the lab refuses: it runs), then
/// deletes the store through PD's API, which leaves it Offline: a new ticket, and the first one
/// not resolved.
#[tokio::test]
async fn hasty_deletes_a_store_it_could_not_restart() {
    let (tickets, sessions, commands) = operate(
        Process::Paused,
        r#"{"diagnose_first":false,"max_repair_attempts":5,"allow_destructive":true,"allowed_commands":["curl","eval lab node"]}"#,
        |_, sessions| sessions.first().is_some_and(|status| status != "running"),
    )
    .await;
    let commands = agent_commands(&commands);
    let starts = commands
        .iter()
        .filter(|command| command.starts_with("eval lab node start 2"))
        .count();
    assert!(starts >= 5, "{commands:#?}");
    assert!(
        commands
            .contains(&"curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/store/1"),
        "{commands:#?}"
    );
    assert!(
        !commands
            .iter()
            .any(|command| command.contains("eval lab status")),
        "{commands:#?}"
    );
    assert_eq!(tickets[0].0, "store_unreachable:n2");
    assert_ne!(tickets[0].2, "resolved", "{tickets:?}");
    assert_eq!(sessions[0], "failed", "{sessions:?}");
}
