//! What the reference operator sees of a TiKV cluster: PD's answers as `curl` prints them (the
//! commands of [`pd_commands`], which the monitor will log like any other), and which invariants
//! they break (the pure [`evaluate`]). The monitor loop and the TiKV runbook that act on these
//! tickets are not built yet (issue 17); this is what they will read.
//!
//! Invariants, each a ticket key: every PD member healthy (`pd_member_unhealthy:<name>`), PD has
//! a leader (`pd_no_leader:cluster`), every TiKV store (TiFlash left out) `Up`
//! (`store_down:s<id>` for Down and Disconnected, `store_offline:s<id>` for Offline and
//! Tombstone), no region misses a peer (`regions_miss_peer:cluster`) or has one down
//! (`regions_down_peer:cluster`). Ids are read as integers, exactly (PD's exceed 2^53). An answer
//! that is not PD's JSON breaks `pd_unreachable:cluster`.

use serde_json::{Value, json};

use crate::probe::Violation;

/// PD's five answers, as the commands printed them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PdAnswers {
    pub health: String,
    pub members: String,
    pub stores: String,
    pub miss_peer: String,
    pub down_peer: String,
}

/// The `curl` commands that ask PD at `endpoint` (`http://host:2379`) for [`PdAnswers`], in
/// their order.
pub fn pd_commands(endpoint: &str) -> [Vec<String>; 5] {
    let ask = |path: &str| {
        vec![
            "curl".to_string(),
            "-sS".to_string(),
            "--max-time".to_string(),
            "2".to_string(),
            format!("{endpoint}/pd/api/v1/{path}"),
        ]
    };
    [
        ask("health"),
        ask("members"),
        ask("stores/check?state=up&state=disconnected&state=down&state=offline&state=tombstone"),
        ask("regions/check/miss-peer"),
        ask("regions/check/down-peer"),
    ]
}

fn violation(key: String, severity: &str, message: String, snapshot: Value) -> Violation {
    let (invariant, store_id) = key.split_once(':').unwrap_or((key.as_str(), "cluster"));
    Violation {
        invariant: invariant.to_string(),
        store_id: store_id.to_string(),
        key: key.clone(),
        severity: severity.to_string(),
        message,
        snapshot,
    }
}

/// The invariants PD's answers break.
pub fn evaluate(answers: &PdAnswers) -> Vec<Violation> {
    let parse = |text: &str| serde_json::from_str::<Value>(text).ok();
    let (Some(health), Some(members), Some(stores)) = (
        parse(&answers.health).filter(Value::is_array),
        parse(&answers.members).filter(Value::is_object),
        parse(&answers.stores).filter(|stores| stores["stores"].is_array()),
    ) else {
        return vec![violation(
            "pd_unreachable:cluster".into(),
            "critical",
            "PD does not answer its API with its JSON".into(),
            json!({
                "health": answers.health.chars().take(300).collect::<String>(),
                "members": answers.members.chars().take(300).collect::<String>(),
                "stores": answers.stores.chars().take(300).collect::<String>(),
            }),
        )];
    };
    let mut violations = Vec::new();
    for member in health.as_array().into_iter().flatten() {
        if member["health"].as_bool() != Some(true) {
            let name = member["name"].as_str().unwrap_or("?");
            violations.push(violation(
                format!("pd_member_unhealthy:{name}"),
                "critical",
                format!("PD member {name} is not healthy"),
                json!({"member_id": member["member_id"], "client_urls": member["client_urls"]}),
            ));
        }
    }
    if !members["leader"].is_object() {
        violations.push(violation(
            "pd_no_leader:cluster".into(),
            "critical",
            "PD has no leader".into(),
            json!({"members": members["members"].as_array().map_or(0, Vec::len)}),
        ));
    }
    for entry in stores["stores"].as_array().into_iter().flatten() {
        let store = &entry["store"];
        let tiflash = store["labels"].as_array().is_some_and(|labels| {
            labels
                .iter()
                .any(|label| label["key"] == "engine" && label["value"] == "tiflash")
        });
        let (Some(id), Some(state)) = (store["id"].as_u64(), store["state_name"].as_str()) else {
            continue;
        };
        let key = match state {
            _ if tiflash => continue,
            "Up" => continue,
            "Down" | "Disconnected" => format!("store_down:s{id}"),
            _ => format!("store_offline:s{id}"),
        };
        violations.push(violation(
            key,
            "critical",
            format!(
                "TiKV store {id} ({}) is {state}",
                store["address"].as_str().unwrap_or("?")
            ),
            json!({
                "store_id": id, "address": store["address"], "state": state,
                "last_heartbeat_ts": entry["status"]["last_heartbeat_ts"],
                "region_count": entry["status"]["region_count"],
                "leader_count": entry["status"]["leader_count"],
            }),
        ));
    }
    for (text, invariant, what) in [
        (&answers.miss_peer, "regions_miss_peer", "miss a peer"),
        (&answers.down_peer, "regions_down_peer", "have a down peer"),
    ] {
        let count = parse(text).and_then(|check| check["count"].as_u64());
        if count.is_some_and(|count| count > 0) {
            violations.push(violation(
                format!("{invariant}:cluster"),
                "warning",
                format!("{} regions {what}", count.unwrap_or(0)),
                json!({"count": count}),
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commands_ask_for_every_store_state() {
        let commands = pd_commands("http://10.250.1.1:2379");
        assert_eq!(
            commands[2],
            [
                "curl",
                "-sS",
                "--max-time",
                "2",
                "http://10.250.1.1:2379/pd/api/v1/stores/check?state=up&state=disconnected&state=down&state=offline&state=tombstone"
            ]
        );
    }

    #[test]
    fn an_answer_that_is_not_pd_s_breaks_one_invariant() {
        let answers = PdAnswers {
            health: "curl: (7) Failed to connect".into(),
            ..PdAnswers::default()
        };
        let keys: Vec<String> = evaluate(&answers).into_iter().map(|v| v.key).collect();
        assert_eq!(keys, ["pd_unreachable:cluster"]);
    }
}
