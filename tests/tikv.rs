//! The TiKV subject on a real lab, its nodes' APIs answered by what real PD servers wrote
//! (`chaos/testdata/pd/`, where each comes from is in its README): health, state capture, target
//! choice, and each TiKV fault's exact requests, injection and cleanup. No registry that reaches
//! these machines ships `pd-server` or `tikv-server`, so:
//!
//! - each node's API is a replay server on the address the node's own process would listen on,
//!   behind the lab's real delay proxy, answering the recordings with only their identities (the
//!   members' client URLs, the stores' addresses) put onto the lab's, so that PD's view names
//!   this lab's nodes;
//! - where a fault kills and restarts processes, the lab runs stand-ins for the two programs that
//!   record their command line and sleep, so that what is asserted is the real lab's process
//!   handling and the real command lines.
//!
//! `tests/tikv_runs.rs` runs whole trials: the real programs where they are found, and a worker
//! on a host without them.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use chaos::faults::{self, CleanupRecord};
use chaos::lab::{Isolation, Lab, LabOptions};
use chaos::runtime::Runtime;
use chaos::subject::{LabSubject, Subject};
use chaos::tikv::binaries::TikvBinaries;
use schemas::campaign::{
    ChaosSpec, LeaderEvictParams, PdLeaderKillParams, RegionUnavailableParams, Target, TargetChoice,
};
use testkit::replay::{Replay, Seen};

