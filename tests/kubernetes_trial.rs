//! A fault's whole course on the Kubernetes runtime against a real etcd: a loopback API server
//! stands in for the cluster. Its pods are the members of a real 3-node etcd lab; a
//! port-forward (a real WebSocket upgrade speaking the `portforward` channel protocol) is carried
//! to the member's client port; deleting a pod kills the member's process, and the "controller"
//! starts it again two seconds later, with a new uid; a `kill -9` through `pods/exec` (a real
//! WebSocket speaking the exec channel protocol) kills it too, and the "kubelet" restarts it in
//! the same pod. The runtime's reset, the subject's health
//! and state through the port-forwards, the plan (the leader, from etcd's own answers), the pod
//! delete and the cleanup's wait all run for real; every request the API server sees is
//! checked, and any it does not expect fails the test.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chaos::etcd::{EtcdLab, EtcdSubject};
use chaos::faults;
use chaos::kubernetes::client::Connection;
use chaos::kubernetes::faults::{KubeAction, Owner, Ways};
use chaos::kubernetes::pods::PodSettings;
use chaos::kubernetes::runtime::{KubePlace, KubeRuntime};
use chaos::lab::Isolation;
use chaos::runtime::Runtime;
use chaos::subject::Subject;
use futures::{SinkExt, StreamExt};
use schemas::campaign::{ChaosSpec, NodeKillWay, SubjectKind};
use schemas::cleanup::CleanupRecord;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const NAMESPACE: &str = "etcd";
const PODS: [&str; 3] = ["etcd-0", "etcd-1", "etcd-2"];
const TRIAL: &str = "0b5f6a2e-9c1d-8e4f-a1b2-c3d4e5f60718";

/// The cluster the API server shows: the lab's members as pods.
struct Cluster {
    lab: tokio::sync::Mutex<EtcdLab>,
    /// Each pod's uid now (a pod made again gets another).
    uids: std::sync::Mutex<HashMap<String, String>>,
    /// Every request, `METHOD path?query`, and those the server did not expect.
    seen: std::sync::Mutex<Vec<String>>,
    unexpected: std::sync::Mutex<Vec<String>>,
    deleted: std::sync::Mutex<Vec<Value>>,
    /// Each pod's container restarts (after a kill through exec).
    restarts: std::sync::Mutex<HashMap<String, i32>>,
}

impl Cluster {
    fn node_of(pod: &str) -> Option<u32> {
        PODS.iter()
            .position(|name| *name == pod)
            .map(|index| index as u32 + 1)
    }

    /// Pod `name` as the API server returns it: the chart's recorded pod, with the uid of now
    /// and Ready while the member's process runs.
    async fn pod(&self, name: &str) -> Value {
        let path = format!(
            "{}/chaos/testdata/kubernetes/pods-etcd-bitnami.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let list: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut pod = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|pod| pod["metadata"]["name"] == name)
            .unwrap()
            .clone();
        pod["metadata"]["uid"] = json!(self.uids.lock().unwrap()[name]);
        let running = {
            let lab = self.lab.lock().await;
            lab.lab.running_pid(Self::node_of(name).unwrap()).is_some()
        };
        let restarts = self
            .restarts
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0);
        pod["status"]["containerStatuses"] = json!([{
            "name": "etcd", "ready": running, "restartCount": restarts,
            "image": "docker.io/bitnami/etcd:3.5.9-debian-11-r24", "imageID": "", "started": running,
            "state": if running { json!({"running": {}}) } else { json!({"waiting": {"reason": "ContainerCreating"}}) }
        }]);
        for condition in pod["status"]["conditions"].as_array_mut().unwrap() {
            if matches!(
                condition["type"].as_str(),
                Some("Ready" | "ContainersReady")
            ) {
                condition["status"] = json!(if running { "True" } else { "False" });
            }
        }
        pod
    }

