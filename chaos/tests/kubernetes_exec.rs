//! `process_pause`, `node_kill: signal` and `disk_pressure` on Kubernetes: commands in the database's container
//! (`pods/exec`) through a real WebSocket. A loopback API mock checks each upgrade's exact path
//! and query (the container, `sh -c`, the fixed script and its arguments), speaks the
//! `v4.channel.k8s.io` protocol (stdout on channel 1, the exit `Status` on channel 3) and answers
//! as the container's shell would; a missing or extra command fails the test.

mod api_verifier;

use std::net::SocketAddr;

use api_verifier::{encoded, pod_list};
use chaos::kubernetes::exec::{FILL_SCRIPT, SIGNAL_SCRIPT, UNFILL_SCRIPT};
use chaos::kubernetes::faults::{self, KubeAction, Owner, Topology, Ways};
use chaos::kubernetes::pods::{self, Selection};
use expect_test::expect;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use schemas::campaign::{ChaosSpec, NodeKillWay, SubjectKind};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const TRIAL: &str = "0b5f6a2e-9c1d-8e4f-a1b2-c3d4e5f60718";

/// One command the client must run, and what the container answers.
struct Exec {
    pod: &'static str,
    container: &'static str,
    script: &'static str,
    args: Vec<&'static str>,
    stdout: &'static str,
    /// `None`: exit 0.
    exit_code: Option<u32>,
}

impl Exec {
    fn uri(&self) -> String {
        let mut uri = format!(
            "/api/v1/namespaces/etcd/pods/{}/exec?&stdout=true&stderr=true&container={}",
            self.pod, self.container
        );
        for word in ["sh", "-c", self.script, "sh"].iter().chain(&self.args) {
            uri.push_str(&format!("&command={}", encoded(word)));
        }
        uri
    }

    /// The exit status as the API server sends it on channel 3.
    fn status(&self) -> Value {
        match self.exit_code {
            None => json!({"metadata": {}, "status": "Success"}),
            Some(code) => json!({
                "metadata": {}, "status": "Failure",
                "message": format!("command terminated with non-zero exit code: error executing command [sh -c], exit code {code}"),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
            }),
        }
    }
}

/// An API server that serves `script` in order, one exec connection each; returns the paths it
/// saw that it did not expect.
async fn api_server(script: Vec<Exec>) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut wrong = Vec::new();
        for expected in script {
            let (stream, _) = listener.accept().await.unwrap();
            let (mut ws, uri) = testkit::accept_channel_socket(stream).await.unwrap();
            if uri != expected.uri() {
                wrong.push(format!("expected {}\n     got {uri}", expected.uri()));
            }
            let mut stdout = vec![1u8];
            stdout.extend_from_slice(expected.stdout.as_bytes());
            ws.send(Message::binary(stdout)).await.unwrap();
            let mut status = vec![3u8];
            status.extend_from_slice(&serde_json::to_vec(&expected.status()).unwrap());
            ws.send(Message::binary(status)).await.unwrap();
            ws.close(None).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        }
        // Nothing more may come.
        if let Ok(Ok((_, _))) =
            tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await
        {
            wrong.push("a command beyond the script".into());
        }
        wrong
    });
    (address, task)
}

fn client(api: SocketAddr) -> kube::Client {
    kube::Client::try_from(kube::Config::new(format!("http://{api}").parse().unwrap())).unwrap()
}

fn etcd_selection() -> Selection {
    let list = pod_list("pods-etcd-bitnami.json");
    let items: Vec<Pod> = serde_json::from_value(list["items"].clone()).unwrap();
    let members: Vec<Pod> = items.into_iter().take(3).collect();
    Selection {
        subject: SubjectKind::Etcd,
        namespace: "etcd".into(),
        selectors: pods::default_selectors(SubjectKind::Etcd, None).remove(0),
        nodes: pods::number(&members, &[]),
    }
}

