//! The TCP delay proxy in front of every lab etcd port, and the control file that switches it.
//!
//! The lab kernel has neither `sch_netem` nor nftables `queue`, so latency cannot be added below
//! TCP. Instead every etcd node listens on an internal address and peers and clients connect to
//! this proxy, which runs from the start of the lab. While its control file is absent the proxy
//! relays bytes unchanged; while the file holds [`DelaySettings`], every chunk read in either
//! direction is delivered after a delay drawn from them. Only the file's presence carries state,
//! so the fault and its cleanup are two file operations and a crashed trial leaves nothing but a
//! file that the next cleanup removes.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rand::{Rng, RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
pub use schemas::cleanup::DelaySettings;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// How stale the proxy's view of its control file may be: switching the delay on or off reaches
/// live connections within about this long.
pub const CONTROL_REFRESH_INTERVAL: Duration = Duration::from_millis(100);

const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Bytes read but not yet delivered, per direction of a connection. Reading stops when it is
/// spent, so a delayed fast sender meets TCP backpressure instead of growing the proxy's memory.
const IN_FLIGHT_BYTES_PER_DIRECTION: usize = 4 * 1024 * 1024;
/// A blackholed upstream would otherwise hold the client for the kernel's SYN retry budget
/// (minutes); etcd's own dialers give up much sooner and retry.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Accept fails persistently when the process is out of file descriptors; pausing keeps the loop
/// from spinning while connections close.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Switches the delay on (or changes it) for every proxy watching `path`.
///
/// The file is written beside `path` and renamed over it, so a proxy never reads half a file.
pub fn write_control(path: &Path, settings: &DelaySettings) -> io::Result<()> {
    settings
        .check()
        .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("delay control path {} has no file name", path.display()),
        )
    })?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary_path = path.with_file_name(temporary_name);
    let contents = serde_json::to_vec(settings).map_err(io::Error::other)?;
    std::fs::write(&temporary_path, contents)?;
    std::fs::rename(&temporary_path, path).inspect_err(|_| {
        // Best effort: the rename error is the one worth reporting.
        let _ = std::fs::remove_file(&temporary_path);
    })
}

/// Switches the delay off for every proxy watching `path`; succeeds when it is already off.
pub fn clear_control(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// When each chunk of one direction of one connection is delivered.
///
/// A chunk is due at its read time plus a delay drawn uniformly from the settings in force when it
/// was read, but never before the chunk read just before it: bytes keep their order, and chunks
/// read back to back are delivered back to back, so the delay adds latency without capping
/// throughput at one chunk per delay.
#[derive(Clone, Debug)]
pub struct DeliverySchedule {
    stream_salt: u64,
    rng: Option<(u64, Xoshiro256PlusPlus)>,
    last_delivery: Option<Instant>,
}

impl DeliverySchedule {
    /// `stream_salt` tells this direction's delays apart from other streams with the same seed.
    pub fn new(stream_salt: u64) -> Self {
        Self {
            stream_salt,
            rng: None,
            last_delivery: None,
        }
    }

    /// The delivery time of a chunk read at `read_at`; `None` settings mean no delay.
    pub fn next_delivery(&mut self, read_at: Instant, settings: Option<&DelaySettings>) -> Instant {
        let delay = settings.map_or(Duration::ZERO, |settings| self.draw_delay(settings));
        let due = read_at + delay;
        let delivery = match self.last_delivery {
            Some(last_delivery) if last_delivery > due => last_delivery,
            _ => due,
        };
        self.last_delivery = Some(delivery);
        delivery
    }

    fn draw_delay(&mut self, settings: &DelaySettings) -> Duration {
        let rng = match &mut self.rng {
            Some((seed, rng)) if *seed == settings.seed => rng,
            slot => {
                let rng = Xoshiro256PlusPlus::seed_from_u64(settings.seed ^ self.stream_salt);
                &mut slot.insert((settings.seed, rng)).1
            }
        };
        // Microseconds rather than milliseconds, so chunks of one burst do not share a few values.
        let low_us = u64::from(settings.min_ms.min(settings.max_ms)) * 1000;
        let high_us = u64::from(settings.min_ms.max(settings.max_ms)) * 1000;
        Duration::from_micros(rng.random_range(low_us..=high_us))
    }
}

fn stream_salt(connection_id: u64, direction: u64) -> u64 {
    Xoshiro256PlusPlus::seed_from_u64(connection_id.wrapping_mul(2).wrapping_add(direction))
        .next_u64()
}

/// A proxy's cached view of its control file, shared by all its connections.
struct ControlFile {
    path: PathBuf,
    cache: Mutex<ControlCache>,
}

#[derive(Default)]
struct ControlCache {
    checked_at: Option<Instant>,
    version: Option<FileVersion>,
    settings: Option<DelaySettings>,
}

/// What tells one version of the control file from the next. `write_control` renames a new file
/// into place, so the inode changes even when the modification time's granularity hides a rewrite.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileVersion {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileVersion {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode,
        }
    }
}