    async fn answer(self: &Arc<Self>, method: &str, uri: &str, body: &[u8]) -> (u16, Value) {
        self.seen.lock().unwrap().push(format!("{method} {uri}"));
        // The preflight: the server's version, and every right allowed (the review echoed back
        // with its answer, as the server does).
        if (method, uri) == ("GET", "/version") {
            return (200, recorded("version-gke-v1.8.7.json"));
        }
        if (method, uri)
            == (
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?",
            )
        {
            let mut review: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            review["status"] = recorded("ssar-allowed-true.json")["status"].clone();
            return (201, review);
        }
        let pods = format!("/api/v1/namespaces/{NAMESPACE}/pods");
        if (method, uri)
            == (
                "GET",
                &format!("{pods}?&labelSelector=app.kubernetes.io%2Fname%3Detcd"),
            )
        {
            let mut items = Vec::new();
            for name in PODS {
                items.push(self.pod(name).await);
            }
            return (
                200,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items}),
            );
        }
        // No Chaos Mesh in this cluster: its kinds are not served.
        if method == "GET"
            && ["networkchaos", "iochaos", "stresschaos", "podchaos"]
                .iter()
                .any(|plural| {
                    uri.starts_with(&format!(
                        "/apis/chaos-mesh.org/v1alpha1/namespaces/{NAMESPACE}/{plural}?"
                    ))
                })
        {
            return (404, not_found());
        }
        if let Some(name) = uri.strip_prefix(&format!("{pods}/")) {
            let name = name.trim_end_matches('?');
            if let Some(node) = Self::node_of(name) {
                match method {
                    "GET" => return (200, self.pod(name).await),
                    "DELETE" => return self.delete(name, node, body).await,
                    _ => {}
                }
            }
        }
        self.unexpected
            .lock()
            .unwrap()
            .push(format!("{method} {uri} {}", String::from_utf8_lossy(body)));
        (404, not_found())
    }

    /// Kills the member on the delete's uid precondition; its controller starts it again in
    /// two seconds, as another pod of the same name.
    async fn delete(self: &Arc<Self>, name: &str, node: u32, body: &[u8]) -> (u16, Value) {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        self.deleted.lock().unwrap().push(body.clone());
        let uid = self.uids.lock().unwrap()[name].clone();
        if body["preconditions"]["uid"] != json!(uid) {
            return (
                409,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "Precondition failed: UID in precondition does not match"}),
            );
        }
        let pod = self.pod(name).await;
        {
            let lab = self.lab.lock().await;
            let pid = lab.lab.running_pid(node).expect("the member runs");
            lab.lab.kill_process(pid).await.unwrap();
        }
        self.uids
            .lock()
            .unwrap()
            .insert(name.to_string(), format!("{uid}-again"));
        let cluster = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut lab = cluster.lab.lock().await;
            EtcdSubject.start_member(&mut lab.lab, node).await.unwrap();
        });
        (200, pod)
    }
}

impl Cluster {
    /// Kills the member of pod `name` (`kill -9` through exec); the kubelet restarts its
    /// container in the same pod two seconds later. The member's pid, if it ran.
    async fn kill(self: &Arc<Self>, name: &str, node: u32) -> Option<u32> {
        let pid = {
            let lab = self.lab.lock().await;
            let pid = lab.lab.running_pid(node)?;
            lab.lab.kill_process(pid).await.unwrap();
            pid
        };
        let cluster = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut lab = cluster.lab.lock().await;
            EtcdSubject.start_member(&mut lab.lab, node).await.unwrap();
            *cluster.restarts.lock().unwrap().entry(name).or_default() += 1;
        });
        Some(pid)
    }
}