fn recorded(name: &str) -> String {
    let path = support::repo_root().join("chaos/testdata/pd").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

const STORES_CHECK: &str =
    "/pd/api/v1/stores/check?state=up&state=disconnected&state=down&state=offline&state=tombstone";
const EVICT_LIST: &str = "/pd/api/v1/scheduler-config/evict-leader-scheduler/list";

/// The recorded v8.1 cluster's PD members, in the order the lab's `pd1`..`pd3` take their place
/// (the recorded leader, `basic-53pe89`, becomes `pd2`).
const RECORDED_PD: [&str; 3] = [
    "http://basic-pd-7axwci.basic-pd-peer.default:2379",
    "http://basic-pd-53pe89.basic-pd-peer.default:2379",
    "http://basic-pd-0qt9e9.basic-pd-peer.default:2379",
];
/// Its TiKV stores (ids 4, 1 and 5; store 1 holds the most leaders), for `tikv1`..`tikv3`.
const RECORDED_STORES: [&str; 3] = [
    "basic-tikv-5gzwgj.basic-tikv-peer.default:20160",
    "basic-tikv-06vg39.basic-tikv-peer.default:20160",
    "basic-tikv-4q2bgw.basic-tikv-peer.default:20160",
];

/// A loopback TiKV lab of 3 stores and 3 PD members in a temporary data dir, removed when
/// dropped.
struct TikvLab {
    lab: Lab,
    subject: LabSubject,
    dir: tempfile::TempDir,
    /// The replay servers of the PD members (by node) and of the stores' status addresses.
    pd: Vec<(u32, Replay)>,
    stores: Vec<(u32, Replay)>,
}

impl Drop for TikvLab {
    fn drop(&mut self) {
        if self.lab.state.dir.join("lab.json").exists() {
            let _ = std::process::Command::new(env!("CARGO_BIN_EXE_evalctl"))
                .args(["lab", "down", "--all", "--data-dir"])
                .arg(self.dir.path())
                .status();
        }
    }
}

/// `pd-server` and `tikv-server` stand-ins: each writes its command line next to the
/// configuration file it is given, then sleeps.
fn stand_ins(dir: &Path) -> TikvBinaries {
    let script = "#!/bin/sh\nprevious=\nfor arg in \"$@\"; do\n  if [ \"$previous\" = --config ]; then config_dir=$(dirname \"$arg\"); fi\n  previous=$arg\ndone\nprintf '%s\\n' \"$0\" \"$@\" > \"$config_dir/argv\"\nexec sleep 600\n";
    for name in ["pd-server", "tikv-server"] {
        let path = dir.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    TikvBinaries {
        pd_server: dir.join("pd-server"),
        tikv_server: dir.join("tikv-server"),
    }
}

impl TikvLab {
    async fn create() -> TikvLab {
        chaos::lab::set_eval_binary(env!("CARGO_BIN_EXE_evalctl"));
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let lab = Lab::create(LabOptions {
            data_dir: dir.path().to_path_buf(),
            name: None,
            subject: schemas::campaign::SubjectKind::Tikv,
            nodes: 6,
            isolation: Isolation::Loopback,
            pd_members: 3,
            tikv_binaries: Some(stand_ins(&bin)),
            held: true,
        })
        .await
        .unwrap();
        let subject = LabSubject::of(&lab.state).unwrap();
        TikvLab {
            lab,
            subject,
            dir,
            pd: Vec::new(),
            stores: Vec::new(),
        }
    }

    fn node(&self, number: u32) -> chaos::runtime::NodeEndpoints {
        self.lab.node_endpoints(number).unwrap()
    }

    /// A recorded answer with the recorded cluster's identities replaced by this lab's.
    fn onto_lab(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (k, recorded) in RECORDED_PD.iter().enumerate() {
            text = text.replace(recorded, &self.node(4 + k as u32).client_url());
        }
        for (k, recorded) in RECORDED_STORES.iter().enumerate() {
            text = text.replace(recorded, &self.node(1 + k as u32).peer_addr.to_string());
        }
        text
    }

    /// The healthy recorded cluster's answers to PD's API (`/ping`'s empty 200 is what its
    /// handler writes, `server/api/health.go`).
    fn healthy_routes(&self) -> [(&'static str, &'static str, u16, String); 6] {
        [
            ("GET", "/pd/api/v1/ping", 200, String::new()),
            (
                "GET",
                "/pd/api/v1/members",
                200,
                self.onto_lab(&recorded("members.2.json")),
            ),
            (
                "GET",
                "/pd/api/v1/health",
                200,
                self.onto_lab(&recorded("health.1.json")),
            ),
            (
                "GET",
                STORES_CHECK,
                200,
                self.onto_lab(&recorded("stores.1.json")),
            ),
            // No recording of an empty check exists: PD's handler writes this.
            (
                "GET",
                "/pd/api/v1/regions/check/miss-peer",
                200,
                r#"{"count":0,"regions":[]}"#.to_string(),
            ),
            (
                "GET",
                "/pd/api/v1/regions/check/down-peer",
                200,
                r#"{"count":0,"regions":[]}"#.to_string(),
            ),
        ]
    }

    /// The healthy recorded cluster: every PD member answers PD's API, every store its status.
    async fn serve_healthy(&mut self) {
        let routes = self.healthy_routes();
        for number in 4..=6 {
            let replay = Replay::start_at(self.node(number).listen_client_addr, &routes).await;
            self.pd.push((number, replay));
        }
        for number in 1..=3 {
            let replay = Replay::start_at(
                self.node(number).listen_client_addr,
                &[("GET", "/status", 200, String::new())],
            )
            .await;
            self.stores.push((number, replay));
        }
    }

    /// Answers `method path` so on every PD member.
    fn pd_answers(&self, method: &str, path: &str, status: u16, body: String) {
        for (_, replay) in &self.pd {
            replay.set(method, path, status, body.clone());
        }
    }

    /// Every request the PD members saw, in order, member after member; then forgets them.
    fn pd_requests(&self) -> Vec<(u32, Seen)> {
        let mut seen = Vec::new();
        for (number, replay) in &self.pd {
            seen.extend(
                replay
                    .requests()
                    .into_iter()
                    .map(|request| (*number, request)),
            );
            replay.clear();
        }
        seen
    }

    /// What `record`'s fault left behind.
    async fn leftovers(&self, record: &CleanupRecord) -> Vec<String> {
        faults::leftovers(&self.subject, &self.lab, record)
            .await
            .unwrap()
    }

    /// Node `number`'s command line, as its stand-in wrote it (once it has: the process
    /// starts on its own time).
    async fn argv(&self, number: u32) -> Vec<String> {
        let file = self.node(number).data_dir.join("argv");
        for _ in 0..500 {
            if let Ok(text) = std::fs::read_to_string(&file)
                && text.ends_with(".toml\n")
            {
                return text.lines().map(str::to_string).collect();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} was not written", file.display());
    }
}

fn running(lab: &Lab, number: u32) -> bool {
    lab.running_pid(number).is_some()
}

#[tokio::test]
async fn health_state_and_targets_come_from_pd_s_view_of_the_lab() {
    let mut tikv = TikvLab::create().await;
    tikv.serve_healthy().await;
    let names: Vec<&str> = tikv
        .lab
        .state
        .nodes
        .iter()
        .map(|node| node.name.as_str())
        .collect();
    assert_eq!(names, ["tikv1", "tikv2", "tikv3", "pd1", "pd2", "pd3"]);

    let health = tikv.subject.health(&tikv.lab).await;
    assert!(health.healthy, "{health:?}");
    // The recorded leader, basic-53pe89, advertises pd2's client URL.
    assert_eq!(health.leader, Some(5));

    let state = tikv.subject.capture_state(&tikv.lab).await;
    assert_eq!(state["subject"], "tikv");
    assert_eq!(state["healthy"], true);
    assert_eq!(state["pd_leader_node"], 5);
    assert_eq!(state["nodes"][0]["role"], "tikv");
    assert_eq!(state["nodes"][3]["role"], "pd");
    assert_eq!(state["nodes"][3]["name"], "pd1");
    let pd = &state["pd"];
    assert_eq!(pd["cluster_id"], 7_452_180_154_224_557_728_u64);
    assert_eq!(
        pd["pd_members"][2]["member_id"],
        12_818_309_996_638_325_969_u64
    );
    assert_eq!(
        pd["stores"][0]["address"],
        tikv.node(1).peer_addr.to_string()
    );
    assert_eq!(pd["stores"][0]["capacity_bytes"], 334_685_326_541_u64);
    assert_eq!(pd["stores"][2]["leader_count"], 25);

    // Targets: `leader` is the store holding the most leaders (store 1 at tikv2), `pd_leader`
    // PD's leader; the store ids are PD's.
    let mut rng = faults::TrialRng::new(7);
    let target = |choice| Target::Choice(choice);
    let resolve = async |choice, rng: &mut faults::TrialRng| {
        faults::resolve_target(&tikv.subject, &tikv.lab, &target(choice), rng)
            .await
            .unwrap()
    };
    assert_eq!(resolve(TargetChoice::Leader, &mut rng).await, 2);
    assert!([1, 3].contains(&resolve(TargetChoice::Follower, &mut rng).await));
    assert!((1..=3).contains(&resolve(TargetChoice::Random, &mut rng).await));
    assert_eq!(resolve(TargetChoice::PdLeader, &mut rng).await, 5);
    assert!([4, 6].contains(&resolve(TargetChoice::PdFollower, &mut rng).await));
    assert!((4..=6).contains(&resolve(TargetChoice::PdRandom, &mut rng).await));
    assert_eq!(tikv.subject.store_id(&tikv.lab, 1).await.unwrap(), 4);
    assert_eq!(tikv.subject.store_id(&tikv.lab, 2).await.unwrap(), 1);
    let error = tikv.subject.store_id(&tikv.lab, 4).await.unwrap_err();
    assert!(
        error.to_string().contains("node 4 is a PD member"),
        "{error}"
    );

    // A PD leader change: PD now names basic-7axwci (pd1) as its leader.
    let mut members: serde_json::Value =
        serde_json::from_str(&tikv.onto_lab(&recorded("members.2.json"))).unwrap();
    members["leader"] = members["members"][0].clone();
    tikv.pd_answers("GET", "/pd/api/v1/members", 200, members.to_string());
    assert_eq!(tikv.subject.health(&tikv.lab).await.leader, Some(4));
    assert_eq!(resolve(TargetChoice::PdLeader, &mut rng).await, 4);

    // Each recorded problem makes the cluster unhealthy and says so.
    tikv.pd_answers("GET", "/pd/api/v1/health", 200, recorded("health.2.json"));
    tikv.pd_answers("GET", STORES_CHECK, 200, recorded("stores.6.json"));
    tikv.pd_answers(
        "GET",
        "/pd/api/v1/regions/check/down-peer",
        200,
        recorded("regions-check-down-peer.1.json"),
    );
    let health = tikv.subject.health(&tikv.lab).await;
    assert!(!health.healthy);
    assert_eq!(
        health.reason.as_deref(),
        Some(
            "PD members not healthy: pd3, pd2, pd1; store 1 is Down; store 4 is Offline; 2 of 3 TiKV stores; 1 regions have down peers"
        )
    );
    // PD's health answered 503 by every member (PD not ready): the members answer their own
    // probe, but PD's view cannot be read.
    tikv.pd_answers("GET", "/pd/api/v1/health", 503, String::new());
    let reason = tikv.subject.health(&tikv.lab).await.reason.unwrap();
    assert!(
        reason.starts_with("PD not answering: pd1: PD: "),
        "{reason}"
    );
    assert!(reason.contains("HTTP 503"), "{reason}");
    assert!(!reason.contains("not answering: pd1: 127"), "{reason}");
    // A PD before 6.0 has no `/ping` and answers it 404 (its router's text): it answers.
    tikv.serve_healthy_again();
    tikv.pd_answers("GET", "/pd/api/v1/ping", 404, "404 page not found".into());
    let health = tikv.subject.health(&tikv.lab).await;
    assert!(health.healthy, "{health:?}");
    // A Tombstone store (PD's numeric state 2, as a store deleted and gone) is no longer one of
    // the cluster's stores, and regions missing a peer (the recorded regions, counted as PD's
    // handler counts them) are a problem of their own.
    tikv.serve_healthy_again();
    let mut stores: serde_json::Value =
        serde_json::from_str(&tikv.onto_lab(&recorded("stores.1.json"))).unwrap();
    stores["stores"][0]["store"]["state"] = 2.into();
    stores["stores"][0]["store"]["state_name"] = "Tombstone".into();
    tikv.pd_answers("GET", STORES_CHECK, 200, stores.to_string());
    let regions: serde_json::Value = serde_json::from_str(&recorded(
        "regions-check-miss-peer.1.regions-array-only.json",
    ))
    .unwrap();
    let miss_peer =
        serde_json::json!({"count": regions.as_array().unwrap().len(), "regions": regions});
    tikv.pd_answers(
        "GET",
        "/pd/api/v1/regions/check/miss-peer",
        200,
        miss_peer.to_string(),
    );
    assert_eq!(
        tikv.subject.health(&tikv.lab).await.reason.as_deref(),
        Some("2 of 3 TiKV stores; 1 regions miss peers")
    );
    assert_eq!(
        tikv.subject
            .store_id(&tikv.lab, 1)
            .await
            .unwrap_err()
            .to_string(),
        format!("PD knows no store at {} (node 1)", tikv.node(1).peer_addr)
    );
    // A store that does not answer its status address.
    tikv.serve_healthy_again();
    assert!(tikv.subject.health(&tikv.lab).await.healthy);
    tikv.stores.retain(|(number, _)| *number != 3);
    let reason = tikv.subject.health(&tikv.lab).await.reason.unwrap();
    assert!(reason.starts_with("not answering: tikv3: "), "{reason}");
}

impl TikvLab {
    /// Answers as the healthy cluster again.
    fn serve_healthy_again(&self) {
        for (method, path, status, body) in self.healthy_routes() {
            self.pd_answers(method, path, status, body);
        }
    }
}

/// The start of each node's command line, as a member of this lab runs it.
#[tokio::test]
async fn a_reset_starts_pd_members_then_stores_with_their_command_lines() {
    let mut tikv = TikvLab::create().await;
    let subject = tikv.subject.clone();
    subject.reset(&mut tikv.lab).await.unwrap();
    for number in 1..=6 {
        assert!(running(&tikv.lab, number), "node {number} runs");
    }
    let pd2 = tikv.node(5);
    let initial_cluster = (4..=6)
        .map(|number| format!("pd{}={}", number - 3, tikv.node(number).peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    let binaries = tikv.lab.state.tikv_binaries.clone().unwrap();
    assert_eq!(
        tikv.argv(5).await,
        [
            binaries.pd_server.display().to_string(),
            "--name".into(),
            "pd2".into(),
            "--data-dir".into(),
            pd2.data_dir.join("pd").display().to_string(),
            "--client-urls".into(),
            format!("http://{}", pd2.listen_client_addr),
            "--advertise-client-urls".into(),
            pd2.client_url(),
            "--peer-urls".into(),
            format!("http://{}", pd2.listen_peer_addr),
            "--advertise-peer-urls".into(),
            pd2.peer_url(),
            "--initial-cluster".into(),
            initial_cluster,
            "--config".into(),
            pd2.data_dir.join("pd.toml").display().to_string(),
        ]
    );
    let token = std::fs::read_to_string(pd2.data_dir.join("pd.toml")).unwrap();
    assert_eq!(
        token,
        format!("initial-cluster-token = \"{}\"\n", tikv.lab.generation())
    );
    let tikv1 = tikv.node(1);
    let pd_addrs = (4..=6)
        .map(|number| tikv.node(number).client_addr.to_string())
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        tikv.argv(1).await,
        [
            binaries.tikv_server.display().to_string(),
            "--addr".into(),
            tikv1.listen_peer_addr.to_string(),
            "--advertise-addr".into(),
            tikv1.peer_addr.to_string(),
            "--status-addr".into(),
            tikv1.listen_client_addr.to_string(),
            "--advertise-status-addr".into(),
            tikv1.client_addr.to_string(),
            "--data-dir".into(),
            tikv1.data_dir.join("tikv").display().to_string(),
            "--pd".into(),
            pd_addrs,
            "--config".into(),
            tikv1.data_dir.join("tikv.toml").display().to_string(),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(tikv1.data_dir.join("tikv.toml")).unwrap(),
        chaos::tikv::subject::TIKV_CONFIG
    );
    // PD started first: its members' logs are older than the stores'.
    let started =
        |number: u32| chaos::lab::sys::start_time(tikv.lab.running_pid(number).unwrap()).unwrap();
    assert!((4..=6).all(|pd| (1..=3).all(|store| started(pd) <= started(store))));
}

#[tokio::test]
async fn each_tikv_fault_makes_exactly_its_requests_and_cleans_up_from_its_record() {
    let mut tikv = TikvLab::create().await;
    let subject = tikv.subject.clone();
    subject.reset(&mut tikv.lab).await.unwrap();
    tikv.serve_healthy().await;
    let plan = async |tikv: &TikvLab, chaos: ChaosSpec| {
        faults::plan(&tikv.subject, &tikv.lab, &chaos, 11)
            .await
            .unwrap()
    };
    let lab_dir = tikv.lab.state.dir.clone();

    // leader_evict on the store holding the most leaders: the stores are read, the scheduler
    // added with PD's body; PD's configuration then lists the store (and store 2).
    tikv.pd_requests();
    let record = plan(
        &tikv,
        ChaosSpec::LeaderEvict(LeaderEvictParams {
            target: Target::Choice(TargetChoice::Leader),
            duration_seconds: None,
        }),
    )
    .await;
    assert_eq!(
        record,
        CleanupRecord::LeaderEvict {
            lab_dir: lab_dir.clone(),
            node: 2,
            store_id: 1
        }
    );
    tikv.pd_answers(
        "POST",
        "/pd/api/v1/schedulers",
        200,
        "\"The scheduler is created.\"".into(),
    );
    faults::apply(&tikv.subject, &tikv.lab, &record)
        .await
        .unwrap();
    let requests: Vec<Seen> = tikv
        .pd_requests()
        .into_iter()
        .map(|(_, seen)| seen)
        .collect();
    let asked_stores = requests
        .iter()
        .filter(|seen| seen.path == STORES_CHECK || seen.path == "/pd/api/v1/members")
        .count();
    assert!(asked_stores >= 2, "{requests:?}");
    assert_eq!(
        requests.last().unwrap(),
        &Seen {
            method: "POST".into(),
            path: "/pd/api/v1/schedulers".into(),
            body: r#"{"name":"evict-leader-scheduler","store_id":1}"#.into(),
        }
    );
    tikv.pd_answers(
        "GET",
        EVICT_LIST,
        200,
        recorded("scheduler-config-evict-leader-list.1.json"),
    );
    assert_eq!(
        tikv.leftovers(&record).await,
        ["store 1 is in PD's evict-leader-scheduler"]
    );
    tikv.pd_requests();
    tikv.pd_answers(
        "DELETE",
        "/pd/api/v1/schedulers/evict-leader-scheduler-1",
        200,
        "null".into(),
    );
    faults::cleanup(&tikv.subject, &mut tikv.lab, &record)
        .await
        .unwrap();
    assert_eq!(
        tikv.pd_requests(),
        [(
            4,
            Seen {
                method: "DELETE".into(),
                path: "/pd/api/v1/schedulers/evict-leader-scheduler-1".into(),
                body: String::new(),
            }
        )]
    );
    // The scheduler is left with no store (as PD v8.5 lists it): nothing is left.
    tikv.pd_answers(
        "GET",
        EVICT_LIST,
        200,
        recorded("scheduler-config-evict-leader-list.3.json"),
    );
    assert!(tikv.leftovers(&record).await.is_empty());
    // A second cleanup, once PD has forgotten the store, is done too.
    tikv.pd_answers(
        "DELETE",
        "/pd/api/v1/schedulers/evict-leader-scheduler-1",
        404,
        "\"[PD:scheduler:ErrSchedulerNotFound]scheduler not found\"".into(),
    );
    faults::cleanup(&tikv.subject, &mut tikv.lab, &record)
        .await
        .unwrap();

    // pd_leader_kill: the leader asked of PD (one request, of the first member), its process
    // killed, and started again by cleanup.
    tikv.pd_requests();
    let record = plan(&tikv, ChaosSpec::PdLeaderKill(PdLeaderKillParams {})).await;
    assert_eq!(tikv.pd_requests(), [(4, Seen::get("/pd/api/v1/members"))]);
    let pid = tikv.lab.running_pid(5).unwrap();
    assert_eq!(
        record,
        CleanupRecord::PdLeaderKill {
            lab_dir: lab_dir.clone(),
            node: 5,
            member: "pd2".into(),
            pid
        }
    );
    faults::apply(&tikv.subject, &tikv.lab, &record)
        .await
        .unwrap();
    assert!(!running(&tikv.lab, 5));
    assert!(running(&tikv.lab, 4) && running(&tikv.lab, 6));
    assert_eq!(tikv.leftovers(&record).await, ["node 5 is down"]);
    faults::cleanup(&tikv.subject, &mut tikv.lab, &record)
        .await
        .unwrap();
    assert!(running(&tikv.lab, 5));
    assert_ne!(tikv.lab.running_pid(5), Some(pid));
    assert_eq!(tikv.argv(5).await[2], "pd2");
    assert!(tikv.leftovers(&record).await.is_empty());

    // region_unavailable: a majority of the stores (2 of 3), drawn from the seed, killed; no
    // PD member touched; cleanup starts both again.
    let record = plan(
        &tikv,
        ChaosSpec::RegionUnavailable(RegionUnavailableParams::default()),
    )
    .await;
    let CleanupRecord::RegionUnavailable { stores, .. } = &record else {
        panic!("{record:?}");
    };
    assert_eq!(stores.len(), 2);
    assert!(
        stores
            .iter()
            .all(|(node, pid)| (1..=3).contains(node) && tikv.lab.running_pid(*node) == Some(*pid))
    );
    assert_eq!(
        record,
        plan(
            &tikv,
            ChaosSpec::RegionUnavailable(RegionUnavailableParams::default())
        )
        .await
    );
    faults::apply(&tikv.subject, &tikv.lab, &record)
        .await
        .unwrap();
    for (node, _) in stores {
        assert!(!running(&tikv.lab, *node));
    }
    assert!((4..=6).all(|pd| running(&tikv.lab, pd)));
    assert_eq!(tikv.leftovers(&record).await.len(), 2);
    faults::cleanup(&tikv.subject, &mut tikv.lab, &record)
        .await
        .unwrap();
    assert!((1..=6).all(|node| running(&tikv.lab, node)));
    assert!(tikv.leftovers(&record).await.is_empty());

    // The generic faults reach PD members by choice: node_kill of the PD leader.
    let record = plan(
        &tikv,
        ChaosSpec::NodeKill(schemas::campaign::NodeKillParams {
            target: Target::Choice(TargetChoice::PdLeader),
        }),
    )
    .await;
    assert!(
        matches!(record, CleanupRecord::NodeKill { node: 5, .. }),
        "{record:?}"
    );
    faults::apply(&tikv.subject, &tikv.lab, &record)
        .await
        .unwrap();
    faults::cleanup(&tikv.subject, &mut tikv.lab, &record)
        .await
        .unwrap();
    assert!(running(&tikv.lab, 5));

    // Records that name the wrong kind of node are refused before anything is done.
    let forged = CleanupRecord::PdLeaderKill {
        lab_dir: lab_dir.clone(),
        node: 1,
        member: "pd1".into(),
        pid: 1,
    };
    let error = faults::cleanup(&tikv.subject, &mut tikv.lab, &forged)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("node 1, which is no PD member"),
        "{error}"
    );
    let forged = CleanupRecord::LeaderEvict {
        lab_dir,
        node: 4,
        store_id: 1,
    };
    let error = faults::cleanup(&tikv.subject, &mut tikv.lab, &forged)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("node 4, which is no store"),
        "{error}"
    );
}

/// PD's faults need PD: on etcd they are refused with the reason.
#[tokio::test]
async fn etcd_has_no_pd_to_target() {
    chaos::lab::set_eval_binary(env!("CARGO_BIN_EXE_evalctl"));
    let dir = tempfile::tempdir().unwrap();
    let lab = chaos::etcd::EtcdLab::create(dir.path(), None, 3, Isolation::Loopback)
        .await
        .unwrap();
    let error = faults::plan(
        &chaos::etcd::EtcdSubject,
        &lab.lab,
        &ChaosSpec::NodeKill(schemas::campaign::NodeKillParams {
            target: Target::Choice(TargetChoice::PdRandom),
        }),
        1,
    )
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("etcd has no PD members to target"),
        "{error}"
    );
    let error = faults::plan(
        &chaos::etcd::EtcdSubject,
        &lab.lab,
        &ChaosSpec::LeaderEvict(LeaderEvictParams::default()),
        1,
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("etcd has no stores"), "{error}");
    lab.lab.destroy().await.unwrap();
}
