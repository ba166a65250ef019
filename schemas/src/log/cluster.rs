//! A JetStream cluster of `nats-server`s on this host's loopback, for tests and demos: each
//! member with its own client, route and monitoring ports, its own file store in a directory of
//! its own, routes to every other member, and `sync_interval: always` where the version allows
//! it. A member can be killed (SIGKILL, as a crash) and started again on the same ports and store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::local::{LocalNats, LocalServerError};
use super::ports::unused_ports;

/// The cluster's name in its members' configuration.
pub const CLUSTER_NAME: &str = "eval-local";

/// One member: where it lives, and the server while it runs.
#[derive(Debug)]
struct Member {
    name: String,
    dir: PathBuf,
    client_port: u16,
    route_port: u16,
    server: Option<LocalNats>,
}

/// A running cluster of `size` members on 127.0.0.1.
#[derive(Debug)]
pub struct LocalCluster {
    members: Vec<Member>,
}

impl LocalCluster {
    /// Starts `size` members (3 for a cluster that survives one member's loss) under `dir`
    /// (`dir/n1`, `dir/n2`, …) and waits until every one answers for JetStream.
    pub async fn start(dir: &Path, size: usize) -> Result<LocalCluster, LocalServerError> {
        // Ports are picked outside the ephemeral range (`ports.rs`), so only another pick can
        // take one before its member binds it; such a start is tried again on fresh ports.
        let mut attempt = 1;
        loop {
            match LocalCluster::start_once(dir, size).await {
                Err(LocalServerError::Exited { log, .. })
                    if attempt < 3 && port_was_taken(&log) =>
                {
                    tracing::warn!(
                        log = %log.display(),
                        "a member's port was taken before it bound it; starting again on others"
                    );
                    for number in 1..=size {
                        let _ = std::fs::remove_dir_all(dir.join(format!("n{number}")));
                    }
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn start_once(dir: &Path, size: usize) -> Result<LocalCluster, LocalServerError> {
        let ports = unused_ports(2 * size).map_err(|source| LocalServerError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let members = (1..=size)
            .zip(ports.chunks(2))
            .map(|(number, ports)| {
                let name = format!("n{number}");
                Member {
                    dir: dir.join(&name),
                    name,
                    client_port: ports[0],
                    route_port: ports[1],
                    server: None,
                }
            })
            .collect();
        // Dropped on an error, the members started so far are killed.
        let mut cluster = LocalCluster { members };
        // All at once: a member's JetStream answers only once a majority has met.
        let mut waiting = Vec::with_capacity(size);
        for index in 0..size {
            waiting.push(cluster.spawn(index)?);
        }
        for (index, ports_file) in waiting.into_iter().enumerate() {
            cluster.wait(index, &ports_file).await?;
        }
        cluster.wait_for_peers(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// Waits until JetStream's meta group has a leader and counts every other member current
    /// and online. A member's JetStream answers once a majority has met, but a stream with as
    /// many replicas as members is placed only once all are ("no suitable peers for placement,
    /// peer offline" before).
    async fn wait_for_peers(&self, limit: Duration) -> Result<(), LocalServerError> {
        let size = self.members.len();
        let started = std::time::Instant::now();
        loop {
            for member in &self.members {
                let Some(monitor) = member.server.as_ref().and_then(LocalNats::monitor_url) else {
                    continue;
                };
                if let Ok(jsz) = super::durability::monitor_json(monitor, "/jsz").await
                    && meta_group_complete(&jsz, size)
                {
                    return Ok(());
                }
            }
            if started.elapsed() > limit {
                return Err(LocalServerError::NotReady {
                    seconds: limit.as_secs(),
                    log: self.members[0]
                        .server
                        .as_ref()
                        .map_or_else(PathBuf::new, |server| server.log_file().to_path_buf()),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every member's client URL, comma-separated, as `--nats` takes them.
    pub fn urls(&self) -> String {
        (0..self.members.len())
            .map(|index| self.url(index))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URL of member `index` (from 0), whether or not it runs.
    pub fn url(&self, index: usize) -> String {
        format!("nats://127.0.0.1:{}", self.members[index].client_port)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The pid of member `index`, while it runs.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.members[index].server.as_ref().and_then(LocalNats::pid)
    }

    /// The directory of member `index` (its store, configuration and log).
    pub fn dir(&self, index: usize) -> &Path {
        &self.members[index].dir
    }

    /// Kills member `index` with SIGKILL, as a crash would.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut server) = self.members[index].server.take() {
            server.kill_now();
        }
    }

    /// Starts member `index` again, on its ports and store, and waits until it answers.
    pub async fn restart(&mut self, index: usize) -> Result<(), LocalServerError> {
        self.kill(index);
        let ports_file = self.spawn(index)?;
        self.wait(index, &ports_file).await
    }

    /// Stops every member gracefully.
    pub async fn stop(mut self) {
        for member in &mut self.members {
            if let Some(server) = member.server.take() {
                server.stop(Duration::from_secs(5)).await;
            }
        }
    }

    fn spawn(&mut self, index: usize) -> Result<PathBuf, LocalServerError> {
        let routes = self
            .members
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, member)| format!("\"nats-route://127.0.0.1:{}\"", member.route_port))
            .collect::<Vec<_>>()
            .join(", ");
        let member = &mut self.members[index];
        let extra = format!(
            "server_name: \"{name}\"\ncluster {{\n  name: \"{CLUSTER_NAME}\"\n  listen: \"127.0.0.1:{route}\"\n  routes: [{routes}]\n}}\n",
            name = member.name,
            route = member.route_port,
        );
        let (server, ports_file) =
            LocalNats::spawn(&member.dir, Some(member.client_port), &[], true, &extra)?;
        member.server = Some(server);
        Ok(ports_file)
    }

    async fn wait(&mut self, index: usize, ports_file: &Path) -> Result<(), LocalServerError> {
        let server = self.members[index]
            .server
            .as_mut()
            .expect("a spawned member has its server");
        server.wait_ready(ports_file, Duration::from_secs(30)).await
    }
}

/// Whether a member's `/jsz` shows a meta group of `size` members: a leader, and every peer it
/// lists current and not offline (nats-server 2.15 lists every member, itself included; the
/// leader is counted apart in case a version leaves it out).
fn meta_group_complete(jsz: &serde_json::Value, size: usize) -> bool {
    let meta = &jsz["meta_cluster"];
    let has_leader = meta["leader"]
        .as_str()
        .is_some_and(|leader| !leader.is_empty());
    let others = meta["replicas"].as_array().map_or(&[][..], Vec::as_slice);
    has_leader
        && others.len() + 1 >= size
        && others.iter().all(|peer| {
            peer["current"].as_bool() == Some(true) && peer["offline"].as_bool() != Some(true)
        })
}

/// Whether a member's log says it could not listen because its port was in use.
fn port_was_taken(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|text| text.contains("address already in use"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real nats-server started on a port something else holds: the start fails as a member's
    /// would, and its log is read as a taken port (what makes the cluster start again).
    #[tokio::test]
    async fn a_server_whose_port_is_held_exits_and_its_log_says_the_port_was_taken() {
        let dir = tempfile::tempdir().unwrap();
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let error = LocalNats::start(dir.path(), Some(port)).await.unwrap_err();
        let LocalServerError::Exited { log, .. } = &error else {
            panic!("expected an exit, got {error}");
        };
        assert!(
            port_was_taken(log),
            "{}",
            std::fs::read_to_string(log).unwrap()
        );
        assert!(!port_was_taken(&dir.path().join("no such log")));
    }

    /// Every member started on ports of its own: no two of the six the same (the range itself is
    /// `ports.rs`'s test).
    #[tokio::test(flavor = "multi_thread")]
    async fn a_cluster_starts_on_distinct_ports() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = LocalCluster::start(dir.path(), 3).await.unwrap();
        let mut ports: Vec<u16> = cluster
            .members
            .iter()
            .flat_map(|member| [member.client_port, member.route_port])
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 6);
        cluster.stop().await;
    }
}
