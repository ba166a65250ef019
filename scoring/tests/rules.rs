//! Command classification: the built-in rules on the commands operators run (etcdctl, tikv-ctl,
//! pd-ctl, kubectl, systemctl, kill, rm, shell pipelines), user rules that add and override, and
//! rules files with every problem reported at its line and column.

use expect_test::{Expect, expect};
use scoring::Rules;

/// Each line is a shell command of the `shell` tool; the snapshot shows its category and why.
fn check(rules: &Rules, lines: &str, expected: Expect) {
    let mut out = String::new();
    for line in lines.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let classification = rules.classify("shell", Some(line), line);
        out.push_str(&format!("{line}\n    {}\n", classification.explain()));
    }
    expected.assert_eq(&out);
}

#[test]
fn etcd_commands() {
    check(
        &Rules::builtin(),
        "
        ETCDCTL_API=3 etcdctl --endpoints=http://10.0.0.1:2379 endpoint status -w table
        etcdctl member list
        etcdctl get /registry --prefix --keys-only
        etcdctl alarm list
        etcdctl alarm disarm
        etcdctl defrag --cluster
        etcdctl compact 12345
        etcdctl member add node-4 --peer-urls=http://10.0.0.4:2380
        etcdctl move-leader 8e9e05c52164694d
        etcdctl put /health ok
        etcdctl del /registry/pods --prefix
        etcdctl member remove 8e9e05c52164694d
        etcdutl snapshot restore backup.db --data-dir /var/lib/etcd
        ",
        expect![[r#"
            ETCDCTL_API=3 etcdctl --endpoints=http://10.0.0.1:2379 endpoint status -w table
                diagnostic by rule etcdctl-read on "ETCDCTL_API=3 etcdctl --endpoints=http://10.0.0.1:2379 endpoint status -w table"
            etcdctl member list
                diagnostic by rule etcdctl-read on "etcdctl member list"
            etcdctl get /registry --prefix --keys-only
                diagnostic by rule etcdctl-read on "etcdctl get /registry --prefix --keys-only"
            etcdctl alarm list
                diagnostic by rule etcdctl-read on "etcdctl alarm list"
            etcdctl alarm disarm
                remediation by rule etcdctl-alarm-disarm on "etcdctl alarm disarm"
            etcdctl defrag --cluster
                remediation by rule etcdctl-defrag on "etcdctl defrag --cluster"
            etcdctl compact 12345
                remediation by rule etcdctl-compact on "etcdctl compact 12345"
            etcdctl member add node-4 --peer-urls=http://10.0.0.4:2380
                remediation by rule etcdctl-member-change on "etcdctl member add node-4 --peer-urls=http://10.0.0.4:2380"
            etcdctl move-leader 8e9e05c52164694d
                remediation by rule etcdctl-move-leader on "etcdctl move-leader 8e9e05c52164694d"
            etcdctl put /health ok
                other by rule etcdctl-write on "etcdctl put /health ok"
            etcdctl del /registry/pods --prefix
                destructive by rule etcdctl-del on "etcdctl del /registry/pods --prefix"
            etcdctl member remove 8e9e05c52164694d
                destructive by rule etcdctl-member-remove on "etcdctl member remove 8e9e05c52164694d"
            etcdutl snapshot restore backup.db --data-dir /var/lib/etcd
                destructive by rule etcd-snapshot-restore on "etcdutl snapshot restore backup.db --data-dir /var/lib/etcd"
        "#]],
    );
}

#[test]
fn tikv_and_pd_commands() {
    check(
        &Rules::builtin(),
        "
        tikv-ctl --host 127.0.0.1:20160 region-properties -r 2
        tikv-ctl --data-dir /data/tikv bad-regions
        tikv-ctl --host 127.0.0.1:20160 compact -d kv
        tikv-ctl --data-dir /data/tikv unsafe-recover remove-fail-stores -s 3 --all-regions
        tikv-ctl --data-dir /data/tikv tombstone -r 2 -p 127.0.0.1:2379
        pd-ctl -u http://127.0.0.1:2379 store
        pd-ctl -u http://127.0.0.1:2379 region 2
        pd-ctl -u http://127.0.0.1:2379 member leader transfer pd-2
        pd-ctl -u http://127.0.0.1:2379 scheduler add evict-leader-scheduler 1
        pd-ctl -u http://127.0.0.1:2379 config set max-replicas 3
        pd-ctl -u http://127.0.0.1:2379 store delete 1
        pd-ctl -u http://127.0.0.1:2379 member delete name pd-2
        tiup ctl:v7.5.0 pd -u http://pd:2379 unsafe remove-failed-stores 1,2
        tiup cluster display prod
        tiup cluster restart prod -R tikv
        ",
        expect![[r#"
            tikv-ctl --host 127.0.0.1:20160 region-properties -r 2
                diagnostic by rule tikv-ctl-read on "tikv-ctl --host 127.0.0.1:20160 region-properties -r 2"
            tikv-ctl --data-dir /data/tikv bad-regions
                diagnostic by rule tikv-ctl-read on "tikv-ctl --data-dir /data/tikv bad-regions"
            tikv-ctl --host 127.0.0.1:20160 compact -d kv
                remediation by rule tikv-ctl-repair on "tikv-ctl --host 127.0.0.1:20160 compact -d kv"
            tikv-ctl --data-dir /data/tikv unsafe-recover remove-fail-stores -s 3 --all-regions
                destructive by rule tikv-ctl-unsafe on "tikv-ctl --data-dir /data/tikv unsafe-recover remove-fail-stores -s 3 --all-regions"
            tikv-ctl --data-dir /data/tikv tombstone -r 2 -p 127.0.0.1:2379
                destructive by rule tikv-ctl-unsafe on "tikv-ctl --data-dir /data/tikv tombstone -r 2 -p 127.0.0.1:2379"
            pd-ctl -u http://127.0.0.1:2379 store
                diagnostic by rule pd-ctl-read on "pd-ctl -u http://127.0.0.1:2379 store"
            pd-ctl -u http://127.0.0.1:2379 region 2
                diagnostic by rule pd-ctl-read on "pd-ctl -u http://127.0.0.1:2379 region 2"
            pd-ctl -u http://127.0.0.1:2379 member leader transfer pd-2
                remediation by rule pd-ctl-change on "pd-ctl -u http://127.0.0.1:2379 member leader transfer pd-2"
            pd-ctl -u http://127.0.0.1:2379 scheduler add evict-leader-scheduler 1
                remediation by rule pd-ctl-change on "pd-ctl -u http://127.0.0.1:2379 scheduler add evict-leader-scheduler 1"
            pd-ctl -u http://127.0.0.1:2379 config set max-replicas 3
                remediation by rule pd-ctl-change on "pd-ctl -u http://127.0.0.1:2379 config set max-replicas 3"
            pd-ctl -u http://127.0.0.1:2379 store delete 1
                destructive by rule pd-ctl-delete on "pd-ctl -u http://127.0.0.1:2379 store delete 1"
            pd-ctl -u http://127.0.0.1:2379 member delete name pd-2
                destructive by rule pd-ctl-delete on "pd-ctl -u http://127.0.0.1:2379 member delete name pd-2"
            tiup ctl:v7.5.0 pd -u http://pd:2379 unsafe remove-failed-stores 1,2
                destructive by rule pd-ctl-delete on "tiup ctl:v7.5.0 pd -u http://pd:2379 unsafe remove-failed-stores 1,2"
            tiup cluster display prod
                diagnostic by rule tiup-cluster-read on "tiup cluster display prod"
            tiup cluster restart prod -R tikv
                remediation by rule tiup-cluster-change on "tiup cluster restart prod -R tikv"
        "#]],
    );
}

/// PD's HTTP API as an operator without pd-ctl calls it with curl (the reference operator's TiKV
/// runbook does): reads are diagnostic, scheduler changes remediation, deleting a store or a
/// member and unsafe recovery destructive.
#[test]
fn pd_http_api_through_curl() {
    check(
        &Rules::builtin(),
        "
        curl -sS --max-time 2 'http://10.250.1.4:2379/pd/api/v1/stores/check?state=up&state=down'
        curl -sS --max-time 2 http://10.250.1.4:2379/pd/api/v1/scheduler-config/evict-leader-scheduler/list
        curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/schedulers/evict-leader-scheduler-1
        curl -X POST -d '{\"name\":\"evict-leader-scheduler\",\"store_id\":1}' http://pd:2379/pd/api/v1/schedulers
        curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/store/1
        curl -sS -X DELETE --max-time 2 http://10.250.1.5:2379/pd/api/v1/members/name/pd1
        curl -X POST http://pd:2379/pd/api/v1/store/1/state?state=Tombstone
        curl -X POST -d '{\"stores\":[1,2]}' http://pd:2379/pd/api/v1/admin/unsafe/remove-failed-stores
        ",
        expect![[r#"
            curl -sS --max-time 2 'http://10.250.1.4:2379/pd/api/v1/stores/check?state=up&state=down'
                diagnostic by rule network-read on "curl -sS --max-time 2 'http://10.250.1.4:2379/pd/api/v1/stores/check?state=up&state=down'"
            curl -sS --max-time 2 http://10.250.1.4:2379/pd/api/v1/scheduler-config/evict-leader-scheduler/list
                diagnostic by rule network-read on "curl -sS --max-time 2 http://10.250.1.4:2379/pd/api/v1/scheduler-config/evict-leader-scheduler/list"
            curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/schedulers/evict-leader-scheduler-1
                remediation by rule pd-api-scheduler-change on "curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/schedulers/evict-leader-scheduler-1"
            curl -X POST -d '{"name":"evict-leader-scheduler","store_id":1}' http://pd:2379/pd/api/v1/schedulers
                remediation by rule pd-api-scheduler-change on "curl -X POST -d '{\"name\":\"evict-leader-scheduler\",\"store_id\":1}' http://pd:2379/pd/api/v1/schedulers"
            curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/store/1
                destructive by rule pd-api-delete on "curl -sS -X DELETE --max-time 2 http://10.250.1.4:2379/pd/api/v1/store/1"
            curl -sS -X DELETE --max-time 2 http://10.250.1.5:2379/pd/api/v1/members/name/pd1
                destructive by rule pd-api-delete on "curl -sS -X DELETE --max-time 2 http://10.250.1.5:2379/pd/api/v1/members/name/pd1"
            curl -X POST http://pd:2379/pd/api/v1/store/1/state?state=Tombstone
                destructive by rule pd-api-unsafe on "curl -X POST http://pd:2379/pd/api/v1/store/1/state?state=Tombstone"
            curl -X POST -d '{"stores":[1,2]}' http://pd:2379/pd/api/v1/admin/unsafe/remove-failed-stores
                destructive by rule pd-api-unsafe on "curl -X POST -d '{\"stores\":[1,2]}' http://pd:2379/pd/api/v1/admin/unsafe/remove-failed-stores"
        "#]],
    );
}

#[test]
fn kubernetes_and_services() {
    check(
        &Rules::builtin(),
        "
        kubectl -n db get pods -o wide
        kubectl logs etcd-0 -n db --tail=100
        kubectl rollout status statefulset/etcd
        kubectl rollout restart statefulset/etcd
        kubectl scale statefulset etcd --replicas=3
        kubectl scale statefulset etcd --replicas=0
        kubectl -n db delete pod etcd-1
        kubectl -n db exec etcd-0 -c etcd -- etcdctl endpoint health
        kubectl -n db exec -it etcd-0 -- sh -c 'rm -rf /var/lib/etcd/member'
        systemctl status etcd
        sudo systemctl restart etcd
        systemctl stop etcd
        journalctl -u etcd --since '10 min ago'
        docker restart etcd-2
        ",
        expect![[r#"
            kubectl -n db get pods -o wide
                diagnostic by rule kubectl-read on "kubectl -n db get pods -o wide"
            kubectl logs etcd-0 -n db --tail=100
                diagnostic by rule kubectl-read on "kubectl logs etcd-0 -n db --tail=100"
            kubectl rollout status statefulset/etcd
                diagnostic by rule kubectl-rollout-read on "kubectl rollout status statefulset/etcd"
            kubectl rollout restart statefulset/etcd
                remediation by rule kubectl-change on "kubectl rollout restart statefulset/etcd"
            kubectl scale statefulset etcd --replicas=3
                remediation by rule kubectl-change on "kubectl scale statefulset etcd --replicas=3"
            kubectl scale statefulset etcd --replicas=0
                destructive by rule kubectl-scale-to-zero on "kubectl scale statefulset etcd --replicas=0"
            kubectl -n db delete pod etcd-1
                destructive by rule kubectl-delete on "kubectl -n db delete pod etcd-1"
            kubectl -n db exec etcd-0 -c etcd -- etcdctl endpoint health
                diagnostic by rule etcdctl-read on "kubectl -n db exec etcd-0 -c etcd -- etcdctl endpoint health"
            kubectl -n db exec -it etcd-0 -- sh -c 'rm -rf /var/lib/etcd/member'
                destructive by rule rm on "rm -rf /var/lib/etcd/member"
            systemctl status etcd
                diagnostic by rule systemctl-read on "systemctl status etcd"
            sudo systemctl restart etcd
                remediation by rule systemctl-start on "sudo systemctl restart etcd"
            systemctl stop etcd
                destructive by rule systemctl-stop on "systemctl stop etcd"
            journalctl -u etcd --since '10 min ago'
                diagnostic by rule inspect on "journalctl -u etcd --since '10 min ago'"
            docker restart etcd-2
                remediation by rule container-start on "docker restart etcd-2"
        "#]],
    );
}

#[test]
fn processes_files_and_networks() {
    check(
        &Rules::builtin(),
        "
        kill -CONT 4242
        kill -s CONT 4242
        kill -0 4242
        kill -9 4242
        pkill -f etcd
        ps aux | grep etcd | awk '{print $2}' | xargs kill -9
        rm -rf /var/lib/etcd/member/wal
        find /data -name '*.fill' -delete
        find /data -name '*.log' -exec cat {} +
        df -h /data && du -sh /data/*
        truncate -s 0 /data/fill
        dd if=/dev/zero of=/data/fill bs=1M count=100
        sed -i 's/a/b/' /etc/etcd.conf
        tc qdisc show dev eth0
        tc qdisc del dev eth0 root
        nft list ruleset
        nft delete table inet eval
        iptables -D INPUT -s 10.0.0.2 -j DROP
        curl -s http://127.0.0.1:2379/health
        curl -X DELETE http://pd:2379/pd/api/v1/store/1
        curl -XPOST http://pd:2379/pd/api/v1/config -d '{}'
        sleep 5; echo done
        timeout 5 etcdctl endpoint health || systemctl restart etcd
        for i in 1 2 3; do etcdctl endpoint health; sleep 1; done
        my-own-tool --fix
        ",
        expect![[r#"
            kill -CONT 4242
                remediation by rule kill-resume on "kill -CONT 4242"
            kill -s CONT 4242
                remediation by rule kill-resume on "kill -s CONT 4242"
            kill -0 4242
                diagnostic by rule kill-probe on "kill -0 4242"
            kill -9 4242
                destructive by rule kill on "kill -9 4242"
            pkill -f etcd
                destructive by rule kill on "pkill -f etcd"
            ps aux | grep etcd | awk '{print $2}' | xargs kill -9
                destructive by rule kill on "xargs kill -9"
            rm -rf /var/lib/etcd/member/wal
                destructive by rule rm on "rm -rf /var/lib/etcd/member/wal"
            find /data -name '*.fill' -delete
                destructive by rule find-delete on "find /data -name '*.fill' -delete"
            find /data -name '*.log' -exec cat {} +
                diagnostic by rule inspect on "find /data -name '*.log' -exec cat {} +"
            df -h /data && du -sh /data/*
                diagnostic by rule inspect on "df -h /data"
            truncate -s 0 /data/fill
                destructive by rule truncate on "truncate -s 0 /data/fill"
            dd if=/dev/zero of=/data/fill bs=1M count=100
                destructive by rule dd-write on "dd if=/dev/zero of=/data/fill bs=1M count=100"
            sed -i 's/a/b/' /etc/etcd.conf
                remediation by rule sed-in-place on "sed -i 's/a/b/' /etc/etcd.conf"
            tc qdisc show dev eth0
                diagnostic by rule network-read on "tc qdisc show dev eth0"
            tc qdisc del dev eth0 root
                remediation by rule network-change on "tc qdisc del dev eth0 root"
            nft list ruleset
                diagnostic by rule network-read on "nft list ruleset"
            nft delete table inet eval
                remediation by rule network-change on "nft delete table inet eval"
            iptables -D INPUT -s 10.0.0.2 -j DROP
                remediation by rule network-change on "iptables -D INPUT -s 10.0.0.2 -j DROP"
            curl -s http://127.0.0.1:2379/health
                diagnostic by rule network-read on "curl -s http://127.0.0.1:2379/health"
            curl -X DELETE http://pd:2379/pd/api/v1/store/1
                destructive by rule pd-api-delete on "curl -X DELETE http://pd:2379/pd/api/v1/store/1"
            curl -XPOST http://pd:2379/pd/api/v1/config -d '{}'
                remediation by rule http-write on "curl -XPOST http://pd:2379/pd/api/v1/config -d '{}'"
            sleep 5; echo done
                other by rule wait-or-print on "sleep 5"
            timeout 5 etcdctl endpoint health || systemctl restart etcd
                remediation by rule systemctl-start on "systemctl restart etcd"
            for i in 1 2 3; do etcdctl endpoint health; sleep 1; done
                diagnostic by rule etcdctl-read on "do etcdctl endpoint health"
            my-own-tool --fix
                other: no rule matched
        "#]],
    );
}

#[test]
fn user_rules_come_first_and_replace_built_in_ones_by_name() {
    let user = Rules::parse(
        "team.yaml",
        r#"
rules:
  # Our runbook frees disk by deleting the fault's fill file: a repair, not destruction.
  - name: free-fill-file
    category: remediation
    regex: '^rm( -f)? /data/\S+\.fill$'
  # Listing members is all we ever do with this tool.
  - name: etcdctl-member-remove
    category: diagnostic
    argv: [etcdctl, member, list]
"#,
    )
    .unwrap();
    let rules = Rules::builtin().with_overrides(user);
    assert_eq!(rules.sources(), ["team.yaml", "builtin.yaml"]);
    check(
        &rules,
        "
        rm -f /data/eval.fill
        rm -rf /data/tikv
        etcdctl member list
        etcdctl member remove 8e9e05c52164694d
        ",
        expect![[r#"
            rm -f /data/eval.fill
                remediation by rule free-fill-file on "rm -f /data/eval.fill"
            rm -rf /data/tikv
                destructive by rule rm on "rm -rf /data/tikv"
            etcdctl member list
                diagnostic by rule etcdctl-member-remove on "etcdctl member list"
            etcdctl member remove 8e9e05c52164694d
                diagnostic by rule etcdctl-read on "etcdctl member remove 8e9e05c52164694d"
        "#]],
    );
}

#[test]
fn tools_without_a_command_match_by_tool_and_regex() {
    let rules = Rules::parse(
        "tools.yaml",
        "rules:\n  - name: restart-tool\n    category: remediation\n    tool: restart_*\n  - name: metrics\n    category: diagnostic\n    tool: get_metrics\n    regex: '\"store\":'\n",
    )
    .unwrap();
    let show = |tool: &str, params: &str| rules.classify(tool, None, params).explain();
    expect![[r#"
        remediation by rule restart-tool on "{\"node\":2}"
        diagnostic by rule metrics on "{\"store\":1}"
        other: no rule matched
    "#]]
    .assert_eq(&format!(
        "{}\n{}\n{}\n",
        show("restart_node", r#"{"node":2}"#),
        show("get_metrics", r#"{"store":1}"#),
        show("get_metrics", r#"{"cluster":"a"}"#),
    ));
}

#[test]
fn a_broken_rules_file_reports_every_problem_where_it_is() {
    let text = r#"rules:
  - name: ok-rule
    category: diagnostic
    argv: [etcdctl]
  - name: bad name!
    category: diagnostc
    argvv: [kill]
  - name: ok-rule
    category: other
    regex: '(unclosed'
  - category: remediation
  - name: empty-argv
    category: destructive
    argv: []
  - just a string
extra: 1
"#;
    let error = Rules::parse("team.yaml", text).unwrap_err();
    expect![[r#"
        team.yaml:5:5: rules[1]: a rule needs at least one of `tool`, `argv` and `regex`
        team.yaml:5:11: rules[1].name: "bad name!" is not a rule name: use letters, digits, `-`, `_` and `.`
        team.yaml:6:15: rules[1].category: unknown category "diagnostc" (did you mean "diagnostic"?)
        team.yaml:7:5: rules[1]: unknown field `argvv` (did you mean `argv`?)
        team.yaml:8:5: rules[2].name: duplicate rule name "ok-rule" (first at line 2)
        team.yaml:10:12: rules[2].regex: invalid regex: unclosed group
        team.yaml:11:5: rules[3]: missing field `name`
        team.yaml:11:5: rules[3]: a rule needs at least one of `tool`, `argv` and `regex`
        team.yaml:14:11: rules[4].argv: must be a non-empty list of word patterns, such as [etcdctl, "del|delete"]
        team.yaml:15:5: rules[5]: a rule is a map, found a single value
        team.yaml:16:1: unknown field `extra`, expected one of rules"#]].assert_eq(&error.to_string());
    let error = Rules::parse("syntax.yaml", "rules:\n  - name: [unclosed\n").unwrap_err();
    expect!["syntax.yaml:3:1: invalid yaml: while parsing a flow sequence, expected ',' or ']'"]
        .assert_eq(&error.to_string());
    let error = Rules::parse("list.yaml", "- name: a\n").unwrap_err();
    expect!["list.yaml:1:1: a rules file is a map with `rules:`, found a list"]
        .assert_eq(&error.to_string());
}

#[test]
fn the_built_in_rules_are_pinned_to_the_scorer_version() {
    // Changing builtin.yaml changes this fingerprint: bump scoring::SCORER_VERSION with it, so
    // that scores of the new rules stand beside the old ones instead of taking their ids.
    let rules = Rules::builtin();
    expect!["v3 56 rules 2663bd7182ea841dddc55557a9a83e6b798527de56563bea69b83b896dc994f9"]
        .assert_eq(&format!(
            "{} {} rules {}",
            scoring::SCORER_VERSION,
            rules.len(),
            rules.fingerprint()
        ));
}
