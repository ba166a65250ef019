//! What the reference operator sees of a TiKV cluster: PD's answers as `curl` prints them (the
//! commands of [`pd_commands`]), each store's status address answering or not, and which
//! invariants they break (the pure [`evaluate`], and [`evaluate_on`], which also names the lab
//! node of each store and PD member so that the runbook can act on it). [`observe`] is the edge
//! that runs the commands.
//!
//! Invariants, each a ticket key: every PD member healthy (`pd_member_unhealthy:<name>`), PD has
//! a leader (`pd_no_leader:cluster`), every TiKV store (TiFlash left out) `Up`
//! (`store_down:s<id>` for Down and Disconnected, `store_offline:s<id>` for Offline and
//! Tombstone), no region misses a peer (`regions_miss_peer:cluster`) or has one down
//! (`regions_down_peer:cluster`). Ids are read as integers, exactly (PD's exceed 2^53). An answer
//! that is not PD's JSON breaks `pd_unreachable:cluster`.

use serde_json::{Value, json};

use crate::probe::Violation;

/// PD's answers, as the commands printed them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PdAnswers {
    pub health: String,
    pub members: String,
    pub stores: String,
    pub miss_peer: String,
    pub down_peer: String,
    /// The evict-leader scheduler's configuration (`scheduler-config/evict-leader-scheduler/
    /// list`); PD answers 404 or 500 while there is no such scheduler.
    pub evicted: String,
}

/// `curl` asking `url` (GET), its answer printed whatever its status, within 2 s; PD's
/// `/health` within 8 s, since PD asks every member in turn, each within 3 s, and a paused member
/// makes it slow (not wrong).
pub fn curl(url: String) -> Vec<String> {
    let seconds = if url.ends_with("/pd/api/v1/health") {
        "8"
    } else {
        "2"
    };
    vec![
        "curl".to_string(),
        "-sS".to_string(),
        "--max-time".to_string(),
        seconds.to_string(),
        url,
    ]
}

/// The stores, every state included.
pub const STORES_PATH: &str =
    "stores/check?state=up&state=disconnected&state=down&state=offline&state=tombstone";
/// The evict-leader scheduler's configuration.
pub const EVICTED_PATH: &str = "scheduler-config/evict-leader-scheduler/list";

/// The `curl` commands that ask PD at `endpoint` (`http://host:2379`) for [`PdAnswers`], in
/// their order.
pub fn pd_commands(endpoint: &str) -> [Vec<String>; 6] {
    let ask = |path: &str| curl(format!("{endpoint}/pd/api/v1/{path}"));
    [
        ask("health"),
        ask("members"),
        ask(STORES_PATH),
        ask("regions/check/miss-peer"),
        ask("regions/check/down-peer"),
        ask(EVICTED_PATH),
    ]
}

/// The lab's nodes as the operator is told them: every node's client endpoint (node N is the
/// Nth), and which of them are PD's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Nodes {
    pub endpoints: Vec<String>,
    pub pd_endpoints: Vec<String>,
}

impl Nodes {
    /// The node whose endpoint is `url` (`http://host:port`) or `host:port`.
    pub fn node_of(&self, address: &str) -> Option<u32> {
        self.endpoints
            .iter()
            .position(|endpoint| same_address(endpoint, address))
            .map(|index| index as u32 + 1)
    }

    /// The stores' endpoints (every node that is not PD's), by node.
    pub fn stores(&self) -> Vec<(u32, String)> {
        self.endpoints
            .iter()
            .enumerate()
            .filter(|(_, endpoint)| !self.pd_endpoints.contains(endpoint))
            .map(|(index, endpoint)| (index as u32 + 1, endpoint.clone()))
            .collect()
    }
}

/// What one look at the cluster found: PD's answers (from the first member whose health
/// answer is PD's JSON, else the last asked) and the stores whose status address did not answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TikvObservation {
    pub answers: PdAnswers,
    /// (node, what curl said) of every store that did not answer `GET /status`.
    pub unreachable_stores: Vec<(u32, String)>,
}

/// Asks PD (each member in turn until one answers) and every store's status address.
pub async fn observe(
    runner: &std::sync::Arc<dyn crate::runner::CommandRunner>,
    nodes: &Nodes,
) -> TikvObservation {
    let mut stores = tokio::task::JoinSet::new();
    for (node, endpoint) in nodes.stores() {
        let runner = runner.clone();
        stores.spawn(async move {
            let output = runner.run(&curl(format!("{endpoint}/status"))).await;
            (node, output)
        });
    }
    let mut answers = PdAnswers::default();
    for endpoint in &nodes.pd_endpoints {
        let [health, members, stores, miss, down, evicted] = pd_commands(endpoint);
        answers.health = runner.run(&health).await.output;
        if !serde_json::from_str::<Value>(&answers.health).is_ok_and(|value| value.is_array()) {
            continue;
        }
        answers.members = runner.run(&members).await.output;
        answers.stores = runner.run(&stores).await.output;
        answers.miss_peer = runner.run(&miss).await.output;
        answers.down_peer = runner.run(&down).await.output;
        answers.evicted = runner.run(&evicted).await.output;
        break;
    }
    let mut unreachable_stores = Vec::new();
    while let Some(answer) = stores.join_next().await {
        if let Ok((node, output)) = answer
            && !output.success()
        {
            unreachable_stores.push((node, output.output.trim().to_string()));
        }
    }
    unreachable_stores.sort();
    TikvObservation {
        answers,
        unreachable_stores,
    }
}

