//! The delivery loop: claim stored requests, try each once on a pool of workers, record the
//! outcome, and leave retries in the store until their time.
//!
//! A dispatcher task takes due records (freshly accepted ones from a bounded channel, the
//! rest by paging through the store), claims as many as there are free workers in one
//! statement, and runs each try ([`super::attempt`]) on a pool of at most `workers`
//! concurrent sends sharing the pooled SMTP connections. Outcomes are written in batches
//! ([`super::outcomes`]). The store is the source of truth: at start, every record still
//! `queued`, `retrying` or `sending` is picked up again, which is how work survives a restart.

use super::MailSender;
use super::attempt::{Attempts, DeliveryOptions};
use super::outcomes::{Outcome, OutcomeWriter};
use crate::error::MailError;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::retention::Retention;
use crate::store::{DeliveryRecord, LastMail, Store};
use crate::templates::live::LiveTemplates;
use chrono::Utc;
use domain::MailRequestId;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// In-memory jobs waiting for a worker. Beyond this, new work stays in the store only and
/// the dispatcher pages through it when the queue runs dry, so memory stays flat under a
/// backlog of any size.
const QUEUE_CAPACITY: usize = 4096;
/// Records fetched from the store at a time when paging through a backlog.
const PAGE: u64 = 512;
/// Claims at most this many records per statement.
const CLAIM_BATCH: usize = 64;

struct Inner {
    store: Store,
    attempts: Attempts,
    jobs: mpsc::Sender<DeliveryRecord>,
    /// Set when work exists in the store that is not in the queue (the queue was full, or a
    /// retry is waiting for its time); the dispatcher then reads the store.
    backlog: AtomicBool,
    workers: Arc<Semaphore>,
    stopping: watch::Sender<bool>,
    outcomes: OutcomeWriter,
}

/// The handle to the delivery loop; cheap to clone.
#[derive(Clone)]
pub struct Deliveries {
    inner: Arc<Inner>,
}

/// What [`Deliveries::start`] needs.
pub struct DeliveryContext {
    /// The set of templates in force; each mail is rendered with the set in force when it is
    /// sent.
    pub templates: Arc<LiveTemplates>,
    /// The delivery store.
    pub store: Store,
    /// Where mails go.
    pub sender: MailSender,
    /// Status announcements.
    pub events: Events,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The sender, the Message-ID domain and the DKIM key.
    pub letterhead: super::Letterhead,
    /// Tries before a delivery is marked failed (`mailer.max_attempts`).
    pub max_attempts: u32,
    /// Erases a recipient whose last mail asked for it, once that mail is delivered.
    pub retention: Retention,
}

