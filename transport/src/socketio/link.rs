//! The background link of a [`super::SocketIoPublisher`]: connects, waits for the namespace
//! CONNECT, answers pings, routes acks to their waiting publish, and reconnects forever with
//! backoff — the first connect included.

use super::packet::{self, Incoming};
use super::publisher::Shared;
use futures_util::{SinkExt, StreamExt};
use runtime::backoff::Backoff;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How long the TCP + websocket handshake and then the namespace CONNECT may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many queued packets are written before one flush, so a burst of publishes
/// costs one syscall instead of one each.
const WRITE_BATCH: usize = 256;

/// One connected socket.io session: the writer queue and the acks it still owes.
pub(crate) struct Link {
    outgoing: mpsc::UnboundedSender<String>,
    /// `None` once the session ended, so a late publish fails at once instead of waiting
    /// for an ack that cannot come. A `std::sync::Mutex`: never held across an await.
    pending: Mutex<Option<HashMap<u64, oneshot::Sender<Value>>>>,
}

impl Link {
    fn new(outgoing: mpsc::UnboundedSender<String>) -> Self {
        Self {
            outgoing,
            pending: Mutex::new(Some(HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<HashMap<u64, oneshot::Sender<Value>>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `ack_id` and queues `packet`; false when the session already ended.
    pub(crate) fn send(&self, ack_id: u64, packet: String, answer: oneshot::Sender<Value>) -> bool {
        match self.lock().as_mut() {
            Some(pending) => pending.insert(ack_id, answer),
            None => return false,
        };
        if self.outgoing.send(packet).is_err() {
            self.forget(ack_id);
            return false;
        }
        true
    }

    /// Drops the wait for `ack_id` (its publish timed out); a late ack is then ignored.
    pub(crate) fn forget(&self, ack_id: u64) {
        if let Some(pending) = self.lock().as_mut() {
            pending.remove(&ack_id);
        }
    }

    /// Ends the session: every waiting publish gets its error now.
    pub(crate) fn fail_pending(&self) {
        self.lock().take();
    }

    fn resolve(&self, ack_id: u64, args: Value) {
        let waiter = self.lock().as_mut().and_then(|p| p.remove(&ack_id));
        match waiter {
            // The receiver is gone when the publish gave up at this very moment: nothing to do.
            Some(waiter) => drop(waiter.send(args)),
            None => tracing::debug!(ack_id, "an ack arrived after its publish gave up"),
        }
    }
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("the mailer refused the connection: {0}; check transport.socketio.token")]
    Refused(String),
    #[error("{0}")]
    Broken(String),
}

fn broken(message: impl Into<String>) -> LinkError {
    LinkError::Broken(message.into())
}

/// Connects and serves sessions until the publisher is closed.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut closed = shared.closed.subscribe();
    let mut backoff = Backoff::reconnect();
    loop {
        let outcome = tokio::select! {
            outcome = serve_one_session(&shared, &mut backoff) => outcome,
            _ = closed.wait_for(|c| *c) => break,
        };
        let was_connected = *shared.state.borrow() == crate::LinkState::Connected;
        shared.detach();
        match outcome {
            Ok(()) => {
                tracing::info!(url = %shared.base_url, "the mailer closed the socket.io connection; reconnecting")
            }
            Err(LinkError::Refused(message)) => {
                tracing::error!(url = %shared.base_url, "{}", LinkError::Refused(message))
            }
            Err(e) if was_connected => {
                tracing::warn!(url = %shared.base_url, error = %e, "lost the socket.io connection to the mailer; reconnecting")
            }
            Err(e) => {
                tracing::debug!(url = %shared.base_url, error = %e, "could not connect to the mailer; retrying")
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = closed.wait_for(|c| *c) => break,
        }
    }
    shared.detach();
}

/// One session: handshake, namespace CONNECT, then ping/pong, writes and acks until it ends.
async fn serve_one_session(shared: &Shared, backoff: &mut Backoff) -> Result<(), LinkError> {
    let url = shared.ws_url.as_ref().map_err(|e| broken(e.clone()))?;
    let (ws, _) = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        // Without TCP_NODELAY, a publish written while the previous one is unacknowledged
        // waits for the mailer's delayed ACK (up to 40 ms) under Nagle's algorithm.
        tokio_tungstenite::connect_async_with_config(url.as_str(), None, true),
    )
    .await
    .map_err(|_| {
        broken(format!(
            "no websocket handshake within {HANDSHAKE_TIMEOUT:?}"
        ))
    })?
    .map_err(|e| broken(format!("websocket connect failed: {e}")))?;
    let (mut sink, mut stream) = ws.split();

    let (liveness, refused) = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let mut heartbeat = None;
        loop {
            let text = match stream.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(broken(format!("websocket error: {e}"))),
                None => {
                    return Err(broken(
                        "the mailer closed the websocket during the handshake",
                    ));
                }
            };
            match packet::parse(text.as_str()).map_err(broken)? {
                Incoming::Open {
                    ping_interval,
                    ping_timeout,
                } => {
                    heartbeat = Some(ping_interval + ping_timeout);
                    let connect = packet::connect_packet(shared.token.expose());
                    sink.send(Message::text(connect))
                        .await
                        .map_err(|e| broken(e.to_string()))?;
                }
                Incoming::Ping => sink
                    .send(Message::text(packet::PONG))
                    .await
                    .map_err(|e| broken(e.to_string()))?,
                Incoming::Connected => return Ok((heartbeat, None)),
                Incoming::ConnectRefused(message) => return Ok((heartbeat, Some(message))),
                Incoming::Closed => {
                    return Err(broken("the mailer closed the session during the handshake"));
                }
                Incoming::Ack { .. } | Incoming::Ignored => {}
            }
        }
    })
    .await
    .map_err(|_| broken(format!("no socket.io CONNECT within {HANDSHAKE_TIMEOUT:?}")))??;
    if let Some(message) = refused {
        return Err(LinkError::Refused(message));
    }
    let liveness =
        liveness.ok_or_else(|| broken("the mailer sent CONNECT before the engine.io OPEN"))?;

    let (outgoing, mut queued) = mpsc::unbounded_channel::<String>();
    let link = Arc::new(Link::new(outgoing));
    shared.attach(link.clone());
    backoff.reset();
    tracing::info!(url = %shared.base_url, "connected to the mailer over socket.io");

    loop {
        tokio::select! {
            frame = tokio::time::timeout(liveness, stream.next()) => {
                let text = match frame {
                    Err(_) => return Err(broken(format!("no ping from the mailer within {liveness:?}"))),
                    Ok(None) => return Err(broken("the websocket closed")),
                    Ok(Some(Err(e))) => return Err(broken(format!("websocket error: {e}"))),
                    Ok(Some(Ok(Message::Text(text)))) => text,
                    Ok(Some(Ok(Message::Close(_)))) => return Ok(()),
                    Ok(Some(Ok(_))) => continue,
                };
                match packet::parse(text.as_str()) {
                    Ok(Incoming::Ping) => sink.send(Message::text(packet::PONG)).await.map_err(|e| broken(e.to_string()))?,
                    Ok(Incoming::Ack { id, args }) => link.resolve(id, args),
                    Ok(Incoming::Closed) => return Ok(()),
                    Ok(Incoming::ConnectRefused(message)) => return Err(LinkError::Refused(message)),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "ignored an unreadable packet from the mailer"),
                }
            }
            Some(first) = queued.recv() => {
                sink.feed(Message::text(first)).await.map_err(|e| broken(e.to_string()))?;
                for _ in 1..WRITE_BATCH {
                    match queued.try_recv() {
                        Ok(more) => sink.feed(Message::text(more)).await.map_err(|e| broken(e.to_string()))?,
                        Err(_) => break,
                    }
                }
                sink.flush().await.map_err(|e| broken(e.to_string()))?;
            }
        }
    }
}