impl ControlFile {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            cache: Mutex::new(ControlCache::default()),
        }
    }

    /// The settings in force at `now`, looking at the file at most once per refresh interval.
    ///
    /// The file is tiny and local, so the blocking `stat` (and rare read) under the lock costs less
    /// than handing it to a blocking thread.
    fn current(&self, now: Instant) -> Option<DelaySettings> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = cache
            .checked_at
            .is_some_and(|checked_at| now.duration_since(checked_at) < CONTROL_REFRESH_INTERVAL);
        if fresh {
            return cache.settings;
        }
        cache.checked_at = Some(now);
        let path = self.path.display();
        let version = match std::fs::metadata(&self.path) {
            Ok(metadata) => Some(FileVersion::of(&metadata)),
            Err(error) => {
                if error.kind() != io::ErrorKind::NotFound {
                    debug!(%path, %error, "cannot stat delay control file");
                }
                None
            }
        };
        if version != cache.version {
            cache.version = version;
            cache.settings = match version {
                Some(_) => self.load(),
                None => {
                    debug!(%path, "delay off");
                    None
                }
            };
        }
        cache.settings
    }

    /// The file's settings, or `None`, logged, when it cannot be read or is malformed: a fault
    /// that cannot say what it wants adds no delay rather than a made-up one.
    fn load(&self) -> Option<DelaySettings> {
        let path = self.path.display();
        match self.parse() {
            Ok(settings) => {
                let DelaySettings {
                    min_ms,
                    max_ms,
                    seed,
                } = settings;
                debug!(%path, min_ms, max_ms, seed, "delay on");
                Some(settings)
            }
            Err(error) => {
                warn!(%path, %error, "ignoring malformed delay control file, delay off");
                None
            }
        }
    }

    fn parse(&self) -> Result<DelaySettings, String> {
        let contents = std::fs::read_to_string(&self.path).map_err(|error| error.to_string())?;
        let settings: DelaySettings =
            serde_json::from_str(&contents).map_err(|error| error.to_string())?;
        settings.check()?;
        Ok(settings)
    }
}

/// Relays every connection accepted on `listener` to `upstream`, delaying both directions while
/// the file at `control` holds [`DelaySettings`], until `shutdown` is cancelled.
///
/// A failing connection (upstream refused, reset, …) is closed and logged; the listener keeps
/// going. On shutdown the open connections are closed and awaited.
pub async fn run_delay_proxy(
    listener: TcpListener,
    upstream: SocketAddr,
    control: PathBuf,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let listen_addr = listener.local_addr()?;
    debug!(%listen_addr, %upstream, control = %control.display(), "delay proxy started");
    let control = Arc::new(ControlFile::new(control));
    let connections = TaskTracker::new();
    let mut next_connection_id: u64 = 0;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (client, client_addr) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                debug!(%listen_addr, %error, "accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                }
            }
        };
        let connection_id = next_connection_id;
        next_connection_id += 1;
        debug!(%listen_addr, connection_id, %client_addr, "connection accepted");
        connections.spawn(serve_connection(
            client,
            upstream,
            Arc::clone(&control),
            shutdown.clone(),
            listen_addr,
            connection_id,
        ));
    }
    connections.close();
    connections.wait().await;
    debug!(%listen_addr, "delay proxy stopped");
    Ok(())
}

