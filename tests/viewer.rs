//! The web viewer's handlers, called with `app().oneshot(..)` on a DuckDB file projected from
//! fixture campaigns through a real nats-server: every page and API route, 404s and bad
//! parameters, the security headers, and the escaping of what agents and campaign files wrote.

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use support::{published, scored};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use schemas::campaign::ChaosType;
use schemas::campaign::VariantFile;
use schemas::event::{AgentLogEntryType, Event, EventData, ResolvedVariant};
use scoring::fixtures::{TrialFixture, chaos};
use serde_json::Value;
use tower::ServiceExt;
use viewer::web::{Access, CONTENT_SECURITY_POLICY, Source, app};

const SCRIPT: &str = "<script>alert('reasoning')</script>";
const IMAGE: &str = "\"><img src=x onerror=alert(1)>";
const EVIL_CAMPAIGN: &str = "<script>alert('campaign')</script>";
const EVIL_COMMAND: &str = "echo <script>alert('command')</script>";
const EVIL_VARIANT: &str = "v\"><img src=x onerror=alert(2)>";
const EVIL_PROMPT: &str = "You are <script>alert('prompt')</script> \"><img onerror=alert(3)>";

/// `clear` (careful always repairs, hasty never, baselines), `even` (alpha and beta alike), `quiet`
/// (control trials), and `evil`, whose name, variant, prompt, reasoning and command are markup.
fn fixture_events() -> Vec<Event> {
    let mut events = vec![published("clear"), published("even")];
    let mut evil = published("evil");
    if let EventData::CampaignPublished(campaign) = &mut evil.data {
        campaign.name = EVIL_CAMPAIGN.to_string();
        campaign.variants = vec![ResolvedVariant {
            file: "variants/evil.yaml".to_string(),
            variant: VariantFile {
                name: EVIL_VARIANT.to_string(),
                model: None,
                system_prompt: Some(EVIL_PROMPT.to_string()),
                tools_config: serde_json::Map::new(),
                command: None,
            },
        }];
    }
    events.push(evil);
    events.extend(support::comparison_campaign_trials(6));
    // `quiet`: control trials, careful raises no alarm, hasty one.
    events.push(published("quiet"));
    events.extend(scored(
        &TrialFixture::control()
            .in_campaign("quiet")
            .with_trial_index(0),
    ));
    events.extend(scored(
        &TrialFixture::control()
            .in_campaign("quiet")
            .with_trial_index(1)
            .with_variant("hasty")
            .detected_after(2_000),
    ));
    let evil_trial = TrialFixture::test()
        .in_campaign("evil")
        .with_trial_index(100)
        .with_variant(EVIL_VARIANT)
        .with_chaos(chaos(ChaosType::ProcessPause))
        .with_full_agent_log()
        .detected_after(1_000)
        .command_at(1_500, EVIL_COMMAND)
        .resolved_after(5_000);
    for mut event in scored(&evil_trial) {
        if let EventData::AgentLogRecorded(entry) = &mut event.data
            && entry.entry_type == AgentLogEntryType::Reasoning
        {
            entry.content = Some(format!("{SCRIPT} then {IMAGE}"));
        }
        events.push(event);
    }
    events
}

/// The DuckDB file every test reads, projected once.
fn database() -> &'static Path {
    static DATABASE: OnceLock<PathBuf> = OnceLock::new();
    DATABASE.get_or_init(|| support::projected_database("viewer-tests", fixture_events()))
}

struct Answer {
    status: StatusCode,
    content_type: String,
    csp: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| panic!("{error}: {}", self.body))
    }
}

/// `request` with the Host header every browser and client sends.
fn with_host(mut request: Request<Body>) -> Request<Body> {
    request
        .headers_mut()
        .entry(header::HOST)
        .or_insert(axum::http::HeaderValue::from_static("127.0.0.1:8000"));
    request
}

