//! The AMQP side of the mailer, used when `transport.kind` is `amqp`: the consumer that
//! feeds the core, and the events exchange that receives every `mail-status`.
//!
//! The consumer and publisher live in the transport crate; this module only wires them
//! to the core. With the socket.io transport, nothing here runs.

use crate::core::MailerCore;
use crate::events::StatusPublisher;
use crate::http::TransportHealth;
use crate::startup::StartupError;
use domain::config::{Config, TransportKind};
use socketioxide::SocketIo;
use std::sync::Arc;

/// A background task that must be stopped at shutdown.
#[async_trait::async_trait]
pub trait Stoppable: Send + Sync {
    /// Stops it; returns once it has stopped.
    async fn stop(&self);
}

/// What [`start`] sets up before the core exists.
pub struct AmqpSide {
    /// Where `mail-status` is also published.
    pub status_publisher: Option<Arc<dyn StatusPublisher>>,
    /// What `/health` reports.
    pub health: TransportHealth,
    kind: TransportKind,
}

/// Prepares the AMQP side for `config`.
pub async fn start(config: &Config, _io: &SocketIo) -> Result<AmqpSide, StartupError> {
    match config.transport.kind {
        TransportKind::Socketio => Ok(AmqpSide {
            status_publisher: None,
            health: TransportHealth::Socketio,
            kind: TransportKind::Socketio,
        }),
        TransportKind::Amqp => Err(StartupError::Transport(
            "this build of the mailer has no AMQP consumer yet; use transport.kind: socketio"
                .into(),
        )),
    }
}

impl AmqpSide {
    /// Starts the consumer, feeding `core`.
    pub async fn start_consumer(
        &self,
        _core: MailerCore,
    ) -> Result<Vec<Box<dyn Stoppable>>, StartupError> {
        match self.kind {
            TransportKind::Socketio => Ok(Vec::new()),
            TransportKind::Amqp => Ok(Vec::new()),
        }
    }
}
