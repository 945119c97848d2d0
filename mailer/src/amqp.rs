//! The mailer's AMQP door, used when `transport.kind` is `amqp`: [`AmqpConsumer`] hands
//! each request of the queue to the core, and tells `/health` whether it is attached.
//!
//! It is started once the core exists and stopped at shutdown. The consuming itself is the
//! transport crate's (`transport::amqp::AmqpConsumer`). The events exchange, which receives
//! every `mail-status`, is fed by `crate::events`.

use crate::mailer_core::MailerCore;
use domain::config::AmqpConfig;
use std::sync::Arc;
use tokio::sync::watch;
use transport::LinkState;

/// What `/health` reports about the transport.
#[derive(Clone)]
pub enum TransportHealth {
    /// socket.io: the mailer is the server, so the link is up while it runs.
    Socketio,
    /// AMQP: the consumer's link state, as it changes.
    Amqp(watch::Receiver<LinkState>),
}

/// The consumer of the request queue, feeding the core.
pub struct AmqpConsumer {
    consumer: transport::amqp::AmqpConsumer,
}

impl AmqpConsumer {
    /// Starts consuming for `core` and returns at once; it connects in the background and
    /// reconnects by itself, so a broker that is down does not stop the mailer.
    pub fn start(core: MailerCore, config: &AmqpConfig) -> AmqpConsumer {
        AmqpConsumer {
            consumer: transport::amqp::AmqpConsumer::start(config, Arc::new(core)),
        }
    }

    /// What `/health` reports while this consumer runs.
    pub fn health(&self) -> TransportHealth {
        TransportHealth::Amqp(self.consumer.watch_state())
    }

    /// Stops consuming and returns once the requests being handled are settled;
    /// unhandled deliveries go back to the queue when its channel closes.
    pub async fn stop(self) {
        self.consumer.stop().await;
    }
}
