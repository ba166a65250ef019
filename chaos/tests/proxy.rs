//! Tests of the delay proxy over real TCP on 127.0.0.1, with an echo server as the upstream.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos::proxy::{
    CONTROL_REFRESH_INTERVAL, DelaySettings, DeliverySchedule, clear_control, run_delay_proxy,
    write_control,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const DELAY_80_TO_120: DelaySettings = DelaySettings {
    min_ms: 80,
    max_ms: 120,
    seed: 7,
};

/// Only keeps a broken proxy from hanging the suite; no assertion depends on it.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Long enough for the proxy to notice a control change and deliver what it queued before it.
fn settle_time() -> Duration {
    CONTROL_REFRESH_INTERVAL * 3 + Duration::from_millis(DELAY_80_TO_120.max_ms.into())
}

#[tokio::test]
async fn without_control_file_bytes_echo_unchanged_and_half_close_propagates() {
    let mut lab = Lab::start(start_echo_server().await).await;

    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let client = TcpStream::connect(lab.proxy_addr).await.unwrap();
    let (mut client_read, mut client_write) = client.into_split();
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        client_write.write_all(&sent).await?;
        // The echo server only ends its reply once this EOF has crossed the proxy.
        client_write.shutdown().await
    });
    let mut echoed = Vec::new();
    guard(client_read.read_to_end(&mut echoed)).await.unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "echoed bytes differ from the sent ones");

    // Shutdown closes live connections and returns.
    let mut idle_client = TcpStream::connect(lab.proxy_addr).await.unwrap();
    round_trip(&mut idle_client).await;
    lab.shutdown.cancel();
    guard(&mut lab.proxy_task).await.unwrap().unwrap();
    assert_closed(&mut idle_client).await;
}

#[tokio::test]
async fn with_delay_each_direction_is_delayed() {
    let lab = Lab::start(start_echo_server().await).await;
    write_control(&lab.control, &DELAY_80_TO_120).unwrap();

    let mut client = lab.connect().await;
    let median = median_round_trip(&mut client).await;

    let both_directions = Duration::from_millis(2 * u64::from(DELAY_80_TO_120.min_ms));
    assert!(
        median >= both_directions,
        "median round trip {median:?} < {both_directions:?}"
    );
}

#[tokio::test]
async fn switching_the_delay_reaches_a_live_connection() {
    let lab = Lab::start(start_echo_server().await).await;
    let min_delay = Duration::from_millis(DELAY_80_TO_120.min_ms.into());
    write_control(&lab.control, &DELAY_80_TO_120).unwrap();
    let mut client = lab.connect().await;
    let delayed = median_round_trip(&mut client).await;
    assert!(delayed >= 2 * min_delay, "delayed round trip {delayed:?}");

    clear_control(&lab.control).unwrap();
    tokio::time::sleep(settle_time()).await;
    let cleared = median_round_trip(&mut client).await;
    assert!(
        cleared < min_delay,
        "round trip {cleared:?} after clearing is not below the minimum delay {min_delay:?}"
    );

    write_control(&lab.control, &DELAY_80_TO_120).unwrap();
    tokio::time::sleep(settle_time()).await;
    let delayed_again = median_round_trip(&mut client).await;
    assert!(
        delayed_again >= 2 * min_delay,
        "round trip {delayed_again:?} after switching the delay back on"
    );

    let no_delay = DelaySettings {
        min_ms: 0,
        max_ms: 0,
        ..DELAY_80_TO_120
    };
    write_control(&lab.control, &no_delay).unwrap();
    tokio::time::sleep(settle_time()).await;
    let rewritten = median_round_trip(&mut client).await;
    assert!(
        rewritten < min_delay,
        "round trip {rewritten:?} after rewriting the settings to no delay"
    );
}

#[test]
fn clear_control_succeeds_when_already_clear() {
    let directory = tempfile::tempdir().unwrap();
    let control = directory.path().join("delay.json");
    clear_control(&control).unwrap();
    write_control(&control, &DELAY_80_TO_120).unwrap();
    let written: DelaySettings =
        serde_json::from_str(&std::fs::read_to_string(&control).unwrap()).unwrap();
    assert_eq!(written, DELAY_80_TO_120);
    clear_control(&control).unwrap();
    clear_control(&control).unwrap();
    assert!(!control.exists());
    assert_eq!(
        std::fs::read_dir(directory.path()).unwrap().count(),
        0,
        "write_control left its temporary file behind"
    );
}

#[test]
fn write_control_refuses_min_above_max() {
    let directory = tempfile::tempdir().unwrap();
    let control = directory.path().join("delay.json");
    let inverted = DelaySettings {
        min_ms: 150,
        max_ms: 50,
        seed: 1,
    };
    let error = write_control(&control, &inverted).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        error.to_string(),
        "min_ms (150) is greater than max_ms (50)"
    );
    assert!(!control.exists());
}

#[tokio::test]
async fn malformed_control_file_means_no_delay_and_is_logged() {
    // Each would ask for at least 500 ms if it were read as settings.
    let malformed = [
        "not json",
        r#"{"min_ms": 500, "max_ms": 600"#,
        r#"{"min_ms": 500, "max_ms": 600}"#,
        r#"{"min_ms": 500, "max_ms": 600, "seed": 1, "jitter_ms": 3}"#,
        r#"{"min_ms": 600, "max_ms": 500, "seed": 1}"#,
        r#"{"min_ms": -500, "max_ms": 600, "seed": 1}"#,
    ];
    let would_be_min_delay = Duration::from_millis(500);
    for contents in malformed {
        let (logs, _logging) = CapturedLogs::install();
        let lab = Lab::start(start_echo_server().await).await;
        std::fs::write(&lab.control, contents).unwrap();

        let mut client = lab.connect().await;
        let median = median_round_trip(&mut client).await;

        assert!(
            median < would_be_min_delay,
            "control file {contents:?}: round trip {median:?} looks delayed"
        );
        let logged = logs.text();
        assert!(
            logged.contains("ignoring malformed delay control file")
                && logged.contains(&lab.control.display().to_string()),
            "control file {contents:?} was not logged as malformed:\n{logged}"
        );
    }
}

