//! Port-forwards through a real WebSocket: kube's client upgrades a real HTTP connection to a
//! loopback API mock, which checks the request (path, query, the upgrade), speaks the
//! `portforward` channel protocol (each channel's port first, then data on channel 0) and answers
//! as etcd's `/health` does. A `tower_test` mock cannot carry an upgrade, hence this one.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chaos::kubernetes::forward::Forward;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// What the mock saw of one connection: the upgrade request's path and query, its method, the
/// protocol it chose among those offered, and the bytes that reached the pod's port.
#[derive(Debug, Default, Clone)]
struct Seen {
    uri: String,
    method: String,
    protocol: String,
    to_pod: Vec<u8>,
}

/// An API server that accepts `connections` port-forwards to `port` and answers each request
/// that reaches the pod with `reply`.
// tungstenite's handshake callback returns its own (large) error response type.
#[allow(clippy::result_large_err)]
async fn api_server(
    connections: usize,
    port: u16,
    reply: &'static [u8],
) -> (SocketAddr, tokio::task::JoinHandle<Vec<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut all = Vec::new();
        for _ in 0..connections {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = Arc::new(Mutex::new(Seen::default()));
            let record = seen.clone();
            let mut ws = tokio_tungstenite::accept_hdr_async(
                stream,
                move |request: &Request, mut response: Response| {
                    let offered = request
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    // The server picks the channel protocol the client offers for it.
                    let chosen = offered
                        .split(',')
                        .map(str::trim)
                        .find(|protocol| *protocol == "v4.channel.k8s.io")
                        .unwrap_or_default()
                        .to_string();
                    response
                        .headers_mut()
                        .insert("sec-websocket-protocol", chosen.parse().unwrap());
                    let mut seen = record.lock().unwrap();
                    seen.uri = request.uri().to_string();
                    seen.method = request.method().to_string();
                    seen.protocol = chosen;
                    Ok(response)
                },
            )
            .await
            .unwrap();
            // Each channel's first frame names its port (little endian): data, then errors.
            let [low, high] = port.to_le_bytes();
            ws.send(Message::binary(vec![0, low, high])).await.unwrap();
            ws.send(Message::binary(vec![1, low, high])).await.unwrap();
            let mut to_pod = Vec::new();
            while !to_pod.windows(4).any(|window| window == b"\r\n\r\n") {
                match ws.next().await {
                    Some(Ok(Message::Binary(frame))) if frame.first() == Some(&0) => {
                        to_pod.extend_from_slice(&frame[1..])
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
            let mut frame = vec![0];
            frame.extend_from_slice(reply);
            ws.send(Message::binary(frame)).await.unwrap();
            ws.close(None).await.unwrap();
            let mut seen = seen.lock().unwrap().clone();
            seen.to_pod = to_pod;
            all.push(seen);
        }
        all
    });
    (address, task)
}

/// etcd's answer to `GET /health` (v3.5 and later).
const HEALTH: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n{\"health\":\"true\",\"reason\":\"\"}";

async fn get_health(local: SocketAddr) -> std::io::Result<String> {
    let mut socket = tokio::net::TcpStream::connect(local).await?;
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: etcd-0\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await?;
    Ok(answer)
}

#[tokio::test]
async fn each_connection_reaches_the_pod_port_through_its_own_portforward() {
    let (api, server) = api_server(2, 2379, HEALTH).await;
    let config = kube::Config::new(format!("http://{api}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let forward = Forward::start(&client, "etcd", "etcd-0", 2379)
        .await
        .unwrap();
    assert!(forward.local.ip().is_loopback());
    for _ in 0..2 {
        let answer = get_health(forward.local).await.unwrap();
        assert!(
            answer.ends_with("{\"health\":\"true\",\"reason\":\"\"}"),
            "{answer}"
        );
    }
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 2);
    for seen in seen {
        assert_eq!(seen.method, "GET");
        assert_eq!(
            seen.uri,
            "/api/v1/namespaces/etcd/pods/etcd-0/portforward?&ports=2379"
        );
        assert_eq!(seen.protocol, "v4.channel.k8s.io");
        assert_eq!(
            String::from_utf8(seen.to_pod).unwrap(),
            "GET /health HTTP/1.1\r\nHost: etcd-0\r\nConnection: close\r\n\r\n"
        );
    }
}

#[tokio::test]
async fn a_refused_portforward_closes_the_local_connection() {
    // An API server that refuses the upgrade (a plain 403, as for a user without
    // `create pods/portforward`).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = vec![0; 4096];
        let n = stream.read(&mut request).await.unwrap();
        // A recorded 403 (testdata/kubernetes/api), compact as the server sends it to a client.
        let path = format!(
            "{}/testdata/kubernetes/api/status-403-forbidden-list-pods-serviceaccount.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let status: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let body = serde_json::to_vec(&status).unwrap();
        let head = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    let config = kube::Config::new(format!("http://{api}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let forward = Forward::start(&client, "etcd", "etcd-0", 2379)
        .await
        .unwrap();
    // Closed at once, with nothing read (or reset, the request unread).
    match get_health(forward.local).await {
        Ok(answer) => assert_eq!(answer, "", "nothing comes back through a refused forward"),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}"),
    }
    let request = server.await.unwrap();
    assert!(
        request.starts_with(
            "GET /api/v1/namespaces/etcd/pods/etcd-0/portforward?&ports=2379 HTTP/1.1\r\n"
        ),
        "{request}"
    );
}
