//! First contact, as a user types it: the installed `evalctl` through `bash -c` and `sh -c`
//! (`eval` alone is a shell builtin), `eval` exec'd directly by programs, the seed harness's
//! short flags, and the exit codes of `evalctl run` and `publish` for what cannot run here.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use schemas::log::EventLog;
use scoring::fixtures::TrialFixture;
use support::{published, scored, text};
use testkit::TemporaryNats;

/// A directory holding the two installed names, as `cargo install` or `scripts/setup` leave them.
fn installed_bin_dir(root: &Path) -> std::path::PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, target) in [
        ("evalctl", env!("CARGO_BIN_EXE_evalctl")),
        ("eval", env!("CARGO_BIN_EXE_eval")),
    ] {
        std::os::unix::fs::symlink(target, bin.join(name)).unwrap();
    }
    bin
}

/// `shell -c line` with the installed names first on PATH, as a user's terminal runs it.
fn shell(shell: &str, line: &str, bin: &Path, data_dir: &Path) -> Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(shell)
        .args(["-c", line])
        .env("PATH", path)
        .env("EVAL_DATA_DIR", data_dir)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

/// A campaign of `n_trials` scored fixture trials in a real nats-server, projected into
/// `db`; the server lives as long as the returned value.
async fn projected_campaign(campaign_id: &str, n_trials: u32, db: &Path) -> TemporaryNats {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    let mut events = vec![published(campaign_id)];
    for index in 0..n_trials {
        events.extend(scored(
            &TrialFixture::test()
                .in_campaign(campaign_id)
                .with_trial_index(index),
        ));
    }
    log.publish_all(events, 64, |_| {}).await.unwrap();
    let (writer, projection) = projector::Writer::open(db).unwrap();
    projector::stage::catch_up(&log, writer, projection)
        .await
        .unwrap();
    nats
}

#[tokio::test]
async fn the_installed_command_works_as_typed_in_bash_and_sh() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let _nats = projected_campaign("firstcontact", 3, &data_dir.join("eval.duckdb")).await;
    let bin = installed_bin_dir(dir.path());

    for sh in ["bash", "sh"] {
        let output = shell(sh, "evalctl --version", &bin, &data_dir);
        assert!(output.status.success(), "{sh}: {}", text(&output.stderr));
        assert_eq!(
            text(&output.stdout),
            format!("evalctl {}\n", env!("CARGO_PKG_VERSION"))
        );

        let output = shell(sh, "evalctl list -n 5", &bin, &data_dir);
        assert!(output.status.success(), "{sh}: {}", text(&output.stderr));
        assert!(
            text(&output.stdout).contains("firstcontact"),
            "{sh}: {}",
            text(&output.stdout)
        );

        // Parentheses and both kinds of quotes, as in the README.
        let output = shell(
            sh,
            r#"evalctl sql "SELECT count(*) AS n, min(length('it''s')) AS quoted FROM trials WHERE campaign_id = 'firstcontact'" --json"#,
            &bin,
            &data_dir,
        );
        assert!(output.status.success(), "{sh}: {}", text(&output.stderr));
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            answer["rows"][0],
            serde_json::json!([3, 4]),
            "{sh}: {answer}"
        );

        // The builtin is what a shell runs for plain `eval`: that is why the name is evalctl.
        let output = shell(sh, "eval --version", &bin, &data_dir);
        assert!(
            !text(&output.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{sh} ran the binary for `eval`"
        );
    }

    // Programs that exec `eval` by name (a variant's command, systemd, subprocess with a list)
    // reach the same program, which names itself as invoked.
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let output = Command::new("eval")
        .arg("--version")
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(
        text(&output.stdout),
        format!("eval {}\n", env!("CARGO_PKG_VERSION"))
    );
    let output = Command::new("eval")
        .args(["list", "--no-such-flag"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("Usage: eval list"),
        "{}",
        text(&output.stderr)
    );
    // Messages that say what to type next name the program as it was started.
    for name in ["evalctl", "eval"] {
        let output = Command::new(name)
            .args(["show", "nosuchcampaign"])
            .env("PATH", &path)
            .env("EVAL_DATA_DIR", &data_dir)
            .output()
            .unwrap();
        assert!(
            text(&output.stderr).contains(&format!("`{name} list` shows the campaigns")),
            "{name}: {}",
            text(&output.stderr)
        );
    }
}

