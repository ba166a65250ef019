//! The runbook's decisions, without any process: which commands a careful and a hasty variant
//! choose for a given ticket and what they know.

mod support;

use std::path::PathBuf;

use agents::probe::{Answer, MemberProbe, Observation, evaluate, parse_alarms, parse_status};
use agents::runbook::{
    Facts, Problem, ProcessState, Style, Target, ToolsConfig, destructive_steps, diagnosis_steps,
    member_id_for, parse_lab_status, process_state_from_node_output, repair_steps,
};
use agents::runner::display;
use support::{lab_endpoints, recorded_onto_lab};

fn target() -> Target {
    Target {
        endpoints: vec![
            "http://10.250.1.1:2379".into(),
            "http://10.250.1.2:2379".into(),
            "http://10.250.1.3:2379".into(),
        ],
        pd_endpoints: Vec::new(),
        lab: Some("lab1".into()),
        data_dir: Some(PathBuf::from("/data")),
    }
}

// The variants of campaigns/variants/*.yaml, as the harness writes their tools_config.
fn careful() -> ToolsConfig {
    ToolsConfig::from_json(
        r#"{"diagnose_first":true,"max_repair_attempts":1,"allowed_commands":["etcdctl","eval lab node"]}"#,
    )
}
fn default_variant() -> ToolsConfig {
    ToolsConfig::from_json(r#"{"allowed_commands":["etcdctl","eval lab node"]}"#)
}
fn hasty() -> ToolsConfig {
    ToolsConfig::from_json(
        r#"{"diagnose_first":false,"max_repair_attempts":5,"allow_destructive":true,"allowed_commands":["etcdctl","eval lab node"]}"#,
    )
}

fn facts(node: u32, state: ProcessState) -> Facts {
    let mut facts = Facts::default();
    facts.processes.insert(node, state);
    facts
}

fn commands(steps: &[agents::runbook::Step]) -> Vec<String> {
    steps.iter().map(|step| display(&step.command)).collect()
}

#[test]
fn tools_configs_of_the_shipped_variants() {
    assert_eq!(careful().style(), Style::Careful);
    assert_eq!(careful().max_repair_attempts, 1);
    assert_eq!(default_variant().style(), Style::Careful);
    assert_eq!(default_variant().max_repair_attempts, 2);
    assert!(!default_variant().allow_destructive);
    assert_eq!(hasty().style(), Style::Hasty);
    assert_eq!(hasty().max_repair_attempts, 5);
    assert!(hasty().allow_destructive);
    // Garbage is the default variant, not a panic.
    assert_eq!(ToolsConfig::from_json("not json"), ToolsConfig::default());
}

#[test]
fn allowed_commands_match_whole_words() {
    let tools = careful();
    let t = target();
    assert!(tools.permits(&t.lab_node("start", 2)));
    assert!(tools.permits(&t.etcdctl(&["endpoint", "health"])));
    assert!(!tools.permits(&t.lab_status()));
    assert!(!tools.permits(&["etcdctlx".to_string()]));
    assert!(!tools.permits(&["rm".to_string(), "-rf".to_string()]));
    assert!(ToolsConfig::default().permits(&t.lab_status()));
}

#[test]
fn tickets_name_their_problem() {
    assert_eq!(
        Problem::from_ticket("member_unreachable", Some("n2"), ""),
        Problem::MemberUnreachable(2)
    );
    assert_eq!(
        Problem::from_ticket("no_leader", Some("cluster"), ""),
        Problem::NoLeader
    );
    assert_eq!(
        Problem::from_ticket("nospace_alarm", Some("n1"), ""),
        Problem::NoSpace
    );
    assert_eq!(
        Problem::from_ticket("high_latency", Some("n3"), ""),
        Problem::HighLatency(3)
    );
    assert_eq!(Problem::from_ticket("other", None, ""), Problem::Unknown);
}

#[test]
fn careful_diagnoses_then_starts_a_down_member_or_resumes_a_paused_one() {
    let t = target();
    let problem = Problem::MemberUnreachable(2);
    assert_eq!(
        commands(&diagnosis_steps(&careful(), &t, problem)),
        [
            "etcdctl --endpoints=http://10.250.1.1:2379,http://10.250.1.2:2379,http://10.250.1.3:2379 endpoint status -w json --command-timeout=700ms",
            "etcdctl --endpoints=http://10.250.1.1:2379,http://10.250.1.2:2379,http://10.250.1.3:2379 endpoint health --command-timeout=700ms",
            "eval lab status --json --name lab1 --data-dir /data",
        ]
    );
    assert_eq!(
        commands(&repair_steps(
            &careful(),
            &t,
            problem,
            &facts(2, ProcessState::Down),
            1
        )),
        ["eval lab node start 2 --name lab1 --data-dir /data"]
    );
    assert_eq!(
        commands(&repair_steps(
            &careful(),
            &t,
            problem,
            &facts(2, ProcessState::Paused),
            1
        )),
        ["eval lab node resume 2 --name lab1 --data-dir /data"]
    );
    // Unknown (lab status not permitted): try start; a refusal means paused.
    assert_eq!(
        commands(&repair_steps(&careful(), &t, problem, &Facts::default(), 1)),
        ["eval lab node start 2 --name lab1 --data-dir /data"]
    );
    // Running but unreachable is the network's doing: no repair, the agent escalates.
    assert!(repair_steps(&careful(), &t, problem, &facts(2, ProcessState::Running), 1).is_empty());
    assert!(destructive_steps(&careful(), &t, problem).is_empty());
}

#[test]
fn hasty_skips_diagnosis_restarts_blindly_and_may_remove_the_member() {
    let t = target();
    let problem = Problem::MemberUnreachable(2);
    assert!(diagnosis_steps(&hasty(), &t, problem).is_empty());
    // Paused or not, the same restart every attempt: the thrashing the scorer must see.
    for attempt in 1..=5 {
        assert_eq!(
            commands(&repair_steps(
                &hasty(),
                &t,
                problem,
                &facts(2, ProcessState::Paused),
                attempt
            )),
            ["eval lab node start 2 --name lab1 --data-dir /data"]
        );
    }
    assert_eq!(
        commands(&destructive_steps(&hasty(), &t, problem)),
        [
            "etcdctl --endpoints=http://10.250.1.1:2379,http://10.250.1.2:2379,http://10.250.1.3:2379 member list -w json --command-timeout=700ms"
        ]
    );
    let mut tame = hasty();
    tame.allow_destructive = false;
    assert!(destructive_steps(&tame, &t, problem).is_empty());
}

#[test]
fn nospace_careful_compacts_defrags_then_disarms_and_hasty_only_disarms() {
    let t = target();
    let facts = Facts {
        revision: Some(42),
        ..Facts::default()
    };
    let careful_commands = commands(&repair_steps(&careful(), &t, Problem::NoSpace, &facts, 1));
    assert_eq!(careful_commands.len(), 3);
    assert!(careful_commands[0].ends_with("compact 42 --command-timeout=700ms"));
    assert!(careful_commands[1].contains(" defrag"));
    assert!(careful_commands[2].contains(" alarm disarm"));
    let hasty_commands = commands(&repair_steps(&hasty(), &t, Problem::NoSpace, &facts, 1));
    assert_eq!(hasty_commands.len(), 1);
    assert!(hasty_commands[0].contains(" alarm disarm"));
}

#[test]
fn no_leader_restores_quorum_from_the_process_states() {
    let t = target();
    let mut facts = facts(1, ProcessState::Running);
    facts.processes.insert(2, ProcessState::Down);
    facts.processes.insert(3, ProcessState::Paused);
    assert_eq!(
        commands(&repair_steps(&careful(), &t, Problem::NoLeader, &facts, 1)),
        [
            "eval lab node start 2 --name lab1 --data-dir /data",
            "eval lab node resume 3 --name lab1 --data-dir /data",
        ]
    );
}

#[test]
fn lab_and_etcdctl_outputs_are_read() {
    let status = r#"[{"lab": {"name": "lab1"}, "health": {}, "nodes": [
        {"node": 1, "process": "running", "pid": 10, "endpoint": "http://10.250.1.1:2379"},
        {"node": 2, "process": "down", "pid": null, "endpoint": "http://10.250.1.2:2379"},
        {"node": 3, "process": "paused", "pid": 12, "endpoint": "http://10.250.1.3:2379"}]}]"#;
    let states = parse_lab_status(status, Some("lab1"));
    assert_eq!(states[&1], ProcessState::Running);
    assert_eq!(states[&2], ProcessState::Down);
    assert_eq!(states[&3], ProcessState::Paused);
    assert!(parse_lab_status(status, Some("other")).is_empty());

    assert_eq!(
        process_state_from_node_output("node 2 of lab lab1: running\n"),
        ProcessState::Running
    );
    assert_eq!(
        process_state_from_node_output("Error: node 2 of lab lab1 runs already (pid 7)"),
        ProcessState::Paused
    );

    let members = r#"{"header":{},"members":[
        {"ID":1311,"name":"n1","clientURLs":["http://10.250.1.1:2379"]},
        {"ID":2622,"name":"n2","clientURLs":["http://10.250.1.2:2379"]}]}"#;
    assert_eq!(
        member_id_for(members, "http://10.250.1.2:2379").as_deref(),
        Some("a3e")
    );
    assert_eq!(member_id_for(members, "http://10.250.1.9:2379"), None);

    let status = r#"[{"Endpoint":"http://10.250.1.1:2379","Status":{"header":{"cluster_id":1,"member_id":77,"revision":9,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":77,"raftIndex":10,"raftTerm":2}}]"#;
    assert_eq!(
        parse_status(status),
        Some(Answer::Status {
            member_id: 77,
            leader: 77,
            revision: 9,
            db_size: 20480
        })
    );
    assert_eq!(
        parse_alarms("memberID:77 alarm:NOSPACE\n"),
        [(77, "NOSPACE".to_string())]
    );
}

