//! [`AmqpConsumer`]: the mailer's side of the AMQP transport.
//!
//! A supervisor task connects, declares the topology, sets the prefetch and consumes with
//! manual acks; each delivery is handled in its own task, and settled only after the
//! handler answered. When anything fails the supervisor rebuilds connection, channel and
//! consumer, forever, with backoff.

use super::connection;
use super::topology::{TopologyNames, declare_topology};
use crate::{LinkState, MailHandler, Origin};
use domain::config::AmqpConfig;
use domain::{MailAnswer, MailRequest, MailStatus};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use runtime::backoff::Backoff;
use runtime::telemetry::context::traceparent_of_amqp_headers;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Deliveries the broker hands over before the first is acked, which is also how many are
/// handled at once. Handler calls are database writes, so several must overlap to hide the
/// broker round trip; 64 allows that while bounding how many messages a crash leaves for
/// redelivery (and how many a slow store holds); `cargo bench -p transport --bench publish` runs at it.
pub const PREFETCH: u16 = 64;
/// The first wait before an `unavailable` request is handed to the store again; the wait
/// doubles up to [`UNAVAILABLE_RETRY_MAX`]. The delivery is retried in place, held unacked,
/// rather than requeued: a quorum queue counts every requeue against `x-delivery-limit`, so
/// requeueing through a store outage of a minute would dead-letter valid requests.
pub const UNAVAILABLE_RETRY_MIN: Duration = Duration::from_secs(1);
/// The longest wait between two tries of an `unavailable` request.
pub const UNAVAILABLE_RETRY_MAX: Duration = Duration::from_secs(30);

/// Consumes the request queue and hands each valid request to a [`MailHandler`].
pub struct AmqpConsumer {
    state: watch::Receiver<LinkState>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AmqpConsumer {
    /// Starts consuming in the background and returns at once (inside a Tokio runtime); the
    /// first connect is retried like any reconnect.
    pub fn start(config: &AmqpConfig, handler: Arc<dyn MailHandler>) -> AmqpConsumer {
        let (state_tx, state) = watch::channel(LinkState::Disconnected);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(config.clone(), handler, state_tx, stop_rx));
        AmqpConsumer { state, stop, task }
    }

    /// Whether the consumer is attached to the queue right now.
    pub fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    /// The consumer's state as it changes, readable after the consumer is stopped (it is
    /// then [`LinkState::Disconnected`]).
    pub fn watch_state(&self) -> watch::Receiver<LinkState> {
        self.state.clone()
    }

    /// Waits until the consumer is attached, at most `within`; true when it is.
    pub async fn wait_until_connected(&self, within: Duration) -> bool {
        let mut state = self.state.clone();
        tokio::time::timeout(within, state.wait_for(|s| *s == LinkState::Connected))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops consuming, lets the requests being handled finish and settle, then closes.
    /// Deliveries not yet handled go back to the queue when the channel closes.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the AMQP consumer task ended abnormally");
        }
    }
}

/// Why a consuming session ended.
enum SessionEnd {
    Stopped,
    Failed(String),
}

