//! How a process proves to NATS who it is, and checks who NATS is: user and password (also from
//! the URL, `nats://user:password@host:4222`, which async-nats itself ignores), a token, an NKey
//! seed file, a `.creds` file, TLS with a CA and a client certificate. Every command takes the
//! same settings (flags and `EVAL_NATS_*` variables), and a URL is shown only without its
//! secrets. `evalctl up`'s own server gets a random password kept in a file only its user can
//! read ([`LocalCredential`]), which the commands of that data dir use.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngExt;

use super::roles::Role;

/// The user `evalctl up`'s own server knows.
pub const HARNESS_USER: &str = "harness";
/// The file, in the embedded server's directory, that holds its password.
pub const CREDENTIAL_FILE: &str = "credential";

/// What to present to NATS. Nothing set: connect without authentication.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NatsAuth {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// A file holding an NKey seed (`SU…`).
    pub nkey_file: Option<PathBuf>,
    /// A `.creds` file (a user JWT and its NKey seed).
    pub creds_file: Option<PathBuf>,
    /// CA certificates (PEM) the server's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key (PEM), for servers that verify clients.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Refuse a connection without TLS.
    pub require_tls: bool,
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "<hidden>");
        f.debug_struct("NatsAuth")
            .field("user", &self.user)
            .field("password", &hidden(&self.password))
            .field("token", &hidden(&self.token))
            .field("nkey_file", &self.nkey_file)
            .field("creds_file", &self.creds_file)
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("require_tls", &self.require_tls)
            .finish()
    }
}

impl NatsAuth {
    /// Whether any way of proving who we are is set (TLS settings alone are not one).
    pub fn identifies(&self) -> bool {
        self.user.is_some()
            || self.token.is_some()
            || self.nkey_file.is_some()
            || self.creds_file.is_some()
            || self.cert_file.is_some()
    }

    /// `self`, with what `other` sets where `self` sets nothing.
    pub fn or(self, other: NatsAuth) -> NatsAuth {
        NatsAuth {
            user: self.user.or(other.user),
            password: self.password.or(other.password),
            token: self.token.or(other.token),
            nkey_file: self.nkey_file.or(other.nkey_file),
            creds_file: self.creds_file.or(other.creds_file),
            ca_file: self.ca_file.or(other.ca_file),
            cert_file: self.cert_file.or(other.cert_file),
            key_file: self.key_file.or(other.key_file),
            require_tls: self.require_tls || other.require_tls,
        }
    }

    /// The connect options these settings make. Fails when a file cannot be read or two ways of
    /// authenticating are given at once.
    pub async fn options(&self) -> Result<async_nats::ConnectOptions, String> {
        let ways = [
            self.user.is_some() || self.password.is_some(),
            self.token.is_some(),
            self.nkey_file.is_some(),
            self.creds_file.is_some(),
        ];
        if ways.iter().filter(|way| **way).count() > 1 {
            return Err(
                "give one way of authenticating to NATS: a user and password, a token, an NKey or a creds file"
                    .to_string(),
            );
        }
        let mut options = async_nats::ConnectOptions::new();
        match (&self.user, &self.password) {
            (Some(user), password) => {
                options =
                    options.user_and_password(user.clone(), password.clone().unwrap_or_default());
            }
            (None, Some(_)) => return Err("a NATS password needs a user (--nats-user)".into()),
            (None, None) => {}
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(file) = &self.nkey_file {
            let seed = std::fs::read_to_string(file)
                .map_err(|error| format!("NKey seed file {}: {error}", file.display()))?;
            options = options.nkey(seed.trim().to_string());
        }
        if let Some(file) = &self.creds_file {
            options = options
                .credentials_file(file)
                .await
                .map_err(|error| format!("creds file {}: {error}", file.display()))?;
        }
        if let Some(file) = &self.ca_file {
            options = options.add_root_certificates(file.clone());
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                options = options.add_client_certificate(cert.clone(), key.clone());
            }
            (None, None) => {}
            _ => return Err("a client certificate needs both --nats-cert and --nats-key".into()),
        }
        Ok(options.require_tls(self.require_tls))
    }
}

/// `url` without the user information before `@` (of every server of a comma-separated list),
/// and what that information held: `user:password` as a user and password, a lone value as a
/// token (as NATS URLs have it).
pub fn split_url(url: &str) -> (String, NatsAuth) {
    let mut auth = NatsAuth::default();
    let servers: Vec<String> = url
        .split(',')
        .map(|server| {
            let (scheme, rest) = match server.split_once("://") {
                Some((scheme, rest)) => (format!("{scheme}://"), rest),
                None => (String::new(), server),
            };
            let (authority, path) = match rest.find('/') {
                Some(slash) => rest.split_at(slash),
                None => (rest, ""),
            };
            let Some((userinfo, host)) = authority.rsplit_once('@') else {
                return server.to_string();
            };
            if auth == NatsAuth::default() {
                match userinfo.split_once(':') {
                    Some((user, password)) => {
                        auth.user = Some(percent_decode(user));
                        auth.password = Some(percent_decode(password));
                    }
                    None => auth.token = Some(percent_decode(userinfo)),
                }
            }
            format!("{scheme}{host}{path}")
        })
        .collect();
    (servers.join(","), auth)
}

