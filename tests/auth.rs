//! NATS with credentials, against real nats-servers configured as an operator of a secured
//! cluster would configure them: `evalctl up`'s own server lets in only the credential it keeps in
//! the data dir; a user and password reach a server from the flags, the variables and the URL; a
//! token, an NKey, TLS with a CA and a client certificate each work, and each is refused without;
//! and no error or banner ever prints a secret.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use schemas::log::EventLog;
use support::{Up, free_port, text, wait_until};

/// A nats-server started from a configuration file, killed when dropped.
struct ConfiguredNats {
    child: Child,
    port: u16,
}

impl ConfiguredNats {
    /// Starts nats-server with JetStream and `extra` configuration (an `authorization` or `tls`
    /// block), on a free loopback port.
    fn start(dir: &Path, extra: &str) -> ConfiguredNats {
        let port = free_port();
        let config = dir.join("server.conf");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\n{extra}\n",
                dir.join("store").display()
            ),
        )
        .unwrap();
        let child = Command::new(schemas::log::local::nats_server_program())
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(Duration::from_secs(20), "nats-server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        ConfiguredNats { child, port }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

impl Drop for ConfiguredNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `evalctl events` (which connects, then reads the stream) with `args` and `env`: exit 0 means
/// the server let it in (an empty log prints nothing, or says the stream does not exist yet).
fn events(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .arg("events")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "off")
        .env_remove("EVAL_NATS_URL")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Whether `evalctl` got in: it either read the (empty) log or found no stream, which it can
/// only learn once connected.
fn got_in(output: &Output) -> bool {
    output.status.success() || text(&output.stderr).contains("does not exist on")
}

fn refused(output: &Output) -> bool {
    !output.status.success() && text(&output.stderr).contains("refused to let us in")
}

fn shows_no_secret(output: &Output, secrets: &[&str]) {
    let shown = format!("{}{}", text(&output.stdout), text(&output.stderr));
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret:?} shown in: {shown}");
    }
}

