//! The JSON client of the subjects' own HTTP APIs (etcd's gRPC gateway, `POST /v3/...`; PD's
//! `/pd/api/v1`): `ureq`, the workspace's one HTTP client (the viewer's callers are synchronous, so a blocking client serves both), run on
//! tokio's blocking pool. One request per connection and a deadline on the whole exchange, so a
//! paused or partitioned member costs one timeout and a restarted one never meets a stale
//! pooled connection.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{addr}: timed out after {}ms", timeout.as_millis())]
    TimedOut { addr: SocketAddr, timeout: Duration },
    #[error("{addr}: {reason}")]
    Transport { addr: SocketAddr, reason: String },
    #[error("{addr}{path}: HTTP {status}: {body}")]
    Status {
        addr: SocketAddr,
        path: String,
        status: u16,
        body: String,
    },
    #[error("{addr}{path}: unreadable answer: {reason}")]
    Malformed {
        addr: SocketAddr,
        path: String,
        reason: String,
    },
}

/// POSTs `body` as JSON to `http://addr{path}` and returns the JSON answer.
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value, HttpError> {
    let text = call(Method::Post, addr, path, Some(body.to_string()), timeout).await?;
    serde_json::from_str(&text).map_err(|error| HttpError::Malformed {
        addr,
        path: path.to_string(),
        reason: error.to_string(),
    })
}

/// An HTTP method of the APIs the subjects call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

/// One request to `http://addr{path}` (with `body` as JSON), answered by a 200 whose body is
/// returned as text; any other status is [`HttpError::Status`] with the start of its body.
pub async fn call(
    method: Method,
    addr: SocketAddr,
    path: &str,
    body: Option<String>,
    timeout: Duration,
) -> Result<String, HttpError> {
    let path = path.to_string();
    let exchange = tokio::task::spawn_blocking(move || {
        exchange(method, addr, &path, body.as_deref(), timeout)
    });
    // The blocking call has its own deadline; this one only guards against a starved pool.
    match tokio::time::timeout(timeout + Duration::from_millis(200), exchange).await {
        Ok(Ok(result)) => result,
        Ok(Err(join_error)) => Err(HttpError::Transport {
            addr,
            reason: join_error.to_string(),
        }),
        Err(_) => Err(HttpError::TimedOut { addr, timeout }),
    }
}

/// One agent for the process; it keeps no idle connection.
fn agent() -> &'static ureq::Agent {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Lab addresses are never reached through a proxy named by the environment.
            .proxy(None)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .build()
            .into()
    })
}

fn exchange(
    method: Method,
    addr: SocketAddr,
    path: &str,
    payload: Option<&str>,
    timeout: Duration,
) -> Result<String, HttpError> {
    let malformed = |reason: String| HttpError::Malformed {
        addr,
        path: path.to_string(),
        reason,
    };
    let url = format!("http://{addr}{path}");
    let transport = |error: ureq::Error| match error {
        ureq::Error::Timeout(_) => HttpError::TimedOut { addr, timeout },
        other => HttpError::Transport {
            addr,
            reason: other.to_string(),
        },
    };
    let agent = agent();
    let mut response = match method {
        Method::Get => agent
            .get(&url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .call(),
        Method::Delete => agent
            .delete(&url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .call(),
        Method::Post => agent
            .post(&url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", "application/json")
            .send(payload.unwrap_or("")),
    }
    .map_err(transport)?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|error| match error {
            ureq::Error::Timeout(_) => HttpError::TimedOut { addr, timeout },
            other => malformed(other.to_string()),
        })?;
    if status != 200 {
        return Err(HttpError::Status {
            addr,
            path: path.to_string(),
            status,
            body: body.chars().take(300).collect(),
        });
    }
    Ok(body)
}
