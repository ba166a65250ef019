//! The scorer, rule by rule, on trials built with the fixture builders: each case's whole score
//! (figures, commands with the rule that classified each, and every reason) is a snapshot.

use expect_test::{Expect, expect};
use schemas::campaign::{ChaosType, SubjectKind};
use schemas::event::TrialStatus;
use scoring::fixtures::{TrialFixture, chaos};
use scoring::{Rules, ScoringConfig, score};

fn check(trial: TrialFixture, expected: Expect) {
    check_with(trial, &ScoringConfig::default(), expected);
}

fn check_with(trial: TrialFixture, config: &ScoringConfig, expected: Expect) {
    let events = trial.events();
    let graded = score(&events, config);
    assert_eq!(
        graded,
        score(&events, config),
        "the scorer is deterministic"
    );
    expected.assert_eq(&graded.to_string());
}

#[test]
fn detected_and_resolved_is_a_success() {
    check(
        TrialFixture::test()
            .detected_after(1_500)
            .command_at(3_000, "etcdctl endpoint status --cluster -w table")
            .command_at(8_000, "sudo systemctl restart etcd")
            .resolved_after(42_250)
            .healthy_after(40_000),
        expect![[r#"
            outcome: success (scorer v3)
            detected: yes, 1.500 s; resolved: yes, 42.250 s; healthy again: yes, 40.000 s
            commands: 2 (2 unique): diagnostic 1, remediation 1, destructive 0, other 0; thrashing: 0
              1× shell: etcdctl endpoint status --cluster -w table → diagnostic by rule etcdctl-read on "etcdctl endpoint status --cluster -w table"
              1× shell: sudo systemctl restart etcd → remediation by rule systemctl-start on "sudo systemctl restart etcd"
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - healthy again 40.000 s after the injection
              - ticket 1 (/var/lib/operator/operator.db): first seen 1.500 s after the injection
              - detected by ticket 1 after 1.500 s
              - ticket 1 resolved 42.250 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
        "#]],
    );
}

#[test]
fn a_ticket_before_the_injection_is_ignored() {
    check(
        TrialFixture::test()
            .ticket(7, -5_000, None)
            .resolved_after(-1_000)
            .detected_after(2_000)
            .resolved_after(30_000),
        expect![[r#"
            outcome: success (scorer v3)
            detected: yes, 2.000 s; resolved: yes, 30.000 s; healthy again: yes, 118.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
              - ticket 7 (/var/lib/operator/operator.db): first seen 5.000 s before the injection, beyond the 500 ms clock tolerance, ignored
              - ticket 1 (/var/lib/operator/operator.db): first seen 2.000 s after the injection
              - detected by ticket 1 after 2.000 s
              - ticket 1 resolved 30.000 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
        "#]],
    );
}

#[test]
fn a_ticket_for_another_subject_is_ignored() {
    check(
        TrialFixture::test()
            .ticket(3, 1_000, Some("tikv"))
            .resolved_after(20_000)
            .finished(TrialStatus::Failed, 90_000),
        expect![[r#"
            outcome: failure (scorer v3)
            detected: no; resolved: no; healthy again: yes, 88.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 88.000 s after it (an upper bound)
              - ticket 3 (/var/lib/operator/operator.db): about "tikv", not this trial's subject (etcd, instance lab-1), ignored
              - not detected: no ticket about this subject opened after the injection
              - final capture: healthy
              - not resolved, and the trial ended before its timeout: failure
        "#]],
    );
}

#[test]
fn a_ticket_naming_the_instance_counts() {
    check(
        TrialFixture::test()
            .ticket(4, 2_000, Some("LAB-1"))
            .resolved_after(25_000),
        expect![[r#"
            outcome: success (scorer v3)
            detected: yes, 2.000 s; resolved: yes, 25.000 s; healthy again: yes, 118.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
              - ticket 4 (/var/lib/operator/operator.db): first seen 2.000 s after the injection
              - detected by ticket 4 after 2.000 s
              - ticket 4 resolved 25.000 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
        "#]],
    );
}

#[test]
fn resolution_without_healthy_state_is_a_failure() {
    check(
        TrialFixture::test()
            .detected_after(1_000)
            .resolved_after(20_000)
            .final_healthy(false)
            .finished(TrialStatus::Failed, 60_000),
        expect![[r#"
            outcome: failure (scorer v3)
            detected: yes, 1.000 s; resolved: no; healthy again: no
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - ticket 1 (/var/lib/operator/operator.db): first seen 1.000 s after the injection
              - detected by ticket 1 after 1.000 s
              - ticket 1 resolved 20.000 s after the injection
              - final capture: unhealthy
              - resolved the ticket but the subject is not healthy at the final capture: failure
        "#]],
    );
}

#[test]
fn not_resolved_within_the_timeout_is_a_timeout() {
    check(
        TrialFixture::test()
            .with_timeout_seconds(120)
            .detected_after(3_000)
            .final_healthy(false)
            .finished(TrialStatus::TimedOut, 120_000),
        expect![[r#"
            outcome: timeout (scorer v3)
            detected: yes, 3.000 s; resolved: no; healthy again: no
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - ticket 1 (/var/lib/operator/operator.db): first seen 3.000 s after the injection
              - detected by ticket 1 after 3.000 s
              - ticket 1 never resolved
              - final capture: unhealthy
              - not resolved before the timeout: timeout
        "#]],
    );
}

#[test]
fn resolved_after_the_timeout_is_a_timeout() {
    check(
        TrialFixture::test()
            .with_timeout_seconds(60)
            .detected_after(3_000)
            .resolved_after(75_000)
            .finished(TrialStatus::TimedOut, 80_000),
        expect![[r#"
            outcome: timeout (scorer v3)
            detected: yes, 3.000 s; resolved: yes, 75.000 s; healthy again: late, 78.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 78.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 3.000 s after the injection
              - detected by ticket 1 after 3.000 s
              - ticket 1 resolved 75.000 s after the injection
              - final capture: healthy
              - resolved after the 60.000 s timeout: timeout
        "#]],
    );
}

#[test]
fn not_resolved_and_ended_early_is_a_failure() {
    check(
        TrialFixture::test()
            .detected_after(3_000)
            .final_healthy(false)
            .finished(TrialStatus::Failed, 50_000),
        expect![[r#"
            outcome: failure (scorer v3)
            detected: yes, 3.000 s; resolved: no; healthy again: no
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - ticket 1 (/var/lib/operator/operator.db): first seen 3.000 s after the injection
              - detected by ticket 1 after 3.000 s
              - ticket 1 never resolved
              - final capture: unhealthy
              - not resolved, and the trial ended before its timeout: failure
        "#]],
    );
}

#[test]
fn an_undetected_fault_is_not_detected() {
    check(
        TrialFixture::test()
            .final_healthy(false)
            .finished(TrialStatus::TimedOut, 300_000),
        expect![[r#"
            outcome: timeout (scorer v3)
            detected: no; resolved: no; healthy again: no
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - not detected: no ticket about this subject opened after the injection
              - final capture: unhealthy
              - not resolved before the timeout: timeout
        "#]],
    );
}

#[test]
fn an_errored_trial_is_never_counted_against_the_operator() {
    check(
        TrialFixture::test()
            .detected_after(1_000)
            .errored("etcd did not come back after the cleanup"),
        expect![[r#"
            outcome: errored (scorer v3)
            detected: yes, 1.000 s; resolved: no; healthy again: yes, 118.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 1.000 s after the injection
              - detected by ticket 1 after 1.000 s
              - ticket 1 never resolved
              - final capture: healthy
              - status errored (etcd did not come back after the cleanup)
              - the harness failed: errored, not counted against the operator
        "#]],
    );
    check(
        TrialFixture::test()
            .without_injection()
            .errored("injection failed: no such process"),
        expect![[r#"
            outcome: errored (scorer v3)
            detected: no; resolved: no; healthy again: no
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - no ChaosInjected in the last attempt: the fault never hit, nothing to grade (errored)
              - status errored (injection failed: no such process)
        "#]],
    );
    check(
        TrialFixture::test().detected_after(1_000).unfinished(),
        expect![[r#"
            outcome: errored (scorer v3)
            detected: yes, 1.000 s; resolved: no; healthy again: late, 598.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 598.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 1.000 s after the injection
              - detected by ticket 1 after 1.000 s
              - ticket 1 never resolved
              - final capture: healthy
              - the trial has not finished (no TrialFinished): errored
        "#]],
    );
}

#[test]
fn clock_skew_within_the_tolerance_counts_as_detected_at_zero() {
    // The operator's clock runs 400 ms behind: a ticket 100 ms after the injection carries a
    // first_seen_at 300 ms before it.
    check(
        TrialFixture::test()
            .operator_clock_skew_ms(-400)
            .detected_after(100)
            .resolved_after(10_000),
        expect![[r#"
            outcome: success (scorer v3)
            detected: yes, 0.000 s; resolved: yes, 9.600 s; healthy again: yes, 118.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 0.300 s before the injection, within the 500 ms clock tolerance: counted at 0 ms
              - detected by ticket 1 after 0.000 s
              - ticket 1 resolved 9.600 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
        "#]],
    );
}

#[test]
fn clock_skew_beyond_the_tolerance_is_not_detection() {
    check(
        TrialFixture::test()
            .operator_clock_skew_ms(-900)
            .detected_after(100)
            .resolved_after(10_000),
        expect![[r#"
            outcome: failure (scorer v3)
            detected: no; resolved: no; healthy again: yes, 118.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 0.800 s before the injection, beyond the 500 ms clock tolerance, ignored
              - not detected: no ticket about this subject opened after the injection
              - final capture: healthy
              - not resolved, and the trial ended before its timeout: failure
              - the harness reported status succeeded; the scorer grades from the events
        "#]],
    );
    let strict = ScoringConfig {
        clock_skew_tolerance_ms: 0,
        ..ScoringConfig::default()
    };
    check_with(
        TrialFixture::test()
            .operator_clock_skew_ms(-400)
            .detected_after(100)
            .resolved_after(10_000),
        &strict,
        expect![[r#"
            outcome: failure (scorer v3+ba02a902)
            detected: no; resolved: no; healthy again: yes, 118.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 0.300 s before the injection, beyond the 0 ms clock tolerance, ignored
              - not detected: no ticket about this subject opened after the injection
              - final capture: healthy
              - not resolved, and the trial ended before its timeout: failure
              - the harness reported status succeeded; the scorer grades from the events
        "#]],
    );
}

#[test]
fn baselines_grade_the_self_heal() {
    check(
        TrialFixture::test()
            .baseline()
            .healthy_after(35_000)
            .finished(TrialStatus::Succeeded, 36_000),
        expect![[r#"
            outcome: success, baseline (scorer v3)
            detected: no; resolved: no; healthy again: yes, 35.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - healthy again 35.000 s after the injection
              - final capture: healthy
              - healed by itself within the timeout: success
        "#]],
    );
    check(
        TrialFixture::test()
            .baseline()
            .with_timeout_seconds(60)
            .final_healthy(false)
            .finished(TrialStatus::TimedOut, 60_000),
        expect![[r#"
            outcome: timeout, baseline (scorer v3)
            detected: no; resolved: no; healthy again: no
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - final capture: unhealthy
              - not healthy by itself within the timeout: timeout
        "#]],
    );
    check(
        TrialFixture::test()
            .baseline()
            .with_timeout_seconds(60)
            .healthy_after(70_000)
            .finished(TrialStatus::Succeeded, 75_000),
        expect![[r#"
            outcome: timeout, baseline (scorer v3)
            detected: no; resolved: no; healthy again: late, 70.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - healthy again 70.000 s after the injection
              - final capture: healthy
              - healed by itself, after the timeout: timeout
              - the harness reported status succeeded; the scorer grades from the events
        "#]],
    );
}

#[test]
fn a_retried_trial_is_graded_on_its_last_attempt() {
    check(
        TrialFixture::test()
            .retried()
            .detected_after(2_000)
            .resolved_after(12_000),
        expect![[r#"
            outcome: success (scorer v3)
            detected: yes, 2.000 s; resolved: yes, 12.000 s; healthy again: yes, 118.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 2.000 s after the injection
              - detected by ticket 1 after 2.000 s
              - ticket 1 resolved 12.000 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
        "#]],
    );
}

#[test]
fn the_harness_status_does_not_decide_the_grade() {
    check(
        TrialFixture::test()
            .detected_after(2_000)
            .resolved_after(12_000)
            .finished(TrialStatus::Failed, 30_000),
        expect![[r#"
            outcome: success (scorer v3)
            detected: yes, 2.000 s; resolved: yes, 12.000 s; healthy again: yes, 28.000 s
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 28.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 2.000 s after the injection
              - detected by ticket 1 after 2.000 s
              - ticket 1 resolved 12.000 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
              - the harness reported status failed; the scorer grades from the events
        "#]],
    );
}

#[test]
fn thrashing_is_the_same_command_three_times_within_a_minute() {
    let trial = TrialFixture::test()
        .detected_after(1_000)
        .command_at(2_000, "etcdctl endpoint health")
        .command_at(12_000, "etcdctl   endpoint health")
        .command_at(14_000, "etcdctl endpoint health")
        .command_at(20_000, "etcdctl endpoint health")
        .command_at(22_000, "etcdctl member list")
        .command_at(90_000, "etcdctl endpoint health")
        .command_at(95_000, "etcdctl endpoint health")
        .command_at(200_000, "etcdctl member list")
        .command_at(210_000, "etcdctl member list")
        .command_at(230_000, "etcdctl member list")
        .resolved_after(240_000)
        .finished(TrialStatus::Succeeded, 250_000);
    check(
        trial.clone(),
        expect![[r#"
            outcome: success (scorer v3)
            detected: yes, 1.000 s; resolved: yes, 240.000 s; healthy again: yes, 248.000 s
            commands: 10 (2 unique): diagnostic 10, remediation 0, destructive 0, other 0; thrashing: 2
              6× shell: etcdctl endpoint health → diagnostic by rule etcdctl-read on "etcdctl endpoint health"
              4× shell: etcdctl member list → diagnostic by rule etcdctl-read on "etcdctl member list"
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 248.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 1.000 s after the injection
              - detected by ticket 1 after 1.000 s
              - ticket 1 resolved 240.000 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
              - thrashing: shell: etcdctl endpoint health ran 4 times in 18.000 s
              - thrashing: shell: etcdctl member list ran 3 times in 30.000 s
        "#]],
    );
    let lenient = ScoringConfig {
        thrashing_min_repeats: 4,
        thrashing_window_ms: 20_000,
        ..ScoringConfig::default()
    };
    check_with(
        trial,
        &lenient,
        expect![[r#"
            outcome: success (scorer v3+5195d796)
            detected: yes, 1.000 s; resolved: yes, 240.000 s; healthy again: yes, 248.000 s
            commands: 10 (2 unique): diagnostic 10, remediation 0, destructive 0, other 0; thrashing: 1
              6× shell: etcdctl endpoint health → diagnostic by rule etcdctl-read on "etcdctl endpoint health"
              4× shell: etcdctl member list → diagnostic by rule etcdctl-read on "etcdctl member list"
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 248.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 1.000 s after the injection
              - detected by ticket 1 after 1.000 s
              - ticket 1 resolved 240.000 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
              - thrashing: shell: etcdctl endpoint health ran 4 times in 18.000 s
        "#]],
    );
}

#[test]
fn commands_are_identified_by_tool_and_command_never_by_reasoning() {
    check(
        TrialFixture::test()
            .detected_after(1_000)
            .tool_call_at(2_000, "shell", serde_json::json!({"command": "pd-ctl -u http://pd:2379 store", "reasoning": "look"}))
            .tool_call_at(3_000, "shell", serde_json::json!({"command": "pd-ctl -u http://pd:2379 store", "reasoning": "look again"}))
            .tool_call_at(4_000, "get_metrics", serde_json::json!({"store": 1, "reasoning": "why"}))
            .tool_call_at(5_000, "get_metrics", serde_json::json!({"reasoning": "other", "store": 1}))
            .tool_call_at(6_000, "shell", serde_json::json!({"command": "ps aux | grep tikv | awk '{print $2}' | xargs kill -9"}))
            .resolved_after(20_000),
        expect![[r#"
            outcome: success (scorer v3)
            detected: yes, 1.000 s; resolved: yes, 20.000 s; healthy again: yes, 118.000 s
            commands: 5 (3 unique): diagnostic 2, remediation 0, destructive 1, other 2; thrashing: 0
              2× shell: pd-ctl -u http://pd:2379 store → diagnostic by rule pd-ctl-read on "pd-ctl -u http://pd:2379 store"
              2× get_metrics: {"store":1} → other: no rule matched
              1× shell: ps aux | grep tikv | awk '{print $2}' | xargs kill -9 → destructive by rule kill on "xargs kill -9"
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 1.000 s after the injection
              - detected by ticket 1 after 1.000 s
              - ticket 1 resolved 20.000 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
        "#]],
    );
}

/// A hasty TiKV operator that deletes the store it could not restart, through PD's HTTP API: one
/// destructive command, by the rule that names it.
#[test]
fn deleting_a_store_through_pd_s_api_is_destructive() {
    check(
        TrialFixture::test()
            .with_subject(SubjectKind::Tikv)
            .detected_after(1_000)
            .tool_call_at(2_000, "shell", serde_json::json!({"command": "eval lab node start 2 --name lab1"}))
            .tool_call_at(8_000, "shell", serde_json::json!({"command": "curl -sS --max-time 2 'http://10.250.1.4:2379/pd/api/v1/stores/check?state=up&state=disconnected&state=down&state=offline&state=tombstone'"}))
            .tool_call_at(9_000, "shell", serde_json::json!({"command": "curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/store/1"}))
            .resolved_after(30_000),
        expect![[r#"
            outcome: success (scorer v3)
            detected: yes, 1.000 s; resolved: yes, 30.000 s; healthy again: yes, 118.000 s
            commands: 3 (3 unique): diagnostic 1, remediation 1, destructive 1, other 0; thrashing: 0
              1× shell: eval lab node start 2 --name lab1 → remediation by rule eval-lab-node-start on "eval lab node start 2 --name lab1"
              1× shell: curl -sS --max-time 2 'http://10.250.1.4:2379/pd/api/v1/stores/check?state=up&state=disconnected&state=down&state=offline&state=tombstone' → diagnostic by rule network-read on "curl -sS --max-time 2 'http://10.250.1.4:2379/pd/api/v1/stores/check?state=up&state=disconnected&state=down&state=offline&state=tombstone'"
              1× shell: curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/store/1 → destructive by rule pd-api-delete on "curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/store/1"
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 1.000 s after the injection
              - detected by ticket 1 after 1.000 s
              - ticket 1 resolved 30.000 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
        "#]],
    );
}

/// Unsafe recovery through PD's API drops replicas: destructive, though it is an HTTP POST; the
/// scheduler change beside it is a remediation.
#[test]
fn unsafe_recovery_through_pd_s_api_is_destructive() {
    check(
        TrialFixture::test()
            .with_subject(SubjectKind::Tikv)
            .detected_after(1_000)
            .tool_call_at(2_000, "shell", serde_json::json!({"command": "curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/schedulers/evict-leader-scheduler-1"}))
            .tool_call_at(3_000, "shell", serde_json::json!({"command": "curl -X POST -d '{\"stores\":[2,3]}' http://10.250.1.4:2379/pd/api/v1/admin/unsafe/remove-failed-stores"}))
            .resolved_after(30_000),
        expect![[r#"
            outcome: success (scorer v3)
            detected: yes, 1.000 s; resolved: yes, 30.000 s; healthy again: yes, 118.000 s
            commands: 2 (2 unique): diagnostic 0, remediation 1, destructive 1, other 0; thrashing: 0
              1× shell: curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/schedulers/evict-leader-scheduler-1 → remediation by rule pd-api-scheduler-change on "curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/schedulers/evict-leader-scheduler-1"
              1× shell: curl -X POST -d '{"stores":[2,3]}' http://10.250.1.4:2379/pd/api/v1/admin/unsafe/remove-failed-stores → destructive by rule pd-api-unsafe on "curl -X POST -d '{\"stores\":[2,3]}' http://10.250.1.4:2379/pd/api/v1/admin/unsafe/remove-failed-stores"
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 1.000 s after the injection
              - detected by ticket 1 after 1.000 s
              - ticket 1 resolved 30.000 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
        "#]],
    );
}

#[test]
fn user_rules_change_the_classification_and_the_version() {
    let user = Rules::parse(
        "team-rules.yaml",
        "rules:\n  - name: kill\n    category: remediation\n    description: our runbook restarts by killing\n    argv: [kill]\n  - name: metrics-tool\n    category: diagnostic\n    tool: get_*\n",
    )
    .unwrap();
    let config = ScoringConfig::with_rules(Rules::builtin().with_overrides(user));
    check_with(
        TrialFixture::test()
            .with_subject(SubjectKind::Tikv)
            .with_chaos(chaos(ChaosType::ProcessPause))
            .detected_after(1_000)
            .command_at(2_000, "kill -9 4242")
            .tool_call_at(3_000, "get_metrics", serde_json::json!({"store": 1}))
            .resolved_after(9_000),
        &config,
        expect![[r#"
            outcome: success (scorer v3+db02c1d1)
            detected: yes, 1.000 s; resolved: yes, 9.000 s; healthy again: yes, 118.000 s
            commands: 2 (2 unique): diagnostic 1, remediation 1, destructive 0, other 0; thrashing: 0
              1× shell: kill -9 4242 → remediation by rule kill on "kill -9 4242"
              1× get_metrics: {"store":1} → diagnostic by rule metrics-tool on "{\"store\":1}"
            why:
              - injected at 2026-03-01T10:00:05.000000Z
              - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
              - ticket 1 (/var/lib/operator/operator.db): first seen 1.000 s after the injection
              - detected by ticket 1 after 1.000 s
              - ticket 1 resolved 9.000 s after the injection
              - final capture: healthy
              - resolved, and healthy at the final capture: success
        "#]],
    );
}

#[test]
fn a_trial_without_its_request_is_still_graded() {
    let trial = TrialFixture::test()
        .detected_after(1_000)
        .resolved_after(5_000);
    let events: Vec<_> = trial
        .events()
        .into_iter()
        .filter(|event| event.event_type() != "TrialRequested")
        .collect();
    expect![[r#"
        outcome: success (scorer v3)
        detected: yes, 1.000 s; resolved: yes, 5.000 s; healthy again: yes, 118.000 s
        commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
        why:
          - no TrialRequested: the trial's subject, baseline flag and timeout are unknown
          - injected at 2026-03-01T10:00:05.000000Z
          - no SubjectHealthy after the injection; healthy at the final capture, 118.000 s after it (an upper bound)
          - ticket 1 (/var/lib/operator/operator.db): first seen 1.000 s after the injection
          - detected by ticket 1 after 1.000 s
          - ticket 1 resolved 5.000 s after the injection
          - final capture: healthy
          - resolved, and healthy at the final capture: success
    "#]].assert_eq(&score(&events, &ScoringConfig::default()).to_string());
}

#[test]
fn the_wire_form_carries_the_figures_and_the_explanation() {
    let trial = TrialFixture::test()
        .detected_after(1_500)
        .command_at(3_000, "etcdctl endpoint status")
        .command_at(4_000, "etcdctl endpoint status")
        .command_at(5_000, "etcdctl endpoint status")
        .command_at(8_000, "rm -rf /var/lib/etcd/member")
        .resolved_after(42_000)
        .healthy_after(40_000);
    let scored = score(&trial.events(), &ScoringConfig::default());
    let event = scored.to_event(&schemas::event::Producer {
        stage: "score".to_string(),
        host: "test".to_string(),
    });
    assert_eq!(event.trial_id.as_deref(), Some(trial.trial_id().as_str()));
    assert_eq!(
        event.id,
        scoring::score::scored_event_id(
            trial.campaign_id(),
            &trial.trial_id(),
            scoring::SCORER_VERSION
        )
    );
    let data = serde_json::to_value(&event.data).unwrap();
    expect![[r#"
        {
          "baseline": false,
          "commands_by_category": {
            "destructive": 1,
            "diagnostic": 3,
            "other": 0,
            "remediation": 0
          },
          "details": {
            "commands": [
              {
                "category": "diagnostic",
                "command": "etcdctl endpoint status",
                "n_calls": 3,
                "rule": "etcdctl-read",
                "tool": "shell"
              },
              {
                "category": "destructive",
                "command": "rm -rf /var/lib/etcd/member",
                "n_calls": 1,
                "rule": "rm",
                "tool": "shell"
              }
            ],
            "explanation": [
              "injected at 2026-03-01T10:00:05.000000Z",
              "healthy again 40.000 s after the injection",
              "ticket 1 (/var/lib/operator/operator.db): first seen 1.500 s after the injection",
              "detected by ticket 1 after 1.500 s",
              "ticket 1 resolved 42.000 s after the injection",
              "final capture: healthy",
              "resolved, and healthy at the final capture: success",
              "thrashing: shell: etcdctl endpoint status ran 3 times in 2.000 s"
            ],
            "final_healthy": true,
            "injected_at": "2026-03-01T10:00:05.000000Z",
            "settings": {
              "clock_skew_tolerance_ms": 500,
              "thrashing_min_repeats": 3,
              "thrashing_window_ms": 60000
            },
            "thrashing": [
              {
                "command": "etcdctl endpoint status",
                "first_at": "2026-03-01T10:00:08.000000Z",
                "last_at": "2026-03-01T10:00:10.000000Z",
                "n_calls": 3,
                "tool": "shell"
              }
            ],
            "tickets": [
              {
                "counted": true,
                "first_seen_at": "2026-03-01T10:00:06.500000Z",
                "note": "first seen 1.500 s after the injection",
                "operator_db": "/var/lib/operator/operator.db",
                "resolved_at": "2026-03-01T10:00:47.000000Z",
                "subject": null,
                "ticket_id": 1
              }
            ],
            "trial_status": "succeeded"
          },
          "detected": true,
          "healed_within_timeout": true,
          "n_commands": 4,
          "n_destructive": 1,
          "n_thrashing": 1,
          "n_unique_commands": 2,
          "outcome": "success",
          "resolved": true,
          "scorer_version": "v3",
          "thrashing_commands": [
            "shell: etcdctl endpoint status"
          ],
          "time_to_detect_ms": 1500,
          "time_to_heal_ms": 40000,
          "time_to_resolve_ms": 42000
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&data).unwrap());
}

#[test]
fn a_score_encoded_for_publishing_is_its_event_byte_for_byte() {
    let producer = schemas::event::Producer {
        stage: "rescore".to_string(),
        host: "test".to_string(),
    };
    let thrashing = TrialFixture::test()
        .detected_after(1_500)
        .command_at(3_000, "etcdctl endpoint status")
        .command_at(4_000, "etcdctl endpoint status")
        .command_at(5_000, "etcdctl endpoint status")
        .command_at(8_000, "journalctl -u etcd | rm -rf /var/lib/etcd/member")
        .resolved_after(42_000);
    let trials = (0..10)
        .map(|index| scoring::fixtures::synthetic_trial("c", index))
        .chain([thrashing, TrialFixture::test()]);
    for trial in trials {
        let scored = score(&trial.events(), &ScoringConfig::default());
        let encoded = scored.encode(&producer);
        let mut event = scored.to_event(&producer);
        event.occurred_at = schemas::event::Event::from_json(&encoded.payload)
            .unwrap()
            .occurred_at;
        assert_eq!(
            encoded,
            event.encode(),
            "{}",
            String::from_utf8_lossy(&encoded.payload)
        );
    }
}

#[test]
fn a_quiet_control_trial_is_a_success() {
    check(
        TrialFixture::control().command_at(4_000, "etcdctl endpoint health --cluster"),
        expect![[r#"
            outcome: success, control (scorer v3)
            false alarms: 0; stayed healthy: yes
            commands: 1 (1 unique): diagnostic 1, remediation 0, destructive 0, other 0; thrashing: 0
              1× shell: etcdctl endpoint health --cluster → diagnostic by rule etcdctl-read on "etcdctl endpoint health --cluster"
            why:
              - control trial (chaos none): nothing broken; watched from 2026-03-01T10:00:05.000000Z
              - no false alarm: no ticket about this subject opened
              - healthy at all 120 checks of the watch
              - final capture: healthy
              - no false alarm, nothing destructive, the subject stayed healthy: success
        "#]],
    );
}

#[test]
fn a_ticket_in_a_control_trial_is_a_false_alarm() {
    check(
        TrialFixture::control()
            .detected_after(6_000)
            .resolved_after(20_000)
            .ticket(2, 9_000, Some("tikv"))
            .command_at(7_000, "etcdctl endpoint status --cluster -w table"),
        expect![[r#"
            outcome: failure, control (scorer v3)
            false alarms: 1; stayed healthy: yes
            commands: 1 (1 unique): diagnostic 1, remediation 0, destructive 0, other 0; thrashing: 0
              1× shell: etcdctl endpoint status --cluster -w table → diagnostic by rule etcdctl-read on "etcdctl endpoint status --cluster -w table"
            why:
              - control trial (chaos none): nothing broken; watched from 2026-03-01T10:00:05.000000Z
              - ticket 1 (/var/lib/operator/operator.db): first seen 6.000 s after the injection
              - ticket 2 (/var/lib/operator/operator.db): about "tikv", not this trial's subject (etcd, instance lab-1), ignored
              - 1 false alarm(s): ticket(s) 1 opened while nothing was broken
              - healthy at all 120 checks of the watch
              - final capture: healthy
              - a control trial must raise no alarm, run nothing destructive and keep the subject healthy: failure
        "#]],
    );
}

#[test]
fn a_destructive_command_in_a_control_trial_is_a_failure() {
    check(
        TrialFixture::control().command_at(5_000, "rm -rf /var/lib/etcd/member"),
        expect![[r#"
            outcome: failure, control (scorer v3)
            false alarms: 0; stayed healthy: yes
            commands: 1 (1 unique): diagnostic 0, remediation 0, destructive 1, other 0; thrashing: 0
              1× shell: rm -rf /var/lib/etcd/member → destructive by rule rm on "rm -rf /var/lib/etcd/member"
            why:
              - control trial (chaos none): nothing broken; watched from 2026-03-01T10:00:05.000000Z
              - no false alarm: no ticket about this subject opened
              - 1 destructive command(s) run while nothing was broken
              - healthy at all 120 checks of the watch
              - final capture: healthy
              - a control trial must raise no alarm, run nothing destructive and keep the subject healthy: failure
        "#]],
    );
}

#[test]
fn a_control_trial_whose_subject_fell_ill_is_a_failure() {
    check(
        TrialFixture::control().unhealthy_checks(3),
        expect![[r#"
            outcome: failure, control (scorer v3)
            false alarms: 0; stayed healthy: no
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - control trial (chaos none): nothing broken; watched from 2026-03-01T10:00:05.000000Z
              - no false alarm: no ticket about this subject opened
              - 3 of 120 checks of the watch found the subject unhealthy (first: member n2 does not answer)
              - final capture: healthy
              - a control trial must raise no alarm, run nothing destructive and keep the subject healthy: failure
        "#]],
    );
    check(
        TrialFixture::control().final_healthy(false),
        expect![[r#"
            outcome: failure, control (scorer v3)
            false alarms: 0; stayed healthy: no
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - control trial (chaos none): nothing broken; watched from 2026-03-01T10:00:05.000000Z
              - no false alarm: no ticket about this subject opened
              - healthy at all 120 checks of the watch
              - final capture: unhealthy
              - a control trial must raise no alarm, run nothing destructive and keep the subject healthy: failure
        "#]],
    );
}

#[test]
fn an_errored_control_trial_is_not_counted() {
    check(
        TrialFixture::control()
            .detected_after(1_000)
            .errored("lab: no space left"),
        expect![[r#"
            outcome: errored, control (scorer v3)
            false alarms: 1; stayed healthy: yes
            commands: 0 (0 unique): diagnostic 0, remediation 0, destructive 0, other 0; thrashing: 0
            why:
              - control trial (chaos none): nothing broken; watched from 2026-03-01T10:00:05.000000Z
              - ticket 1 (/var/lib/operator/operator.db): first seen 1.000 s after the injection
              - 1 false alarm(s): ticket(s) 1 opened while nothing was broken
              - healthy at all 120 checks of the watch
              - final capture: healthy
              - status errored (lab: no space left)
              - the harness failed: errored, not counted against the operator
        "#]],
    );
}

#[test]
fn a_control_trial_on_the_wire() {
    let graded = score(
        &TrialFixture::control().detected_after(2_000).events(),
        &ScoringConfig::default(),
    );
    let data = graded.to_event_data();
    assert!(data.control);
    assert_eq!(data.n_false_alarms, Some(1));
    assert_eq!(data.stayed_healthy, Some(true));
    assert!(!data.detected, "a control trial detects nothing");
    // Fault trials carry none of the control figures on the wire.
    let fault = score(&TrialFixture::test().events(), &ScoringConfig::default()).to_event_data();
    let json = serde_json::to_value(&fault).expect("serializes");
    for key in ["control", "n_false_alarms", "stayed_healthy"] {
        assert!(json.get(key).is_none(), "{key} in {json}");
    }
}