/// `evalctl up` starts its server with one user whose random password it keeps, mode 0600, in the
/// data dir: commands of that data dir get in, a client without it does not, and another data dir
/// is refused with a message that names the way in and not the password.
#[test]
fn up_secures_its_own_server_and_only_its_data_dir_holds_the_key() {
    let data = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let up = Up::start(&url, &data.path().join("data"));
    let data_dir = data.path().join("data");
    let file = data_dir.join("nats/credential");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let password = std::fs::read_to_string(&file).unwrap();
    assert_eq!(password.len(), 32);
    let config = std::fs::metadata(data_dir.join("nats/server.conf")).unwrap();
    assert_eq!(config.permissions().mode() & 0o777, 0o600);
    // Where the server allows it (2.10 and later), `up`'s server syncs every acknowledged write.
    let version = schemas::log::local::program_version(&schemas::log::local::nats_server_program());
    let text_of_config = std::fs::read_to_string(data_dir.join("nats/server.conf")).unwrap();
    assert_eq!(
        text_of_config.contains("sync_interval: always"),
        version.is_some_and(|version| version >= schemas::log::durability::SYNC_SINCE),
        "{version:?}"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let anonymous = runtime.block_on(EventLog::connect(&url));
    assert!(
        matches!(anonymous, Err(schemas::log::Error::Refused { .. })),
        "{anonymous:?}"
    );
    let output = events(&data_dir, &["--nats", &url], &[]);
    assert!(got_in(&output), "{}", text(&output.stderr));
    let output = events(other.path(), &["--nats", &url], &[]);
    assert!(refused(&output), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("--data-dir"));
    shows_no_secret(&output, &[&password]);
    // The same credential given by hand, in the URL.
    let with_password = url.replace("nats://", &format!("nats://harness:{password}@"));
    let output = events(other.path(), &["--nats", &with_password], &[]);
    assert!(got_in(&output), "{}", text(&output.stderr));
    assert!(!up.stderr().contains(&password), "{}", up.stderr());
    assert!(up.stop().success());
}

/// `evalctl up`'s server lets each stage publish only its own events: the worker cannot publish a
/// `TrialScored` or a `TicketResolved`, nor delete or purge the stream; scoring can publish only
/// `TrialScored`, the capture only its own events, the reader nothing. An event smuggled under
/// another type's subject is stored but read by nobody as what it claims.
#[test]
fn each_stage_publishes_only_its_own_events_and_none_can_forge_another_s() {
    use schemas::event::{Event, Producer, TicketResolved, Timestamp};
    use schemas::log::Role;
    use schemas::log::auth::LocalCredential;

    let data = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let data_dir = data.path().join("data");
    let up = Up::start(&url, &data_dir);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let connect = |role: Role| {
        let credential = LocalCredential::load(&data_dir.join("nats"), role)
            .unwrap_or_else(|| panic!("no credential of {role:?}"));
        let mode = std::fs::metadata(LocalCredential::file(&data_dir.join("nats"), role))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{role:?}");
        runtime
            .block_on(EventLog::connect_with(&url, &credential.auth()))
            .unwrap()
    };
    let (harness, worker, capture, scoring, reader) = (
        connect(Role::Harness),
        connect(Role::Worker),
        connect(Role::Capture),
        connect(Role::Scoring),
        connect(Role::Reader),
    );
    let resolved = |campaign: &str| {
        Event::new(
            &Producer::here("forger"),
            campaign,
            Some("t1"),
            TicketResolved {
                operator_db: "/tmp/operator.db".into(),
                ticket_id: 1,
                resolved_at: Timestamp::now(),
            },
        )
    };
    // Publishes `payload` on `subject` with a plain JetStream client and waits for the stream's
    // acknowledgement: whether the stream took it.
    let stored = |log: &EventLog, subject: String, payload: Vec<u8>| {
        runtime.block_on(async {
            let jetstream = async_nats::jetstream::new(log.client().clone());
            let sent = jetstream.publish(subject, payload.into()).await;
            match sent {
                Ok(ack) => tokio::time::timeout(Duration::from_secs(3), ack)
                    .await
                    .is_ok_and(|ack| ack.is_ok()),
                Err(_) => false,
            }
        })
    };
    let event = resolved("c1");
    let encoded = event.encode();
    let scored_subject = "eval.c1.t1.TrialScored".to_string();
    for (name, log) in [
        ("worker", &worker),
        ("reader", &reader),
        ("scoring", &scoring),
    ] {
        assert!(
            !stored(log, encoded.subject.clone(), encoded.payload.to_vec()),
            "{name} published a TicketResolved"
        );
    }
    for (name, log) in [
        ("worker", &worker),
        ("capture", &capture),
        ("reader", &reader),
    ] {
        assert!(
            !stored(log, scored_subject.clone(), b"{}".to_vec()),
            "{name} published a TrialScored"
        );
    }
    // Each stage publishes what it makes.
    assert!(stored(
        &capture,
        encoded.subject.clone(),
        encoded.payload.to_vec()
    ));
    assert!(stored(&scoring, scored_subject.clone(), b"{}".to_vec()));
    assert!(stored(
        &worker,
        "eval.c1.t1.TrialStarted".into(),
        b"{}".to_vec()
    ));

    // A TicketResolved under the worker's TrialStarted subject is stored, and refused by every
    // reader: `events` shows it as unreadable, not as a resolution.
    let smuggled = resolved("c2").encode();
    assert!(stored(
        &worker,
        "eval.c2.t1.TrialStarted".into(),
        smuggled.payload.to_vec()
    ));
    let output = events(&data_dir, &["--nats", &url, "--campaign", "c2"], &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let shown = text(&output.stdout);
    assert!(
        shown.contains("unreadable event on eval.c2.t1.TrialStarted")
            && shown.contains("not the subject of this TicketResolved"),
        "{shown}"
    );

    // No stage may delete or purge the stream, or delete a message from it.
    for request in [
        "$JS.API.STREAM.DELETE.EVAL",
        "$JS.API.STREAM.PURGE.EVAL",
        "$JS.API.STREAM.MSG.DELETE.EVAL",
    ] {
        for (name, log) in [
            ("worker", &worker),
            ("capture", &capture),
            ("reader", &reader),
        ] {
            let answered = runtime.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(2),
                    log.client().request(request, r#"{"seq":1}"#.into()),
                )
                .await
            });
            let allowed = matches!(&answered, Ok(Ok(reply))
                if !String::from_utf8_lossy(&reply.payload).contains("error"));
            assert!(!allowed, "{name} could ask {request}: {answered:?}");
        }
    }
    let info = runtime
        .block_on(async {
            harness
                .stream()
                .await
                .unwrap()
                .info()
                .await
                .map(|info| info.state.messages)
        })
        .unwrap();
    assert_eq!(info, 4, "the stream keeps every message");
    assert!(up.stop().success());
}

