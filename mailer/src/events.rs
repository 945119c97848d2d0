//! Telling the world that a delivery moved: `mail-status` to the sending socket and to the
//! rooms `mail:<id>` and `template:<name>`, `mail-activity` broadcast to `/` and `/live`,
//! and, with AMQP, a message on the events exchange.
//!
//! Events are best effort: a client that is gone, or a broker that is down, never holds up
//! or fails a delivery. The store is the source of truth (`get-mail`, `GET /mails/{id}`).
//!
//! `/live` is fed through a queue ([`LiveFeed`]) rather than emitted inline: it may hold
//! thousands of browsers, and broadcasting to them on the request path would delay the
//! sender's answer.

mod live;

pub use live::{LiveFeed, LiveRecipients, LiveViewers, live_shard_room};

use crate::store::DeliveryStatus;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::{MailRequestId, Recipient, Template};
use serde::Serialize;
use socketioxide::SocketIo;
use socketioxide::socket::Sid;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The `mail-status` payload.
#[derive(Debug, Clone, Serialize)]
pub struct MailStatusEvent {
    /// The request id.
    pub id: MailRequestId,
    /// `queued` (a retry), `sent`, `retrying`, `failed`, `cancelled` or `suppressed`.
    pub status: &'static str,
    /// SMTP tries so far.
    pub attempts: u32,
    /// The last error, for `retrying` and `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `mail-activity` payload.
#[derive(Debug, Clone, Serialize)]
pub struct MailActivityEvent {
    /// The request id.
    pub id: MailRequestId,
    /// Which mail.
    pub template: Template,
    /// The recipient (whole on `/`; on `/live` see [`LiveRecipients`]).
    pub to: Recipient,
    /// `queued`, `sent`, `retrying`, `failed`, `cancelled` or `suppressed`.
    pub status: &'static str,
    /// When the status changed (RFC 3339).
    pub at: String,
    /// SMTP tries so far.
    pub attempts: u32,
    /// The last try's error, or why it was not sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Somewhere else to publish status changes (the AMQP events exchange).
#[async_trait::async_trait]
pub trait StatusPublisher: Send + Sync {
    /// Publishes `payload` for `status` (routing key `mail.<status>`).
    async fn publish_status(&self, status: &'static str, payload: &serde_json::Value);
}

/// Emits status changes; cheap to clone.
#[derive(Clone)]
pub struct Events {
    io: SocketIo,
    /// Which socket sent which request, so `mail-status` reaches it. This is a
    /// `std::sync::Mutex`: it is held for a map operation only, never across an await.
    senders: Arc<Mutex<HashMap<MailRequestId, Sid>>>,
    /// With AMQP, the events exchange, which also receives every `mail-status`.
    publisher: Option<Arc<dyn StatusPublisher>>,
    live: LiveFeed,
}

/// The room of one request.
pub fn mail_room(id: MailRequestId) -> String {
    format!("mail:{id}")
}

/// The room of one template.
pub fn template_room(template: Template) -> String {
    format!("template:{}", template.as_str())
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Events {
    /// Emits through `io` (`/live` through `live`), and through `publisher` when given.
    pub fn new(io: SocketIo, publisher: Option<Arc<dyn StatusPublisher>>, live: LiveFeed) -> Self {
        Self {
            io,
            senders: Arc::new(Mutex::new(HashMap::new())),
            publisher,
            live,
        }
    }

    /// Remembers that socket `sid` sent request `id`.
    pub fn remember_sender(&self, id: MailRequestId, sid: &str) {
        if let Ok(sid) = sid.parse::<Sid>()
            && let Ok(mut map) = self.senders.lock()
        {
            map.insert(id, sid);
        }
    }

    /// Announces that request `id` was stored (`mail-activity` with `queued`).
    pub async fn queued(&self, id: MailRequestId, template: Template, to: &Recipient) {
        self.activity(MailActivityEvent {
            id,
            template,
            to: to.clone(),
            status: "queued",
            at: rfc3339(Utc::now()),
            attempts: 0,
            error: None,
        })
        .await;
    }

    /// Announces a status change: after a try, or an operator's retry or cancel, or a
    /// request stored `suppressed`.
    pub async fn status_changed(
        &self,
        id: MailRequestId,
        template: Template,
        to: &Recipient,
        status: DeliveryStatus,
        attempts: u32,
        error: Option<String>,
    ) {
        let status_name = status.as_public();
        let event = MailStatusEvent {
            id,
            status: status_name,
            attempts,
            error,
        };
        let sender = self.senders.lock().ok().and_then(|mut map| {
            if status.is_final() {
                map.remove(&id)
            } else {
                map.get(&id).copied()
            }
        });
        // One emit to the union of the rooms, so a socket that is both the sender and in
        // `mail:<id>` gets the event once. Each service socket joins a room named by its id.
        let mut rooms = vec![mail_room(id), template_room(template)];
        if let Some(sid) = sender {
            rooms.push(sid.to_string());
        }
        if let Some(ns) = self.io.of("/")
            && let Err(e) = ns.to(rooms).emit("mail-status", &event).await
        {
            tracing::debug!(error = %e, "could not emit mail-status");
        }
        self.activity(MailActivityEvent {
            id,
            template,
            to: to.clone(),
            status: status_name,
            at: rfc3339(Utc::now()),
            attempts: event.attempts,
            error: event.error.clone(),
        })
        .await;
        if let Some(publisher) = &self.publisher
            && let Ok(payload) = serde_json::to_value(&event)
        {
            publisher.publish_status(status_name, &payload).await;
        }
    }

    /// `mail-activity` to `/` now, and to `/live` through its queue.
    async fn activity(&self, event: MailActivityEvent) {
        if let Some(ops) = self.io.of("/")
            && let Err(e) = ops.emit("mail-activity", &event).await
        {
            tracing::debug!(error = %e, "could not emit mail-activity");
        }
        self.live.push(event);
    }
}
