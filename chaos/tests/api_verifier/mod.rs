//! An API-server verifier for the Kubernetes runtime's tests, over `tower_test::mock::pair` (the
//! pattern of kube-rs's `controller-rs` fixtures): the client under test talks to a mock service,
//! and the verifier answers each request in turn after asserting its exact method, path, query
//! and JSON body. A request beyond the script, or one the script expects that never comes, fails
//! the test.

// Each test crate uses its own part of these fixtures.
#![allow(dead_code)]

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::Value;

/// One request the client must make, and the API server's answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: &'static str,
    /// Path and query, exactly as sent (`/api/v1/namespaces/ns/pods?&labelSelector=...`).
    pub uri: String,
    /// The JSON body the request must carry, if any.
    pub body: Option<Value>,
    pub status: u16,
    pub reply: Value,
}

impl Exchange {
    pub fn new(method: &'static str, uri: impl Into<String>) -> Exchange {
        Exchange {
            method,
            uri: uri.into(),
            body: None,
            status: 200,
            reply: Value::Null,
        }
    }

    pub fn body(mut self, body: Value) -> Exchange {
        self.body = Some(body);
        self
    }

    pub fn reply(mut self, status: u16, reply: Value) -> Exchange {
        self.status = status;
        self.reply = reply;
        self
    }
}

/// A client whose every request goes to the returned verifier, which answers `script` in order.
/// Await the handle after dropping every clone of the client: it fails on a missing or extra
/// request.
pub fn client_with(script: Vec<Exchange>) -> (Client, tokio::task::JoinHandle<Vec<String>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let verifier = tokio::spawn(async move {
        let mut seen = Vec::new();
        for (position, expected) in script.into_iter().enumerate() {
            let Some((request, send)) = handle.next_request().await else {
                panic!(
                    "request {} never came: {} {} (the client made only {position}: {seen:#?})",
                    position + 1,
                    expected.method,
                    expected.uri
                );
            };
            let method = request.method().to_string();
            let uri = request.uri().to_string();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Option<Value> = if bytes.is_empty() {
                None
            } else {
                Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&bytes).into_owned())
                }))
            };
            seen.push(format!("{method} {uri}"));
            assert_eq!(
                (method.as_str(), uri.as_str()),
                (expected.method, expected.uri.as_str()),
                "request {} differs from the script",
                position + 1
            );
            if let Some(wanted) = &expected.body {
                assert_eq!(
                    body.as_ref(),
                    Some(wanted),
                    "the body of request {} ({method} {uri})",
                    position + 1
                );
            }
            let response = Response::builder()
                .status(expected.status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&expected.reply).unwrap()))
                .unwrap();
            send.send_response(response);
        }
        if let Some((request, _)) = handle.next_request().await {
            panic!(
                "a request beyond the script: {} {} (after {seen:#?})",
                request.method(),
                request.uri()
            );
        }
        seen
    });
    (client, verifier)
}

/// The API server's `Status` for an error `code` with `reason`.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code
    })
}

/// The pod lists and recorded answers of `testdata/kubernetes/`, and the API server's own ways
/// with them: label selectors evaluated, queries encoded.
pub fn pod_list(file: &str) -> Value {
    let path = format!("{}/testdata/kubernetes/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A recorded API server answer of `testdata/kubernetes/api/`.
pub fn recorded(file: &str) -> Value {
    pod_list(&format!("api/{file}"))
}

/// Whether `labels` satisfy `selector` (equality, `!=`, `key`, `!key`, comma-joined), as the API
/// server evaluates a label selector.
pub fn matches(labels: &serde_json::Map<String, Value>, selector: &str) -> bool {
    selector.split(',').all(|term| {
        if let Some((key, value)) = term.split_once("!=") {
            labels.get(key).and_then(Value::as_str) != Some(value)
        } else if let Some((key, value)) = term.split_once('=') {
            labels.get(key).and_then(Value::as_str) == Some(value)
        } else if let Some(key) = term.strip_prefix('!') {
            !labels.contains_key(key)
        } else {
            labels.contains_key(term)
        }
    })
}

/// `list` with only the items `selector` picks.
pub fn selected(list: &Value, selector: &str) -> Value {
    let mut list = list.clone();
    let items: Vec<Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| {
            item["metadata"]["labels"]
                .as_object()
                .is_some_and(|labels| matches(labels, selector))
        })
        .cloned()
        .collect();
    list["items"] = Value::Array(items);
    list
}

pub use testkit::encoded;

/// The list of pods in `namespace` that `selector` picks, answered from `list`.
pub fn list_pods(namespace: &str, selector: &str, list: &Value) -> Exchange {
    Exchange::new(
        "GET",
        format!(
            "/api/v1/namespaces/{namespace}/pods?&labelSelector={}",
            encoded(selector)
        ),
    )
    .reply(200, selected(list, selector))
}
