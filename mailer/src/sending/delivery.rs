//! The delivery loop: claim stored requests, render them, hand them to SMTP, record the
//! outcome, and retry with exponential backoff and jitter until `max_attempts`.
//!
//! A dispatcher task takes due records (freshly accepted ones from a bounded channel, the
//! rest by paging through the store), claims as many as there are free workers in one
//! statement, and runs each send on a pool of at most `workers` concurrent sends sharing
//! the pooled SMTP connections. Outcomes are written in batches ([`super::outcomes`]).
//! Retries wait in the store until their time. The store is the source of truth: at start,
//! every record still `queued`, `retrying` or `sending` is picked up again, which is how
//! work survives a restart.

use super::outcomes::{Outcome, OutcomeWriter};
use super::{MailSender, SendFailure, build_message};
use crate::events::Events;
use crate::metrics::Metrics;
use crate::store::{DeliveryRecord, DeliveryStatus, Store};
use crate::templates::Templates;
use chrono::Utc;
use domain::MailRequestId;
use lettre::message::Mailbox;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// How deliveries are paced.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Concurrent SMTP sends (and pooled SMTP connections).
    pub workers: usize,
    /// The first retry waits about this long; each next one twice as long.
    pub retry_base: Duration,
    /// No retry waits longer than this.
    pub retry_cap: Duration,
    /// The longest one SMTP send may take before it counts as a timeout.
    pub send_timeout: Duration,
    /// Tries before a delivery is marked failed.
    pub max_attempts: u32,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            workers: 16,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(300),
            send_timeout: Duration::from_secs(30),
            max_attempts: 8,
        }
    }
}

/// In-memory jobs waiting for a worker. Beyond this, new work stays in the store only and
/// the dispatcher pages through it when the queue runs dry, so memory stays flat under a
/// backlog of any size.
const QUEUE_CAPACITY: usize = 4096;
/// Records fetched from the store at a time when paging through a backlog.
const PAGE: u64 = 512;

struct Inner {
    store: Store,
    sender: MailSender,
    templates: Templates,
    metrics: Arc<Metrics>,
    options: DeliveryOptions,
    from: Mailbox,
    domain: String,
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
    /// The delivery store.
    pub store: Store,
    /// Where mails go.
    pub sender: MailSender,
    /// Status announcements.
    pub events: Events,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The `From` header, parsed once at start.
    pub from: Mailbox,
    /// The Message-ID domain.
    pub domain: String,
}

