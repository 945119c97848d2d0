//! [`AmqpEvents`]: the mailer publishes each `mail-status` to the topic exchange
//! `<exchange>.events` with routing key `mail.<status>`, best effort.
//!
//! Events go through a bounded queue to a background task that owns the connection, so the
//! caller never waits on the broker; when the queue is full or the broker is away, events
//! are dropped and logged, never retried forever.

use super::connection;
use super::topology::{TopologyNames, declare_topology};
use domain::config::AmqpConfig;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel, Connection};
use runtime::backoff::Backoff;
use serde_json::Value;
use tokio::sync::mpsc;

/// Events waiting for the broker; beyond this, new events are dropped.
const QUEUE_CAPACITY: usize = 1024;

/// One event on its way to the broker.
struct StatusEvent {
    status: String,
    payload: Vec<u8>,
}

/// Publishes `mail-status` events to the events exchange, reconnecting by itself. Its
/// clones share one background publisher.
#[derive(Clone)]
pub struct AmqpEvents {
    queue: mpsc::Sender<StatusEvent>,
}

impl AmqpEvents {
    /// Starts the background publisher and returns at once (inside a Tokio runtime).
    pub fn start(config: &AmqpConfig) -> AmqpEvents {
        let (queue, pending) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(config.clone(), pending));
        AmqpEvents { queue }
    }

    /// Queues `payload` for routing key `mail.<status>`; returns at once, logging a dropped
    /// event instead of waiting.
    pub async fn publish(&self, status: &str, payload: &Value) {
        let event = StatusEvent {
            status: status.to_string(),
            payload: payload.to_string().into_bytes(),
        };
        if let Err(e) = self.queue.try_send(event) {
            tracing::warn!(status, error = %e, "dropped a mail-status event for RabbitMQ");
        }
    }
}

/// Connects, publishes queued events, and reconnects until every [`AmqpEvents`] is dropped.
async fn run(config: AmqpConfig, mut pending: mpsc::Receiver<StatusEvent>) {
    let names = TopologyNames::of(&config);
    let mut backoff = Backoff::reconnect();
    loop {
        match open_channel(&config, &names).await {
            Ok((connection, channel)) => {
                backoff.reset();
                let outcome = publish_until_failure(&channel, &names, &mut pending).await;
                let _ = connection.close(200, "closing".into()).await;
                match outcome {
                    None => return,
                    Some(reason) => {
                        tracing::warn!(error = %reason, "RabbitMQ events link down; reconnecting")
                    }
                }
            }
            Err(reason) => {
                tracing::debug!(error = %reason, "could not connect the RabbitMQ events publisher; retrying")
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
        if pending.is_closed() && pending.is_empty() {
            return;
        }
    }
}

/// Publishes events until the queue closes (`None`) or a publish fails (`Some(reason)`).
async fn publish_until_failure(
    channel: &Channel,
    names: &TopologyNames,
    pending: &mut mpsc::Receiver<StatusEvent>,
) -> Option<String> {
    while let Some(event) = pending.recv().await {
        let routing_key = format!("mail.{}", event.status);
        let published = channel
            .basic_publish(
                names.events_exchange.as_str().into(),
                routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &event.payload,
                BasicProperties::default().with_content_type("application/json".into()),
            )
            .await;
        if let Err(e) = published {
            tracing::warn!(status = %event.status, error = %e, "dropped a mail-status event for RabbitMQ");
            return Some(e.to_string());
        }
    }
    None
}

async fn open_channel(
    config: &AmqpConfig,
    names: &TopologyNames,
) -> Result<(Connection, Channel), String> {
    let connection = connection::open(config, "events").await?;
    let setup = async {
        let channel = connection.create_channel().await?;
        declare_topology(&channel, names).await?;
        Ok::<_, lapin::Error>(channel)
    };
    match setup.await {
        Ok(channel) => Ok((connection, channel)),
        Err(e) => {
            let _ = connection.close(200, "setup failed".into()).await;
            Err(format!("could not set up the RabbitMQ events channel: {e}"))
        }
    }
}
