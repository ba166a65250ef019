//! The Kubernetes runtime against an API-server verifier: every request's method, path, query
//! and body is asserted, and a missing or extra request fails the test. List requests are
//! answered from the pod lists of `testdata/kubernetes/` by evaluating the selector as the API
//! server does, so a selector that would pick the wrong pods picks them here too.

mod api_verifier;

use std::collections::BTreeSet;

use api_verifier::{
    Exchange, client_with, encoded, list_pods, pod_list, recorded, selected, status,
};
use chaos::kubernetes::faults::{self, KubeAction, Owner, Topology, Ways};
use chaos::kubernetes::pods::{self, PodSettings, Selection};
use chaos::kubernetes::preflight::{self, Needs};
use expect_test::{expect, expect_file};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use schemas::campaign::{ChaosSpec, ChaosType, DiskPressureWay, NodeKillWay, SubjectKind};
use serde_json::{Value, json};

const TRIAL: &str = "0b5f6a2e-9c1d-8e4f-a1b2-c3d4e5f60718";
const CAMPAIGN: &str = "019a6c1e-7d2b-7c3e-9f10-2a3b4c5d6e7f";

fn owner() -> Owner {
    Owner {
        campaign_id: CAMPAIGN.into(),
        trial_id: TRIAL.into(),
        context: Some("kind-eval".into()),
    }
}

fn defaults(subject: SubjectKind) -> Vec<pods::Selectors> {
    pods::default_selectors(subject, None)
}

async fn select_with(
    script: Vec<Exchange>,
    namespace: &str,
    subject: SubjectKind,
    settings: &PodSettings,
) -> Result<Selection, String> {
    let (client, verifier) = client_with(script);
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selection = pods::select(&api, namespace, subject, settings)
        .await
        .map_err(|error| error.to_string());
    drop((api, client));
    verifier.await.unwrap();
    selection
}

fn pods_of(selection: &Selection) -> Vec<(u32, &str, bool)> {
    selection
        .nodes
        .iter()
        .map(|node| (node.number, node.pod.as_str(), node.pd))
        .collect()
}

/// The selection of a TiDB cluster's pods in `list` by the default selectors: both families'
/// store selectors asked, then the PD selector of the one that matched (`matching`: 0 for v1).
async fn tidb_selection(list: &Value, matching: usize) -> Selection {
    let families = defaults(SubjectKind::Tikv);
    let mut script: Vec<Exchange> = families
        .iter()
        .map(|family| list_pods("tidb-cluster", &family.data, list))
        .collect();
    let pd = families[matching].pd.as_deref().unwrap();
    script.push(list_pods("tidb-cluster", pd, list));
    let selection = select_with(
        script,
        "tidb-cluster",
        SubjectKind::Tikv,
        &PodSettings::default(),
    )
    .await
    .unwrap();
    assert_eq!(selection.selectors, families[matching]);
    selection
}

#[tokio::test]
async fn tidb_operator_v1_pods_are_the_stores_then_the_pd_members() {
    let selection = tidb_selection(&pod_list("pods-tidb-operator-v1.json"), 0).await;
    assert_eq!(
        pods_of(&selection),
        [
            (1, "basic-tikv-0", false),
            (2, "basic-tikv-1", false),
            (3, "basic-tikv-2", false),
            (4, "basic-pd-0", true),
            (5, "basic-pd-1", true),
            (6, "basic-pd-2", true),
        ]
    );
    assert!(selection.nodes.iter().all(|node| node.ready));
}

