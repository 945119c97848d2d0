//! The two traits every backend implements or drives, and the constructor that picks one.

use async_trait::async_trait;
use domain::config::TransportKind;
use domain::{MailAnswer, MailRequest};

/// What the other side said when it took a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// The mailer answered (socket.io ack): `accepted`, `duplicate` or `rejected`.
    Answered(MailAnswer),
    /// The broker confirmed it holds the request durably (AMQP); the mailer answers when it
    /// consumes it.
    Confirmed,
}

/// Why a publish did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Nothing is known to have been taken; the same request may be published again later
    /// (not connected, timed out, nacked, the mailer could not store it).
    #[error("{0} (will retry)")]
    Retryable(String),
    /// Publishing this request again will fail the same way.
    #[error("{0}")]
    Permanent(String),
}

impl PublishError {
    /// True when publishing again later can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PublishError::Retryable(_))
    }
}

/// Whether the transport's link is up, for `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Connected and usable.
    Connected,
    /// Not connected; reconnecting in the background.
    Disconnected,
}

/// The publishing side, as the users service's outbox relay sees it.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Publishes one request and returns once the mailer answered (socket.io) or the broker
    /// confirmed (AMQP). Never waits longer than the backend's timeout.
    async fn publish(&self, request: &MailRequest) -> Result<Receipt, PublishError>;

    /// The link's state right now.
    fn state(&self) -> LinkState;

    /// Which backend this is.
    fn kind(&self) -> TransportKind;

    /// Closes the link; publishes after this fail with a retryable error.
    async fn close(&self);
}

/// Where a received request came from, so the mailer can answer the right peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A socket.io service client; the string is its socket id.
    Socket(String),
    /// The AMQP queue.
    Amqp,
    /// The mailer's own REST API.
    Http,
}

/// The receiving side: the mailer implements it once and every backend drives it.
#[async_trait]
pub trait MailHandler: Send + Sync + 'static {
    /// Stores the request (or recognises it as a duplicate) and answers. Answers
    /// `unavailable` when it could not store the request and a retry may succeed.
    async fn handle(&self, request: MailRequest, origin: Origin) -> MailAnswer;
}
