//! The reference operator's view of TiKV, from the PD answers real servers wrote
//! (`chaos/testdata/pd/`, sources in its README).

mod support;

use agents::pd_probe::{
    Nodes, PdAnswers, TikvObservation, evaluate, evaluate_on, member_name_for, store_id_for,
};
use support::{lab_endpoints, recorded, recorded_onto_lab};

/// No recording of an empty region check exists: PD's handler writes this when no region has
/// the problem.
const NO_REGIONS: &str = r#"{"count":0,"regions":[]}"#;
/// What PD's router answers a path it has no handler for (no evict-leader scheduler exists).
const NO_SCHEDULER: &str = "404 page not found";

fn keys(answers: &PdAnswers) -> Vec<String> {
    evaluate(answers)
        .into_iter()
        .map(|violation| violation.key)
        .collect()
}

#[test]
fn a_healthy_cluster_opens_no_ticket() {
    let answers = PdAnswers {
        health: recorded("health.1.json"),
        members: recorded("members.2.json"),
        stores: recorded("stores.1.json"),
        miss_peer: NO_REGIONS.into(),
        down_peer: NO_REGIONS.into(),
        evicted: NO_SCHEDULER.into(),
    };
    assert_eq!(keys(&answers), Vec::<String>::new());
}

#[test]
fn each_recorded_problem_is_one_ticket_with_its_facts() {
    // The v8.1 members without their leader: the one change made to a recording here.
    let mut members: serde_json::Value = serde_json::from_str(&recorded("members.2.json")).unwrap();
    members.as_object_mut().unwrap().remove("leader");
    let answers = PdAnswers {
        health: recorded("health.2.json"),
        members: members.to_string(),
        stores: recorded("stores.6.json"),
        miss_peer: NO_REGIONS.into(),
        down_peer: recorded("regions-check-down-peer.1.json"),
        evicted: NO_SCHEDULER.into(),
    };
    let violations = evaluate(&answers);
    let keys: Vec<&str> = violations.iter().map(|v| v.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "pd_member_unhealthy:pd3",
            "pd_member_unhealthy:pd2",
            "pd_member_unhealthy:pd1",
            "pd_no_leader:cluster",
            "store_down:s1",
            "store_offline:s4",
            "regions_down_peer:cluster",
        ]
    );
    // Ids stay exact (above 2^53) in what the ticket records.
    assert_eq!(
        violations[0].snapshot["member_id"].as_u64(),
        Some(7_843_861_206_316_908_817)
    );
    assert_eq!(
        violations[4].message,
        "TiKV store 1 (192.168.2.118:20160) is Down"
    );
    assert_eq!(violations[4].invariant, "store_down");
    assert_eq!(violations[4].store_id, "s1");
    assert_eq!(violations[6].message, "1 regions have a down peer");
}

/// A TiFlash store is not a TiKV store: its state opens no TiKV ticket. (Every store of the v8.1
/// recording is marked Down here.)
#[test]
fn tiflash_stores_are_left_out() {
    let mut stores: serde_json::Value = serde_json::from_str(&recorded("stores.1.json")).unwrap();
    for entry in stores["stores"].as_array_mut().unwrap() {
        entry["store"]["state_name"] = "Down".into();
    }
    let answers = PdAnswers {
        health: recorded("health.1.json"),
        members: recorded("members.2.json"),
        stores: stores.to_string(),
        miss_peer: NO_REGIONS.into(),
        down_peer: NO_REGIONS.into(),
        evicted: NO_SCHEDULER.into(),
    };
    assert_eq!(
        keys(&answers),
        ["store_down:s4", "store_down:s1", "store_down:s5"]
    );
}

/// A lab of three stores (nodes 1 to 3, by their status addresses) and three PD members (nodes 4
/// to 6), as the worker tells the operator.
fn lab_nodes() -> Nodes {
    let endpoints = lab_endpoints();
    Nodes {
        pd_endpoints: endpoints[3..].to_vec(),
        endpoints,
    }
}

fn healthy_lab() -> PdAnswers {
    PdAnswers {
        health: recorded_onto_lab("health.1.json"),
        members: recorded_onto_lab("members.2.json"),
        stores: recorded_onto_lab("stores.1.json"),
        miss_peer: NO_REGIONS.into(),
        down_peer: NO_REGIONS.into(),
        evicted: NO_SCHEDULER.into(),
    }
}

/// Each ticket names the lab node to act on: a store by its status address, a PD member by its
/// client URL; a store that does not answer its status address and a store PD's evict-leader
/// scheduler holds are tickets of their own.
#[test]
fn tickets_name_the_lab_node_of_each_store_and_member() {
    let nodes = lab_nodes();
    let healthy = TikvObservation {
        answers: healthy_lab(),
        unreachable_stores: Vec::new(),
    };
    assert!(evaluate_on(&healthy, &nodes).is_empty());

    let mut answers = healthy_lab();
    // State changes of the recorded cluster: one member unhealthy, one store Disconnected.
    let mut health: serde_json::Value = serde_json::from_str(&answers.health).unwrap();
    health[2]["health"] = false.into();
    answers.health = health.to_string();
    let mut stores: serde_json::Value = serde_json::from_str(&answers.stores).unwrap();
    stores["stores"][0]["store"]["state_name"] = "Disconnected".into();
    answers.stores = stores.to_string();
    answers.evicted = recorded("scheduler-config-evict-leader-list.1.json");
    let observation = TikvObservation {
        answers,
        unreachable_stores: vec![(
            3,
            "curl: (7) Failed to connect to 10.250.1.3 port 2379".into(),
        )],
    };
    let found: Vec<(String, String)> = evaluate_on(&observation, &nodes)
        .into_iter()
        .map(|violation| (violation.key, violation.store_id))
        .collect();
    let found: Vec<(&str, &str)> = found
        .iter()
        .map(|(key, store)| (key.as_str(), store.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("pd_member_unhealthy:basic-0qt9e9", "n6"),
            ("store_down:s4", "n1"),
            ("store_unreachable:n3", "n3"),
            // Store 1 is at node 2; the recording also holds store 2, which this cluster lacks.
            ("leaders_evicted:s1", "n2"),
            ("leaders_evicted:s2", "s2"),
        ]
    );
}

#[test]
fn a_store_s_id_and_a_member_s_name_are_found_by_the_node_s_endpoint() {
    let answers = healthy_lab();
    assert_eq!(
        store_id_for(&answers.stores, "http://10.250.1.2:2379"),
        Some(1)
    );
    assert_eq!(
        store_id_for(&answers.stores, "http://10.250.1.5:2379"),
        None
    );
    assert_eq!(
        member_name_for(&answers.members, "http://10.250.1.5:2379").as_deref(),
        Some("basic-53pe89")
    );
    assert_eq!(
        member_name_for(&answers.members, "http://10.250.1.1:2379"),
        None
    );
}
