//! The HTTP server loop both services run: axum's router on hyper's HTTP/1 connection, with
//! the limits `axum::serve` does not have.
//!
//! - **A header-read timeout.** A connection that has not sent complete request headers within
//!   [`ServeLimits::header_read_timeout`] of its start, or of the first byte of its next
//!   request, is closed.
//! - **A body-read timeout.** A request whose body has not fully arrived within
//!   [`ServeLimits::body_read_timeout`] of its head is answered 408 and its connection closed
//!   (`body_timeout`); a request with no body (a pending long-poll) is not timed.
//! - **A keep-alive idle timeout.** A connection with no request in flight for
//!   [`ServeLimits::idle_timeout`] is closed (`clock`).
//! - **A connection cap.** At most [`ServeLimits::max_connections`] connections are served at
//!   once. The loop takes a permit before it accepts, so the next client waits in the kernel's
//!   accept backlog instead of costing a task, buffers and a file descriptor.
//! - **A per-client cap.** One client address holds at most
//!   [`ServeLimits::max_connections_per_client`] connections; the next one from it is closed
//!   at accept (`clients`). Addresses in [`ServeLimits::trusted_proxies`] are exempt.
//!
//! A websocket that socket.io upgrades leaves the HTTP connection (and its permit) once the
//! upgrade is done; the mailer bounds those with `mailer.max_sockets`. It keeps its place in
//! its address's count until the TCP connection closes, so the per-client cap holds whatever
//! a client holds its connections with. Each request carries the peer's address as
//! `ConnectInfo<SocketAddr>`, as with axum's `into_make_service_with_connect_info`.

mod body_timeout;
mod clients;
mod clock;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use clients::{Admission, ClientSlots};
use clock::{ConnectionClock, InFlight, Watched};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// The policy both services send with `/docs` and `/openapi.json`: Swagger UI's own files only
/// (its components set inline styles), the document fetched from the same origin, and no page
/// may frame it.
const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Adds the docs' Content-Security-Policy to a response of the docs routes
/// (`axum::middleware::map_response(with_docs_policy)`).
pub async fn with_docs_policy(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(DOCS_POLICY),
    );
    response
}

/// The limits of one server.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// How long a client may take to send complete request headers.
    pub header_read_timeout: Duration,
    /// How long a request body may take to arrive after its headers.
    pub body_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections one client address may hold at once (0: no cap).
    pub max_connections_per_client: usize,
    /// Peers exempt from the per-client cap (proxies that do their own).
    pub trusted_proxies: Arc<[IpAddr]>,
}

impl ServeLimits {
    /// The contract's timeouts (10 s for headers, 10 s for a body, 60 s idle) with
    /// `max_connections`, and no per-client cap.
    pub fn with_max_connections(max_connections: usize) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections,
            max_connections_per_client: 0,
            trusted_proxies: Arc::from([]),
        }
    }

    /// At most `max` connections per client address (0: no cap), except from
    /// `trusted_proxies`.
    pub fn per_client(mut self, max: usize, trusted_proxies: &[IpAddr]) -> Self {
        self.max_connections_per_client = max;
        self.trusted_proxies = trusted_proxies.into();
        self
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets each
/// connection finish the request it is serving, closes idle ones, and returns once every
/// connection has ended.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let clients = ClientSlots::new(
        limits.max_connections_per_client,
        limits.trusted_proxies.clone(),
    );
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: the next accept may work once a connection closes.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let slot = match clients.admit(peer.ip()) {
            Admission::Counted(slot) => Some(slot),
            Admission::Exempt => None,
            Admission::Refused => {
                tracing::debug!(%peer, "closing a connection past the per-client cap");
                continue;
            }
        };
        // Acks and small responses are written in pieces; without TCP_NODELAY each piece
        // after the first waits for the client's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let clock = ConnectionClock::start(limits.header_read_timeout, limits.idle_timeout);
        let io = TokioIo::new(Watched::new(tcp, clock.clone(), slot));
        let router = router.clone();
        let body_read_timeout = limits.body_read_timeout;
        let request_clock = clock.clone();
        let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let in_flight = request_clock.request_started();
            let answer = body_timeout::answer(router.clone(), request, body_read_timeout);
            async move {
                let response = answer.await;
                Ok::<_, Infallible>(response.map(|body| Answering {
                    body,
                    _in_flight: in_flight,
                }))
            }
        });
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // The header-read timeout is the clock's: hyper's would also cut idle
            // connections at the same time.
            let connection = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(None)
                .serve_connection(io, service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            let stop_requested = async move {
                // The guard `wait_for` returns is not `Send`: drop it at once.
                let _ = stopping.wait_for(|stop| *stop).await.map(|_| ());
            };
            let ended = tokio::select! {
                // The clock after the connection: it reads the phase the connection's turn
                // has just set (see `clock`).
                biased;
                ended = connection.as_mut() => ended,
                () = clock.expired() => {
                    tracing::debug!(%peer, "closing a connection that sent no request in time");
                    Ok(())
                }
                () = stop_requested => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every permit back means every connection task has ended.
    let _ = permits.acquire_many(max as u32).await;
    Ok(())
}

/// A response body that keeps its request in flight until it is written.
struct Answering {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Answering {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