/// A recorded API server answer (`chaos/testdata/kubernetes/api/`).
fn recorded(file: &str) -> Value {
    let path = format!(
        "{}/chaos/testdata/kubernetes/api/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "the server could not find the requested resource", "reason": "NotFound", "details": {}, "code": 404})
}

/// Serves one connection: requests in turn (kept alive), or a port-forward upgrade.
async fn serve(cluster: Arc<Cluster>, mut stream: TcpStream) {
    loop {
        let mut peeked = vec![0u8; 65536];
        let head_len = loop {
            let n = match stream.peek(&mut peeked).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if let Some(end) = peeked[..n].windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let head = String::from_utf8_lossy(&peeked[..head_len]).to_string();
        if head.to_ascii_lowercase().contains("upgrade: websocket") {
            if head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .contains("/exec?")
            {
                exec(cluster, stream).await;
            } else {
                port_forward(cluster, stream).await;
            }
            return;
        }
        let mut consumed = vec![0; head_len];
        stream.read_exact(&mut consumed).await.unwrap();
        let mut words = head.split_whitespace();
        let (method, uri) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        );
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.unwrap();
        let (code, reply) = cluster.answer(method, uri, &body).await;
        let reply = serde_json::to_vec(&reply).unwrap();
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(&reply).await.is_err()
        {
            return;
        }
    }
}

/// Carries one port-forward to the member's client port: each channel's port first (data 0,
/// errors 1), then the bytes both ways on channel 0.
async fn port_forward(cluster: Arc<Cluster>, stream: TcpStream) {
    let Some((ws, uri)) = testkit::accept_channel_socket(stream).await else {
        return;
    };
    cluster
        .seen
        .lock()
        .unwrap()
        .push(format!("PORTFORWARD {uri}"));
    let pod = uri
        .strip_prefix(&format!("/api/v1/namespaces/{NAMESPACE}/pods/"))
        .and_then(|rest| rest.strip_suffix("/portforward?&ports=2379"));
    let Some(node) = pod.and_then(Cluster::node_of) else {
        cluster
            .unexpected
            .lock()
            .unwrap()
            .push(format!("PORTFORWARD {uri}"));
        return;
    };
    let address = {
        let lab = cluster.lab.lock().await;
        lab.lab.node_endpoints(node).unwrap().client_addr
    };
    let (mut sink, mut source) = ws.split();
    let [low, high] = 2379u16.to_le_bytes();
    for channel in [0u8, 1] {
        if sink
            .send(Message::binary(vec![channel, low, high]))
            .await
            .is_err()
        {
            return;
        }
    }
    let Ok(member) = TcpStream::connect(address).await else {
        let _ = sink
            .send(Message::binary(b"\x01connection refused".to_vec()))
            .await;
        let _ = sink.close().await;
        return;
    };
    let (mut from_member, mut to_member) = member.into_split();
    let inbound = async {
        while let Some(Ok(message)) = source.next().await {
            let written = match message {
                Message::Binary(frame) if frame.first() == Some(&0) => {
                    to_member.write_all(&frame[1..]).await.is_ok()
                }
                Message::Close(_) => false,
                _ => true,
            };
            if !written {
                break;
            }
        }
    };
    let outbound = async {
        let mut buffer = vec![0u8; 16384];
        loop {
            match from_member.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut frame = vec![0u8];
                    frame.extend_from_slice(&buffer[..n]);
                    if sink.send(Message::binary(frame)).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    };
    tokio::select! {
        () = inbound => {}
        () = outbound => {}
    }
}

/// Runs one exec: only the fixed signal script's SIGKILL to etcd in an etcd-N pod's container,
/// which kills that member; its output on channel 1 and its exit status on channel 3.
async fn exec(cluster: Arc<Cluster>, stream: TcpStream) {
    let Some((mut ws, uri)) = testkit::accept_channel_socket(stream).await else {
        return;
    };
    cluster.seen.lock().unwrap().push(format!("EXEC {uri}"));
    let mut command = String::new();
    for word in [
        "sh",
        "-c",
        chaos::kubernetes::exec::SIGNAL_SCRIPT,
        "sh",
        "etcd",
        "KILL",
    ] {
        command.push_str(&format!("&command={}", testkit::encoded(word)));
    }
    let pod = uri
        .strip_prefix(&format!("/api/v1/namespaces/{NAMESPACE}/pods/"))
        .and_then(|rest| {
            rest.strip_suffix(&format!(
                "/exec?&stdout=true&stderr=true&container=etcd{command}"
            ))
        });
    let Some((pod, node)) = pod.and_then(|pod| Some((pod, Cluster::node_of(pod)?))) else {
        cluster
            .unexpected
            .lock()
            .unwrap()
            .push(format!("EXEC {uri}"));
        return;
    };
    let output = match cluster.kill(pod, node).await {
        Some(pid) => format!("{pid} KILL\n"),
        None => String::new(),
    };
    let status = json!({"metadata": {}, "status": "Success"});
    for (channel, bytes) in [
        (1u8, output.into_bytes()),
        (3, serde_json::to_vec(&status).unwrap()),
    ] {
        let mut frame = vec![channel];
        frame.extend_from_slice(&bytes);
        let _ = ws.send(Message::binary(frame)).await;
    }
    let _ = ws.close(None).await;
    while let Some(Ok(_)) = ws.next().await {}
}

/// Removes the lab even when the test fails.
struct LabGuard(std::path::PathBuf);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_evalctl"))
            .args(["lab", "down", "--all", "--data-dir"])
            .arg(&self.0)
            .status();
    }
}

/// A healthy 3-member etcd lab behind the API server; the server's address.
struct MockCluster {
    cluster: Arc<Cluster>,
    api: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
    _guard: LabGuard,
    _dir: tempfile::TempDir,
}

