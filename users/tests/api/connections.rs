//! The connection timeouts of the server loop the users service runs on: a keep-alive
//! connection may stay idle longer than a client may take to send a request head, and is
//! closed once it has been idle for the idle timeout.

use crate::helpers::{Backend, spawn_app_tuned};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout_and_closes_after_the_idle_timeout()
 {
    // The contract's idle timeout is 60 s; 13 s keeps the test short and still longer than
    // the 10 s header-read timeout.
    let idle = Duration::from_secs(13);
    let app = spawn_app_tuned(Backend::Sqlite, |_| {}, |app| app.with_idle_timeout(idle)).await;
    let mut tcp = TcpStream::connect(app.addr).await.expect("connect");
    assert_eq!(get_health(&mut tcp).await, Some(200));

    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        get_health(&mut tcp).await,
        Some(200),
        "a keep-alive connection idle for 11 s was closed"
    );

    let answered = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(idle * 2, tcp.read(&mut byte)).await;
    let closed_after = answered.elapsed();
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the idle connection was not closed within {:?}: {read:?}",
        idle * 2
    );
    assert!(
        closed_after >= idle - Duration::from_millis(500)
            && closed_after <= idle + Duration::from_secs(2),
        "the idle connection closed after {closed_after:?}, not the idle timeout ({idle:?})"
    );
}

/// `GET /health` on `tcp`, keeping it alive; the status, or `None` when the connection closed.
async fn get_health(tcp: &mut TcpStream) -> Option<u16> {
    tcp.write_all(b"GET /health HTTP/1.1\r\nhost: users\r\n\r\n")
        .await
        .ok()?;
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
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
        .expect("a content-length");
    while received.len() < head_end + length {
        let n = tcp.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        received.extend_from_slice(&buffer[..n]);
    }
    head.split_whitespace().nth(1)?.parse().ok()
}