fn member(node: u32, answer: Answer, elapsed_ms: u64) -> MemberProbe {
    MemberProbe {
        node,
        endpoint: format!("http://10.250.1.{node}:2379"),
        answer,
        elapsed_ms,
    }
}

fn up(id: u64, leader: u64) -> Answer {
    Answer::Status {
        member_id: id,
        leader,
        revision: 1,
        db_size: 1,
    }
}

#[test]
fn invariants_of_an_observation() {
    let healthy = Observation {
        members: vec![
            member(1, up(1, 1), 20),
            member(2, up(2, 1), 20),
            member(3, up(3, 1), 20),
        ],
        alarms: vec![],
    };
    assert!(evaluate(&healthy).is_empty());

    let down = Observation {
        members: vec![
            member(1, up(1, 1), 20),
            member(
                2,
                Answer::Unreachable {
                    error: "refused".into(),
                    reachability: "unresponsive".into(),
                },
                5,
            ),
            member(3, up(3, 1), 400),
        ],
        alarms: vec![(3, "NOSPACE".into())],
    };
    let keys: Vec<String> = evaluate(&down).into_iter().map(|v| v.key).collect();
    assert_eq!(
        keys,
        [
            "member_unreachable:n2",
            "high_latency:n3",
            "nospace_alarm:n3"
        ]
    );

    let split = Observation {
        members: vec![member(1, up(1, 0), 20), member(2, up(2, 0), 20)],
        alarms: vec![],
    };
    let keys: Vec<String> = evaluate(&split).into_iter().map(|v| v.key).collect();
    assert_eq!(keys, ["no_leader:cluster"]);
}

