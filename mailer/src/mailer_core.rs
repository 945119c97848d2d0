//! The one core behind every door: `send-mail`, `POST /mails` and the AMQP consumer all
//! call [`MailerCore::accept_mail_request`]; `get-mail` and `GET /mails/{id}` both call
//! [`MailerCore::get_mail`]; `retry-mail` and `POST /mails/{id}/retry` call
//! [`MailerCore::retry_mail`], `cancel-mail` and `POST /mails/{id}/cancel`
//! [`MailerCore::cancel_mail`].
//!
//! A request is answered `accepted` only once it is stored; a store failure is answered
//! `unavailable` so the sender tries again.

use crate::error::MailError;
use crate::events::{Change, Events, MailActivityEvent};
use crate::metrics::Metrics;
use crate::retention::Retention;
use crate::sending::{Deliveries, DeliveryLine, delivery_line};
use crate::store::{
    Cursor, DeliveryRecord, DeliveryStatus, Inserted, LastMail, RetryFilter, Store, Suppression,
};
use crate::templates::live::LiveTemplates;
use chrono::Utc;
use domain::{Email, MailAnswer, MailRequest, MailRequestId, MailStatus};
use runtime::telemetry::context::{continue_trace, traceparent};
use std::sync::Arc;
use transport::{MailHandler, Origin};

/// The mailer's core. Cloned for every request (each socket.io event and route takes its
/// own): one counted reference, where the parts would take one each.
#[derive(Clone)]
pub struct MailerCore(Arc<Parts>);

/// What the core is made of.
pub struct Parts {
    store: Store,
    deliveries: Deliveries,
    events: Events,
    metrics: Arc<Metrics>,
    retention: Retention,
    templates: Arc<LiveTemplates>,
}

