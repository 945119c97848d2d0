//! [`SocketIoPublisher`]: the users service's side of the socket.io transport.
//!
//! Each publish emits `send-mail` with its own sequential ack id, waits for that ack under
//! its own timeout, and checks that the answer names the request's id. The connection
//! itself lives in [`super::link`], which reconnects forever in the background.

use super::link::{self, Link};
use super::packet;
use super::service::SEND_MAIL_EVENT;
use crate::{LinkState, PublishError, Receipt, Transport};
use async_trait::async_trait;
use domain::config::{SocketIoConfig, TransportKind};
use domain::{MailAnswer, MailRequest, MailStatus, Secret};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::time::{Instant, timeout_at};

/// How long a publish waits for its ack unless the builder says otherwise.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How many requests may wait for their ack at once unless the builder says otherwise.
///
/// socketioxide queues at most `max_buffer_size` packets per socket (128 by default) and
/// drops an ack that does not fit (`AckSender::send` fails with `InternalChannelFull`), so
/// the bound stays well under 128, leaving room for the `mail-status` events the mailer emits
/// to the same socket.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// Publishes mail requests to the mailer as a socket.io client (engine.io v4, socket.io v5,
/// websocket only). Cheap to share behind an `Arc`; dropping it stops the background link.
pub struct SocketIoPublisher {
    shared: Arc<Shared>,
}

/// What the publisher and its background link share.
pub(crate) struct Shared {
    /// The configured base URL, for error messages.
    pub(crate) base_url: String,
    /// The engine.io websocket URL, or why the configured URL cannot be used.
    pub(crate) ws_url: Result<String, String>,
    /// The token sent in the CONNECT packet.
    pub(crate) token: Secret,
    ack_timeout: Duration,
    max_in_flight: usize,
    in_flight: Semaphore,
    next_ack_id: AtomicU64,
    /// The link while the namespace is connected. This is a `std::sync::Mutex` and not a
    /// Tokio mutex: it is held only to clone or swap an `Arc`, never across an await.
    current: Mutex<Option<Arc<Link>>>,
    /// Connected only between the server's CONNECT and the end of that connection.
    pub(crate) state: watch::Sender<LinkState>,
    /// Set once by `close`; the link task stops when it sees it.
    pub(crate) closed: watch::Sender<bool>,
}

impl Shared {
    /// Makes `link` the one publishes use and reports Connected.
    pub(crate) fn attach(&self, link: Arc<Link>) {
        *self.lock_current() = Some(link);
        self.state.send_replace(LinkState::Connected);
    }

    /// Forgets the current link, failing every request still waiting for its ack at once.
    pub(crate) fn detach(&self) {
        let old = self.lock_current().take();
        self.state.send_replace(LinkState::Disconnected);
        if let Some(link) = old {
            link.fail_pending();
        }
    }