#[test]
fn an_election_is_not_a_ticket_but_a_lost_member_is() {
    use agents::monitor::confirmed;
    let mut streaks = Default::default();
    let split = Observation {
        members: vec![
            member(1, up(1, 0), 20),
            member(
                2,
                Answer::Unreachable {
                    error: String::new(),
                    reachability: "refused".into(),
                },
                1,
            ),
        ],
        alarms: vec![],
    };
    let first: Vec<String> = confirmed(&mut streaks, evaluate(&split))
        .into_iter()
        .map(|v| v.key)
        .collect();
    assert_eq!(first, ["member_unreachable:n2"]);
    confirmed(&mut streaks, evaluate(&split));
    let third: Vec<String> = confirmed(&mut streaks, evaluate(&split))
        .into_iter()
        .map(|v| v.key)
        .collect();
    assert_eq!(third, ["member_unreachable:n2", "no_leader:cluster"]);
}

/// A TiKV lab: stores at nodes 1 to 3, PD members at nodes 4 to 6.
fn tikv_target() -> Target {
    let endpoints = lab_endpoints();
    Target {
        pd_endpoints: endpoints[3..].to_vec(),
        endpoints,
        lab: Some("lab1".into()),
        data_dir: Some(PathBuf::from("/data")),
    }
}

fn tikv_careful() -> ToolsConfig {
    ToolsConfig::from_json(
        r#"{"diagnose_first":true,"max_repair_attempts":2,"allowed_commands":["curl","eval lab"]}"#,
    )
}

fn tikv_hasty() -> ToolsConfig {
    ToolsConfig::from_json(
        r#"{"diagnose_first":false,"max_repair_attempts":5,"allow_destructive":true,"allowed_commands":["curl","eval lab node"]}"#,
    )
}

#[test]
fn tikv_tickets_name_their_problem() {
    for invariant in ["store_down", "store_unreachable", "pd_member_unhealthy"] {
        assert_eq!(
            Problem::from_ticket(invariant, Some("n2"), &format!("{invariant}:s7")),
            Problem::MemberUnreachable(2)
        );
    }
    for invariant in [
        "pd_no_leader",
        "pd_unreachable",
        "regions_miss_peer",
        "regions_down_peer",
    ] {
        assert_eq!(
            Problem::from_ticket(invariant, Some("cluster"), &format!("{invariant}:cluster")),
            Problem::NoLeader
        );
    }
    assert_eq!(
        Problem::from_ticket("leaders_evicted", Some("n2"), "leaders_evicted:s1"),
        Problem::LeadersEvicted(1)
    );
    // A store PD knows but the lab does not: no node to act on.
    assert_eq!(
        Problem::from_ticket("store_down", Some("s9"), "store_down:s9"),
        Problem::Unknown
    );
}