/// The seed harness's short flags are accepted beside the long ones.
#[tokio::test]
async fn the_seed_harness_short_flags() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eval.duckdb");
    let nats = projected_campaign("shortflags", 4, &db).await;
    let db = db.display().to_string();
    let run = |args: &[&str]| {
        let output = support::eval(nats.url(), &[args, &["--db", &db, "--json"]].concat());
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let list = run(&["list", "-n", "1"]);
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 1);
    let trial_id = scored(
        &TrialFixture::test()
            .in_campaign("shortflags")
            .with_trial_index(0),
    )[0]
    .trial_id
    .clone()
    .unwrap();
    let show = run(&["show", "-t", &trial_id]);
    assert_eq!(show["trial"]["trial_id"], trial_id.as_str(), "{show}");
    run(&["compare-baseline", "shortflags", "-b", "shortflags"]);
    let variants = run(&["compare-variants", "etcd", "node_kill", "-v", "careful"]);
    assert!(variants.to_string().contains("careful"), "{variants}");

    // `viewer -p`: refused with a port clap cannot parse, which shows the flag is the port.
    let output = support::eval(nats.url(), &["viewer", "-p", "not-a-port"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("--port <PORT>"),
        "{}",
        text(&output.stderr)
    );
}

/// What cannot run here is refused before anything is published, one line per problem with its
/// fix, exit code 2; the stream stays empty.
#[tokio::test]
async fn run_and_publish_refuse_what_cannot_run_before_publishing() {
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let output = support::eval(
        nats.url(),
        &[
            "run",
            "-s",
            "tikv",
            "-c",
            "node_kill",
            "-n",
            "2",
            "-b",
            "--data-dir",
            &data_dir,
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "error: tikv on the lab runtime: pd-server and tikv-server not found; looked in subject_settings.tikv.binaries (not set), EVAL_TIKV_BIN_DIR"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was published"), "{stderr}");

    let campaign = dir.path().join("k8s.yaml");
    std::fs::write(
        &campaign,
        "name: on kubernetes\nsubjects: [etcd]\nchaos_types: [{type: node_kill}]\nsubject_settings:\n  etcd:\n    runtime: kubernetes\n",
    )
    .unwrap();
    // Its cluster is checked before anything is published (here a kubeconfig whose API server
    // does not answer).
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster: {server: 'http://127.0.0.1:9'}\nusers:\n- name: me\n  user: {token: secret}\ncontexts:\n- name: lab-test\n  context: {cluster: lab, user: me, namespace: etcd}\ncurrent-context: lab-test\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(["publish", &campaign.display().to_string()])
        .env("EVAL_NATS_URL", nats.url())
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "error: kubernetes API at context lab-test (http://127.0.0.1:9/) does not answer ("
        ),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was published"), "{stderr}");

    // Nothing reached the log.
    let log = EventLog::connect(nats.url()).await.unwrap();
    let stream = log.ensure_stream().await.unwrap();
    let mut stream = stream;
    assert_eq!(stream.info().await.unwrap().state.messages, 0);

    // A campaign built from flags, from a directory without campaigns/variants, says where it
    // looked instead of running an empty default variant.
    let output = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(["run", "-c", "node_kill", "--data-dir", &data_dir])
        .env("EVAL_NATS_URL", nats.url())
        .env("RUST_LOG", "off")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let looked = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("campaigns/variants");
    assert!(
        text(&output.stderr).contains(&format!("no variants directory at {}", looked.display())),
        "{}",
        text(&output.stderr)
    );

    // --operator-running without an operator.db, and an --operator-db that does not exist.
    let output = support::eval(
        nats.url(),
        &[
            "run",
            "-c",
            "node_kill",
            "--operator-running",
            "--data-dir",
            &data_dir,
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr)
            .contains("--operator-running needs the running operator's operator.db"),
        "{}",
        text(&output.stderr)
    );
    let output = support::eval(
        nats.url(),
        &[
            "run",
            "campaign",
            "campaigns/quickstart.yaml",
            "--operator-db",
            "/nonexistent/operator.db",
            "--data-dir",
            &data_dir,
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("--operator-db /nonexistent/operator.db: no such file"),
        "{}",
        text(&output.stderr)
    );
}

/// `list-variants --dir` lists the variant files of a directory, valid or not, with the first
/// error of an invalid one at its file:line:col.
#[test]
fn list_variants_dir_lists_files_and_their_first_error() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(support::repo_root().join("campaigns/variants")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        dir.path().join("broken.yaml"),
        "name: broken\nmodel: m\ntools_confg: {}\n",
    )
    .unwrap();
    let dir_arg = dir.path().display().to_string();
    let output = support::eval(
        "nats://127.0.0.1:1",
        &["list-variants", "--dir", &dir_arg, "--json"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = answer["variants"].as_array().unwrap();
    let careful = rows.iter().find(|row| row["name"] == "careful").unwrap();
    assert_eq!(careful["valid"], true);
    let broken = rows.iter().find(|row| row["name"] == "broken").unwrap();
    assert_eq!(broken["valid"], false);
    let error = broken["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "{dir_arg}/broken.yaml:3:1: unknown field \"tools_confg\""
        )),
        "{error}"
    );
    let output = support::eval("nats://127.0.0.1:1", &["list-variants", "--dir", &dir_arg]);
    let table = text(&output.stdout);
    assert!(table.lines().next().unwrap().starts_with("name"), "{table}");
    assert!(table.contains("no: "), "{table}");
}

/// `evalctl run` takes only its own campaign's trials (another campaign's unfinished trial is
/// counted and left in the log), and exits 3 when some of its trials ended `errored`: here the
/// `etcd` program exists (so the preflight passes) but cannot start a member.
#[tokio::test]
async fn run_takes_only_its_own_trials_and_exits_3_when_some_errored() {
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    // A campaign that no worker of this host could run, published for workers elsewhere.
    let elsewhere = dir.path().join("elsewhere.yaml");
    std::fs::write(
        &elsewhere,
        "name: for another host\nsubjects: [tikv]\nchaos_types: [{type: node_kill}]\n",
    )
    .unwrap();
    let output = support::eval(
        nats.url(),
        &[
            "publish",
            &elsewhere.display().to_string(),
            "--no-preflight",
            "--campaign-id",
            "elsewhere",
            "--variants-dir",
            "campaigns/variants",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));

    let output = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args([
            "run",
            "-c",
            "node_kill",
            "--timeout",
            "20",
            "--data-dir",
            &data_dir,
        ])
        .env("EVAL_NATS_URL", nats.url())
        .env("EVAL_ETCD", "/bin/false")
        .env("RUST_LOG", "off")
        .current_dir(support::repo_root())
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "1 unfinished trials of 1 other campaigns wait in the log; this run takes only its own"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("trial 1/1 "), "{stderr}");
    assert!(stderr.contains(": errored ("), "{stderr}");
    assert!(stderr.contains("1 trials ended errored"), "{stderr}");

    // The other campaign's trial is still unfinished, and run's own consumer is gone.
    let log = EventLog::connect(nats.url()).await.unwrap();
    let stream = log.ensure_stream().await.unwrap();
    let output = support::eval(
        nats.url(),
        &[
            "events",
            "--campaign",
            "elsewhere",
            "--type",
            "TrialFinished",
            "--json",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout).trim(),
        "",
        "the other campaign's trial ran"
    );
    let consumers: Vec<String> = {
        use futures::StreamExt;
        stream
            .consumer_names()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect()
    };
    assert!(
        consumers
            .iter()
            .all(|name| !name.starts_with("eval-worker-run-")),
        "{consumers:?}"
    );
}

