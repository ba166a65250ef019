//! A small W3C WebDriver client for the browser test: ChromeDriver started on a free port,
//! driving Debian's headless Chromium. JSON over loopback HTTP through `viewer::http`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Why the browser test cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    [CHROMIUM, CHROMEDRIVER]
        .iter()
        .find(|path| !Path::new(path).exists())
        .map(|path| {
            format!("{path} is missing (scripts/setup installs chromium and chromium-driver)")
        })
}

/// ChromeDriver and one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

/// One element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    pub fn start() -> Browser {
        let port = super::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        super::wait_until(Duration::from_secs(30), "chromedriver to answer", || {
            viewer::http::request(
                "GET",
                &format!("{base}/status"),
                None,
                Duration::from_secs(5),
            )
            .is_ok_and(|answer| answer.status == 200)
        });
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            _profile: profile,
        };
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--disable-quic".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--hide-scrollbars".to_string(),
            "--window-size=1280,900".to_string(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            }}})),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {created}"))
            .to_string();
        browser
    }

    /// One WebDriver command; panics with the driver's message when it fails.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|body| serde_json::to_vec(&body).unwrap());
        let body = match (method, body) {
            ("POST", None) => Some(b"{}".to_vec()),
            (_, body) => body,
        };
        let url = format!("{}{path}", self.base);
        let answer = viewer::http::request(method, &url, body.as_deref(), Duration::from_secs(120))
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let value: Value = serde_json::from_slice(&answer.body)
            .unwrap_or_else(|error| panic!("{method} {path}: {error}: {}", answer.text()));
        assert_eq!(answer.status, 200, "{method} {path}: {value}");
        value["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({"url": url})));
    }

    pub fn title(&self) -> String {
        self.session_call("GET", "/title", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Every element matching the CSS `selector`.
    pub fn find_all(&self, selector: &str) -> Vec<Element> {
        self.session_call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": selector})),
        )
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|found| found[ELEMENT].as_str().map(|id| Element(id.to_string())))
        .collect()
    }

    /// The first element matching `selector`; panics when there is none.
    pub fn find(&self, selector: &str) -> Element {
        self.find_all(selector)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches {selector:?} on {}", self.url()))
    }

    /// The rendered text of `element`, as the user sees it.
    pub fn text(&self, element: &Element) -> String {
        self.session_call("GET", &format!("/element/{}/text", element.0), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The rendered text of every element matching `selector`, read in one step (parts of a
    /// live page are replaced as it updates, which would leave found elements stale).
    pub fn texts(&self, selector: &str) -> Vec<String> {
        self.script(
            "return [...document.querySelectorAll(arguments[0])].map(element => element.innerText);",
            json!([selector]),
        )
        .as_array()
        .into_iter()
        .flatten()
        .map(|text| text.as_str().unwrap_or_default().to_string())
        .collect()
    }

    /// The rendered text of the first element matching `selector`, or empty.
    pub fn text_of(&self, selector: &str) -> String {
        self.texts(selector).into_iter().next().unwrap_or_default()
    }

    pub fn click(&self, element: &Element) {
        self.session_call("POST", &format!("/element/{}/click", element.0), None);
    }

    pub fn clear(&self, element: &Element) {
        self.session_call("POST", &format!("/element/{}/clear", element.0), None);
    }

    pub fn type_text(&self, element: &Element, text: &str) {
        self.session_call(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({"text": text})),
        );
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its value.
    pub fn script(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls `ready` until it holds; panics after `patience`.
    pub fn wait_for(
        &self,
        what: &str,
        patience: Duration,
        mut ready: impl FnMut(&Browser) -> bool,
    ) {
        let started = Instant::now();
        while !ready(self) {
            assert!(
                started.elapsed() < patience,
                "gave up waiting for {what} on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the whole page (the window grown to the page's height), written to `path`.
    pub fn screenshot(&self, path: &Path) -> PathBuf {
        // The window's height is the page's plus the browser's own frame around the viewport.
        let sizes = self.script(
            "return [Math.ceil(document.documentElement.scrollHeight), window.outerHeight - window.innerHeight];",
            json!([]),
        );
        let page = sizes[0].as_u64().unwrap_or(900).clamp(600, 8_000);
        let frame = sizes[1].as_u64().unwrap_or(0).min(1_000);
        self.session_call(
            "POST",
            "/window/rect",
            Some(json!({"width": 1280, "height": page + frame})),
        );
        let encoded = self.session_call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(path, png).unwrap();
        self.session_call(
            "POST",
            "/window/rect",
            Some(json!({"width": 1280, "height": 900})),
        );
        path.to_path_buf()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = viewer::http::request(
                "DELETE",
                &format!("{}/session/{}", self.base, self.session),
                None,
                Duration::from_secs(30),
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