impl std::ops::Deref for MailerCore {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
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
        retention: Retention,
        templates: Arc<LiveTemplates>,
    ) -> Self {
        Self(Arc::new(Parts {
            store,
            deliveries,
            events,
            metrics,
            retention,
            templates,
        }))
    }

    /// Erases every delivery record and `.eml` file addressed to `email`, spelt any way
    /// (`DELETE /recipients/{email}`); how many records went. Its suppression entry stays,
    /// as the keyed hash of the address alone: it is what keeps the address from being
    /// mailed again.
    #[tracing::instrument(name = "Erasing a recipient", skip_all)]
    pub async fn erase_recipient(&self, email: &Email) -> Result<u64, MailError> {
        let erased = self.retention.erase(email).await?;
        tracing::info!(count = erased, "recipient erased");
        Ok(erased)
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
    /// Every door comes here, so this is where the mailer's part of a request's trace begins:
    /// the span continues the request's `traceparent`, and the record keeps the span's own,
    /// for the delivery attempts to continue.
    pub async fn accept_mail_request(
        &self,
        mut request: MailRequest,
        origin: Origin,
    ) -> MailAnswer {
        let span = tracing::info_span!(
            "Accepting a mail request",
            mail_id = %request.id,
            template = request.template.as_str(),
        );
        continue_trace(&span, request.traceparent.as_deref());
        // The catalog in force decides which templates exist and which locale the mail is
        // written in; the record keeps that locale.
        match self
            .templates
            .current()
            .admit(&request.template, &request.locale, &request.vars)
        {
            Ok(locale) => request.locale = locale,
            Err(invalid) => {
                let answer = MailAnswer::rejected(Some(request.id), invalid.to_string());
                self.metrics
                    .count_request(door(&origin), answer_label(&answer));
                return answer;
            }
        }
        if let Some(own) = traceparent(&span) {
            request.traceparent = Some(own);
        }
        // Not entered, like a delivery attempt's span (`sending::attempt`): nothing inside
        // logs, and entering it at every poll of the store's write would cost more than the
        // span itself. It ends once the answer is known.
        let answer = self.store_and_answer(request, origin, &span).await;
        drop(span);
        answer
    }

    async fn store_and_answer(
        &self,
        request: MailRequest,
        origin: Origin,
        span: &tracing::Span,
    ) -> MailAnswer {
        let id = request.id;
        let sender = match &origin {
            Origin::Socket(sid) => Some(sid.clone()),
            _ => None,
        };
        let answer = match self.store.insert(request, sender).await {
            Ok(Inserted::Stored(record)) => {
                if record.status == DeliveryStatus::Suppressed {
                    // Stored and answered like any other, never handed to the dispatcher.
                    // Boxed: the erasure's future is large, and inline it would make every
                    // request's future as large, copied at each move.
                    outcome_line(span, &record);
                    Box::pin(self.suppressed_stored(&record)).await;
                } else {
                    self.events.queued(&record).await;
                    self.metrics.count_delivery("queued", &record.template);
                    self.deliveries.enqueue(record);
                }
                MailAnswer::accepted(id)
            }
            Ok(Inserted::Duplicate) => MailAnswer::duplicate(id),
            Err(e) => e.to_answer(id),
        };
        self.metrics
            .count_request(door(&origin), answer_label(&answer));
        answer
    }

    /// Announces a request stored `suppressed`, and erases its recipient's records when it
    /// was their last mail.
    async fn suppressed_stored(&self, record: &DeliveryRecord) {
        self.announce(record).await;
        if let Some(last) = LastMail::of(record) {
            self.retention.erase_after_last_mail(&last).await;
        }
    }

    /// The delivery record of `id`.
    pub async fn get_mail(&self, id: MailRequestId) -> Result<DeliveryRecord, MailError> {
        self.store.get(id).await?.ok_or(MailError::NotFound(id))
    }

    /// Puts the `failed` delivery `id` back to `queued` and hands it to the dispatcher; the
    /// socket that asked, if one did, hears its next statuses as its sender would.
    #[tracing::instrument(name = "Retrying a mail", skip_all, fields(mail_id = %id))]
    pub async fn retry_mail(
        &self,
        id: MailRequestId,
        origin: &Origin,
    ) -> Result<DeliveryRecord, MailError> {
        let sender = match origin {
            Origin::Socket(sid) => Some(sid.clone()),
            _ => None,
        };
        let mut record = self.store.retry(id, Utc::now(), sender).await?;
        // Read back after the write: the dispatcher may have claimed it in between, which
        // the outside world sees as `queued` too.
        record.status = DeliveryStatus::Queued;
        self.requeued(record.clone()).await;
        self.metrics.count_operation("retry", 1);
        Ok(record)
    }

    /// Retries every `failed` delivery `filter` matches, a page per store transaction, and
    /// returns how many went back to `queued`. The work runs as a task of its own: a client
    /// that goes away does not stop it halfway between a page's commit and its hand-off to
    /// the dispatcher.
    pub async fn retry_mails(&self, filter: RetryFilter) -> Result<u64, MailError> {
        let core = self.clone();
        tokio::spawn(async move { core.retry_pages(&filter).await })
            .await
            .map_err(|_| MailError::ShuttingDown)?
    }

    #[tracing::instrument(name = "Retrying failed mails", skip_all)]
    async fn retry_pages(&self, filter: &RetryFilter) -> Result<u64, MailError> {
        const PAGE: u64 = 500;
        let mut retried = 0;
        let mut after = None;
        loop {
            let page = self
                .store
                .retry_page(filter, after.as_ref(), PAGE, Utc::now())
                .await?;
            retried += page.retried.len() as u64;
            self.metrics
                .count_operation("retry", page.retried.len() as u64);
            for mut record in page.retried {
                record.status = DeliveryStatus::Queued;
                self.requeued(record).await;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        tracing::info!(count = retried, "failed mails put back to queued");
        Ok(retried)
    }

    /// Cancels the `queued` or `retrying` delivery `id`: it is never sent.
    #[tracing::instrument(name = "Cancelling a mail", skip_all, fields(mail_id = %id))]
    pub async fn cancel_mail(&self, id: MailRequestId) -> Result<DeliveryRecord, MailError> {
        let record = self.store.cancel(id, Utc::now()).await?;
        outcome_line(&tracing::Span::current(), &record);
        self.announce(&record).await;
        if let Some(last) = LastMail::of(&record) {
            self.retention.erase_after_last_mail(&last).await;
        }
        self.metrics.count_operation("cancel", 1);
        Ok(record)
    }

    /// Puts `email` on the suppression list (`POST /suppressions`); true when it is new.
    pub async fn suppress(
        &self,
        email: &Email,
        reason: Option<String>,
    ) -> Result<(Suppression, bool), MailError> {
        let reason = reason.unwrap_or_else(|| "added through POST /suppressions".into());
        let (entry, added) = self.store.suppress(email, reason, Utc::now()).await?;
        if added {
            self.metrics.count_suppression("api");
        }
        Ok((entry, added))
    }

    /// A retried delivery: announced `queued` and handed to the dispatcher.
    async fn requeued(&self, record: DeliveryRecord) {
        self.announce(&record).await;
        self.deliveries.enqueue(record);
    }

    /// Counts and announces the status `record` now has.
    async fn announce(&self, record: &DeliveryRecord) {
        self.metrics
            .count_delivery(record.status.as_public(), &record.template);
        self.events
            .status_changed(Change {
                id: record.id,
                template: record.template.clone(),
                to: &record.to,
                status: record.status,
                attempts: record.attempts,
                error: record.last_error.clone(),
                cursor: record.cursor,
                sender: record.sender.as_deref(),
            })
            .await;
    }

    /// `/live`'s `catch-up`: the deliveries changed after `after` (each once, as it is
    /// now), oldest change first, at most `limit`; without `after`, the latest `limit`.
    pub async fn catch_up(
        &self,
        after: Option<Cursor>,
        limit: u64,
    ) -> Result<Vec<MailActivityEvent>, MailError> {
        let records = self.store.changes(after, limit).await?;
        Ok(records
            .iter()
            .map(|r| {
                // The store keeps when most changes happened: a sent mail's `sent_at`, and,
                // for the others, the time they became due again (their change's time),
                // except a retrying mail, due later, shown at the time of this answer.
                let at = match r.status {
                    DeliveryStatus::Sent => r.sent_at.unwrap_or(r.next_attempt_at),
                    DeliveryStatus::Retrying => Utc::now(),
                    _ => r.next_attempt_at,
                };
                MailActivityEvent::of_record(r, at)
            })
            .collect())
    }
}

/// The delivery line of an outcome decided without a try (suppressed at acceptance,
/// cancelled by an operator): no SMTP reply, and it took no time to send.
fn outcome_line(span: &tracing::Span, record: &DeliveryRecord) {
    delivery_line(
        span,
        &DeliveryLine {
            id: record.id,
            template: record.template.as_str(),
            to: record.to.email.canonical(),
            status: record.status.as_public(),
            attempt: record.attempts,
            smtp_code: None,
            smtp_reply: record.last_error.as_deref().unwrap_or(""),
            duration: std::time::Duration::ZERO,
        },
    );
}

#[async_trait::async_trait]
impl MailHandler for MailerCore {
    async fn handle(&self, request: MailRequest, origin: Origin) -> MailAnswer {
        self.accept_mail_request(request, origin).await
    }
}
