//! One greedy client address and one health probe at another: raw TCP clients bound to a
//! chosen loopback source address (127.0.0.1 and 127.0.0.2 are both the machine's), that
//! hold connections with slow bodies, pending engine.io long-polls or idle websockets.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

/// The address that takes all it may.
pub const GREEDY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// The address the health probe comes from.
pub const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A TCP connection to `addr` from `source`.
pub async fn connect_from(source: Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// `http://127.0.0.1:port` as a socket address.
pub fn socket_addr(base_url: &str) -> SocketAddr {
    base_url
        .trim_start_matches("http://")
        .parse()
        .expect("a base URL of the form http://ip:port")
}

/// Reads one response with a `content-length` body: its status and body, or `None` when the
/// connection closed first.
pub async fn read_response(tcp: &mut TcpStream) -> Option<(u16, String)> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 2048];
    let head_end = loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = tcp.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        received.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while received.len() < head_end + length {
        let n = tcp.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        received.extend_from_slice(&buffer[..n]);
    }
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = String::from_utf8_lossy(&received[head_end..head_end + length]).into_owned();
    Some((status, body))
}

/// Whether the server still holds `tcp` open: nothing or more data within 200 ms, rather
/// than an end of stream or a reset.
pub async fn still_open(tcp: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buffer)).await {
            Err(_) => return true,
            Ok(Ok(0) | Err(_)) => return false,
            Ok(Ok(_)) => continue,
        }
    }
}

/// How a slow-body connection ended.
#[derive(Debug)]
pub struct SlowBody {
    /// When it was connected.
    pub connected: Instant,
    /// How long it stayed open.
    pub lasted: Duration,
    /// The answer's status line and body, if any came.
    pub answer: String,
}

/// Sends `head` (which announces a body of 100 bytes) on `tcp` with the first byte of the
/// body, then one more byte every 4 s, until the server answers and closes, or for at most
/// `give_up`.
pub async fn slow_body(mut tcp: TcpStream, head: Arc<str>, give_up: Duration) -> SlowBody {
    let connected = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    let mut tick = tokio::time::interval(Duration::from_secs(4));
    let mut sent_head = false;
    let exchange = async {
        loop {
            tokio::select! {
                read = tcp.read(&mut buffer) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buffer[..n]),
                },
                _ = tick.tick() => {
                    if !sent_head {
                        sent_head = true;
                        // A refused connection may be reset before the write: the read says so.
                        let _ = tcp.write_all(head.as_bytes()).await;
                    }
                    let _ = tcp.write_all(b" ").await;
                }
            }
        }
    };
    let _ = tokio::time::timeout(give_up, exchange).await;
    SlowBody {
        connected,
        lasted: connected.elapsed(),
        answer: String::from_utf8_lossy(&answer).into_owned(),
    }
}

/// An engine.io session on `/live` over long-polling from [`GREEDY`], left with a poll
/// pending; `None` when the server closed the connection on the way.
pub async fn pending_long_poll(addr: SocketAddr) -> Option<TcpStream> {
    let mut tcp = connect_from(GREEDY, addr).await.ok()?;
    let path = "/socket.io/?EIO=4&transport=polling";
    let get = |query: &str| format!("GET {path}{query} HTTP/1.1\r\nhost: mailer\r\n\r\n");
    tcp.write_all(get("").as_bytes()).await.ok()?;
    let (_, open) = read_response(&mut tcp).await?;
    let sid = open
        .split("\"sid\":\"")
        .nth(1)?
        .split('"')
        .next()?
        .to_string();
    let query = format!("&sid={sid}");
    let connect = "40/live,";
    let post = format!(
        "POST {path}{query} HTTP/1.1\r\nhost: mailer\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: {}\r\n\r\n{connect}",
        connect.len()
    );
    tcp.write_all(post.as_bytes()).await.ok()?;
    read_response(&mut tcp).await?;
    // The first poll brings the namespace's connect packet; the second one waits.
    tcp.write_all(get(&query).as_bytes()).await.ok()?;
    let (_, connected) = read_response(&mut tcp).await?;
    assert!(
        connected.contains("40/live,"),
        "no /live connect: {connected}"
    );
    tcp.write_all(get(&query).as_bytes()).await.ok()?;
    Some(tcp)
}

/// A websocket on `/live` from [`GREEDY`] that says nothing after connecting; `None` when
/// the server closed the connection before the upgrade.
pub async fn idle_live_websocket(addr: SocketAddr) -> Option<TcpStream> {
    let mut tcp = connect_from(GREEDY, addr).await.ok()?;
    let request = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nhost: mailer\r\n\
                   upgrade: websocket\r\nconnection: Upgrade\r\n\
                   sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "no upgrade: {}",
        String::from_utf8_lossy(&head)
    );
    // `40/live,` in one masked text frame (a zero mask leaves the bytes as they are).
    let connect = b"40/live,";
    let mut frame = vec![0x81, 0x80 | connect.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(connect);
    tcp.write_all(&frame).await.ok()?;
    Some(tcp)
}

/// `GET /health` from [`OTHER`] on a new connection every 100 ms until stopped; each probe
/// must be answered 200 within `within`.
pub struct HealthProbe {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Vec<Result<Duration, String>>>,
}

impl HealthProbe {
    /// Starts probing `addr`.
    pub fn start(addr: SocketAddr, within: Duration) -> HealthProbe {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut probes = Vec::new();
            while !*stopped.borrow() {
                let started = Instant::now();
                let probe = tokio::time::timeout(within, async {
                    let mut tcp = connect_from(OTHER, addr).await.map_err(|e| e.to_string())?;
                    tcp.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                        .await
                        .map_err(|e| e.to_string())?;
                    match read_response(&mut tcp).await {
                        Some((200, _)) => Ok(started.elapsed()),
                        other => Err(format!("answered {other:?}")),
                    }
                })
                .await;
                probes.push(probe.unwrap_or_else(|_| Err(format!("no answer within {within:?}"))));
                let _ = tokio::time::timeout(Duration::from_millis(100), stopped.changed()).await;
            }
            probes
        });
        HealthProbe { stop, task }
    }

    /// Stops probing; panics, naming `service`, if a probe failed or none ran.
    pub async fn finish(self, service: &str) -> usize {
        let _ = self.stop.send(true);
        let probes = self.task.await.expect("the probe task");
        let failed: Vec<_> = probes.iter().filter_map(|p| p.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{service}: {} of {} health probes from {OTHER} failed: {failed:?}",
            failed.len(),
            probes.len()
        );
        assert!(!probes.is_empty(), "{service}: no health probe ran");
        probes.len()
    }
}