/// `url` as it may be shown: without its user information.
pub fn redact(url: &str) -> String {
    split_url(url).0
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The password of one role's user on `evalctl up`'s own server, in `<dir>/credential` (the
/// harness's) or `<dir>/credential.<user>`, mode 0600.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalCredential {
    pub role: Role,
    pub password: String,
}

impl std::fmt::Debug for LocalCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalCredential({}, <hidden>)", self.role.user())
    }
}

impl LocalCredential {
    /// The file of `role`'s credential in `dir`.
    pub fn file(dir: &Path, role: Role) -> PathBuf {
        match role {
            Role::Harness => dir.join(CREDENTIAL_FILE),
            _ => dir.join(format!("{CREDENTIAL_FILE}.{}", role.user())),
        }
    }

    /// `role`'s credential kept in `dir`, if there is one this user alone can read.
    pub fn load(dir: &Path, role: Role) -> Option<LocalCredential> {
        let file = LocalCredential::file(dir, role);
        let meta = std::fs::metadata(&file).ok()?;
        if meta.permissions().mode() & 0o077 != 0 {
            return None;
        }
        let password = std::fs::read_to_string(&file).ok()?.trim().to_string();
        (!password.is_empty()).then_some(LocalCredential { role, password })
    }

    /// `role`'s credential kept in `dir`, made (random, 32 letters and digits) when there is
    /// none.
    pub fn load_or_create(dir: &Path, role: Role) -> std::io::Result<LocalCredential> {
        if let Some(credential) = LocalCredential::load(dir, role) {
            return Ok(credential);
        }
        std::fs::create_dir_all(dir)?;
        let password: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        write_private(&LocalCredential::file(dir, role), &password)?;
        Ok(LocalCredential { role, password })
    }

    /// Every role's credential kept in `dir`, each made when missing.
    pub fn load_or_create_all(dir: &Path) -> std::io::Result<Vec<LocalCredential>> {
        Role::ALL
            .into_iter()
            .map(|role| LocalCredential::load_or_create(dir, role))
            .collect()
    }

    /// The settings that present this credential.
    pub fn auth(&self) -> NatsAuth {
        NatsAuth {
            user: Some(self.role.user().to_string()),
            password: Some(self.password.clone()),
            ..NatsAuth::default()
        }
    }
}

/// Writes `text` into `path`, readable by this user alone (an older file's mode included).
pub(super) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An older file keeps its mode through `open`: make it this user's alone.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets_and_keep_their_servers() {
        let (url, auth) = split_url("nats://alice:s%40cret@127.0.0.1:4222");
        assert_eq!(url, "nats://127.0.0.1:4222");
        assert_eq!(auth.user.as_deref(), Some("alice"));
        assert_eq!(auth.password.as_deref(), Some("s@cret"));
        let (url, auth) = split_url("tls://t0ken@a.example:4222,tls://t0ken@b.example:4222");
        assert_eq!(url, "tls://a.example:4222,tls://b.example:4222");
        assert_eq!(auth.token.as_deref(), Some("t0ken"));
        assert_eq!(split_url("nats://127.0.0.1:4222").1, NatsAuth::default());
        assert_eq!(redact("127.0.0.1:4222"), "127.0.0.1:4222");
        let shown = format!("{:?}", split_url("nats://u:hunter2@h:1").1);
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_local_credential_is_made_once_and_readable_by_its_user_alone() {
        let dir = tempfile::tempdir().unwrap();
        let made = LocalCredential::load_or_create(dir.path(), Role::Harness).unwrap();
        assert_eq!(made.password.len(), 32);
        let file = dir.path().join(CREDENTIAL_FILE);
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            LocalCredential::load_or_create(dir.path(), Role::Harness).unwrap(),
            made
        );
        // Each role has its own file and password.
        let worker = LocalCredential::load_or_create(dir.path(), Role::Worker).unwrap();
        assert_ne!(worker.password, made.password);
        assert!(dir.path().join("credential.worker").exists());
        assert_eq!(worker.auth().user.as_deref(), Some("worker"));
        // Readable by others: not trusted, not used.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(LocalCredential::load(dir.path(), Role::Harness), None);
    }
}
