//! The road between users and mailer: one [`Transport`] trait to publish mail requests, one
//! [`MailHandler`] trait to receive them, and two backends behind them.
//!
//! - [`socketio`]: the users service is a socket.io client of the mailer; answers come back
//!   as acks ([`Receipt::Answered`]).
//! - [`amqp`]: both services talk to RabbitMQ; a publish counts once the broker confirms it
//!   ([`Receipt::Confirmed`]), and the mailer consumes with manual acks.
//!
//! [`connect`] builds the backend that `transport.kind` names. Whatever the backend, a
//! publish returns only once the other side has taken responsibility for the request, and
//! every error says whether trying again can help.

pub mod amqp;
mod publish;
pub mod socketio;

pub use publish::{LinkState, MailHandler, Origin, PublishError, Receipt, Transport};

use domain::config::{TransportConfig, TransportKind};
use std::sync::Arc;

/// Builds and starts the publisher that `config.kind` names. It connects in the background
/// and returns at once, even when the mailer or the broker is down; publishes fail with a
/// retryable error until the link is up. Must be called inside a Tokio runtime.
pub fn connect(config: &TransportConfig) -> Arc<dyn Transport> {
    match config.kind {
        TransportKind::Socketio => Arc::new(socketio::SocketIoPublisher::start(&config.socketio)),
        TransportKind::Amqp => Arc::new(amqp::AmqpPublisher::start(&config.amqp)),
    }
}
