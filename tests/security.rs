//! The attacks of issue 16 on the reading side, each against the real binary: `evalctl viewer`
//! served on loopback and spoken to over raw TCP (so that every header is the attacker's), and
//! `evalctl sql`, `list`, `show` run as a user runs them. Each asserts the refusal.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use schemas::event::{AgentLogEntryType, Event, EventData};
use schemas::log::EventLog;
use scoring::fixtures::TrialFixture;
use support::{eval, free_port, published, scored, text, wait_until};
use testkit::TemporaryNats;

/// An agent's reasoning that retitles the terminal and clears the screen.
const HOSTILE_REASONING: &str = "fine \x1b]0;pwned\x07 then \x1b[2J\r gone";
const HOSTILE_CAMPAIGN: &str = "camp\x1b[2Jaign";
const TOKEN: &str = "correct-horse-battery-staple";

fn hostile_trial() -> TrialFixture {
    TrialFixture::test()
        .in_campaign("hostile")
        .with_trial_index(0)
        .with_full_agent_log()
        .detected_after(1_000)
        .command_at(1_500, "=cmd|' /C calc'!A0")
        .resolved_after(5_000)
}

fn hostile_events() -> Vec<Event> {
    let mut campaign = published("hostile");
    if let EventData::CampaignPublished(data) = &mut campaign.data {
        data.name = HOSTILE_CAMPAIGN.to_string();
    }
    let mut events = vec![campaign];
    for mut event in scored(&hostile_trial()) {
        if let EventData::AgentLogRecorded(entry) = &mut event.data
            && entry.entry_type == AgentLogEntryType::Reasoning
        {
            entry.content = Some(HOSTILE_REASONING.to_string());
        }
        events.push(event);
    }
    events
}

/// A DuckDB file projected once from the hostile campaign; each test copies it.
fn database() -> &'static Path {
    static DATABASE: OnceLock<PathBuf> = OnceLock::new();
    DATABASE.get_or_init(|| support::projected_database("security-tests", hostile_events()))
}

/// A copy of the database in a directory of its own.
fn copy_of_database() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eval.duckdb");
    std::fs::copy(database(), &path).unwrap();
    (dir, path)
}

/// `evalctl viewer` on a free loopback port, stopped (by its pid) when dropped.
struct Viewer {
    child: Child,
    port: u16,
}

impl Viewer {
    fn start(db: &Path, extra: &[&str]) -> Viewer {
        let port = free_port();
        let port_arg = port.to_string();
        let mut args = vec!["viewer", "--port", &port_arg, "--db", db.to_str().unwrap()];
        args.extend_from_slice(extra);
        let child = Command::new(env!("CARGO_BIN_EXE_evalctl"))
            .args(&args)
            .env("RUST_LOG", "off")
            .env_remove("EVAL_VIEWER_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(Duration::from_secs(30), "the viewer listens", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Viewer { child, port }
    }

    /// Sends `request` (`{port}` replaced by the port) as written and reads the whole answer.
    fn raw(&self, request: &str) -> Answer {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        stream
            .write_all(request.replace("{port}", &self.port.to_string()).as_bytes())
            .unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        let answer = text(&bytes);
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Answer {
            status,
            head: head.to_string(),
            body: body.to_string(),
            bytes: bytes.len(),
        }
    }

    fn get(&self, path: &str, headers: &str) -> Answer {
        self.raw(&format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{{port}}\r\n{headers}Connection: close\r\n\r\n"
        ))
    }

