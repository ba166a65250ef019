//! Whether acknowledged events reach the disk: the nats-server `evalctl` starts syncs every
//! acknowledged write where its version allows (`sync_interval: always`, since 2.10), and every
//! command warns in one line when the server it uses does not: an old server by its version, a
//! current one by its `/varz`. Real servers: the current one `scripts/setup` installs
//! (`/usr/local/bin/nats-server`) and Debian's 2.9.10 (`/usr/sbin/nats-server`); a part whose
//! server is missing skips, saying so.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CURRENT: &str = "/usr/local/bin/nats-server";
const DEBIAN: &str = "/usr/sbin/nats-server";

fn version_of(program: &str) -> Option<(u32, u32, u32)> {
    schemas::log::local::program_version(Path::new(program))
}

/// A nats-server with JetStream on free ports, `extra` arguments added; killed when dropped.
struct Server {
    child: Child,
    url: String,
    monitor: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server(program: &str, config: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (port, monitor) = (support::free_port(), support::free_port());
    let mut command = Command::new(program);
    if let Some(text) = config {
        let file = dir.path().join("server.conf");
        std::fs::write(&file, text).unwrap();
        command.arg("-c").arg(file);
    }
    let child = command
        .args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            &monitor.to_string(),
            "-sd",
        ])
        .arg(dir.path().join("store"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    support::wait_until(Duration::from_secs(10), "nats-server listens", || {
        std::net::TcpStream::connect(("127.0.0.1", monitor)).is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Server {
        child,
        url,
        monitor: format!("http://127.0.0.1:{monitor}"),
        _dir: dir,
    }
}

/// What `evalctl events` prints on stderr against `server`, with warnings shown (it then says
/// that the server holds no stream yet, which is true).
fn warnings(server: &Server, monitor: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_evalctl"));
    command
        .args(["events", "--json"])
        .env("EVAL_NATS_URL", &server.url)
        .env("RUST_LOG", "warn")
        .env_remove("EVAL_NATS_MONITOR");
    if let Some(monitor) = monitor {
        command.env("EVAL_NATS_MONITOR", monitor);
    }
    let output = command.output().unwrap();
    let stderr = support::text(&output.stderr);
    assert!(stderr.contains("stream EVAL does not exist"), "{stderr}");
    stderr
}

#[test]
fn an_old_server_is_warned_of_by_its_version() {
    if version_of(DEBIAN).is_none_or(|version| version >= (2, 10, 0)) {
        eprintln!(
            "skipped an_old_server_is_warned_of_by_its_version: no nats-server before 2.10 at {DEBIAN}"
        );
        return;
    }
    let old = server(DEBIAN, None);
    let stderr = warnings(&old, None);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("cannot sync acknowledged events to disk"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("nats-server 2.9.10"), "{stderr}");
}

#[test]
fn a_current_server_is_warned_of_by_its_varz_unless_it_syncs_always() {
    if version_of(CURRENT).is_none_or(|version| version < (2, 10, 0)) {
        eprintln!(
            "skipped a_current_server_is_warned_of_by_its_varz_unless_it_syncs_always: no nats-server 2.10 or later at {CURRENT} (scripts/setup installs it)"
        );
        return;
    }
    let default = server(CURRENT, None);
    let stderr = warnings(&default, Some(&default.monitor));
    assert!(
        stderr.contains("syncs acknowledged events to disk only every 120 s"),
        "{stderr}"
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|line| line.contains("nats-server"))
            .count(),
        1,
        "{stderr}"
    );
    // Without a monitoring endpoint nothing can be known, and nothing is said.
    assert!(!warnings(&default, None).contains("nats-server"));

    let synced = server(CURRENT, Some("jetstream {\n  sync_interval: always\n}\n"));
    let stderr = warnings(&synced, Some(&synced.monitor));
    assert!(!stderr.contains("sync"), "{stderr}");
}

/// The server `evalctl bench publish` starts (as `evalctl up` does) syncs every write where its
/// version allows, and the bench measures it beside one left to the default; Debian's old server
/// still works, unsynced, and is measured alone.
#[test]
fn the_servers_evalctl_starts_sync_where_they_can() {
    for (program, syncs) in [(CURRENT, true), (DEBIAN, false)] {
        let Some(version) = version_of(program) else {
            eprintln!("skipped {program}: not installed");
            continue;
        };
        let output = Command::new(env!("CARGO_BIN_EXE_evalctl"))
            .args(["bench", "publish", "--trials", "20", "--json"])
            .env("EVAL_NATS_SERVER", program)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", support::text(&output.stderr));
        let bench: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let syncs = syncs && version >= (2, 10, 0);
        assert_eq!(bench["syncs_always"], syncs, "{program}: {bench}");
        assert_eq!(
            bench["server_version"],
            format!("{}.{}.{}", version.0, version.1, version.2)
        );
        assert_eq!(bench["unsynced"].is_object(), syncs, "{bench}");
    }
}