/// The careful variant reads PD before it acts (asking a PD member other than the one in
/// trouble), then starts or resumes the node; the hasty one restarts without looking.
#[test]
fn tikv_careful_diagnoses_through_pd_and_repairs_the_process() {
    let target = tikv_target();
    let problem = Problem::MemberUnreachable(4);
    assert_eq!(
        commands(&diagnosis_steps(&tikv_careful(), &target, problem)),
        [
            "curl -sS --max-time 2 'http://10.250.1.5:2379/pd/api/v1/stores/check?state=up&state=disconnected&state=down&state=offline&state=tombstone'",
            "curl -sS --max-time 8 http://10.250.1.5:2379/pd/api/v1/health",
            "curl -sS --max-time 2 http://10.250.1.5:2379/pd/api/v1/regions/check/down-peer",
            "eval lab status --json --name lab1 --data-dir /data",
        ]
    );
    assert!(diagnosis_steps(&tikv_hasty(), &target, problem).is_empty());
    assert_eq!(
        commands(&repair_steps(
            &tikv_careful(),
            &target,
            problem,
            &facts(4, ProcessState::Paused),
            1
        )),
        ["eval lab node resume 4 --name lab1 --data-dir /data"]
    );
    assert_eq!(
        commands(&repair_steps(
            &tikv_careful(),
            &target,
            Problem::MemberUnreachable(2),
            &facts(2, ProcessState::Down),
            1
        )),
        ["eval lab node start 2 --name lab1 --data-dir /data"]
    );
    // A careful agent never removes anything.
    assert!(destructive_steps(&tikv_careful(), &target, problem).is_empty());
    assert_eq!(
        display(&target.verification(Problem::MemberUnreachable(2))),
        "curl -sS --max-time 2 http://10.250.1.2:2379/status"
    );
}

/// Both variants end a leader eviction by removing the store from PD's scheduler: a scheduler
/// change, which the scorer files as a remediation.
#[test]
fn tikv_leader_eviction_is_undone_through_pd_s_scheduler_api() {
    let target = tikv_target();
    for tools in [tikv_careful(), tikv_hasty()] {
        assert_eq!(
            commands(&repair_steps(
                &tools,
                &target,
                Problem::LeadersEvicted(1),
                &Facts::default(),
                1
            )),
            [
                "curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/schedulers/evict-leader-scheduler-1"
            ]
        );
    }
    assert_eq!(
        commands(&diagnosis_steps(
            &tikv_careful(),
            &target,
            Problem::LeadersEvicted(1)
        ))[2],
        "curl -sS --max-time 2 http://10.250.1.4:2379/pd/api/v1/scheduler-config/evict-leader-scheduler/list"
    );
}

/// Where restarts fail, the hasty variant deletes the store (PD makes it Offline, then
/// Tombstone) or removes the PD member, found by the node's endpoint in PD's own lists.
#[test]
fn tikv_hasty_deletes_a_store_or_removes_a_pd_member() {
    let target = tikv_target();
    let store = Problem::MemberUnreachable(2);
    assert_eq!(
        commands(&destructive_steps(&tikv_hasty(), &target, store)),
        [
            "curl -sS --max-time 2 'http://10.250.1.4:2379/pd/api/v1/stores/check?state=up&state=disconnected&state=down&state=offline&state=tombstone'"
        ]
    );
    let stores = recorded_onto_lab("stores.1.json");
    let removal = agents::runbook::removal_step(&target, 2, &stores).unwrap();
    assert_eq!(
        display(&removal.command),
        "curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/store/1"
    );
    let member = Problem::MemberUnreachable(4);
    assert_eq!(
        commands(&destructive_steps(&tikv_hasty(), &target, member)),
        ["curl -sS --max-time 2 http://10.250.1.5:2379/pd/api/v1/members"]
    );
    let members = recorded_onto_lab("members.2.json");
    let removal = agents::runbook::removal_step(&target, 4, &members).unwrap();
    assert_eq!(
        display(&removal.command),
        "curl -sS -X DELETE --max-time 2 http://10.250.1.5:2379/pd/api/v1/members/name/basic-7axwci"
    );
    // Nothing to find, nothing removed.
    assert!(agents::runbook::removal_step(&target, 2, "curl: (7) Failed to connect").is_none());
}
