//! [`AmqpPublisher`]: publishes mail requests to RabbitMQ and counts each one only on its
//! own publisher confirm.
//!
//! A supervisor task owns the connection: it connects (retrying forever with backoff, the
//! first connect included), declares the topology, enables confirms, hands the channel to
//! publishes, and rebuilds everything when the connection breaks.

use super::connection;
use super::topology::{REQUEST_ROUTING_KEY, TopologyNames, declare_topology};
use crate::{LinkState, PublishError, Receipt, Transport};
use async_trait::async_trait;
use domain::MailRequest;
use domain::config::{AmqpConfig, TransportKind};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use opentelemetry::propagation::Injector;
use runtime::backoff::Backoff;
use runtime::telemetry::context::{HeaderInjector, TRACEPARENT};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long a publish waits for the broker's confirm unless the builder says otherwise.
pub const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes each request as a persistent, mandatory message with `message_id` = the
/// request id, and returns [`Receipt::Confirmed`] once the broker confirmed that message.
pub struct AmqpPublisher {
    shared: Arc<Shared>,
}

struct Shared {
    names: TopologyNames,
    confirm_timeout: Duration,
    /// The confirm-mode channel while connected. A `std::sync::Mutex`, held only to clone.
    channel: Mutex<Option<Session>>,
    state: watch::Sender<LinkState>,
    closed: watch::Sender<bool>,
}

/// One connection's channel, and the signal a publish gives when it sees that channel fail
/// (so the supervisor rebuilds at once). The signal belongs to the session, so a late
/// failure on an old channel cannot tear down the next connection.
#[derive(Clone)]
struct Session {
    channel: Channel,
    broken: Arc<Notify>,
}

impl Shared {
    fn lock_channel(&self) -> std::sync::MutexGuard<'_, Option<Session>> {
        self.channel.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_channel(&self, channel: Option<Session>) {
        let state = match channel {
            Some(_) => LinkState::Connected,
            None => LinkState::Disconnected,
        };
        *self.lock_channel() = channel;
        self.state.send_replace(state);
    }
}

impl AmqpPublisher {
    /// Starts connecting in the background and returns at once (inside a Tokio runtime).
    pub fn start(config: &AmqpConfig) -> Self {
        Self::start_with_timeout(config, DEFAULT_CONFIRM_TIMEOUT)
    }

    /// Like [`AmqpPublisher::start`], with its own confirm timeout (tests shorten it).
    pub fn start_with_timeout(config: &AmqpConfig, confirm_timeout: Duration) -> Self {
        let shared = Arc::new(Shared {
            names: TopologyNames::of(config),
            confirm_timeout,
            channel: Mutex::new(None),
            state: watch::Sender::new(LinkState::Disconnected),
            closed: watch::Sender::new(false),
        });
        tokio::spawn(supervise(config.clone(), shared.clone()));
        Self { shared }
    }

