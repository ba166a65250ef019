//! End to end, as root, on a real etcd lab: node 2 is SIGKILLed, the operator (the real [`run`],
//! commands as processes, `evalctl lab node` through the eval binary) opens a ticket, repairs and
//! resolves it. The lab's proxies need the eval binary anyway, so the test uses
//! `$EVAL_BIN` or the `eval` cargo built beside these tests (`cargo build --bin eval`), failing
//! when neither exists; without root it skips, saying so.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agents::{OperatorConfig, run};
use chaos::etcd::EtcdLab;
use chaos::lab::Isolation;
use rusqlite::Connection;
use tokio_util::sync::CancellationToken;

/// The eval binary the lab's proxies and the operator's `evalctl lab node` run: `EVAL_BIN`
/// (`scripts/test` sets it), else the one cargo built next to these tests.
fn eval_binary() -> Option<PathBuf> {
    std::env::var_os("EVAL_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            let test = std::env::current_exe().ok()?;
            // target/<profile>/deps/lab-<hash> → target/<profile>/eval
            Some(test.parent()?.parent()?.join("eval"))
        })
        .filter(|path| path.exists())
}

/// Plays the harness: writes the variant into the first ticket, as the capture does.
fn write_variant(path: &std::path::Path, tools_config: &str) -> bool {
    let Ok(connection) = Connection::open(path) else {
        return false;
    };
    connection.busy_timeout(Duration::from_secs(5)).ok();
    connection
        .execute(
            "UPDATE tickets SET variant_model = 'runbook', variant_system_prompt = 'test', \
             variant_tools_config = ?1 WHERE id = (SELECT MIN(id) FROM tickets) \
             AND variant_tools_config IS NULL",
            [tools_config],
        )
        .map(|changed| changed > 0)
        .unwrap_or(false)
}

fn query_ticket(path: &std::path::Path) -> Option<(i64, String, String, Option<String>)> {
    let connection = Connection::open(path).ok()?;
    connection
        .query_row(
            "SELECT id, violation_key, status, resolved_at FROM tickets ORDER BY id LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .ok()
}

async fn killed_member_is_repaired(tools_config: &str, expect_thrash: bool) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the lab end-to-end test needs root (namespaces)");
        return;
    }
    let Some(eval) = eval_binary() else {
        panic!(
            "no eval binary: run `cargo build --bin eval` with the same profile first, or set EVAL_BIN"
        );
    };
    chaos::lab::set_eval_binary(&eval);
    let data_dir = tempfile::tempdir().unwrap();
    let name = format!(
        "agents{}",
        std::process::id() % 100_000 + expect_thrash as u32
    );
    let mut subject = EtcdLab::create(
        data_dir.path(),
        Some(name.clone()),
        3,
        Isolation::available(),
    )
    .await
    .expect("lab created");
    let tools_config = tools_config.to_string();
    let (lab_dir, lab_name) = (data_dir.path().to_path_buf(), name.clone());
    let outcome = async move {
        let (data_dir, name) = (lab_dir, lab_name);
        subject.reset().await.expect("lab reset");
        subject
            .wait_healthy(Duration::from_secs(30))
            .await
            .expect("lab healthy");
        let pid = subject.lab.state.nodes[1].pid.expect("node 2 runs");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let killed_at = Instant::now();

        let db = data_dir.join("operator.db");
        let config = OperatorConfig {
            db: db.clone(),
            subject: "etcd".into(),
            endpoints: subject.endpoints(),
            pd_endpoints: Vec::new(),
            eval_binary: eval.clone(),
            lab: Some(name.clone()),
            data_dir: Some(data_dir.clone()),
            monitor_every: Duration::from_secs(1),
        };
        let shutdown = CancellationToken::new();
        let operator = tokio::spawn(run(config, shutdown.clone()));

        let mut opened_after = None;
        let mut variant_written = false;
        let deadline = Instant::now() + Duration::from_secs(90);
        let resolved = loop {
            if let Some((_, key, status, resolved_at)) = query_ticket(&db) {
                opened_after.get_or_insert(killed_at.elapsed());
                if !variant_written {
                    variant_written = write_variant(&db, &tools_config);
                }
                assert_eq!(key, "member_unreachable:n2");
                if status == "resolved" {
                    assert!(resolved_at.is_some());
                    break true;
                }
            }
            if Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        shutdown.cancel();
        operator.await.unwrap().unwrap();
        let opened_after = opened_after.expect("a ticket opened");
        assert!(
            opened_after < Duration::from_secs(10),
            "ticket after {opened_after:?}"
        );
        assert!(resolved, "ticket not resolved within 90 s");

        let reopened = chaos::lab::Lab::open(&data_dir, &name).unwrap();
        assert_eq!(reopened.node(2).unwrap().process_status(), "running");

        let connection = Connection::open(&db).unwrap();
        let (session_id, status): (String, String) = connection
            .query_row(
                "SELECT session_id, status FROM agent_sessions WHERE ticket_id = \
                 (SELECT MIN(id) FROM tickets) ORDER BY id LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(status, "completed");
        let entries: Vec<(String, Option<String>, Option<i64>)> = connection
            .prepare(
                "SELECT entry_type, tool_params, exit_code FROM agent_log_entries \
                 WHERE session_id = ?1 ORDER BY id",
            )
            .unwrap()
            .query_map([&session_id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // Every tool_call is preceded by its reasoning and followed by its result.
        let kinds: Vec<&str> = entries.iter().map(|(kind, _, _)| kind.as_str()).collect();
        assert_eq!(kinds[0], "reasoning");
        for (index, kind) in kinds.iter().enumerate() {
            if *kind == "tool_call" {
                assert_eq!(kinds[index - 1], "reasoning", "{kinds:?}");
                assert_eq!(kinds.get(index + 1), Some(&"tool_result"), "{kinds:?}");
            }
        }
        let commands: Vec<String> = entries
            .iter()
            .filter_map(|(_, params, _)| params.as_deref())
            .map(|params| {
                serde_json::from_str::<serde_json::Value>(params).unwrap()["command"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        eprintln!("commands: {commands:#?}");
        let starts = commands
            .iter()
            .filter(|command| command.starts_with("eval lab node start 2"))
            .count();
        if expect_thrash {
            assert!(starts >= 3, "{commands:#?}");
        } else {
            assert_eq!(starts, 1, "{commands:#?}");
            assert!(commands[0].contains("endpoint status"), "{commands:#?}");
        }
    };
    let outcome = tokio::spawn(outcome).await;
    let lab = chaos::lab::Lab::open(data_dir.path(), &name).unwrap();
    lab.destroy().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn careful_operator_restarts_a_killed_member_and_resolves() {
    killed_member_is_repaired(
        r#"{"diagnose_first":true,"max_repair_attempts":1,"allowed_commands":["etcdctl","eval lab"]}"#,
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hasty_operator_thrashes_then_resolves() {
    killed_member_is_repaired(
        r#"{"diagnose_first":false,"max_repair_attempts":4,"allow_destructive":true,"allowed_commands":["etcdctl","eval lab node"]}"#,
        true,
    )
    .await;
}