    fn post_sql(&self, sql: &str, headers: &str) -> Answer {
        let body = serde_json::json!({ "sql": sql }).to_string();
        self.raw(&format!(
            "POST /api/sql HTTP/1.1\r\nHost: 127.0.0.1:{{port}}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
    bytes: usize,
}

const JSON: &str = "Content-Type: application/json\r\n";

/// DNS rebinding: a page at evil.example whose name now points at 127.0.0.1 reaches the port,
/// but its requests name evil.example.
#[test]
fn the_viewer_refuses_hosts_it_does_not_answer_to() {
    let (_dir, db) = copy_of_database();
    let viewer = Viewer::start(&db, &["--allow-host", "eval.internal"]);
    for host in [
        "evil.example:{port}",
        "evil.example",
        "localhost.evil.example:{port}",
    ] {
        let answer = viewer.raw(&format!(
            "GET /api/campaigns HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(answer.status, 403, "{host}: {answer:?}");
        assert!(answer.head.contains("text/plain"), "{answer:?}");
        assert!(answer.body.contains("--allow-host"), "{answer:?}");
        assert!(!answer.body.contains("hostile"), "{answer:?}");
    }
    let answer = viewer.raw("GET / HTTP/1.0\r\n\r\n");
    assert_eq!(answer.status, 400, "no Host: {answer:?}");
    for host in [
        "127.0.0.1:{port}",
        "localhost:{port}",
        "[::1]:{port}",
        "EVAL.internal:{port}",
    ] {
        let answer = viewer.raw(&format!(
            "GET /api/campaigns HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(answer.status, 200, "{host}: {answer:?}");
    }
}

/// A cross-site form or `fetch` cannot query: `text/plain` (no preflight) is refused, and so is
/// any POST from another origin or marked cross-site by the browser.
#[test]
fn the_viewer_refuses_cross_site_posts() {
    let (_dir, db) = copy_of_database();
    let viewer = Viewer::start(&db, &[]);
    let sql = "SELECT count(*) AS n FROM trials";
    let answer = viewer.post_sql(sql, "Content-Type: text/plain\r\n");
    assert_eq!(answer.status, 415, "{answer:?}");
    let answer = viewer.post_sql(sql, "");
    assert_eq!(answer.status, 415, "{answer:?}");
    let answer = viewer.post_sql(sql, &format!("{JSON}Origin: http://evil.example\r\n"));
    assert_eq!(answer.status, 403, "{answer:?}");
    let answer = viewer.post_sql(sql, &format!("{JSON}Origin: null\r\n"));
    assert_eq!(answer.status, 403, "{answer:?}");
    let answer = viewer.post_sql(sql, &format!("{JSON}Sec-Fetch-Site: cross-site\r\n"));
    assert_eq!(answer.status, 403, "{answer:?}");
    let answer = viewer.post_sql(sql, &format!("{JSON}Origin: http://127.0.0.1:{{port}}\r\n"));
    assert_eq!(answer.status, 200, "same origin: {answer:?}");
    let answer = viewer.post_sql(sql, JSON);
    assert_eq!(
        answer.status, 200,
        "a client that sends no Origin: {answer:?}"
    );
}

/// With a token, nothing is answered without it; a browser trades `?token=` for a cookie once.
#[test]
fn the_viewer_requires_its_token_when_given_one_and_off_loopback() {
    let (_dir, db) = copy_of_database();
    let output = eval(
        "nats://127.0.0.1:1",
        &["viewer", "--host", "0.0.0.0", "--db", db.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("--token"),
        "{}",
        text(&output.stderr)
    );
    let output = eval(
        "nats://127.0.0.1:1",
        &["viewer", "--token", "short", "--db", db.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("at least 16"),
        "{}",
        text(&output.stderr)
    );

    let viewer = Viewer::start(&db, &["--token", TOKEN]);
    for path in ["/", "/api/campaigns", "/sql?q=SELECT%201", "/assets/app.js"] {
        let answer = viewer.get(path, "");
        assert_eq!(answer.status, 401, "{path}: {answer:?}");
        assert!(
            answer.head.contains("WWW-Authenticate: Bearer")
                || answer
                    .head
                    .to_lowercase()
                    .contains("www-authenticate: bearer"),
            "{answer:?}"
        );
    }
    let answer = viewer.get(
        "/api/campaigns",
        "Authorization: Bearer wrong-token-of-some-length\r\n",
    );
    assert_eq!(answer.status, 401, "{answer:?}");
    let answer = viewer.post_sql("SELECT 1", JSON);
    assert_eq!(answer.status, 401, "{answer:?}");
    let answer = viewer.get(
        "/api/campaigns",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("hostile"), "{answer:?}");
    let answer = viewer.get("/campaigns/hostile?token=wrong-token-of-some-length", "");
    assert_eq!(answer.status, 401, "{answer:?}");
    let answer = viewer.get(&format!("/campaigns/hostile?token={TOKEN}&x=1"), "");
    assert_eq!(answer.status, 303, "{answer:?}");
    let head = answer.head.to_lowercase();
    assert!(
        head.contains("location: /campaigns/hostile?x=1"),
        "{answer:?}"
    );
    assert!(
        head.contains(&format!(
            "set-cookie: eval_viewer_token={TOKEN}; path=/; httponly; samesite=strict"
        )),
        "{answer:?}"
    );
    let answer = viewer.get(
        "/campaigns/hostile",
        &format!("Cookie: theme=dark; eval_viewer_token={TOKEN}\r\n"),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// Table functions with side effects are refused by name, wherever the query hides them; the
/// file is not written.
#[test]
fn the_sql_surface_refuses_table_functions_off_its_allow_list() {
    let (_dir, db) = copy_of_database();
    let db_arg = db.to_str().unwrap();
    let before = std::fs::read(&db).unwrap();
    let attacks = [
        ("SELECT * FROM checkpoint()", "checkpoint"),
        ("SELECT * FROM force_checkpoint()", "force_checkpoint"),
        (
            "SELECT * FROM truncate_duckdb_logs()",
            "truncate_duckdb_logs",
        ),
        ("SELECT * FROM enable_logging()", "enable_logging"),
        (
            "SELECT * FROM pragma_storage_info('trials')",
            "pragma_storage_info",
        ),
        ("SELECT * FROM main.CHECKPOINT()", "checkpoint"),
        ("SELECT * FROM query('SELECT * FROM checkpoint()')", "query"),
        ("SELECT * FROM query_table('trials')", "query_table"),
        (
            "SELECT (SELECT count(*) FROM checkpoint()) AS n",
            "checkpoint",
        ),
        (
            "WITH c AS (SELECT * FROM checkpoint()) SELECT * FROM c",
            "checkpoint",
        ),
        ("SUMMARIZE SELECT * FROM checkpoint()", "checkpoint"),
        (
            "SELECT * FROM trials, LATERAL (SELECT * FROM truncate_duckdb_logs())",
            "truncate_duckdb_logs",
        ),
        (
            "SELECT * FROM json_execute_serialized_sql('{}')",
            "json_execute_serialized_sql",
        ),
    ];
    for (attack, function) in attacks {
        let output = eval("nats://127.0.0.1:1", &["sql", attack, "--db", db_arg]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{attack:?} ran: {}",
            text(&output.stdout)
        );
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!("table function {function}() is not allowed")),
            "{attack:?}: {stderr}"
        );
    }
    assert!(
        std::fs::read(&db).unwrap() == before,
        "the file was written"
    );

    // What views and users need still runs.
    for query in [
        "SELECT count(*) FROM range(3)",
        "SELECT * FROM generate_series(1, 2)",
        "SELECT * FROM unnest([1, 2])",
        "SELECT count(*) FROM trials, json_each('{\"a\": 1}')",
        "SUMMARIZE trials",
        "DESCRIBE trials",
        "SHOW TABLES",
        "SELECT table_name FROM duckdb_tables()",
    ] {
        let output = eval("nats://127.0.0.1:1", &["sql", query, "--db", db_arg]);
        assert!(
            output.status.success(),
            "{query:?}: {}",
            text(&output.stderr)
        );
    }

    // The same refusal through the real viewer.
    let viewer = Viewer::start(&db, &[]);
    let answer = viewer.post_sql("SELECT * FROM checkpoint()", JSON);
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer
            .body
            .contains("table function checkpoint() is not allowed"),
        "{answer:?}"
    );
}

/// 1,000 cells of 1 MB each: the answer stops at its byte limit and says so, instead of taking
/// gigabytes of the viewer's memory.
#[test]
fn answers_are_bounded_in_bytes_and_say_so() {
    let (_dir, db) = copy_of_database();
    let viewer = Viewer::start(&db, &[]);
    let sql = "SELECT repeat('x', 1000000) AS big FROM range(1000)";
    let answer = viewer.post_sql(sql, JSON);
    assert_eq!(answer.status, 200, "{}", &answer.head);
    assert!(answer.bytes < 20 << 20, "{} bytes", answer.bytes);
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["truncated"], true);
    assert_eq!(json["truncated_by"], "bytes");
    let rows = json["rows"].as_array().unwrap().len();
    assert!((1..1000).contains(&rows), "{rows} rows");

    let output = eval(
        "nats://127.0.0.1:1",
        &["sql", sql, "--db", db.to_str().unwrap(), "--json"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(output.stdout.len() < 20 << 20);
    let output = eval(
        "nats://127.0.0.1:1",
        &["sql", sql, "--db", db.to_str().unwrap()],
    );
    assert!(
        text(&output.stderr).contains("size limit"),
        "{}",
        text(&output.stderr)
    );
}

/// A reader's own DuckDB instance runs with the reader's memory limit and threads, as DuckDB
/// itself reports them (the limit is not DuckDB's default of 80% of this machine's memory; the
/// threads equal its default on a 2-core machine), and a query cannot change them.
#[test]
fn a_reader_runs_with_its_own_memory_limit_and_threads() {
    let (_dir, db) = copy_of_database();
    let sql =
        "SELECT current_setting('memory_limit') AS memory, current_setting('threads') AS threads";
    let output = eval(
        "nats://127.0.0.1:1",
        &["sql", sql, "--db", db.to_str().unwrap(), "--json"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let row = &json["rows"][0];
    // DuckDB prints 512MB in its own units (488.2 MiB).
    assert!(row[0].as_str().unwrap().starts_with("488"), "{json}");
    assert_eq!(
        row[1].as_i64().unwrap(),
        i64::from(viewer::query::READER_THREADS),
        "{json}"
    );
    let output = eval(
        "nats://127.0.0.1:1",
        &[
            "sql",
            "SET memory_limit = '64GB'",
            "--db",
            db.to_str().unwrap(),
        ],
    );
    assert!(!output.status.success());
}

/// What agents wrote reaches the terminal with its control characters shown, not obeyed.
#[test]
fn read_commands_print_control_characters_escaped() {
    let (_dir, db) = copy_of_database();
    let db_arg = db.to_str().unwrap();
    let trial_id = hostile_trial().trial_id();
    let runs = [
        vec![
            "sql",
            "SELECT content FROM agent_log WHERE entry_type = 'reasoning'",
            "--db",
            db_arg,
        ],
        vec!["list", "--db", db_arg],
        vec!["show", "--trial", &trial_id, "--db", db_arg],
    ];
    for args in runs {
        let output = eval("nats://127.0.0.1:1", &args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        let stdout = text(&output.stdout);
        assert!(
            !stdout.contains(['\x1b', '\x07', '\r']),
            "{args:?} printed control characters: {stdout:?}"
        );
        assert!(stdout.contains("\\e"), "{args:?}: {stdout}");
    }
    let output = eval(
        "nats://127.0.0.1:1",
        &["show", "--trial", &trial_id, "--db", db_arg],
    );
    assert!(
        text(&output.stdout).contains("fine \\e]0;pwned\\a then \\e[2J\\r gone"),
        "{}",
        text(&output.stdout)
    );
}

/// `evalctl sql --csv` neutralises formulas exactly as the web download does.
#[test]
fn csv_cells_never_start_a_formula_in_the_cli_or_the_download() {
    let (_dir, db) = copy_of_database();
    let sql = "SELECT '=1+1' AS a, '+1' AS b, '-3' AS c, '-x' AS d, '@SUM(A1)' AS e, 'plain' AS f, -3 AS g";
    let output = eval(
        "nats://127.0.0.1:1",
        &["sql", sql, "--csv", "--db", db.to_str().unwrap()],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "a,b,c,d,e,f,g\n'=1+1,'+1,-3,'-x,'@SUM(A1),plain,-3\n"
    );
    let viewer = Viewer::start(&db, &[]);
    let answer = viewer.get(&format!("/sql.csv?q={}", viewer::web::encode(sql)), "");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body.replace("\r\n", "\n"), text(&output.stdout));
    let commands = eval(
        "nats://127.0.0.1:1",
        &[
            "sql",
            "SELECT command FROM commands",
            "--csv",
            "--db",
            db.to_str().unwrap(),
        ],
    );
    assert!(
        text(&commands.stdout).contains("'=cmd|"),
        "{}",
        text(&commands.stdout)
    );
}

/// An owner with a token announces it in a file only its user can read, so that local read
/// commands keep working through its API while a request without the token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_token_reaches_local_commands_through_a_private_api_file() {
    use std::os::unix::fs::PermissionsExt;
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    log.publish_all(hostile_events(), 256, |_| {})
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eval.duckdb");
    let db_arg = db.to_str().unwrap().to_string();
    let mut projector = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(["project", "--db", &db_arg, "--token", TOKEN])
        .env("EVAL_NATS_URL", nats.url())
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let api_file = dir.path().join("eval.duckdb.api");
    wait_until(Duration::from_secs(60), "the API file", || {
        api_file.exists()
    });
    let mode = std::fs::metadata(&api_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let announced: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&api_file).unwrap()).unwrap();
    assert_eq!(announced["token"], TOKEN);
    let url = announced["url"].as_str().unwrap().to_string();

    let nats_url = nats.url().to_string();
    let (through_api, without_token) = tokio::task::spawn_blocking(move || {
        wait_until(Duration::from_secs(60), "the campaign is projected", || {
            text(
                &eval(
                    &nats_url,
                    &[
                        "sql",
                        "SELECT count(*) AS n FROM campaigns",
                        "--csv",
                        "--db",
                        &db_arg,
                    ],
                )
                .stdout,
            ) == "n\n1\n"
        });
        let without_token = viewer::http::request(
            "POST",
            &format!("{url}/api/sql"),
            Some(br#"{"sql": "SELECT 1"}"#),
            Duration::from_secs(30),
        )
        .unwrap();
        (eval(&nats_url, &["list", "--db", &db_arg]), without_token)
    })
    .await
    .unwrap();
    assert!(
        through_api.status.success(),
        "{}",
        text(&through_api.stderr)
    );
    assert!(text(&through_api.stdout).contains("hostile"));
    assert_eq!(without_token.status, 401, "{}", without_token.text());

    let pid = nix::unistd::Pid::from_raw(i32::try_from(projector.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    projector.wait().unwrap();
}
