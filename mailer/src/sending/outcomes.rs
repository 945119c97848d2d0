//! Recording delivery outcomes in batches, then announcing them.
//!
//! Senders hand each outcome to one task, which writes all the outcomes that arrived
//! together with one `UPDATE … WHERE id IN (…)` per group of equal outcomes (most are "sent
//! after 1 attempt"), then counts them and emits `mail-status` / `mail-activity`. Until its
//! outcome is written a record stays `sending`, so if the process dies in between, the mail
//! is sent again at the next start and counted as a possible resend.

use crate::events::Events;
use crate::metrics::Metrics;
use crate::store::{DeliveryStatus, Store};
use chrono::{DateTime, Utc};
use domain::{MailRequestId, Recipient, Template};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The end of one try.
pub struct Outcome {
    /// The request id.
    pub id: MailRequestId,
    /// For the events.
    pub template: Template,
    /// For the events.
    pub to: Recipient,
    /// `sent`, `retrying` or `failed`.
    pub status: DeliveryStatus,
    /// Tries so far, this one included.
    pub attempts: u32,
    /// The error of this try.
    pub error: Option<String>,
    /// When the next try is due (`retrying` only).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

enum Message {
    Record(Outcome),
    Flush(oneshot::Sender<()>),
}

/// The handle senders use; cheap to clone.
#[derive(Clone)]
pub struct OutcomeWriter {
    tx: mpsc::UnboundedSender<Message>,
}

impl OutcomeWriter {
    /// Starts the writer task.
    pub fn start(store: Store, events: Events, metrics: Arc<Metrics>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, events, metrics, rx));
        Self { tx }
    }

    /// Queues an outcome for writing.
    pub fn record(&self, outcome: Outcome) {
        let _ = self.tx.send(Message::Record(outcome));
    }

    /// Waits until every outcome queued before this call is written and announced.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// Without the SQLite writer (PostgreSQL, in-memory SQLite), how long a batch of several
/// outcomes waits for more before it is written: one `UPDATE … WHERE id IN (…)` for many
/// outcomes costs about what one for a single outcome does. The SQLite writer gathers writes
/// itself, and there this wait measured no cheaper, with more context switches
/// (docs/benchmarks/mailer.md): one turn of the runtime lets the sends that finished
/// meanwhile add their outcomes.
const OUTCOME_GATHER: Duration = Duration::from_millis(2);

type GroupKey = (&'static str, u32, Option<String>, Option<i64>);

async fn run(
    store: Store,
    events: Events,
    metrics: Arc<Metrics>,
    mut rx: mpsc::UnboundedReceiver<Message>,
) {
    let gather = store.writer().is_none().then_some(OUTCOME_GATHER);
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        // Under load, let a few more outcomes arrive (see `OUTCOME_GATHER`).
        if batch.len() > 1 && batch.len() < 256 {
            match gather {
                Some(wait) => tokio::time::sleep(wait).await,
                None => tokio::task::yield_now().await,
            }
            while batch.len() < 256 {
                match rx.try_recv() {
                    Ok(message) => batch.push(message),
                    Err(_) => break,
                }
            }
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for message in batch.drain(..) {
            match message {
                Message::Record(o) => outcomes.push(o),
                Message::Flush(done) => flushes.push(done),
            }
        }
        let mut groups: HashMap<GroupKey, Vec<MailRequestId>> = HashMap::new();
        for o in &outcomes {
            let key = (
                o.status.as_db(),
                o.attempts,
                o.error.clone(),
                o.next_attempt_at.map(|t| t.timestamp_millis()),
            );
            groups.entry(key).or_default().push(o.id);
        }
        let now = Utc::now();
        let mut failed_groups = Vec::new();
        for ((status, attempts, error, next), ids) in &groups {
            let next = next
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .unwrap_or(now);
            if let Err(e) =
                write_group(&store, ids, status, *attempts, error.as_deref(), now, next).await
            {
                // The records stay `sending`; the next start sends them again.
                tracing::error!(error = %e, count = ids.len(), "could not record delivery outcomes");
                failed_groups.extend(ids.iter().copied());
            }
        }
        for o in outcomes {
            if failed_groups.contains(&o.id) {
                continue;
            }
            announce(&events, &metrics, o).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Writes one group, trying a few times: a lost "sent" would mean a resend at restart.
async fn write_group(
    store: &Store,
    ids: &[MailRequestId],
    status: &str,
    attempts: u32,
    error: Option<&str>,
    at: DateTime<Utc>,
    next: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    let status = DeliveryStatus::from_db(status)?;
    let mut tries = 0;
    loop {
        match store
            .finish_many(ids, status, attempts, error, at, next)
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) if tries >= 3 => return Err(e),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100 * tries)).await;
            }
        }
    }
}

async fn announce(events: &Events, metrics: &Metrics, o: Outcome) {
    metrics.count_delivery(o.status.as_public());
    let error = o.error.as_deref().unwrap_or("");
    match o.status {
        DeliveryStatus::Failed => {
            tracing::warn!(mail_id = %o.id, attempts = o.attempts, error, "mail delivery failed")
        }
        DeliveryStatus::Retrying => {
            tracing::info!(mail_id = %o.id, attempts = o.attempts, error, "mail delivery will be retried")
        }
        _ => tracing::debug!(mail_id = %o.id, attempts = o.attempts, "mail sent"),
    }
    events
        .status_changed(o.id, o.template, &o.to, o.status, o.attempts, o.error)
        .await;
}