#[tokio::test]
async fn tidb_operator_v2_pods_carry_v1_labels_too_and_are_taken_as_v2() {
    let list = pod_list("pods-tidb-operator-v2.json");
    // Without `!pingcap.com/managed-by`, v1's selector would pick these pods as well.
    let v1 = &defaults(SubjectKind::Tikv)[0];
    let without_exclusion = v1.data.replace(",!pingcap.com/managed-by", "");
    assert_eq!(
        selected(&list, &without_exclusion)["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let selection = tidb_selection(&list, 1).await;
    assert_eq!(
        pods_of(&selection),
        [
            (1, "basic-tikv-9fq4d", false),
            (2, "basic-tikv-m3n8z", false),
            (3, "basic-tikv-x7k2p", false),
            (4, "basic-pd-a1b2c", true),
            (5, "basic-pd-d3e4f", true),
            (6, "basic-pd-g5h6i", true),
        ]
    );
}

#[tokio::test]
async fn etcd_chart_members_without_the_defrag_jobs_pod() {
    let list = pod_list("pods-etcd-bitnami.json");
    let [etcd] = <[pods::Selectors; 1]>::try_from(defaults(SubjectKind::Etcd)).unwrap();
    // The defrag job's pod matches the chart's labels; it is left out as a Job's.
    assert_eq!(
        selected(&list, &etcd.data)["items"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let script = vec![list_pods("etcd", &etcd.data, &list)];
    let selection = select_with(script, "etcd", SubjectKind::Etcd, &PodSettings::default())
        .await
        .unwrap();
    assert_eq!(
        pods_of(&selection),
        [
            (1, "etcd-0", false),
            (2, "etcd-1", false),
            (3, "etcd-2", false)
        ]
    );
}

#[tokio::test]
async fn no_matching_pods_is_one_line_naming_every_selector_tried() {
    let list = pod_list("pods-etcd-bitnami.json");
    let [v1, v2] = <[pods::Selectors; 2]>::try_from(defaults(SubjectKind::Tikv)).unwrap();
    let script = vec![
        list_pods("etcd", &v1.data, &list),
        list_pods("etcd", &v2.data, &list),
    ];
    let error = select_with(script, "etcd", SubjectKind::Tikv, &PodSettings::default())
        .await
        .unwrap_err();
    expect![[r#"no tikv pods in namespace etcd: tried TiDB Operator v1 labels (app.kubernetes.io/name=tidb-cluster,app.kubernetes.io/managed-by=tidb-operator,app.kubernetes.io/component=tikv,!pingcap.com/managed-by), TiDB Operator v2 labels (pingcap.com/managed-by=tidb-operator,pingcap.com/component=tikv); set subject_settings.tikv.namespace or .selector"#]]
        .assert_eq(&error);

    // A selector of the campaign's own is the only one tried.
    let settings = PodSettings {
        selector: Some("app=etcd-members".into()),
        ..PodSettings::default()
    };
    let script = vec![list_pods("etcd", "app=etcd-members", &list)];
    let error = select_with(script, "etcd", SubjectKind::Etcd, &settings)
        .await
        .unwrap_err();
    expect![[r#"no etcd pods in namespace etcd: tried selector "app=etcd-members"; set subject_settings.etcd.namespace or .selector"#]]
        .assert_eq(&error);
}

/// The etcd chart's three members, as the runtime selects them.
fn etcd_selection() -> Selection {
    let list = pod_list("pods-etcd-bitnami.json");
    let items: Vec<Pod> = serde_json::from_value(list["items"].clone()).unwrap();
    let members: Vec<Pod> = items.into_iter().take(3).collect();
    Selection {
        subject: SubjectKind::Etcd,
        namespace: "etcd".into(),
        selectors: defaults(SubjectKind::Etcd).remove(0),
        nodes: pods::number(&members, &[]),
    }
}

fn chaos(yaml_params: Value, kind: &str) -> ChaosSpec {
    serde_json::from_value(json!({ "type": kind, "params": yaml_params })).unwrap()
}

fn pod_json(name: &str) -> Value {
    let list = pod_list("pods-etcd-bitnami.json");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pod| pod["metadata"]["name"] == name)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn node_kill_deletes_the_pod_at_once_on_its_uid_and_cleanup_waits_for_it_ready() {
    let selection = etcd_selection();
    let record = faults::plan(
        &selection,
        &Topology::default(),
        &chaos(json!({"target": 2}), "node_kill"),
        7,
        &owner(),
        Ways::default(),
    )
    .unwrap();
    let KubeAction::PodDelete { pods } = &record.action else {
        panic!("{record:?}")
    };
    let (pod, uid) = (&pods[0].pod, &pods[0].uid);
    assert_eq!(
        (pods.len(), pod.as_str(), record.nodes.clone()),
        (1, "etcd-1", vec![2])
    );
    let mut deleted = pod_json("etcd-1");
    deleted["metadata"]["deletionTimestamp"] = json!("2026-11-30T12:00:00Z");
    deleted["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    let mut again = pod_json("etcd-1");
    again["metadata"]["uid"] = json!("00000000-0000-4000-8000-000000000311");
    let script = vec![
        Exchange::new("DELETE", "/api/v1/namespaces/etcd/pods/etcd-1?")
            .body(json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}))
            .reply(200, deleted),
        Exchange::new("GET", "/api/v1/namespaces/etcd/pods/etcd-1").reply(200, again),
    ];
    let (client, verifier) = client_with(script);
    faults::apply(&client, &record).await.unwrap();
    faults::cleanup(&client, &record).await.unwrap();
    drop(client);
    verifier.await.unwrap();
}

#[tokio::test]
async fn the_pod_to_kill_is_drawn_from_the_trial_seed() {
    let selection = etcd_selection();
    let drawn = |seed| {
        let record = faults::plan(
            &selection,
            &Topology::default(),
            &chaos(json!({"target": "random"}), "node_kill"),
            seed,
            &owner(),
            Ways::default(),
        )
        .unwrap();
        match record.action {
            KubeAction::PodDelete { pods } => pods[0].pod.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(drawn(1), drawn(1));
    let seen: BTreeSet<String> = (0..64).map(drawn).collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
}

/// A `NetworkChaos` as the API server returns it after Chaos Mesh injected it: the object sent,
/// with the server's metadata, the finalizer and the status conditions Chaos Mesh writes.
fn injected(object: &Value) -> Value {
    let mut object = object.clone();
    object["metadata"]["uid"] = json!("31b9d6ed-c87b-4bfc-b942-af3fade354c4");
    object["metadata"]["finalizers"] = json!(["chaos-mesh/records"]);
    object["status"] = json!({
        "conditions": [
            {"status": "True", "type": "Selected"},
            {"status": "True", "type": "AllInjected"},
            {"status": "False", "type": "AllRecovered"},
            {"status": "False", "type": "Paused"}
        ],
        "experiment": {"desiredPhase": "Run"}
    });
    object
}

/// Plans `chaos` on the etcd members, checks the object against its snapshot, then injects and
/// cleans it up with exactly the expected requests.
async fn network_fault(chaos: ChaosSpec, snapshot: expect_test::ExpectFile) {
    mesh_fault(chaos, Ways::default(), snapshot).await;
}

/// The same for a fault done `ways`, whose Chaos Mesh object may be of another kind.
async fn mesh_fault(chaos: ChaosSpec, ways: Ways, snapshot: expect_test::ExpectFile) {
    let selection = etcd_selection();
    let record = faults::plan(&selection, &Topology::default(), &chaos, 3, &owner(), ways).unwrap();
    let KubeAction::ChaosObject { kind, name, object } = &record.action else {
        panic!("{record:?}")
    };
    snapshot.assert_eq(&format!(
        "{}\n",
        serde_json::to_string_pretty(object).unwrap()
    ));
    let collection = format!(
        "/apis/chaos-mesh.org/v1alpha1/namespaces/etcd/{}",
        kind.to_lowercase()
    );
    let by_trial = format!(
        "{collection}?&labelSelector={}",
        encoded(&format!("eval.dev/trial={TRIAL}"))
    );
    let list = |items: Vec<Value>| json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": format!("{kind}List"), "metadata": {}, "items": items});
    let script = vec![
        Exchange::new("POST", format!("{collection}?"))
            .body(object.clone())
            .reply(201, injected(object)),
        Exchange::new("GET", format!("{collection}/{name}")).reply(200, injected(object)),
        Exchange::new("GET", by_trial.clone()).reply(200, list(vec![injected(object)])),
        Exchange::new("DELETE", format!("{collection}/{name}?"))
            .body(json!({}))
            .reply(200, injected(object)),
        Exchange::new("GET", by_trial).reply(200, list(vec![])),
    ];
    let (client, verifier) = client_with(script);
    faults::apply(&client, &record).await.unwrap();
    faults::cleanup(&client, &record).await.unwrap();
    drop(client);
    verifier.await.unwrap();
}

#[tokio::test]
async fn disk_pressure_by_io_chaos_fails_the_data_volumes_writes_with_enospc() {
    mesh_fault(
        chaos(
            json!({"target": 2, "duration_seconds": 60}),
            "disk_pressure",
        ),
        Ways {
            disk_pressure: DiskPressureWay::IoChaos,
            ..Ways::default()
        },
        expect_file!["../testdata/kubernetes/iochaos-disk-full.json"],
    )
    .await;
}

#[tokio::test]
async fn disk_pressure_by_stress_chaos_runs_disk_workers_in_the_pods_cgroup() {
    mesh_fault(
        chaos(json!({"target": 2}), "disk_pressure"),
        Ways {
            disk_pressure: DiskPressureWay::StressChaos,
            ..Ways::default()
        },
        expect_file!["../testdata/kubernetes/stresschaos-disk.json"],
    )
    .await;
}

#[tokio::test]
async fn node_kill_by_container_kill_is_a_podchaos_on_the_databases_container() {
    mesh_fault(
        chaos(json!({"target": 1}), "node_kill"),
        Ways {
            node_kill: NodeKillWay::ContainerKill,
            ..Ways::default()
        },
        expect_file!["../testdata/kubernetes/podchaos-container-kill.json"],
    )
    .await;
}

#[tokio::test]
async fn latency_is_a_delay_networkchaos_on_the_target_pod() {
    network_fault(
        chaos(
            json!({"target": 1, "min_ms": 50, "max_ms": 150, "duration_seconds": 30}),
            "latency",
        ),
        expect_file!["../testdata/kubernetes/networkchaos-latency.json"],
    )
    .await;
}

#[tokio::test]
async fn packet_loss_is_a_loss_networkchaos_on_the_target_pod() {
    network_fault(
        chaos(json!({"target": 3, "percent": 30}), "packet_loss"),
        expect_file!["../testdata/kubernetes/networkchaos-packet-loss.json"],
    )
    .await;
}

#[tokio::test]
async fn a_partition_cuts_the_first_group_from_the_others_both_ways_or_one() {
    network_fault(
        chaos(json!({"target": 2}), "network_partition"),
        expect_file!["../testdata/kubernetes/networkchaos-partition.json"],
    )
    .await;
    network_fault(
        chaos(
            json!({"groups": [[1], [2, 3]], "asymmetric": true}),
            "network_partition",
        ),
        expect_file!["../testdata/kubernetes/networkchaos-partition-one-way.json"],
    )
    .await;
}

#[tokio::test]
async fn a_control_trial_changes_nothing_and_asks_nothing() {
    let record = faults::plan(
        &etcd_selection(),
        &Topology::default(),
        &chaos(json!({}), "none"),
        1,
        &owner(),
        Ways::default(),
    )
    .unwrap();
    assert!(matches!(record.action, KubeAction::Nothing), "{record:?}");
    let (client, verifier) = client_with(Vec::new());
    faults::apply(&client, &record).await.unwrap();
    faults::cleanup(&client, &record).await.unwrap();
    drop(client);
    verifier.await.unwrap();
}

#[tokio::test]
async fn faults_this_runtime_does_not_inject_are_refused_by_name() {
    let error = faults::plan(
        &etcd_selection(),
        &Topology::default(),
        &chaos(json!({}), "region_unavailable"),
        1,
        &owner(),
        Ways::default(),
    )
    .unwrap_err();
    expect!["region_unavailable on kubernetes is not built yet (built: node_kill, process_pause, disk_pressure, latency, packet_loss, network_partition, pd_leader_kill, leader_evict, none)"]
        .assert_eq(&error.to_string());
}

#[tokio::test]
async fn sweep_deletes_only_the_harness_objects_in_every_namespace_it_may_list() {
    let selector = encoded("app.kubernetes.io/managed-by=eval,eval.dev/trial");
    let leftover = |namespace: &str, name: &str| {
        json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
               "metadata": {"name": name, "namespace": namespace, "labels": {"eval.dev/trial": TRIAL, "app.kubernetes.io/managed-by": "eval"}},
               "spec": {}})
    };
    let list = |items: Vec<Value>| json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaosList", "metadata": {}, "items": items});
    let namespaces = json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": [
        {"metadata": {"name": "etcd"}}, {"metadata": {"name": "kube-system"}}
    ]});
    let script = vec![
        Exchange::new("GET", format!("/apis/chaos-mesh.org/v1alpha1/networkchaos?&labelSelector={selector}"))
            .reply(403, recorded("status-403-forbidden-list-pods-serviceaccount.json")),
        Exchange::new("GET", "/api/v1/namespaces?").reply(200, namespaces),
        Exchange::new("GET", format!("/apis/chaos-mesh.org/v1alpha1/namespaces/etcd/networkchaos?&labelSelector={selector}"))
            .reply(200, list(vec![leftover("etcd", "eval-0b5f6a2e-latency")])),
        Exchange::new("GET", format!("/apis/chaos-mesh.org/v1alpha1/namespaces/kube-system/networkchaos?&labelSelector={selector}"))
            .reply(403, recorded("status-403-forbidden-list-pods-serviceaccount.json")),
        Exchange::new("DELETE", "/apis/chaos-mesh.org/v1alpha1/namespaces/etcd/networkchaos/eval-0b5f6a2e-latency?")
            .body(json!({}))
            .reply(200, leftover("etcd", "eval-0b5f6a2e-latency")),
        // The other kinds, which this cluster does not serve (an older Chaos Mesh without them).
        Exchange::new("GET", format!("/apis/chaos-mesh.org/v1alpha1/iochaos?&labelSelector={selector}"))
            .reply(404, recorded("status-404-notfound.json")),
        Exchange::new("GET", format!("/apis/chaos-mesh.org/v1alpha1/stresschaos?&labelSelector={selector}"))
            .reply(404, recorded("status-404-notfound.json")),
        Exchange::new("GET", format!("/apis/chaos-mesh.org/v1alpha1/podchaos?&labelSelector={selector}"))
            .reply(404, recorded("status-404-notfound.json")),
    ];
    let (client, verifier) = client_with(script);
    let swept = faults::sweep(&client).await.unwrap();
    drop(client);
    verifier.await.unwrap();
    assert_eq!(swept.deleted, ["NetworkChaos etcd/eval-0b5f6a2e-latency"]);
    assert_eq!(swept.unreadable, ["networkchaos in kube-system"]);
}

/// The access review the preflight posts for `verb` on `resource` of `group` in `namespace`,
/// answered with a recorded review (its spec is the request's, as the server echoes it).
fn review(namespace: &str, group: &str, resource: &str, verb: &str, allowed: bool) -> Exchange {
    let mut attributes =
        json!({"group": group, "namespace": namespace, "resource": resource, "verb": verb});
    if let Some((resource, subresource)) = resource.split_once('/') {
        attributes["resource"] = json!(resource);
        attributes["subresource"] = json!(subresource);
    }
    let mut reply = recorded(if allowed {
        "ssar-allowed-true.json"
    } else {
        "ssar-allowed-false.json"
    });
    reply["spec"]["resourceAttributes"] = attributes.clone();
    Exchange::new(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?",
    )
    .body(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {"resourceAttributes": attributes}
    }))
    .reply(201, reply)
}

fn version() -> Exchange {
    Exchange::new("GET", "/version").reply(200, recorded("version-gke-v1.8.7.json"))
}

fn chaos_mesh_discovery() -> Exchange {
    let resource = |name: &str, kind: &str| {
        json!({"name": name, "singularName": name, "namespaced": true, "kind": kind,
               "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]})
    };
    Exchange::new("GET", "/apis/chaos-mesh.org/v1alpha1").reply(
        200,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "chaos-mesh.org/v1alpha1",
               "resources": [resource("networkchaos", "NetworkChaos"), resource("podchaos", "PodChaos")]}),
    )
}

fn etcd_needs(faults: &[ChaosType]) -> Needs {
    Needs {
        subject: SubjectKind::Etcd,
        namespace: "etcd".into(),
        pods: PodSettings::default(),
        faults: faults.iter().copied().collect(),
        ways: Ways::default(),
        endpoints: 0,
    }
}

async fn preflight_with(script: Vec<Exchange>, needs: &Needs) -> Vec<String> {
    let (client, verifier) = client_with(script);
    let problems = preflight::check(&client, "context kind-eval", needs).await;
    drop(client);
    verifier.await.unwrap();
    problems
}

fn rights_script(allowed: impl Fn(&str, &str) -> bool) -> Vec<Exchange> {
    let mut script = Vec::new();
    for (group, resource, verb) in [
        ("", "pods", "list"),
        ("", "pods", "get"),
        ("", "pods", "delete"),
        ("", "pods/portforward", "get"),
        ("", "pods/portforward", "create"),
        ("chaos-mesh.org", "networkchaos", "create"),
        ("chaos-mesh.org", "networkchaos", "get"),
        ("chaos-mesh.org", "networkchaos", "list"),
        ("chaos-mesh.org", "networkchaos", "delete"),
    ] {
        script.push(review(
            "etcd",
            group,
            resource,
            verb,
            allowed(resource, verb),
        ));
    }
    script
}

#[tokio::test]
async fn a_campaign_with_every_right_and_chaos_mesh_passes_the_preflight() {
    let list = pod_list("pods-etcd-bitnami.json");
    let mut script = vec![version()];
    script.extend(rights_script(|_, _| true));
    script.push(chaos_mesh_discovery());
    script.push(list_pods("etcd", "app.kubernetes.io/name=etcd", &list));
    let problems = preflight_with(
        script,
        &etcd_needs(&[ChaosType::NodeKill, ChaosType::Latency]),
    )
    .await;
    assert_eq!(problems, Vec::<String>::new());
}

#[tokio::test]
async fn the_preflight_says_each_missing_right_and_chaos_mesh_in_one_line() {
    let list = pod_list("pods-etcd-bitnami.json");
    let mut script = vec![version()];
    script.extend(rights_script(|resource, verb| {
        !(resource == "pods" && verb == "delete" || resource == "networkchaos" && verb == "create")
    }));
    script.push(
        Exchange::new("GET", "/apis/chaos-mesh.org/v1alpha1")
            .reply(404, recorded("status-404-notfound.json")),
    );
    script.push(list_pods("etcd", "app.kubernetes.io/name=etcd", &list));
    let problems = preflight_with(
        script,
        &etcd_needs(&[
            ChaosType::NodeKill,
            ChaosType::Latency,
            ChaosType::RegionUnavailable,
        ]),
    )
    .await;
    expect![[r#"
        etcd on kubernetes: region_unavailable not built yet (built: node_kill, process_pause, disk_pressure, latency, packet_loss, network_partition, pd_leader_kill, leader_evict, none); use runtime: lab for them
        the harness may not delete pods in namespace etcd (for node_kill and pd_leader_kill); apply deploy/rbac.yaml to its user or service account
        the harness may not create networkchaos.chaos-mesh.org in namespace etcd (for the network faults and their cleanup); apply deploy/rbac.yaml to its user or service account
        Chaos Mesh's NetworkChaos (networkchaos.chaos-mesh.org) is not installed at context kind-eval, and latency needs it; install Chaos Mesh (helm install chaos-mesh chaos-mesh/chaos-mesh -n chaos-mesh --create-namespace)
    "#]]
    .assert_eq(&format!("{}\n", problems.join("\n")));
}

/// The ways a campaign asks for change what the preflight checks: `node_kill: signal` needs
/// `pods/exec` and no delete; `disk_pressure: io_chaos` needs IOChaos, here not served.
#[tokio::test]
async fn the_preflight_checks_the_rights_and_kinds_of_the_ways_asked_for() {
    let list = pod_list("pods-etcd-bitnami.json");
    let mut script = vec![version()];
    for (group, resource, verb) in [
        ("", "pods", "list"),
        ("", "pods", "get"),
        ("", "pods/portforward", "get"),
        ("", "pods/portforward", "create"),
        ("", "pods/exec", "get"),
        ("", "pods/exec", "create"),
        ("chaos-mesh.org", "iochaos", "create"),
        ("chaos-mesh.org", "iochaos", "get"),
        ("chaos-mesh.org", "iochaos", "list"),
        ("chaos-mesh.org", "iochaos", "delete"),
    ] {
        script.push(review("etcd", group, resource, verb, true));
    }
    script.push(chaos_mesh_discovery());
    script.push(list_pods("etcd", "app.kubernetes.io/name=etcd", &list));
    let needs = Needs {
        ways: Ways {
            node_kill: NodeKillWay::Signal,
            disk_pressure: DiskPressureWay::IoChaos,
        },
        ..etcd_needs(&[ChaosType::NodeKill, ChaosType::DiskPressure])
    };
    let problems = preflight_with(script, &needs).await;
    expect![[r#"
        Chaos Mesh's IOChaos (iochaos.chaos-mesh.org) is not installed at context kind-eval, and disk_pressure needs it; install Chaos Mesh (helm install chaos-mesh chaos-mesh/chaos-mesh -n chaos-mesh --create-namespace)
    "#]]
    .assert_eq(&format!("{}\n", problems.join("\n")));
}

/// The preflight's other lines: a right the API server cannot answer about, `endpoints` that
/// are not one per pod, and a pod not Ready.
#[tokio::test]
async fn the_preflight_says_an_unanswered_review_a_wrong_endpoint_count_and_pods_not_ready() {
    let mut list = pod_list("pods-etcd-bitnami.json");
    for condition in list["items"][1]["status"]["conditions"]
        .as_array_mut()
        .unwrap()
    {
        if condition["type"] == "Ready" {
            condition["status"] = json!("False");
        }
    }
    let mut script = vec![version()];
    for (resource, verb) in [("pods", "list"), ("pods", "get")] {
        script.push(review("etcd", "", resource, verb, true));
    }
    let mut unanswered = review("etcd", "", "pods", "delete", true);
    unanswered.status = 500;
    unanswered.reply = status(500, "InternalError", "etcdserver: request timed out");
    script.push(unanswered);
    script.push(list_pods("etcd", "app.kubernetes.io/name=etcd", &list));
    let needs = Needs {
        endpoints: 2,
        ..etcd_needs(&[ChaosType::NodeKill])
    };
    let problems = preflight_with(script, &needs).await;
    expect![[r#"
        cannot ask whether the harness may delete pods in namespace etcd: 500 InternalError: etcdserver: request timed out
        subject_settings.etcd.endpoints names 2 addresses, and the selectors pick 3 pods in namespace etcd; give one per pod, in node order
        etcd pods not Ready in namespace etcd: etcd-1; a trial starts from a healthy cluster
    "#]]
    .assert_eq(&format!("{}\n", problems.join("\n")));
}

#[tokio::test]
async fn an_unreachable_cluster_is_one_line_and_nothing_else_is_asked() {
    let script = vec![Exchange::new("GET", "/version").reply(
        503,
        status(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
    )];
    let problems = preflight_with(script, &etcd_needs(&[ChaosType::NodeKill])).await;
    expect![[r#"
        kubernetes API at context kind-eval does not answer (503 ServiceUnavailable: the server is currently unable to handle the request); check the context (--context, subject_settings.etcd.context) and that the cluster is up
    "#]]
    .assert_eq(&format!("{}\n", problems.join("\n")));
}

/// `deploy/rbac.yaml` grants exactly the rights the preflight checks for every fault this
/// runtime injects, done every way: nothing missing, nothing more.
#[test]
fn deploy_rbac_grants_exactly_the_rights_the_faults_use() {
    let all: BTreeSet<ChaosType> = faults::SUPPORTED
        .iter()
        .map(|name| serde_json::from_value(json!(name)).unwrap())
        .collect();
    let mut rules: std::collections::BTreeMap<(&str, String), Vec<&str>> = Default::default();
    let every_way = [
        NodeKillWay::PodDelete,
        NodeKillWay::Signal,
        NodeKillWay::ContainerKill,
    ]
    .into_iter()
    .flat_map(|node_kill| {
        [
            DiskPressureWay::Fill,
            DiskPressureWay::IoChaos,
            DiskPressureWay::StressChaos,
        ]
        .map(|disk_pressure| Ways {
            node_kill,
            disk_pressure,
        })
    });
    for ways in every_way {
        for right in preflight::rights(&all, ways, true) {
            let resource = match right.subresource {
                Some(sub) => format!("{}/{sub}", right.resource),
                None => right.resource.to_string(),
            };
            let verbs = rules.entry((right.group, resource)).or_default();
            if !verbs.contains(&right.verb) {
                verbs.push(right.verb);
            }
        }
    }
    let mut expected = String::from("rules:\n");
    for ((group, resource), verbs) in &rules {
        expected.push_str(&format!(
            "  - apiGroups: [\"{group}\"]\n    resources: [\"{resource}\"]\n    verbs: [{}]\n",
            verbs
                .iter()
                .map(|verb| format!("\"{verb}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let path = format!("{}/../deploy/rbac.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(&expected),
        "deploy/rbac.yaml should hold exactly these rules:\n{expected}"
    );
    assert_eq!(text.matches("apiGroups").count(), rules.len(), "{text}");
}