async fn supervise(
    config: AmqpConfig,
    handler: Arc<dyn MailHandler>,
    state: watch::Sender<LinkState>,
    mut stop: watch::Receiver<bool>,
) {
    let names = TopologyNames::of(&config);
    let mut backoff = Backoff::reconnect();
    loop {
        if *stop.borrow() {
            break;
        }
        let end = consume(&config, &names, &handler, &state, &mut stop, &mut backoff).await;
        state.send_replace(LinkState::Disconnected);
        match end {
            SessionEnd::Stopped => break,
            SessionEnd::Failed(reason) => {
                tracing::warn!(queue = %names.queue, error = %reason, "AMQP consumer down; reconnecting");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    state.send_replace(LinkState::Disconnected);
}

async fn consume(
    config: &AmqpConfig,
    names: &TopologyNames,
    handler: &Arc<dyn MailHandler>,
    state: &watch::Sender<LinkState>,
    stop: &mut watch::Receiver<bool>,
    backoff: &mut Backoff,
) -> SessionEnd {
    let connection = match connection::open(config, "consumer").await {
        Ok(connection) => connection,
        Err(reason) => return SessionEnd::Failed(reason),
    };
    let mut events = connection.events_listener();
    let setup = async {
        let channel = connection.create_channel().await?;
        declare_topology(&channel, names).await?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await?;
        // no_ack stays false: every delivery is settled by hand once the handler answered.
        let consumer = channel
            .basic_consume(
                names.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok::<_, lapin::Error>((channel, consumer))
    };
    let (channel, mut consumer) = match setup.await {
        Ok(parts) => parts,
        Err(e) => {
            let _ = connection.close(200, "setup failed".into()).await;
            return SessionEnd::Failed(format!("could not start consuming: {e}"));
        }
    };
    state.send_replace(LinkState::Connected);
    backoff.reset();
    tracing::info!(queue = %names.queue, prefetch = PREFETCH, "consuming mail requests from RabbitMQ");

    let mut handling = JoinSet::new();
    // Set when this session ends, for whatever reason: handlers waiting to retry an
    // `unavailable` request give the delivery back instead of waiting on.
    let (session_over, session_watch) = watch::channel(false);
    // Built once, not per delivery, so its status poll keeps its own pace.
    let broken = connection::wait_until_broken(&connection, &mut events);
    tokio::pin!(broken);
    let end = loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break SessionEnd::Stopped,
            reason = &mut broken => break SessionEnd::Failed(reason),
            delivery = consumer.next() => match delivery {
                Some(Ok(delivery)) => {
                    handling.spawn(settle(delivery, handler.clone(), session_watch.clone()));
                }
                Some(Err(e)) => break SessionEnd::Failed(format!("the consumer failed: {e}")),
                None => break SessionEnd::Failed("the broker cancelled the consumer".into()),
            },
            Some(_) = handling.join_next() => {}
        }
    };
    session_over.send_replace(true);
    match end {
        SessionEnd::Stopped => {
            let _ = channel
                .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                .await;
            while handling.join_next().await.is_some() {}
            let _ = channel.close(200, "stopping".into()).await;
            let _ = connection.close(200, "stopping".into()).await;
        }
        SessionEnd::Failed(_) => {
            // Their acks will fail on the dead channel and the broker redelivers those
            // messages; letting the handlers finish keeps a half-done store from being cut.
            handling.detach_all();
            let _ = connection.close(200, "reconnecting".into()).await;
        }
    }
    end
}

/// Handles one delivery and settles it according to the answer. An `unavailable` answer is
/// retried with backoff while the session lives; when it ends, the delivery is requeued.
async fn settle(
    delivery: Delivery,
    handler: Arc<dyn MailHandler>,
    mut session_over: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(UNAVAILABLE_RETRY_MIN, UNAVAILABLE_RETRY_MAX);
    let answer = loop {
        let answer = match MailRequest::from_json(&delivery.data) {
            // The body's trace context comes first; the message header stands in for a
            // publisher that sets only the header.
            Ok(request) if request.traceparent.is_none() => {
                let traceparent = delivery
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(traceparent_of_amqp_headers)
                    .filter(|tp| domain::mail::is_traceparent(tp));
                let request = MailRequest {
                    traceparent,
                    ..request
                };
                handler.handle(request, Origin::Amqp).await
            }
            Ok(request) => handler.handle(request, Origin::Amqp).await,
            Err(invalid) => {
                let id = delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .and_then(|id| id.as_str().parse().ok());
                MailAnswer::rejected(id, invalid.to_string())
            }
        };
        if !matches!(answer.status, MailStatus::Unavailable { .. }) || *session_over.borrow() {
            break answer;
        }
        let delay = backoff.next_delay();
        tracing::warn!(
            mail_id = ?answer.id.map(|id| id.to_string()),
            retry_in_ms = delay.as_millis() as u64,
            "could not store an AMQP mail request; trying again"
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = session_over.wait_for(|over| *over) => {}
        }
    };
    let answer_json = serde_json::to_string(&answer).unwrap_or_default();
    let result = match &answer.status {
        MailStatus::Accepted | MailStatus::Duplicate => {
            tracing::debug!(answer = %answer_json, "answered an AMQP mail request");
            delivery.ack(BasicAckOptions::default()).await
        }
        MailStatus::Rejected { .. } => {
            tracing::warn!(answer = %answer_json, "rejected an AMQP message; it goes to the dead queue");
            // requeue: false dead-letters it through x-dead-letter-exchange.
            delivery.reject(BasicRejectOptions { requeue: false }).await
        }
        MailStatus::Unavailable { .. } => {
            // Only when the session ends with the store still down: hand it back.
            tracing::warn!(answer = %answer_json, "could not store an AMQP mail request; requeueing it");
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    multiple: false,
                })
                .await
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not settle an AMQP delivery; the broker will redeliver it");
    }
}