impl Deliveries {
    /// Puts back the claims a stopped process left behind (each counted as a possible
    /// resend: that process may have handed the mail over just before it died), then starts
    /// the dispatcher, which begins by reading every unfinished record from the store.
    pub async fn start(
        ctx: DeliveryContext,
        options: DeliveryOptions,
    ) -> Result<Self, sea_orm::DbErr> {
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
        let outcomes =
            OutcomeWriter::start(ctx.store.clone(), ctx.events.clone(), ctx.metrics.clone());
        let inner = Arc::new(Inner {
            outcomes,
            store: ctx.store,
            sender: ctx.sender,
            templates: Templates::new(),
            metrics: ctx.metrics,
            workers: Arc::new(Semaphore::new(options.workers.max(1))),
            options,
            from: ctx.from,
            domain: ctx.domain,
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
        let all = u32::try_from(self.inner.options.workers.max(1)).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(grace, self.inner.workers.acquire_many(all)).await;
        let _ = tokio::time::timeout(grace, self.inner.outcomes.flush()).await;
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

/// Claims at most this many records per statement.
const CLAIM_BATCH: usize = 64;
/// Without the SQLite writer (PostgreSQL, in-memory SQLite), when every worker is busy and
/// more records wait, how long the dispatcher lets workers free up before claiming, so that
/// one claim statement carries more rows: claiming as soon as one worker was free gave
/// claims of one or two rows, each a transaction of its own. The SQLite writer puts a claim
/// in one commit with whatever else waits, and there this wait measured no cheaper, with
/// more context switches (docs/benchmarks/mailer.md), so it claims only the workers free now.
const CLAIM_GATHER: Duration = Duration::from_micros(500);

async fn dispatch(inner: Arc<Inner>, mut rx: mpsc::Receiver<DeliveryRecord>) {
    let mut stopping = inner.stopping.subscribe();
    let mut pending: VecDeque<DeliveryRecord> = VecDeque::new();
    // Retries wait in the store; while idle, the dispatcher looks for due ones this often.
    let poll = inner
        .options
        .retry_base
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    let gather = if inner.store.writer().is_some() {
        Duration::ZERO
    } else {
        CLAIM_GATHER
    };
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
        let mut permits = vec![first];
        let want = pending.len().min(CLAIM_BATCH);
        let gather_until = tokio::time::Instant::now() + gather;
        while permits.len() < want {
            let permit = match inner.workers.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) if gather.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(
                    gather_until,
                    inner.workers.clone().acquire_owned(),
                )
                .await
                {
                    Ok(Ok(permit)) => permit,
                    _ => break,
                },
            };
            permits.push(permit);
        }
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
                    record.status = DeliveryStatus::Sending;
                    let inner = inner.clone();
                    tokio::spawn(async move { deliver(&inner, record, permit).await });
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

/// The wait before try number `attempts + 1`: exponential, capped, with jitter between
/// half and all of it so a burst of failures does not retry in lockstep.
pub fn backoff(options: &DeliveryOptions, attempts: u32) -> Duration {
    let exp = options
        .retry_base
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
        .min(options.retry_cap);
    let half = exp / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::random_range(0..=jitter_ms))
}

#[tracing::instrument(name = "Delivering a mail", skip_all, fields(mail_id = %record.id))]
async fn deliver(inner: &Arc<Inner>, record: DeliveryRecord, permit: OwnedSemaphorePermit) {
    let attempts = record.attempts + 1;
    let outcome = match compose(inner, &record) {
        Ok(message) => {
            let started = Instant::now();
            let result = inner
                .sender
                .send(&record.id.to_string(), message, inner.options.send_timeout)
                .await;
            inner
                .metrics
                .smtp_send_duration
                .observe(started.elapsed().as_secs_f64());
            result
        }
        Err(e) => Err(SendFailure::Unbuildable(e)),
    };
    let now = Utc::now();
    let (status, error, next) = match outcome {
        Ok(()) => (DeliveryStatus::Sent, None, now),
        Err(SendFailure::Unbuildable(e)) => {
            inner.metrics.count_smtp_error("message");
            (DeliveryStatus::Failed, Some(e), now)
        }
        Err(SendFailure::Permanent(e)) => {
            inner.metrics.count_smtp_error("permanent");
            (DeliveryStatus::Failed, Some(e), now)
        }
        Err(SendFailure::Transient { error, class })
        | Err(SendFailure::Uncertain { error, class })
            if attempts >= inner.options.max_attempts =>
        {
            inner.metrics.count_smtp_error(class);
            (
                DeliveryStatus::Failed,
                Some(format!("gave up after {attempts} attempts: {error}")),
                now,
            )
        }
        Err(failure) => {
            let (error, class) = match failure {
                SendFailure::Uncertain { error, class } => {
                    inner.metrics.smtp_possible_resends.inc();
                    (error, class)
                }
                SendFailure::Transient { error, class } => (error, class),
                SendFailure::Permanent(error) | SendFailure::Unbuildable(error) => {
                    (error, "permanent")
                }
            };
            inner.metrics.count_smtp_error(class);
            let wait = backoff(&inner.options, attempts);
            let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
            (DeliveryStatus::Retrying, Some(error), next)
        }
    };
    // The outcome is queued for the batch writer before the worker's permit is returned:
    // `stop` waits for every permit and then flushes the writer, so an outcome queued after
    // the permit would miss that flush, and a mail already sent would stay `sending` and go
    // out again after the restart.
    inner.outcomes.record(Outcome {
        id: record.id,
        template: record.template,
        to: record.to,
        status,
        attempts,
        error,
        next_attempt_at: (status == DeliveryStatus::Retrying).then_some(next),
    });
    drop(permit);
}

/// Renders and builds the message of `record`. A render or build error, and a panic on the
/// way (caught here, so the worker lives on to record it), is the reason the delivery fails:
/// the same record would fail the same way at every try.
fn compose(inner: &Inner, record: &DeliveryRecord) -> Result<lettre::Message, String> {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mail = inner
            .templates
            .render(record.template, record.locale, &record.to, &record.vars)
            .map_err(|e| e.to_string())?;
        build_message(
            &inner.from,
            &inner.domain,
            record.id,
            record.template,
            &record.to,
            mail,
        )
    }));
    built.unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        tracing::error!(mail_id = %record.id, panic = %why, "building a mail panicked");
        Err(format!(
            "the message could not be built: it panicked ({why})"
        ))
    })
}