impl MockCluster {
    async fn start() -> MockCluster {
        chaos::lab::set_eval_binary(env!("CARGO_BIN_EXE_evalctl"));
        let dir = tempfile::tempdir().unwrap();
        let guard = LabGuard(dir.path().to_path_buf());
        let mut lab = EtcdLab::create(dir.path(), None, 3, Isolation::available())
            .await
            .unwrap();
        lab.reset().await.unwrap();
        lab.wait_healthy(Duration::from_secs(60)).await.unwrap();
        let uids = PODS
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                (
                    pod.to_string(),
                    format!("00000000-0000-4000-8000-00000000030{i}"),
                )
            })
            .collect();
        let cluster = Arc::new(Cluster {
            lab: tokio::sync::Mutex::new(lab),
            uids: std::sync::Mutex::new(uids),
            seen: Default::default(),
            unexpected: Default::default(),
            deleted: Default::default(),
            restarts: Default::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap();
        let server = {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(cluster.clone(), stream));
                }
            })
        };
        MockCluster {
            cluster,
            api,
            server,
            _guard: guard,
            _dir: dir,
        }
    }

    /// The pod the single delete named, checked to be at once and on that pod's uid then.
    fn deleted_once(&self, uid: &str) {
        assert_eq!(
            *self.cluster.deleted.lock().unwrap(),
            [json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})]
        );
    }

    /// The member of pod `pod` killed once through exec (and nothing deleted), restarted in
    /// the same pod.
    fn killed_once(&self, pod: &str) {
        let seen = self.cluster.seen.lock().unwrap().clone();
        let execs: Vec<&String> = seen
            .iter()
            .filter(|seen| seen.starts_with("EXEC "))
            .collect();
        assert_eq!(execs.len(), 1, "{execs:#?}");
        assert!(
            execs[0].contains(&format!("/pods/{pod}/exec?")),
            "{execs:#?}"
        );
        assert!(self.cluster.deleted.lock().unwrap().is_empty());
        assert_eq!(self.cluster.restarts.lock().unwrap().get(pod), Some(&1));
    }

    /// No request the server did not expect, and the subject reached through port-forwards
    /// (`forwarded`) or without any.
    fn checked(self, forwarded: bool) {
        let seen = self.cluster.seen.lock().unwrap().clone();
        assert_eq!(
            seen.iter().any(|request| {
                request.starts_with("PORTFORWARD /api/v1/namespaces/etcd/pods/etcd-")
            }),
            forwarded,
            "{seen:#?}"
        );
        assert_eq!(
            *self.cluster.unexpected.lock().unwrap(),
            Vec::<String>::new()
        );
        self.server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_kill_on_kubernetes_deletes_the_leaders_pod_and_the_cluster_heals() {
    node_kill_on_kubernetes(false, NodeKillWay::PodDelete).await;
}

/// `node_kill: signal`: the leader's etcd killed by SIGKILL through exec, its container
/// restarted in the same pod (same uid), and the cluster heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_kill_by_signal_kills_the_leaders_process_through_exec_and_the_cluster_heals() {
    node_kill_on_kubernetes(false, NodeKillWay::Signal).await;
}

/// The same with `endpoints`: each node's API at its own address (as a worker in the cluster
/// reaches the pods), and no port-forward at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_endpoints_the_nodes_are_reached_at_their_own_addresses() {
    node_kill_on_kubernetes(true, NodeKillWay::PodDelete).await;
}

