//! Recording delivery outcomes in batches, then announcing them.
//!
//! Workers hand each outcome to one task, which writes all the outcomes that arrived
//! together in one call to the store, then counts them and emits `mail-status` /
//! `mail-activity`. Until its outcome is written a record stays `sending`, so if the process
//! dies in between, the mail is sent again at the next start and counted as a possible resend.

use crate::events::{Change, Events};
use crate::metrics::Metrics;
use crate::retention::Retention;
use crate::store::{Cursors, Finished, LastMail, Store};
use domain::{Recipient, Template};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The end of one try, with what its announcement needs.
pub(super) struct Outcome {
    /// What the store records.
    pub(super) finished: Finished,
    /// For the events.
    pub(super) template: Template,
    /// For the events.
    pub(super) to: Recipient,
    /// The socket that sent the request, for its `mail-status`.
    pub(super) sender: Option<String>,
    /// The erasure of the recipient's records this delivery asks for once it has ended.
    pub(super) erase_recipient: Option<LastMail>,
}

enum Message {
    /// Boxed: an outcome is far larger than a flush, and the channel's slots are as large
    /// as its largest message.
    Record(Box<Outcome>),
    Flush(oneshot::Sender<()>),
}

/// The most outcomes written by one call.
const MAX_BATCH: usize = 256;

/// The handle workers use; cheap to clone.
#[derive(Clone)]
pub(super) struct OutcomeWriter {
    tx: mpsc::UnboundedSender<Message>,
}

impl OutcomeWriter {
    /// Starts the writer task.
    pub(super) fn start(
        store: Store,
        events: Events,
        metrics: Arc<Metrics>,
        retention: Retention,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, events, metrics, retention, rx));
        Self { tx }
    }

    /// Queues an outcome for writing.
    pub(super) fn record(&self, outcome: Outcome) {
        let _ = self.tx.send(Message::Record(Box::new(outcome)));
    }

    /// Waits until every outcome queued before this call is written and announced.
    pub(super) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(
    store: Store,
    events: Events,
    metrics: Arc<Metrics>,
    retention: Retention,
    mut rx: mpsc::UnboundedReceiver<Message>,
) {
    let gather = store.gathering().outcomes;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Under load, let a few more outcomes arrive, as long as the store prefers.
        if batch.len() > 1 && batch.len() < MAX_BATCH {
            if gather.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(gather).await;
            }
            while batch.len() < MAX_BATCH {
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
                Message::Record(o) => outcomes.push(*o),
                Message::Flush(done) => flushes.push(done),
            }
        }
        let written = write(&store, &outcomes).await;
        if written.is_ok() {
            erase_after(&retention, &outcomes);
        }
        match written {
            // With several mailers, announced together: each emit waits for Redis, and the
            // outcomes of one batch are of different mails, whose events need no order.
            Ok(cursors) if events.crosses_mailers() => {
                let announcements = outcomes
                    .into_iter()
                    .map(|o| announce(&events, &metrics, &cursors, o));
                futures_util::future::join_all(announcements).await;
            }
            // Alone, an emit does not wait: one after the other costs least.
            Ok(cursors) => {
                for o in outcomes {
                    announce(&events, &metrics, &cursors, o).await;
                }
            }
            // The records stay `sending`; the next start sends them again.
            Err(e) => {
                tracing::error!(error = %e, count = outcomes.len(), "could not record delivery outcomes")
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Starts the erasure of each recipient whose delivery in `outcomes` has ended and asked for
/// it (a deleted account's last mail). It runs beside the writer, which does not wait for
/// it; should the process stop first, the retention job erases it at the next start.
fn erase_after(retention: &Retention, outcomes: &[Outcome]) {
    for o in outcomes {
        if let Some(last) = &o.erase_recipient
            && o.finished.status.is_final()
        {
            let retention = retention.clone();
            let last = last.clone();
            tokio::spawn(async move { retention.erase_after_last_mail(&last).await });
        }
    }
}

/// Writes one batch, trying a few times: a lost "sent" would mean a resend at restart.
async fn write(store: &Store, outcomes: &[Outcome]) -> Result<Cursors, crate::error::MailError> {
    let mut tries = 0;
    loop {
        let finished: Vec<Finished> = outcomes.iter().map(|o| o.finished.clone()).collect();
        match store.finish(finished).await {
            Ok(cursors) => return Ok(cursors),
            Err(e) if tries >= 3 => return Err(e),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100 * tries)).await;
            }
        }
    }
}

async fn announce(events: &Events, metrics: &Metrics, cursors: &Cursors, o: Outcome) {
    let f = o.finished;
    metrics.count_delivery(f.status.as_public(), &o.template);
    if let Some(suppression) = &f.suppress {
        // Counted at each refusal, even of an address listed already (the write keeps the
        // first entry): each is one more bounce the list will spare from now on.
        metrics.count_suppression("smtp");
        tracing::warn!(mail_id = %f.id, reason = %suppression.reason, "the recipient was refused and is now suppressed");
    }
    // The outcome's own line was written by its try (`attempt::delivery_line`).
    events
        .status_changed(Change {
            id: f.id,
            template: o.template,
            to: &o.to,
            status: f.status,
            attempts: f.attempts,
            error: f.error,
            cursor: cursors.get(&f.id).copied().unwrap_or_default(),
            sender: o.sender.as_deref(),
        })
        .await;
}