    fn current_link(&self) -> Option<Arc<Link>> {
        self.lock_current().clone()
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Arc<Link>>> {
        // A panic while holding this lock cannot leave the Option half-written.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Settings of a [`SocketIoPublisher`] before it starts; tests shorten the timeouts.
pub struct SocketIoPublisherBuilder {
    url: String,
    token: Secret,
    ack_timeout: Duration,
    max_in_flight: usize,
}

impl SocketIoPublisherBuilder {
    /// How long one publish waits for its ack (default 5 s).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// How many publishes may wait for their ack at once (default [`DEFAULT_MAX_IN_FLIGHT`]);
    /// more wait for a slot within their own timeout. Keep it under the mailer's socketioxide
    /// `max_buffer_size`.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        self
    }

    /// Starts connecting in the background and returns at once. Must be called inside a
    /// Tokio runtime.
    pub fn start(self) -> SocketIoPublisher {
        let shared = Arc::new(Shared {
            ws_url: packet::websocket_url(&self.url),
            base_url: self.url,
            token: self.token,
            ack_timeout: self.ack_timeout,
            max_in_flight: self.max_in_flight,
            in_flight: Semaphore::new(self.max_in_flight),
            next_ack_id: AtomicU64::new(0),
            current: Mutex::new(None),
            state: watch::Sender::new(LinkState::Disconnected),
            closed: watch::Sender::new(false),
        });
        tokio::spawn(link::run(shared.clone()));
        SocketIoPublisher { shared }
    }
}

impl SocketIoPublisher {
    /// A builder with the defaults, for the mailer at `config.url` with `config.token`.
    pub fn builder(config: &SocketIoConfig) -> SocketIoPublisherBuilder {
        SocketIoPublisherBuilder {
            url: config.url.clone(),
            token: config.token.clone(),
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// Starts a publisher with the defaults; see [`SocketIoPublisherBuilder::start`].
    pub fn start(config: &SocketIoConfig) -> Self {
        Self::builder(config).start()
    }

    /// Waits until the namespace is connected, at most `within`; true when it is.
    pub async fn wait_until_connected(&self, within: Duration) -> bool {
        let mut state = self.shared.state.subscribe();
        tokio::time::timeout(within, state.wait_for(|s| *s == LinkState::Connected))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn not_connected(&self) -> PublishError {
        PublishError::Retryable(format!(
            "not connected to the mailer at {}",
            self.shared.base_url
        ))
    }
}

impl Drop for SocketIoPublisher {
    fn drop(&mut self) {
        self.shared.closed.send_replace(true);
    }
}

#[async_trait]
impl Transport for SocketIoPublisher {
    #[tracing::instrument(name = "Publishing a mail request over socket.io", skip_all, fields(mail_id = %request.id))]
    async fn publish(&self, request: &MailRequest) -> Result<Receipt, PublishError> {
        let shared = &self.shared;
        let deadline = Instant::now() + shared.ack_timeout;
        if *shared.closed.borrow() {
            return Err(PublishError::Retryable(
                "the socket.io publisher is closed".into(),
            ));
        }
        let Some(_) = shared.current_link() else {
            return Err(self.not_connected());
        };
        let _permit = match timeout_at(deadline, shared.in_flight.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(PublishError::Retryable(format!(
                    "{} requests were already waiting for the mailer's answer for {:?}",
                    shared.max_in_flight, shared.ack_timeout
                )));
            }
        };
        // The link may have changed while waiting for a slot: use the one current now.
        let link = shared.current_link().ok_or_else(|| self.not_connected())?;
        let ack_id = shared.next_ack_id.fetch_add(1, Ordering::Relaxed);
        let (answer_tx, answer_rx) = oneshot::channel();
        let data = serde_json::to_value(request)
            .map_err(|e| PublishError::Permanent(format!("the request cannot be encoded: {e}")))?;
        if !link.send(
            ack_id,
            packet::event_packet(ack_id, SEND_MAIL_EVENT, &data),
            answer_tx,
        ) {
            return Err(PublishError::Retryable(
                "the connection to the mailer dropped before the request was sent".into(),
            ));
        }
        match timeout_at(deadline, answer_rx).await {
            Ok(Ok(args)) => read_answer(args, request),
            Ok(Err(_)) => Err(PublishError::Retryable(
                "the connection to the mailer dropped before it answered".into(),
            )),
            Err(_) => {
                link.forget(ack_id);
                Err(PublishError::Retryable(format!(
                    "the mailer did not answer within {:?}",
                    shared.ack_timeout
                )))
            }
        }
    }

    fn state(&self) -> LinkState {
        *self.shared.state.borrow()
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Socketio
    }

    async fn close(&self) {
        self.shared.closed.send_replace(true);
        self.shared.detach();
    }
}

/// Turns the ack's arguments into the publish result, checking the answer is this request's.
fn read_answer(args: Value, request: &MailRequest) -> Result<Receipt, PublishError> {
    let first = match args {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    let answer: MailAnswer = serde_json::from_value(first).map_err(|e| {
        PublishError::Retryable(format!("the mailer's answer could not be read: {e}"))
    })?;
    match answer.id {
        Some(id) if id != request.id => {
            return Err(PublishError::Retryable(format!(
                "the mailer answered for request {id} instead of {}",
                request.id
            )));
        }
        _ => {}
    }
    match answer.status {
        MailStatus::Unavailable { error } => Err(PublishError::Retryable(format!(
            "the mailer could not store the request: {error}"
        ))),
        _ => Ok(Receipt::Answered(answer)),
    }
}
