//! A small HTTP server that answers recorded responses (method and path, query included, to a
//! status and a body; anything else 404, as PD's router answers) and records every request, so
//! that a test asserts the exact requests a client made. Its routes can be changed while it
//! runs, to replay a cluster whose state changes (a leader change, a store going down).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: String,
}

impl Seen {
    pub fn get(path: &str) -> Seen {
        Seen {
            method: "GET".into(),
            path: path.into(),
            body: String::new(),
        }
    }
}

type Routes = BTreeMap<(String, String), (u16, String)>;

/// The server; it stops when dropped.
#[derive(Debug)]
pub struct Replay {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    routes: Arc<Mutex<Routes>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Replay {
    /// Serves `routes` on a free port of 127.0.0.1.
    pub async fn start(routes: &[(&str, &str, u16, String)]) -> Replay {
        Replay::start_at("127.0.0.1:0".parse().unwrap(), routes).await
    }

    /// Serves `routes` on `addr`.
    pub async fn start_at(addr: SocketAddr, routes: &[(&str, &str, u16, String)]) -> Replay {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|error| panic!("bind {addr}: {error}"));
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let table = Arc::new(Mutex::new(Routes::new()));
        let replay_routes = table.clone();
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                let routes = replay_routes.clone();
                tokio::spawn(async move { answer(stream, &log, &routes).await });
            }
        });
        let replay = Replay {
            addr,
            seen,
            routes: table,
            task,
        };
        for (method, path, status, body) in routes {
            replay.set(method, path, *status, body.clone());
        }
        replay
    }

    /// Answers `method path` with `status` and `body` from now on.
    pub fn set(&self, method: &str, path: &str, status: u16, body: String) {
        self.routes
            .lock()
            .unwrap()
            .insert((method.to_string(), path.to_string()), (status, body));
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Every request so far, sorted by path (for requests made concurrently).
    pub fn sorted(&self) -> Vec<Seen> {
        let mut seen = self.requests();
        seen.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
        seen
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

async fn answer(mut stream: tokio::net::TcpStream, log: &Mutex<Vec<Seen>>, routes: &Mutex<Routes>) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = stream.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buffer[..n]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while request.len() < head_end + length {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (
        first.next().unwrap_or("").to_string(),
        first.next().unwrap_or("").to_string(),
    );
    let body = String::from_utf8_lossy(&request[head_end..]).to_string();
    log.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        body,
    });
    let (status, body) = routes
        .lock()
        .unwrap()
        .get(&(method, path))
        .cloned()
        .unwrap_or((404, "404 page not found".to_string()));
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}
