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

pub use live::{
    Listeners, LiveFeed, LiveRecipients, MaskedRecipient, live_node_room, live_shard_room,
    shown_on_live,
};

use crate::cluster::Io;
use crate::store::{Cursor, DeliveryRecord, DeliveryStatus};
use chrono::{DateTime, SecondsFormat, Utc};
use domain::{MailRequestId, Recipient, Template};
use serde::Serialize;
use transport::amqp::AmqpEvents;
use utoipa::ToSchema;
use utoipa::openapi::schema::{OneOfBuilder, Ref, Schema};

/// The `mail-status` event (socket.io `/`), and the body of each `mail.<status>` message on
/// the AMQP events exchange.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MailStatusEvent {
    /// The request id.
    pub id: MailRequestId,
    /// `queued` (after a retry), `sent`, `retrying`, `failed`, `cancelled`, `suppressed`, `bounced` or
    /// `complained`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// SMTP tries so far.
    pub attempts: u32,
    /// The last error, for `retrying` and `failed`, or why the mail is not sent; absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

/// The `mail-activity` socket.io event, broadcast to `/` and `/live`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MailActivityEvent {
    /// The request id.
    pub id: MailRequestId,
    /// Which mail.
    pub template: Template,
    /// The recipient: whole on `/`; on `/live` see [`LiveRecipients`].
    #[schema(schema_with = activity_recipient)]
    pub to: Recipient,
    /// `queued`, `sent`, `retrying`, `failed`, `cancelled`, `suppressed`, `bounced` or
    /// `complained`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// When the status changed (RFC 3339).
    pub at: String,
    /// SMTP tries so far.
    pub attempts: u32,
    /// The last try's error, or why it was not sent (on `/live` with masked recipients,
    /// the address masked in it too).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
    /// This change's place in the store-wide order: 16 decimal digits, later changes
    /// larger. `/live`'s `catch-up` `{after: cursor}` answers the changes after it.
    #[schema(value_type = String)]
    pub cursor: Cursor,
}

/// `mail-activity.to`: `/live` shows the same event with a [`MaskedRecipient`] unless the
/// mailer has a live token.
fn activity_recipient() -> Schema {
    OneOfBuilder::new()
        .item(Ref::from_schema_name("Recipient"))
        .item(Ref::from_schema_name("MaskedRecipient"))
        .description(Some(
            "On `/` the whole recipient; on `/live` the masked one, or the whole recipient \
             when `mailer.live_token` is set.",
        ))
        .build()
        .into()
}

impl MailActivityEvent {
    /// The change `record` last went through, as `catch-up` answers it.
    pub fn of_record(record: &DeliveryRecord, at: DateTime<Utc>) -> Self {
        Self {
            id: record.id,
            template: record.template.clone(),
            to: record.to.clone(),
            status: record.status.as_public(),
            at: rfc3339(at),
            attempts: record.attempts,
            error: record.last_error.clone(),
            cursor: record.cursor,
        }
    }
}

/// What changed in one delivery, for [`Events::status_changed`].
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The request id.
    pub id: MailRequestId,
    /// Which mail.
    pub template: Template,
    /// The recipient.
    pub to: &'a Recipient,
    /// The new status.
    pub status: DeliveryStatus,
    /// SMTP tries so far.
    pub attempts: u32,
    /// The last try's error, or why it was not sent.
    pub error: Option<String>,
    /// The change's cursor, as the store wrote it.
    pub cursor: Cursor,
    /// The socket id of the service client that sent the request, on whichever mailer.
    pub sender: Option<&'a str>,
}

/// Emits status changes; cheap to clone.
#[derive(Clone)]
pub struct Events {
    io: Io,
    /// With AMQP, the events exchange, which also receives every `mail-status`.
    publisher: Option<AmqpEvents>,
    live: LiveFeed,
    /// The service sockets connected to `/` here.
    services: Listeners,
    /// With `mailer.cluster`, emits reach every mailer's clients; without, they are local,
    /// which spares the adapter's encoding of each packet for other servers.
    cluster: bool,
}

