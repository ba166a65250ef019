//! PD's HTTP API against the responses real PD servers wrote (`testdata/pd/`, where each comes
//! from is in its README), read as they are and replayed by a small HTTP server that records
//! every request, so that each call's exact requests are asserted.

use std::path::PathBuf;

use chaos::tikv::pd::{Pd, PdView, Region, RegionCheck, evicted_stores};
use testkit::replay::{Replay, Seen};

fn recorded(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/pd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn parse<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&recorded(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// No recording of an empty region check exists (see the README): what PD answers when no region
/// has the problem, as its handler builds it (`{"count": 0, "regions": []}`).
fn no_regions() -> RegionCheck {
    RegionCheck {
        count: 0,
        regions: Vec::new(),
    }
}

#[test]
fn every_recorded_answer_reads_with_its_ids_exact() {
    let members: chaos::tikv::pd::Members = parse("members.1.json");
    assert_eq!(members.members[0].member_id, 15_980_934_438_217_023_866);
    assert_eq!(members.header.cluster_id, 7_637_715_636_087_433_014);
    assert_eq!(members.leader.unwrap().name, "pd");
    let members: chaos::tikv::pd::Members = parse("members.2.json");
    assert_eq!(
        members
            .members
            .iter()
            .map(|member| member.member_id)
            .collect::<Vec<_>>(),
        [
            1_428_427_862_495_950_874,
            2_548_954_049_902_922_308,
            12_818_309_996_638_325_969
        ]
    );
    assert_eq!(members.leader.unwrap().member_id, 2_548_954_049_902_922_308);
    let health: Vec<chaos::tikv::pd::MemberHealth> = parse("health.1.json");
    assert_eq!(health[2].member_id, 12_818_309_996_638_325_969);
    assert!(health.iter().all(|member| member.health));
    let health: Vec<chaos::tikv::pd::MemberHealth> = parse("health.2.json");
    assert!(health.iter().all(|member| !member.health));

    let stores: chaos::tikv::pd::Stores = parse("stores.1.json");
    assert_eq!(stores.count, 4);
    assert!(stores.stores.iter().all(|info| info.store.state.is_none()));
    assert_eq!(
        stores
            .stores
            .iter()
            .filter(|info| info.store.is_tiflash())
            .count(),
        1
    );
    let stores: chaos::tikv::pd::Stores = parse("stores.6.json");
    let states: Vec<(u64, Option<i32>, &str)> = stores
        .stores
        .iter()
        .map(|info| {
            (
                info.store.id,
                info.store.state,
                info.store.state_name.as_str(),
            )
        })
        .collect();
    assert_eq!(states, [(1, Some(0), "Down"), (4, Some(1), "Offline")]);
    let none: chaos::tikv::pd::Stores = parse("stores-check.down.1.json");
    assert_eq!(none.count, 0);
    for name in [
        "store.1.json",
        "store.3.json",
        "store.4.json",
        "store.5.json",
        "store.6.json",
    ] {
        let _: chaos::tikv::pd::StoreInfo = parse(name);
    }

    let down: RegionCheck = parse("regions-check-down-peer.1.json");
    assert_eq!(down.count, 1);
    assert_eq!(down.regions[0].down_peers[0].peer.store_id, 2);
    assert_eq!(down.regions[0].down_peers[0].down_seconds, 3600);
    let missing: Vec<Region> = parse("regions-check-miss-peer.1.regions-array-only.json");
    assert_eq!(missing[0].peers.len(), 1);

    let schedulers: Vec<String> = parse("schedulers.2.json");
    assert!(schedulers.contains(&"evict-leader-scheduler".to_string()));
    let schedulers: Vec<String> = parse("schedulers.1.json");
    assert!(
        schedulers
            .iter()
            .any(|name| name.starts_with("evict-leader-scheduler-"))
    );
    let list = |name: &str| evicted_stores(&parse(name));
    assert_eq!(list("scheduler-config-evict-leader-list.1.json"), [1, 2]);
    assert_eq!(list("scheduler-config-evict-leader-list.2.json"), [60]);
    assert_eq!(
        list("scheduler-config-evict-leader-list.3.json"),
        Vec::<u64>::new()
    );
}

/// The v8.1 cluster the TiDB Operator recorded (3 PD members, 3 TiKV stores and a TiFlash
/// store) is healthy; each recorded problem makes it unhealthy and says so.
#[test]
fn health_is_read_from_pd_s_view() {
    let healthy = PdView {
        members: parse("members.2.json"),
        health: parse("health.1.json"),
        stores: parse("stores.1.json"),
        miss_peer: no_regions(),
        down_peer: no_regions(),
    };
    let health = healthy.health(3, 3);
    assert!(health.healthy, "{health:?}");
    assert_eq!(health.leader.as_deref(), Some("basic-53pe89"));
    // The TiFlash store is not one of the TiKV stores: four would be too many to ask for.
    assert!(!healthy.health(3, 4).healthy);

    let mut sick = healthy.clone();
    sick.health = parse("health.2.json");
    sick.stores = parse("stores.6.json");
    sick.down_peer = parse("regions-check-down-peer.1.json");
    sick.members.leader = None;
    let health = sick.health(3, 3);
    assert!(!health.healthy);
    assert_eq!(
        health.reasons,
        [
            "PD members not healthy: pd3, pd2, pd1",
            "PD has no leader",
            "store 1 is Down",
            "store 4 is Offline",
            "2 of 3 TiKV stores",
            "1 regions have down peers",
        ],
        "{health:?}"
    );
}

#[test]
fn state_capture_names_every_store_in_bytes_and_the_pd_leader() {
    let view = PdView {
        members: parse("members.2.json"),
        health: parse("health.1.json"),
        stores: parse("stores.1.json"),
        miss_peer: no_regions(),
        down_peer: parse("regions-check-down-peer.1.json"),
    };
    let state = view.state();
    assert_eq!(state["pd_leader"], "basic-53pe89");
    assert_eq!(state["cluster_id"], 7_452_180_154_224_557_728_u64);
    assert_eq!(
        state["pd_members"][2]["member_id"],
        12_818_309_996_638_325_969_u64
    );
    assert_eq!(state["pd_members"][2]["healthy"], true);
    let first = &state["stores"][0];
    assert_eq!(first["id"], 4);
    assert_eq!(first["state"], "Up");
    assert_eq!(first["engine"], "tikv");
    // "311.7GiB" and "222.1GiB".
    assert_eq!(first["capacity_bytes"], 334_685_326_541_u64);
    assert_eq!(first["available_bytes"], 238_478_059_110_u64);
    assert_eq!(first["region_count"], 60);
    assert_eq!(first["leader_count"], 17);
    assert_eq!(state["stores"][1]["id"], 20);
    assert_eq!(state["stores"][1]["engine"], "tiflash");
    assert_eq!(state["regions_down_peer"], 1);
}

fn get(path: &str) -> Seen {
    Seen::get(path)
}

const STORES_CHECK: &str =
    "/pd/api/v1/stores/check?state=up&state=disconnected&state=down&state=offline&state=tombstone";

/// The view is five GETs, one of each; `/stores/check` asks for every state, so that Tombstone
/// stores are seen too.
#[tokio::test]
async fn the_view_asks_pd_for_members_health_every_store_and_region_checks() {
    let down_peer = recorded("regions-check-down-peer.1.json");
    let replay = Replay::start(&[
        ("GET", "/pd/api/v1/members", 200, recorded("members.2.json")),
        ("GET", "/pd/api/v1/health", 200, recorded("health.1.json")),
        ("GET", STORES_CHECK, 200, recorded("stores.1.json")),
        (
            "GET",
            "/pd/api/v1/regions/check/miss-peer",
            200,
            serde_json::to_string(&no_regions()).unwrap(),
        ),
        ("GET", "/pd/api/v1/regions/check/down-peer", 200, down_peer),
    ])
    .await;
    let view = Pd::new(replay.addr).view().await.unwrap();
    assert_eq!(view.stores.count, 4);
    let health = view.health(3, 3);
    assert_eq!(health.reasons, ["1 regions have down peers"]);
    let mut expected = vec![
        get("/pd/api/v1/health"),
        get("/pd/api/v1/members"),
        get("/pd/api/v1/regions/check/down-peer"),
        get("/pd/api/v1/regions/check/miss-peer"),
        get(STORES_CHECK),
    ];
    expected.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(replay.sorted(), expected);
}

/// A PD without `/stores/check` (before 7.x) answers 404: the stores are asked again with the
/// numeric states of `/stores`, Tombstone (2) included.
#[tokio::test]
async fn an_older_pd_is_asked_for_its_stores_by_number() {
    let replay = Replay::start(&[(
        "GET",
        "/pd/api/v1/stores?state=0&state=1&state=2",
        200,
        recorded("stores.6.json"),
    )])
    .await;
    let stores = Pd::new(replay.addr).stores().await.unwrap();
    assert_eq!(stores.count, 2);
    assert_eq!(
        replay.sorted(),
        [
            get(
                "/pd/api/v1/stores/check?state=up&state=disconnected&state=down&state=offline&state=tombstone"
            ),
            get("/pd/api/v1/stores?state=0&state=1&state=2"),
        ]
    );
}

/// Evicting leaders adds the scheduler with the store's id, in PD's own body; removing it names
/// the store's scheduler and is done once it is gone (PD answers 404 then); the list is read
/// from the scheduler's configuration.
#[tokio::test]
async fn the_evict_leader_scheduler_is_added_listed_and_removed_by_store() {
    let replay = Replay::start(&[
        (
            "POST",
            "/pd/api/v1/schedulers",
            200,
            "\"The scheduler is created.\"".to_string(),
        ),
        (
            "GET",
            "/pd/api/v1/scheduler-config/evict-leader-scheduler/list",
            200,
            recorded("scheduler-config-evict-leader-list.2.json"),
        ),
        (
            "DELETE",
            "/pd/api/v1/schedulers/evict-leader-scheduler-60",
            200,
            "null".to_string(),
        ),
    ])
    .await;
    let pd = Pd::new(replay.addr);
    pd.add_evict_leader(60).await.unwrap();
    assert_eq!(pd.evict_leader_stores().await.unwrap(), [60]);
    pd.remove_evict_leader(60).await.unwrap();
    // Already gone: PD answers 404, which a second cleanup takes as done.
    pd.remove_evict_leader(61).await.unwrap();
    let seen = replay.requests();
    assert_eq!(
        seen,
        [
            Seen {
                method: "POST".into(),
                path: "/pd/api/v1/schedulers".into(),
                body: r#"{"name":"evict-leader-scheduler","store_id":60}"#.into(),
            },
            get("/pd/api/v1/scheduler-config/evict-leader-scheduler/list"),
            Seen {
                method: "DELETE".into(),
                path: "/pd/api/v1/schedulers/evict-leader-scheduler-60".into(),
                body: String::new(),
            },
            Seen {
                method: "DELETE".into(),
                path: "/pd/api/v1/schedulers/evict-leader-scheduler-61".into(),
                body: String::new(),
            },
        ]
    );
}