async fn send(request: Request<Body>) -> Answer {
    let response = app(Source::file(database().to_path_buf()), Access::local())
        .oneshot(with_host(request))
        .await
        .unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|value: &axum::http::HeaderValue| value.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (status, content_type, csp) = (
        response.status(),
        header(header::CONTENT_TYPE),
        header(header::CONTENT_SECURITY_POLICY),
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        csp,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn get(uri: &str) -> Answer {
    send(Request::get(uri).body(Body::empty()).unwrap()).await
}

/// A page: status, HTML, the policy header, and no inline script.
async fn page(uri: &str, status: StatusCode) -> String {
    let answer = get(uri).await;
    assert_eq!(answer.status, status, "{uri}: {}", answer.body);
    assert!(answer.content_type.starts_with("text/html"), "{uri}");
    assert_eq!(answer.csp, CONTENT_SECURITY_POLICY, "{uri}");
    assert_eq!(
        answer.body.matches("<script").count(),
        answer
            .body
            .matches("<script src=\"/assets/app.js\" defer></script>")
            .count(),
        "{uri}: only the served script may appear"
    );
    answer.body
}

async fn api(uri: &str, status: StatusCode) -> Value {
    let answer = get(uri).await;
    assert_eq!(answer.status, status, "{uri}: {}", answer.body);
    assert!(answer.content_type.starts_with("application/json"), "{uri}");
    assert_eq!(answer.csp, CONTENT_SECURITY_POLICY, "{uri}");
    answer.json()
}

async fn trial_ids(campaign: &str) -> Vec<String> {
    api(&format!("/api/campaigns/{campaign}"), StatusCode::OK).await["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|trial| trial["trial_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn campaigns_page_lists_every_campaign_with_progress_and_filters() {
    let body = page("/", StatusCode::OK).await;
    assert!(body.contains("href=\"/campaigns/clear\""));
    assert!(body.contains("href=\"/campaigns/even\""));
    assert!(body.contains("n=12"), "clear's graded operator trials");
    assert!(body.contains("data-live=\"1\""));

    let filtered = page("/?q=CLE", StatusCode::OK).await;
    assert!(filtered.contains("/campaigns/clear"));
    assert!(!filtered.contains("/campaigns/even"));
    let none = page("/?q=nothing-like-this", StatusCode::OK).await;
    assert!(none.contains("No campaign matches"));

    let bad = page("/?limit=many", StatusCode::BAD_REQUEST).await;
    assert!(bad.contains("limit must be a whole number from 1 to 1000"));

    let json = api("/api/campaigns", StatusCode::OK).await;
    assert_eq!(json["campaigns"].as_array().unwrap().len(), 4);
    let clear = json["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["campaign_id"] == "clear")
        .unwrap();
    assert_eq!(clear["n_graded"], 12);
    assert_eq!(clear["success_rate"], 0.5);
    let filtered = api("/api/campaigns?q=even", StatusCode::OK).await;
    assert_eq!(filtered["campaigns"].as_array().unwrap().len(), 1);
    let bad = api("/api/campaigns?offset=-1", StatusCode::BAD_REQUEST).await;
    assert_eq!(bad["kind"], "bad_request");
}

#[tokio::test]
async fn campaign_page_shows_the_grid_charts_baseline_and_trials() {
    let body = page("/campaigns/clear", StatusCode::OK).await;
    for expected in [
        "Success by subject × chaos × variant",
        "careful",
        "hasty",
        "(baseline)",
        "100%",
        "<svg class=\"chart\"",
        "Against the baseline",
        "is better",
        "href=\"/variants?subject=etcd&amp;chaos=node_kill\"",
        "flag destructive",
        "badge success",
        "badge timeout",
    ] {
        assert!(body.contains(expected), "{expected:?} missing");
    }
    assert_eq!(body.matches("href=\"/trials/").count(), 18);
    // A unique prefix resolves.
    page("/campaigns/cle", StatusCode::OK).await;

    let missing = page("/campaigns/nope", StatusCode::NOT_FOUND).await;
    assert!(missing.contains("no campaign matches"));

    let json = api("/api/campaigns/clear", StatusCode::OK).await;
    assert_eq!(json["campaign"]["campaign_id"], "clear");
    assert_eq!(json["trials"].as_array().unwrap().len(), 18);
    assert_eq!(json["groups"].as_array().unwrap().len(), 3);
    assert_eq!(json["baseline"].as_array().unwrap().len(), 1);
    let missing = api("/api/campaigns/nope", StatusCode::NOT_FOUND).await;
    assert_eq!(missing["kind"], "not_found");
}

#[tokio::test]
async fn trial_page_interleaves_the_timeline_and_shows_state_scores_and_chaos() {
    let evil = trial_ids("evil").await;
    assert_eq!(evil.len(), 1);
    let id = &evil[0];
    let body = page(&format!("/trials/{id}"), StatusCode::OK).await;
    for expected in [
        "ChaosInjected",
        "tool call",
        "tool result",
        "reasoning",
        "Chaos and its cleanup",
        "ChaosCleanedUp",
        "State: initial and final",
        "class=\"changed\"",
        "v3",
    ] {
        assert!(body.contains(expected), "{expected:?} missing");
    }
    // In order: the injection, then the reasoning, then the call, then its result.
    let at = |needle: &str| {
        body.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing"))
    };
    assert!(at(">ChaosInjected<") < at(">reasoning<"));
    assert!(at(">reasoning<") < at(">tool call<"));
    assert!(at(">tool call<") < at(">tool result<"));

    let prefix: String = id.chars().take(10).collect();
    page(&format!("/trials/{prefix}"), StatusCode::OK).await;
    let missing = page("/trials/ffffffffffff", StatusCode::NOT_FOUND).await;
    assert!(missing.contains("no trial matches"));
    // A prefix of several trials names them, and shows none.
    let shared: String = viewer::query::open_read_only(database())
        .unwrap()
        .query_row(
            "SELECT left(trial_id, 1) FROM trials GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let several = page(&format!("/trials/{shared}"), StatusCode::BAD_REQUEST).await;
    assert!(
        several.contains("matches several trials") && several.contains("give more characters"),
        "{several}"
    );

    let json = api(&format!("/api/trials/{id}"), StatusCode::OK).await;
    assert_eq!(json["trial"]["trial_id"], id.as_str());
    let types: Vec<&str> = json["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"AgentLogRecorded"));
    assert!(!json["scores"].as_array().unwrap().is_empty());
    api("/api/trials/ffffffffffff", StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn variants_page_compares_a_subject_and_chaos_type() {
    let choose = page("/variants", StatusCode::OK).await;
    assert!(choose.contains("href=\"/variants?subject=etcd&amp;chaos=node_kill\""));

    let body = page("/variants?subject=etcd&chaos=node_kill", StatusCode::OK).await;
    for expected in [
        "careful",
        "hasty",
        "alpha",
        "beta",
        "<svg",
        "is better",
        "[61–100%]",
    ] {
        assert!(body.contains(expected), "{expected:?} missing");
    }
    let bad = page("/variants?subject=etcd", StatusCode::BAD_REQUEST).await;
    assert!(bad.contains("give the chaos type too"));
    let unknown = page(
        "/variants?subject=etcd&chaos=disk_fill",
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(unknown.contains("no scored operator trials for etcd × disk_fill"));

    let json = api("/api/variants?subject=etcd&chaos=node_kill", StatusCode::OK).await;
    assert_eq!(json["scorecard"]["best"], "careful");
    assert!(!json["choices"].as_array().unwrap().is_empty());
    api("/api/variants?chaos=node_kill", StatusCode::BAD_REQUEST).await;
    api(
        "/api/variants?subject=etcd&chaos=nope",
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn sql_page_runs_read_only_queries_and_downloads_csv() {
    let empty = page("/sql", StatusCode::OK).await;
    assert!(empty.contains("trial_summary"));
    assert!(empty.contains("initial_state_json"), "columns are listed");

    let body = page(
        "/sql?q=SELECT%20variant%2C%20count(*)%20AS%20n%20FROM%20trials%20WHERE%20campaign_id%3D%27clear%27%20GROUP%20BY%20ALL%20ORDER%20BY%201",
        StatusCode::OK,
    )
    .await;
    assert!(body.contains("<th title=\"BIGINT\">n</th>") || body.contains(">n</th>"));
    assert!(body.contains("careful"));
    assert!(body.contains("href=\"/sql.csv?q=SELECT%20variant"));

    let refused = page("/sql?q=DROP%20TABLE%20trials", StatusCode::BAD_REQUEST).await;
    assert!(refused.contains("class=\"error\""));
    let refused = page(
        "/sql?q=SELECT%201%3B%20DELETE%20FROM%20trials",
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(refused.contains("class=\"error\""));

    let csv = get("/sql.csv?q=SELECT%20campaign_id%2C%20name%20FROM%20campaigns%20WHERE%20campaign_id%20IN%20(%27clear%27%2C%27evil%27)%20ORDER%20BY%201").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.content_type.starts_with("text/csv"));
    assert_eq!(
        csv.body,
        "campaign_id,name\r\nclear,quickstart\r\nevil,<script>alert('campaign')</script>\r\n"
    );
    let bad = get("/sql.csv").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let json = api("/api/sql?q=SELECT%2042%20AS%20answer", StatusCode::OK).await;
    assert_eq!(json["rows"][0][0], 42);
    let refused = api("/api/sql?q=ATTACH%20%27x.db%27", StatusCode::BAD_REQUEST).await;
    assert_eq!(refused["kind"], "sql");
    api("/api/sql", StatusCode::BAD_REQUEST).await;

    let post = send(
        Request::post("/api/sql")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                r#"{"sql": "SELECT count(*) AS n FROM campaigns"}"#,
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(post.status, StatusCode::OK, "{}", post.body);
    assert_eq!(post.json()["rows"][0][0], 4);
    let bad = send(
        Request::post("/api/sql")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("not json"))
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["kind"], "bad_request");

    let tables = api("/api/tables", StatusCode::OK).await;
    assert!(
        tables["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "agent_log")
    );
}

#[tokio::test]
async fn unknown_routes_are_404_pages_or_json() {
    let body = page("/no/such/page", StatusCode::NOT_FOUND).await;
    assert!(body.contains("there is no page at /no/such/page"));
    let json = api("/api/no/such/route", StatusCode::NOT_FOUND).await;
    assert_eq!(json["kind"], "not_found");
}

#[tokio::test]
async fn assets_are_served_by_the_binary() {
    let css = get("/assets/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.content_type.starts_with("text/css"));
    assert!(css.body.contains("ol.timeline"));
    let js = get("/assets/app.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.content_type.starts_with("text/javascript"));
    assert!(js.body.contains("EventSource(\"/api/events\")"));
    assert_eq!(js.csp, CONTENT_SECURITY_POLICY);
}

#[tokio::test]
async fn progress_events_start_with_the_projectors_last_sequence() {
    let response = app(Source::file(database().to_path_buf()), Access::local())
        .oneshot(with_host(
            Request::get("/api/events").body(Body::empty()).unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let text = String::from_utf8(frame.to_vec()).unwrap();
    let sequence = api(
        "/api/sql?q=SELECT%20last_sequence%20FROM%20projector_progress",
        StatusCode::OK,
    )
    .await["rows"][0][0]
        .as_u64()
        .unwrap();
    assert!(sequence > 0);
    assert_eq!(
        text,
        format!("event: progress\ndata: {{\"last_sequence\":{sequence}}}\n\n")
    );
}

#[tokio::test]
async fn what_agents_and_campaign_files_wrote_is_escaped() {
    let raw = [
        SCRIPT,
        IMAGE,
        EVIL_CAMPAIGN,
        EVIL_COMMAND,
        EVIL_VARIANT,
        EVIL_PROMPT,
    ];
    let id = trial_ids("evil").await.remove(0);
    let pages = [
        "/".to_string(),
        "/campaigns/evil".to_string(),
        format!("/trials/{id}"),
        "/variants".to_string(),
        "/variants?subject=etcd&chaos=process_pause".to_string(),
        "/sql?q=SELECT%20name%20FROM%20campaigns".to_string(),
    ];
    for uri in &pages {
        let body = page(uri, StatusCode::OK).await;
        for text in raw {
            assert!(!body.contains(text), "{uri} shows {text:?} unescaped");
        }
        assert!(!body.contains("<img"), "{uri}");
    }
    let campaign = page("/campaigns/evil", StatusCode::OK).await;
    assert!(campaign.contains("&lt;script&gt;alert('campaign')&lt;/script&gt;"));
    assert!(campaign.contains("v&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert!(campaign.contains(
        "You are &lt;script&gt;alert('prompt')&lt;/script&gt; &quot;&gt;&lt;img onerror=alert(3)&gt;"
    ));
    let trial = page(&format!("/trials/{id}"), StatusCode::OK).await;
    assert!(trial.contains(
        "&lt;script&gt;alert('reasoning')&lt;/script&gt; then &quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
    ));
    assert!(trial.contains("echo &lt;script&gt;alert('command')&lt;/script&gt;"));
    let list = page("/?q=%3Cscript%3E", StatusCode::OK).await;
    assert!(list.contains("value=\"&lt;script&gt;\""));
}

/// `GET uri` on `app` (the same app, so the same cache, across calls): the JSON body.
async fn json_from(app: &axum::Router, uri: &str) -> Value {
    let response = app
        .clone()
        .oneshot(with_host(Request::get(uri).body(Body::empty()).unwrap()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

fn campaign_names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|campaign| campaign["campaign_id"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Pages are cached, but never past a change of the data: a campaign committed after a page was
/// served shows on the next request, both for the standalone viewer on a file (which sees the
/// file change) and for the owner's shared database (which sees the projector's sequence move).
#[tokio::test]
async fn cached_pages_follow_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let commit = |path: &Path, campaign: &str, sequence: u64| {
        let (mut writer, mut projection) = projector::Writer::open(path).unwrap();
        projection.apply(&schemas::log::StoredMessage::from_event(
            sequence,
            &published(campaign),
        ));
        writer.commit(&mut projection).unwrap();
        (writer, projection)
    };

    let file = dir.path().join("file.duckdb");
    drop(commit(&file, "first", 1));
    let viewer = app(Source::file(file.clone()), Access::local());
    for _ in 0..2 {
        assert_eq!(
            campaign_names(&json_from(&viewer, "/api/campaigns").await),
            ["first"]
        );
    }
    drop(commit(&file, "second", 2));
    assert_eq!(
        campaign_names(&json_from(&viewer, "/api/campaigns").await),
        ["first", "second"]
    );

    let owned = dir.path().join("owned.duckdb");
    let (mut writer, mut projection) = commit(&owned, "first", 1);
    let owner = app(
        Source::shared(viewer::api::Database::new(writer.reader().unwrap())),
        Access::local(),
    );
    for _ in 0..2 {
        assert_eq!(
            campaign_names(&json_from(&owner, "/api/campaigns").await),
            ["first"]
        );
    }
    projection.apply(&schemas::log::StoredMessage::from_event(
        2,
        &published("second"),
    ));
    writer.commit(&mut projection).unwrap();
    assert_eq!(
        campaign_names(&json_from(&owner, "/api/campaigns").await),
        ["first", "second"]
    );
}

/// The typed cells the scorecards read are the same whether they come from the file (Arrow) or
/// through the owner's API (JSON), for every kind they read, NULLs and the top of UBIGINT
/// included.
#[test]
fn rows_read_the_same_cells_from_arrow_and_from_the_api() {
    use viewer::query::{
        Limits, Param, Rows, Trust, open_read_only, run_query, run_query_arrow, run_query_as,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cells.duckdb");
    let writer = duckdb::Connection::open(&path).unwrap();
    writer
        .execute_batch(
            "CREATE TABLE cells (t VARCHAR, b BOOLEAN, i INTEGER, l BIGINT, u UBIGINT);
             INSERT INTO cells VALUES
               ('one', true, -3, -9000000000, 18446744073709551615),
               (NULL, NULL, NULL, NULL, NULL),
               ('three', false, 7, 42, 0);",
        )
        .unwrap();
    drop(writer);
    let connection = open_read_only(&path).unwrap();
    let sql = "SELECT t, b, i, l, u, hash(t) AS h FROM cells ORDER BY i NULLS LAST";
    let limits = Limits::default();
    let arrow = Rows::Arrow(run_query_arrow(&connection, Trust::View, sql, &[], limits).unwrap());
    // As `Reader::Remote` gets it: the API's JSON, read back.
    let answer = serde_json::to_vec(&run_query(&connection, sql, &[], limits).unwrap()).unwrap();
    let json = Rows::Json(serde_json::from_slice(&answer).unwrap());
    let cells = |rows: &Rows| {
        let [t, b, i, l, u, h] =
            ["t", "b", "i", "l", "u", "h"].map(|name| rows.column(name).unwrap());
        (0..rows.len())
            .map(|row| {
                (
                    rows.text(row, t).map(str::to_string),
                    rows.bool(row, b),
                    rows.int(row, i),
                    rows.int(row, l),
                    rows.uint(row, u),
                    rows.uint(row, h),
                )
            })
            .collect::<Vec<_>>()
    };
    let from_arrow = cells(&arrow);
    assert_eq!(from_arrow, cells(&json));
    assert_eq!(
        from_arrow
            .iter()
            .map(|row| (row.0.clone(), row.1, row.2, row.3, row.4))
            .collect::<Vec<_>>(),
        vec![
            (
                Some("one".to_string()),
                Some(true),
                Some(-3),
                Some(-9_000_000_000),
                Some(u64::MAX)
            ),
            (
                Some("three".to_string()),
                Some(false),
                Some(7),
                Some(42),
                Some(0)
            ),
            (None, None, None, None, None),
        ]
    );
    assert!(
        from_arrow.iter().all(|row| row.5.is_some()),
        "{from_arrow:?}"
    );
    assert_eq!(
        Rows::Arrow(
            run_query_arrow(
                &connection,
                Trust::View,
                sql,
                &[],
                Limits {
                    max_rows: 2,
                    ..limits
                }
            )
            .unwrap()
        )
        .len(),
        2,
        "the row limit holds"
    );
    // A view's parameters, bound in place, read as a user's query reads them through `params`.
    let by_param = "SELECT t FROM cells WHERE i = (SELECT p1 FROM params) OR t = (SELECT p2 FROM params) ORDER BY t";
    let params = [Param::Int(7), Param::from("one")];
    for trust in [Trust::User, Trust::View] {
        let result = run_query_as(&connection, trust, by_param, &params, limits).unwrap();
        assert_eq!(
            result.rows,
            vec![
                vec![serde_json::json!("one")],
                vec![serde_json::json!("three")]
            ],
            "{trust:?}"
        );
    }
    // Still in a read-only transaction on a read-only file.
    let error =
        run_query_as(&connection, Trust::View, "DELETE FROM cells", &[], limits).unwrap_err();
    assert!(
        error.to_string().contains("read-only") || error.to_string().contains("read only"),
        "{error}"
    );
}

/// Control trials are their own row of the campaign's grid, with their false alarms, and are
/// never set against a baseline.
#[tokio::test]
async fn control_trials_show_their_false_alarms() {
    let page = get("/campaigns/quiet").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("etcd × none"), "{}", page.body);
    assert!(
        page.body.contains("false alarms 0/1 (control)"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("false alarms 1/1 (control)"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("No scored operator trials to compare yet.")
    );
    let api = get("/api/campaigns/quiet").await.json();
    let groups = api["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{api}");
    for group in groups {
        assert_eq!(group["chaos_type"], "none");
        assert_eq!(group["control"], true);
    }
}

/// The owner's API may answer in chunks (`Transfer-Encoding: chunked`), and a chunk can end in
/// the middle of a character: an agent's reasoning in French or Japanese must arrive intact.
#[test]
fn a_chunked_answer_split_inside_characters_reads_intact() {
    let reasoning = "le nœud est tombé; 日本語のログ";
    let answer = serde_json::to_vec(&viewer::query::QueryResult {
        columns: vec!["content".to_string()],
        types: vec!["text".to_string()],
        rows: vec![vec![Value::from(reasoning)]],
        truncated: false,
        truncated_by: None,
        elapsed_ms: 1,
    })
    .unwrap();
    // Chunks of 3 and 5 bytes: boundaries fall inside "œ", "é" and the three-byte kanji.
    let mut chunks = Vec::new();
    let mut rest = answer.as_slice();
    for size in [3usize, 5].into_iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(Ok::<_, std::convert::Infallible>(
            axum::body::Bytes::copy_from_slice(chunk),
        ));
        rest = tail;
    }
    assert!(
        chunks
            .iter()
            .any(|chunk| std::str::from_utf8(chunk.as_ref().unwrap()).is_err()),
        "some chunk ends inside a character"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/api/sql",
        axum::routing::post(move || {
            let chunks = chunks.clone();
            async move { Body::from_stream(futures::stream::iter(chunks)) }
        }),
    );
    runtime.spawn(async move { axum::serve(listener, app).await });
    let reader = viewer::reader::Reader::Remote { url, token: None };
    let result = reader
        .query("SELECT content FROM agent_log", &[], Default::default())
        .unwrap();
    assert_eq!(result.rows, vec![vec![Value::from(reasoning)]]);
}