async fn node_kill_on_kubernetes(with_endpoints: bool, way: NodeKillWay) {
    let mock = MockCluster::start().await;
    let api = mock.api;
    let endpoints = if with_endpoints {
        let lab = mock.cluster.lab.lock().await;
        (1..=3)
            .map(|node| {
                format!(
                    "http://{}",
                    lab.lab.node_endpoints(node).unwrap().client_addr
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://{api}").parse().unwrap()))
            .unwrap();
    let connection = Connection {
        client,
        place: format!("context mock (http://{api})"),
        default_namespace: "default".into(),
    };
    let place = KubePlace {
        subject: SubjectKind::Etcd,
        namespace: NAMESPACE.into(),
        pods: PodSettings::default(),
        owner: Owner {
            campaign_id: "019a6c1e-7d2b-7c3e-9f10-2a3b4c5d6e7f".into(),
            trial_id: TRIAL.into(),
            context: Some("mock".into()),
        },
        endpoints,
        ways: Ways {
            node_kill: way,
            ..Ways::default()
        },
    };
    let mut runtime = KubeRuntime::open(connection, place).await.unwrap();
    let subject = EtcdSubject;

    // The trial's course, as the worker runs it.
    subject.reset(&mut runtime).await.unwrap();
    subject
        .wait_healthy(&runtime, Duration::from_secs(60))
        .await
        .unwrap();
    let state = subject.capture_state(&runtime).await;
    assert_eq!(state["healthy"], json!(true), "{state:#}");
    assert_eq!(state["members"][0]["name"], json!("etcd-0"));
    let leader = subject.leader(&runtime).await.expect("a leader");
    let chaos: ChaosSpec =
        serde_json::from_value(json!({"type": "node_kill", "params": {"target": "leader"}}))
            .unwrap();
    let record = faults::plan(&subject, &runtime, &chaos, 7).await.unwrap();
    let CleanupRecord::Kubernetes(kube_record) = &record else {
        panic!("{record:?}")
    };
    let leaders_pod = PODS[leader as usize - 1];
    match (&kube_record.action, way) {
        (KubeAction::PodDelete { pods }, NodeKillWay::PodDelete) => {
            assert_eq!(pods[0].pod, leaders_pod, "the leader's pod");
        }
        (KubeAction::ProcessKill { pod, process, .. }, NodeKillWay::Signal) => {
            assert_eq!((pod.as_str(), process.as_str()), (leaders_pod, "etcd"));
        }
        _ => panic!("{record:?}"),
    }
    assert_eq!(record.target(), Some(format!("n{leader}")));
    faults::apply(&subject, &runtime, &record).await.unwrap();
    // The member is gone, then its controller brings it back and the cluster heals.
    let health = subject.health(&runtime).await;
    assert!(!health.healthy, "{health:?}");
    faults::cleanup(&subject, &mut runtime, &record)
        .await
        .unwrap();
    assert_eq!(
        faults::leftovers(&subject, &runtime, &record)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    subject
        .wait_healthy(&runtime, Duration::from_secs(60))
        .await
        .unwrap();

    match &kube_record.action {
        // Exactly one delete, at once, on the uid of the pod that was picked.
        KubeAction::PodDelete { pods } => mock.deleted_once(&pods[0].uid),
        _ => mock.killed_once(leaders_pod),
    }
    drop(runtime);
    mock.checked(!with_endpoints);
}

/// A campaign on `runtime: kubernetes`, as a user runs it: `evalctl run` checks the cluster
/// (version, rights, pods), publishes, and its worker runs the trial against the cluster of the
/// kubeconfig; the log keeps the fault's record (tag `kubernetes`), its cleanup and the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evalctl_run_takes_a_kubernetes_campaign_from_preflight_to_its_scored_end() {
    let nats = testkit::TemporaryNats::start().await.unwrap();
    let mock = MockCluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster: {{server: 'http://{}'}}\nusers:\n- name: me\n  user: {{token: secret}}\ncontexts:\n- name: mock\n  context: {{cluster: mock, user: me, namespace: etcd}}\ncurrent-context: mock\n",
            mock.api
        ),
    )
    .unwrap();
    let campaign = dir.path().join("campaign.yaml");
    std::fs::write(
        &campaign,
        "name: on kubernetes\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\n    params: {target: random}\ntrials_per_combination: 1\ntrial_timeout_seconds: 60\nsubject_settings:\n  etcd:\n    runtime: kubernetes\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(["run", "campaign", &campaign.display().to_string(), "--json"])
        .env("EVAL_NATS_URL", nats.url())
        .env("EVAL_DATA_DIR", dir.path().join("data"))
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    let log = schemas::log::EventLog::connect(nats.url()).await.unwrap();
    let events = log
        .read(&schemas::log::EventFilter::default(), false)
        .await
        .unwrap();
    futures::pin_mut!(events);
    let mut kinds = Vec::new();
    let mut record = None;
    let mut status = None;
    while let Some(stored) = events.next().await {
        let Ok(event) = stored.unwrap().event else {
            continue;
        };
        kinds.push(event.event_type().to_string());
        match event.data {
            schemas::event::EventData::ChaosInjected(injected) => record = Some(injected.cleanup),
            schemas::event::EventData::TrialFinished(finished) => status = Some(finished.status),
            _ => {}
        }
    }
    for kind in [
        "SubjectReset",
        "SubjectHealthy",
        "ChaosInjected",
        "ChaosCleanedUp",
        "TrialFinished",
    ] {
        assert!(
            kinds.iter().any(|seen| seen == kind),
            "no {kind} in {kinds:?}\n{stderr}"
        );
    }
    assert_eq!(
        status,
        Some(schemas::event::TrialStatus::Succeeded),
        "{kinds:?}\n{stderr}"
    );
    let Some(schemas::cleanup::Cleanup::Record(CleanupRecord::Kubernetes(kube_record))) = record
    else {
        panic!("{record:?}")
    };
    assert_eq!(
        (
            kube_record.context.as_deref(),
            kube_record.namespace.as_str()
        ),
        (None, "etcd"),
        "the kubeconfig's current context and its namespace"
    );
    let KubeAction::PodDelete { pods } = &kube_record.action else {
        panic!("{kube_record:?}")
    };
    mock.deleted_once(&pods[0].uid);
    mock.checked(true);
}