async fn serve_connection(
    client: TcpStream,
    upstream: SocketAddr,
    control: Arc<ControlFile>,
    shutdown: CancellationToken,
    listen_addr: SocketAddr,
    connection_id: u64,
) {
    let relayed = tokio::select! {
        () = shutdown.cancelled() => {
            debug!(%listen_addr, connection_id, "connection closed by proxy shutdown");
            return;
        }
        relayed = relay_connection(client, upstream, &control, connection_id) => relayed,
    };
    match relayed {
        Ok(()) => debug!(%listen_addr, connection_id, "connection closed"),
        Err(error) => debug!(%listen_addr, connection_id, %error, "connection failed"),
    }
}

/// Returning drops both sockets, so any error closes the client as well as the upstream side.
async fn relay_connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    control: &ControlFile,
    connection_id: u64,
) -> io::Result<()> {
    let mut server = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(upstream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream connect timed out"))?
        .map_err(|error| io::Error::new(error.kind(), format!("upstream {upstream}: {error}")))?;
    // Nagle's algorithm would hold small etcd messages back behind unacknowledged ones and add
    // latency the fault did not ask for.
    for stream in [&client, &server] {
        if let Err(error) = stream.set_nodelay(true) {
            debug!(connection_id, %error, "cannot set TCP_NODELAY");
        }
    }
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    tokio::try_join!(
        relay_direction(
            client_read,
            server_write,
            control,
            DeliverySchedule::new(stream_salt(connection_id, 0)),
        ),
        relay_direction(
            server_read,
            client_write,
            control,
            DeliverySchedule::new(stream_salt(connection_id, 1)),
        ),
    )?;
    Ok(())
}

struct Chunk {
    bytes: Vec<u8>,
    deliver_at: Instant,
    /// Returns the chunk's bytes to the in-flight budget once it is delivered.
    _budget: OwnedSemaphorePermit,
}

/// Copies `reader` to `writer` on `schedule`, then half-closes `writer` when `reader` ends.
async fn relay_direction(
    mut reader: impl AsyncRead + Unpin,
    mut writer: impl AsyncWrite + Unpin,
    control: &ControlFile,
    mut schedule: DeliverySchedule,
) -> io::Result<()> {
    let budget = Arc::new(Semaphore::new(IN_FLIGHT_BYTES_PER_DIRECTION));
    let (sender, mut receiver) = mpsc::unbounded_channel::<Chunk>();
    let read_side = async move {
        let mut buffer = vec![0; READ_CHUNK_BYTES];
        loop {
            let mut permit = Arc::clone(&budget)
                .acquire_many_owned(READ_CHUNK_BYTES as u32)
                .await
                .map_err(io::Error::other)?;
            let n_read = reader.read(&mut buffer).await?;
            if n_read == 0 {
                // Dropping the sender lets the write side drain and then half-close.
                return Ok::<_, io::Error>(());
            }
            let read_at = Instant::now();
            let deliver_at = schedule.next_delivery(read_at, control.current(read_at).as_ref());
            let chunk = Chunk {
                bytes: buffer[..n_read].to_vec(),
                deliver_at,
                _budget: permit.split(n_read).unwrap_or(permit),
            };
            sender
                .send(chunk)
                .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        }
    };
    let write_side = async move {
        while let Some(chunk) = receiver.recv().await {
            if chunk.deliver_at > Instant::now() {
                tokio::time::sleep_until(chunk.deliver_at).await;
            }
            writer.write_all(&chunk.bytes).await?;
        }
        writer.shutdown().await
    };
    tokio::try_join!(read_side, write_side)?;
    Ok(())
}