/// The room of one request.
pub fn mail_room(id: MailRequestId) -> String {
    format!("mail:{id}")
}

/// The room of one template.
pub fn template_room(template: &Template) -> String {
    format!("template:{}", template.as_str())
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Events {
    /// Emits through `io` (`/live` through `live`), and through `publisher` when given; to
    /// every mailer's clients when `cluster` is true.
    pub fn new(io: Io, publisher: Option<AmqpEvents>, live: LiveFeed, cluster: bool) -> Self {
        Self {
            io,
            publisher,
            live,
            services: Listeners::default(),
            cluster,
        }
    }

    /// The count of service sockets on `/` that `/`'s connect and disconnect handlers keep.
    pub fn services(&self) -> Listeners {
        self.services.clone()
    }

    /// True when an emit to `/` may reach a socket: one is connected here, or, in a cluster,
    /// to another mailer. Without one, nothing is built: a mailer fed over AMQP or REST
    /// alone would otherwise encode every event for nobody.
    fn services_heard(&self) -> bool {
        self.cluster || self.services.any()
    }

    /// True when emits cross mailers (and each waits for Redis).
    pub fn crosses_mailers(&self) -> bool {
        self.cluster
    }

    /// Announces that `record` was stored (`mail-activity` with `queued`).
    pub async fn queued(&self, record: &DeliveryRecord) {
        if !self.services_heard() && !self.live.heard() {
            return;
        }
        self.activity(MailActivityEvent {
            id: record.id,
            template: record.template.clone(),
            to: record.to.clone(),
            status: "queued",
            at: rfc3339(Utc::now()),
            attempts: 0,
            error: None,
            cursor: record.cursor,
        })
        .await;
    }

    /// Announces a status change: after a try, or an operator's retry or cancel, or a
    /// request stored `suppressed`.
    pub async fn status_changed(&self, change: Change<'_>) {
        let status_name = change.status.as_public();
        let services_heard = self.services_heard();
        if !services_heard && !self.live.heard() && self.publisher.is_none() {
            return;
        }
        let event = MailStatusEvent {
            id: change.id,
            status: status_name,
            attempts: change.attempts,
            error: change.error,
        };
        // One emit to the union of the rooms, so a socket that is both the sender and in
        // `mail:<id>` gets the event once. Each service socket joins a room named by its
        // id, which, through the cluster's adapter, reaches it on whichever mailer it is.
        if services_heard && let Some(ns) = self.io.of("/") {
            let mut rooms = vec![mail_room(change.id), template_room(&change.template)];
            if let Some(sid) = change.sender {
                rooms.push(sid.to_string());
            }
            let ns = if self.cluster { ns } else { ns.local() };
            if let Err(e) = ns.to(rooms).emit("mail-status", &event).await {
                tracing::debug!(error = %e, "could not emit mail-status");
            }
        }
        if services_heard || self.live.heard() {
            self.activity(MailActivityEvent {
                id: change.id,
                template: change.template,
                to: change.to.clone(),
                status: status_name,
                at: rfc3339(Utc::now()),
                attempts: event.attempts,
                error: event.error.clone(),
                cursor: change.cursor,
            })
            .await;
        }
        if let Some(publisher) = &self.publisher
            && let Ok(payload) = serde_json::to_value(&event)
        {
            publisher.publish(status_name, &payload).await;
        }
    }

    /// `mail-activity` to `/` now, and to `/live` through its queue.
    async fn activity(&self, event: MailActivityEvent) {
        if self.services_heard()
            && let Some(ops) = self.io.of("/")
        {
            let ops = if self.cluster { ops } else { ops.local() };
            if let Err(e) = ops.emit("mail-activity", &event).await {
                tracing::debug!(error = %e, "could not emit mail-activity");
            }
        }
        self.live.push(event);
    }
}