fn plan(params: Value, kind: &str) -> faults::KubeRecord {
    let chaos: ChaosSpec = serde_json::from_value(json!({"type": kind, "params": params})).unwrap();
    let owner = Owner {
        campaign_id: "019a6c1e-7d2b-7c3e-9f10-2a3b4c5d6e7f".into(),
        trial_id: TRIAL.into(),
        context: None,
    };
    faults::plan(
        &etcd_selection(),
        &Topology::default(),
        &chaos,
        1,
        &owner,
        Ways::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn process_pause_stops_the_database_by_name_and_cleanup_continues_it() {
    let record = plan(json!({"target": 2}), "process_pause");
    assert_eq!(
        record.action,
        KubeAction::ProcessPause {
            node: 2,
            pod: "etcd-1".into(),
            container: "etcd".into(),
            process: "etcd".into(),
        }
    );
    let exec = |args: Vec<&'static str>, stdout| Exec {
        pod: "etcd-1",
        container: "etcd",
        script: SIGNAL_SCRIPT,
        args,
        stdout,
        exit_code: None,
    };
    let script = vec![
        exec(vec!["etcd", "STOP"], "7 STOP\n"),
        exec(vec!["etcd", "STATE"], "7 T\n"),
        exec(vec!["etcd", "CONT"], "7 CONT\n"),
        exec(vec!["etcd", "STATE"], "7 S\n"),
    ];
    let (api, server) = api_server(script).await;
    let client = client(api);
    faults::apply(&client, &record).await.unwrap();
    expect![[r#"["etcd (pid 7) in pod etcd/etcd-1 is stopped"]"#]].assert_eq(&format!(
        "{:?}",
        faults::record_leftovers(&client, &record).await.unwrap()
    ));
    faults::cleanup(&client, &record).await.unwrap();
    assert_eq!(
        faults::record_leftovers(&client, &record).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(server.await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn a_database_that_is_its_containers_init_cannot_be_paused_and_says_why() {
    let record = plan(json!({"target": 1}), "process_pause");
    let script = vec![Exec {
        pod: "etcd-0",
        container: "etcd",
        script: SIGNAL_SCRIPT,
        args: vec!["etcd", "STOP"],
        stdout: "1 init\n",
        exit_code: None,
    }];
    let (api, server) = api_server(script).await;
    let error = faults::apply(&client(api), &record).await.unwrap_err();
    expect!["etcd is PID 1 of container etcd in pod etcd/etcd-0, and the kernel ignores SIGSTOP sent to a PID namespace's init from inside it: give the pod `shareProcessNamespace: true` (its pause container is then PID 1), or use runtime: lab"]
        .assert_eq(&error.to_string());
    assert_eq!(server.await.unwrap(), Vec::<String>::new());
}

/// `node_kill: signal`: SIGKILL to the database by name (the kubelet restarts the container);
/// refused with the ways out when the database is its container's PID 1.
#[tokio::test]
async fn node_kill_by_signal_kills_the_database_by_name_unless_it_is_pid_1() {
    let chaos: ChaosSpec =
        serde_json::from_value(json!({"type": "node_kill", "params": {"target": 2}})).unwrap();
    let owner = Owner {
        campaign_id: "019a6c1e-7d2b-7c3e-9f10-2a3b4c5d6e7f".into(),
        trial_id: TRIAL.into(),
        context: None,
    };
    let ways = Ways {
        node_kill: NodeKillWay::Signal,
        ..Ways::default()
    };
    let record = faults::plan(
        &etcd_selection(),
        &Topology::default(),
        &chaos,
        1,
        &owner,
        ways,
    )
    .unwrap();
    assert_eq!(
        record.action,
        KubeAction::ProcessKill {
            node: 2,
            pod: "etcd-1".into(),
            container: "etcd".into(),
            process: "etcd".into(),
            restarts: 0,
        }
    );
    let kill = |stdout| Exec {
        pod: "etcd-1",
        container: "etcd",
        script: SIGNAL_SCRIPT,
        args: vec!["etcd", "KILL"],
        stdout,
        exit_code: None,
    };
    let (api, server) = api_server(vec![kill("7 KILL\n"), kill("1 init\n")]).await;
    let client = client(api);
    faults::apply(&client, &record).await.unwrap();
    let error = faults::apply(&client, &record).await.unwrap_err();
    expect!["etcd is PID 1 of container etcd in pod etcd/etcd-1, and the kernel ignores SIGKILL sent to a PID namespace's init from inside it: give the pod `shareProcessNamespace: true` (its pause container is then PID 1), or use node_kill: container_kill (Chaos Mesh kills the container from outside) or node_kill: pod_delete"]
        .assert_eq(&error.to_string());
    assert_eq!(server.await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn disk_pressure_fills_the_pods_data_volume_and_cleanup_removes_the_file() {
    let record = plan(json!({"target": 3, "fill_percent": 95}), "disk_pressure");
    assert_eq!(
        record.action,
        KubeAction::DiskFill {
            node: 3,
            pod: "etcd-2".into(),
            container: "etcd".into(),
            dir: "/bitnami/etcd".into(),
            file: "eval-fill-0b5f6a2e".into(),
            fill_percent: 95,
        }
    );
    let exec = |script, args: Vec<&'static str>, stdout| Exec {
        pod: "etcd-2",
        container: "etcd",
        script,
        args,
        stdout,
        exit_code: None,
    };
    let script = vec![
        exec(
            FILL_SCRIPT,
            vec!["/bitnami/etcd", "95", "eval-fill-0b5f6a2e"],
            "8191416 120432 7661000\n",
        ),
        exec(
            UNFILL_SCRIPT,
            vec!["/bitnami/etcd", "eval-fill-0b5f6a2e"],
            "",
        ),
        exec(
            UNFILL_SCRIPT,
            vec!["/bitnami/etcd", "eval-fill-0b5f6a2e", "CHECK"],
            "",
        ),
    ];
    let (api, server) = api_server(script).await;
    let client = client(api);
    faults::apply(&client, &record).await.unwrap();
    faults::cleanup(&client, &record).await.unwrap();
    assert_eq!(
        faults::record_leftovers(&client, &record).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(server.await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn a_command_that_fails_in_the_container_is_an_error_with_its_exit() {
    let record = plan(json!({"target": 3, "fill_percent": 95}), "disk_pressure");
    let script = vec![Exec {
        pod: "etcd-2",
        container: "etcd",
        script: FILL_SCRIPT,
        args: vec!["/bitnami/etcd", "95", "eval-fill-0b5f6a2e"],
        stdout: "",
        exit_code: Some(127),
    }];
    let (api, server) = api_server(script).await;
    let error = faults::apply(&client(api), &record).await.unwrap_err();
    expect!["sh -c … /bitnami/etcd 95 eval-fill-0b5f6a2e in etcd/etcd-2 (etcd) failed: command terminated with non-zero exit code: error executing command [sh -c], exit code 127"]
        .assert_eq(&error.to_string());
    assert_eq!(server.await.unwrap(), Vec::<String>::new());
}

/// A record read from the log names only what a fill or a pause of its own trial touches: the
/// trial's fill file in an absolute directory, a database's process, the trial's own label.
#[test]
fn a_record_naming_anything_else_is_refused_before_any_request() {
    let fill = plan(json!({"target": 3, "fill_percent": 95}), "disk_pressure");
    faults::check_record(&fill, TRIAL).unwrap();
    let forged = |action: KubeAction| {
        let mut record = fill.clone();
        record.action = action;
        faults::check_record(&record, TRIAL)
            .unwrap_err()
            .to_string()
    };
    let disk = |dir: &str, file: &str| KubeAction::DiskFill {
        node: 3,
        pod: "etcd-2".into(),
        container: "etcd".into(),
        dir: dir.into(),
        file: file.into(),
        fill_percent: 95,
    };
    expect!["refused: the disk_pressure cleanup record names the file /bitnami/etcd/member, which no fill of this trial writes"]
        .assert_eq(&forged(disk("/bitnami/etcd", "member")));
    expect!["refused: the disk_pressure cleanup record names the file /bitnami/etcd/../etc/eval-fill-0b5f6a2e, which no fill of this trial writes"]
        .assert_eq(&forged(disk("/bitnami/etcd/../etc", "eval-fill-0b5f6a2e")));
    expect!["refused: the disk_pressure cleanup record names the file bitnami/eval-fill-0b5f6a2e, which no fill of this trial writes"]
        .assert_eq(&forged(disk("bitnami", "eval-fill-0b5f6a2e")));
    expect![
        "refused: the disk_pressure cleanup record names the process sshd, which is no database's"
    ]
    .assert_eq(&forged(KubeAction::ProcessPause {
        node: 3,
        pod: "etcd-2".into(),
        container: "etcd".into(),
        process: "sshd".into(),
    }));
    let error = faults::check_record(&fill, "0c000000-0000-4000-8000-000000000000").unwrap_err();
    expect!["refused: the disk_pressure cleanup record names the trial 0b5f6a2e-9c1d-8e4f-a1b2-c3d4e5f60718, not 0c000000-0000-4000-8000-000000000000"]
        .assert_eq(&error.to_string());
}