    /// Waits until the channel is ready, at most `within`; true when it is.
    pub async fn wait_until_connected(&self, within: Duration) -> bool {
        let mut state = self.shared.state.subscribe();
        tokio::time::timeout(within, state.wait_for(|s| *s == LinkState::Connected))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for AmqpPublisher {
    fn drop(&mut self) {
        self.shared.closed.send_replace(true);
    }
}

#[async_trait]
impl Transport for AmqpPublisher {
    #[tracing::instrument(name = "Publishing a mail request to RabbitMQ", skip_all, fields(mail_id = %request.id))]
    async fn publish(&self, request: &MailRequest) -> Result<Receipt, PublishError> {
        let shared = &self.shared;
        let session = shared
            .lock_channel()
            .clone()
            .ok_or_else(|| PublishError::Retryable("not connected to RabbitMQ".into()))?;
        let properties = BasicProperties::default()
            .with_delivery_mode(2) // persistent: survives a broker restart
            .with_content_type("application/json".into())
            .with_message_id(request.id.to_string().into())
            .with_headers(trace_headers(request.traceparent.as_deref()));
        // mandatory: an unroutable message comes back as a return instead of vanishing.
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let payload = request.to_json();
        let confirmed = tokio::time::timeout(shared.confirm_timeout, async {
            session
                .channel
                .basic_publish(
                    shared.names.exchange.as_str().into(),
                    REQUEST_ROUTING_KEY.into(),
                    options,
                    &payload,
                    properties,
                )
                .await?
                .await
        })
        .await;
        let confirmation = match confirmed {
            Err(_) => {
                return Err(PublishError::Retryable(format!(
                    "RabbitMQ did not confirm the request within {:?}",
                    shared.confirm_timeout
                )));
            }
            Ok(Err(e)) => {
                session.broken.notify_one();
                return Err(PublishError::Retryable(format!(
                    "publishing to RabbitMQ failed: {e}"
                )));
            }
            Ok(Ok(confirmation)) => confirmation,
        };
        if confirmation.is_nack() {
            return Err(PublishError::Retryable(
                "RabbitMQ refused the request (negative confirm)".into(),
            ));
        }
        // A mandatory message nobody could route is still confirmed (ack), with a return.
        if let Some(returned) = confirmation.take_message() {
            return Err(PublishError::Retryable(format!(
                "RabbitMQ could not route the request to a queue ({} {}): is {} bound to {} with {REQUEST_ROUTING_KEY}?",
                returned.reply_code, returned.reply_text, shared.names.queue, shared.names.exchange
            )));
        }
        Ok(Receipt::Confirmed)
    }

    fn state(&self) -> LinkState {
        *self.shared.state.borrow()
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Amqp
    }

    async fn close(&self) {
        self.shared.closed.send_replace(true);
        self.shared.set_channel(None);
    }
}

/// Keeps a confirm-mode channel available, forever, until the publisher is closed.
async fn supervise(config: AmqpConfig, shared: Arc<Shared>) {
    let mut closed = shared.closed.subscribe();
    let mut backoff = Backoff::reconnect();
    loop {
        let session = async {
            let (connection, channel) = open_channel(&config, &shared.names).await?;
            let mut events = connection.events_listener();
            let broken = Arc::new(Notify::new());
            shared.set_channel(Some(Session {
                channel,
                broken: broken.clone(),
            }));
            backoff.reset();
            tracing::info!(exchange = %shared.names.exchange, "connected to RabbitMQ for publishing");
            let reason = tokio::select! {
                reason = connection::wait_until_broken(&connection, &mut events) => reason,
                _ = broken.notified() => "a publish found the channel closed".to_string(),
            };
            shared.set_channel(None);
            // Best effort: the connection is usually dead already.
            let _ = connection.close(200, "reconnecting".into()).await;
            Err::<(), String>(reason)
        };
        let outcome = tokio::select! {
            outcome = session => outcome,
            _ = closed.wait_for(|c| *c) => break,
        };
        shared.set_channel(None);
        if let Err(reason) = outcome {
            tracing::warn!(error = %reason, "RabbitMQ publisher link down; reconnecting");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = closed.wait_for(|c| *c) => break,
        }
    }
    shared.set_channel(None);
}

async fn open_channel(
    config: &AmqpConfig,
    names: &TopologyNames,
) -> Result<(Connection, Channel), String> {
    let connection = connection::open(config, "publisher").await?;
    let setup = async {
        let channel = connection.create_channel().await?;
        declare_topology(&channel, names).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok::<_, lapin::Error>(channel)
    };
    match setup.await {
        Ok(channel) => Ok((connection, channel)),
        Err(e) => {
            let _ = connection.close(200, "setup failed".into()).await;
            Err(format!("could not set up the RabbitMQ channel: {e}"))
        }
    }
}

/// The message headers of a request: its trace context as `traceparent`, when it has one,
/// for consumers that read the header rather than the body.
fn trace_headers(traceparent: Option<&str>) -> FieldTable {
    let mut headers = FieldTable::default();
    if let Some(value) = traceparent {
        HeaderInjector(&mut headers).set(TRACEPARENT, value.to_string());
    }
    headers
}
