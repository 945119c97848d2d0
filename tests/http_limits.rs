//! The HTTP limits of both services, against the real binaries: a connection that does not
//! finish its request headers within 10 s is closed, and past `max_connections` a new
//! connection waits in the backlog until one of the held ones closes.

use crate::support::smtp::SmtpServer;
use crate::support::stack::{Kind, Stack};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The cap the test configures on both services.
const MAX_CONNECTIONS: usize = 4;

async fn stack() -> Stack {
    let mut stack = Stack::configure(Kind::Socketio, SmtpServer::start());
    let cap = MAX_CONNECTIONS.to_string();
    stack.set_env("FACTEUR_USERS__MAX_CONNECTIONS", &cap);
    stack.set_env("FACTEUR_MAILER__MAX_CONNECTIONS", &cap);
    stack.start_mailer().await;
    stack.start_users().await;
    stack
}

fn address(base_url: &str) -> String {
    base_url.trim_start_matches("http://").to_string()
}

/// Sends half a request line and returns how long the server took to close the connection.
fn time_until_closed_after_half_a_request_line(addr: &str) -> Duration {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    tcp.write_all(b"GET /hea").expect("write");
    let started = Instant::now();
    let mut buffer = [0u8; 512];
    // A closed connection reads 0 bytes (or a reset); a read timeout would mean it stayed open.
    loop {
        match tcp.read(&mut buffer) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "{addr}: the connection stayed open ({e}) for {:?}",
                started.elapsed()
            ),
        }
    }
    started.elapsed()
}

/// A `GET /health` on a new connection; the answer's status line, or `None` when nothing
/// came back within `wait`.
fn health_status_within(addr: &str, wait: Duration) -> (TcpStream, Option<String>) {
    let mut tcp = TcpStream::connect(addr).expect("connect (the backlog takes it)");
    tcp.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .expect("write");
    let line = read_status_line(&mut tcp, wait);
    (tcp, line)
}

fn read_status_line(tcp: &mut TcpStream, wait: Duration) -> Option<String> {
    tcp.set_read_timeout(Some(wait)).expect("read timeout");
    let mut buffer = [0u8; 64];
    match tcp.read(&mut buffer) {
        Ok(n) if n > 0 => Some(
            String::from_utf8_lossy(&buffer[..n])
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn half_a_request_line_is_cut_off_after_about_ten_seconds_on_both_services() {
    let stack = stack().await;
    let users = address(&stack.users_url());
    let mailer = address(&stack.mailer_url());
    let (users_took, mailer_took) = tokio::join!(
        tokio::task::spawn_blocking(move || time_until_closed_after_half_a_request_line(&users)),
        tokio::task::spawn_blocking(move || time_until_closed_after_half_a_request_line(&mailer)),
    );
    for (name, took) in [
        ("users", users_took.unwrap()),
        ("mailer", mailer_took.unwrap()),
    ] {
        assert!(
            took >= Duration::from_secs(9) && took <= Duration::from_secs(13),
            "{name} closed the connection after {took:?}, not about 10 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_connections_health_answers_once_an_idle_connection_closes() {
    let stack = stack().await;
    // The stack's own HTTP client keeps its health-check connections alive; the header-read
    // timeout closes such idle connections too, and then every slot is free.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mut checks = Vec::new();
    for base in [stack.users_url(), stack.mailer_url()] {
        let addr = address(&base);
        checks.push(tokio::task::spawn_blocking(move || {
            // Every slot held by a connection that says nothing.
            let mut idle: Vec<TcpStream> = (0..MAX_CONNECTIONS)
                .map(|_| TcpStream::connect(&addr).expect("connect"))
                .collect();
            // Give the server time to take them all.
            std::thread::sleep(Duration::from_millis(300));
            let (mut waiting, answered) = health_status_within(&addr, Duration::from_secs(1));
            assert_eq!(
                answered, None,
                "{addr}: a fifth connection was served past the cap"
            );
            // One idle client goes away: the waiting connection is taken and answered.
            drop(idle.pop());
            let started = Instant::now();
            let status = read_status_line(&mut waiting, Duration::from_secs(5));
            let status = status
                .unwrap_or_else(|| panic!("{addr}: /health did not answer once a slot was free"));
            assert!(status.starts_with("HTTP/1.1 200"), "{addr}: {status}");
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{addr}: {:?}",
                started.elapsed()
            );
        }));
    }
    for check in checks {
        check.await.unwrap();
    }
}