/// A database a newer DuckDB wrote (a real DuckDB 2.0.0 file, as earlier builds left behind) is
/// rebuilt from the log by the projector, saying why; a read command names `--rebuild`.
#[tokio::test]
async fn a_file_written_by_a_newer_duckdb_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let nats = projected_campaign("rebuilt", 2, &dir.path().join("elsewhere.duckdb")).await;
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let db = data_dir.join("eval.duckdb");
    std::fs::copy(
        support::repo_root().join("projector/testdata/written-by-duckdb-2.0.0.duckdb"),
        &db,
    )
    .unwrap();
    let data_arg = data_dir.display().to_string();
    let output = support::eval(nats.url(), &["list", "--data-dir", &data_arg]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("was written by a newer DuckDB than this build's (v1.5.6); the file is derived from the log: run `evalctl project --rebuild`"),
        "{}",
        text(&output.stderr)
    );
    let output = support::eval(
        nats.url(),
        &["project", "--until-caught-up", "--data-dir", &data_arg],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains(&format!(
            "evalctl: {} was written by a newer DuckDB than this build's (v1.5.6); rebuilding it from the log",
            db.display()
        )),
        "{}",
        text(&output.stderr)
    );
    let output = support::eval(nats.url(), &["list", "--data-dir", &data_arg, "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(list["campaigns"][0]["campaign_id"], "rebuilt");
}
