//! The HTTP limits of both services, against the real binaries: a connection that does not
//! finish its request headers within 10 s is closed, past `max_connections` a new
//! connection waits in the backlog until one of the held ones closes, a body that has not
//! arrived 10 s after its headers gets 408, and one client address holds at most
//! `max_connections_per_client` (64) connections while others are still served.
//!
//! The floods open 1,030 client sockets per service (2,060 at once in the slow-body test);
//! the test process needs a file-descriptor limit above that, which the usual 20,000 (or
//! any limit of some thousands) gives.

use crate::support::greedy::{
    GREEDY, HealthProbe, SlowBody, connect_from, idle_live_websocket, pending_long_poll, slow_body,
    socket_addr, still_open,
};
use crate::support::stack::{Kind, SERVICE_TOKEN, Stack};
use futures_util::StreamExt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::smtp::SmtpSink;
use tokio::sync::Semaphore;

/// The cap the test configures on both services.
const MAX_CONNECTIONS: usize = 4;

/// The default per-client cap.
const PER_CLIENT: usize = 64;
/// Connections the greedy address opens: more than `max_connections` (1,024) too.
const FLOOD: usize = 1030;
/// Connections being opened at once: few enough for the listen backlog (1,024) to take
/// them all without dropping a SYN, which would delay the probe's connection by a second.
const OPENING_AT_ONCE: usize = 100;

/// Both services with the contract's per-client cap, which the other tests turn off.
async fn per_client_stack() -> Stack {
    let mut stack = Stack::configure(Kind::Socketio, SmtpSink::start());
    let cap = PER_CLIENT.to_string();
    stack.set_env("FACTEUR_USERS__MAX_CONNECTIONS_PER_CLIENT", &cap);
    stack.set_env("FACTEUR_MAILER__MAX_CONNECTIONS_PER_CLIENT", &cap);
    stack.start_mailer().await;
    stack.start_users().await;
    stack
}

async fn stack() -> Stack {
    let mut stack = Stack::configure(Kind::Socketio, SmtpSink::start());
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
    let mut stack = stack().await;
    // The stack's own HTTP client keeps its health-check connections alive for a minute.
    stack.drop_pooled_connections();
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

#[tokio::test(flavor = "multi_thread")]
async fn slow_bodies_from_one_address_get_408_while_other_addresses_are_served_on_both_services() {
    let stack = per_client_stack().await;
    let users_head = "POST /users HTTP/1.1\r\nhost: users\r\ncontent-type: application/json\r\n\
                      content-length: 100\r\n\r\n";
    let mailer_head = format!(
        "POST /mails HTTP/1.1\r\nhost: mailer\r\nauthorization: Bearer {SERVICE_TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n"
    );
    tokio::join!(
        slow_bodies("users", socket_addr(&stack.users_url()), users_head.into()),
        slow_bodies(
            "mailer",
            socket_addr(&stack.mailer_url()),
            mailer_head.into()
        ),
    );
}

/// Opens [`FLOOD`] slow-body connections from [`GREEDY`] while probing `/health` from
/// another address.
async fn slow_bodies(service: &str, addr: SocketAddr, head: Arc<str>) {
    let probe = HealthProbe::start(addr, Duration::from_secs(1));
    let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let clients: Vec<_> = (0..FLOOD)
        .map(|_| {
            let (opening, head) = (opening.clone(), head.clone());
            tokio::spawn(async move {
                let permit = opening
                    .acquire_owned()
                    .await
                    .expect("the semaphore is open");
                let tcp = connect_from(GREEDY, addr).await.expect("connect");
                drop(permit);
                slow_body(tcp, head, Duration::from_secs(15)).await
            })
        })
        .collect();
    let mut ended = Vec::new();
    for client in clients {
        ended.push(client.await.expect("a client task"));
    }
    let probes = probe.finish(service).await;

    let late: Vec<&SlowBody> = ended
        .iter()
        .filter(|c| c.lasted > Duration::from_secs(12))
        .collect();
    assert!(
        late.is_empty(),
        "{service}: {} connections outlived 12 s: {:?}",
        late.len(),
        late.first()
    );
    // Refused ones are closed at accept; held ones live until their 408.
    let held: Vec<&SlowBody> = ended
        .iter()
        .filter(|c| c.lasted > Duration::from_secs(2))
        .collect();
    let at_once = most_at_once(&held);
    assert!(
        at_once <= PER_CLIENT && held.len() > PER_CLIENT / 2,
        "{service}: {} connections held, {at_once} at once",
        held.len()
    );
    for client in &held {
        assert!(
            client.answer.starts_with("HTTP/1.1 408")
                && client.answer.contains("\"error\":\"request_timeout\"")
                && client.lasted >= Duration::from_secs(9),
            "{service}: a slow body ended after {:?} with {:?}",
            client.lasted,
            client.answer
        );
    }
    eprintln!(
        "{service}: {} held, {} refused, {probes} probes answered",
        held.len(),
        FLOOD - held.len()
    );
}

/// The most connections open at one time among `held`.
fn most_at_once(held: &[&SlowBody]) -> usize {
    let mut changes: Vec<(Instant, i32)> = held
        .iter()
        .flat_map(|c| [(c.connected, 1), (c.connected + c.lasted, -1)])
        .collect();
    // Closings first at equal instants.
    changes.sort();
    let mut open = 0i32;
    let mut most = 0i32;
    for (_, change) in changes {
        open += change;
        most = most.max(open);
    }
    most as usize
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_long_polls_from_one_address_are_capped_while_other_addresses_are_served() {
    let stack = per_client_stack().await;
    held_by_one_address(
        "mailer (long-polls)",
        socket_addr(&stack.mailer_url()),
        pending_long_poll,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_live_websockets_from_one_address_are_capped_while_other_addresses_are_served() {
    let stack = per_client_stack().await;
    held_by_one_address(
        "mailer (websockets)",
        socket_addr(&stack.mailer_url()),
        idle_live_websocket,
    )
    .await;
}

/// Opens [`FLOOD`] connections from [`GREEDY`] with `open` (which returns the connections the
/// server kept), holds them for 3 s, and checks that at most [`PER_CLIENT`] were kept and
/// that `/health` from another address answered within 1 s throughout.
async fn held_by_one_address<F, Fut>(service: &str, addr: SocketAddr, open: F)
where
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Option<tokio::net::TcpStream>>,
{
    let probe = HealthProbe::start(addr, Duration::from_secs(1));
    let mut held: Vec<tokio::net::TcpStream> = futures_util::stream::iter(0..FLOOD)
        .map(|_| open(addr))
        .buffer_unordered(OPENING_AT_ONCE)
        .filter_map(std::future::ready)
        .collect()
        .await;
    // The address holds all it may; other clients must still be served meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still: usize = futures_util::future::join_all(held.iter_mut().map(still_open))
        .await
        .into_iter()
        .filter(|open| *open)
        .count();
    let probes = probe.finish(service).await;
    assert!(
        held.len() <= PER_CLIENT && still > PER_CLIENT / 2,
        "{service}: {} of {FLOOD} connections kept, {still} still open",
        held.len()
    );
    eprintln!(
        "{service}: {} held ({still} still open), {probes} probes answered",
        held.len()
    );
}