/// [`evaluate`] with each store's and PD member's lab node as the ticket's `store_id` (`n2`),
/// the stores that do not answer their status address (`store_unreachable:nN`), and the stores
/// PD's evict-leader scheduler holds (`leaders_evicted:s<id>`).
pub fn evaluate_on(observation: &TikvObservation, nodes: &Nodes) -> Vec<Violation> {
    let answers = &observation.answers;
    let stores: Value = serde_json::from_str(&answers.stores).unwrap_or_default();
    let members: Value = serde_json::from_str(&answers.members).unwrap_or_default();
    let store_node = |id: u64| -> Option<u32> {
        let entry = stores["stores"]
            .as_array()?
            .iter()
            .find(|entry| entry["store"]["id"].as_u64() == Some(id))?;
        nodes.node_of(entry["store"]["status_address"].as_str()?)
    };
    let member_node = |name: &str| -> Option<u32> {
        let member = members["members"]
            .as_array()?
            .iter()
            .find(|member| member["name"].as_str() == Some(name))?;
        member["client_urls"]
            .as_array()?
            .iter()
            .find_map(|url| nodes.node_of(url.as_str()?))
    };
    let mut violations = evaluate(answers);
    for violation in &mut violations {
        let (_, subject) = violation.key.split_once(':').unwrap_or(("", ""));
        let node = match violation.invariant.as_str() {
            "store_down" | "store_offline" => subject
                .strip_prefix('s')
                .and_then(|id| id.parse().ok())
                .and_then(store_node),
            "pd_member_unhealthy" => member_node(subject),
            _ => None,
        };
        if let Some(node) = node {
            violation.store_id = format!("n{node}");
            violation.snapshot["node"] = json!(node);
        }
    }
    for (node, error) in &observation.unreachable_stores {
        violations.push(violation(
            format!("store_unreachable:n{node}"),
            "critical",
            format!("TiKV store at node {node} does not answer its status address: {error}"),
            json!({"node": node, "error": error}),
        ));
    }
    let evicted: Value = serde_json::from_str(&answers.evicted).unwrap_or_default();
    let mut ids: Vec<u64> = evicted["store-id-ranges"]
        .as_object()
        .map(|ranges| ranges.keys().filter_map(|id| id.parse().ok()).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    for id in ids {
        let mut evicted = violation(
            format!("leaders_evicted:s{id}"),
            "warning",
            format!("PD's evict-leader-scheduler keeps every region leader off TiKV store {id}"),
            json!({"store_id": id, "node": store_node(id)}),
        );
        if let Some(node) = store_node(id) {
            evicted.store_id = format!("n{node}");
        }
        violations.push(evicted);
    }
    violations
}

/// The id of the store whose status address is `endpoint`, from PD's store list.
pub fn store_id_for(stores: &str, endpoint: &str) -> Option<u64> {
    let stores: Value = serde_json::from_str(stores.trim()).ok()?;
    stores["stores"].as_array()?.iter().find_map(|entry| {
        let store = &entry["store"];
        (store["state_name"] != "Tombstone"
            && same_address(store["status_address"].as_str()?, endpoint))
        .then(|| store["id"].as_u64())?
    })
}

/// Whether two addresses name the same `host:port`, with or without a scheme (`http://`) or a
/// trailing slash: PD lists stores' status addresses bare and members' URLs with a scheme.
fn same_address(a: &str, b: &str) -> bool {
    let bare = |url: &str| {
        url.split_once("://")
            .map_or(url, |(_, rest)| rest)
            .trim_end_matches('/')
            .to_string()
    };
    bare(a) == bare(b)
}

/// The name of the PD member whose client URLs include `endpoint`, from PD's member list.
pub fn member_name_for(members: &str, endpoint: &str) -> Option<String> {
    let members: Value = serde_json::from_str(members.trim()).ok()?;
    members["members"].as_array()?.iter().find_map(|member| {
        member["client_urls"]
            .as_array()?
            .iter()
            .any(|url| url.as_str().is_some_and(|url| same_address(url, endpoint)))
            .then(|| member["name"].as_str().map(str::to_string))?
    })
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
        assert_eq!(commands.len(), 6);
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