#[tokio::test]
async fn refused_upstream_closes_the_client_but_not_the_proxy() {
    let reserved = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = reserved.local_addr().unwrap();
    drop(reserved);
    let lab = Lab::start(upstream).await;

    let mut refused_client = TcpStream::connect(lab.proxy_addr).await.unwrap();
    assert_closed(&mut refused_client).await;
    assert!(!lab.proxy_task.is_finished(), "the proxy stopped");

    let listener = TcpListener::bind(upstream).await.unwrap();
    tokio::spawn(serve_echo(listener));
    let mut client = lab.connect().await;
    round_trip(&mut client).await;
}

#[test]
fn delivery_times_never_decrease_within_a_direction() {
    let settings_cycle = [
        Some(DelaySettings {
            min_ms: 50,
            max_ms: 150,
            seed: 3,
        }),
        None,
        Some(DelaySettings {
            min_ms: 0,
            max_ms: 500,
            seed: 4,
        }),
        Some(DelaySettings {
            min_ms: 20,
            max_ms: 20,
            seed: 4,
        }),
    ];
    let mut schedule = DeliverySchedule::new(11);
    let mut replay = DeliverySchedule::new(11);
    let mut gaps = TestRng(99);
    let start = Instant::now();
    let mut read_at = start;
    let mut previous = start;
    for chunk_idx in 0..20_000 {
        read_at += Duration::from_micros(gaps.next() % 20_000);
        let settings = settings_cycle[(chunk_idx / 500) % settings_cycle.len()];
        let delivery = schedule.next_delivery(read_at, settings.as_ref());

        assert!(
            delivery >= previous,
            "chunk {chunk_idx} overtakes the one before"
        );
        let delay = delivery - read_at;
        let (min, max) = settings.map_or((0, 0), |settings| (settings.min_ms, settings.max_ms));
        assert!(
            delay >= Duration::from_millis(min.into()),
            "chunk {chunk_idx}: {delay:?}"
        );
        assert!(
            delivery == previous || delay <= Duration::from_millis(max.into()),
            "chunk {chunk_idx} waits {delay:?}, beyond both max_ms and the chunk before"
        );
        assert_eq!(replay.next_delivery(read_at, settings.as_ref()), delivery);
        previous = delivery;
    }
}

struct Lab {
    proxy_addr: SocketAddr,
    control: PathBuf,
    shutdown: CancellationToken,
    proxy_task: JoinHandle<io::Result<()>>,
    _directory: tempfile::TempDir,
}

impl Lab {
    async fn start(upstream: SocketAddr) -> Lab {
        let directory = tempfile::tempdir().unwrap();
        let control = directory.path().join("delay.json");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let proxy_task = tokio::spawn(run_delay_proxy(
            listener,
            upstream,
            control.clone(),
            shutdown.clone(),
        ));
        Lab {
            proxy_addr,
            control,
            shutdown,
            proxy_task,
            _directory: directory,
        }
    }

    async fn connect(&self) -> TcpStream {
        let client = TcpStream::connect(self.proxy_addr).await.unwrap();
        client.set_nodelay(true).unwrap();
        client
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_echo(listener));
    addr
}

async fn serve_echo(listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            stream.set_nodelay(true)?;
            let (mut read_half, mut write_half) = stream.split();
            tokio::io::copy(&mut read_half, &mut write_half).await?;
            write_half.shutdown().await
        });
    }
}

async fn round_trip(client: &mut TcpStream) -> Duration {
    let message = b"ping through the proxy";
    let mut reply = [0; 22];
    let started = Instant::now();
    guard(async {
        client.write_all(message).await.unwrap();
        client.read_exact(&mut reply).await.unwrap();
    })
    .await;
    let elapsed = started.elapsed();
    assert_eq!(&reply, message);
    elapsed
}

async fn median_round_trip(client: &mut TcpStream) -> Duration {
    let mut round_trips = Vec::new();
    for _ in 0..5 {
        round_trips.push(round_trip(client).await);
    }
    round_trips.sort();
    round_trips[round_trips.len() / 2]
}

/// The peer closed: EOF, or a reset if it closed with data unread.
async fn assert_closed(client: &mut TcpStream) {
    let mut byte = [0; 1];
    match guard(client.read(&mut byte)).await {
        Ok(0) | Err(_) => {}
        Ok(n_read) => panic!("expected the connection closed, read {n_read} bytes"),
    }
}

async fn guard<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("hung: the proxy neither answered nor closed")
}

/// `tracing` events of the current thread, one line each; `#[tokio::test]` runs the proxy on that
/// thread.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<String>>);

impl CapturedLogs {
    fn install() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
        let logs = CapturedLogs::default();
        let guard = tracing::subscriber::set_default(logs.clone());
        (logs, guard)
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

impl tracing::Subscriber for CapturedLogs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = event.metadata().level().to_string();
        event.record(&mut FieldWriter(&mut line));
        line.push('\n');
        self.0.lock().unwrap().push_str(&line);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

struct FieldWriter<'a>(&'a mut String);

impl tracing::field::Visit for FieldWriter<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

struct TestRng(u64);

impl TestRng {
    fn next(&mut self) -> u64 {
        // xorshift64: independent of the proxy's own generator.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
