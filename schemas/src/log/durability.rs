//! Whether the server syncs acknowledged events to disk before it acknowledges them. nats-server
//! fsyncs its JetStream files every 2 minutes by default: an event acknowledged since is lost when
//! the machine loses power, and on a cluster whose nodes share a machine (or a power feed) that is
//! every copy (Jepsen's analysis of NATS 2.12.1, December 2025). `sync_interval: always` syncs
//! every write; it exists since nats-server 2.10.0. The servers `evalctl` starts are configured so
//! where the server allows it; any server is checked once per process, from its version and, where
//! its monitoring endpoint is known, its `/varz`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The first nats-server release with `sync_interval`.
pub const SYNC_SINCE: (u32, u32, u32) = (2, 10, 0);

/// The variable naming a server's monitoring endpoint (`http://host:8222`), for the check of
/// servers `evalctl` did not start.
pub const MONITOR_VARIABLE: &str = "EVAL_NATS_MONITOR";

/// `2.9.10` from `2.9.10`, `v2.15.1` or `nats-server: v2.15.1`.
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let version = text.trim().rsplit(' ').next()?.trim_start_matches('v');
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|part| part.parse::<u32>());
    Some((
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next().and_then(Result::ok).unwrap_or(0),
    ))
}

/// What `/varz` says of JetStream's syncing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syncing {
    pub always: bool,
    /// Nanoseconds between syncs when not `always`.
    pub interval_ns: u64,
}

/// The one-line warning for a server of `version` whose `/varz` said `syncing` (`None`: not
/// known), or `None` when acknowledged events are synced (or nothing says otherwise).
pub fn warning(version: &str, syncing: Option<Syncing>) -> Option<String> {
    let parsed = parse_version(version);
    if parsed.is_some_and(|parsed| parsed < SYNC_SINCE) {
        return Some(format!(
            "nats-server {version} cannot sync acknowledged events to disk (it has no sync_interval, added in 2.10.0): events acknowledged in the last 2 minutes are lost if its machine loses power; install a current server (scripts/setup installs 2.15.1)"
        ));
    }
    match syncing {
        Some(syncing) if !syncing.always => Some(format!(
            "nats-server {version} syncs acknowledged events to disk only every {} s: events acknowledged since are lost if its machine loses power; set `sync_interval: always` in its jetstream block",
            syncing.interval_ns / 1_000_000_000
        )),
        _ => None,
    }
}

/// JetStream's syncing as `GET {monitor}/varz` says (`jetstream.config.sync_always` and
/// `sync_interval`; servers before 2.10 say neither, which reads as never `always`).
pub async fn varz_syncing(monitor: &str) -> Result<Syncing, String> {
    let varz = monitor_json(monitor, "/varz").await?;
    let config = &varz["jetstream"]["config"];
    Ok(Syncing {
        always: config["sync_always"].as_bool().unwrap_or(false),
        interval_ns: config["sync_interval"].as_u64().unwrap_or(120_000_000_000),
    })
}

/// `GET {monitor}{path}` of a server's monitoring endpoint, as JSON (2 s at most).
pub(crate) async fn monitor_json(monitor: &str, path: &str) -> Result<serde_json::Value, String> {
    let address = monitor
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|error| format!("{address}: {error}"))?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
            .await
            .map_err(|error| error.to_string())?;
        let mut answer = Vec::new();
        stream
            .take(4 << 20)
            .read_to_end(&mut answer)
            .await
            .map_err(|error| error.to_string())?;
        Ok::<_, String>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .map_err(|_| format!("{address}: timed out"))??;
    let text = String::from_utf8_lossy(&answer);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(text.as_ref(), |(_, body)| body);
    serde_json::from_str(body).map_err(|error| format!("{address}{path}: {error}"))
}

/// The monitoring endpoints of the servers this process started, by client URL.
static OWN_MONITORS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Records that the server at `url`, which this process started, is monitored at `monitor`.
pub(crate) fn register_monitor(url: &str, monitor: &str) {
    if let Ok(mut monitors) = OWN_MONITORS.lock() {
        monitors.push((url.to_string(), monitor.to_string()));
    }
}

/// Where the server at `url` is monitored: a server this process started, else
/// [`MONITOR_VARIABLE`].
pub fn monitor_of(url: &str) -> Option<String> {
    let own = OWN_MONITORS.lock().ok().and_then(|monitors| {
        monitors
            .iter()
            .find(|(client, _)| client == url)
            .map(|(_, monitor)| monitor.clone())
    });
    own.or_else(|| std::env::var(MONITOR_VARIABLE).ok())
        .filter(|monitor| !monitor.trim().is_empty())
}

/// Checks the server of `client` (at `url`) once per process and logs the warning, if any, as one
/// line.
pub(crate) async fn check_once(client: &async_nats::Client, url: &str) {
    static CHECKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if CHECKED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let version = client.server_info().version;
    let syncing = match monitor_of(url) {
        Some(monitor) => match varz_syncing(&monitor).await {
            Ok(syncing) => Some(syncing),
            Err(reason) => {
                tracing::debug!(%reason, "cannot read the server's /varz");
                None
            }
        },
        None => None,
    };
    if let Some(warning) = warning(&version, syncing) {
        tracing::warn!("{warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_the_server_prints_them() {
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9, 10)));
        assert_eq!(parse_version("2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("v2.10.0-beta.54"), Some((2, 10, 0)));
        assert_eq!(parse_version("nonsense"), None);
    }

    #[test]
    fn old_servers_and_unsynced_ones_are_warned_of() {
        assert!(warning("2.9.10", None).unwrap().contains("cannot sync"));
        let periodic = Syncing {
            always: false,
            interval_ns: 120_000_000_000,
        };
        assert!(
            warning("2.15.1", Some(periodic))
                .unwrap()
                .contains("only every 120 s")
        );
        let always = Syncing {
            always: true,
            interval_ns: 120_000_000_000,
        };
        assert_eq!(warning("2.15.1", Some(always)), None);
        // Nothing known of a current server: no warning.
        assert_eq!(warning("2.15.1", None), None);
    }
}
