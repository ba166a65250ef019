//! The Kubernetes runtime's nodes and reset, and the faults that need the subject's topology
//! (`leader`/`follower` targets, `pd_leader_kill`, `leader_evict`), against the API-server
//! verifier: every request asserted, none missing, none extra.

mod api_verifier;

use api_verifier::{Exchange, client_with, encoded, list_pods, pod_list, status};
use chaos::kubernetes::client::Connection;
use chaos::kubernetes::faults::{self, KubeAction, Owner, Topology, Ways};
use chaos::kubernetes::pods::{self, PodSettings, Selection};
use chaos::kubernetes::runtime::{KubePlace, KubeRuntime};
use chaos::runtime::Runtime;
use expect_test::expect;
use k8s_openapi::api::core::v1::Pod;
use schemas::campaign::{ChaosSpec, SubjectKind};
use serde_json::{Value, json};

const TRIAL: &str = "0b5f6a2e-9c1d-8e4f-a1b2-c3d4e5f60718";
const NAMESPACE: &str = "tidb-cluster";

fn owner() -> Owner {
    Owner {
        campaign_id: "019a6c1e-7d2b-7c3e-9f10-2a3b4c5d6e7f".into(),
        trial_id: TRIAL.into(),
        context: None,
    }
}

/// The requests that pick a TiDB Operator v1 cluster's pods by the default selectors: both
/// families' store selectors, then v1's PD selector.
fn select_tidb(list: &Value) -> Vec<Exchange> {
    let families = pods::default_selectors(SubjectKind::Tikv, None);
    let mut script: Vec<Exchange> = families
        .iter()
        .map(|family| list_pods(NAMESPACE, &family.data, list))
        .collect();
    script.push(list_pods(
        NAMESPACE,
        families[0].pd.as_deref().unwrap(),
        list,
    ));
    script
}

/// The lists of the harness's Chaos Mesh objects in the namespace, one per kind, each answered
/// with `reply`.
fn harness_objects(status_code: u16, reply: Value) -> Vec<Exchange> {
    ["networkchaos", "iochaos", "stresschaos", "podchaos"]
        .into_iter()
        .map(|plural| {
            Exchange::new(
                "GET",
                format!(
                    "/apis/chaos-mesh.org/v1alpha1/namespaces/{NAMESPACE}/{plural}?&labelSelector={}",
                    encoded("app.kubernetes.io/managed-by=eval,eval.dev/trial")
                ),
            )
            .reply(status_code, reply.clone())
        })
        .collect()
}

fn place() -> KubePlace {
    KubePlace {
        subject: SubjectKind::Tikv,
        namespace: NAMESPACE.into(),
        pods: PodSettings::default(),
        owner: owner(),
        endpoints: Vec::new(),
        ways: Ways::default(),
    }
}

#[tokio::test]
async fn the_nodes_are_the_selected_pods_each_behind_its_own_port_forward() {
    let list = pod_list("pods-tidb-operator-v1.json");
    let mut script = select_tidb(&list);
    // The reset: the pods picked again, and no object of the harness left (a cluster without
    // Chaos Mesh answers 404, and has none).
    script.extend(select_tidb(&list));
    script.extend(harness_objects(
        404,
        status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    ));
    let (client, verifier) = client_with(script);
    let connection = Connection {
        client,
        place: "context kind-eval (https://127.0.0.1:6443)".into(),
        default_namespace: "default".into(),
    };
    let mut runtime = KubeRuntime::open(connection, place()).await.unwrap();
    let nodes = runtime.nodes();
    let names: Vec<&str> = nodes.iter().map(|node| node.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "basic-tikv-0",
            "basic-tikv-1",
            "basic-tikv-2",
            "basic-pd-0",
            "basic-pd-1",
            "basic-pd-2"
        ]
    );
    let addresses: std::collections::BTreeSet<_> =
        nodes.iter().map(|node| node.client_addr).collect();
    assert_eq!(addresses.len(), 6, "one port-forward per pod");
    assert!(addresses.iter().all(|address| address.ip().is_loopback()));
    assert_eq!(runtime.counts(), (3, 3));
    assert!(!runtime.starts_members());
    assert_eq!(runtime.process_status(1), "ready");
    // A store advertises its pod's name under the peer service (PD's `/stores`).
    assert!(runtime.is_advertised_as(1, "basic-tikv-0.basic-tikv-peer.tidb-cluster.svc:20160"));
    assert!(!runtime.is_advertised_as(2, "basic-tikv-0.basic-tikv-peer.tidb-cluster.svc:20160"));
    assert!(!runtime.is_advertised_as(1, "basic-tikv-00.basic-tikv-peer:20160"));
    let refused = runtime.start_process(1, &[]).await.unwrap_err();
    expect!["starting a member's process is not done this way on kubernetes: the pods' controllers run the members, and the faults are the cluster's own"]
        .assert_eq(&refused.to_string());
    let generation = runtime.generation();
    runtime.reset().await.unwrap();
    assert_ne!(runtime.generation(), generation);
    drop(runtime);
    verifier.await.unwrap();
}

