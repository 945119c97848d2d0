//! The relay: publishes pending outbox rows through the transport, each until it is confirmed.
//!
//! One pass ([`OutboxRelay::relay_once`]) claims a batch of due rows with a lease, publishes
//! them concurrently, then marks each published (on `Ok(Receipt)`) or schedules its retry.
//! The loop ([`OutboxRelay::run`]) repeats passes, waking at once after a local commit and
//! every second for rows written by other instances or left from before a restart.
//!
//! Several users instances may share one database. The claim is one UPDATE that sets
//! `claimed_until_ms` on rows no live lease holds:
//! - PostgreSQL: the inner SELECT takes `FOR UPDATE SKIP LOCKED`, so two relays never wait
//!   on or take the same row; a row claimed meanwhile is re-checked against the WHERE clause.
//! - SQLite: a database has a single writer, and the UPDATE runs as one statement, so a
//!   second relay's UPDATE runs after the first committed and sees the lease already set.
//!
//! A relay that dies mid-publish leaves its rows claimed until the lease ends; another relay
//! (or this one after a restart) then takes them. The mailer deduplicates on the request id,
//! so such a second publish sends no second mail.

use super::{Backlog, backlog, now_ms};
use crate::entities::outbox;
use crate::metrics::Metrics;
use domain::{MailRequest, MailStatus};
use futures_util::future::join_all;
use runtime::backoff::delay_after;
use runtime::telemetry::context::{continue_trace, traceparent};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    Statement,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tracing::Instrument;
use transport::{PublishError, Receipt, Transport};
use uuid::Uuid;

/// Rows claimed per pass.
const BATCH: i64 = 256;
/// How long a claim holds a row; longer than any transport timeout.
const LEASE: Duration = Duration::from_secs(60);
/// How often the loop looks for rows it was not woken for.
const POLL: Duration = Duration::from_secs(1);
/// The first retry of a failed publish (or pass) waits about this long; later ones double.
/// The jitter spreads the retries of many rows, and of several users instances, after an
/// outage, so they do not all hit the transport in the same instant when it comes back.
const RETRY_BASE: Duration = Duration::from_millis(250);
/// No retry waits longer than this; a permanent error waits about this long every time.
const RETRY_CAP: Duration = Duration::from_secs(30);

/// The longest retry delay, jittered: for errors that retrying soon will not fix.
fn longest_delay() -> Duration {
    delay_after(RETRY_CAP, RETRY_CAP, 1)
}

/// Why a relay pass failed (the database did not answer); rows stay pending.
#[derive(Debug, thiserror::Error)]
#[error("the outbox relay could not read or update the outbox: {0}")]
pub struct RelayError(#[from] DbErr);

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Rows claimed.
    pub claimed: usize,
    /// Rows the transport confirmed, now marked published.
    pub published: usize,
    /// Rows whose publish failed, scheduled again.
    pub failed: usize,
}

/// Publishes the outbox. Cheap to clone; every clone drives the same outbox.
#[derive(Clone)]
pub struct OutboxRelay {
    db: DatabaseConnection,
    transport: Arc<dyn Transport>,
    metrics: Arc<Metrics>,
    wakeup: Arc<Notify>,
}

struct Claimed {
    id: Uuid,
    payload: String,
    attempts: i32,
    traceparent: Option<String>,
}

enum Outcome {
    Published,
    Failed { error: String, permanent: bool },
}

impl OutboxRelay {
    pub(crate) fn new(
        db: DatabaseConnection,
        transport: Arc<dyn Transport>,
        metrics: Arc<Metrics>,
        wakeup: Arc<Notify>,
    ) -> Self {
        Self {
            db,
            transport,
            metrics,
            wakeup,
        }
    }

