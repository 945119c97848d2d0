//! The AMQP side of the mailer, used when `transport.kind` is `amqp`: the consumer that
//! feeds the core (`transport::amqp::AmqpConsumer`), and the events exchange that receives
//! every `mail-status` (`transport::amqp::AmqpEvents`).
//!
//! The consumer and publisher live in the transport crate; this module only wires them to
//! the core. With the socket.io transport, nothing here runs.

use crate::events::StatusPublisher;
use crate::mailer_core::MailerCore;
use domain::config::{Config, TransportKind};
use std::sync::{Arc, Mutex};
use transport::amqp::{AmqpConsumer, AmqpEvents};
use transport::{LinkState, MailHandler};

/// What `/health` reports about the transport.
#[derive(Clone)]
pub enum TransportHealth {
    /// socket.io: the mailer is the server, so the link is up while it runs.
    Socketio,
    /// AMQP: the consumer's link state.
    Amqp(Arc<dyn Fn() -> LinkState + Send + Sync>),
}

/// A background task that must be stopped at shutdown.
#[async_trait::async_trait]
pub trait Stoppable: Send + Sync {
    /// Stops it; returns once it has stopped.
    async fn stop(&self);
}

#[async_trait::async_trait]
impl StatusPublisher for AmqpEvents {
    async fn publish_status(&self, status: &'static str, payload: &serde_json::Value) {
        self.publish(status, payload).await;
    }
}

/// The consumer, once started. A `std::sync::Mutex`: it is only taken to read the state
/// or to take the consumer out at shutdown, never across an await.
type ConsumerSlot = Arc<Mutex<Option<AmqpConsumer>>>;

struct ConsumerStopper(ConsumerSlot);

#[async_trait::async_trait]
impl Stoppable for ConsumerStopper {
    async fn stop(&self) {
        let consumer = self.0.lock().ok().and_then(|mut slot| slot.take());
        if let Some(consumer) = consumer {
            // Unhandled deliveries go back to the queue when its channel closes.
            consumer.stop().await;
        }
    }
}

/// What [`prepare`] sets up before the core exists.
pub struct AmqpSide {
    /// Where `mail-status` is also published.
    pub status_publisher: Option<Arc<dyn StatusPublisher>>,
    /// What `/health` reports.
    pub health: TransportHealth,
    config: Option<domain::config::AmqpConfig>,
    consumer: ConsumerSlot,
}

/// Prepares the AMQP side for `config`: with AMQP, starts the events publisher (it
/// connects in the background, so a broker that is down does not stop the mailer).
pub fn prepare(config: &Config) -> AmqpSide {
    let consumer: ConsumerSlot = Arc::new(Mutex::new(None));
    match config.transport.kind {
        TransportKind::Socketio => AmqpSide {
            status_publisher: None,
            health: TransportHealth::Socketio,
            config: None,
            consumer,
        },
        TransportKind::Amqp => {
            let events: Arc<dyn StatusPublisher> =
                Arc::new(AmqpEvents::start(&config.transport.amqp));
            let slot = consumer.clone();
            let health = TransportHealth::Amqp(Arc::new(move || {
                slot.lock()
                    .ok()
                    .and_then(|c| c.as_ref().map(AmqpConsumer::state))
                    .unwrap_or(LinkState::Disconnected)
            }));
            AmqpSide {
                status_publisher: Some(events),
                health,
                config: Some(config.transport.amqp.clone()),
                consumer,
            }
        }
    }
}

impl AmqpSide {
    /// With AMQP, starts the consumer feeding `core` and returns what must be stopped at
    /// shutdown; with socket.io, nothing.
    pub fn start_consumer(&self, core: MailerCore) -> Vec<Box<dyn Stoppable>> {
        let Some(config) = &self.config else {
            return Vec::new();
        };
        let handler: Arc<dyn MailHandler> = Arc::new(core);
        let consumer = AmqpConsumer::start(config, handler);
        if let Ok(mut slot) = self.consumer.lock() {
            *slot = Some(consumer);
        }
        vec![Box::new(ConsumerStopper(self.consumer.clone()))]
    }
}