#[tokio::test]
async fn a_reset_waits_while_a_pod_is_not_ready() {
    let list = pod_list("pods-tidb-operator-v1.json");
    let mut not_ready = list.clone();
    for pod in not_ready["items"].as_array_mut().unwrap() {
        if pod["metadata"]["name"] == "basic-tikv-1" {
            for condition in pod["status"]["conditions"].as_array_mut().unwrap() {
                if condition["type"] == "Ready" {
                    condition["status"] = json!("False");
                }
            }
        }
    }
    let mut script = select_tidb(&list);
    // Not ready, then ready: one pause (POLL) and the reset goes on.
    script.extend(select_tidb(&not_ready));
    script.extend(harness_objects(200, json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaosList", "metadata": {}, "items": []})));
    script.extend(select_tidb(&list));
    let mut lists = harness_objects(
        200,
        json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaosList", "metadata": {}, "items": []}),
    );
    // A kind the harness may not list (a Role without PodChaos): it made none, and it is passed
    // over.
    lists[3] = lists[3].clone().reply(
        403,
        status(403, "Forbidden", "podchaos.chaos-mesh.org is forbidden"),
    );
    script.extend(lists);
    let (client, verifier) = client_with(script);
    let connection = Connection {
        client,
        place: "in-cluster (https://10.96.0.1:443)".into(),
        default_namespace: NAMESPACE.into(),
    };
    let mut runtime = KubeRuntime::open(connection, place()).await.unwrap();
    runtime.reset().await.unwrap();
    drop(runtime);
    verifier.await.unwrap();
}

/// A TiDB Operator v1 cluster's selection, without the API.
fn tidb_selection() -> Selection {
    let list = pod_list("pods-tidb-operator-v1.json");
    let items: Vec<Pod> = serde_json::from_value(list["items"].clone()).unwrap();
    let (pd, data): (Vec<Pod>, Vec<Pod>) = items.into_iter().partition(|pod| {
        pod.metadata.labels.as_ref().unwrap()["app.kubernetes.io/component"] == "pd"
    });
    Selection {
        subject: SubjectKind::Tikv,
        namespace: NAMESPACE.into(),
        selectors: pods::default_selectors(SubjectKind::Tikv, None).remove(0),
        nodes: pods::number(&data, &pd),
    }
}

fn chaos(params: Value, kind: &str) -> ChaosSpec {
    serde_json::from_value(json!({ "type": kind, "params": params })).unwrap()
}

fn deleted(record: &faults::KubeRecord) -> Vec<String> {
    match &record.action {
        KubeAction::PodDelete { pods } => pods.iter().map(|pod| pod.pod.clone()).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn leader_and_follower_targets_and_pd_leader_kill_follow_the_topology() {
    let selection = tidb_selection();
    let topology = Topology {
        leader: Some(2),
        pd_leader: Some(5),
        ..Topology::default()
    };
    let plan = |params: Value, kind: &str, seed: u64| {
        faults::plan(
            &selection,
            &topology,
            &chaos(params, kind),
            seed,
            &owner(),
            Ways::default(),
        )
    };
    let leader = plan(json!({"target": "leader"}), "node_kill", 1).unwrap();
    assert_eq!(deleted(&leader), ["basic-tikv-1"]);
    assert_eq!(leader.nodes, [2]);
    for seed in 0..32 {
        let follower = plan(json!({"target": "follower"}), "node_kill", seed).unwrap();
        assert!(deleted(&follower) != ["basic-tikv-1"], "{follower:?}");
        let pd_follower = plan(json!({"target": "pd_follower"}), "node_kill", seed).unwrap();
        assert!(
            ["basic-pd-0", "basic-pd-2"].contains(&deleted(&pd_follower)[0].as_str()),
            "{pd_follower:?}"
        );
    }
    let pd_leader = plan(json!({}), "pd_leader_kill", 1).unwrap();
    assert_eq!(deleted(&pd_leader), ["basic-pd-1"]);
    assert_eq!(pd_leader.chaos.as_str(), "pd_leader_kill");
    // Without a leader in the topology, nothing is planned.
    let leaderless = faults::plan(
        &selection,
        &Topology::default(),
        &chaos(json!({}), "pd_leader_kill"),
        1,
        &owner(),
        Ways::default(),
    )
    .unwrap_err();
    expect!["no PD leader to kill (PD names none)"].assert_eq(&leaderless.to_string());
}

#[test]
fn leader_evict_names_the_store_pd_knows_and_every_pd_pod_to_ask() {
    let selection = tidb_selection();
    let topology = Topology {
        store_ids: [(1, 1), (2, 4), (3, 5)].into(),
        ..Topology::default()
    };
    let record = faults::plan(
        &selection,
        &topology,
        &chaos(json!({"target": 2}), "leader_evict"),
        1,
        &owner(),
        Ways::default(),
    )
    .unwrap();
    assert_eq!(
        record.action,
        KubeAction::LeaderEvict {
            node: 2,
            store_id: 4,
            pd_pods: vec![
                "basic-pd-0".into(),
                "basic-pd-1".into(),
                "basic-pd-2".into()
            ],
        }
    );
    let unknown = faults::plan(
        &selection,
        &Topology::default(),
        &chaos(json!({"target": 2}), "leader_evict"),
        1,
        &owner(),
        Ways::default(),
    )
    .unwrap_err();
    expect!["PD knows no store on node 2"].assert_eq(&unknown.to_string());
}