    /// One pass: claims due rows, publishes them, and records each outcome.
    pub async fn relay_once(&self) -> Result<RelayReport, RelayError> {
        let claimed = self.claim().await?;
        let mut report = RelayReport {
            claimed: claimed.len(),
            ..RelayReport::default()
        };
        if claimed.is_empty() {
            return Ok(report);
        }
        let outcomes = join_all(claimed.iter().map(|row| {
            // The publish continues the trace of the write that stored the row.
            let span = tracing::info_span!("Publishing a mail request", mail_id = %row.id);
            continue_trace(&span, row.traceparent.as_deref());
            self.publish(row, traceparent(&span)).instrument(span)
        }))
        .await;
        let mut published = Vec::new();
        for (row, outcome) in claimed.iter().zip(outcomes) {
            match outcome {
                Outcome::Published => published.push(row.id),
                Outcome::Failed { error, permanent } => {
                    report.failed += 1;
                    self.metrics.outbox_failures.inc();
                    self.schedule_retry(row, &error, permanent).await?;
                }
            }
        }
        if !published.is_empty() {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::PublishedAtMs, Expr::value(now_ms()))
                // A published row keeps no payload: a reset mail's link must not outlive it.
                .col_expr(outbox::Column::Payload, Expr::value(""))
                .col_expr(
                    outbox::Column::ClaimedUntilMs,
                    Expr::value(Option::<i64>::None),
                )
                .filter(outbox::Column::Id.is_in(published.clone()))
                .exec(&self.db)
                .await?;
            report.published = published.len();
            self.metrics.outbox_published.inc_by(published.len() as u64);
        }
        Ok(report)
    }

    /// What is waiting to be published.
    pub async fn backlog(&self) -> Result<Backlog, RelayError> {
        Ok(backlog(&self.db).await?)
    }

    /// Runs passes until `shutdown` turns true. A pass in progress finishes first, so a row
    /// is either confirmed and marked, or left pending.
    pub(crate) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!("outbox relay started");
        let mut failures_in_a_row = 0u32;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait = match self.relay_once().await {
                // A full batch means more rows may be due: go again at once.
                Ok(report) if report.claimed as i64 >= BATCH => {
                    failures_in_a_row = 0;
                    continue;
                }
                Ok(_) => {
                    failures_in_a_row = 0;
                    POLL
                }
                Err(e) => {
                    failures_in_a_row += 1;
                    tracing::warn!(error = %e, "outbox relay pass failed; retrying");
                    delay_after(RETRY_BASE, RETRY_CAP, failures_in_a_row)
                }
            };
            tokio::select! {
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("outbox relay stopped");
    }

    async fn claim(&self) -> Result<Vec<Claimed>, DbErr> {
        let now = now_ms();
        let lease_end = now + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "UPDATE outbox SET claimed_until_ms = $1 WHERE id IN (\
                   SELECT id FROM outbox WHERE published_at_ms IS NULL AND next_attempt_at_ms <= $2 \
                   AND (claimed_until_ms IS NULL OR claimed_until_ms <= $2) \
                   ORDER BY next_attempt_at_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, payload, attempts, traceparent"
            }
            _ => {
                "UPDATE outbox SET claimed_until_ms = ?1 WHERE id IN (\
                   SELECT id FROM outbox WHERE published_at_ms IS NULL AND next_attempt_at_ms <= ?2 \
                   AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?2) \
                   ORDER BY next_attempt_at_ms, id LIMIT ?3) \
                 RETURNING id, payload, attempts, traceparent"
            }
        };
        let statement = Statement::from_sql_and_values(
            backend,
            sql,
            [lease_end.into(), now.into(), BATCH.into()],
        );
        let rows = self.db.query_all_raw(statement).await?;
        rows.into_iter()
            .map(|row| {
                Ok(Claimed {
                    id: row.try_get("", "id")?,
                    payload: row.try_get("", "payload")?,
                    attempts: row.try_get("", "attempts")?,
                    traceparent: row.try_get("", "traceparent")?,
                })
            })
            .collect()
    }

    /// Publishes one row's request, carrying `traceparent` (the publish span's) so the
    /// mailer's spans continue the trace.
    async fn publish(&self, row: &Claimed, traceparent: Option<String>) -> Outcome {
        let request = match MailRequest::from_json(row.payload.as_bytes()) {
            Ok(r) => MailRequest {
                traceparent: traceparent.or(r.traceparent),
                ..r
            },
            Err(e) => {
                tracing::error!(error = %e, "an outbox row does not hold a valid mail request");
                return Outcome::Failed {
                    error: e.to_string(),
                    permanent: true,
                };
            }
        };
        let started = Instant::now();
        let result = self.transport.publish(&request).await;
        self.metrics
            .publish_duration
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(Receipt::Confirmed) => {
                tracing::debug!("mail request published");
                Outcome::Published
            }
            Ok(Receipt::Answered(answer)) => match answer.status {
                MailStatus::Accepted | MailStatus::Duplicate => {
                    tracing::debug!("mail request published");
                    Outcome::Published
                }
                MailStatus::Rejected { error } => {
                    // The mailer will never take it; trying again cannot help.
                    tracing::error!(%error, "the mailer rejected a mail request");
                    Outcome::Published
                }
                MailStatus::Unavailable { error } => {
                    tracing::warn!(%error, "the mailer could not store a mail request; will retry");
                    Outcome::Failed {
                        error,
                        permanent: false,
                    }
                }
            },
            Err(PublishError::Retryable(error)) => {
                tracing::warn!(%error, "publishing a mail request failed; will retry");
                Outcome::Failed {
                    error,
                    permanent: false,
                }
            }
            Err(PublishError::Permanent(error)) => {
                tracing::error!(%error, "publishing a mail request failed permanently; will retry at the longest backoff");
                Outcome::Failed {
                    error,
                    permanent: true,
                }
            }
        }
    }

    async fn schedule_retry(
        &self,
        row: &Claimed,
        error: &str,
        permanent: bool,
    ) -> Result<(), DbErr> {
        let attempts = row.attempts.saturating_add(1);
        let delay = if permanent {
            longest_delay()
        } else {
            delay_after(
                RETRY_BASE,
                RETRY_CAP,
                u32::try_from(attempts).unwrap_or(u32::MAX),
            )
        };
        let next = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        let error: String = error.chars().take(1000).collect();
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Attempts, Expr::value(attempts))
            .col_expr(outbox::Column::LastError, Expr::value(error))
            .col_expr(outbox::Column::NextAttemptAtMs, Expr::value(next))
            .col_expr(
                outbox::Column::ClaimedUntilMs,
                Expr::value(Option::<i64>::None),
            )
            .filter(outbox::Column::Id.eq(row.id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