impl Deliveries {
    /// Puts back the claims a stopped process left behind (each counted as a possible
    /// resend: that process may have handed the mail over just before it died), then starts
    /// the dispatcher, which begins by reading every unfinished record from the store.
    pub async fn start(ctx: DeliveryContext, options: DeliveryOptions) -> Result<Self, MailError> {
        let abandoned = ctx.store.release_abandoned_claims().await?;
        if abandoned > 0 {
            ctx.metrics.smtp_possible_resends.inc_by(abandoned);
            tracing::warn!(
                count = abandoned,
                "sending again mails whose handoff was under way when the mailer stopped"
            );
        }
        let (jobs, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (stopping, _) = watch::channel(false);
        let outcomes = OutcomeWriter::start(
            ctx.store.clone(),
            ctx.events.clone(),
            ctx.metrics.clone(),
            ctx.retention.clone(),
        );
        let inner = Arc::new(Inner {
            outcomes,
            store: ctx.store,
            workers: Arc::new(Semaphore::new(options.workers.max(1))),
            attempts: Attempts {
                sender: ctx.sender,
                templates: ctx.templates,
                metrics: ctx.metrics,
                options,
                max_attempts: ctx.max_attempts,
                letterhead: ctx.letterhead,
            },
            jobs,
            backlog: AtomicBool::new(true),
            stopping,
        });
        tokio::spawn(dispatch(inner.clone(), rx));
        Ok(Self { inner })
    }

    /// Queues a freshly stored request for sending.
    pub fn enqueue(&self, record: DeliveryRecord) {
        if self.inner.jobs.try_send(record).is_err() {
            self.inner.backlog.store(true, Ordering::Release);
        }
    }

    /// Stops taking new jobs and waits up to `grace` for the sends under way. Whatever is
    /// not finished stays `queued`, `retrying` or `sending` in the store for the next start.
    pub async fn stop(&self, grace: Duration) {
        self.inner.stopping.send_replace(true);
        let workers = self.inner.attempts.options.workers.max(1);
        let all = u32::try_from(workers).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(grace, self.inner.workers.acquire_many(all)).await;
        let _ = tokio::time::timeout(grace, self.inner.outcomes.flush()).await;
    }

    /// Returns once every delivery due by now has had its try and its outcome is written: no
    /// request waits in the queue or due in the store, and no try is under way. Retries whose
    /// time has not come stay where they are. For tests and operators that must know the
    /// pending work is done before they look; the loop keeps running meanwhile.
    pub async fn drain(&self) -> Result<(), MailError> {
        let workers = self.inner.attempts.options.workers.max(1);
        let all = u32::try_from(workers).unwrap_or(u32::MAX);
        loop {
            // Every permit free: no try is under way, and none is claimed without a worker.
            let _ = self.inner.workers.acquire_many(all).await;
            self.inner.outcomes.flush().await;
            let queued = self.inner.jobs.capacity() < self.inner.jobs.max_capacity();
            if !queued && self.inner.store.due(Utc::now(), 1).await?.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Reads the next page of due work from the store, if the store may hold some.
async fn refill(inner: &Inner, pending: &mut VecDeque<DeliveryRecord>) {
    if !inner.backlog.swap(false, Ordering::AcqRel) {
        return;
    }
    match inner.store.due(Utc::now(), PAGE).await {
        Ok(records) => {
            if records.len() as u64 == PAGE {
                inner.backlog.store(true, Ordering::Release);
            }
            pending.extend(records);
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read due deliveries; trying again shortly");
            inner.backlog.store(true, Ordering::Release);
        }
    }
}

async fn dispatch(inner: Arc<Inner>, mut rx: mpsc::Receiver<DeliveryRecord>) {
    let mut stopping = inner.stopping.subscribe();
    let mut pending: VecDeque<DeliveryRecord> = VecDeque::new();
    // Retries wait in the store; while idle, the dispatcher looks for due ones this often.
    let poll = inner
        .attempts
        .options
        .retry_base
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    let gather = inner.store.gathering().claims;
    loop {
        while pending.len() < CLAIM_BATCH {
            match rx.try_recv() {
                Ok(record) => pending.push_back(record),
                Err(_) => break,
            }
        }
        if pending.is_empty() {
            refill(&inner, &mut pending).await;
        }
        if pending.is_empty() {
            tokio::select! {
                record = rx.recv() => match record { Some(r) => pending.push_back(r), None => return },
                _ = stopping.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(poll) => inner.backlog.store(true, Ordering::Release),
            }
            continue;
        }
        // One permit per record claimed, so nothing is claimed that no worker can send now.
        let Ok(first) = inner.workers.clone().acquire_owned().await else {
            return;
        };
        if *stopping.borrow() {
            return;
        }
        let permits = more_permits(
            &inner.workers,
            first,
            pending.len().min(CLAIM_BATCH),
            gather,
        )
        .await;
        let mut taken: HashMap<MailRequestId, DeliveryRecord> =
            pending.drain(..permits.len()).map(|r| (r.id, r)).collect();
        let ids: Vec<_> = taken.keys().copied().collect();
        match inner.store.claim_due(&ids, Utc::now()).await {
            Ok(claimed) => {
                // Fewer rows than ids: copies of records already claimed, sent, or not due.
                for (claim, permit) in claimed.into_iter().zip(permits) {
                    let Some(mut record) = taken.remove(&claim.id) else {
                        continue;
                    };
                    // The stored count wins over a copy read before an earlier try.
                    record.attempts = claim.attempts;
                    let inner = inner.clone();
                    // A delivery's future holds the whole SMTP exchange, about 10 KiB: on the
                    // heap from the start, spawning and finishing the task move a pointer
                    // instead of copying it several times (docs/BENCHMARKS.md).
                    tokio::spawn(Box::pin(deliver(inner, record, permit)));
                }
            }
            Err(e) => {
                // Still queued or retrying in the store: a later read finds them.
                tracing::warn!(error = %e, "could not claim deliveries; trying again shortly");
                inner.backlog.store(true, Ordering::Release);
                tokio::time::sleep(poll).await;
            }
        }
    }
}

/// Up to `want` worker permits, starting with `first`: those free now, and those that free
/// up within `gather` when the store prefers wider claims.
async fn more_permits(
    workers: &Arc<Semaphore>,
    first: OwnedSemaphorePermit,
    want: usize,
    gather: Duration,
) -> Vec<OwnedSemaphorePermit> {
    let mut permits = vec![first];
    let gather_until = tokio::time::Instant::now() + gather;
    while permits.len() < want {
        let permit = match workers.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) if gather.is_zero() => break,
            Err(_) => {
                match tokio::time::timeout_at(gather_until, workers.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    _ => break,
                }
            }
        };
        permits.push(permit);
    }
    permits
}

async fn deliver(inner: Arc<Inner>, record: DeliveryRecord, permit: OwnedSemaphorePermit) {
    let finished = inner.attempts.run(&record).await;
    // The outcome is queued for the batch writer before the worker's permit is returned:
    // `stop` waits for every permit and then flushes the writer, so an outcome queued after
    // the permit would miss that flush, and a mail already sent would stay `sending` and go
    // out again after the restart.
    let erase_recipient = LastMail::of(&record);
    inner.outcomes.record(Outcome {
        finished,
        erase_recipient,
        template: record.template,
        to: record.to,
        sender: record.sender,
    });
    drop(permit);
}