/// A user and password reach a secured server from the flags, the variables and the URL; a wrong
/// password is refused, and neither it nor the right one is ever printed, even when nothing
/// answers.
#[test]
fn a_user_and_password_come_from_flags_variables_or_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConfiguredNats::start(
        dir.path(),
        "authorization { user: alice, password: \"s3cret-pw\" }",
    );
    let url = server.url("nats");
    let data = dir.path().join("data");
    for (args, env) in [
        (
            vec![
                "--nats",
                &url,
                "--nats-user",
                "alice",
                "--nats-password",
                "s3cret-pw",
            ],
            vec![],
        ),
        (
            vec!["--nats", &url],
            vec![
                ("EVAL_NATS_USER", "alice"),
                ("EVAL_NATS_PASSWORD", "s3cret-pw"),
            ],
        ),
    ] {
        let output = events(&data, &args, &env);
        assert!(got_in(&output), "{args:?}: {}", text(&output.stderr));
    }
    let in_url = url.replace("nats://", "nats://alice:s3cret-pw@");
    let output = events(&data, &["--nats", &in_url], &[]);
    assert!(got_in(&output), "{}", text(&output.stderr));

    let wrong = url.replace("nats://", "nats://alice:wr0ng-pw@");
    let output = events(&data, &["--nats", &wrong], &[]);
    assert!(refused(&output), "{}", text(&output.stderr));
    shows_no_secret(&output, &["wr0ng-pw", "s3cret-pw"]);
    let output = events(&data, &["--nats", &url], &[]);
    assert!(refused(&output), "no credentials: {}", text(&output.stderr));

    // `--help` shows which variables are set, never their values.
    let help = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(["events", "--help"])
        .env("EVAL_NATS_URL", &in_url)
        .env("EVAL_NATS_PASSWORD", "s3cret-pw")
        .output()
        .unwrap();
    assert!(help.status.success());
    shows_no_secret(&help, &["s3cret-pw"]);

    let nowhere = "nats://alice:s3cret-pw@127.0.0.1:1";
    let output = events(&data, &["--nats", nowhere], &[]);
    assert!(text(&output.stderr).contains("no NATS server answers at nats://127.0.0.1:1"));
    shows_no_secret(&output, &["s3cret-pw"]);
}

