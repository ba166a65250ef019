//! How every command reaches NATS: the URL (`--nats`, `EVAL_NATS_URL`, or the default), the
//! credentials of the `NATS credentials` flags and variables, and, when none is given for a server
//! on this host, the credential that `evalctl up` made for its own server in the data dir. URLs
//! are shown without their secrets.

use schemas::log::auth::{self, LocalCredential, NatsAuth};
use schemas::log::{DEFAULT_NATS_URL, EventLog, Role};

use crate::Global;

impl Global {
    /// The NATS URL as given, credentials included (never print it: see [`Global::nats_shown`]).
    pub fn nats_url(&self) -> &str {
        self.nats.as_deref().unwrap_or(DEFAULT_NATS_URL)
    }

    /// The stream's copies `--replicas` asks for.
    pub fn replicas(&self) -> Option<usize> {
        self.replicas.map(usize::from)
    }

    /// Whether the user named the server (`--nats` or `EVAL_NATS_URL`) rather than taking the
    /// default.
    pub fn nats_named(&self) -> bool {
        self.nats.is_some()
    }

    /// The URL as it may be shown: without user, password or token.
    pub fn nats_shown(&self) -> String {
        auth::redact(self.nats_url())
    }

    /// Where `evalctl up` keeps its own server (store, configuration, credential).
    pub fn nats_dir(&self) -> std::path::PathBuf {
        self.data_dir.join("nats")
    }

    /// The credentials to present: the flags and variables; else those in the URL; else, for a
    /// server on this host, the credential of the data dir's own server (if `evalctl up` made
    /// one), the harness's.
    pub fn nats_auth(&self) -> NatsAuth {
        self.nats_auth_as(Role::Harness)
    }

    /// [`Global::nats_auth`] for a stage: by default, the data dir's credential of `role`'s
    /// user (or, from an older data dir, the harness's). What the user gives goes to every stage.
    pub fn nats_auth_as(&self, role: Role) -> NatsAuth {
        let given = NatsAuth {
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            token: self.nats_token.clone(),
            nkey_file: self.nats_nkey.clone(),
            creds_file: self.nats_creds.clone(),
            ca_file: self.nats_ca.clone(),
            cert_file: self.nats_cert.clone(),
            key_file: self.nats_key.clone(),
            require_tls: self.nats_tls,
        };
        let (servers, in_url) = auth::split_url(self.nats_url());
        if given.identifies() || in_url.identifies() || !on_this_host(&servers) {
            return given;
        }
        let dir = self.nats_dir();
        match LocalCredential::load(&dir, role)
            .or_else(|| LocalCredential::load(&dir, Role::Harness))
        {
            Some(credential) => given.or(credential.auth()),
            None => given,
        }
    }

    /// Connects to the event log with these settings, as the harness.
    pub async fn connect(&self) -> schemas::log::Result<EventLog> {
        self.connect_as(Role::Harness).await
    }

    /// Connects to the event log as `role`'s user.
    pub async fn connect_as(&self, role: Role) -> schemas::log::Result<EventLog> {
        EventLog::connect_with(self.nats_url(), &self.nats_auth_as(role))
            .await
            .map(|log| log.with_replicas(self.replicas()))
    }
}

/// Whether every server of `servers` (without credentials) is on this host.
fn on_this_host(servers: &str) -> bool {
    servers
        .split(',')
        .all(|server| is_loopback(host_and_port(server).0))
}

/// The host and the port (if written) of one server of a NATS URL, without credentials:
/// `nats://127.0.0.1:4222` → (`127.0.0.1`, `4222`); `[::1]:4222` keeps its brackets.
pub fn host_and_port(server: &str) -> (&str, Option<&str>) {
    let rest = server.split_once("://").map_or(server, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_end = match authority.strip_prefix('[') {
        Some(v6) => v6.find(']').map_or(authority.len(), |end| end + 2),
        None => authority.find(':').unwrap_or(authority.len()),
    };
    let (host, port) = authority.split_at(host_end);
    (host, port.strip_prefix(':'))
}

/// Whether `host` names this machine's loopback.
pub fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use schemas::log::Role;

    use super::on_this_host;
    use crate::Cli;

    fn global(args: &[&str]) -> crate::Global {
        let mut argv = vec!["evalctl"];
        argv.extend_from_slice(args);
        argv.push("events");
        Cli::try_parse_from(argv).unwrap().global
    }

    /// The data dir's credential goes to a server on this host when nothing else is given, never
    /// elsewhere, and never in place of what the user gave.
    #[test]
    fn the_local_credential_goes_only_to_this_host_and_only_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        schemas::log::auth::LocalCredential::load_or_create(
            &dir.path().join("nats"),
            Role::Harness,
        )
        .unwrap();
        let local = global(&["--data-dir", data, "--nats", "nats://127.0.0.1:4222"]).nats_auth();
        assert_eq!(local.user.as_deref(), Some("harness"));
        assert!(local.password.is_some());
        // A stage without its own credential in the data dir falls back to the harness's; with
        // one, it presents its own.
        let stage = global(&["--data-dir", data]);
        assert_eq!(stage.nats_auth_as(Role::Scoring), local);
        schemas::log::auth::LocalCredential::load_or_create(
            &dir.path().join("nats"),
            Role::Scoring,
        )
        .unwrap();
        assert_eq!(
            stage.nats_auth_as(Role::Scoring).user.as_deref(),
            Some("scoring")
        );
        let remote = global(&["--data-dir", data, "--nats", "nats://10.0.0.2:4222"]).nats_auth();
        assert_eq!(remote, schemas::log::NatsAuth::default());
        let given = global(&["--data-dir", data, "--nats-token", "t"]).nats_auth();
        assert_eq!((given.token.as_deref(), given.user), (Some("t"), None));
        let in_url = global(&["--data-dir", data, "--nats", "nats://u:p@127.0.0.1:4222"]);
        assert_eq!(in_url.nats_auth(), schemas::log::NatsAuth::default());
        assert_eq!(in_url.nats_shown(), "nats://127.0.0.1:4222");
    }

    #[test]
    fn only_loopback_servers_get_the_local_credential() {
        assert!(on_this_host("nats://127.0.0.1:4222"));
        assert!(on_this_host("nats://localhost:4222,nats://[::1]:4223"));
        assert!(!on_this_host("nats://10.0.0.2:4222"));
        assert!(!on_this_host(
            "nats://127.0.0.1:4222,nats://nats.example:4222"
        ));
        assert!(on_this_host("[::1]"));
        assert_eq!(
            super::host_and_port("nats://[::1]:4223/"),
            ("[::1]", Some("4223"))
        );
        assert_eq!(super::host_and_port("localhost"), ("localhost", None));
    }
}
