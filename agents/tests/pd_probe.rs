//! The reference operator's view of TiKV, from the PD answers real servers wrote
//! (`chaos/testdata/pd/`, sources in its README).

use agents::pd_probe::{PdAnswers, evaluate};

fn recorded(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../chaos/testdata/pd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// No recording of an empty region check exists: PD's handler writes this when no region has
/// the problem.
const NO_REGIONS: &str = r#"{"count":0,"regions":[]}"#;

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
    };
    assert_eq!(
        keys(&answers),
        ["store_down:s4", "store_down:s1", "store_down:s5"]
    );
}