/// A token (flag or URL) and an NKey seed file each reach a server that asks for them.
#[test]
fn a_token_and_an_nkey_reach_the_servers_that_ask_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token_dir = dir.path().join("token");
    std::fs::create_dir_all(&token_dir).unwrap();
    let server = ConfiguredNats::start(&token_dir, "authorization { token: \"t0ken-value\" }");
    let url = server.url("nats");
    let output = events(&data, &["--nats", &url, "--nats-token", "t0ken-value"], &[]);
    assert!(got_in(&output), "{}", text(&output.stderr));
    let in_url = url.replace("nats://", "nats://t0ken-value@");
    let output = events(&data, &["--nats", &in_url], &[]);
    assert!(got_in(&output), "{}", text(&output.stderr));
    let output = events(&data, &["--nats", &url, "--nats-token", "nope"], &[]);
    assert!(refused(&output), "{}", text(&output.stderr));
    shows_no_secret(&output, &["nope", "t0ken-value"]);

    let nkey_dir = dir.path().join("nkey");
    std::fs::create_dir_all(&nkey_dir).unwrap();
    let user = nkeys::KeyPair::new_user();
    let server = ConfiguredNats::start(
        &nkey_dir,
        &format!(
            "authorization {{ users: [ {{ nkey: {} }} ] }}",
            user.public_key()
        ),
    );
    let seed = nkey_dir.join("user.nk");
    std::fs::write(&seed, user.seed().unwrap()).unwrap();
    let url = server.url("nats");
    let output = events(&data, &["--nats", &url, "--nats-nkey"], &[]);
    assert!(!output.status.success(), "a flag without its file");
    let seed_arg = seed.display().to_string();
    let output = events(&data, &["--nats", &url, "--nats-nkey", &seed_arg], &[]);
    assert!(got_in(&output), "{}", text(&output.stderr));
    let output = events(&data, &["--nats", &url], &[]);
    assert!(refused(&output), "{}", text(&output.stderr));
}

/// TLS: a server with a certificate of our own CA, which verifies clients' certificates too. With
/// the CA and a client certificate `evalctl` gets in; without the CA it does not trust the server,
/// and without a client certificate the server does not let it in.
#[test]
fn tls_with_a_ca_and_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl").args(args).output().unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            text(&output.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=eval test CA",
        "-keyout",
        &path("ca.key"),
        "-out",
        &path("ca.pem"),
    ]);
    // Version 3 certificates (extensions make them so), as rustls requires.
    std::fs::write(
        dir.path().join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("client.ext"),
        "extendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    for name in ["server", "client"] {
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &path(&format!("{name}.key")),
            "-out",
            &path(&format!("{name}.csr")),
        ]);
        let mut args = vec![
            "x509".to_string(),
            "-req".into(),
            "-days".into(),
            "2".into(),
            "-in".into(),
            path(&format!("{name}.csr")),
            "-CA".into(),
            path("ca.pem"),
            "-CAkey".into(),
            path("ca.key"),
            "-CAcreateserial".into(),
            "-out".into(),
            path(&format!("{name}.pem")),
        ];
        args.extend(["-extfile".to_string(), path(&format!("{name}.ext"))]);
        openssl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let server = ConfiguredNats::start(
        dir.path(),
        &format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}",
            path("server.pem"),
            path("server.key"),
            path("ca.pem")
        ),
    );
    let url = server.url("tls");
    let data = dir.path().join("data");
    let (ca, cert, key) = (path("ca.pem"), path("client.pem"), path("client.key"));
    let output = events(
        &data,
        &[
            "--nats",
            &url,
            "--nats-ca",
            &ca,
            "--nats-cert",
            &cert,
            "--nats-key",
            &key,
        ],
        &[],
    );
    assert!(got_in(&output), "{}", text(&output.stderr));
    // The same through the variables, with TLS required.
    let output = events(
        &data,
        &["--nats", &server.url("nats")],
        &[
            ("EVAL_NATS_CA", &ca),
            ("EVAL_NATS_CERT", &cert),
            ("EVAL_NATS_KEY", &key),
            ("EVAL_NATS_TLS", "true"),
        ],
    );
    assert!(got_in(&output), "{}", text(&output.stderr));
    let output = events(
        &data,
        &["--nats", &url, "--nats-cert", &cert, "--nats-key", &key],
        &[],
    );
    assert!(!got_in(&output), "a server of an unknown CA was trusted");
    let output = events(&data, &["--nats", &url, "--nats-ca", &ca], &[]);
    assert!(!got_in(&output), "a client without a certificate got in");
    let output = events(&data, &["--nats", &url, "--nats-cert", &cert], &[]);
    assert!(
        text(&output.stderr).contains("needs both --nats-cert and --nats-key"),
        "{}",
        text(&output.stderr)
    );
}

