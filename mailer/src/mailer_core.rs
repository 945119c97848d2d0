//! The one core behind every door: `send-mail`, `POST /mails` and the AMQP consumer all
//! call [`MailerCore::accept_mail_request`]; `get-mail` and `GET /mails/{id}` both call
//! [`MailerCore::get_mail`].
//!
//! A request is answered `accepted` only once it is stored; a store failure is answered
//! `unavailable` so the sender tries again.

use crate::error::MailError;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::sending::Deliveries;
use crate::store::{DeliveryRecord, Inserted, Store};
use domain::{MailAnswer, MailRequest, MailRequestId, MailStatus};
use std::sync::Arc;
use transport::{MailHandler, Origin};

/// The mailer's core; cheap to clone.
#[derive(Clone)]
pub struct MailerCore {
    store: Store,
    deliveries: Deliveries,
    events: Events,
    metrics: Arc<Metrics>,
}

/// The `door` label of a request's origin.
fn door(origin: &Origin) -> &'static str {
    match origin {
        Origin::Socket(_) => "socketio",
        Origin::Amqp => "amqp",
        Origin::Http => "http",
    }
}

/// The `status` label of an answer.
pub fn answer_label(answer: &MailAnswer) -> &'static str {
    match answer.status {
        MailStatus::Accepted => "accepted",
        MailStatus::Duplicate => "duplicate",
        MailStatus::Rejected { .. } => "rejected",
        MailStatus::Unavailable { .. } => "unavailable",
    }
}

impl MailerCore {
    /// Puts the parts together.
    pub fn new(
        store: Store,
        deliveries: Deliveries,
        events: Events,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            deliveries,
            events,
            metrics,
        }
    }

    /// The counters, for the doors that reject before reaching the core.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The store, for lists and health checks.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores `request` and answers: `accepted` once stored, `duplicate` when the id was
    /// seen before (nothing new is sent), `unavailable` when the store did not answer. The
    /// stored record goes to the delivery loop as it is.
    #[tracing::instrument(name = "Accepting a mail request", skip_all, fields(mail_id = %request.id))]
    pub async fn accept_mail_request(&self, request: MailRequest, origin: Origin) -> MailAnswer {
        let id = request.id;
        let answer = match self.store.insert(request).await {
            Ok(Inserted::Stored(record)) => {
                if let Origin::Socket(sid) = &origin {
                    self.events.remember_sender(id, sid);
                }
                self.events.queued(id, record.template, &record.to).await;
                self.metrics.count_delivery("queued");
                self.deliveries.enqueue(record);
                MailAnswer::accepted(id)
            }
            Ok(Inserted::Duplicate) => MailAnswer::duplicate(id),
            Err(e) => e.to_answer(id),
        };
        self.metrics
            .count_request(door(&origin), answer_label(&answer));
        answer
    }

    /// The delivery record of `id`.
    pub async fn get_mail(&self, id: MailRequestId) -> Result<DeliveryRecord, MailError> {
        self.store.get(id).await?.ok_or(MailError::NotFound(id))
    }
}

#[async_trait::async_trait]
impl MailHandler for MailerCore {
    async fn handle(&self, request: MailRequest, origin: Origin) -> MailAnswer {
        self.accept_mail_request(request, origin).await
    }
}
