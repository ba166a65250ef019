//! Campaign and variant files as users write them: every broken fixture's exact diagnostics, and
//! what the valid ones parse into.

use std::path::Path;

use expect_test::{Expect, expect};
use schemas::campaign::{parse_campaign, parse_variant};

fn fixture(kind: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Parses `campaigns/<name>`: the campaign as JSON when it is valid, else every diagnostic.
fn check(name: &str, expect: Expect) {
    let actual = match parse_campaign(name, &fixture("campaigns", name)) {
        Ok(parsed) => serde_json::to_string_pretty(&parsed.campaign).expect("campaign serializes"),
        Err(diagnostics) => diagnostics.to_string(),
    };
    expect.assert_eq(&actual);
}

/// Parses `variants/<name>`: the variant as JSON when it is valid, else every diagnostic.
fn check_variant(name: &str, expect: Expect) {
    let actual = match parse_variant(name, &fixture("variants", name)) {
        Ok(variant) => serde_json::to_string_pretty(&variant).expect("variant serializes"),
        Err(diagnostics) => diagnostics.to_string(),
    };
    expect.assert_eq(&actual);
}

#[test]
fn seed_harness_file() {
    check(
        "seed_harness.yaml",
        expect![[r#"
        {
          "name": "tikv-basics",
          "subjects": [
            "tikv"
          ],
          "chaos_types": [
            {
              "type": "node_kill",
              "params": {
                "target": "random"
              }
            },
            {
              "type": "latency",
              "params": {
                "target": "random",
                "min_ms": 50,
                "max_ms": 150
              }
            }
          ],
          "trials_per_combination": 3,
          "parallel": 2,
          "cooldown_seconds": 10,
          "include_baseline": true,
          "variant": "default",
          "trial_timeout_seconds": 300,
          "operator_timezone": "UTC"
        }"#]],
    );
}

#[test]
fn subjects_default_to_tikv() {
    check(
        "default_subjects.yaml",
        expect![[r#"
        {
          "name": "no-subjects",
          "subjects": [
            "tikv"
          ],
          "chaos_types": [
            {
              "type": "node_kill",
              "params": {
                "target": "random"
              }
            }
          ],
          "trials_per_combination": 1,
          "parallel": 1,
          "cooldown_seconds": 0,
          "include_baseline": false,
          "trial_timeout_seconds": 300,
          "operator_timezone": "UTC"
        }"#]],
    );
}

#[test]
fn every_extension() {
    check(
        "extensions.yaml",
        expect![[r#"
            {
              "name": "every-extension",
              "description": "Uses every field this harness adds, with anchors for shared params.\n",
              "subjects": [
                "tikv",
                "etcd"
              ],
              "chaos_types": [
                {
                  "type": "process_pause",
                  "params": {
                    "target": "leader"
                  }
                },
                {
                  "type": "packet_loss",
                  "params": {
                    "target": "random",
                    "percent": 30
                  }
                },
                {
                  "type": "network_partition",
                  "params": {
                    "target": "random",
                    "groups": [
                      [
                        1
                      ],
                      [
                        2,
                        3
                      ]
                    ],
                    "asymmetric": true
                  }
                },
                {
                  "type": "disk_pressure",
                  "params": {
                    "target": 2,
                    "fill_percent": 95
                  }
                },
                {
                  "type": "latency",
                  "params": {
                    "target": "leader",
                    "min_ms": 50,
                    "max_ms": 150
                  }
                }
              ],
              "trials_per_combination": 1,
              "parallel": 1,
              "cooldown_seconds": 0,
              "include_baseline": false,
              "variants": [
                "default",
                "hasty"
              ],
              "seed": 42,
              "trial_timeout_seconds": 600,
              "subject_settings": {
                "etcd": {
                  "runtime": "kubernetes",
                  "nodes": 5
                }
              },
              "operator_timezone": "Europe/Berlin"
            }"#]],
    );
}

/// Settings that are parsed but not used yet, or that belong to another runtime, are refused,
/// each at its own line.
#[test]
fn unused_settings() {
    check(
        "unused_settings.yaml",
        expect![[r#"
            unused_settings.yaml:6:5: subject_settings.etcd.endpoints: is for runtime: kubernetes only; remove endpoints, or add runtime: kubernetes
            unused_settings.yaml:7:16: subject_settings.etcd.namespace: is for runtime: kubernetes only; remove namespace, or add runtime: kubernetes
            unused_settings.yaml:8:15: subject_settings.etcd.binaries: names the directory of pd-server and tikv-server, for tikv only; remove it here
            unused_settings.yaml:9:16: subject_settings.etcd.node_kill: is for runtime: kubernetes only; remove node_kill, or add runtime: kubernetes"#]],
    );
}

/// How `node_kill` and `disk_pressure` are done on Kubernetes: a way that does not exist is
/// named with those that do.
#[test]
fn kubernetes_ways() {
    check(
        "kubernetes_ways.yaml",
        expect![[
            r#"kubernetes_ways.yaml:7:16: subject_settings.etcd.node_kill: unknown node kill way "kill_dash_nine" (expected one of: pod_delete, signal, container_kill)"#
        ]],
    );
}

/// `endpoints` (Kubernetes) must each be `http://HOST:PORT`; each wrong one is named.
#[test]
fn kubernetes_endpoints() {
    check(
        "kubernetes_endpoints.yaml",
        expect![[r#"
        kubernetes_endpoints.yaml:7:5: subject_settings.etcd.endpoints: "etcd-1.etcd-headless.etcd.svc:2379" is not an address the harness reaches a node at; write http://HOST:PORT (a pod's address or name, e.g. http://etcd-0.etcd-headless.etcd.svc:2379)
        kubernetes_endpoints.yaml:7:5: subject_settings.etcd.endpoints: "http://etcd-2/v3" is not an address the harness reaches a node at; write http://HOST:PORT (a pod's address or name, e.g. http://etcd-0.etcd-headless.etcd.svc:2379)"#]],
    );
}

#[test]
fn unknown_chaos_type() {
    check(
        "unknown_chaos_type.yaml",
        expect![[
            r#"unknown_chaos_type.yaml:3:11: chaos_types[0].type: unknown chaos type "node_kil" (did you mean "node_kill"?)"#
        ]],
    );
}

#[test]
fn misspelled_field() {
    check(
        "misspelled_field.yaml",
        expect![[
            r#"misspelled_field.yaml:4:1: unknown field "parallell" (did you mean "parallel"?)"#
        ]],
    );
}

#[test]
fn parallel_out_of_range() {
    check(
        "parallel_out_of_range.yaml",
        expect!["parallel_out_of_range.yaml:4:11: parallel: must be between 1 and 10, got 11"],
    );
}

#[test]
fn wrong_type() {
    check(
        "wrong_type.yaml",
        expect![[
            r#"wrong_type.yaml:4:25: trials_per_combination: expected an integer, found string "three""#
        ]],
    );
}

#[test]
fn wrong_shapes() {
    check(
        "wrong_shapes.yaml",
        expect![[r#"
        wrong_shapes.yaml:1:7: name: expected a string, found a list
        wrong_shapes.yaml:3:3: chaos_types: expected a list, found a map
        wrong_shapes.yaml:4:11: subjects: expected a list, found string "tikv"
        wrong_shapes.yaml:5:11: variants: must list at least one variant
        wrong_shapes.yaml:6:7: seed: expected an integer, found number 1.5"#]],
    );
}

/// `chaos_types: []` with `include_baseline: true`, as the seed harness accepts it: control trials.
#[test]
fn seed_harness_control_trials() {
    check(
        "seed_harness_control.yaml",
        expect![[r#"
        {
          "name": "etcd-quiet",
          "subjects": [
            "etcd"
          ],
          "chaos_types": [],
          "trials_per_combination": 2,
          "parallel": 1,
          "cooldown_seconds": 0,
          "include_baseline": true,
          "variants": [
            "default",
            "hasty"
          ],
          "trial_timeout_seconds": 300,
          "operator_timezone": "UTC"
        }"#]],
    );
}

/// `none` beside a fault, with its duration.
#[test]
fn control_beside_faults() {
    check(
        "control_and_faults.yaml",
        expect![[r#"
        {
          "name": "etcd-control-beside-faults",
          "subjects": [
            "etcd"
          ],
          "chaos_types": [
            {
              "type": "none",
              "params": {
                "duration_seconds": 45
              }
            },
            {
              "type": "node_kill",
              "params": {
                "target": "random"
              }
            }
          ],
          "trials_per_combination": 1,
          "parallel": 1,
          "cooldown_seconds": 0,
          "include_baseline": true,
          "variant": "default",
          "seed": 11,
          "trial_timeout_seconds": 300,
          "operator_timezone": "UTC"
        }"#]],
    );
}

/// An empty list without baselines runs nothing: refused, naming the two ways to control trials.
#[test]
fn empty_chaos_types() {
    check(
        "empty_chaos_types.yaml",
        expect![
            "empty_chaos_types.yaml:3:1: chaos_types: must list at least one chaos type; an empty list runs control trials (no fault) only with include_baseline: true, or list `- type: none`"
        ],
    );
}

/// A control trial watched as long as the trial's timeout would always time out.
#[test]
fn control_watched_longer_than_the_timeout() {
    check(
        "control_too_long.yaml",
        expect![
            "control_too_long.yaml:8:25: chaos_types[1].params.duration_seconds: must be less than trial_timeout_seconds (60), got 60"
        ],
    );
}

#[test]
fn missing_chaos_types() {
    check(
        "missing_chaos_types.yaml",
        expect![[r#"missing_chaos_types.yaml:1:1: missing field "chaos_types""#]],
    );
}

#[test]
fn bad_indentation() {
    check(
        "bad_indentation.yaml",
        expect![
            "bad_indentation.yaml:4:4: invalid yaml: while parsing a block collection, did not find expected '-' indicator"
        ],
    );
}

#[test]
fn two_documents() {
    check(
        "two_documents.yaml",
        expect![
            "two_documents.yaml:4:1: a file holds one yaml document, found a second one (`---`)"
        ],
    );
}

#[test]
fn empty_file() {
    check(
        "empty.yaml",
        expect!["empty.yaml:1:1: the file is empty, expected a map of fields"],
    );
}

#[test]
fn duplicate_chaos_entries() {
    check(
        "duplicate_chaos.yaml",
        expect![
            "duplicate_chaos.yaml:6:5: chaos_types[2]: duplicate chaos entry: same type and params as chaos_types[0]"
        ],
    );
}

#[test]
fn negative_cooldown() {
    check(
        "negative_cooldown.yaml",
        expect![
            "negative_cooldown.yaml:4:19: cooldown_seconds: must be between 0 and 86400, got -5"
        ],
    );
}

#[test]
fn empty_subjects() {
    check(
        "empty_subjects.yaml",
        expect!["empty_subjects.yaml:2:11: subjects: must list at least one subject"],
    );
}

#[test]
fn unknown_subject() {
    check(
        "unknown_subject.yaml",
        expect![[
            r#"unknown_subject.yaml:2:18: subjects[1]: unknown subject "etc" (did you mean "etcd"? expected one of: tikv, etcd)"#
        ]],
    );
}

#[test]
fn unknown_chaos_param() {
    check(
        "unknown_chaos_param.yaml",
        expect![[r#"
        unknown_chaos_param.yaml:6:7: chaos_types[0].params: unknown param "jitter_ms" for latency (expected one of: duration_seconds, max_ms, min_ms, target)
        unknown_chaos_param.yaml:9:7: chaos_types[1].params: unknown param "signal" for node_kill (expected one of: target)"#]],
    );
}

#[test]
fn latency_min_above_max() {
    check(
        "latency_min_above_max.yaml",
        expect![
            "latency_min_above_max.yaml:5:15: chaos_types[0].params.min_ms: must not be greater than max_ms (100), got 500"
        ],
    );
}

#[test]
fn variant_and_variants() {
    check(
        "variant_and_variants.yaml",
        expect![
            "variant_and_variants.yaml:5:1: variants: use either variant or variants, not both"
        ],
    );
}

#[test]
fn several_errors_all_reported() {
    check(
        "several_errors.yaml",
        expect![[r#"
            several_errors.yaml:2:18: subjects[1]: unknown subject "etc" (did you mean "etcd"? expected one of: tikv, etcd)
            several_errors.yaml:4:11: chaos_types[0].type: unknown chaos type "node_kil" (did you mean "node_kill"?)
            several_errors.yaml:5:5: chaos_types[1]: missing field "type"
            several_errors.yaml:8:16: chaos_types[2].params.percent: must be between 1 and 100, got 150
            several_errors.yaml:9:15: chaos_types[2].params.target: unknown target "leadr" (did you mean "leader"?)
            several_errors.yaml:10:25: trials_per_combination: must be between 1 and 1000000, got 0
            several_errors.yaml:11:11: parallel: expected an integer, found string "2"
            several_errors.yaml:12:19: include_baseline: expected a boolean (true or false), found string "yes""#]],
    );
}

#[test]
fn duplicate_key() {
    check(
        "duplicate_key.yaml",
        expect![[
            r#"duplicate_key.yaml:5:1: duplicate key "parallel" (first at line 4, column 1)"#
        ]],
    );
}

#[test]
fn merge_key() {
    check(
        "merge_key.yaml",
        expect![
            "merge_key.yaml:8:7: chaos_types[1].params: merge keys (`<<`) are not supported: alias the whole map, or repeat its fields"
        ],
    );
}

#[test]
fn target_beyond_nodes() {
    check(
        "target_beyond_nodes.yaml",
        expect![
            "target_beyond_nodes.yaml:6:15: chaos_types[0].params.target: target node 5 is beyond the 3 nodes of etcd"
        ],
    );
}

#[test]
fn overlapping_partition_groups() {
    check(
        "overlapping_groups.yaml",
        expect![[r#"
            overlapping_groups.yaml:5:25: chaos_types[0].params.groups[1][0]: node 2 is already in groups[0]
            overlapping_groups.yaml:5:33: chaos_types[0].params.groups[2][0]: node numbers start at 1, got 0
            overlapping_groups.yaml:5:36: chaos_types[0].params.groups[2][1]: node 7 is beyond the 6 nodes of tikv"#]],
    );
}

#[test]
fn bad_timezone() {
    check(
        "bad_timezone.yaml",
        expect![[
            r#"bad_timezone.yaml:4:20: operator_timezone: "PST" is neither UTC, a fixed offset such as +02:00, nor an IANA time zone name such as Europe/Berlin"#
        ]],
    );
}

#[test]
fn settings_for_unlisted_subject() {
    check(
        "settings_for_unlisted_subject.yaml",
        expect![[
            r#"settings_for_unlisted_subject.yaml:6:3: subject_settings.etcd: settings for subject "etcd", which is not in subjects [tikv]"#
        ]],
    );
}

#[test]
fn subject_settings_typos() {
    check(
        "subject_settings_typos.yaml",
        expect![[r#"
            subject_settings_typos.yaml:6:3: subject_settings.etcdd: unknown subject "etcdd" (did you mean "etcd"? expected one of: tikv, etcd)
            subject_settings_typos.yaml:9:5: subject_settings.tikv: unknown field "node" (did you mean "nodes"?)
            subject_settings_typos.yaml:10:14: subject_settings.tikv.runtime: unknown runtime "k8s" (expected one of: lab, kubernetes)"#]],
    );
}

#[test]
fn variant_file() {
    check_variant(
        "default.yaml",
        expect![[r#"
        {
          "name": "default",
          "model": "claude-sonnet-4",
          "system_prompt": "You are the on-call SRE for a TiKV cluster.\nDiagnose before you act.\n",
          "tools_config": {
            "budget": {
              "max_steps": 40,
              "temperature": 0.2
            },
            "notes": null,
            "shell": {
              "allowed_commands": [
                "tikv-ctl",
                "pd-ctl",
                "systemctl status"
              ],
              "enabled": true,
              "timeout_seconds": 60
            }
          },
          "command": [
            "./operator",
            "--db",
            "operator.db"
          ]
        }"#]],
    );
}

#[test]
fn broken_variant_file() {
    check_variant(
        "broken.yaml",
        expect![[r#"
        broken.yaml:2:1: unknown field "modle" (did you mean "model"?)
        broken.yaml:3:15: tools_config: expected a map, found a list
        broken.yaml:4:10: command: must list at least one entry"#]],
    );
}

#[test]
fn locations_for_callers() {
    let parsed = parse_campaign("extensions.yaml", &fixture("campaigns", "extensions.yaml"))
        .expect("extensions.yaml is valid");
    let locations: Vec<String> = [
        "variants[1]",
        "variant",
        "chaos_types[2].params.groups",
        "subject_settings.etcd.nodes",
        "chaos_types[9].params",
    ]
    .iter()
    .map(|path| format!("{path} → {}", parsed.location_of(path)))
    .collect();
    expect![[r#"
        variants[1] → extensions.yaml:21:21
        variant → extensions.yaml:1:1
        chaos_types[2].params.groups → extensions.yaml:13:7
        subject_settings.etcd.nodes → extensions.yaml:27:12
        chaos_types[9].params → extensions.yaml:5:1"#]]
    .assert_eq(&locations.join("\n"));
}

#[test]
fn operator_time_zones_may_be_utc_an_offset_or_an_iana_name() {
    for zone in [
        "UTC",
        "+02:00",
        "-0530",
        "UTC+2",
        "Europe/Berlin",
        "America/Argentina/Salta",
    ] {
        let text = format!(
            "name: z\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\noperator_timezone: \"{zone}\"\n"
        );
        assert!(parse_campaign("z.yaml", &text).is_ok(), "{zone} refused");
    }
    for zone in ["PST", "+2:0:0", "Berlin", "+123"] {
        let text = format!(
            "name: z\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\noperator_timezone: \"{zone}\"\n"
        );
        assert!(parse_campaign("z.yaml", &text).is_err(), "{zone} accepted");
    }
}

/// A campaign that expands past `MAX_TRIALS` is refused at `validate`, with the product that
/// makes its size (here 2 × 4 × 2 × 10⁶ operator trials and 6 × 10⁶ baselines).
#[test]
fn too_many_trials() {
    check(
        "too_many_trials.yaml",
        expect![
            "too_many_trials.yaml:9:25: trials_per_combination: the campaign expands to 22000000 trials (2 subject(s) × 4 chaos type(s) × 2 variant(s) × 1000000 repetition(s), with baselines); a campaign may have at most 100000: lower trials_per_combination or split the campaign"
        ],
    );
}

/// A file over `MAX_FILE_BYTES` is refused before it is parsed, whatever it holds.
#[test]
fn oversized_files() {
    let huge = format!(
        "name: huge\nchaos_types: [{{type: node_kill}}]\ndescription: \"{}\"\n",
        "x".repeat(schemas::campaign::MAX_FILE_BYTES)
    );
    let error = parse_campaign("huge.yaml", &huge).unwrap_err().to_string();
    expect!["huge.yaml:1:1: the file holds more than 262144 bytes, the most a campaign or variant file may hold (it travels whole in one event): shorten it"].assert_eq(&error);
    let huge = format!(
        "name: huge\nsystem_prompt: \"{}\"\n",
        "x".repeat(schemas::campaign::MAX_FILE_BYTES)
    );
    let error = parse_variant("huge.yaml", &huge).unwrap_err().to_string();
    expect!["huge.yaml:1:1: the file holds more than 262144 bytes, the most a campaign or variant file may hold (it travels whole in one event): shorten it"].assert_eq(&error);
}

/// `trial_count` counts what `expand` makes, for each shape of matrix (baselines, control
/// entries, the implied control of an empty `chaos_types`).
#[test]
fn the_trial_count_is_what_the_expansion_makes() {
    use schemas::campaign::{expand, trial_count};
    for text in [
        "name: a\nchaos_types: [{type: node_kill}]\n",
        "name: a\nsubjects: [etcd, tikv]\nchaos_types: [{type: node_kill}, {type: none}]\ntrials_per_combination: 3\ninclude_baseline: true\n",
        "name: a\nchaos_types: []\ninclude_baseline: true\ntrials_per_combination: 4\n",
        "name: a\nchaos_types: [{type: latency}, {type: process_pause}]\nvariants: [a, b, c]\ninclude_baseline: true\n",
    ] {
        let campaign = parse_campaign("a.yaml", text).unwrap().campaign;
        for variants in [
            vec![],
            vec!["a".to_string()],
            vec!["a".into(), "b".into(), "c".into()],
        ] {
            assert_eq!(
                trial_count(&campaign, variants.len()),
                expand(&campaign, &variants, 1).len() as u64,
                "{text} with {variants:?}"
            );
        }
    }
}

#[test]
fn tikv_faults_and_settings_where_they_do_not_belong() {
    check(
        "tikv_faults_misplaced.yaml",
        expect![[r#"
        tikv_faults_misplaced.yaml:4:11: chaos_types[0].type: pd_leader_kill needs PD, which only tikv has, and this campaign's subjects include etcd; run it in a campaign with subjects: [tikv]
        tikv_faults_misplaced.yaml:5:11: chaos_types[1].type: leader_evict needs PD, which only tikv has, and this campaign's subjects include etcd; run it in a campaign with subjects: [tikv]
        tikv_faults_misplaced.yaml:10:15: chaos_types[2].params.target: chooses among PD members, which only tikv has, and this campaign's subjects include etcd; use random, leader, follower or a node number
        tikv_faults_misplaced.yaml:11:11: chaos_types[3].type: region_unavailable needs PD, which only tikv has, and this campaign's subjects include etcd; run it in a campaign with subjects: [tikv]
        tikv_faults_misplaced.yaml:13:15: chaos_types[3].params.stores: must not exceed the 3 stores of tikv, got 4
        tikv_faults_misplaced.yaml:17:17: subject_settings.tikv.pd_members: must be 1 or 3: two PD members lose their quorum when either stops
        tikv_faults_misplaced.yaml:19:17: subject_settings.etcd.pd_members: is the number of PD members of a TiKV lab, for tikv only; remove it here"#]],
    );
    check(
        "tikv_lab_too_big.yaml",
        expect![
            "tikv_lab_too_big.yaml:10:12: subject_settings.tikv.nodes: a lab has at most 9 nodes: 7 stores and 3 PD members make 10"
        ],
    );
}