/// A JWT of NATS's decentralized authentication (`nsc`'s format): `claims` signed by `issuer`.
fn nats_jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::Engine;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let claims = serde_json::json!({
        // Unique per token, as nsc's hash of the claims is; the server does not check it.
        "jti": format!("{name}-{subject}-{}", issuer.public_key()),
        "iat": 1_700_000_000,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let signed = format!(
        "{}.{}",
        encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#),
        encode(claims.to_string().as_bytes())
    );
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", encode(&signature))
}

/// A `.creds` file's text, as `nsc` writes it: a user JWT and the user's NKey seed.
fn creds_text(jwt: &str, user: &nkeys::KeyPair) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\n\n-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    )
}

/// A `.creds` file: a server in operator mode (an operator, an account with JetStream, its
/// JWTs preloaded) lets in the user of a creds file as `nsc` writes it, from the flag and from
/// the variable, and no one without it.
#[test]
fn a_creds_file_reaches_a_server_in_operator_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (operator, system, account, user) = (
        nkeys::KeyPair::new_operator(),
        nkeys::KeyPair::new_account(),
        nkeys::KeyPair::new_account(),
        nkeys::KeyPair::new_user(),
    );
    let operator_jwt = nats_jwt(
        &operator,
        &operator.public_key(),
        "eval-test",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
        "conn": -1, "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1,
        "consumer": -1,
    });
    let account_jwt = nats_jwt(
        &operator,
        &account.public_key(),
        "harness",
        serde_json::json!({"limits": unlimited, "default_permissions": {"pub": {}, "sub": {}},
                           "type": "account", "version": 2}),
    );
    // JetStream needs the server's own system account.
    let system_jwt = nats_jwt(
        &operator,
        &system.public_key(),
        "SYS",
        serde_json::json!({"limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1,
                                      "exports": -1, "wildcards": true, "conn": -1, "leaf": -1},
                           "type": "account", "version": 2}),
    );
    let user_jwt = nats_jwt(
        &account,
        &user.public_key(),
        "worker",
        serde_json::json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                           "type": "user", "version": 2}),
    );
    let server = ConfiguredNats::start(
        dir.path(),
        &format!(
            "operator: \"{operator_jwt}\"\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: \"{system_jwt}\"\n  {}: \"{account_jwt}\"\n}}",
            system.public_key(),
            system.public_key(),
            account.public_key()
        ),
    );
    let creds = dir.path().join("worker.creds");
    std::fs::write(&creds, creds_text(&user_jwt, &user)).unwrap();
    let url = server.url("nats");
    let creds_arg = creds.display().to_string();
    let output = events(&data, &["--nats", &url, "--nats-creds", &creds_arg], &[]);
    assert!(got_in(&output), "{}", text(&output.stderr));
    let output = events(&data, &["--nats", &url], &[("EVAL_NATS_CREDS", &creds_arg)]);
    assert!(got_in(&output), "{}", text(&output.stderr));
    shows_no_secret(&output, &[&user.seed().unwrap()]);
    let output = events(&data, &["--nats", &url], &[]);
    assert!(refused(&output), "{}", text(&output.stderr));
    // A user its account did not sign is refused.
    let stranger = nats_jwt(
        &nkeys::KeyPair::new_account(),
        &user.public_key(),
        "stranger",
        serde_json::json!({"pub": {}, "sub": {}, "type": "user", "version": 2}),
    );
    std::fs::write(&creds, creds_text(&stranger, &user)).unwrap();
    let output = events(&data, &["--nats", &url, "--nats-creds", &creds_arg], &[]);
    assert!(refused(&output), "{}", text(&output.stderr));
}
