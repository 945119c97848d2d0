//! The HTTP server loop both services run: axum's router on hyper's HTTP/1 connection, with
//! the two limits `axum::serve` does not have.
//!
//! - **A header-read timeout.** A connection that has not sent complete request headers within
//!   [`ServeLimits::header_read_timeout`] is closed. hyper starts that clock whenever it waits
//!   for a request head, so an idle keep-alive connection is closed after the same time.
//! - **A connection cap.** At most [`ServeLimits::max_connections`] connections are served at
//!   once. The loop takes a permit before it accepts, so the next client waits in the kernel's
//!   accept backlog instead of costing a task, buffers and a file descriptor.
//!
//! A websocket that socket.io upgrades leaves the HTTP connection (and its permit) once the
//! upgrade is done; the mailer bounds those with `mailer.max_sockets`. Each request carries
//! the peer's address as `ConnectInfo<SocketAddr>`, as with axum's
//! `into_make_service_with_connect_info`.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// The limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// How long a client may take to send complete request headers (and how long an idle
    /// keep-alive connection stays open).
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl ServeLimits {
    /// The contract's header-read timeout (10 s) with `max_connections`.
    pub fn with_max_connections(max_connections: usize) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections,
        }
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
        // Acks and small responses are written in pieces; without TCP_NODELAY each piece
        // after the first waits for the client's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service =
            router
                .clone()
                .map_request(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let connection = builder
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            let stop_requested = async move {
                // The guard `wait_for` returns is not `Send`: drop it at once.
                let _ = stopping.wait_for(|stop| *stop).await.map(|_| ());
            };
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
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
